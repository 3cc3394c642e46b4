//! Text to 8 kHz audio for the line: a TTS backend's chunks (at whatever
//! rate it speaks) resampled and passed on as they arrive.
use super::backends::{Audio, BackendError, TextToSpeech};
use crate::media::audio::resample::Resampler;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const LINE_RATE: u32 = 8000;

/// Speak `text`; every piece of 8 kHz audio goes to `sink`. Returns how long
/// the first audio took (None: the service produced no audio at all).
pub async fn speak(tts: &dyn TextToSpeech, text: &str, timeout: Duration, mut sink: impl FnMut(Vec<i16>)) -> Result<Option<Duration>, BackendError> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel::<Audio>(32);
    let synth = async move {
        match tokio::time::timeout(timeout, tts.speak(text, tx)).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::Protocol { service: "tts", detail: format!("no complete answer within {} s", timeout.as_secs()) }),
        }
    };
    let mut first = None;
    let forward = async {
        let mut resampler: Option<Resampler> = None;
        while let Some(chunk) = rx.recv().await {
            if chunk.samples.is_empty() || chunk.rate == 0 {
                continue;
            }
            first.get_or_insert_with(|| started.elapsed());
            if resampler.as_ref().is_none_or(|r| r.from_hz() != chunk.rate) {
                if let Some(mut old) = resampler.take() {
                    sink(old.flush());
                }
                match Resampler::new(chunk.rate, LINE_RATE) {
                    Ok(r) => resampler = Some(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "TTS audio at an unusable rate dropped");
                        continue;
                    }
                }
            }
            let out = resampler.as_mut().expect("set above").process(&chunk.samples);
            if !out.is_empty() {
                sink(out);
            }
        }
        if let Some(mut r) = resampler {
            sink(r.flush());
        }
    };
    let (result, ()) = tokio::join!(synth, forward);
    result.map(|()| first)
}

/// Speak `text` into one buffer (prompts kept for later).
pub async fn render(tts: &dyn TextToSpeech, text: &str, timeout: Duration) -> Result<Vec<i16>, BackendError> {
    let mut all = Vec::new();
    speak(tts, text, timeout, |s| all.extend(s)).await?;
    if all.is_empty() {
        return Err(BackendError::Protocol { service: "tts", detail: "no audio in the answer".into() });
    }
    Ok(all)
}

/// Two short 440 Hz beeps: heard when even the apology cannot be spoken.
pub fn beeps() -> Vec<i16> {
    let beep = |n: usize| (0..n).map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / LINE_RATE as f32).sin() * 8000.0) as i16);
    let gap = std::iter::repeat_n(0i16, 1200);
    beep(1600).chain(gap.clone()).chain(beep(1600)).chain(gap).collect()
}
