//! Opus ↔ G.711 for a browser that shares no G.711 law with the device
//! (sans-IO: packets in, packets out). libopus runs at 8 kHz itself, so no
//! resampler is needed; only RTP clocks differ (Opus 48 kHz, G.711 8 kHz).
//!
//! Toward the device every 20 ms of Opus becomes one G.711 packet; a lost
//! Opus packet is concealed (in-band FEC from the next packet, else PLC) so
//! the device hears no gap or click. Toward the browser G.711 is gathered
//! into 20 ms Opus frames; the browser conceals the device's losses itself.
use super::codec::G711;
use opusic_c::{Application, Bitrate, Channels, Decoder, Encoder, InbandFec, SampleRate};

/// Samples per 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// RTP clock ratio Opus (48 kHz) / G.711 (8 kHz).
const CLOCK_RATIO: u64 = 6;
/// The longest Opus packet (120 ms) at 8 kHz.
const MAX_DECODED: usize = 960;
/// Gaps up to this are concealed; longer ones (a pause, a new stream) are not.
const MAX_CONCEAL: u32 = 5 * FRAME as u32;
/// A packet up to this much older than expected is late and dropped; older
/// still is a new timeline (RTP timestamp reset).
const MAX_LATE: u32 = 50 * FRAME as u32;
/// Concealment chunks must be multiples of 2.5 ms (20 samples at 8 kHz).
const OPUS_GRANULE: usize = 20;
/// Loss the encoder plans its in-band FEC for, in percent.
const EXPECTED_LOSS_PERCENT: u8 = 5;
/// libopus' 0–10 speed/quality trade-off. At the bit rate below, 1 (plain
/// quantiser, no delayed decision) scores the PESQ of 8 on speech that came
/// through G.711 at a third of the encoder time; 2–5 cost more and score
/// less. `bench/opus_quality.py` prints the table.
const OPUS_COMPLEXITY: u8 = 1;
/// libopus' own rate for 8 kHz mono is ~10 kbit/s (PESQ 3.8 after G.711);
/// 24 kbit/s keeps what the 64 kbit/s G.711 leg carried (PESQ 4.4).
const OPUS_BITRATE: u32 = 24_000;

/// One RTP payload with its timestamp on the receiving leg's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub timestamp: u32,
    pub payload: Vec<u8>,
    /// Made up by concealment rather than decoded from a packet.
    pub concealed: bool,
}

/// Browser → device: Opus packets (48 kHz RTP clock) to G.711 packets (8 kHz).
pub struct OpusToG711 {
    decoder: Decoder,
    law: G711,
    /// The 8 kHz timestamp the next packet should start at.
    next: Option<u32>,
    pcm: Vec<u16>,
}

impl OpusToG711 {
    pub fn new(law: G711) -> Result<Self, String> {
        let decoder = Decoder::new(Channels::Mono, SampleRate::Hz8000).map_err(|e| format!("opus decoder: {}", e.message()))?;
        Ok(OpusToG711 { decoder, law, next: None, pcm: vec![0; MAX_DECODED] })
    }

    /// One Opus packet with its 48 kHz RTP timestamp; appends what the device gets.
    pub fn push(&mut self, timestamp_48k: u64, opus: &[u8], out: &mut Vec<Frame>) {
        let start = (timestamp_48k / CLOCK_RATIO) as u32;
        if let Some(next) = self.next {
            let ahead = start.wrapping_sub(next);
            let behind = next.wrapping_sub(start);
            if behind != 0 && behind <= MAX_LATE {
                return; // late or duplicate: its time has been played already
            }
            if ahead != 0 && ahead <= MAX_CONCEAL {
                self.conceal(next, ahead as usize, opus, out);
            }
        }
        match self.decoder.decode_to_slice(opus, &mut self.pcm, false) {
            Ok(samples) => {
                self.emit(start, samples, false, out);
                self.next = Some(start.wrapping_add(samples as u32));
            }
            Err(e) => tracing::debug!(error = e.message(), "undecodable opus packet dropped"),
        }
    }

    /// Fills `missing` samples from `from`: PLC, and the last 20 ms from the
    /// in-band FEC that `following` (the packet after the loss) may carry.
    fn conceal(&mut self, from: u32, missing: usize, following: &[u8], out: &mut Vec<Frame>) {
        let missing = missing - missing % OPUS_GRANULE;
        let mut done = 0;
        while done < missing {
            let chunk = (missing - done).min(FRAME);
            let last = done + chunk == missing;
            let input: &[u8] = if last { following } else { &[] };
            let decoded = self.decoder.decode_to_slice(input, &mut self.pcm[..chunk], last);
            match decoded {
                Ok(samples) => self.emit(from.wrapping_add(done as u32), samples, true, out),
                Err(e) => {
                    tracing::debug!(error = e.message(), "opus concealment failed");
                    return;
                }
            }
            done += chunk;
        }
    }

    fn emit(&self, timestamp: u32, samples: usize, concealed: bool, out: &mut Vec<Frame>) {
        for (i, chunk) in self.pcm[..samples].chunks(FRAME).enumerate() {
            let payload = chunk.iter().map(|s| self.law.encode_one(*s as i16)).collect();
            out.push(Frame { timestamp: timestamp.wrapping_add((i * FRAME) as u32), payload, concealed });
        }
    }
}

/// Device → browser: G.711 packets (8 kHz) to 20 ms Opus frames (48 kHz RTP clock).
pub struct G711ToOpus {
    encoder: Encoder,
    law: G711,
    pending: Vec<u16>,
    /// 8 kHz timestamp of `pending[0]`.
    pending_start: u32,
    encoded: Vec<u8>,
}

impl G711ToOpus {
    pub fn new(law: G711) -> Result<Self, String> {
        let fail = |e: opusic_c::ErrorCode| format!("opus encoder: {}", e.message());
        let mut encoder = Encoder::new(Channels::Mono, SampleRate::Hz8000, Application::Voip).map_err(fail)?;
        encoder.set_complexity(OPUS_COMPLEXITY).map_err(fail)?;
        encoder.set_bitrate(Bitrate::Value(OPUS_BITRATE)).map_err(fail)?;
        encoder.set_inband_fec(InbandFec::Mode1).map_err(fail)?;
        encoder.set_packet_loss(EXPECTED_LOSS_PERCENT).map_err(fail)?;
        Ok(G711ToOpus { encoder, law, pending: Vec::with_capacity(2 * FRAME), pending_start: 0, encoded: vec![0; 1500] })
    }

    /// One G.711 packet with its 8 kHz timestamp; appends the Opus frames it
    /// completes, each with its 48 kHz timestamp.
    pub fn push(&mut self, timestamp: u32, g711: &[u8], out: &mut Vec<Frame>) {
        if !self.pending.is_empty() && self.pending_start.wrapping_add(self.pending.len() as u32) != timestamp {
            // A loss or a jump: start the next frame at this packet's time.
            self.pending.clear();
        }
        if self.pending.is_empty() {
            self.pending_start = timestamp;
        }
        self.pending.extend(g711.iter().map(|b| self.law.decode_one(*b) as u16));
        while self.pending.len() >= FRAME {
            match self.encoder.encode_to_slice(&self.pending[..FRAME], &mut self.encoded) {
                Ok(n) => {
                    let timestamp = (self.pending_start as u64 * CLOCK_RATIO) as u32;
                    out.push(Frame { timestamp, payload: self.encoded[..n].to_vec(), concealed: false });
                }
                Err(e) => tracing::debug!(error = e.message(), "opus encoding failed"),
            }
            self.pending.drain(..FRAME);
            self.pending_start = self.pending_start.wrapping_add(FRAME as u32);
        }
    }
}

#[cfg(test)]
#[path = "transcode_tests.rs"]
mod tests;
