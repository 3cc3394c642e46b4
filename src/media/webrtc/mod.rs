//! WebRTC endpoint for a browser leg (the SIP Core card): ICE-lite with one
//! host candidate, DTLS-SRTP, rtcp-mux and BUNDLE on a single UDP port, by
//! str0m (sans-IO). The other side of the bridge is plain RTP toward the SIP
//! device, so a call between a browser and a doorbell needs one bridge per
//! audio stream instead of a relay. G.711 passes through unchanged, and so
//! does Opus from a device that has no G.711; a browser without the
//! device's law gets Opus, transcoded (transcode.rs).
//!
//! No SIP types here: the call side hands in SDP text and addresses.

mod codec;
mod core;
mod handle;
mod media_path;
mod negotiation;
pub mod rtp;
mod task;
mod transcode;
mod video;
mod video_path;

#[cfg(test)]
mod bridge_tests;
#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod loopback_tests;
#[cfg(test)]
mod video_loopback_tests;

pub use codec::{check_browser_sdp, is_webrtc, offered_audio, plain_sdp, DeviceCodec, G711, OPUS_OFFER_PT};
pub use handle::{str0m_direction, WebRtcBridge};
pub use video::{offered_video, reverse, video_section, DeviceVideo, VideoCodec, VideoFormat};
