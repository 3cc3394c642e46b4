//! Audio samples for the parts of the media plane that hear and speak
//! (the AI agent): G.711 to and from linear PCM, and resampling.
pub mod g711;
pub mod resample;
