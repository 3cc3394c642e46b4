//! One continuous RTP stream toward a device even when the source behind it
//! changes (a transfer connects another phone to the same relay port).
//!
//! The new device brings its own SSRC, sequence numbers and timestamps. Some
//! receivers then drop every packet for good: baresip 1.0's jitter buffer
//! treats numbers that jump back as "too late". So once the sending address
//! changes (the relay only forwards from the address it latched onto), the
//! splice keeps the first SSRC and continues sequence numbers and timestamps
//! where the old device left off. Until then it touches nothing, so an
//! ordinary call (and SRTP, whose tag covers the header) passes unmodified,
//! whatever SSRCs the device uses.
//!
//! Sans-IO: works in place on one packet buffer, no allocation.

/// Timestamp step assumed before two packets of a source were seen
/// (20 ms at 8 kHz, the G.711 norm).
const DEFAULT_TS_STEP: u32 = 160;
/// Steps beyond this (one second at 48 kHz) are gaps, not a packet interval.
const MAX_TS_STEP: u32 = 48_000;

use crate::media::rtp::StreamPosition;
use std::net::SocketAddr;

#[derive(Debug, Default)]
pub struct Splice {
    /// The device sending now, and how its main stream is renumbered.
    current: Option<Source>,
    /// The stream the device sees: first SSRC, last numbers sent.
    out: Option<Out>,
}

#[derive(Debug)]
struct Source {
    addr: SocketAddr,
    /// The first SSRC seen from this device; others (rare: events on their
    /// own SSRC) pass unchanged.
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

#[derive(Debug)]
struct Out {
    ssrc: u32,
    last_seq: u16,
    last_ts: u32,
    ts_step: u32,
}

impl Splice {
    /// The device already receives a stream another sender started
    /// (`from`): every source of the relay is renumbered to continue it,
    /// the first one too.
    pub fn continue_from(&mut self, from: StreamPosition) {
        self.out = Some(Out { ssrc: from.ssrc, last_seq: from.last_seq, last_ts: from.last_ts, ts_step: DEFAULT_TS_STEP });
        // No real source has this address: the first packet counts as a new device.
        self.current = Some(Source { addr: SocketAddr::from(([0, 0, 0, 0], 0)), ssrc: from.ssrc, seq_offset: 0, ts_offset: 0 });
    }

    /// Rewrites `packet` (sent by `src`) in place if it comes from a later
    /// device than the first. Anything too short to be RTP, or not version 2,
    /// is left alone.
    pub fn rewrite(&mut self, src: SocketAddr, packet: &mut [u8]) {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let out = self.out.get_or_insert(Out { ssrc, last_seq: seq.wrapping_sub(1), last_ts: ts, ts_step: DEFAULT_TS_STEP });
        let source = match &mut self.current {
            Some(c) if c.addr == src => c,
            current => {
                // A new device: continue right after the last packet sent.
                let (seq_offset, ts_offset) = match current {
                    None => (0, 0),
                    Some(_) => (
                        out.last_seq.wrapping_add(1).wrapping_sub(seq),
                        out.last_ts.wrapping_add(out.ts_step).wrapping_sub(ts),
                    ),
                };
                current.insert(Source { addr: src, ssrc, seq_offset, ts_offset })
            }
        };
        if ssrc != source.ssrc {
            return;
        }
        let out_seq = seq.wrapping_add(source.seq_offset);
        let out_ts = ts.wrapping_add(source.ts_offset);
        if is_newer(out_seq, out.last_seq) {
            let step = out_ts.wrapping_sub(out.last_ts);
            if step > 0 && step <= MAX_TS_STEP && out_seq == out.last_seq.wrapping_add(1) {
                out.ts_step = step;
            }
            out.last_seq = out_seq;
            out.last_ts = out_ts;
        }
        if source.ssrc != out.ssrc || source.seq_offset != 0 || source.ts_offset != 0 {
            packet[2..4].copy_from_slice(&out_seq.to_be_bytes());
            packet[4..8].copy_from_slice(&out_ts.to_be_bytes());
            packet[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
        }
    }
}

/// RFC 3550 sequence comparison: `a` follows `b` within half the number space.
fn is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "127.0.0.1:4000";
    const NEW: &str = "127.0.0.1:5000";

    fn at(a: &str) -> SocketAddr {
        a.parse().unwrap()
    }

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn fields(p: &[u8]) -> (u16, u32, u32) {
        (
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    #[test]
    fn the_first_device_passes_unmodified_whatever_its_ssrcs() {
        let mut s = Splice::default();
        for i in 0..5u16 {
            for ssrc in [7, 8] {
                let mut p = rtp(100 + i, 8000 + 160 * i as u32, ssrc);
                let before = p.clone();
                s.rewrite(at(OLD), &mut p);
                assert_eq!(p, before);
            }
        }
    }

    #[test]
    fn a_new_device_continues_the_old_numbering() {
        let mut s = Splice::default();
        for i in 0..3u16 {
            s.rewrite(at(OLD), &mut rtp(1000 + i, 50_000 + 160 * i as u32, 7));
        }
        // last out: seq 1002, ts 50320; the new phone starts far behind
        let mut p = rtp(5, 99, 42);
        s.rewrite(at(NEW), &mut p);
        assert_eq!(fields(&p), (1003, 50_480, 7));
        let mut p = rtp(6, 259, 42);
        s.rewrite(at(NEW), &mut p);
        assert_eq!(fields(&p), (1004, 50_640, 7));
        assert_eq!(&p[12..], &[0xff, 0xfe], "payload untouched");
        // a second SSRC from the new device is not mixed into the stream
        let mut other = rtp(900, 1, 43);
        let before = other.clone();
        s.rewrite(at(NEW), &mut other);
        assert_eq!(other, before);
    }

    #[test]
    fn a_stream_another_sender_started_is_continued_from_the_first_packet() {
        let mut s = Splice::default();
        // a bridge sent up to seq 41, ts 8000 with SSRC 9; the relay's first device follows
        s.continue_from(StreamPosition { ssrc: 9, last_seq: 41, last_ts: 8000 });
        let mut p = rtp(60_000, 3_000_000_000, 42);
        s.rewrite(at(NEW), &mut p);
        assert_eq!(fields(&p), (42, 8160, 9));
        let mut p = rtp(60_001, 3_000_000_160, 42);
        s.rewrite(at(NEW), &mut p);
        assert_eq!(fields(&p), (43, 8320, 9));
        // and a later device goes on from there, as in any transfer
        let mut p = rtp(7, 70, 5);
        s.rewrite(at(OLD), &mut p);
        assert_eq!(fields(&p), (44, 8480, 9));
    }

    #[test]
    fn numbering_wraps_across_the_splice() {
        let mut s = Splice::default();
        s.rewrite(at(OLD), &mut rtp(65_534, u32::MAX - 200, 1));
        s.rewrite(at(OLD), &mut rtp(65_535, u32::MAX - 40, 1));
        let mut p = rtp(30_000, 12, 2);
        s.rewrite(at(NEW), &mut p);
        assert_eq!(fields(&p), (0, 119, 1));
    }

    #[test]
    fn a_late_packet_of_the_new_device_keeps_its_place() {
        let mut s = Splice::default();
        s.rewrite(at(OLD), &mut rtp(10, 1600, 1));
        let mut first = rtp(500, 80_000, 2);
        s.rewrite(at(NEW), &mut first);
        let mut next = rtp(502, 80_320, 2);
        s.rewrite(at(NEW), &mut next);
        let mut late = rtp(501, 80_160, 2);
        s.rewrite(at(NEW), &mut late);
        assert_eq!(fields(&first).0, 11);
        assert_eq!(fields(&late).0, 12);
        assert_eq!(fields(&next).0, 13);
        let mut after = rtp(503, 80_480, 2);
        s.rewrite(at(NEW), &mut after);
        assert_eq!(fields(&after).0, 14, "a late packet does not move the numbering back");
    }

    #[test]
    fn not_rtp_is_left_alone() {
        let mut s = Splice::default();
        let mut short = vec![0x80, 0, 1];
        s.rewrite(at(OLD), &mut short);
        assert_eq!(short, vec![0x80, 0, 1]);
        let mut stun = rtp(1, 2, 3);
        stun[0] = 0x00;
        let before = stun.clone();
        s.rewrite(at(OLD), &mut stun);
        assert_eq!(stun, before);
    }
}
