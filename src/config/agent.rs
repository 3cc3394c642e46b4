//! `agent:`: the built-in AI voice agent (off when absent).
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The number callers dial to talk to the agent.
    #[serde(default = "default_extension")]
    pub extension: String,
    /// Display name in call history and on the caller's screen.
    #[serde(default = "default_name")]
    pub name: String,
    /// Spoken when the agent answers; empty: none.
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// Spoken when a backend fails, instead of dead air.
    #[serde(default = "default_apology")]
    pub apology: String,
    /// BCP-47 language given to STT and the brain.
    #[serde(default = "default_language")]
    pub language: String,
    /// The agent hangs up after this long in one call.
    #[serde(default = "default_max_call")]
    pub max_call_secs: u64,
    /// ...or after this long without the caller speaking.
    #[serde(default = "default_silence")]
    pub silence_secs: u64,
    /// Quiet after speech that ends the caller's turn.
    #[serde(default = "default_end_of_turn")]
    pub end_of_turn_ms: u64,
    /// Quiet after speech at which transcription starts, before the turn is
    /// sure to be over (the transcript is kept if the caller stays quiet);
    /// 0: only at the end of the turn. Hides most of STT in the end-of-turn
    /// wait, for one extra STT request when the caller pauses and goes on.
    #[serde(default = "default_early_stt")]
    pub early_stt_ms: u64,
    /// One STT, brain or TTS request taking longer than this is a failure.
    #[serde(default = "default_backend_timeout")]
    pub backend_timeout_secs: u64,
    pub stt: SttConfig,
    pub tts: TtsConfig,
    pub brain: BrainConfig,
    /// Home Assistant's API (Assist, services, states, notifications). In
    /// add-on mode it comes from the Supervisor and this may be left out.
    #[serde(default)]
    pub homeassistant: Option<HomeAssistantApi>,
    /// Entities the LLM's tools may read or act on; nothing else.
    #[serde(default)]
    pub allowed_entities: Vec<String>,
    /// Which calls go to the agent besides the ones dialled to it.
    #[serde(default)]
    pub handoff: Vec<HandoffRule>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum SttConfig {
    /// The Whisper add-on's protocol: `tcp://host:10300`.
    Wyoming { url: String },
    /// `POST {url}/v1/audio/transcriptions`.
    Openai {
        url: String,
        #[serde(default)]
        api_key: Option<String>,
        #[serde(default = "default_stt_model")]
        model: String,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum TtsConfig {
    /// The Piper add-on's protocol: `tcp://host:10200`.
    Wyoming {
        url: String,
        #[serde(default)]
        voice: Option<String>,
    },
    /// `POST {url}/v1/audio/speech`.
    Openai {
        url: String,
        #[serde(default)]
        api_key: Option<String>,
        #[serde(default = "default_tts_model")]
        model: String,
        #[serde(default = "default_tts_voice")]
        voice: String,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum BrainConfig {
    /// Home Assistant Assist (`conversation/process`) with HA's own tools.
    Assist {
        /// The conversation agent chosen in HA; HA's default when absent.
        #[serde(default)]
        agent_id: Option<String>,
    },
    /// An OpenAI-compatible chat-completions LLM with ha-pbx's tools.
    Openai {
        url: String,
        #[serde(default)]
        api_key: Option<String>,
        model: String,
        #[serde(default)]
        system_prompt: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantApi {
    /// `http://host:8123`.
    pub url: String,
    /// A long-lived access token.
    pub token: String,
}

/// A call matching every given field goes to the agent, at once or after
/// ringing its callee for `ring_secs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HandoffRule {
    #[serde(default)]
    pub callee: Option<String>,
    #[serde(default)]
    pub caller: Option<String>,
    /// Local time window `HH:MM-HH:MM`; may wrap past midnight.
    #[serde(default)]
    pub between: Option<String>,
    #[serde(default)]
    pub ring_secs: u64,
}

fn default_extension() -> String {
    "200".into()
}
fn default_name() -> String {
    "Assistant".into()
}
fn default_greeting() -> String {
    "Hello, this is your home assistant. How can I help?".into()
}
fn default_apology() -> String {
    "Sorry, I cannot do that right now.".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_max_call() -> u64 {
    300
}
fn default_silence() -> u64 {
    30
}
fn default_end_of_turn() -> u64 {
    700
}
fn default_early_stt() -> u64 {
    200
}
fn default_backend_timeout() -> u64 {
    15
}
fn default_stt_model() -> String {
    "whisper-1".into()
}
fn default_tts_model() -> String {
    "tts-1".into()
}
fn default_tts_voice() -> String {
    "alloy".into()
}

/// A handoff window `HH:MM-HH:MM` as minutes of the day (start, end); None
/// when malformed. The end may be before the start (the window wraps past midnight).
pub fn parse_window(window: &str) -> Option<(u32, u32)> {
    let (a, b) = window.split_once('-')?;
    Some((minute(a)?, minute(b)?))
}

fn minute(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}
