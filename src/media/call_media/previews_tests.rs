//! A door preview for several browsers through the fan-out, against str0m
//! peers standing in for the browsers (media is covered end to end with
//! Chromium by tests/integration/test_panel_preview_group.py): one bridge
//! each, the cap, the caller's one 183, the answer taking one bridge, a
//! camera doorbell's video taken once for all and then by the bridge that
//! answers, and hostile input.
use super::super::{CallMedia, MAX_PREVIEWS};
use crate::media::sdp::Sdp;
use crate::media::{Leg, MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc, RtcConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CALLER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// A camera doorbell: VP8 as its second stream.
const VIDEO_CALLER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\nm=video 4002 RTP/AVP 100 102\r\na=rtpmap:100 VP8/90000\r\na=rtpmap:102 H265/90000\r\na=sendrecv\r\n";

async fn ringing(first: u16) -> CallMedia {
    ringing_with(first, CALLER).await
}

async fn ringing_with(first: u16, offer: &str) -> CallMedia {
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first, first + 199), timeout: Duration::from_secs(5) }).unwrap();
    let mut media = CallMedia::new(engine, 4);
    media.set_signalling_host(Leg::A, LOCAL);
    media.translate(Leg::A, offer.as_bytes()).await.expect("the desk phones' plain offer");
    media
}

/// A browser answering `offer` (its early answer and its 200 are the same SDP).
fn browser_answer(offer: &[u8], port: u16) -> (Rtc, Vec<u8>) {
    let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(SocketAddr::new(LOCAL, port), "udp").unwrap());
    let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(std::str::from_utf8(offer).unwrap()).unwrap()).unwrap();
    (rtc, answer.to_sdp_string().into_bytes())
}

/// A browser with VP8 too, answering `offer`.
fn video_browser_answer(offer: &[u8], port: u16) -> (Rtc, Vec<u8>) {
    let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).enable_vp8(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(SocketAddr::new(LOCAL, port), "udp").unwrap());
    let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(std::str::from_utf8(offer).unwrap()).unwrap()).unwrap();
    (rtc, answer.to_sdp_string().into_bytes())
}

fn version(sdp: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(sdp);
    let o = text.lines().find(|l| l.starts_with("o=")).expect("an o= line");
    o.split(' ').nth(2).unwrap().parse().unwrap()
}

#[tokio::test]
async fn each_ringing_browser_previews_on_its_own_bridge_and_the_one_that_answers_takes_the_caller() {
    let mut media = ringing(37000).await;
    let offer0 = media.preview_offer(0).await.unwrap();
    let offer1 = media.preview_offer(1).await.unwrap();
    assert!(media.has_previews());
    let ufrag = |o: &[u8]| String::from_utf8_lossy(o).lines().find(|l| l.starts_with("a=ice-ufrag")).map(str::to_string);
    assert!(ufrag(&offer0).is_some() && ufrag(&offer0) != ufrag(&offer1), "one bridge per browser");
    let (_rtc0, answer0) = browser_answer(&offer0, 37290);
    let (_rtc1, answer1) = browser_answer(&offer1, 37291);

    // Hostile or out of turn: no such browser, SDP that is no WebRTC, bytes that are no text.
    assert!(media.preview_early(7, &answer0).await.is_err(), "a fork that was never offered a preview");
    assert!(media.preview_early(1, CALLER.as_bytes()).await.is_err(), "plain SDP from a browser");
    assert!(media.preview_early(1, &[0xff, 0xfe]).await.is_err());

    // The first early answer makes the caller's one 183: the fan-out's port, receive only.
    let to_caller = media.preview_early(0, &answer0).await.unwrap().expect("the caller's 183");
    let sdp = Sdp::parse(std::str::from_utf8(&to_caller).unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&to_caller).contains("a=recvonly"), "{}", String::from_utf8_lossy(&to_caller));
    let fan_out = sdp.media_endpoint(0).unwrap().0;
    assert_eq!(media.preview_early(1, &answer1).await.unwrap(), None, "the second browser joins without a new 183");

    // Browser 0 cannot answer with browser 1's session.
    let mut hostile = ringing(37400).await;
    let h0 = hostile.preview_offer(0).await.unwrap();
    let h1 = hostile.preview_offer(1).await.unwrap();
    let (_r0, a0) = browser_answer(&h0, 37590);
    let (_r1, a1) = browser_answer(&h1, 37591);
    hostile.preview_early(0, &a0).await.unwrap();
    hostile.preview_early(1, &a1).await.unwrap();
    assert!(hostile.preview_answered(0, &a1).await.is_err(), "another browser's session took over a bridge");

    // Browser 1 answers: its bridge is the callee leg, named in the caller's 200 with a later o= version.
    let to_caller_200 = media.preview_answered(1, &answer1).await.unwrap();
    let answered = Sdp::parse(std::str::from_utf8(&to_caller_200).unwrap()).unwrap();
    assert!(version(&to_caller_200) > version(&to_caller), "o= {} after the 183's {}", version(&to_caller_200), version(&to_caller));
    assert_ne!(answered.media_endpoint(0).unwrap().0, fan_out, "the caller now talks to the bridge, not the fan-out");
    assert!(!media.has_previews(), "the fan-out and the other bridge are gone");
    assert!(media.is_browser(Leg::B));
    assert!(media.preview_answered(0, &answer0).await.is_err(), "no second answer from a preview");
}

#[tokio::test]
async fn previews_are_capped_per_call_and_a_place_comes_back_when_a_browser_stops_ringing() {
    let mut media = ringing(37200).await;
    for id in 0..MAX_PREVIEWS {
        media.preview_offer(id).await.unwrap_or_else(|e| panic!("preview {id}: {e}"));
    }
    let full = media.preview_offer(MAX_PREVIEWS).await.unwrap_err();
    assert!(full.to_string().contains("8 per call"), "{full}");
    media.preview_gone(3);
    media.preview_offer(MAX_PREVIEWS).await.expect("a place freed by a browser that stopped ringing");
    // A desk phone answers: the previews end, and the caller's next SDP goes on from the 183's version.
    media.end_previews();
    assert!(!media.has_previews());
}

#[tokio::test]
async fn a_camera_doorbells_video_is_taken_once_for_every_previewing_browser_and_the_one_that_answers_takes_it() {
    let mut media = ringing_with(37600, VIDEO_CALLER).await;
    let offer0 = media.preview_offer(0).await.unwrap();
    let offer1 = media.preview_offer(1).await.unwrap();
    for offer in [&offer0, &offer1] {
        let text = String::from_utf8_lossy(offer);
        assert!(text.contains("m=video ") && text.contains("VP8/90000"), "each browser is offered the door's video: {text}");
    }
    let (_rtc0, answer0) = video_browser_answer(&offer0, 37790);
    let (_rtc1, answer1) = video_browser_answer(&offer1, 37791);
    let to_caller = media.preview_early(0, &answer0).await.unwrap().expect("the caller's 183");
    assert_eq!(media.preview_early(1, &answer1).await.unwrap(), None);
    let text = String::from_utf8_lossy(&to_caller).to_string();
    let sdp = Sdp::parse(&text).unwrap();
    let (audio, video) = (sdp.media_endpoint(0).unwrap().0, sdp.media_endpoint(1).unwrap().0);
    assert!(video.port() != 0 && video.port() != audio.port(), "{text}");
    assert!(text.contains("m=video ") && text.contains(" RTP/AVP 100\r\n") && !text.contains("H265"), "the one format carried: {text}");
    let video_section = &text[text.find("m=video").unwrap()..];
    assert!(video_section.contains("a=recvonly"), "the door's video is taken receive only: {text}");

    // Browser 0 answers: the caller's 200 names its bridge for audio and video.
    let to_caller_200 = media.preview_answered(0, &answer0).await.unwrap();
    let text = String::from_utf8_lossy(&to_caller_200).to_string();
    let answered = Sdp::parse(&text).unwrap();
    let bridge_video = answered.media_endpoint(1).expect("video in the 200").0;
    assert!(bridge_video.port() != 0 && bridge_video != video, "the caller's video now goes to the bridge: {text}");
    assert!(text.contains("VP8/90000") && version(&to_caller_200) > version(&to_caller), "{text}");
}

#[tokio::test]
async fn a_video_format_no_bridge_carries_is_refused_and_the_preview_is_audio_only() {
    let h265_only = VIDEO_CALLER.replace("m=video 4002 RTP/AVP 100 102", "m=video 4002 RTP/AVP 102").replace("a=rtpmap:100 VP8/90000\r\n", "");
    let mut media = ringing_with(37800, &h265_only).await;
    let offer0 = media.preview_offer(0).await.unwrap();
    let text = String::from_utf8_lossy(&offer0).to_string();
    assert!(!text.contains("VP8") && !text.contains("H265"), "no video offered to the browser: {text}");
    let (_rtc0, answer0) = video_browser_answer(&offer0, 37990);
    let to_caller = media.preview_early(0, &answer0).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&to_caller).contains("m=video 0 "), "{}", String::from_utf8_lossy(&to_caller));
    // The browser answers: the door's 200 still has its two streams, the video refused (RFC 3264 §6).
    let to_caller_200 = media.preview_answered(0, &answer0).await.unwrap();
    let text = String::from_utf8_lossy(&to_caller_200).to_string();
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(sdp.media_count(), 2, "{text}");
    assert!(sdp.media_endpoint(0).unwrap().0.port() != 0 && text.ends_with("m=video 0 RTP/AVP 102\r\n"), "{text}");
}

#[tokio::test]
async fn every_stream_a_door_offers_has_its_place_in_the_answer_those_not_taken_refused() {
    // Audio, then an application stream, then VP8 video: no bridge takes the last two where they are.
    let offer = format!("{CALLER}m=application 4004 UDP/BFCP *\r\nm=video 4006 RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\n");
    let mut media = ringing_with(46200, &offer).await;
    let offer0 = media.preview_offer(0).await.unwrap();
    let (_rtc0, answer0) = video_browser_answer(&offer0, 46390);
    media.preview_early(0, &answer0).await.unwrap().expect("the caller's 183");
    let to_caller_200 = media.preview_answered(0, &answer0).await.unwrap();
    let text = String::from_utf8_lossy(&to_caller_200).to_string();
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(sdp.media_count(), 3, "{text}");
    assert!(sdp.media_endpoint(0).unwrap().0.port() != 0, "{text}");
    assert!(text.contains("m=application 0 UDP/BFCP *\r\nm=video 0 RTP/AVP 100\r\n"), "{text}");
}
