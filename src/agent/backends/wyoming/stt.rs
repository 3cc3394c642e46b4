//! Wyoming speech-to-text (the Whisper add-on): `transcribe`, the audio at
//! 16 kHz, `audio-stop`, then wait for `transcript`.
use super::addr::{parse_tcp_url, TcpAddr};
use super::conn::{pcm_bytes, Conn};
use super::frame::Event;
use crate::agent::backends::{Audio, BackendError, SpeechToText};
use crate::media::audio::resample::Resampler;
use async_trait::async_trait;
use serde_json::json;

const SERVICE: &str = "Wyoming STT";
const RATE: u32 = 16000;
/// Samples per `audio-chunk`, as the wyoming library's clients send.
const CHUNK: usize = 1024;

#[derive(Debug, Clone)]
pub struct WyomingStt {
    addr: TcpAddr,
}

impl WyomingStt {
    pub fn new(url: &str) -> Result<WyomingStt, String> {
        Ok(WyomingStt { addr: parse_tcp_url(url)? })
    }

    pub fn addr(&self) -> &TcpAddr {
        &self.addr
    }
}

/// The request's events for 16 kHz `samples`.
pub fn request_events(samples: &[i16], language: &str) -> Vec<Event> {
    let fmt = json!({"rate": RATE, "width": 2, "channels": 1});
    let mut evs = Vec::with_capacity(samples.len() / CHUNK + 4);
    evs.push(if language.is_empty() { Event::new("transcribe", json!({})) } else { Event::new("transcribe", json!({"language": language})) });
    evs.push(Event::new("audio-start", fmt.clone()));
    evs.extend(samples.chunks(CHUNK).map(|c| Event::new("audio-chunk", fmt.clone()).with_payload(pcm_bytes(c))));
    evs.push(Event::new("audio-stop", json!({})));
    evs
}

#[async_trait]
impl SpeechToText for WyomingStt {
    async fn transcribe(&self, audio: Audio, language: &str) -> Result<String, BackendError> {
        if audio.samples.is_empty() {
            return Ok(String::new());
        }
        let samples = if audio.rate == RATE {
            audio.samples
        } else {
            let mut r = Resampler::new(audio.rate, RATE).map_err(|e| BackendError::Protocol { service: SERVICE, detail: e })?;
            let mut s = r.process(&audio.samples);
            s.extend(r.flush());
            s
        };
        let mut conn = Conn::connect(&self.addr, SERVICE).await?;
        conn.send(&request_events(&samples, language)).await?;
        while let Some(ev) = conn.recv().await? {
            conn.check(&ev)?;
            if ev.kind == "transcript" {
                return Ok(ev.str("text").unwrap_or("").trim().to_string());
            }
        }
        Err(conn.protocol("closed without a transcript".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_transcribe_start_chunks_stop() {
        let evs = request_events(&vec![7i16; 2500], "de");
        let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["transcribe", "audio-start", "audio-chunk", "audio-chunk", "audio-chunk", "audio-stop"]);
        assert_eq!(evs[0].str("language"), Some("de"));
        assert_eq!((evs[1].u64("rate"), evs[1].u64("width"), evs[1].u64("channels")), (Some(16000), Some(2), Some(1)));
        let bytes: usize = evs.iter().map(|e| e.payload.len()).sum();
        assert_eq!(bytes, 5000);
        assert_eq!(&evs[4].payload[..2], &7i16.to_le_bytes());
        assert!(request_events(&[1], "").first().unwrap().data.is_empty());
    }
}
