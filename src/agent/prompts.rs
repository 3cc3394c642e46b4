//! The greeting and the apology, rendered once and kept: the apology must
//! still be heard when the TTS service is what failed.
use super::speech;
use super::backends::TextToSpeech;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Default)]
pub struct PromptCache {
    greeting: RwLock<Option<Arc<Vec<i16>>>>,
    apology: RwLock<Option<Arc<Vec<i16>>>>,
}

impl PromptCache {
    pub fn greeting(&self) -> Option<Arc<Vec<i16>>> {
        self.greeting.read().ok()?.clone()
    }

    pub fn apology(&self) -> Option<Arc<Vec<i16>>> {
        self.apology.read().ok()?.clone()
    }

    /// A cache already holding both (tests).
    #[cfg(test)]
    pub fn preset(greeting: Vec<i16>, apology: Vec<i16>) -> Self {
        PromptCache { greeting: RwLock::new(Some(Arc::new(greeting))), apology: RwLock::new(Some(Arc::new(apology))) }
    }

    /// Both rendered (an empty greeting counts as rendered).
    pub fn ready(&self, greeting_wanted: bool) -> bool {
        self.apology().is_some() && (!greeting_wanted || self.greeting().is_some())
    }

    /// Render both, retrying every 30 s while the TTS service is not there.
    pub async fn warm(self: Arc<Self>, tts: Arc<dyn TextToSpeech>, greeting: String, apology: String, timeout: Duration) {
        loop {
            let mut missing = false;
            // The apology first: short, and what a failing call needs most.
            for (text, slot) in [(&apology, &self.apology), (&greeting, &self.greeting)] {
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
                tracing::info!("agent: greeting and apology ready");
                return;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}
