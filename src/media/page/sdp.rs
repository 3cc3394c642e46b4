//! A page's SDP: the caller's offer answered `recvonly` (we only listen);
//! the listeners are offered `sendrecv`, as any call: a `sendonly` offer
//! reads as "you are on hold" to phones (baresip then plays nothing of what
//! it receives), so what they send is dropped by the fan-out instead. Both
//! carry the one codec the caller listed first (plus telephone-event), so
//! every listener decodes the packets the caller sends. Only the first
//! stream carries audio; any other stream is refused (port 0).
//!
//! A door preview's fan-out also carries the caller's video, when it offers
//! one of VP8 or H.264 as its second stream ([`preview_video`]): one format,
//! so every bridge gets the packets the caller sends; the caller is answered
//! `recvonly` for it too, and each listener offered it in the caller's own
//! direction, as the caller would offer it to a bridge. Paging carries none.
//!
//! A re-offer from either side mid-page (session refresh, hold) is answered
//! with the same port and codec, its direction as RFC 3264 §6.1 says for
//! what we do (the caller's leg: we only receive; a listener's: we only
//! send, though we offered `sendrecv`), and our o= version grows only when
//! what we send changed ([`OriginKeeper`]).
use crate::media::sdp::{Direction, OriginKeeper, Sdp};
use crate::media::webrtc::offered_video;
use std::net::{IpAddr, SocketAddr};

/// Video on a door preview's fan-out: the caller's payload type (its one
/// format carried) and our port for it on this leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageVideo {
    pub pt: u8,
    pub port: u16,
}

/// The video format a door preview carries: the caller's first VP8 or
/// H.264 of its second stream (where a bridge takes video); None when it
/// offers none of these there, or does not send it.
pub fn preview_video(offer: &[u8]) -> Option<u8> {
    let sdp = parse(offer).ok()?;
    let video = offered_video(&sdp).filter(|v| v.index == 1)?;
    if !matches!(video.direction, Direction::SendRecv | Direction::SendOnly) {
        return None;
    }
    video.codecs.first().map(|c| c.device_pt)
}

/// Where the caller's video RTCP goes (our keyframe requests): its SDP's
/// `a=rtcp`, else the port after its video RTP (RFC 3550).
pub fn caller_video_rtcp(offer: &[u8]) -> Option<SocketAddr> {
    let (rtp, rtcp) = parse(offer).ok()?.media_endpoint(1)?;
    rtcp.or_else(|| rtp.port().checked_add(1).map(|p| SocketAddr::new(rtp.ip(), p))).filter(|a| !a.ip().is_unspecified())
}

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
/// With `video`, the second stream keeps that one format at its port, in
/// `video_dir` (else the stream is refused, port 0).
fn rewrite(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, dir: Direction, video: Option<(PageVideo, Direction)>, origin: &mut OriginKeeper) -> anyhow::Result<String> {
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
    let video = video.filter(|(v, _)| sdp.media(1).is_some_and(|m| m.port() != 0 && m.payload_types().contains(&v.pt)));
    sdp.rewrite_for_relay(addr, &[Some(port), video.map(|(v, _)| v.port)]);
    sdp.set_direction(0, dir);
    if let Some((v, video_dir)) = video {
        sdp.retain_payloads(1, |pt| pt == v.pt);
        sdp.set_direction(1, video_dir);
    }
    origin.apply(&mut sdp, addr);
    Ok(sdp.to_string())
}

/// Our answer to the caller's offer (the first or a re-offer): `recvonly`
/// while it sends, `inactive` when it does not (RFC 3264 §6.1).
pub fn caller_answer(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let dir = if caller_sends(offer) { Direction::RecvOnly } else { Direction::Inactive };
    rewrite(offer, codecs, addr, port, dir, None, origin)
}

/// [`caller_answer`] for a door preview that carries the caller's video:
/// `recvonly` while the caller sends it, as the audio.
pub fn preview_caller_answer(offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, video: Option<PageVideo>, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let dir = if caller_sends(offer) { Direction::RecvOnly } else { Direction::Inactive };
    rewrite(offer, codecs, addr, port, dir, video.map(|v| (v, Direction::RecvOnly)), origin)
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
    rewrite(caller_offer, codecs, addr, port, Direction::SendRecv, None, origin)
}

/// [`listener_offer`] for a door preview's bridge, with the caller's video
/// (its one format, in the caller's direction) from our `video.port`.
pub fn preview_listener_offer(caller_offer: &[u8], codecs: &[u8], addr: IpAddr, port: u16, video: Option<PageVideo>, origin: &mut OriginKeeper) -> anyhow::Result<String> {
    let dir = parse(caller_offer)?.media(1).map_or(Direction::SendRecv, |m| m.direction());
    rewrite(caller_offer, codecs, addr, port, Direction::SendRecv, video.map(|v| (v, dir)), origin)
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
    rewrite(offer, codecs, addr, port, dir, None, origin)
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

/// Where a previewing bridge's SDP says it takes the caller's video (its
/// second stream); None when it takes none.
pub fn listener_video_target(sdp: &[u8]) -> Option<SocketAddr> {
    let sdp = parse(sdp).ok()?;
    let m = sdp.media(1)?;
    if m.port() == 0 || !matches!(m.direction(), Direction::SendRecv | Direction::RecvOnly) {
        return None;
    }
    sdp.media_endpoint(1).map(|(rtp, _)| rtp).filter(|a| !a.ip().is_unspecified())
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
    fn a_door_preview_carries_the_callers_first_video_format_receive_only() {
        let codecs = page_codecs(OFFER.as_bytes()).unwrap();
        let offer = OFFER.replace("m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", "m=video 4002 RTP/AVP 97 96\r\na=rtpmap:97 H265/90000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=rtcp:4010\r\na=sendrecv\r\n");
        assert_eq!(preview_video(offer.as_bytes()), Some(96), "H.265 is no format a bridge takes");
        assert_eq!(caller_video_rtcp(offer.as_bytes()), Some("10.0.0.1:4010".parse().unwrap()));
        assert_eq!(caller_video_rtcp(OFFER.as_bytes()), Some("10.0.0.1:4003".parse().unwrap()), "no a=rtcp: the next port");
        let video = Some(PageVideo { pt: 96, port: 20010 });
        let a = preview_caller_answer(offer.as_bytes(), &codecs, ip(), 20000, video, &mut keeper()).unwrap();
        let (audio_part, video_part) = a.split_at(a.find("m=video").unwrap());
        assert!(audio_part.contains("m=audio 20000 RTP/AVP 8 101\r\n") && audio_part.contains("a=recvonly\r\n"), "{a}");
        assert!(video_part.starts_with("m=video 20010 RTP/AVP 96\r\n") && video_part.contains("a=recvonly\r\n"), "{a}");
        assert!(video_part.contains("a=fmtp:96 packetization-mode=1") && !video_part.contains("H265") && video_part.contains("a=rtcp:20011 "), "{a}");
        let o = preview_listener_offer(offer.as_bytes(), &codecs, ip(), 20002, Some(PageVideo { pt: 96, port: 20012 }), &mut keeper()).unwrap();
        let video_part = &o[o.find("m=video").unwrap()..];
        assert!(video_part.starts_with("m=video 20012 RTP/AVP 96\r\n") && video_part.contains("a=sendrecv\r\n"), "the caller's own direction: {o}");
        assert_eq!(listener_video_target(o.as_bytes()), Some("192.168.1.5:20012".parse().unwrap()));
        let doorbell = offer.replacen("a=sendrecv", "a=recvonly", 2).replacen("a=recvonly", "a=sendrecv", 1);
        let o = preview_listener_offer(doorbell.as_bytes(), &codecs, ip(), 20002, Some(PageVideo { pt: 96, port: 20012 }), &mut keeper()).unwrap();
        assert!(o[o.find("m=video").unwrap()..].contains("a=recvonly"), "{o}");
        assert_eq!(preview_video(doorbell.as_bytes()), None, "a caller that sends no video has none to preview");
        // Without video (paging, or a format no bridge takes): the stream is refused as before.
        let a = preview_caller_answer(offer.as_bytes(), &codecs, ip(), 20000, None, &mut keeper()).unwrap();
        assert!(a.contains("m=video 0 "), "{a}");
        assert_eq!(listener_video_target(a.as_bytes()), None);
        // A format the offer no longer has: refused, not invented.
        let a = preview_caller_answer(OFFER.as_bytes(), &codecs, ip(), 20000, Some(PageVideo { pt: 100, port: 20010 }), &mut keeper()).unwrap();
        assert!(a.contains("m=video 0 "), "{a}");
        assert_eq!(preview_video(b"garbage"), None);
        assert_eq!(caller_video_rtcp(&[0xff]), None);
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
