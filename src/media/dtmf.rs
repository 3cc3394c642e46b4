//! RFC 4733 telephone-events (sans-IO): which digit a device sent, and the
//! packets of a key press we send (toward a SIP device from a browser's or
//! an INFO device's key, or from the agent).
//!
//! A key press is a run of packets with one RTP timestamp; its last three
//! packets carry the end bit. We report the digit once, at the first end
//! packet of a timestamp, so retransmitted ends do not repeat it.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct DtmfDetector {
    pt: Option<u8>,
    last_reported_ts: Option<u32>,
}

/// RFC 4733 §3.2 event codes 0-15.
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";

impl DtmfDetector {
    /// The payload type negotiated for telephone-event; None turns detection off.
    pub fn set_payload_type(&mut self, pt: Option<u8>) {
        self.pt = pt;
    }

    pub fn payload_type(&self) -> Option<u8> {
        self.pt
    }

    /// Look at one RTP packet; Some(digit) when a key press just ended.
    pub fn on_rtp(&mut self, packet: &[u8]) -> Option<char> {
        let pt = self.pt?;
        if packet.len() < 16 || packet[0] >> 6 != 2 || packet[1] & 0x7f != pt {
            return None;
        }
        let csrc = usize::from(packet[0] & 0x0f);
        let mut offset = 12 + 4 * csrc;
        if packet[0] & 0x10 != 0 {
            // Header extension: 4 bytes of header, then `length` words.
            let ext = packet.get(offset + 2..offset + 4)?;
            offset += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        }
        let payload = packet.get(offset..offset + 4)?;
        let (event, end) = (payload[0], payload[1] & 0x80 != 0);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if !end || event > 15 || self.last_reported_ts == Some(ts) {
            return None;
        }
        self.last_reported_ts = Some(ts);
        Some(DIGITS[usize::from(event)] as char)
    }
}

/// One packet every 20 ms.
const PACKET_MS: u16 = 20;
/// A 160 ms tone, then the end packet sent three times (RFC 4733 §2.5.1.4).
const TONE_PACKETS: u16 = 8;
const END_REPEATS: usize = 3;
/// -10 dBm0, a usual level for generated DTMF.
const VOLUME: u8 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// When to send it, from the first packet.
    pub after: Duration,
    /// First packet of the event (RTP marker bit).
    pub marker: bool,
    pub payload: [u8; 4],
}

/// The packets of one key press on an 8 kHz stream (G.711), all with the
/// RTP timestamp of its start; None for a character that is not a DTMF key.
pub fn key_press(digit: char) -> Option<Vec<EventPacket>> {
    key_press_clocked(digit, G711_CLOCK_PER_MS)
}

/// [`key_press`] on a stream clocked at `per_ms` units a millisecond: the
/// durations count in the event's own clock (48 for Opus' 48 kHz).
fn key_press_clocked(digit: char, per_ms: u32) -> Option<Vec<EventPacket>> {
    let step = PACKET_MS * per_ms as u16;
    let code = DIGITS.iter().position(|d| *d as char == digit.to_ascii_uppercase())? as u8;
    let payload = |end: bool, duration: u16| {
        let d = duration.to_be_bytes();
        [code, if end { 0x80 } else { 0 } | VOLUME, d[0], d[1]]
    };
    let mut packets: Vec<EventPacket> = (1..=TONE_PACKETS)
        .map(|i| EventPacket { after: Duration::from_millis(20 * (i as u64 - 1)), marker: i == 1, payload: payload(false, step * i) })
        .collect();
    let last = Duration::from_millis(20 * TONE_PACKETS as u64);
    for _ in 0..END_REPEATS {
        packets.push(EventPacket { after: last, marker: false, payload: payload(true, step * TONE_PACKETS) });
    }
    Some(packets)
}

/// Whether `c` is a DTMF key (0-9, *, #, A-D).
pub fn is_key(c: char) -> bool {
    DIGITS.contains(&(c.to_ascii_uppercase() as u8))
}

/// telephone-event is clocked at 8 kHz on the G.711 streams it is sent in.
const G711_CLOCK_PER_MS: u32 = 8;
/// Quiet between two queued key presses.
const GAP: Duration = Duration::from_millis(60);

/// Key presses waiting to go into one RTP stream, one after another: each
/// packet with when it is due and its event's timestamp, which carries on
/// the stream's audio clock. Used wherever we write key presses into a
/// stream (the relay and the WebRTC bridge toward a device, the agent's line).
#[derive(Debug)]
pub struct KeyPresses {
    queue: VecDeque<(Instant, u32, EventPacket)>,
    /// The stream's RTP clock in units a millisecond.
    per_ms: u32,
}

impl Default for KeyPresses {
    fn default() -> Self {
        KeyPresses { queue: VecDeque::new(), per_ms: G711_CLOCK_PER_MS }
    }
}

impl KeyPresses {
    /// The RTP clock of the stream the events go into, in Hz (8000 for
    /// G.711, the default; 48000 for Opus). Applies to later presses.
    pub fn set_clock(&mut self, hz: u32) {
        self.per_ms = (hz / 1000).max(1);
    }

    /// Queue `digit` after any press already queued. `clock`: the stream's
    /// last RTP timestamp and when it was sent. False: not a key.
    pub fn press(&mut self, digit: char, clock: (u32, Instant), now: Instant) -> bool {
        let Some(packets) = key_press_clocked(digit, self.per_ms) else { return false };
        let start = self.queue.back().map_or(now, |(due, ..)| *due + GAP).max(now);
        let elapsed = start.saturating_duration_since(clock.1).as_millis() as u32;
        let ts = clock.0.wrapping_add(elapsed.wrapping_mul(self.per_ms));
        self.queue.extend(packets.into_iter().map(|p| (start + p.after, ts, p)));
        true
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, ..)| *due)
    }

    /// The next packet due by `now`, with its event timestamp.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, EventPacket)> {
        let (due, ts, packet) = *self.queue.front()?;
        (due <= now).then(|| {
            self.queue.pop_front();
            (ts, packet)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pt: u8, ts: u32, digit: u8, end: bool) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 7]);
        p.extend_from_slice(&[digit, if end { 0x8a } else { 0x0a }, 0x03, 0x20]);
        p
    }

    #[test]
    fn reports_each_key_press_once_at_its_end() {
        let mut d = DtmfDetector::default();
        assert_eq!(d.on_rtp(&event(101, 1000, 5, true)), None, "off until a payload type is set");
        d.set_payload_type(Some(101));
        assert_eq!(d.on_rtp(&event(101, 1000, 5, false)), None);
        assert_eq!(d.on_rtp(&event(101, 1000, 5, true)), Some('5'));
        assert_eq!(d.on_rtp(&event(101, 1000, 5, true)), None, "retransmitted end");
        assert_eq!(d.on_rtp(&event(101, 2000, 11, true)), Some('#'));
        assert_eq!(d.on_rtp(&event(101, 3000, 10, true)), Some('*'));
        assert_eq!(d.on_rtp(&event(0, 4000, 1, true)), None, "audio payload type");
        assert_eq!(d.on_rtp(&event(101, 5000, 16, true)), None, "not a DTMF event");
    }

    #[test]
    fn malformed_packets_are_ignored() {
        let mut d = DtmfDetector::default();
        d.set_payload_type(Some(101));
        for p in [vec![], vec![0x80, 101], vec![0x9f; 20], vec![0x80, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]] {
            assert_eq!(d.on_rtp(&p), None);
        }
        // Header extension longer than the packet.
        let mut p = event(101, 9, 1, true);
        p[0] |= 0x10;
        assert_eq!(d.on_rtp(&p), None);
    }

    #[test]
    fn a_key_press_is_a_marked_start_growing_durations_and_three_ends() {
        let p = key_press('#').unwrap();
        assert_eq!(p.len(), 11);
        assert!(p[0].marker && p[1..].iter().all(|x| !x.marker));
        assert!(p.iter().all(|x| x.payload[0] == 11), "# is event 11");
        assert_eq!(u16::from_be_bytes([p[0].payload[2], p[0].payload[3]]), 160);
        assert_eq!(u16::from_be_bytes([p[7].payload[2], p[7].payload[3]]), 1280);
        assert!(p[..8].iter().all(|x| x.payload[1] & 0x80 == 0));
        assert!(p[8..].iter().all(|x| x.payload[1] & 0x80 != 0 && x.after == Duration::from_millis(160)));
    }

    #[test]
    fn the_detector_reads_back_what_we_write() {
        let mut detector = DtmfDetector::default();
        detector.set_payload_type(Some(101));
        let mut writer = crate::media::rtp::RtpWriter::new(1, 1);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for p in key_press('7').unwrap() {
            writer.write(101, 8000, p.marker, &p.payload, &mut buf);
            seen.extend(detector.on_rtp(&buf));
        }
        assert_eq!(seen, vec!['7']);
    }

    #[test]
    fn other_characters_are_not_keys() {
        assert!(key_press('x').is_none());
        assert!(key_press('a').is_some(), "A-D are keys too");
        assert!(is_key('#') && is_key('d') && !is_key('x') && !is_key(' '));
    }

    #[test]
    fn queued_presses_follow_each_other_on_the_stream_clock() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = KeyPresses::default();
        assert!(!q.press('x', (1000, t0), t0));
        assert!(q.is_empty() && q.next_due().is_none());
        // The stream's last packet went out 40 ms ago with timestamp 1000.
        assert!(q.press('1', (1000, t0), t0 + ms(40)));
        assert!(q.press('2', (1000, t0), t0 + ms(40)));
        assert_eq!(q.next_due(), Some(t0 + ms(40)));
        assert_eq!(q.pop_due(t0 + ms(39)), None, "not due yet");
        let mut first = Vec::new();
        while let Some((ts, p)) = q.pop_due(t0 + ms(200)) {
            first.push((ts, p));
        }
        assert_eq!(first.len(), 11, "the whole first press, ends included");
        assert!(first.iter().all(|(ts, _)| *ts == 1000 + 40 * 8));
        // The second starts 60 ms after the first's last packet (at +200 ms).
        assert_eq!(q.next_due(), Some(t0 + ms(260)));
        let (ts, p) = q.pop_due(t0 + ms(260)).unwrap();
        assert_eq!((ts, p.marker, p.payload[0]), (1000 + 260 * 8, true, 2));
    }

    #[test]
    fn on_a_48_khz_stream_timestamps_and_durations_count_in_its_clock() {
        let t0 = Instant::now();
        let mut q = KeyPresses::default();
        q.set_clock(48_000);
        assert!(q.press('9', (5000, t0), t0 + Duration::from_millis(10)));
        let packets: Vec<_> = std::iter::from_fn(|| q.pop_due(t0 + Duration::from_secs(1))).collect();
        assert_eq!(packets.len(), 11);
        assert!(packets.iter().all(|(ts, _)| *ts == 5000 + 10 * 48));
        let duration = |p: &EventPacket| u16::from_be_bytes([p.payload[2], p.payload[3]]);
        assert_eq!(duration(&packets[0].1), 960, "20 ms at 48 kHz");
        assert_eq!(duration(&packets[10].1), 7680, "160 ms at 48 kHz");
    }
}
