//! Against real Wyoming servers (wyoming-piper, wyoming-faster-whisper),
//! ignored by default. Run with the servers' addresses:
//!
//! ```text
//! WYOMING_TTS_URL=tcp://127.0.0.1:10200 WYOMING_STT_URL=tcp://127.0.0.1:10300 \
//!   cargo test --release --lib wyoming::live_tests -- --ignored --nocapture
//! ```
//! `WYOMING_TTS_VOICE` optionally names the voice (e.g. en_US-joe-medium).
use super::*;
use crate::agent::backends::{Audio, SpeechToText, TextToSpeech};
use crate::media::audio::resample::Resampler;
use std::time::Instant;
use tokio::sync::mpsc;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must name the server (tcp://host:port) for this test"))
}

#[tokio::test]
#[ignore = "needs real Wyoming servers: WYOMING_TTS_URL, WYOMING_STT_URL"]
async fn tts_then_stt_round_trip() {
    let sentence = "Someone is at the front door. Shall I open it?";
    let voice = std::env::var("WYOMING_TTS_VOICE").ok();
    let tts = WyomingTts::new(&env("WYOMING_TTS_URL"), voice.as_deref()).unwrap();
    let stt = WyomingStt::new(&env("WYOMING_STT_URL")).unwrap();

    let (tx, mut rx) = mpsc::channel(64);
    let t0 = Instant::now();
    let speak = tokio::spawn(async move { tts.speak(sentence, tx).await });
    let mut chunks = Vec::new();
    let mut first_ms = None;
    while let Some(a) = rx.recv().await {
        first_ms.get_or_insert(t0.elapsed().as_millis());
        chunks.push(a);
    }
    speak.await.unwrap().unwrap();
    let rate = chunks[0].rate;
    assert!(chunks.iter().all(|c| c.rate == rate), "one rate for the whole answer");
    let samples: usize = chunks.iter().map(|c| c.samples.len()).sum();
    let secs = samples as f64 / rate as f64;
    println!("TTS: {} chunks at {rate} Hz, {secs:.2} s of audio, first chunk after {} ms, all after {} ms", chunks.len(), first_ms.unwrap(), t0.elapsed().as_millis());
    assert!((1.5..10.0).contains(&secs), "{secs} s for one sentence");

    // to 16 kHz as the pipeline would, chunk by chunk
    let mut r = Resampler::new(rate, 16000).unwrap();
    let mut pcm16 = Vec::new();
    for c in &chunks {
        pcm16.extend(r.process(&c.samples));
    }
    pcm16.extend(r.flush());
    assert_eq!(pcm16.len(), (samples as f64 * 16000.0 / rate as f64).round() as usize);

    let t1 = Instant::now();
    let text = stt.transcribe(Audio { rate: 16000, samples: pcm16 }, "en").await.unwrap();
    println!("STT: {text:?} after {} ms", t1.elapsed().as_millis());
    let words = text.to_lowercase();
    for w in ["someone", "front door", "open"] {
        assert!(words.contains(w), "`{w}` missing from {text:?}");
    }
}
