use std::net::SocketAddr;

use super::*;

fn sdp(text: &str) -> Sdp {
    Sdp::parse(text).unwrap()
}

const TWO_STREAMS: &str = "v=0\r\n\
o=- 1 1 IN IP4 10.0.0.5\r\n\
s=call\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 4000 RTP/AVP 9 0 96 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1; stereo=0\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:4005\r\n\
a=rtcp-mux\r\n\
m=video 5000 RTP/AVP 97\r\n\
c=IN IP6 2001:db8::7\r\n\
a=rtpmap:97 H264/90000\r\n\
a=rtcp:5003 IN IP4 10.0.0.9\r\n\
a=inactive\r\n";

#[test]
fn reads_kind_port_proto_and_payload_types() {
    let s = sdp(TWO_STREAMS);
    let audio = s.media(0).unwrap();
    assert_eq!(audio.kind(), MediaKind::Audio);
    assert_eq!(audio.port(), 4000);
    assert_eq!(audio.proto(), "RTP/AVP");
    assert_eq!(audio.payload_types(), vec![9, 0, 96, 101]);
    assert_eq!(s.media(1).unwrap().kind(), MediaKind::Video);
    assert!(s.media(2).is_none());
    assert_eq!(s.media_port(7), 0);
}

#[test]
fn reads_rtpmap_and_fmtp_per_payload_type() {
    let s = sdp(TWO_STREAMS);
    let audio = s.media(0).unwrap();
    assert_eq!(audio.rtpmap(96), Some(RtpMap { encoding: "opus", clock_rate: 48000, channels: Some(2) }));
    assert_eq!(audio.rtpmap(9).unwrap().channels, None);
    assert_eq!(audio.rtpmap(0), None, "static type without rtpmap");
    assert_eq!(audio.fmtp(96), Some("useinbandfec=1; stereo=0"));
    assert_eq!(audio.fmtp(101), None);
    assert_eq!(s.telephone_event_pt(), Some(101));
}

#[test]
fn connection_falls_back_to_session_level() {
    let s = sdp(TWO_STREAMS);
    assert_eq!(s.media(0).unwrap().connection_addr(), Some("10.0.0.5".parse().unwrap()));
    assert_eq!(s.media(1).unwrap().connection_addr(), Some("2001:db8::7".parse().unwrap()));
}

#[test]
fn rtcp_attribute_with_and_without_address() {
    let s = sdp(TWO_STREAMS);
    assert_eq!(s.media(0).unwrap().rtcp(), Some(RtcpAttr { port: 4005, addr: None }));
    assert_eq!(s.media(1).unwrap().rtcp(), Some(RtcpAttr { port: 5003, addr: Some("10.0.0.9".parse().unwrap()) }));
    assert!(s.media(0).unwrap().rtcp_mux());
    assert!(!s.media(1).unwrap().rtcp_mux());
}

#[test]
fn media_endpoint_resolves_connection_and_rtcp() {
    let s = sdp(TWO_STREAMS);
    let a: SocketAddr = "10.0.0.5:4000".parse().unwrap();
    assert_eq!(s.media_endpoint(0), Some((a, Some("10.0.0.5:4005".parse().unwrap()))));
    let v: SocketAddr = "[2001:db8::7]:5000".parse().unwrap();
    assert_eq!(s.media_endpoint(1), Some((v, Some("10.0.0.9:5003".parse().unwrap()))));
}

#[test]
fn media_endpoint_none_when_disabled_or_unresolvable() {
    let s = sdp("v=0\r\nc=IN IP4 pbx.example.org\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 0 RTP/AVP 0\r\n");
    assert_eq!(s.media_endpoint(0), None, "host names are not resolved");
    assert_eq!(s.media_endpoint(1), None);
    let no_rtcp = sdp("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert_eq!(no_rtcp.media_endpoint(0), Some(("1.2.3.4:4000".parse().unwrap(), None)));
}

#[test]
fn direction_media_level_overrides_session_level() {
    let s = sdp(TWO_STREAMS);
    assert_eq!(s.media(0).unwrap().direction(), Direction::SendRecv);
    assert_eq!(s.media(1).unwrap().direction(), Direction::Inactive);
    let session_only = sdp("v=0\r\na=sendonly\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert_eq!(session_only.media(0).unwrap().direction(), Direction::SendOnly);
    let none = sdp("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert_eq!(none.media(0).unwrap().direction(), Direction::SendRecv);
}

#[test]
fn hold_is_any_direction_but_sendrecv_or_a_zero_address() {
    let hold =
        |extra: &str, c: &str| sdp(&format!("v=0\r\nc=IN IP4 {c}\r\nm=audio 4000 RTP/AVP 0\r\n{extra}")).is_hold(0);
    assert!(!hold("", "1.2.3.4"));
    assert!(!hold("a=sendrecv\r\n", "1.2.3.4"));
    assert!(hold("a=sendonly\r\n", "1.2.3.4"));
    assert!(hold("a=recvonly\r\n", "1.2.3.4"));
    assert!(hold("a=inactive\r\n", "1.2.3.4"));
    assert!(hold("", "0.0.0.0"));
    assert!(!sdp("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\na=inactive\r\n").is_hold(0));
    assert!(!sdp(TWO_STREAMS).is_hold(5));
}

#[test]
fn handles_more_than_a_hundred_payload_types() {
    let pts: Vec<u8> = (0..128).collect();
    let list: Vec<String> = pts.iter().map(|p| p.to_string()).collect();
    let mut text = format!("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP {}\r\n", list.join(" "));
    for pt in 96..128 {
        text.push_str(&format!("a=rtpmap:{pt} dyn{pt}/8000\r\n"));
    }
    let s = sdp(&text);
    assert_eq!(s.media(0).unwrap().payload_types(), pts);
    assert_eq!(s.media(0).unwrap().rtpmap(127).unwrap().encoding, "dyn127");
    assert_eq!(s.to_string(), text);
}

#[test]
fn non_numeric_formats_are_listed_but_not_payload_types() {
    let s = sdp("v=0\r\nc=IN IP4 1.2.3.4\r\nm=image 4000 udptl t38\r\nm=audio 4002 RTP/AVP 0 200\r\n");
    assert_eq!(s.media(0).unwrap().kind(), MediaKind::Other);
    assert_eq!(s.media(0).unwrap().formats().collect::<Vec<_>>(), vec!["t38"]);
    assert!(s.media(0).unwrap().payload_types().is_empty());
    assert_eq!(s.media(1).unwrap().payload_types(), vec![0]);
}

#[test]
fn telephone_event_is_found_only_in_audio() {
    let s = sdp(
        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0 100\r\na=rtpmap:100 TELEPHONE-EVENT/8000\r\n",
    );
    assert_eq!(s.telephone_event_pt(), Some(100));
}
