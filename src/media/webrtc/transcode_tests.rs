//! A tone through G.711 → Opus → G.711 keeps its frequency and level, with
//! and without lost packets; timestamps move between the 8 and 48 kHz clocks.
use super::*;

const RATE: f64 = 8000.0;

fn tone(hz: f64, dbfs: f64, samples: usize) -> Vec<i16> {
    let amplitude = 32767.0 * 10f64.powf(dbfs / 20.0) * std::f64::consts::SQRT_2;
    (0..samples).map(|n| (amplitude * (2.0 * std::f64::consts::PI * hz * n as f64 / RATE).sin()) as i16).collect()
}

fn rms_dbfs(samples: &[i16]) -> f64 {
    let power = samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    10.0 * (power / (32767.0f64 * 32767.0)).log10()
}

/// Goertzel power at `hz`.
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / RATE).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in samples {
        let s = *x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

fn peak_hz(samples: &[i16]) -> f64 {
    (20..=380).map(|f| f as f64 * 10.0).max_by(|a, b| power_at(samples, *a).total_cmp(&power_at(samples, *b))).unwrap()
}

fn decode_frames(law: G711, frames: &[Frame]) -> Vec<i16> {
    frames.iter().flat_map(|f| f.payload.iter().map(|b| law.decode_one(*b))).collect()
}

/// The device's tone as 20 ms G.711 packets, encoded to Opus as the bridge
/// sends it to the browser.
fn opus_packets(law: G711, pcm: &[i16]) -> Vec<Frame> {
    let mut encoder = G711ToOpus::new(law).unwrap();
    let mut opus = Vec::new();
    for (i, chunk) in pcm.chunks(FRAME).enumerate() {
        let g711: Vec<u8> = chunk.iter().map(|s| law.encode_one(*s)).collect();
        encoder.push(1000 + (i * FRAME) as u32, &g711, &mut opus);
    }
    opus
}

/// Frames must follow one another without a gap or an overlap.
fn assert_contiguous(frames: &[Frame]) {
    for pair in frames.windows(2) {
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(pair[0].payload.len() as u32), "gap or overlap");
    }
}

#[test]
fn a_tone_keeps_frequency_and_level_through_opus_and_back() {
    for (law, hz) in [(G711::Pcmu, 1000.0), (G711::Pcma, 440.0), (G711::Pcmu, 2200.0)] {
        let input = tone(hz, -12.0, 8000 * 2);
        let opus = opus_packets(law, &input);
        assert_eq!(opus.len(), 100, "one Opus frame per 20 ms");
        assert_eq!(opus[1].timestamp - opus[0].timestamp, 960, "48 kHz RTP clock");
        assert_eq!(opus[0].timestamp, 6000);
        assert!(opus.iter().all(|f| f.payload.len() < 160), "compressed");

        let mut decoder = OpusToG711::new(law).unwrap();
        let mut back = Vec::new();
        for f in &opus {
            decoder.push(f.timestamp as u64, &f.payload, &mut back);
        }
        assert_eq!(back.len(), 100);
        assert!(back.iter().all(|f| f.payload.len() == FRAME && !f.concealed));
        assert_eq!(back[0].timestamp, 1000, "back on the 8 kHz clock");
        assert_contiguous(&back);

        let output = decode_frames(law, &back);
        let steady = &output[1600..]; // past the codec's start-up
        let got = peak_hz(steady);
        assert!((got - hz).abs() <= 10.0, "{law:?}: {hz} Hz came back as {got} Hz");
        let level = rms_dbfs(steady);
        assert!((level + 12.0).abs() < 1.5, "{law:?} {hz} Hz: -12 dBFS came back at {level:.1} dBFS");
    }
}

/// Voiced "syllables": a tone under a 4 Hz envelope, as speech comes. A
/// steady tone is the one thing SILK's long-term predictor never recovers
/// from after a loss, and no one talks in steady tones.
fn syllables(hz: f64, dbfs: f64, samples: usize) -> Vec<i16> {
    let envelope = |n: usize| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * 4.0 * n as f64 / RATE).cos()).sqrt();
    tone(hz, dbfs, samples).iter().enumerate().map(|(n, s)| (*s as f64 * envelope(n)) as i16).collect()
}

#[test]
fn lost_opus_packets_are_concealed_not_silenced() {
    let law = G711::Pcmu;
    let input = syllables(800.0, -12.0, 8000 * 3);
    let opus = opus_packets(law, &input);
    let mut decoder = OpusToG711::new(law).unwrap();
    let mut back = Vec::new();
    let mut lost = 0;
    for (i, f) in opus.iter().enumerate() {
        // one packet in seven lost after the start, and once two in a row
        if (i > 10 && i % 7 == 0) || i == 57 {
            lost += 1;
            continue;
        }
        decoder.push(f.timestamp as u64, &f.payload, &mut back);
    }
    assert_eq!(back.len(), opus.len(), "every 20 ms reaches the device");
    assert_contiguous(&back);
    assert_eq!(back.iter().filter(|f| f.concealed).count(), lost);
    let output = decode_frames(law, &back);
    let frame = |i: usize| &output[i * FRAME..(i + 1) * FRAME];
    let peak = |pcm: &[i16]| pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
    for (i, f) in back.iter().enumerate().filter(|(_, f)| f.concealed) {
        // judged against the decoded frames around it: PLC carries the last
        // sound on, it cannot know the original went quiet meanwhile
        let around = [frame(i - 1), frame(i + 1)];
        let loudest = around.iter().map(|p| rms_dbfs(p)).fold(f64::MIN, f64::max);
        let level = rms_dbfs(frame(i));
        assert!(level > loudest - 20.0, "concealed frame at {} is near silence: {level:.1} dBFS beside {loudest:.1}", f.timestamp);
        let limit = around.iter().map(|p| peak(p)).max().unwrap() as f64 * 2.0;
        assert!((peak(frame(i)) as f64) < limit, "a click: peak {} in the concealed frame at {}", peak(frame(i)), f.timestamp);
    }
    assert!((peak_hz(&output[1600..]) - 800.0).abs() <= 10.0);
    let (level, expected) = (rms_dbfs(&output[1600..]), rms_dbfs(&input[1600..]));
    assert!((level - expected).abs() < 3.0, "with 15 % loss, level {level:.1} dBFS for {expected:.1}");
}

#[test]
fn long_pauses_and_late_packets_are_not_concealed() {
    let law = G711::Pcma;
    let opus = opus_packets(law, &tone(500.0, -20.0, 8000));
    let mut decoder = OpusToG711::new(law).unwrap();
    let mut back = Vec::new();
    for f in &opus[..10] {
        decoder.push(f.timestamp as u64, &f.payload, &mut back);
    }
    decoder.push(opus[5].timestamp as u64, &opus[5].payload, &mut back);
    assert_eq!(back.len(), 10, "a duplicate is dropped");
    // one second later (a pause, DTX): no second of made-up audio
    decoder.push(opus[10].timestamp as u64 + 48_000, &opus[10].payload, &mut back);
    assert_eq!(back.len(), 11);
    assert_eq!(back[10].timestamp, back[9].timestamp + 160 + 8000);
}

#[test]
fn longer_opus_packets_become_20_ms_g711_packets() {
    // a 40 ms Opus packet from a second encoder at the same clock
    let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz8000, Application::Voip).unwrap();
    let pcm: Vec<u16> = tone(600.0, -10.0, 320).iter().map(|s| *s as u16).collect();
    let mut packet = vec![0u8; 1500];
    let n = encoder.encode_to_slice(&pcm, &mut packet).unwrap();
    let mut decoder = OpusToG711::new(G711::Pcmu).unwrap();
    let mut out = Vec::new();
    decoder.push(96_000, &packet[..n], &mut out);
    assert_eq!(out.iter().map(|f| (f.timestamp, f.payload.len())).collect::<Vec<_>>(), vec![(16_000, 160), (16_160, 160)]);
}

#[test]
fn ten_ms_g711_packets_are_gathered_into_20_ms_opus_frames() {
    let law = G711::Pcmu;
    let mut encoder = G711ToOpus::new(law).unwrap();
    let mut out = Vec::new();
    let half: Vec<u8> = tone(1000.0, -10.0, 80).iter().map(|s| law.encode_one(*s)).collect();
    encoder.push(80, &half, &mut out);
    assert!(out.is_empty(), "10 ms is not a frame yet");
    encoder.push(160, &half, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].timestamp, 480, "the frame starts at the first packet's time, 48 kHz");
    // a lost 10 ms packet: the half frame before it is dropped, not glued on
    encoder.push(240, &half, &mut out);
    encoder.push(400, &half, &mut out);
    encoder.push(480, &half, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].timestamp, 400 * 6);
}

