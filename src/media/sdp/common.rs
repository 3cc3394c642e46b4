//! An SDP answered from another offer: only the codecs both sides listed.
use super::Sdp;

/// `sdp` with, in each stream, only the payload types `other`'s stream of
/// the same index also lists: a static type by its number, a dynamic one by
/// its rtpmap (encoding and clock rate). A stream that would be left with
/// none keeps all of its own (the device refuses or copes). None when
/// either text is not SDP.
pub fn keep_common_codecs(sdp: &str, other: &str) -> Option<String> {
    let mut out = Sdp::parse(sdp).ok()?;
    let theirs = Sdp::parse(other).ok()?;
    let ours = Sdp::parse(sdp).ok()?;
    for idx in 0..ours.media_count() {
        let (Some(mine), Some(them)) = (ours.media(idx), theirs.media(idx)) else { continue };
        let their_pts = them.payload_types();
        let same_map = |pt: u8| {
            mine.rtpmap(pt).is_some_and(|m| {
                their_pts.iter().any(|t| them.rtpmap(*t).is_some_and(|o| o.encoding.eq_ignore_ascii_case(m.encoding) && o.clock_rate == m.clock_rate))
            })
        };
        let keep = |pt: u8| (pt < 96 && their_pts.contains(&pt)) || same_map(pt);
        if mine.payload_types().into_iter().any(keep) {
            out.retain_payloads(idx, keep);
        }
    }
    Some(out.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    const THEIRS: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";

    #[test]
    fn keeps_static_types_by_number_and_dynamic_ones_by_rtpmap() {
        let out = keep_common_codecs(OURS, THEIRS).unwrap();
        assert!(out.contains("m=audio 4000 RTP/AVP 0 8 101\r\n"), "{out}");
        assert!(!out.contains("G722"), "{out}");
        assert!(out.contains("a=fmtp:101 0-15"), "{out}");
    }

    #[test]
    fn nothing_in_common_keeps_the_stream_as_it_was_and_garbage_is_none() {
        let g722_only = THEIRS.replace("8 0 96", "9");
        let opus = OURS.replace("0 8 9 101", "0");
        assert!(keep_common_codecs(&opus, &g722_only.replace("RTP/AVP 9", "RTP/AVP 18")).unwrap().contains("RTP/AVP 0\r\n"));
        assert!(keep_common_codecs("not sdp", THEIRS).is_none());
    }
}
