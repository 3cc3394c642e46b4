//! Opening, migrating and reopening the file database.
use super::*;
use crate::storage::{BindingOp, DB_FILE};

#[tokio::test]
async fn fresh_file_db_is_migrated_and_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested/data");
    let store = Store::open(&data_dir).await.unwrap();
    assert!(data_dir.join(DB_FILE).exists());

    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    assert!(store.extensions().await.unwrap().is_empty());
    assert!(store.recent_calls(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let row = binding("101", "sip:101@192.0.2.10:5060", 10_000);
    {
        let store = Store::open(dir.path()).await.unwrap();
        store
            .sync_config_extensions(&[ext("101", "pw", None)], "ha-pbx")
            .await
            .unwrap();
        store
            .apply_binding_ops(&[BindingOp::Upsert(row.clone())])
            .await
            .unwrap();
        store.call_started("c1", "101", "102", 5).await.unwrap();
        store.pool().close().await;
    }
    // Reopening runs the migrator again: it must be a no-op on a migrated DB.
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.load_bindings(9_000).await.unwrap(), vec![row]);
    assert_eq!(store.extensions().await.unwrap().len(), 1);
    assert_eq!(store.recent_calls(10).await.unwrap()[0].call_id, "c1");
}
