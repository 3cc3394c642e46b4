//! The agent as one shared service: its configuration, backends, kept
//! prompts and figures. Each call it answers runs in `runner`.
use super::backends::{build, Backends};
use super::metrics::AgentMetrics;
use super::prompts::PromptCache;
use crate::config::{AgentConfig, HomeAssistantApi};
use crate::events::{EventBus, PbxEvent};
use crate::storage::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct Agent {
    pub config: AgentConfig,
    pub backends: Backends,
    pub prompts: Arc<PromptCache>,
    pub metrics: AgentMetrics,
    store: Store,
    bus: EventBus,
}

/// A message taken from a caller.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenMessage {
    pub call_id: String,
    pub caller: String,
    /// Who the caller wanted to reach.
    pub callee: String,
    pub transcript: String,
}

impl Agent {
    /// Builds the backends (errors name the config field) and starts
    /// rendering the prompts. `ha`: Home Assistant's API as the add-on
    /// found it, else `agent.homeassistant`.
    pub fn start(config: AgentConfig, ha: Option<HomeAssistantApi>, store: Store, bus: EventBus) -> Result<Arc<Agent>, String> {
        let backends = build(&config, ha)?;
        let prompts = Arc::new(PromptCache::default());
        let agent = Arc::new(Agent { backends, prompts: prompts.clone(), metrics: AgentMetrics::default(), store, bus, config });
        tokio::spawn(prompts.warm(agent.backends.tts.clone(), agent.config.greeting.clone(), agent.config.apology.clone(), agent.backend_timeout()));
        Ok(agent)
    }

    pub fn backend_timeout(&self) -> Duration {
        Duration::from_secs(self.config.backend_timeout_secs)
    }

    /// `text` spoken by the agent's text-to-speech, as 8 kHz audio (the
    /// park announcement the B2BUA plays into a call).
    pub async fn render_speech(&self, text: &str) -> Result<Vec<i16>, super::backends::BackendError> {
        super::speech::render(self.backends.tts.as_ref(), text, self.backend_timeout()).await
    }

    /// Kept in SQLite, announced on the event bus (MQTT), and shown in Home
    /// Assistant as a persistent notification when HA is connected.
    pub async fn deliver_message(&self, m: TakenMessage) {
        tracing::info!(call_id = %m.call_id, caller = %m.caller, callee = %m.callee, "agent took a message");
        if let Err(e) = self.store.add_message(&m.call_id, &m.caller, &m.callee, &m.transcript, now_ms()).await {
            tracing::error!(error = %format!("{e:#}"), call_id = %m.call_id, "message could not be stored");
        }
        self.bus.publish(PbxEvent::Message { call_id: m.call_id.clone(), caller: m.caller.clone(), callee: m.callee.clone(), transcript: m.transcript.clone() });
        if let Some(ha) = &self.backends.ha {
            let title = format!("Message for {} from {}", m.callee, m.caller);
            if let Err(e) = ha.notify_persistent(&title, &m.transcript).await {
                tracing::warn!(error = %e, "message notification to Home Assistant failed");
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
