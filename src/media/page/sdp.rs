//! A page's SDP: the caller's offer answered `recvonly` (we only listen);
//! the listeners are offered `sendrecv`, as any call: a `sendonly` offer
//! reads as "you are on hold" to phones (baresip then plays nothing of what
//! it receives), so what they send is dropped by the fan-out instead. Both
//! carry the one codec the caller listed first (plus telephone-event), so
//! every listener decodes the packets the caller sends. Only the first
//! stream carries audio; any other stream is refused (port 0).
//!
//! A re-offer from either side mid-page (session refresh, hold) is answered
//! with the same port and codec, its direction as RFC 3264 §6.1 says for
//! what we do (the caller's leg: we only receive; a listener's: we only
//! send, though we offered `sendrecv`), and our o= version grows only when
//! what we send changed ([`OriginKeeper`]).
use crate::media::sdp::{Direction, OriginKeeper, Sdp};
use std::net::{IpAddr, SocketAddr};

/// The payload types a page carries: the caller's first audio codec and
/// its telephone-event type, from the caller's first offer.
pub fn page_codecs(offer: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(offer).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
    let sdp = Sdp::parse(text)?;
    let m = sdp.media(0).ok_or_else(|| anyhow::anyhow!("the offer has no stream"))?;
    if m.port() == 0 {
        anyhow::bail!("the offer's first stream is disabled");
    }
    let event = m.telephone_event_pt();
    let first = m.payload_types().into_iter().find(|pt| Some(*pt) != event).ok_or_else(|| anyhow::anyhow!("the offer's first stream has no codec"))?;
    Ok([Some(first), event].into_iter().flatten().collect())
}

fn parse(offer: &[u8]) -> anyhow::Result<Sdp> {
    let text = std::str::from_utf8(offer).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
    Ok(Sdp::parse(text)?)
}

/// The direction the first stream of `sdp` says, `c=0.0.0.0` (RFC 2543 hold) as `inactive`.
fn direction(sdp: &Sdp) -> Direction {
    match sdp.media(0) {
        Some(m) if m.connection_addr().is_some_and(|a| a.is_unspecified()) => Direction::Inactive,
        Some(m) => m.direction(),
        None => Direction::Inactive,
    }
}

/// `offer` rewritten to our `addr:port` with the page's `codecs` (`codecs[0]`
/// must still be offered), its first stream `dir`, stamped by `origin`.
fn rewrite(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, dir: Direction, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let mut sdp = parse(offer)?;
    let m = sdp.media(0).ok_or_else(|| anyhow::anyhow!("the offer has no stream"))?;
    if m.port() == 0 {
        anyhow::bail!("the offer's first stream is disabled");
    }
    let codec = *codecs.first().ok_or_else(|| anyhow::anyhow!("the page has no codec"))?;
    if !m.payload_types().contains(&codec) {
        anyhow::bail!("the offer no longer carries the page's codec (payload type {codec})");
    }
    sdp.retain_payloads(0, |pt| codecs.contains(&pt));
    sdp.rewrite_for_relay(addr, &[Some(port)]);
    sdp.set_direction(0, dir);
    origin.apply(&mut sdp, addr);
    Ok(sdp.to_string())
}

/// Our answer to the caller's offer (the first or a re-offer): `recvonly`
/// while it sends, `inactive` when it does not (RFC 3264 §6.1).
pub fn caller_answer(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let dir = if caller_sends(offer) { Direction::RecvOnly } else { Direction::Inactive };
    rewrite(offer, codecs, addr, port, dir, origin)
}

/// Whether the caller's offer says it sends at all (`sendrecv`, `sendonly`).
fn caller_sends(offer: &[u8]) -> bool {
    parse(offer).is_ok_and(|s| matches!(direction(&s), Direction::SendRecv | Direction::SendOnly))
}

/// Whether the caller's offer puts the page on hold, read as a call's hold
/// is ([`Sdp::is_hold`]: anything but `sendrecv`, or `c=0.0.0.0`): its
/// silence then does not count toward the media timeout, as in a call. An
/// offer without a usable first stream is no hold; [`caller_answer`]
/// refuses it before anyone asks.
pub fn caller_holds(offer: &[u8]) -> bool {
    parse(offer).is_ok_and(|s| s.is_hold(0))
}

/// The offer a listener gets: the caller's codec, from `addr:port`, `sendrecv`.
pub fn listener_offer(caller_offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    rewrite(caller_offer, codecs, addr, port, Direction::SendRecv, origin)
}

/// Our answer to a listener's re-offer: the reverse of its direction
/// (`sendonly`, a listener holding us: `recvonly`; `recvonly`: `sendonly`).
pub fn listener_answer(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let dir = match direction(&parse(offer)?) {
        Direction::SendRecv => Direction::SendRecv,
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        Direction::Inactive => Direction::Inactive,
    };
    rewrite(offer, codecs, addr, port, dir, origin)
}

/// Where a listener's SDP (its answer, or a re-offer) says its device takes
/// RTP; None when it takes none (`sendonly`, `inactive`, `c=0.0.0.0`).
pub fn listener_target(sdp: &[u8]) -> Option<SocketAddr> {
    let sdp = parse(sdp).ok()?;
    if !matches!(direction(&sdp), Direction::SendRecv | Direction::RecvOnly) {
        return None;
    }
    sdp.media_endpoint(0).map(|(rtp, _)| rtp).filter(|a| !a.ip().is_unspecified())
}

/// The addresses the caller's media may come from, for the fan-out's latch:
/// where its signalling came from and the host its offer's first stream names.
pub fn caller_hosts(signalling: Option<IpAddr>, offer: &[u8]) -> Vec<IpAddr> {
    let sdp_host = parse(offer).ok().and_then(|s| s.media_endpoint(0)).map(|(rtp, _)| rtp.ip());
    [signalling, sdp_host].into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    fn ip() -> IpAddr {
        "192.168.1.5".parse().unwrap()
    }

    fn keeper() -> OriginKeeper {
        OriginKeeper::new("ha-pbx", 7)
    }

    #[test]
    fn the_caller_is_answered_recvonly_with_its_first_codec_and_video_refused() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        assert_eq!(codecs, vec![8, 101]);
        let a = caller_answer(OFFER.as_bytes(), &codecs, ip(), 20000, &mut keeper()).unwrap();
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("c=IN IP4 192.168.1.5\r\n"), "{a}");
        assert!(a.contains("a=recvonly\r\n") && !a.contains("a=sendrecv"), "{a}");
        assert!(a.contains("o=ha-pbx 7 1 IN IP4 192.168.1.5\r\n"), "{a}");
        assert!(!a.contains("PCMU"), "{a}");
        assert!(a.contains("m=video 0 "), "{a}");
        assert!(caller_sends(OFFER.as_bytes()) && !caller_holds(OFFER.as_bytes()));
    }

    #[test]
    fn listeners_are_offered_the_callers_codec_and_their_answer_names_where_to_send() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        let o = listener_offer(OFFER.as_bytes(), &codecs, ip(), 20002, &mut keeper()).unwrap();
        assert!(o.contains("m=audio 20002 RTP/AVP 8 101\r\n") && o.contains("a=sendrecv\r\n"), "{o}");
        assert_eq!(listener_target(OFFER.as_bytes()), Some("10.0.0.1:4000".parse().unwrap()));
        let hold = OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(listener_target(hold.as_bytes()), None);
        let recvonly = OFFER.replace("a=sendrecv", "a=recvonly");
        assert_eq!(listener_target(recvonly.as_bytes()), Some("10.0.0.1:4000".parse().unwrap()), "a listener that only listens is sent to");
        for dir in ["a=sendonly", "a=inactive"] {
            assert_eq!(listener_target(OFFER.replace("a=sendrecv", dir).as_bytes()), None, "{dir}: it takes nothing");
        }
    }

    #[test]
    fn a_callers_re_offer_keeps_port_and_codec_and_answers_hold_inactive() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        let mut origin = keeper();
        let first = caller_answer(OFFER.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap();
        let again = caller_answer(OFFER.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap();
        assert_eq!(first, again, "a session refresh changes nothing, not even the o= version");
        let held = OFFER.replace("a=sendrecv", "a=sendonly");
        assert!(caller_sends(held.as_bytes()), "sendonly still sends (music on hold)");
        assert!(caller_holds(held.as_bytes()), "but it is a hold, as in a call");
        let a = caller_answer(held.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap();
        assert!(a.contains("a=recvonly\r\n") && a.contains("o=ha-pbx 7 1 "), "{a}");
        // No first stream, or a disabled one: no hold (as Sdp::is_hold), and no answer either.
        for none in [OFFER.split("m=audio").next().unwrap().to_string(), OFFER.replace("m=audio 4000", "m=audio 0")] {
            assert!(!caller_holds(none.as_bytes()) && caller_answer(none.as_bytes(), &codecs, ip(), 20000, &mut origin).is_err(), "{none}");
        }
        for hold in [OFFER.replace("a=sendrecv", "a=inactive"), OFFER.replace("a=sendrecv", "a=recvonly"), OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0")] {
            assert!(!caller_sends(hold.as_bytes()) && caller_holds(hold.as_bytes()), "{hold}");
            let a = caller_answer(hold.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap();
            assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n") && a.contains("a=inactive\r\n"), "{a}");
            assert!(a.contains("o=ha-pbx 7 ") && !a.contains("o=ha-pbx 7 1 "), "what we send changed: the version grew\n{a}");
        }
        // Reordered codecs: still the page's codec, not the new first one.
        let reordered = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 0 8 101");
        let a = caller_answer(reordered.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap();
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        let dropped = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101");
        let e = caller_answer(dropped.as_bytes(), &codecs, ip(), 20000, &mut origin).unwrap_err();
        assert!(e.to_string().contains("payload type 8"), "{e}");
    }

    #[test]
    fn a_listeners_re_offer_is_answered_with_the_reverse_direction() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        let mut origin = keeper();
        listener_offer(OFFER.as_bytes(), &codecs, ip(), 20002, &mut origin).unwrap();
        for (offered, answered) in [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")] {
            let re = OFFER.replace("a=sendrecv", &format!("a={offered}"));
            let a = listener_answer(re.as_bytes(), &codecs, ip(), 20002, &mut origin).unwrap();
            assert!(a.contains(&format!("a={answered}\r\n")) && a.contains("m=audio 20002 RTP/AVP 8 101\r\n"), "{offered}: {a}");
        }
    }

    #[test]
    fn unusable_offers_are_errors_not_panics() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        assert!(page_codecs(b"garbage").is_err());
        assert!(caller_answer(b"garbage", &codecs, ip(), 1, &mut keeper()).is_err());
        assert!(listener_answer(&[0xff, 0xfe], &codecs, ip(), 1, &mut keeper()).is_err());
        let disabled = OFFER.replace("m=audio 4000", "m=audio 0");
        assert!(page_codecs(disabled.as_bytes()).is_err());
        assert!(caller_answer(disabled.as_bytes(), &codecs, ip(), 1, &mut keeper()).is_err());
        let only_events = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert!(page_codecs(only_events.as_bytes()).is_err());
        assert!(listener_offer(only_events.as_bytes(), &codecs, ip(), 1, &mut keeper()).is_err());
        assert!(caller_answer(b"v=0\r\n", &codecs, ip(), 1, &mut keeper()).is_err());
        assert_eq!(listener_target(&[0xff, 0xfe]), None);
    }
}
