//! An SDP offer of our own, for calls the PBX originates (click-to-dial):
//! G.711 both laws and RFC 4733 events, which every SIP device speaks.
use super::Sdp;
use std::net::IpAddr;

/// Audio offer on `addr:port` (RTCP on port+1).
pub fn g711_offer(addr: IpAddr, port: u16, session_id: u64, version: u64) -> Sdp {
    let net = if addr.is_ipv6() { "IP6" } else { "IP4" };
    let text = format!(
        "v=0\r\no=ha-pbx {session_id} {version} IN {net} {addr}\r\ns=ha-pbx\r\nc=IN {net} {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    Sdp::parse(&text).expect("offer built from parts we control parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_parses_and_names_our_endpoint() {
        let sdp = g711_offer("127.0.0.1".parse().unwrap(), 20000, 7, 1);
        assert_eq!(sdp.media_count(), 1);
        let (rtp, rtcp) = sdp.media_endpoint(0).unwrap();
        assert_eq!(rtp.to_string(), "127.0.0.1:20000");
        assert_eq!(rtcp, None, "RTCP is implicit: port + 1");
        assert_eq!(sdp.telephone_event_pt(), Some(101));
        assert!(!sdp.is_hold(0));
    }
}
