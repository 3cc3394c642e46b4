//! The bridge's negotiation against real browser SDP (Chromium's offer with
//! audio and video) and hostile SDP; media is covered end to end by
//! tests/integration/test_webrtc.py with a real browser.
use super::{check_browser_sdp, G711};
use crate::media::{MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const CHROMIUM_OFFER: &str = include_str!("testdata/chromium156_audio_video_offer.sdp");
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn engine(first: u16) -> MediaEngine {
    MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first, first + 15), timeout: Duration::from_secs(5) }).unwrap()
}

/// Chromium's offer with a second video section listing every dynamic
/// payload type: more than 100 payload types in all, as Chrome sends with
/// video and many H.264 profiles.
fn offer_with_many_payload_types() -> String {
    let video_start = CHROMIUM_OFFER.find("m=video").unwrap();
    let template: String = CHROMIUM_OFFER[video_start..]
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=rtpmap") && !l.starts_with("a=fmtp") && !l.starts_with("a=rtcp-fb"))
        .collect();
    let pts: Vec<u8> = (35..=63).chain(96..=127).collect();
    let list: Vec<String> = pts.iter().map(u8::to_string).collect();
    let first_line_end = template.find("\r\n").unwrap();
    let mut offer = CHROMIUM_OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2 3");
    for mid in ["2", "3"] {
        let mut video = template.replace("a=mid:1", &format!("a=mid:{mid}"));
        video.replace_range(..first_line_end, &format!("m=video 9 UDP/TLS/RTP/SAVPF {}", list.join(" ")));
        let mut codecs = String::new();
        for pt in &pts {
            codecs.push_str(&format!("a=rtpmap:{pt} H264/90000\r\na=rtcp-fb:{pt} nack pli\r\na=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e0{pt:02x}\r\n"));
        }
        offer.push_str(&video.replacen("a=rtcp-mux\r\n", &format!("a=rtcp-mux\r\n{codecs}"), 1));
    }
    offer
}

#[test]
fn chromium_offer_parses() {
    assert!(super::is_webrtc(CHROMIUM_OFFER));
    check_browser_sdp(CHROMIUM_OFFER).unwrap();
}

#[test]
fn offers_with_over_a_hundred_payload_types_parse() {
    let offer = offer_with_many_payload_types();
    let count: usize = offer.lines().filter(|l| l.starts_with("m=")).map(|l| l.split(' ').count() - 3).sum();
    assert!(count > 100, "{count} payload types");
    check_browser_sdp(&offer).unwrap();
}

#[test]
fn broken_browser_sdp_is_refused() {
    for bad in ["", "garbage", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:x\r\na=fingerprint:sha-256 zz\r\n"] {
        assert!(check_browser_sdp(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn answer_to_chromium_is_ice_lite_audio_only_with_the_chosen_law() {
    let engine = engine(39700);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    let (answer, codec) = bridge.answer_browser(&offer_with_many_payload_types(), &[G711::Pcma.into()], &[]).await.unwrap();
    assert_eq!(codec, G711::Pcma.into());
    let audio = answer.split("m=").find(|m| m.starts_with("audio")).unwrap();
    assert!(audio.starts_with("audio ") && audio.contains(" 8"), "{answer}");
    assert!(!audio.contains("PCMU") && !audio.contains("opus"), "only the device's law: {answer}");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "passive to the browser's actpass: {answer}");
    assert!(answer.contains(&format!("127.0.0.1 {}", bridge.browser_port())), "host candidate: {answer}");
    for video in answer.split("m=").filter(|m| m.starts_with("video")) {
        assert!(video.starts_with("video 0 "), "video is refused: {answer}");
    }
    // A 183 then a 200: the same answer.
    let (again, _) = bridge.answer_browser("ignored", &[G711::Pcmu.into()], &[]).await.unwrap();
    assert_eq!(again, answer);
}

#[tokio::test]
async fn a_broken_offer_leaves_the_bridge_usable() {
    let engine = engine(39740);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    assert!(bridge.answer_browser("v=0\r\nnonsense", &[G711::Pcmu.into()], &[]).await.is_err());
    let (_, codec) = bridge.answer_browser(CHROMIUM_OFFER, &[G711::Pcmu.into()], &[]).await.unwrap();
    assert_eq!(codec, G711::Pcmu.into());
}

#[tokio::test]
async fn our_offer_to_a_browser_is_ice_lite_dtls_with_the_devices_laws() {
    let engine = engine(39780);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    let offer = bridge.offer_browser(&[G711::Pcmu.into(), G711::Pcma.into()], None).await.unwrap();
    check_browser_sdp(&offer).unwrap();
    assert!(super::is_webrtc(&offer), "{offer}");
    assert!(offer.contains("a=setup:actpass") && offer.contains("a=ice-lite") && offer.contains("a=rtcp-mux"), "{offer}");
    // The device's laws alone: no Opus, so the browser sends G.711 untouched.
    assert!(offer.contains("PCMU/8000") && offer.contains("PCMA/8000") && !offer.contains("opus"), "{offer}");
    let audio_line = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(audio_line.ends_with(" 0 8"), "{audio_line}");
    assert!(bridge.browser_answered("garbage").await.is_err());
}


#[tokio::test]
async fn a_browser_without_the_devices_law_is_answered_with_opus() {
    let engine = engine(39860);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    let opus_only = CHROMIUM_OFFER
        .replace("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 13 110 126")
        .replace("a=rtpmap:0 PCMU/8000\r\n", "")
        .replace("a=rtpmap:8 PCMA/8000\r\n", "");
    let (answer, law) = bridge.answer_browser(&opus_only, &[G711::Pcmu.into()], &[]).await.unwrap();
    assert_eq!(law, G711::Pcmu.into(), "the device keeps its law");
    let audio = answer.split("m=").find(|m| m.starts_with("audio")).unwrap();
    assert!(audio.contains("opus/48000") && !audio.contains("PCMU"), "{answer}");
    // With the law on offer, G.711 passes through and Opus is not answered.
    let other = engine.create_webrtc_bridge().await.unwrap();
    let (answer, _) = other.answer_browser(CHROMIUM_OFFER, &[G711::Pcmu.into()], &[]).await.unwrap();
    let audio = answer.split("m=").find(|m| m.starts_with("audio")).unwrap();
    assert!(audio.contains("PCMU") && !audio.contains("opus"), "{answer}");
}

#[tokio::test]
async fn a_device_with_only_opus_gets_the_browsers_opus_passed_through() {
    let engine = engine(39980);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    let (answer, codec) = bridge.answer_browser(CHROMIUM_OFFER, &[super::DeviceCodec::Opus(96)], &[]).await.unwrap();
    assert_eq!(codec, super::DeviceCodec::Opus(96), "passed through, not transcoded");
    let audio = answer.split("m=").find(|m| m.starts_with("audio")).unwrap();
    assert!(audio.contains("opus/48000") && !audio.contains("PCMU"), "{answer}");
    // The device offers: the browser is offered Opus alone.
    let other = engine.create_webrtc_bridge().await.unwrap();
    let offer = other.offer_browser(&[super::DeviceCodec::Opus(96)], None).await.unwrap();
    let audio = offer.split("m=").find(|m| m.starts_with("audio")).unwrap();
    assert!(audio.contains("opus/48000") && !audio.contains("PCMU") && !audio.contains("PCMA"), "{offer}");
}

#[tokio::test]
async fn a_browser_offering_h264_gets_the_devices_profile_under_its_own_number() {
    let engine = engine(39960);
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    // The device answered our offer (the browser's formats, the browser's numbers)
    // with H.264 in packetization mode 1, constrained baseline 3.1: Chromium's 108.
    let h264 = super::VideoCodec { device_pt: 108, format: super::VideoFormat::H264, fmtp: Some("packetization-mode=1;profile-level-id=42e01f".into()) };
    let (answer, _) = bridge.answer_browser(CHROMIUM_OFFER, &[G711::Pcmu.into()], &[h264]).await.unwrap();
    let video = answer.split("m=").find(|m| m.starts_with("video")).unwrap();
    assert!(video.starts_with("video 9 UDP/TLS/RTP/SAVPF 108"), "accepted, under the browser's number: {answer}");
    assert!(video.contains("a=rtpmap:108 H264/90000"), "{answer}");
    let fmtp = video.lines().find(|l| l.starts_with("a=fmtp:108 ")).unwrap();
    assert!(fmtp.contains("packetization-mode=1") && fmtp.contains("profile-level-id=42e01f"), "{fmtp}");
    assert!(!video.contains("VP8") && !video.contains("a=rtpmap:114 "), "only the device's format: {answer}");
}
