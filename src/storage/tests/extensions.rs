//! Config sync of the extensions table.
use super::*;
use crate::sip::auth::digest::{self, Algorithm, Ha1};
use crate::storage::{BindingOp, ExtensionRow};

#[tokio::test]
async fn sync_inserts_updates_and_removes() {
    let store = store_with_101_102().await;
    let rows = store.extensions().await.unwrap();
    assert_eq!(
        rows[0],
        ExtensionRow {
            extension: "101".into(),
            password: String::new(),
            name: Some("Kitchen".into()),
            source: "config".into(),
            ha1_realm: Some("ha-pbx".into()),
            ha1_md5: Some(digest::ha1(Algorithm::Md5, "101", "ha-pbx", "pw1")),
            ha1_sha256: Some(digest::ha1(Algorithm::Sha256, "101", "ha-pbx", "pw1")),
        }
    );
    assert_eq!(rows[0].ha1("ha-pbx"), Some(Ha1::from_password("101", "ha-pbx", "pw1")));
    assert_eq!(rows[0].ha1("other realm"), None, "no password to make another realm's HA1 from");
    assert_eq!(rows.len(), 2);

    // 101 changes, 102 goes, 103 arrives.
    store
        .sync_config_extensions(&[ext("101", "new", None), ext("103", "pw3", Some("Hall"))], "ha-pbx")
        .await
        .unwrap();
    let rows = store.extensions().await.unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.extension.as_str()).collect();
    assert_eq!(names, ["101", "103"]);
    assert_eq!(rows[0].ha1("ha-pbx"), Some(Ha1::from_password("101", "ha-pbx", "new")));
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
        .sync_config_extensions(&[ext("101", "pw1", None)], "ha-pbx")
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
        ..Default::default()
    };
    store.upsert_extension(&ha).await.unwrap();
    // Config now also names 200, and drops everything else.
    store
        .sync_config_extensions(&[ext("200", "cfg", None)], "ha-pbx")
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
        ..Default::default()
    };
    store.upsert_extension(&row).await.unwrap();
    row.password = "b".into();
    row.name = Some("Garage".into());
    store.upsert_extension(&row).await.unwrap();
    assert_eq!(store.extensions().await.unwrap(), vec![row]);
}

#[tokio::test]
async fn a_kept_password_gives_the_ha1_of_any_realm() {
    let row = ExtensionRow { extension: "100".into(), password: "generated".into(), source: "ha_user".into(), ..Default::default() };
    assert_eq!(row.ha1("ha-pbx"), Some(Ha1::from_password("100", "ha-pbx", "generated")));
    assert_eq!(row.ha1("home"), Some(Ha1::from_password("100", "home", "generated")));
}

#[tokio::test]
async fn stored_passwords_are_hashed_and_cleared_except_shown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    // Rows as a database from before HA1 storage has them.
    for (ext, pw, source) in [("101", "plain-secret-101", "config"), ("150", "plain-secret-150", "other"), ("100", "shown-secret", "ha_user")] {
        sqlx::query("INSERT INTO extensions (extension, password, source) VALUES (?, ?, ?)")
            .bind(ext)
            .bind(pw)
            .bind(source)
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert_eq!(store.hash_stored_passwords("ha-pbx").await.unwrap(), 2);
    assert_eq!(store.hash_stored_passwords("ha-pbx").await.unwrap(), 0, "done once");
    let rows = store.extensions().await.unwrap();
    let by = |e: &str| rows.iter().find(|r| r.extension == e).unwrap().clone();
    assert_eq!(by("101").password, "");
    assert_eq!(by("101").ha1("ha-pbx"), Some(Ha1::from_password("101", "ha-pbx", "plain-secret-101")));
    assert_eq!(by("150").ha1("ha-pbx"), Some(Ha1::from_password("150", "ha-pbx", "plain-secret-150")));
    assert_eq!(by("100").password, "shown-secret");
    store.pool().close().await;
    // Nothing of the old passwords is left in the files.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("plain-secret"), "a password left in the database files");
    }
}

#[tokio::test]
async fn config_rows_with_passwords_are_scrubbed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    // An older version's rows: config extensions with their passwords, one
    // of them since removed from the config (its row deleted, its bytes left
    // in a free page).
    for i in 0..50 {
        sqlx::query("INSERT INTO extensions (extension, password, source) VALUES (?, ?, 'config')")
            .bind(format!("{}", 300 + i))
            .bind(format!("old-config-secret-{i}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    sqlx::query("PRAGMA secure_delete = OFF").execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM extensions WHERE extension <> '300'").execute(store.pool()).await.unwrap();
    assert_eq!(store.load_config_extensions(&[ext("300", "new-secret", None)], "ha-pbx").await.unwrap(), 1);
    store.pool().close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"), "a password left in the database files");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_dir_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).await.unwrap();
    store.sync_config_extensions(&[ext("101", "pw1", None)], "ha-pbx").await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    store.pool().close().await;
    // An existing world-readable file is made private on the next start.
    let db = data.join(crate::storage::DB_FILE);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = Store::open(&data).await.unwrap();
    assert_eq!(mode(&db), 0o600);
}
