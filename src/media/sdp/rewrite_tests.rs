use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const WEBRTC_ISH: &str = "v=0\r\n\
o=dev 77 3 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
m=audio 4000 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:4001 IN IP4 192.168.1.20\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:secretsecretsecret\r\n\
a=candidate:1 1 UDP 2130706431 192.168.1.20 4000 typ host\r\n\
a=candidate:2 1 UDP 1694498815 203.0.113.9 31000 typ srflx raddr 192.168.1.20 rport 4000\r\n\
a=end-of-candidates\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 97\r\n\
a=rtpmap:97 H264/90000\r\n\
a=rtcp:5001\r\n";

#[test]
fn rewrites_addresses_ports_rtcp_and_drops_ice() {
    let mut s = Sdp::parse(WEBRTC_ISH).unwrap();
    s.rewrite_for_relay(ip("203.0.113.1"), &[Some(20000), None]);
    let expected = "v=0\r\n\
o=dev 77 3 IN IP4 203.0.113.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:20001 IN IP4 203.0.113.1\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 97\r\n\
a=rtpmap:97 H264/90000\r\n";
    assert_eq!(s.to_string(), expected);
    assert_eq!(
        s.media_endpoint(0),
        Some(("203.0.113.1:20000".parse().unwrap(), Some("203.0.113.1:20001".parse().unwrap())))
    );
}

#[test]
fn writes_ip6_for_v6_and_ip4_for_mapped_addresses() {
    let mut s = Sdp::parse(WEBRTC_ISH).unwrap();
    s.rewrite_for_relay(ip("2001:db8::1"), &[Some(20000)]);
    let text = s.to_string();
    assert!(text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
    assert!(text.contains("a=rtcp:20001 IN IP6 2001:db8::1\r\n"));
    assert!(text.contains("o=dev 77 3 IN IP6 2001:db8::1\r\n"));
    s.rewrite_for_relay(ip("::ffff:10.1.2.3"), &[Some(20000)]);
    assert!(s.to_string().contains("c=IN IP4 10.1.2.3\r\n"));
}

#[test]
fn missing_port_entries_disable_streams() {
    let mut s = Sdp::parse(WEBRTC_ISH).unwrap();
    s.rewrite_for_relay(ip("10.0.0.1"), &[]);
    assert_eq!(s.media_port(0), 0);
    assert_eq!(s.media(0).unwrap().rtcp(), None, "a disabled stream advertises no RTCP port");
}

#[test]
fn media_level_connection_is_rewritten_and_added_when_absent() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\n\
m=audio 4000/2 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 10.0.0.5\r\n\
m=audio 4002 RTP/AVP 0\r\ni=second\r\na=sendrecv\r\n";
    let mut s = Sdp::parse(text).unwrap();
    s.rewrite_for_relay(ip("10.0.0.1"), &[Some(30000), Some(30002)]);
    let expected = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 10.0.0.1\r\n\
m=audio 30002 RTP/AVP 0\r\ni=second\r\nc=IN IP4 10.0.0.1\r\na=sendrecv\r\n";
    assert_eq!(s.to_string(), expected);
}

#[test]
fn legacy_zero_address_hold_survives_as_sendonly() {
    let mut s =
        Sdp::parse("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
            .unwrap();
    assert!(s.is_hold(0));
    s.rewrite_for_relay(ip("10.0.0.1"), &[Some(20000)]);
    assert!(s.is_hold(0));
    assert_eq!(s.media(0).unwrap().direction(), Direction::SendOnly);
    assert_eq!(s.media(0).unwrap().connection_addr(), Some(ip("10.0.0.1")));
}

#[test]
fn explicit_direction_is_kept_as_is() {
    let mut s = Sdp::parse("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n").unwrap();
    s.rewrite_for_relay(ip("10.0.0.1"), &[Some(20000)]);
    assert_eq!(s.to_string(), "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 20000 RTP/AVP 0\r\na=inactive\r\n");
}

#[test]
fn set_origin_replaces_or_inserts_after_version() {
    let mut s = Sdp::parse(WEBRTC_ISH).unwrap();
    s.set_origin("ha-pbx", 42, 7, ip("10.0.0.1"));
    assert!(s.to_string().starts_with("v=0\r\no=ha-pbx 42 7 IN IP4 10.0.0.1\r\ns=-\r\n"));
    let mut bare = Sdp::parse("v=0\r\ns=-\r\n").unwrap();
    bare.set_origin("bad name", 1, 2, ip("::1"));
    assert_eq!(bare.to_string(), "v=0\r\no=- 1 2 IN IP6 ::1\r\ns=-\r\n");
}

#[test]
fn origin_keeper_bumps_version_only_when_content_changes() {
    let relay = ip("10.0.0.1");
    let mut keeper = OriginKeeper::new("ha-pbx", 99);
    let render = |keeper: &mut OriginKeeper, text: &str| {
        let mut s = Sdp::parse(text).unwrap();
        s.rewrite_for_relay(relay, &[Some(20000), None]);
        keeper.apply(&mut s, relay);
        s.to_string()
    };
    let first = render(&mut keeper, WEBRTC_ISH);
    assert!(first.contains("o=ha-pbx 99 1 IN IP4 10.0.0.1\r\n"));
    // The device bumps its own version on a refresh; what we send is unchanged.
    let refresh = render(&mut keeper, &WEBRTC_ISH.replace("o=dev 77 3", "o=dev 77 4"));
    assert_eq!(refresh, first);
    let hold = render(&mut keeper, &WEBRTC_ISH.replace("a=sendrecv", "a=sendonly"));
    assert!(hold.contains("o=ha-pbx 99 2 IN IP4 10.0.0.1\r\n"), "{hold}");
    assert_eq!(keeper.version(), 2);
}

#[test]
fn retain_payloads_drops_formats_and_their_attributes() {
    let text = "v=0\r\nc=IN IP4 1.2.3.4\r\n\
m=audio 4000 RTP/AVP 0 96 97 101\r\n\
a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtcp-fb:96 nack\r\n\
a=rtpmap:97 iLBC/8000\r\na=rtcp-fb:* nack\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    let mut s = Sdp::parse(text).unwrap();
    assert_eq!(s.retain_payloads(0, |pt| pt != 96 && pt != 97), 2);
    let expected = "v=0\r\nc=IN IP4 1.2.3.4\r\n\
m=audio 4000 RTP/AVP 0 101\r\n\
a=rtcp-fb:* nack\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    assert_eq!(s.to_string(), expected);
    assert_eq!(s.retain_payloads(3, |_| true), 0);
}
