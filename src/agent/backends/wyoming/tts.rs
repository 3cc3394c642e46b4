//! Wyoming text-to-speech (the Piper add-on): `synthesize`, then
//! `audio-start`, `audio-chunk`s, `audio-stop`; each chunk goes to the
//! pipeline as it arrives, at the rate the server states.
use super::addr::{parse_tcp_url, TcpAddr};
use super::conn::Conn;
use super::frame::Event;
use crate::agent::backends::{Audio, BackendError, TextToSpeech};
use async_trait::async_trait;
use serde_json::json;
use tokio::sync::mpsc;

const SERVICE: &str = "Wyoming TTS";

#[derive(Debug, Clone)]
pub struct WyomingTts {
    addr: TcpAddr,
    voice: Option<String>,
}

impl WyomingTts {
    pub fn new(url: &str, voice: Option<&str>) -> Result<WyomingTts, String> {
        Ok(WyomingTts { addr: parse_tcp_url(url)?, voice: voice.filter(|v| !v.is_empty()).map(str::to_string) })
    }

    pub fn addr(&self) -> &TcpAddr {
        &self.addr
    }
}

pub fn synthesize_event(text: &str, voice: Option<&str>) -> Event {
    match voice {
        Some(name) => Event::new("synthesize", json!({"text": text, "voice": {"name": name}})),
        None => Event::new("synthesize", json!({"text": text})),
    }
}

/// PCM format of the stream, from `audio-start` or a chunk's own data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Format {
    pub rate: u32,
    pub width: u32,
    pub channels: u32,
}

impl Format {
    /// Fields missing from `ev` keep the values of `base`.
    pub fn from_event(ev: &Event, base: Option<Format>) -> Result<Format, String> {
        let get = |k: &str, d: Option<u32>| ev.u64(k).map(|v| v as u32).or(d).ok_or_else(|| format!("`{}` without `{k}`", ev.kind));
        let f = Format {
            rate: get("rate", base.map(|b| b.rate))?,
            width: get("width", base.map(|b| b.width))?,
            channels: get("channels", base.map(|b| b.channels))?,
        };
        if !(4000..=192_000).contains(&f.rate) {
            return Err(format!("unusable rate {} Hz", f.rate));
        }
        if f.width != 2 {
            return Err(format!("sample width {} bytes; only 16-bit PCM is supported", f.width));
        }
        if f.channels == 0 || f.channels > 8 {
            return Err(format!("{} channels", f.channels));
        }
        Ok(f)
    }
}

/// Mono samples from interleaved s16le (the first channel when several);
/// a trailing partial frame is dropped.
pub fn mono_samples(payload: &[u8], channels: u32) -> Vec<i16> {
    let frame = 2 * channels as usize;
    payload.chunks_exact(frame).map(|f| i16::from_le_bytes([f[0], f[1]])).collect()
}

#[async_trait]
impl TextToSpeech for WyomingTts {
    async fn speak(&self, text: &str, out: mpsc::Sender<Audio>) -> Result<(), BackendError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let mut conn = Conn::connect(&self.addr, SERVICE).await?;
        conn.send(&[synthesize_event(text, self.voice.as_deref())]).await?;
        let mut start: Option<Format> = None;
        while let Some(ev) = conn.recv().await? {
            conn.check(&ev)?;
            match ev.kind.as_str() {
                "audio-start" => start = Some(Format::from_event(&ev, None).map_err(|e| conn.protocol(e))?),
                "audio-chunk" => {
                    let f = Format::from_event(&ev, start).map_err(|e| conn.protocol(e))?;
                    let samples = mono_samples(&ev.payload, f.channels);
                    if samples.is_empty() {
                        continue;
                    }
                    if out.send(Audio { rate: f.rate, samples }).await.is_err() {
                        // the pipeline stopped listening (the caller spoke over it)
                        return Ok(());
                    }
                }
                "audio-stop" => return Ok(()),
                _ => {}
            }
        }
        Err(conn.protocol("closed before audio-stop".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesize_names_the_voice_only_when_set() {
        let e = synthesize_event("Hi there.", Some("en_US-joe-medium"));
        assert_eq!(serde_json::Value::Object(e.data), json!({"text": "Hi there.", "voice": {"name": "en_US-joe-medium"}}));
        assert_eq!(serde_json::Value::Object(synthesize_event("x", None).data), json!({"text": "x"}));
    }

    #[test]
    fn formats_and_samples() {
        let start = Event::new("audio-start", json!({"rate": 22050, "width": 2, "channels": 1}));
        let f = Format::from_event(&start, None).unwrap();
        assert_eq!(f, Format { rate: 22050, width: 2, channels: 1 });
        // a chunk without its own format inherits audio-start's; with one it wins
        assert_eq!(Format::from_event(&Event::new("audio-chunk", json!({})), Some(f)).unwrap(), f);
        assert_eq!(Format::from_event(&Event::new("audio-chunk", json!({"rate": 16000})), Some(f)).unwrap().rate, 16000);
        assert!(Format::from_event(&Event::new("audio-chunk", json!({})), None).is_err());
        assert!(Format::from_event(&Event::new("audio-start", json!({"rate": 22050, "width": 4, "channels": 1})), None).is_err());
        assert!(Format::from_event(&Event::new("audio-start", json!({"rate": 0, "width": 2, "channels": 1})), None).is_err());

        assert_eq!(mono_samples(&[1, 0, 0xff, 0xff, 5], 1), vec![1, -1]);
        assert_eq!(mono_samples(&[1, 0, 2, 0, 3, 0, 4, 0], 2), vec![1, 3]);
    }
}
