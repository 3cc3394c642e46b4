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

/// Fuzz entry (fuzz/ `bridge_session`): the same kind of packet sequence fed
/// to a whole bridge core that answered a Chromium offer (latching, key
/// presses, the watchdog, str0m reading hostile datagrams on the browser
/// port). A target of its own because each input makes a str0m session
/// (about 1.3 ms, mostly str0m parsing the offer), which the media paths
/// ([`fuzz_bridge`]) do not need. The fuzzer cannot pass our ICE check, so
/// what it sends on the browser port besides STUN stops at the core's
/// stranger check (before it, a stranger's DTLS reached a panic in dimpl).
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_session(data: &[u8]) {
    use core::{BridgeCore, Input};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};
    const OFFER: &str = include_str!("testdata/chromium156_audio_video_offer.sdp");
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let mut now = Instant::now();
    let mut bridge = BridgeCore::new(([127, 0, 0, 1], 40000).into(), Duration::from_secs(5), now);
    let law = if sel & 1 == 0 { G711::Pcmu } else { G711::Pcma };
    if bridge.answer(now, OFFER, &[law.into()], Vec::new()).is_err() {
        return;
    }
    let device: SocketAddr = ([127, 0, 0, 1], 4000).into();
    let strangers: [SocketAddr; 2] = [([192, 0, 2, 66], 4000).into(), ([127, 0, 0, 1], 4002).into()];
    bridge.set_device_peer(now, device);
    bridge.set_device_video_peer(now, ([127, 0, 0, 1], 4010).into(), ([127, 0, 0, 1], 4011).into());
    bridge.set_device_telephone_event(now, Some((101, 8000)));
    bridge.set_device_host(Some(([10, 0, 0, 1]).into()));
    while let [kind, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        now += Duration::from_millis(u64::from(*kind >> 4) * 5);
        let source = match kind & 0x0c {
            0 => device,
            4 => strangers[0],
            8 => strangers[1],
            _ => ([10, 0, 0, 1], 5000).into(),
        };
        match kind % 4 {
            0 => bridge.handle_input(Input::DeviceAudio { at: now, source, packet }),
            1 => bridge.handle_input(Input::Browser { at: now, source, packet }),
            2 => bridge.handle_input(Input::DeviceVideoRtcp { at: now, source, packet }),
            _ => {
                if let Some(&digit) = packet.first() {
                    bridge.send_dtmf(now, digit as char);
                }
                bridge.handle_input(Input::Timeout(now));
            }
        }
        while bridge.poll_output().is_some() {}
        let _ = (bridge.poll_timeout(now), bridge.is_timed_out(now));
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
