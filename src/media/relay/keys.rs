//! Key presses in the RTP stream the relay sends toward one leg (sans-IO).
//!
//! Two jobs, both on the outgoing stream of one leg:
//! - write RFC 4733 key presses into it (a key the other side pressed in a
//!   way this leg's device does not understand), and
//! - hold back the other side's telephone-events when this leg takes key
//!   presses another way (the signalling side sends them from the digits
//!   the detector reports).
//!
//! Injected packets continue the stream the device already receives: its
//! SSRC, the next sequence numbers, a timestamp on its audio clock. Audio
//! from the other side waits while a key press plays (as in the WebRTC
//! bridge), and every forwarded packet after an injected or held-back one
//! is renumbered so the device sees no gap and no duplicate. Until then
//! packets pass untouched.
use std::time::Instant;

use crate::media::dtmf::{self, KeyPresses};

#[derive(Debug, Default)]
pub struct KeyInjector {
    last: Option<Last>,
    /// Added to forwarded sequence numbers: +1 per injected packet, -1 per
    /// packet held back.
    seq_offset: u16,
    /// Drop the other side's telephone-events instead of forwarding them.
    hold_back_events: bool,
    presses: KeyPresses,
    /// The telephone-event payload type of the last press queued.
    pt: u8,
}

/// The stream as the device sees it.
#[derive(Debug, Clone, Copy)]
struct Last {
    ssrc: u32,
    seq: u16,
    /// Audio clock: the last forwarded timestamp and when it was sent.
    ts: u32,
    at: Instant,
    /// False while the stream is only our own key presses (no audio yet).
    forwarded: bool,
}

impl KeyInjector {
    pub fn set_hold_back_events(&mut self, on: bool) {
        self.hold_back_events = on;
    }

    /// A packet about to be forwarded toward this leg; `event_pt` is the
    /// telephone-event type of the side it comes from. False: do not send it.
    pub fn on_forward(&mut self, packet: &mut [u8], event_pt: Option<u8>, now: Instant) -> bool {
        // RTCP muxed on the RTP port (types 200-204) is not part of the stream.
        if packet.len() < 12 || packet[0] >> 6 != 2 || (72..=76).contains(&(packet[1] & 0x7f)) {
            return true;
        }
        let is_event = event_pt == Some(packet[1] & 0x7f);
        if (is_event && self.hold_back_events) || !self.presses.is_empty() {
            self.seq_offset = self.seq_offset.wrapping_sub(1);
            return false;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        match &mut self.last {
            // Audio starting after our own presses: its numbering wins.
            Some(last) if !last.forwarded && last.ssrc != ssrc => {
                self.seq_offset = 0;
                self.last = Some(Last { ssrc, seq, ts, at: now, forwarded: true });
            }
            // Another SSRC of the same device (rare) passes as it is.
            Some(last) if last.ssrc != ssrc => {}
            Some(last) => {
                let out_seq = seq.wrapping_add(self.seq_offset);
                if self.seq_offset != 0 {
                    packet[2..4].copy_from_slice(&out_seq.to_be_bytes());
                }
                *last = Last { ssrc, seq: out_seq, ts, at: now, forwarded: true };
            }
            None => self.last = Some(Last { ssrc, seq, ts, at: now, forwarded: true }),
        }
        true
    }

    /// Queue one key press with payload type `pt`, after any already
    /// queued. False for a character that is not a key.
    pub fn press(&mut self, digit: char, pt: u8, now: Instant) -> bool {
        if !dtmf::is_key(digit) {
            return false;
        }
        let last = *self.last.get_or_insert_with(|| Last {
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            at: now,
            forwarded: false,
        });
        self.pt = pt;
        self.presses.press(digit, (last.ts, last.at), now)
    }

    /// When the next queued packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.presses.next_due()
    }

    /// Writes the next packet due by `now` into `out` (cleared first);
    /// false when none is due.
    pub fn pop_due(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let Some(last) = self.last.as_mut() else { return false };
        let Some((ts, packet)) = self.presses.pop_due(now) else { return false };
        let pt = self.pt;
        last.seq = last.seq.wrapping_add(1);
        self.seq_offset = self.seq_offset.wrapping_add(1);
        out.clear();
        out.push(0x80);
        out.push((pt & 0x7f) | if packet.marker { 0x80 } else { 0 });
        out.extend_from_slice(&last.seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&last.ssrc.to_be_bytes());
        out.extend_from_slice(&packet.payload);
        true
    }
}
