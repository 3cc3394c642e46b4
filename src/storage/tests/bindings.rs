//! Binding ops, expiry and sweeping.
use super::*;
use crate::storage::BindingOp;

#[tokio::test]
async fn expired_bindings_are_not_loaded_and_are_swept() {
    let store = store_with_101_102().await;
    store
        .apply_binding_ops(&[
            BindingOp::Upsert(binding("101", "sip:old", 1_000)),
            BindingOp::Upsert(binding("101", "sip:new", 2_000)),
            BindingOp::Upsert(binding("102", "sip:edge", 1_500)),
        ])
        .await
        .unwrap();

    // A binding expiring exactly now is already gone.
    let live = store.load_bindings(1_500).await.unwrap();
    let contacts: Vec<_> = live.iter().map(|b| b.contact_uri.as_str()).collect();
    assert_eq!(contacts, ["sip:new"]);

    assert_eq!(store.sweep_expired_bindings(1_500).await.unwrap(), 2);
    assert_eq!(store.sweep_expired_bindings(1_500).await.unwrap(), 0);
    assert_eq!(store.load_bindings(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn ops_upsert_delete_and_delete_all() {
    let store = store_with_101_102().await;
    let mut refreshed = binding("101", "sip:a", 5_000);
    refreshed.cseq = 8;
    refreshed.reg_id = None;
    store
        .apply_binding_ops(&[
            BindingOp::Upsert(binding("101", "sip:a", 4_000)),
            BindingOp::Upsert(binding("101", "sip:b", 4_000)),
            BindingOp::Upsert(binding("102", "sip:c", 4_000)),
            BindingOp::Upsert(binding("102", "sip:d", 4_000)),
            // Same key again replaces the row.
            BindingOp::Upsert(refreshed.clone()),
            BindingOp::Delete {
                extension: "101".into(),
                contact_uri: "sip:b".into(),
            },
            BindingOp::DeleteAll {
                extension: "102".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.load_bindings(0).await.unwrap(), vec![refreshed]);
}

#[tokio::test]
async fn binding_for_unknown_extension_is_skipped_not_fatal() {
    let store = store_with_101_102().await;
    store
        .apply_binding_ops(&[
            BindingOp::Upsert(binding("999", "sip:x", 4_000)),
            BindingOp::Upsert(binding("101", "sip:y", 4_000)),
        ])
        .await
        .unwrap();
    let live = store.load_bindings(0).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].extension, "101");
}

#[tokio::test]
async fn large_batches_coalesce_and_keep_order() {
    let store = store_with_101_102().await;
    let mut ops: Vec<BindingOp> = (0..1200).map(|i| BindingOp::Upsert(binding("101", &format!("sip:d{i}"), 9_000))).collect();
    // Upsert then delete of one key in the same batch: the delete wins.
    ops.push(BindingOp::Delete { extension: "101".into(), contact_uri: "sip:d5".into() });
    // Delete then upsert again: the upsert wins.
    ops.push(BindingOp::Delete { extension: "101".into(), contact_uri: "sip:d6".into() });
    ops.push(BindingOp::Upsert(binding("101", "sip:d6", 9_500)));
    // Everything of 102 before a DeleteAll goes, what follows it stays.
    ops.push(BindingOp::Upsert(binding("102", "sip:gone", 9_000)));
    ops.push(BindingOp::DeleteAll { extension: "102".into() });
    ops.push(BindingOp::Upsert(binding("102", "sip:kept", 9_000)));
    store.apply_binding_ops(&ops).await.unwrap();
    let live = store.load_bindings(0).await.unwrap();
    let of = |ext: &str| live.iter().filter(|b| b.extension == ext).map(|b| b.contact_uri.clone()).collect::<Vec<_>>();
    assert_eq!(of("101").len(), 1199);
    assert!(!of("101").contains(&"sip:d5".to_string()));
    assert_eq!(live.iter().find(|b| b.contact_uri == "sip:d6").unwrap().expires_at, 9_500);
    assert_eq!(of("102"), ["sip:kept"]);
}
