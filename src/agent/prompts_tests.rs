use super::*;
use crate::agent::backends::{Audio, BackendError};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Speaks every text as one chunk of 8 kHz audio, as long as the text, and
/// remembers what it was asked.
#[derive(Default)]
struct Tts {
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TextToSpeech for Tts {
    async fn speak(&self, text: &str, out: mpsc::Sender<Audio>) -> Result<(), BackendError> {
        self.asked.lock().unwrap().push(text.to_string());
        let _ = out.send(Audio { rate: 8000, samples: vec![1000; text.len() * 10] }).await;
        Ok(())
    }
}

#[tokio::test]
async fn warming_renders_the_message_greeting_whole_once_with_the_others() {
    let cache = Arc::new(PromptCache::default());
    assert!(!cache.ready(false));
    let tts = Arc::new(Tts::default());
    cache.clone().warm(tts.clone(), "Hello.".into(), "Sorry.".into(), Duration::from_secs(5)).await;
    // One request per prompt: the message greeting's two sentences together.
    assert_eq!(*tts.asked.lock().unwrap(), ["Sorry.", "Hello.", MESSAGE_GREETING]);
    let kept = cache.message_greeting().expect("rendered");
    assert!(kept.len() >= MESSAGE_GREETING.len() * 9, "{} samples", kept.len());
    assert!(cache.ready(true));
    // Warming again renders nothing that is kept already.
    cache.clone().warm(tts.clone(), "Hello.".into(), "Sorry.".into(), Duration::from_secs(5)).await;
    assert_eq!(tts.asked.lock().unwrap().len(), 3);
}

#[test]
fn not_ready_until_the_message_greeting_is_kept() {
    let cache = PromptCache::preset(vec![1], vec![1]);
    assert!(!cache.ready(true), "no message greeting yet");
    assert!(cache.with_message_greeting(vec![1]).ready(true));
}
