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
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz_session;
mod handle;
mod media_path;
mod negotiation;
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

pub use codec::{check_browser_sdp, is_webrtc, offered_audio, plain_sdp, same_browser_session, DeviceCodec, G711, OPUS_OFFER_PT};
pub use handle::{str0m_direction, WebRtcBridge};
pub use video::{offered_video, reverse, video_section, DeviceVideo, VideoCodec, VideoFormat};
pub use video_path::{fir_packet, keyframe_asked, pli_packet};

/// Fuzz entry (fuzz/ `bridge_session`): the same kind of packet sequence fed
/// to a whole bridge core that answered a Chromium offer (latching, key
/// presses, the watchdog, str0m reading hostile datagrams on the browser
/// port). A target of its own because each input makes a str0m session,
/// which the media paths ([`fuzz_bridge`]) do not need. The browser passes
/// our ICE check first, so its datagrams reach str0m's DTLS and SRTP
/// (fuzz_session.rs); strangers' stop at the core.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_session(data: &[u8]) {
    let Some((&law, rest)) = data.split_first() else { return };
    if let Some(mut harness) = fuzz_session::Harness::new(law) {
        harness.feed(rest);
    }
}

/// Fuzz entry (fuzz/ `bridge_rtp`): what the bridge's media paths do with
/// packets from the device and the browser. The first byte picks the media
/// path; the rest is a sequence of `[kind, len, bytes…]` packets fed to the
/// media and video paths (every codec path, transcoding included).
#[cfg(feature = "fuzzing")]
pub fn fuzz_bridge(data: &[u8]) {
    use crate::media::rtp;
    use media_path::MediaPath;
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let law = if sel & 1 == 0 { G711::Pcmu } else { G711::Pcma };
    let mut path = match (sel >> 1) % 3 {
        0 => MediaPath::Passthrough(law),
        1 => MediaPath::Opus { device_pt: 96 + (sel >> 3) % 32, browser_pt: 111 },
        _ => match MediaPath::transcode(law, 111) {
            Ok(p) => p,
            Err(_) => return,
        },
    };
    let mut frames = Vec::new();
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 4000).into();
    let mut video = video_path::VideoPath::new(vec![(96, 102), (97, 104)], Some((peer, peer)), None);
    let now = std::time::Instant::now();
    let mut out = Vec::new();
    while let [kind, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        frames.clear();
        match kind % 5 {
            // RTP from the device toward the browser
            0 => {
                if let Some(rtp) = rtp::parse(packet) {
                    path.device_to_browser(rtp.payload_type, rtp.timestamp, rtp.payload, &mut frames);
                    video.on_device_rtp(peer, rtp.ssrc, now);
                    if let Some(pt) = video.browser_pt(rtp.payload_type) {
                        let _ = video.device_pt(pt);
                    }
                }
            }
            // media from the browser (as str0m hands it: pt, time, payload)
            1 => {
                let (pt, numer, clock) = match packet {
                    [pt, a, b, c, d, e, f, g, h, k0, k1, ..] => (
                        *pt & 0x7f,
                        u64::from_be_bytes([*a, *b, *c, *d, *e, *f, *g, *h]),
                        u32::from_be_bytes([0, 0, *k0, *k1]),
                    ),
                    _ => continue,
                };
                path.browser_to_device(pt, numer, clock, &packet[11..], &mut frames);
            }
            // RTCP from either side
            2 => {
                let _ = video_path::keyframe_asked(packet);
                video.on_device_rtcp(peer, now);
            }
            // video toward the device
            3 => {
                if let Some(rtp) = rtp::parse(packet) {
                    out.clear();
                    video.write_for_device(rtp.payload_type, rtp.timestamp, rtp.marker, rtp.payload, &mut out);
                }
            }
            _ => {
                let _ = video.keyframe_request(packet.first().is_some_and(|b| b & 1 == 1));
            }
        }
    }
}
