//! A browser listener's negotiation through its bridge, against a str0m
//! peer standing in for the browser (media is covered end to end with
//! Chromium by tests/integration/test_pickup_paging.py), and hostile input.
use super::super::{listener_answer, listener_offer, listener_target, page_codecs, PageMedia};
use crate::media::sdp::OriginKeeper;
use crate::media::{MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::Direction;
use str0m::{Candidate, RtcConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CALLER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

#[tokio::test]
async fn a_browser_listener_is_offered_webrtc_and_its_answer_names_its_bridge() {
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (39140, 39179), timeout: Duration::from_secs(5) }).unwrap();
    let mut media = PageMedia::new(engine, 2, vec![LOCAL]).unwrap();
    let codecs = page_codecs(CALLER.as_bytes()).unwrap();
    let port = media.add_listener(0).unwrap();
    let mut origin = OriginKeeper::new("ha-pbx", 9);
    let plain = listener_offer(CALLER.as_bytes(), &codecs, LOCAL, port, &mut origin).unwrap();
    // Hostile or out of turn: a listener never added, one that is no browser, SDP that is no WebRTC.
    assert!(media.browser_offer(5, &plain, 9).await.is_err());
    assert!(media.from_browser(0, b"v=0\r\n").await.is_err(), "listener 0 is not a browser yet");
    let offer = String::from_utf8(media.browser_offer(0, &plain, 9).await.unwrap()).unwrap();
    assert!(media.is_browser(0) && !media.is_browser(1));
    assert!(crate::media::webrtc::is_webrtc(&offer) && offer.contains("PCMU/8000") && offer.contains("a=ice-lite"), "{offer}");
    assert!(!offer.contains(&format!(" {port} ")), "the browser is offered its bridge, not the page's port: {offer}");
    assert!(media.from_browser(0, CALLER.as_bytes()).await.is_err(), "plain SDP from a browser leg");
    assert!(media.from_browser(0, &[0xff, 0xfe]).await.is_err());

    // The browser answers: the page sends to the bridge's plain port.
    let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(SocketAddr::new(LOCAL, 39199), "udp").unwrap());
    let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&offer).unwrap()).unwrap();
    let mid = answer.media_lines[0].mid();
    let read = media.from_browser(0, answer.to_sdp_string().as_bytes()).await.unwrap();
    let bridge = listener_target(&read).expect("the bridge takes the page's audio");
    assert_eq!(bridge.ip(), LOCAL);
    assert_ne!(bridge.port(), port, "the page sends to the bridge, not to itself");

    // It holds (re-offer sendonly): read through the bridge, the page pauses it, and the
    // browser gets an answer from its own session.
    let mut change = rtc.sdp_api();
    change.set_direction(mid, Direction::SendOnly);
    let (hold, pending) = change.apply().unwrap();
    let plain_hold = media.from_browser(0, hold.to_sdp_string().as_bytes()).await.unwrap();
    assert_eq!(listener_target(&plain_hold), None, "a holding browser takes no audio");
    let ours = listener_answer(&plain_hold, &codecs, LOCAL, port, &mut origin).unwrap();
    assert!(ours.contains("a=recvonly"), "{ours}");
    let to_browser = String::from_utf8(media.to_browser(0, &ours).await.unwrap()).unwrap();
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&to_browser).unwrap()).unwrap();
    assert!(to_browser.contains("a=recvonly"), "{to_browser}");

    // Removed from the page: its bridge goes.
    media.remove_listener(0);
    assert!(!media.is_browser(0));
    assert!(media.to_browser(0, &ours).await.is_err());
}
