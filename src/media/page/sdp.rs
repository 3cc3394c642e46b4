//! A page's SDP: the caller's offer answered `recvonly` (we only listen);
//! the listeners are offered `sendrecv`, as any call: a `sendonly` offer
//! reads as "you are on hold" to phones (baresip then plays nothing of what
//! it receives), so what they send is dropped by the fan-out instead. Both
//! carry the one
//! codec the caller listed first (plus telephone-event), so every listener
//! decodes the packets the caller sends. Only the first stream carries
//! audio; any other stream is refused (port 0).
use crate::media::sdp::{Direction, Sdp};
use std::net::{IpAddr, SocketAddr};

/// The caller's first audio codec and its telephone-event type.
fn first_codec(offer: &Sdp) -> anyhow::Result<Vec<u8>> {
    let m = offer.media(0).ok_or_else(|| anyhow::anyhow!("the offer has no stream"))?;
    if m.port() == 0 {
        anyhow::bail!("the offer's first stream is disabled");
    }
    let event = m.telephone_event_pt();
    let first = m.payload_types().into_iter().find(|pt| Some(*pt) != event).ok_or_else(|| anyhow::anyhow!("the offer's first stream has no codec"))?;
    Ok([Some(first), event].into_iter().flatten().collect())
}

fn rewrite(offer: &[u8], addr: IpAddr, port: u16, dir: Direction, session_id: u64) -> anyhow::Result<String> {
    let text = std::str::from_utf8(offer).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
    let mut sdp = Sdp::parse(text)?;
    let keep = first_codec(&sdp)?;
    sdp.retain_payloads(0, |pt| keep.contains(&pt));
    sdp.rewrite_for_relay(addr, &[Some(port)]);
    sdp.set_direction(0, dir);
    sdp.set_origin("ha-pbx", session_id, 1, addr);
    Ok(sdp.to_string())
}

/// Our answer to the caller: its first codec, at `addr:port`, `recvonly`.
pub fn caller_answer(offer: &[u8], addr: IpAddr, port: u16, session_id: u64) -> anyhow::Result<String> {
    rewrite(offer, addr, port, Direction::RecvOnly, session_id)
}

/// The offer a listener gets: the caller's first codec, from `addr:port`, `sendrecv`.
pub fn listener_offer(caller_offer: &[u8], addr: IpAddr, port: u16, session_id: u64) -> anyhow::Result<String> {
    rewrite(caller_offer, addr, port, Direction::SendRecv, session_id)
}

/// Where a listener's answer says its device takes RTP.
pub fn listener_target(answer: &[u8]) -> Option<SocketAddr> {
    let sdp = Sdp::parse(std::str::from_utf8(answer).ok()?).ok()?;
    sdp.media_endpoint(0).map(|(rtp, _)| rtp).filter(|a| !a.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn the_caller_is_answered_recvonly_with_its_first_codec_and_video_refused() {
        let a = caller_answer(OFFER.as_bytes(), "192.168.1.5".parse().unwrap(), 20000, 7).unwrap();
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("c=IN IP4 192.168.1.5\r\n"), "{a}");
        assert!(a.contains("a=recvonly\r\n") && !a.contains("a=sendrecv"), "{a}");
        assert!(!a.contains("PCMU"), "{a}");
        assert!(a.contains("m=video 0 "), "{a}");
    }

    #[test]
    fn listeners_are_offered_the_callers_codec_and_their_answer_names_where_to_send() {
        let o = listener_offer(OFFER.as_bytes(), "192.168.1.5".parse().unwrap(), 20002, 7).unwrap();
        assert!(o.contains("m=audio 20002 RTP/AVP 8 101\r\n") && o.contains("a=sendrecv\r\n"), "{o}");
        assert_eq!(listener_target(OFFER.as_bytes()), Some("10.0.0.1:4000".parse().unwrap()));
        let hold = OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(listener_target(hold.as_bytes()), None);
    }

    #[test]
    fn unusable_offers_are_errors_not_panics() {
        assert!(caller_answer(b"garbage", "127.0.0.1".parse().unwrap(), 1, 1).is_err());
        let disabled = OFFER.replace("m=audio 4000", "m=audio 0");
        assert!(caller_answer(disabled.as_bytes(), "127.0.0.1".parse().unwrap(), 1, 1).is_err());
        let only_events = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert!(listener_offer(only_events.as_bytes(), "127.0.0.1".parse().unwrap(), 1, 1).is_err());
        assert_eq!(listener_target(&[0xff, 0xfe]), None);
    }
}
