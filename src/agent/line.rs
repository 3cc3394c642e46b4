//! The agent's end of the RTP stream (sans-IO): decodes what the caller's
//! side sends into 16 kHz frames for voice detection, notices key presses,
//! and writes our 20 ms G.711 packets (audio or RFC 4733 events).
use crate::media::audio::g711::G711;
use crate::media::audio::resample::Resampler;
use crate::media::rtp::{self, RtpWriter};
use crate::media::dtmf::{DtmfDetector, KeyPresses};
use std::time::{Duration, Instant};

/// 20 ms at 8 kHz.
pub const PACKET_SAMPLES: usize = 160;

/// Audio stops this long before a queued key press sounds.
const AUDIO_PAUSE_BEFORE_KEY: Duration = Duration::from_millis(160);

pub enum Heard {
    /// 16 kHz samples (any count; the caller frames them).
    Audio(Vec<i16>),
    Key(char),
}

pub struct Line {
    law: G711,
    event_pt: Option<u8>,
    dtmf: DtmfDetector,
    upsample: Resampler,
    writer: RtpWriter,
    /// The next packet's RTP timestamp.
    timestamp: u32,
    /// The last packet's timestamp and when it went out: the audio clock
    /// key presses continue.
    last_sent: Option<(u32, Instant)>,
    /// Key presses still to send (the scheduler the relay and the bridge use).
    presses: KeyPresses,
    scratch: Vec<i16>,
}

impl Line {
    pub fn new(law: G711, event_pt: Option<u8>) -> Line {
        let mut dtmf = DtmfDetector::default();
        dtmf.set_payload_type(event_pt);
        Line {
            law,
            event_pt,
            dtmf,
            upsample: Resampler::new(8000, 16000).expect("fixed rates"),
            writer: RtpWriter::new(rand::random(), rand::random()),
            timestamp: rand::random(),
            last_sent: None,
            presses: KeyPresses::default(),
            scratch: Vec::with_capacity(PACKET_SAMPLES),
        }
    }

    /// One packet from the far side.
    pub fn receive(&mut self, packet: &[u8]) -> Option<Heard> {
        if let Some(digit) = self.dtmf.on_rtp(packet) {
            return Some(Heard::Key(digit));
        }
        let view = rtp::parse(packet)?;
        let law = G711::from_payload_type(view.payload_type)?;
        // The caller's side may switch laws mid-call; decode what came.
        self.scratch.clear();
        law.decode(view.payload, &mut self.scratch);
        Some(Heard::Audio(self.upsample.process(&self.scratch)))
    }

    /// Queue RFC 4733 packets for `digits`, one key after the other.
    pub fn press(&mut self, digits: &str, now: Instant) {
        if self.event_pt.is_none() {
            tracing::info!("agent: the far side negotiated no telephone-event; keys not sent");
            return;
        }
        let clock = self.last_sent.unwrap_or((self.timestamp, now));
        for d in digits.chars() {
            self.presses.press(d, clock, now);
        }
    }

    /// Every 20 ms: the packets to send now. `audio` is 160 samples (or
    /// fewer: padded with silence). Audio pauses while a key is sounding
    /// (and just before one starts).
    pub fn tick(&mut self, audio: &[i16], now: Instant, out: &mut Vec<Vec<u8>>) {
        let mut sent_event = false;
        // Presses are only queued when a telephone-event type was negotiated.
        while let (Some(pt), Some((ts, p))) = (self.event_pt, self.presses.pop_due(now)) {
            let mut buf = Vec::with_capacity(16);
            self.writer.write(pt, ts, p.marker, &p.payload, &mut buf);
            out.push(buf);
            sent_event = true;
        }
        if !sent_event && self.presses.next_due().is_none_or(|due| due > now + AUDIO_PAUSE_BEFORE_KEY) {
            let mut payload = Vec::with_capacity(PACKET_SAMPLES);
            self.law.encode(audio, &mut payload);
            payload.resize(PACKET_SAMPLES, self.law.encode_one(0));
            let mut buf = Vec::with_capacity(12 + PACKET_SAMPLES);
            self.writer.write(self.law.payload_type(), self.timestamp, false, &payload, &mut buf);
            out.push(buf);
        }
        self.last_sent = Some((self.timestamp, now));
        self.timestamp = self.timestamp.wrapping_add(PACKET_SAMPLES as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut w = RtpWriter::new(1, 1);
        let mut buf = Vec::new();
        w.write(pt, 0, false, payload, &mut buf);
        buf
    }

    #[test]
    fn audio_comes_out_at_16_khz_and_ticks_send_one_packet_each() {
        let mut line = Line::new(G711::Pcmu, Some(101));
        let mut got = 0;
        for _ in 0..10 {
            if let Some(Heard::Audio(s)) = line.receive(&packet(0, &[0xff; 160])) {
                got += s.len();
            }
        }
        assert!((2900..=3200).contains(&got), "10 × 20 ms should be ~3200 samples at 16 kHz, got {got}");
        let mut out = Vec::new();
        line.tick(&[0; 160], Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
        let p = rtp::parse(&out[0]).unwrap();
        assert_eq!((p.payload_type, p.payload.len()), (0, 160));
    }

    #[test]
    fn a_pressed_key_goes_out_as_events_and_audio_pauses() {
        let mut line = Line::new(G711::Pcma, Some(101));
        let t0 = Instant::now();
        line.press("5", t0);
        let mut events = 0;
        let mut audio = 0;
        for k in 1..=30 {
            let mut out = Vec::new();
            line.tick(&[0; 160], t0 + Duration::from_millis(20 * k), &mut out);
            for p in out {
                match rtp::parse(&p).unwrap().payload_type {
                    101 => events += 1,
                    8 => audio += 1,
                    other => panic!("unexpected payload type {other}"),
                }
            }
        }
        assert_eq!(events, 11, "8 tone packets and 3 end packets");
        assert!(audio >= 15, "audio resumes after the key: {audio}");
    }

    #[test]
    fn keys_follow_one_another_on_the_audio_clock() {
        let mut line = Line::new(G711::Pcmu, Some(101));
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut out = Vec::new();
        line.tick(&[0; 160], t0, &mut out);
        let first_ts = rtp::parse(&out[0]).unwrap().timestamp;
        line.press("12", t0);
        for k in 1..=60 {
            out.clear();
            line.tick(&[0; 160], t0 + Duration::from_millis(20 * k), &mut out);
            sent.extend(out.iter().map(|p| rtp::parse(p).unwrap()).filter(|v| v.payload_type == 101).map(|v| (v.payload[0], v.timestamp)));
        }
        let digits: Vec<u8> = sent.iter().map(|(d, _)| *d).collect();
        let one = digits.iter().filter(|d| **d == 1).count();
        assert!(one > 0 && digits[..one].iter().all(|d| *d == 1) && digits[one..].iter().all(|d| *d == 2), "1 then 2: {digits:?}");
        let (ts1, ts2) = (sent[0].1, sent[one].1);
        assert!(ts1.wrapping_sub(first_ts) < 800, "the first key continues the audio clock");
        assert!(ts2.wrapping_sub(ts1) >= 8 * 100, "the second key starts after the first (and a gap): {ts1} {ts2}");
    }

    #[test]
    fn rubbish_is_ignored() {
        let mut line = Line::new(G711::Pcmu, None);
        assert!(line.receive(b"not rtp").is_none());
        assert!(line.receive(&packet(96, &[1, 2, 3])).is_none());
    }
}
