//! The Assist brain: Home Assistant's `conversation/process` over its
//! WebSocket API ([`HaSocket`]). HA runs its own intents and tools; the
//! conversation id is carried from turn to turn. One connection per turn
//! (HA answers in ms).
use super::rest::{HaClient, SERVICE};
use super::ws::HaSocket;
use super::ws_msg::{process_message, processed};
use crate::agent::backends::{BackendError, Brain, Conversation, ToolHost};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct AssistBrain {
    ha: Arc<HaClient>,
    agent_id: Option<String>,
    language: String,
}

impl AssistBrain {
    pub fn new(ha: Arc<HaClient>, agent_id: Option<&str>, language: &str) -> AssistBrain {
        AssistBrain { ha, agent_id: agent_id.filter(|a| !a.is_empty()).map(str::to_string), language: language.to_string() }
    }
}

#[async_trait]
impl Brain for AssistBrain {
    async fn reply(&self, said: &str, conversation: &mut Conversation, _tools: &dyn ToolHost, out: mpsc::Sender<String>) -> Result<(), BackendError> {
        let mut ws = HaSocket::open(&self.ha.urls().websocket, self.ha.token()).await?;
        let result = ws.request(process_message(said, &self.language, conversation.assist_id.as_deref(), self.agent_id.as_deref())).await;
        ws.close().await;
        let processed = processed(&result?).map_err(|e| BackendError::Status { service: SERVICE, status: 400, detail: format!("conversation/process: {e}") })?;
        if processed.conversation_id.is_some() {
            conversation.assist_id = processed.conversation_id;
        }
        if !processed.speech.is_empty() {
            let _ = out.send(processed.speech).await;
        }
        Ok(())
    }
}
