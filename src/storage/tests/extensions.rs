//! Config sync of the extensions table.
use super::*;
use crate::storage::{BindingOp, ExtensionRow};

#[tokio::test]
async fn sync_inserts_updates_and_removes() {
    let store = store_with_101_102().await;
    let rows = store.extensions().await.unwrap();
    assert_eq!(
        rows[0],
        ExtensionRow {
            extension: "101".into(),
            password: "pw1".into(),
            name: Some("Kitchen".into()),
            source: "config".into(),
        }
    );
    assert_eq!(rows.len(), 2);

    // 101 changes, 102 goes, 103 arrives.
    store
        .sync_config_extensions(&[ext("101", "new", None), ext("103", "pw3", Some("Hall"))])
        .await
        .unwrap();
    let rows = store.extensions().await.unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.extension.as_str()).collect();
    assert_eq!(names, ["101", "103"]);
    assert_eq!(rows[0].password, "new");
    assert_eq!(rows[0].name, None);
}

#[tokio::test]
async fn removing_an_extension_cascades_its_bindings() {
    let store = store_with_101_102().await;
    store
        .apply_binding_ops(&[
            BindingOp::Upsert(binding("101", "sip:a", 10_000)),
            BindingOp::Upsert(binding("102", "sip:b", 10_000)),
        ])
        .await
        .unwrap();
    store
        .sync_config_extensions(&[ext("101", "pw1", None)])
        .await
        .unwrap();
    let left = store.load_bindings(0).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].extension, "101");
}

#[tokio::test]
async fn other_sources_are_left_alone() {
    let store = store_with_101_102().await;
    let ha = ExtensionRow {
        extension: "200".into(),
        password: "ha".into(),
        name: Some("Phone of HA user".into()),
        source: "ha_user".into(),
    };
    store.upsert_extension(&ha).await.unwrap();
    // Config now also names 200, and drops everything else.
    store
        .sync_config_extensions(&[ext("200", "cfg", None)])
        .await
        .unwrap();
    assert_eq!(store.extensions().await.unwrap(), vec![ha]);
}

#[tokio::test]
async fn upsert_extension_overwrites() {
    let store = Store::open_in_memory().await.unwrap();
    let mut row = ExtensionRow {
        extension: "300".into(),
        password: "a".into(),
        name: None,
        source: "ha_user".into(),
    };
    store.upsert_extension(&row).await.unwrap();
    row.password = "b".into();
    row.name = Some("Garage".into());
    store.upsert_extension(&row).await.unwrap();
    assert_eq!(store.extensions().await.unwrap(), vec![row]);
}
