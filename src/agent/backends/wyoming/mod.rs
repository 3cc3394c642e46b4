//! The Wyoming protocol (Home Assistant's voice add-ons): framing, and the
//! STT and TTS clients. One TCP connection per request, as HA does.
pub mod addr;
pub mod conn;
pub mod frame;
pub mod stt;
pub mod tts;

pub use addr::{parse_tcp_url, TcpAddr};
pub use stt::WyomingStt;
pub use tts::WyomingTts;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod live_tests;
