//! Key presses (and clips of our own audio) in the RTP stream the relay
//! sends toward one leg (sans-IO).
//!
//! Three jobs, all on the outgoing stream of one leg:
//! - write RFC 4733 key presses into it (a key the other side pressed in a
//!   way this leg's device does not understand),
//! - hold back the other side's telephone-events when this leg takes key
//!   presses another way (the signalling side sends them from the digits
//!   the detector reports), and
//! - play a clip: encoded 20 ms audio frames of our own (the park
//!   announcement), in place of the other side's audio while it lasts.
//!
//! Injected packets continue the stream the device already receives: its
//! SSRC, the next sequence numbers, a timestamp on its audio clock. Audio
//! from the other side waits while a key press or a clip plays (as in the
//! WebRTC bridge), and every forwarded packet after an injected or held-back
//! one is renumbered so the device sees no gap and no duplicate. Until then
//! packets pass untouched.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    clip: Option<Clip>,
}

/// One frame of a clip lasts this long (8 kHz G.711: 160 samples).
pub const CLIP_FRAME: Duration = Duration::from_millis(20);
/// A clip is cut to this many frames (30 s): the queue is bounded.
pub const MAX_CLIP_FRAMES: usize = 1500;
const CLIP_SAMPLES_PER_FRAME: u32 = 160;

/// Our own audio frames toward the device, one every CLIP_FRAME from `start`.
#[derive(Debug)]
struct Clip {
    pt: u8,
    frames: VecDeque<Vec<u8>>,
    start: Instant,
    /// RTP timestamp of the first frame, on the stream's audio clock.
    ts0: u32,
    sent: u32,
}

impl Clip {
    fn next_due(&self) -> Option<Instant> {
        (!self.frames.is_empty()).then(|| self.start + CLIP_FRAME * self.sent)
    }
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

impl Last {
    /// A stream of our own (no audio seen yet): random SSRC, sequence and
    /// timestamp, as RFC 3550 wants.
    fn fresh(now: Instant) -> Last {
        Last { ssrc: rand::random(), seq: rand::random(), ts: rand::random(), at: now, forwarded: false }
    }
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
        if (is_event && self.hold_back_events) || !self.presses.is_empty() || self.clip.is_some() {
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
        let last = *self.last.get_or_insert_with(|| Last::fresh(now));
        self.pt = pt;
        self.presses.press(digit, (last.ts, last.at), now)
    }

    /// Play `frames` (encoded 8 kHz audio of payload type `pt`, 20 ms each)
    /// from `now`, in place of the other side's audio; a clip playing is
    /// replaced. At most MAX_CLIP_FRAMES are kept.
    pub fn play(&mut self, pt: u8, mut frames: Vec<Vec<u8>>, now: Instant) {
        frames.truncate(MAX_CLIP_FRAMES);
        if frames.is_empty() {
            self.clip = None;
            return;
        }
        let last = *self.last.get_or_insert_with(|| Last::fresh(now));
        let elapsed = now.saturating_duration_since(last.at).as_millis() as u32;
        let ts0 = last.ts.wrapping_add(elapsed.wrapping_mul(8));
        self.clip = Some(Clip { pt: pt & 0x7f, frames: frames.into(), start: now, ts0, sent: 0 });
    }

    /// Stop a clip (a new device on this leg must not hear the rest).
    pub fn stop_clip(&mut self) {
        self.clip = None;
    }

    pub fn is_playing(&self) -> bool {
        self.clip.is_some()
    }

    /// When the next queued packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.presses.next_due(), self.clip.as_ref().and_then(Clip::next_due)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the next packet due by `now` into `out` (cleared first);
    /// false when none is due.
    pub fn pop_due(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let Some(last) = self.last.as_mut() else { return false };
        let Some((ts, packet)) = self.presses.pop_due(now) else { return self.pop_clip(now, out) };
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

    /// The clip's next frame, when due by `now` (a key press goes first).
    fn pop_clip(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let (Some(last), Some(clip)) = (self.last.as_mut(), self.clip.as_mut()) else { return false };
        if clip.next_due().is_none_or(|due| due > now) {
            return false;
        }
        let Some(frame) = clip.frames.pop_front() else { return false };
        let ts = clip.ts0.wrapping_add(clip.sent.wrapping_mul(CLIP_SAMPLES_PER_FRAME));
        let marker = clip.sent == 0;
        clip.sent += 1;
        last.seq = last.seq.wrapping_add(1);
        self.seq_offset = self.seq_offset.wrapping_add(1);
        out.clear();
        out.push(0x80);
        out.push(clip.pt | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&last.seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&last.ssrc.to_be_bytes());
        out.extend_from_slice(&frame);
        if clip.frames.is_empty() {
            self.clip = None;
        }
        true
    }
}
