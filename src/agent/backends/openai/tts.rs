//! OpenAI-compatible text-to-speech: `POST {url}/v1/audio/speech` with
//! `response_format: "pcm"` (24 kHz s16le mono), forwarded as the body
//! streams in.
use crate::agent::backends::http::{next_chunk, HttpClient};
use crate::agent::backends::{Audio, BackendError, TextToSpeech};
use async_trait::async_trait;
use hyper::http::Method;
use serde_json::json;
use tokio::sync::mpsc;

const SERVICE: &str = "OpenAI TTS";
/// The API's `pcm` format.
pub const RATE: u32 = 24000;

#[derive(Debug, Clone)]
pub struct OpenAiTts {
    http: HttpClient,
    model: String,
    voice: String,
}

impl OpenAiTts {
    pub fn new(url: &str, api_key: Option<&str>, model: &str, voice: &str) -> Result<OpenAiTts, String> {
        Ok(OpenAiTts { http: HttpClient::new(SERVICE, &super::api_base(url), api_key)?, model: model.to_string(), voice: voice.to_string() })
    }
}

/// s16le bytes to samples across chunk boundaries (a chunk may end mid-sample).
#[derive(Debug, Default)]
pub struct PcmSplitter {
    odd: Option<u8>,
}

impl PcmSplitter {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut rest = bytes;
        if let Some(lo) = self.odd.take() {
            match rest.split_first() {
                Some((&hi, tail)) => {
                    out.push(i16::from_le_bytes([lo, hi]));
                    rest = tail;
                }
                None => {
                    self.odd = Some(lo);
                    return out;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
        self.odd = pairs.remainder().first().copied();
        out
    }
}

#[async_trait]
impl TextToSpeech for OpenAiTts {
    async fn speak(&self, text: &str, out: mpsc::Sender<Audio>) -> Result<(), BackendError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let body = json!({"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"});
        let resp = self.http.send(self.http.json_request(Method::POST, "/v1/audio/speech", Some(&body))?).await?;
        let mut body = resp.into_body();
        let mut split = PcmSplitter::default();
        while let Some(chunk) = next_chunk(SERVICE, &mut body).await? {
            let samples = split.push(&chunk);
            if samples.is_empty() {
                continue;
            }
            if out.send(Audio { rate: RATE, samples }).await.is_err() {
                return Ok(()); // the pipeline stopped listening
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use axum::{Json, Router};
    use std::sync::{Arc, Mutex};

    #[test]
    fn odd_chunk_boundaries() {
        let mut s = PcmSplitter::default();
        assert_eq!(s.push(&[1, 0, 2]), vec![1]);
        assert_eq!(s.push(&[]), Vec::<i16>::new());
        assert_eq!(s.push(&[0]), vec![2]);
        assert_eq!(s.push(&[0xff, 0xff, 3, 0]), vec![-1, 3]);
    }

    #[tokio::test]
    async fn streams_pcm_as_it_arrives() {
        let seen = Arc::new(Mutex::new(serde_json::Value::Null));
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let release = Arc::new(Mutex::new(Some(release_rx)));
        let s2 = seen.clone();
        let app = Router::new().route(
            "/v1/audio/speech",
            post(move |Json(body): Json<serde_json::Value>| {
                *s2.lock().unwrap() = body;
                let rx = release.lock().unwrap().take().unwrap();
                // three bytes now (one sample and half), the rest only when released
                let first = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[10, 0, 20])) });
                let rest = futures::stream::once(async move {
                    rx.await.unwrap();
                    Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[0, 30, 0]))
                });
                let stream = futures::StreamExt::chain(first, rest);
                async move { Body::from_stream(stream) }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });

        // a trailing /v1 in the configured URL is accepted too
        let tts = OpenAiTts::new(&format!("http://127.0.0.1:{port}/v1"), Some("sk-x"), "tts-1", "alloy").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(async move { tts.speak("Hello there.", tx).await });
        assert_eq!(rx.recv().await.unwrap(), Audio { rate: 24000, samples: vec![10] });
        release_tx.send(()).unwrap();
        assert_eq!(rx.recv().await.unwrap(), Audio { rate: 24000, samples: vec![20, 30] });
        task.await.unwrap().unwrap();
        assert_eq!(*seen.lock().unwrap(), json!({"model": "tts-1", "voice": "alloy", "input": "Hello there.", "response_format": "pcm"}));
    }
}
