use std::time::{Duration, Instant};

use super::keys::{KeyInjector, MAX_CLIP_FRAMES};
use crate::media::dtmf::DtmfDetector;

const SSRC: u32 = 0xdead_beef;

fn rtp(pt: u8, seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn seq(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}

fn ts(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

fn ssrc(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

/// Every packet due by `until`, in order.
fn drain(k: &mut KeyInjector, until: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while k.pop_due(until, &mut buf) {
        out.push(buf.clone());
    }
    out
}

#[test]
fn without_key_presses_packets_pass_untouched() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    for i in 0..5u16 {
        let mut p = rtp(0, 100 + i, 160 * i as u32);
        let before = p.clone();
        assert!(k.on_forward(&mut p, Some(101), t0));
        assert_eq!(p, before);
    }
    let mut event = rtp(101, 105, 800);
    assert!(k.on_forward(&mut event, Some(101), t0), "events pass unless held back");
    assert!(k.next_due().is_none());
}

#[test]
fn a_press_continues_the_stream_and_the_audio_after_it_is_renumbered() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    assert!(k.on_forward(&mut rtp(0, 1000, 8000), Some(101), t0));
    let pressed = t0 + Duration::from_millis(40);
    assert!(k.press('5', 96, pressed));
    assert!(!k.press('x', 96, pressed), "not a key");
    assert_eq!(k.next_due(), Some(pressed));
    // Audio arriving while the key plays is held back.
    assert!(!k.on_forward(&mut rtp(0, 1001, 8160), Some(101), pressed));
    let packets = drain(&mut k, pressed + Duration::from_secs(1));
    assert_eq!(packets.len(), 11);
    let seqs: Vec<u16> = packets.iter().map(|p| seq(p)).collect();
    assert_eq!(seqs, (1001..1012).collect::<Vec<_>>(), "numbers follow the last audio packet");
    assert!(packets.iter().all(|p| ssrc(p) == SSRC && p[1] & 0x7f == 96));
    assert!(packets.iter().all(|p| ts(p) == 8000 + 40 * 8), "one timestamp: the audio clock at the press");
    assert_eq!(packets[0][1] & 0x80, 0x80, "marker on the first packet");
    assert!(packets[1..].iter().all(|p| p[1] & 0x80 == 0));
    assert!(packets.iter().all(|p| p[12] == 5));
    assert_eq!(packets.iter().filter(|p| p[13] & 0x80 != 0).count(), 3, "end sent three times");
    // Audio resumes right after the events: 1002 was the next audio number.
    let mut next = rtp(0, 1002, 8320);
    assert!(k.on_forward(&mut next, Some(101), pressed + Duration::from_millis(200)));
    assert_eq!(seq(&next), 1012);
    assert_eq!(ts(&next), 8320, "timestamps are left alone");
    let mut detector = DtmfDetector::default();
    detector.set_payload_type(Some(96));
    let digits: Vec<char> = packets.iter().filter_map(|p| detector.on_rtp(p)).collect();
    assert_eq!(digits, ['5']);
}

#[test]
fn queued_presses_play_one_after_the_other() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    k.on_forward(&mut rtp(0, 1, 0), None, t0);
    k.press('1', 101, t0);
    k.press('2', 101, t0);
    let all = drain(&mut k, t0 + Duration::from_secs(2));
    assert_eq!(all.len(), 22);
    assert!(ts(&all[11]) > ts(&all[0]), "the second press starts later on the clock");
    let mut k2 = KeyInjector::default();
    k2.press('1', 101, t0);
    k2.press('2', 101, t0);
    let early = drain(&mut k2, t0 + Duration::from_millis(200));
    assert_eq!(early.len(), 11, "the second press waits for the first");
}

#[test]
fn held_back_events_leave_no_gap() {
    let mut k = KeyInjector::default();
    k.set_hold_back_events(true);
    let t0 = Instant::now();
    assert!(k.on_forward(&mut rtp(0, 10, 0), Some(101), t0));
    assert!(!k.on_forward(&mut rtp(101, 11, 160), Some(101), t0));
    assert!(!k.on_forward(&mut rtp(101, 12, 160), Some(101), t0));
    let mut audio = rtp(0, 13, 480);
    assert!(k.on_forward(&mut audio, Some(101), t0));
    assert_eq!(seq(&audio), 11);
    // Without a negotiated type nothing is an event.
    assert!(k.on_forward(&mut rtp(101, 14, 640), None, t0));
    // Muxed RTCP (a receiver report) passes untouched, even while a key plays.
    k.press('1', 101, t0);
    let mut report = vec![0x81, 201, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8];
    let before = report.clone();
    assert!(k.on_forward(&mut report, Some(101), t0));
    assert_eq!(report, before);
}

#[test]
fn a_press_before_any_audio_makes_a_stream_of_its_own() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    k.press('#', 101, t0);
    let events = drain(&mut k, t0 + Duration::from_secs(1));
    assert_eq!(events.len(), 11);
    assert!(events.windows(2).all(|w| seq(&w[1]) == seq(&w[0]).wrapping_add(1)));
    let mut audio = rtp(0, 500, 0);
    let before = audio.clone();
    assert!(k.on_forward(&mut audio, None, t0 + Duration::from_secs(1)));
    assert_eq!(audio, before, "the device's own stream keeps its numbers");
}

#[test]
fn a_clip_replaces_the_audio_paced_on_the_stream_and_the_audio_after_it_is_renumbered() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    assert!(k.on_forward(&mut rtp(0, 1000, 8000), Some(101), t0));
    let start = t0 + Duration::from_millis(40);
    let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 160]).collect();
    k.play(0, frames, start);
    assert!(k.is_playing());
    assert_eq!(k.next_due(), Some(start));
    // The other side's audio waits while the clip plays.
    assert!(!k.on_forward(&mut rtp(0, 1001, 8160), Some(101), start));
    // Paced: three frames by 40 ms after the start, not five.
    let early = drain(&mut k, start + Duration::from_millis(40));
    assert_eq!(early.len(), 3);
    assert_eq!(k.next_due(), Some(start + Duration::from_millis(60)));
    let rest = drain(&mut k, start + Duration::from_secs(1));
    assert_eq!(rest.len(), 2);
    assert!(!k.is_playing() && k.next_due().is_none());
    let all: Vec<Vec<u8>> = early.into_iter().chain(rest).collect();
    let seqs: Vec<u16> = all.iter().map(|p| seq(p)).collect();
    assert_eq!(seqs, (1001..1006).collect::<Vec<_>>(), "numbers follow the last audio packet");
    let stamps: Vec<u32> = all.iter().map(|p| ts(p)).collect();
    assert_eq!(stamps, (0..5).map(|i| 8000 + 40 * 8 + 160 * i).collect::<Vec<_>>(), "the audio clock at the start, 160 a frame");
    assert!(all.iter().all(|p| ssrc(p) == SSRC && p[1] & 0x7f == 0 && p.len() == 12 + 160));
    assert_eq!(all[0][1] & 0x80, 0x80, "marker on the first frame");
    assert!(all[1..].iter().all(|p| p[1] & 0x80 == 0));
    assert!(all.iter().enumerate().all(|(i, p)| p[12..].iter().all(|&b| b == i as u8)), "the frames in order");
    // After the clip the other side is heard again, numbered on.
    let mut next = rtp(0, 1002, 8320);
    assert!(k.on_forward(&mut next, Some(101), start + Duration::from_secs(1)));
    assert_eq!(seq(&next), 1006);
}

#[test]
fn a_clip_is_bounded_stopped_and_an_empty_one_plays_nothing() {
    let mut k = KeyInjector::default();
    let t0 = Instant::now();
    k.play(8, vec![vec![0xd5; 160]; MAX_CLIP_FRAMES + 100], t0);
    let all = drain(&mut k, t0 + Duration::from_secs(3600));
    assert_eq!(all.len(), MAX_CLIP_FRAMES, "cut to the bound");
    assert!(all.windows(2).all(|w| seq(&w[1]) == seq(&w[0]).wrapping_add(1)));
    k.play(8, vec![vec![0xd5; 160]; 10], t0);
    assert_eq!(drain(&mut k, t0).len(), 1);
    k.stop_clip();
    assert!(!k.is_playing());
    assert!(drain(&mut k, t0 + Duration::from_secs(10)).is_empty(), "nothing after a stop");
    assert!(k.on_forward(&mut rtp(0, 7, 0), None, t0), "audio passes again");
    k.play(8, Vec::new(), t0);
    assert!(!k.is_playing() && k.next_due().is_none());
}
