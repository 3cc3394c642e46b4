//! The batching binding writer.
use super::*;
use crate::storage::{BindingOp, spawn_binding_writer};
use std::time::Duration;

#[tokio::test]
async fn flush_waits_for_sent_ops() {
    let store = store_with_101_102().await;
    let writer = spawn_binding_writer(store.clone());
    // More than one batch's worth, across both extensions.
    for i in 0..1200 {
        let ext = if i % 2 == 0 { "101" } else { "102" };
        writer.send(BindingOp::Upsert(binding(ext, &format!("sip:{i}"), 10_000)));
    }
    writer.send(BindingOp::Delete {
        extension: "101".into(),
        contact_uri: "sip:0".into(),
    });
    writer.flush().await;
    assert_eq!(store.load_bindings(0).await.unwrap().len(), 1199);

    writer.send(BindingOp::DeleteAll {
        extension: "102".into(),
    });
    writer.flush().await;
    assert_eq!(store.load_bindings(0).await.unwrap().len(), 599);
}

#[tokio::test]
async fn ops_commit_without_flush() {
    let store = store_with_101_102().await;
    let writer = spawn_binding_writer(store.clone());
    writer.send(BindingOp::Upsert(binding("101", "sip:a", 10_000)));
    // The batch window is ~20 ms; allow ample slack.
    for _ in 0..100 {
        if store.load_bindings(0).await.unwrap().len() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("op was never committed");
}

#[tokio::test]
async fn shutdown_commits_the_remainder() {
    let store = store_with_101_102().await;
    let writer = spawn_binding_writer(store.clone());
    let clone = writer.clone();
    for i in 0..50 {
        clone.send(BindingOp::Upsert(binding(
            "101",
            &format!("sip:{i}"),
            10_000,
        )));
    }
    drop(clone);
    writer.shutdown().await;
    assert_eq!(store.load_bindings(0).await.unwrap().len(), 50);
}

#[tokio::test]
async fn dropping_every_handle_still_commits() {
    let store = store_with_101_102().await;
    let writer = spawn_binding_writer(store.clone());
    for i in 0..10 {
        writer.send(BindingOp::Upsert(binding(
            "102",
            &format!("sip:{i}"),
            10_000,
        )));
    }
    drop(writer);
    for _ in 0..100 {
        if store.load_bindings(0).await.unwrap().len() == 10 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("remainder was not committed after the writer was dropped");
}

#[tokio::test]
async fn a_failing_batch_does_not_stop_the_writer() {
    let store = store_with_101_102().await;
    let writer = spawn_binding_writer(store.clone());
    // Break the table so the batch fails twice, then repair it.
    sqlx::query("ALTER TABLE bindings RENAME TO bindings_away")
        .execute(store.pool())
        .await
        .unwrap();
    writer.send(BindingOp::Upsert(binding("101", "sip:lost", 10_000)));
    writer.flush().await;
    sqlx::query("ALTER TABLE bindings_away RENAME TO bindings")
        .execute(store.pool())
        .await
        .unwrap();
    writer.send(BindingOp::Upsert(binding("101", "sip:kept", 10_000)));
    writer.flush().await;
    let live = store.load_bindings(0).await.unwrap();
    let contacts: Vec<_> = live.iter().map(|b| b.contact_uri.as_str()).collect();
    assert_eq!(contacts, ["sip:kept"]);
}
