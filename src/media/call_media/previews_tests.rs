//! A door preview for several browsers through the fan-out, against str0m
//! peers standing in for the browsers (media is covered end to end with
//! Chromium by tests/integration/test_panel_preview_group.py): one bridge
//! each, the cap, the caller's one 183, the answer taking one bridge, and
//! hostile input.
use super::super::{CallMedia, MAX_PREVIEWS};
use crate::media::sdp::Sdp;
use crate::media::{Leg, MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc, RtcConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CALLER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

async fn ringing(first: u16) -> CallMedia {
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first, first + 199), timeout: Duration::from_secs(5) }).unwrap();
    let mut media = CallMedia::new(engine, 4);
    media.set_signalling_host(Leg::A, LOCAL);
    media.translate(Leg::A, CALLER.as_bytes()).await.expect("the desk phones' plain offer");
    media
}

/// A browser answering `offer` (its early answer and its 200 are the same SDP).
fn browser_answer(offer: &[u8], port: u16) -> (Rtc, Vec<u8>) {
    let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).build(Instant::now());
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
