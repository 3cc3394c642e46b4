//! The built-in AI voice agent: a caller talks to their home.
//!
//! `backends` are the services it uses (STT, brain, TTS, Home Assistant).
pub mod backends;
