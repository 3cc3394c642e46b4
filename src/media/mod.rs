//! Media plane: SDP rewriting and the RTP relay. No SIP types here: it is
//! driven by socket addresses and SDP text, so the control plane can change
//! without touching packet handling.

pub mod audio;
pub mod call_media;
pub mod page;
pub mod dtmf;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod webrtc;

#[cfg(test)]
mod ports_tests;

pub use relay::{FlowStats, Leg, MediaConfig, MediaEngine, Relay, RelayStats};
