//! The backends named by the `agent:` config, ready to use.
use super::homeassistant::{AssistBrain, HaClient};
use super::openai::{default_system_prompt, OpenAiBrain, OpenAiStt, OpenAiTts};
use super::wyoming::{WyomingStt, WyomingTts};
use super::{Brain, SpeechToText, TextToSpeech};
use crate::config::{AgentConfig, BrainConfig, HomeAssistantApi, SttConfig, TtsConfig};
use std::sync::Arc;

pub struct Backends {
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub brain: Arc<dyn Brain>,
    /// Home Assistant's APIs when known (the Assist brain, the LLM's tools).
    pub ha: Option<Arc<HaClient>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("ha", &self.ha).finish_non_exhaustive()
    }
}

/// `ha` is Home Assistant's API as the caller found it (the Supervisor's in
/// add-on mode); without it `agent.homeassistant` is used. Errors name the
/// config field. Nothing is contacted here.
pub fn build(cfg: &AgentConfig, ha: Option<HomeAssistantApi>) -> Result<Backends, String> {
    let ha = match ha.or_else(|| cfg.homeassistant.clone()) {
        Some(api) => Some(Arc::new(HaClient::new(&api).map_err(|e| format!("agent.homeassistant: {e}"))?)),
        None => None,
    };
    let stt: Arc<dyn SpeechToText> = match &cfg.stt {
        SttConfig::Wyoming { url } => Arc::new(WyomingStt::new(url).map_err(|e| format!("agent.stt.url: {e}"))?),
        SttConfig::Openai { url, api_key, model } => Arc::new(OpenAiStt::new(url, api_key.as_deref(), model).map_err(|e| format!("agent.stt.url: {e}"))?),
    };
    let tts: Arc<dyn TextToSpeech> = match &cfg.tts {
        TtsConfig::Wyoming { url, voice } => Arc::new(WyomingTts::new(url, voice.as_deref()).map_err(|e| format!("agent.tts.url: {e}"))?),
        TtsConfig::Openai { url, api_key, model, voice } => {
            Arc::new(OpenAiTts::new(url, api_key.as_deref(), model, voice).map_err(|e| format!("agent.tts.url: {e}"))?)
        }
    };
    let brain: Arc<dyn Brain> = match &cfg.brain {
        BrainConfig::Assist { agent_id } => {
            let Some(client) = &ha else {
                return Err("agent.brain: kind `assist` needs Home Assistant's API: set agent.homeassistant (url, token) or run as the add-on".into());
            };
            Arc::new(AssistBrain::new(client.clone(), agent_id.as_deref(), &cfg.language))
        }
        BrainConfig::Openai { url, api_key, model, system_prompt } => {
            if model.trim().is_empty() {
                return Err("agent.brain.model: empty".into());
            }
            let prompt = system_prompt.clone().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| default_system_prompt(&cfg.name, &cfg.language));
            Arc::new(OpenAiBrain::new(url, api_key.as_deref(), model, prompt).map_err(|e| format!("agent.brain.url: {e}"))?)
        }
    };
    Ok(Backends { stt, tts, brain, ha })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> AgentConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    const WYOMING: &str = "stt: {kind: wyoming, url: 'tcp://core-whisper:10300'}\ntts: {kind: wyoming, url: 'tcp://core-piper:10200', voice: en_US-joe-medium}\n";

    #[test]
    fn wyoming_with_assist_needs_home_assistant() {
        let c = cfg(&format!("{WYOMING}brain: {{kind: assist}}\n"));
        let e = build(&c, None).unwrap_err();
        assert!(e.starts_with("agent.brain:") && e.contains("agent.homeassistant"), "{e}");
        let api = HomeAssistantApi { url: "http://supervisor/core".into(), token: "sv".into() };
        let b = build(&c, Some(api)).unwrap();
        assert_eq!(b.ha.unwrap().urls().websocket, "ws://supervisor/core/websocket");
        // from the config when the caller has none
        let c = cfg(&format!("{WYOMING}brain: {{kind: assist}}\nhomeassistant: {{url: 'http://10.0.0.2:8123', token: t}}\n"));
        assert_eq!(build(&c, None).unwrap().ha.unwrap().urls().websocket, "ws://10.0.0.2:8123/api/websocket");
    }

    #[test]
    fn openai_everything_over_https() {
        let c = cfg("stt: {kind: openai, url: 'https://api.openai.com/v1', api_key: sk}\n\
                     tts: {kind: openai, url: 'https://api.openai.com', api_key: sk}\n\
                     brain: {kind: openai, url: 'http://127.0.0.1:11434', model: 'llama3.2'}\n");
        let b = build(&c, None).unwrap();
        assert!(b.ha.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        for (yaml, field) in [
            ("stt: {kind: wyoming, url: 'core-whisper:10300'}\ntts: {kind: wyoming, url: 'tcp://p:10200'}\nbrain: {kind: openai, url: 'http://l', model: m}\n", "agent.stt.url: "),
            ("stt: {kind: wyoming, url: 'tcp://w:10300'}\ntts: {kind: wyoming, url: 'tcp://p'}\nbrain: {kind: openai, url: 'http://l', model: m}\n", "agent.tts.url: "),
            ("stt: {kind: openai, url: 'ftp://x'}\ntts: {kind: wyoming, url: 'tcp://p:1'}\nbrain: {kind: openai, url: 'http://l', model: m}\n", "agent.stt.url: "),
            ("stt: {kind: wyoming, url: 'tcp://w:1'}\ntts: {kind: openai, url: 'x'}\nbrain: {kind: openai, url: 'http://l', model: m}\n", "agent.tts.url: "),
            ("stt: {kind: wyoming, url: 'tcp://w:1'}\ntts: {kind: wyoming, url: 'tcp://p:1'}\nbrain: {kind: openai, url: 'tcp://l:1', model: m}\n", "agent.brain.url: "),
            ("stt: {kind: wyoming, url: 'tcp://w:1'}\ntts: {kind: wyoming, url: 'tcp://p:1'}\nbrain: {kind: openai, url: 'http://l', model: ' '}\n", "agent.brain.model: "),
            ("stt: {kind: wyoming, url: 'tcp://w:1'}\ntts: {kind: wyoming, url: 'tcp://p:1'}\nbrain: {kind: assist}\nhomeassistant: {url: 'ha:8123', token: t}\n", "agent.homeassistant: "),
        ] {
            let e = build(&cfg(yaml), None).unwrap_err();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }
}
