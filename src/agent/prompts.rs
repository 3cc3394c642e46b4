//! The greeting, the apology and the message greeting, rendered once and
//! kept: the apology must still be heard when the TTS service is what
//! failed, and a kept prompt plays whole, with no gap between sentences
//! synthesized one by one.
use super::speech;
use super::backends::TextToSpeech;
use super::session::MESSAGE_GREETING;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Default)]
pub struct PromptCache {
    greeting: RwLock<Option<Arc<Vec<i16>>>>,
    apology: RwLock<Option<Arc<Vec<i16>>>>,
    /// What a caller hears when the agent takes a message ([`MESSAGE_GREETING`]).
    message_greeting: RwLock<Option<Arc<Vec<i16>>>>,
}

impl PromptCache {
    pub fn greeting(&self) -> Option<Arc<Vec<i16>>> {
        self.greeting.read().ok()?.clone()
    }

    pub fn apology(&self) -> Option<Arc<Vec<i16>>> {
        self.apology.read().ok()?.clone()
    }

    pub fn message_greeting(&self) -> Option<Arc<Vec<i16>>> {
        self.message_greeting.read().ok()?.clone()
    }

    /// A cache already holding the greeting and the apology (tests).
    #[cfg(test)]
    pub fn preset(greeting: Vec<i16>, apology: Vec<i16>) -> Self {
        PromptCache { greeting: RwLock::new(Some(Arc::new(greeting))), apology: RwLock::new(Some(Arc::new(apology))), ..Default::default() }
    }

    /// The message greeting rendered too (tests).
    #[cfg(test)]
    pub fn with_message_greeting(self, audio: Vec<i16>) -> Self {
        PromptCache { message_greeting: RwLock::new(Some(Arc::new(audio))), ..self }
    }

    /// All rendered (an empty greeting counts as rendered).
    pub fn ready(&self, greeting_wanted: bool) -> bool {
        self.apology().is_some() && self.message_greeting().is_some() && (!greeting_wanted || self.greeting().is_some())
    }

    /// Render all three, retrying every 30 s while the TTS service is not there.
    pub async fn warm(self: Arc<Self>, tts: Arc<dyn TextToSpeech>, greeting: String, apology: String, timeout: Duration) {
        let message_greeting = MESSAGE_GREETING.to_string();
        loop {
            let mut missing = false;
            // The apology first: short, and what a failing call needs most.
            for (text, slot) in [(&apology, &self.apology), (&greeting, &self.greeting), (&message_greeting, &self.message_greeting)] {
                if text.is_empty() || slot.read().map(|s| s.is_some()).unwrap_or(true) {
                    continue;
                }
                match speech::render(tts.as_ref(), text, timeout).await {
                    Ok(audio) => {
                        if let Ok(mut s) = slot.write() {
                            *s = Some(Arc::new(audio));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "agent: cannot render a prompt yet; retrying in 30 s");
                        missing = true;
                    }
                }
            }
            if !missing {
                tracing::info!("agent: greeting, apology and message greeting ready");
                return;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

#[cfg(test)]
#[path = "prompts_tests.rs"]
mod tests;
