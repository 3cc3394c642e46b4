//! The codecs a WebRTC bridge passes through untouched: G.711 both laws,
//! which every browser and every SIP device speak, so the common path
//! needs no transcoding; and Opus, for the device that has no G.711.
pub use crate::media::audio::g711::G711;
use crate::media::sdp::{Direction, Sdp};
use std::net::IpAddr;

/// The payload type we give Opus in offers to a device (RFC 7587 has none).
pub const OPUS_OFFER_PT: u8 = 111;

/// What the device's side of a bridge carries: a G.711 law, or Opus
/// (passed through to a browser, which always has it) under the device's
/// own payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodec {
    G711(G711),
    Opus(u8),
}

impl From<G711> for DeviceCodec {
    fn from(law: G711) -> Self {
        DeviceCodec::G711(law)
    }
}

impl DeviceCodec {
    pub fn payload_type(self) -> u8 {
        match self {
            DeviceCodec::G711(law) => law.payload_type(),
            DeviceCodec::Opus(pt) => pt,
        }
    }

    pub fn law(self) -> Option<G711> {
        match self {
            DeviceCodec::G711(law) => Some(law),
            DeviceCodec::Opus(_) => None,
        }
    }

    pub fn opus_pt(self) -> Option<u8> {
        match self {
            DeviceCodec::Opus(pt) => Some(pt),
            DeviceCodec::G711(_) => None,
        }
    }

    /// Its `a=rtpmap` (and `a=fmtp`) lines.
    fn sdp_lines(self) -> String {
        match self {
            DeviceCodec::G711(law) => format!("a=rtpmap:{} {}/8000\r\n", law.payload_type(), law.name()),
            // In-band FEC: a browser's Opus carries it, and the device may use it.
            DeviceCodec::Opus(pt) => format!("a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=1\r\n"),
        }
    }
}

/// An SDP body from a browser (or any ICE/DTLS-SRTP peer) rather than a
/// plain RTP device.
pub fn is_webrtc(sdp: &str) -> bool {
    let has = |needle: &str| sdp.lines().any(|l| l.trim_start().starts_with(needle));
    sdp.lines().any(|l| l.starts_with("m=") && (l.contains("/TLS/RTP/") || l.contains("RTP/SAVPF")))
        && has("a=fingerprint:")
        && has("a=ice-ufrag:")
}

/// Whether two SDP bodies come from the same browser session: the same ICE
/// credentials (ufrag) and DTLS fingerprint. A browser's final answer after
/// its early one must be, or another browser would take over its bridge.
pub fn same_browser_session(a: &str, b: &str) -> bool {
    let key = |sdp: &str, attr: &str| -> Vec<String> {
        let mut v: Vec<String> = sdp.lines().map(str::trim).filter_map(|l| l.strip_prefix(attr)).map(str::to_string).collect();
        v.sort();
        v.dedup();
        v
    };
    ["a=ice-ufrag:", "a=fingerprint:"].iter().all(|attr| {
        let (x, y) = (key(a, attr), key(b, attr));
        !x.is_empty() && x == y
    })
}

/// Whether str0m can read a browser's SDP at all: checked on arrival, so a
/// broken offer is refused at once rather than when the device answers.
pub fn check_browser_sdp(sdp: &str) -> Result<(), String> {
    str0m::change::SdpOffer::from_sdp_string(sdp).map(drop).map_err(|e| e.to_string())
}

/// What a plain SDP offers on its first audio stream that a bridge can
/// carry: its G.711 laws in its order, then its first Opus. G.711 comes
/// first whatever the device's order, because it passes to a browser and
/// to every other device alike.
pub fn offered_audio(sdp: &Sdp) -> Vec<DeviceCodec> {
    let Some(media) = sdp.media(0) else { return Vec::new() };
    let pts = media.payload_types();
    let mut codecs: Vec<DeviceCodec> = Vec::new();
    for law in pts.iter().filter_map(|pt| G711::from_payload_type(*pt)) {
        if !codecs.contains(&DeviceCodec::G711(law)) {
            codecs.push(DeviceCodec::G711(law));
        }
    }
    let is_opus = |pt: &u8| media.rtpmap(*pt).is_some_and(|m| m.encoding.eq_ignore_ascii_case("opus") && m.clock_rate == 48_000);
    codecs.extend(pts.iter().copied().find(is_opus).map(DeviceCodec::Opus));
    codecs
}

/// SDP toward the plain RTP device: our bridge port and the given codecs.
/// `telephone_event`: the RFC 4733 payload type to list, if any.
pub fn plain_sdp(addr: IpAddr, port: u16, codecs: &[DeviceCodec], telephone_event: Option<u8>, direction: Direction, session_id: u64, version: u64) -> Sdp {
    let net = if addr.is_ipv6() { "IP6" } else { "IP4" };
    let mut pts: Vec<String> = codecs.iter().map(|c| c.payload_type().to_string()).collect();
    pts.extend(telephone_event.map(|pt| pt.to_string()));
    let mut text = format!(
        "v=0\r\no=ha-pbx {session_id} {version} IN {net} {addr}\r\ns=ha-pbx\r\nc=IN {net} {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.join(" ")
    );
    for c in codecs {
        text.push_str(&c.sdp_lines());
    }
    if let Some(pt) = telephone_event {
        text.push_str(&format!("a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-15\r\n"));
    }
    text.push_str(&format!("a=ptime:20\r\na={}\r\n", direction.attribute()));
    Sdp::parse(&text).expect("SDP built from parts we control parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_sdp_is_recognised_and_plain_is_not() {
        let browser = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 AA:BB\r\n";
        assert!(is_webrtc(browser));
        let plain = "v=0\r\nm=audio 4000 RTP/AVP 0 8\r\n";
        assert!(!is_webrtc(plain));
        let sdes = "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n";
        assert!(!is_webrtc(sdes));
    }

    #[test]
    fn a_browser_session_is_known_by_its_ice_ufrag_and_fingerprint() {
        let early = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 AA:BB\r\na=recvonly\r\n";
        let final_same = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 AA:BB\r\na=sendrecv\r\n";
        assert!(same_browser_session(early, final_same));
        let other_tab = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:wxyz\r\na=fingerprint:sha-256 AA:BB\r\n";
        assert!(!same_browser_session(early, other_tab), "another ufrag");
        let other_cert = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 CC:DD\r\n";
        assert!(!same_browser_session(early, other_cert), "another certificate");
        let plain = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert!(!same_browser_session(plain, plain), "no ICE or DTLS at all is no browser session");
    }

    #[test]
    fn plain_sdp_round_trips_and_lists_offered_laws() {
        let sdp = plain_sdp("127.0.0.1".parse().unwrap(), 20002, &[G711::Pcma.into(), G711::Pcmu.into(), DeviceCodec::Opus(111)], Some(101), Direction::SendRecv, 1, 1);
        assert_eq!(sdp.media(0).unwrap().direction(), Direction::SendRecv);
        let held = plain_sdp("127.0.0.1".parse().unwrap(), 20002, &[G711::Pcmu.into()], None, Direction::SendOnly, 1, 2);
        assert_eq!(held.media(0).unwrap().direction(), Direction::SendOnly);
        assert_eq!(offered_audio(&sdp), vec![G711::Pcma.into(), G711::Pcmu.into(), DeviceCodec::Opus(111)]);
        assert_eq!(sdp.media(0).unwrap().fmtp(111), Some("useinbandfec=1"));
        assert_eq!(sdp.telephone_event_pt(), Some(101));
        assert_eq!(sdp.media_endpoint(0).unwrap().0.to_string(), "127.0.0.1:20002");
        let opus_first = Sdp::parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5 RTP/AVP 96 97 8\r\na=rtpmap:96 OPUS/48000/2\r\na=rtpmap:97 opus/48000/2\r\n").unwrap();
        assert_eq!(offered_audio(&opus_first), vec![G711::Pcma.into(), DeviceCodec::Opus(96)], "G.711 first, one Opus");
        let speex = Sdp::parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5 RTP/AVP 96\r\na=rtpmap:96 speex/8000\r\n").unwrap();
        assert!(offered_audio(&speex).is_empty());
    }
}
