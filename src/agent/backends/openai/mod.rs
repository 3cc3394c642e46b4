//! OpenAI-compatible HTTP services (OpenAI, LocalAI, Ollama, vLLM, ...):
//! transcription, speech, and chat completions as the brain.
pub mod brain;
pub mod delta;
pub mod multipart;
pub mod sse;
pub mod stt;
pub mod tts;
pub mod wav;

pub use brain::{default_system_prompt, OpenAiBrain};
pub use stt::OpenAiStt;
pub use tts::OpenAiTts;

#[cfg(test)]
mod brain_tests;

/// The configured URL is the server's root; a trailing `/v1` (as many
/// docs give the base URL) is dropped so paths are not doubled.
pub fn api_base(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    u.strip_suffix("/v1").unwrap_or(u).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_base_drops_v1() {
        assert_eq!(super::api_base("https://api.openai.com/v1/"), "https://api.openai.com");
        assert_eq!(super::api_base("http://127.0.0.1:11434"), "http://127.0.0.1:11434");
        assert_eq!(super::api_base("http://h/v1x"), "http://h/v1x");
    }
}
