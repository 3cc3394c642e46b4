//! Audio helpers shared by the media paths and the AI agent.
pub mod resample;
