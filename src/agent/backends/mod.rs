//! What the agent talks to: speech-to-text, the brain, text-to-speech, and
//! Home Assistant. Each is a trait so the pipeline does not care which
//! service sits behind it; the implementations speak the real wire protocols
//! (Wyoming, OpenAI-compatible HTTP, Home Assistant's WebSocket and REST APIs).
use async_trait::async_trait;
use tokio::sync::mpsc;

mod build;
pub mod homeassistant;
pub mod http;
pub mod openai;
pub mod wyoming;

pub use build::{build, Backends};

/// Mono 16-bit PCM at `rate` Hz.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<i16>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Connection refused, DNS failure, reset: the service is not there.
    #[error("{service} unreachable: {detail}")]
    Unreachable { service: &'static str, detail: String },
    /// The service answered with an error status.
    #[error("{service} answered {status}: {detail}")]
    Status { service: &'static str, status: u16, detail: String },
    /// The service answered something that is not its protocol.
    #[error("{service} protocol error: {detail}")]
    Protocol { service: &'static str, detail: String },
}

#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// The words in `audio` (one caller turn); empty when nothing was said.
    async fn transcribe(&self, audio: Audio, language: &str) -> Result<String, BackendError>;
}

#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Speak `text`, sending audio chunks to `out` as soon as the service
    /// produces them (the first chunk goes out before the last is made).
    async fn speak(&self, text: &str, out: mpsc::Sender<Audio>) -> Result<(), BackendError>;
}

/// A tool the LLM may call, described as OpenAI's `tools[].function`.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON schema of the arguments.
    pub parameters: serde_json::Value,
}

/// Runs the tools for a brain: the call (hang up, transfer, DTMF, message)
/// and Home Assistant (services, states, with the entity allow-list).
#[async_trait]
pub trait ToolHost: Send + Sync {
    fn tools(&self) -> Vec<ToolSpec>;
    /// The result given back to the LLM; errors are results too (`{"error": ...}`).
    async fn call(&self, name: &str, arguments: serde_json::Value) -> serde_json::Value;
}

/// What a brain remembers between turns of one call.
#[derive(Debug, Default, Clone)]
pub struct Conversation {
    /// OpenAI chat messages so far (system prompt first).
    pub messages: Vec<serde_json::Value>,
    /// Home Assistant's `conversation_id`, carried from turn to turn.
    pub assist_id: Option<String>,
}

#[async_trait]
pub trait Brain: Send + Sync {
    /// Answer what the caller `said`, sending the reply's text to `out` in
    /// pieces as it streams (the pipeline speaks it sentence by sentence).
    async fn reply(
        &self,
        said: &str,
        conversation: &mut Conversation,
        tools: &dyn ToolHost,
        out: mpsc::Sender<String>,
    ) -> Result<(), BackendError>;
}
