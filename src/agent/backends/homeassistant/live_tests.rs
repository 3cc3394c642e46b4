//! Against a real Home Assistant, ignored by default:
//!
//! ```text
//! HA_URL=http://127.0.0.1:8123 HA_TOKEN=<long-lived token> \
//!   cargo test --release --lib homeassistant::live_tests -- --ignored --nocapture
//! ```
use super::*;
use crate::agent::backends::{Brain, Conversation, ToolHost, ToolSpec};
use crate::config::HomeAssistantApi;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

struct NoTools;
#[async_trait::async_trait]
impl ToolHost for NoTools {
    fn tools(&self) -> Vec<ToolSpec> {
        Vec::new()
    }
    async fn call(&self, _: &str, _: Value) -> Value {
        Value::Null
    }
}

fn client() -> HaClient {
    let env = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} must be set for this test"));
    HaClient::new(&HomeAssistantApi { url: env("HA_URL"), token: env("HA_TOKEN") }).unwrap()
}

#[tokio::test]
#[ignore = "needs a real Home Assistant: HA_URL, HA_TOKEN"]
async fn rest_and_assist_against_home_assistant() {
    let ha = Arc::new(client());
    let zone = ha.state("zone.home").await.unwrap();
    println!("state(zone.home) = {}", zone["state"]);
    assert_eq!(zone["entity_id"], "zone.home");
    ha.notify_persistent("ha-pbx test", "Assist backend check").await.unwrap();

    let brain = AssistBrain::new(ha.clone(), None, "en");
    let mut conv = Conversation::default();
    let (tx, mut rx) = mpsc::channel(4);
    brain.reply("What time is it?", &mut conv, &NoTools, tx.clone()).await.unwrap();
    let speech = rx.recv().await.unwrap();
    println!("Assist: {speech:?} (conversation {:?})", conv.assist_id);
    assert!(!speech.is_empty());
    let first = conv.assist_id.clone().expect("HA gives a conversation_id");
    brain.reply("What is the date today?", &mut conv, &NoTools, tx).await.unwrap();
    println!("Assist: {:?} (conversation {:?})", rx.recv().await.unwrap(), conv.assist_id);
    // HA keeps the conversation it was given
    assert_eq!(conv.assist_id.as_deref(), Some(first.as_str()));
}
