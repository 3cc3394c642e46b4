//! What the bridge's Opus encoder costs and keeps, per bit rate and
//! complexity: encoder time per 20 ms frame and the decoded speech, for
//! `bench/opus_quality.py` to score with PESQ.
//!
//!     cargo run --release --example opus_cost -- IN.raw OUT_DIR
//!
//! IN.raw: 8 kHz mono s16le speech that has been through G.711 (what a
//! doorbell sends). Writes OUT_DIR/<kbps>_<complexity>.raw (0 kbps: libopus'
//! automatic rate) and prints one line per setting.
use anyhow::{Context, anyhow};
use opusic_c::{Application, Bitrate, Channels, Decoder, Encoder, InbandFec, SampleRate};
use std::time::{Duration, Instant};

const FRAME: usize = 160;
const RUNS: usize = 5;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out_dir) = match args.as_slice() {
        [i, o] => (i, o),
        _ => anyhow::bail!("usage: opus_cost IN.raw OUT_DIR"),
    };
    let raw = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let pcm: Vec<u16> = raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let frames = pcm.len() / FRAME;
    for kbps in [0u32, 16, 24, 32] {
        for complexity in [1u8, 2, 3, 5, 8, 10] {
            let (spent, bytes, decoded) = run(&pcm, kbps, complexity)?;
            let per_frame = spent.as_secs_f64() / (frames * RUNS) as f64 * 1e6;
            let rate = bytes as f64 * 8.0 / (frames as f64 * 0.02) / 1000.0;
            println!("{kbps} kbit/s  complexity {complexity:2}: encoder {per_frame:6.1} µs per frame, {rate:5.1} kbit/s sent");
            std::fs::write(format!("{out_dir}/{kbps}_{complexity}.raw"), decoded)?;
        }
    }
    Ok(())
}

/// Encodes `pcm` RUNS times as the bridge does; returns the encoder's time,
/// the bytes of one pass and that pass decoded back (s16le).
fn run(pcm: &[u16], kbps: u32, complexity: u8) -> anyhow::Result<(Duration, usize, Vec<u8>)> {
    let fail = |e: opusic_c::ErrorCode| anyhow!(e.message());
    let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz8000, Application::Voip).map_err(fail)?;
    encoder.set_complexity(complexity).map_err(fail)?;
    encoder.set_inband_fec(InbandFec::Mode1).map_err(fail)?;
    encoder.set_packet_loss(5).map_err(fail)?;
    if kbps > 0 {
        encoder.set_bitrate(Bitrate::Value(kbps * 1000)).map_err(fail)?;
    }
    let mut decoder = Decoder::new(Channels::Mono, SampleRate::Hz8000).map_err(fail)?;
    let (mut packet, mut samples) = (vec![0u8; 1500], vec![0u16; 960]);
    let (mut spent, mut bytes, mut decoded) = (Duration::ZERO, 0, Vec::new());
    for pass in 0..RUNS {
        for frame in pcm.chunks_exact(FRAME) {
            let started = Instant::now();
            let n = encoder.encode_to_slice(frame, &mut packet).map_err(fail)?;
            spent += started.elapsed();
            if pass == 0 {
                bytes += n;
                let got = decoder.decode_to_slice(&packet[..n], &mut samples, false).map_err(fail)?;
                decoded.extend(samples[..got].iter().flat_map(|s| s.to_le_bytes()));
            }
        }
    }
    Ok((spent, bytes, decoded))
}
