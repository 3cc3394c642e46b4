//! Keyframe requests toward a door preview's caller (sans-IO): every
//! previewing bridge asks for a picture on its own (a panel that joins late,
//! a lost frame), but the caller's one encoder needs one request for all of
//! them. Requests are aggregated: at most one per [`MIN_GAP`], the first at
//! once and any asked meanwhile sent when the gap is over (a FIR if any of
//! them was one, else a PLI). None before the caller's video SSRC is known:
//! a request names the stream it is for.
use crate::media::webrtc::{fir_packet, pli_packet};
use std::time::{Duration, Instant};

/// The shortest time between two keyframe requests to the caller.
pub const MIN_GAP: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct KeyframeGate {
    /// Our SSRC, the sender of the feedback.
    ssrc: u32,
    /// The caller's video SSRC, from its RTP.
    caller_ssrc: Option<u32>,
    last_sent: Option<Instant>,
    /// Asked while the gap ran: Some(fir).
    pending: Option<bool>,
    fir_seq: u8,
    /// Requests sent to the caller, and asked of us.
    pub sent: u64,
    pub asked: u64,
}

impl KeyframeGate {
    pub fn new(ssrc: u32) -> Self {
        KeyframeGate { ssrc, caller_ssrc: None, last_sent: None, pending: None, fir_seq: 0, sent: 0, asked: 0 }
    }

    /// A video packet of the caller's, with its SSRC: a request held for
    /// the gap (or for the SSRC) may go now.
    pub fn on_caller_rtp(&mut self, ssrc: u32, now: Instant) -> Option<Vec<u8>> {
        self.caller_ssrc = Some(ssrc);
        self.poll(now)
    }

    /// A bridge asks for a keyframe (`fir`: a FIR, else a PLI): the RTCP to
    /// send to the caller now, or None (held, or nothing to name yet).
    pub fn on_request(&mut self, fir: bool, now: Instant) -> Option<Vec<u8>> {
        self.asked += 1;
        self.pending = Some(self.pending.unwrap_or(false) || fir);
        self.poll(now)
    }

    fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        let fir = self.pending?;
        let media = self.caller_ssrc?;
        if self.last_sent.is_some_and(|t| now.saturating_duration_since(t) < MIN_GAP) {
            return None;
        }
        self.pending = None;
        self.last_sent = Some(now);
        self.sent += 1;
        if fir {
            self.fir_seq = self.fir_seq.wrapping_add(1);
            return Some(fir_packet(self.ssrc, media, self.fir_seq));
        }
        Some(pli_packet(self.ssrc, media))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_several_bridges_make_one_per_gap_to_the_caller() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(7);
        assert_eq!(g.on_request(false, t0), None, "no caller SSRC to name yet");
        let first = g.on_caller_rtp(0xdead_beef, t0).expect("the held request goes with the first packet");
        assert_eq!(first, pli_packet(7, 0xdead_beef));
        // Three bridges ask within the gap: held, one of them a FIR.
        for (ms, fir) in [(10, false), (20, true), (30, false)] {
            assert_eq!(g.on_request(fir, t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(g.on_caller_rtp(0xdead_beef, t0 + Duration::from_millis(400)), None, "the gap is not over");
        let held = g.on_caller_rtp(0xdead_beef, t0 + MIN_GAP).expect("sent once the gap is over");
        assert_eq!(held, fir_packet(7, 0xdead_beef, 1), "a FIR when any bridge asked for one");
        assert_eq!(g.on_caller_rtp(0xdead_beef, t0 + MIN_GAP * 3), None, "nothing asked: nothing sent");
        assert_eq!((g.asked, g.sent), (4, 2));
        // Asked again after a quiet while: at once, a PLI, and the next FIR has a new number.
        assert_eq!(g.on_request(false, t0 + MIN_GAP * 4), Some(pli_packet(7, 0xdead_beef)));
        let fir = g.on_request(true, t0 + MIN_GAP * 6).unwrap();
        assert_eq!(fir[16], 2, "a new FIR, a new sequence number");
    }

    #[test]
    fn a_flood_of_requests_stays_within_the_gap() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(1);
        g.on_caller_rtp(2, t0);
        let sent = (0..10_000u64).filter(|i| g.on_request(i % 2 == 0, t0 + Duration::from_millis(*i)).is_some()).count();
        assert_eq!(sent, 20, "10 s of requests every millisecond: one per {MIN_GAP:?}");
    }
}
