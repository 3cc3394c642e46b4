//! The agent's end of the RTP stream (sans-IO): decodes what the caller's
//! side sends into 16 kHz frames for voice detection, notices key presses,
//! and writes our 20 ms G.711 packets (audio or RFC 4733 events).
use crate::media::audio::g711::Law;
use crate::media::audio::resample::Resampler;
use crate::media::webrtc::rtp::{self, RtpWriter};
use crate::media::dtmf::{self, DtmfDetector, EventPacket};
use std::collections::VecDeque;

/// 20 ms at 8 kHz.
pub const PACKET_SAMPLES: usize = 160;

pub enum Heard {
    /// 16 kHz samples (any count; the caller frames them).
    Audio(Vec<i16>),
    Key(char),
}

pub struct Line {
    law: Law,
    event_pt: Option<u8>,
    dtmf: DtmfDetector,
    upsample: Resampler,
    writer: RtpWriter,
    timestamp: u32,
    /// Key presses still to send: packets and the tick each is due on.
    events: VecDeque<(u64, u32, EventPacket)>,
    ticks: u64,
    scratch: Vec<i16>,
}

impl Line {
    pub fn new(law: Law, event_pt: Option<u8>) -> Line {
        let mut dtmf = DtmfDetector::default();
        dtmf.set_payload_type(event_pt);
        Line {
            law,
            event_pt,
            dtmf,
            upsample: Resampler::new(8000, 16000).expect("fixed rates"),
            writer: RtpWriter::new(rand::random(), rand::random()),
            timestamp: rand::random(),
            events: VecDeque::new(),
            ticks: 0,
            scratch: Vec::with_capacity(PACKET_SAMPLES),
        }
    }

    /// One packet from the far side.
    pub fn receive(&mut self, packet: &[u8]) -> Option<Heard> {
        if let Some(digit) = self.dtmf.on_rtp(packet) {
            return Some(Heard::Key(digit));
        }
        let view = rtp::parse(packet)?;
        let law = Law::from_payload_type(view.payload_type)?;
        // The caller's side may switch laws mid-call; decode what came.
        self.scratch.clear();
        law.decode(view.payload, &mut self.scratch);
        Some(Heard::Audio(self.upsample.process(&self.scratch)))
    }

    /// Queue RFC 4733 packets for `digits`, one key after the other.
    pub fn press(&mut self, digits: &str) {
        if self.event_pt.is_none() {
            tracing::info!("agent: the far side negotiated no telephone-event; keys not sent");
            return;
        }
        let mut start = self.ticks.max(self.events.back().map(|(t, _, _)| t + 3).unwrap_or(0)) + 1;
        for d in digits.chars() {
            let Some(packets) = dtmf::key_press(d) else { continue };
            let ts = self.timestamp.wrapping_add(((start - self.ticks) as u32) * PACKET_SAMPLES as u32);
            let mut last = start;
            for p in packets {
                last = start + (p.after.as_millis() / 20) as u64;
                self.events.push_back((last, ts, p));
            }
            start = last + 4;
        }
    }

    /// Every 20 ms: the packets to send now. `audio` is 160 samples (or
    /// fewer: padded with silence). Audio pauses while a key is sounding.
    pub fn tick(&mut self, audio: &[i16], out: &mut Vec<Vec<u8>>) {
        self.ticks += 1;
        let mut sent_event = false;
        // Events are only queued when a telephone-event type was negotiated.
        while let (Some(&(due, ts, p)), Some(pt)) = (self.events.front(), self.event_pt) {
            if due > self.ticks {
                break;
            }
            self.events.pop_front();
            let mut buf = Vec::with_capacity(16);
            self.writer.write(pt, ts, p.marker, &p.payload, &mut buf);
            out.push(buf);
            sent_event = true;
        }
        if !sent_event && self.events.front().is_none_or(|(due, _, _)| *due > self.ticks + 8) {
            let mut payload = Vec::with_capacity(PACKET_SAMPLES);
            self.law.encode(audio, &mut payload);
            payload.resize(PACKET_SAMPLES, self.law.encode_one(0));
            let mut buf = Vec::with_capacity(12 + PACKET_SAMPLES);
            self.writer.write(self.law.payload_type(), self.timestamp, false, &payload, &mut buf);
            out.push(buf);
        }
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
        let mut line = Line::new(Law::Ulaw, Some(101));
        let mut got = 0;
        for _ in 0..10 {
            if let Some(Heard::Audio(s)) = line.receive(&packet(0, &[0xff; 160])) {
                got += s.len();
            }
        }
        assert!((2900..=3200).contains(&got), "10 × 20 ms should be ~3200 samples at 16 kHz, got {got}");
        let mut out = Vec::new();
        line.tick(&[0; 160], &mut out);
        assert_eq!(out.len(), 1);
        let p = rtp::parse(&out[0]).unwrap();
        assert_eq!((p.payload_type, p.payload.len()), (0, 160));
    }

    #[test]
    fn a_pressed_key_goes_out_as_events_and_audio_pauses() {
        let mut line = Line::new(Law::Alaw, Some(101));
        line.press("5");
        let mut events = 0;
        let mut audio = 0;
        for _ in 0..30 {
            let mut out = Vec::new();
            line.tick(&[0; 160], &mut out);
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
    fn rubbish_is_ignored() {
        let mut line = Line::new(Law::Ulaw, None);
        assert!(line.receive(b"not rtp").is_none());
        assert!(line.receive(&packet(96, &[1, 2, 3])).is_none());
    }
}
