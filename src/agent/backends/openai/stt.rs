//! OpenAI-compatible speech-to-text: `POST {url}/v1/audio/transcriptions`,
//! multipart with a WAV of the turn, answer `{"text": ...}`.
use super::multipart::Multipart;
use super::wav::wav_bytes;
use crate::agent::backends::http::{read_body, HttpClient, MAX_JSON};
use crate::agent::backends::{Audio, BackendError, SpeechToText};
use async_trait::async_trait;
use hyper::http::Method;

const SERVICE: &str = "OpenAI STT";

#[derive(Debug, Clone)]
pub struct OpenAiStt {
    http: HttpClient,
    model: String,
}

impl OpenAiStt {
    pub fn new(url: &str, api_key: Option<&str>, model: &str) -> Result<OpenAiStt, String> {
        Ok(OpenAiStt { http: HttpClient::new(SERVICE, &super::api_base(url), api_key)?, model: model.to_string() })
    }
}

/// ISO-639-1, as the API wants it: `en-US` → `en`.
pub fn iso639(language: &str) -> String {
    language.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase()
}

#[async_trait]
impl SpeechToText for OpenAiStt {
    async fn transcribe(&self, audio: Audio, language: &str) -> Result<String, BackendError> {
        if audio.samples.is_empty() {
            return Ok(String::new());
        }
        let mut form = Multipart::new()
            .file("file", "turn.wav", "audio/wav", &wav_bytes(&audio.samples, audio.rate))
            .text("model", &self.model)
            .text("response_format", "json");
        let lang = iso639(language);
        if !lang.is_empty() {
            form = form.text("language", &lang);
        }
        let (ct, body) = form.finish();
        let req = self.http.request(Method::POST, "/v1/audio/transcriptions", Some(&ct), body.into())?;
        let resp = self.http.send(req).await?;
        let bytes = read_body(SERVICE, resp, MAX_JSON).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| self.http.protocol(format!("answer is not JSON: {e}")))?;
        let text = v["text"].as_str().ok_or_else(|| self.http.protocol("answer has no `text`".into()))?;
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use axum::Router;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn uploads_a_wav_form_and_reads_the_text() {
        let seen: Arc<Mutex<(String, Vec<u8>)>> = Arc::default();
        let s2 = seen.clone();
        let app = Router::new().route(
            "/v1/audio/transcriptions",
            post(move |h: HeaderMap, body: bytes::Bytes| async move {
                let ct = h.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                *s2.lock().unwrap() = (ct, body.to_vec());
                "{\"text\": \" Is the garage closed? \"}"
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let stt = OpenAiStt::new(&format!("http://127.0.0.1:{port}"), None, "whisper-1").unwrap();
        let text = stt.transcribe(Audio { rate: 8000, samples: vec![5; 800] }, "en-GB").await.unwrap();
        assert_eq!(text, "Is the garage closed?");

        let (ct, body) = seen.lock().unwrap().clone();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").expect("multipart");
        let body_text = String::from_utf8_lossy(&body);
        assert!(body_text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"), "{body_text}");
        assert!(body_text.contains("name=\"language\"\r\n\r\nen\r\n"));
        assert!(body_text.ends_with(&format!("--{boundary}--\r\n")));
        // the WAV: its header says 8 kHz and 800 samples follow
        let riff = body.windows(4).position(|w| w == b"RIFF").unwrap();
        let wav = &body[riff..riff + 44 + 1600];
        assert_eq!(wav, wav_bytes(&[5; 800], 8000).as_slice());
    }

    #[test]
    fn languages() {
        assert_eq!(iso639("en-US"), "en");
        assert_eq!(iso639("de"), "de");
        assert_eq!(iso639("pt_BR"), "pt");
        assert_eq!(iso639(""), "");
    }
}
