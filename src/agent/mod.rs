//! The built-in AI voice agent: a caller talks to their home.
//!
//! Sans-IO parts: `turn` (where the caller's turns start and end),
//! `sentences` (streamed reply → sentences to speak), `session` (turn-taking,
//! barge-in, failures, limits), `line` (the RTP stream). `runner` drives one
//! call around them; `jobs` are its backend work; `backends` are the services
//! (STT, brain, TTS, Home Assistant); `tools` what the LLM may do. The SIP
//! side that answers calls for the agent is `sip::agent_leg`: nothing here
//! sees a SIP type.
pub mod backends;
mod call_core;
#[cfg(test)]
mod call_core_tests;
mod early_stt;
mod jobs;
pub mod line;
pub mod metrics;
mod prompts;
pub mod runner;
pub mod sentences;
pub mod service;
pub mod session;
mod speech;
pub mod tools;
pub mod turn;

pub use runner::{AgentCall, CallActions};
pub use service::Agent;
