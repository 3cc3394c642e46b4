//! ha-pbx: a PBX for Home Assistant.
//!
//! Control plane (`sip`) and media plane (`media`) are kept apart: `media` never
//! sees a SIP type, it is driven by plain addresses and SDP text.
pub mod addon;
pub mod agent;
pub mod app;
pub mod config;
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod media;
pub mod mqtt;
pub mod phone_settings;
pub mod sip;
pub mod storage;
pub mod trunk;
