//! RFC 4733 key presses written toward a SIP device (sans-IO): which packets
//! to send for one digit, and when. A browser sends DTMF as SIP INFO; most
//! doorbells and phones only understand telephone-events in the RTP stream.
use std::time::Duration;

/// RFC 4733 §3.2 event codes 0-15.
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
/// 20 ms of 8 kHz timestamp units per packet.
const STEP: u16 = 160;
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

/// The packets of one key press, all with the RTP timestamp of its start;
/// None for a character that is not a DTMF key.
pub fn key_press(digit: char) -> Option<Vec<EventPacket>> {
    let code = DIGITS.iter().position(|d| *d as char == digit.to_ascii_uppercase())? as u8;
    let payload = |end: bool, duration: u16| {
        let d = duration.to_be_bytes();
        [code, if end { 0x80 } else { 0 } | VOLUME, d[0], d[1]]
    };
    let mut packets: Vec<EventPacket> = (1..=TONE_PACKETS)
        .map(|i| EventPacket { after: Duration::from_millis(20 * (i as u64 - 1)), marker: i == 1, payload: payload(false, STEP * i) })
        .collect();
    let last = Duration::from_millis(20 * TONE_PACKETS as u64);
    for _ in 0..END_REPEATS {
        packets.push(EventPacket { after: last, marker: false, payload: payload(true, STEP * TONE_PACKETS) });
    }
    Some(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut detector = crate::media::dtmf::DtmfDetector::default();
        detector.set_payload_type(Some(101));
        let mut writer = super::super::rtp::RtpWriter::new(1, 1);
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
    }
}
