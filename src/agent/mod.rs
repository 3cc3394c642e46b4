//! The built-in AI voice agent: a caller talks to their home.
//!
//! Sans-IO parts: `turn` (where the caller's turns start and end),
//! `sentences` (streamed reply → sentences to speak), `session` (turn-taking,
//! barge-in, failures, limits). `backends` are the services it uses (STT,
//! brain, TTS, Home Assistant).
pub mod backends;
pub mod sentences;
pub mod session;
pub mod turn;
