//! G.711 (ITU-T) μ-law and A-law to and from 16-bit linear PCM, computed
//! rather than tabled: a few integer operations per sample.

/// One μ-law byte to a linear sample.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let t = (((u & 0x0f) as i32) << 3) + 0x84;
    let t = t << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// One linear sample to μ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// One A-law byte to a linear sample.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// One linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let mask = if s >= 0 {
        0xd5
    } else {
        s = -s - 1;
        0x55
    };
    let s = s.min(32767);
    let seg: i32 = (0..8).find(|&i| s <= (0xff << i) | 0xff).unwrap_or(8);
    let byte = if seg >= 8 {
        0x7f
    } else {
        let shift = if seg < 2 { 4 } else { seg + 3 };
        ((seg << 4) | ((s >> shift) & 0x0f)) as u8
    };
    byte ^ mask
}

/// G.711's two laws, PCMU (µ-law) and PCMA (A-law), by their static RTP
/// payload types 0 and 8 (RFC 3551): the one type for G.711 in the relay,
/// the WebRTC bridge and the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    Pcmu,
    Pcma,
}

impl G711 {
    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        }
    }

    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }

    pub fn decode(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.extend(bytes.iter().map(|&b| match self {
            G711::Pcmu => ulaw_to_linear(b),
            G711::Pcma => alaw_to_linear(b),
        }));
    }

    pub fn decode_one(self, byte: u8) -> i16 {
        match self {
            G711::Pcmu => ulaw_to_linear(byte),
            G711::Pcma => alaw_to_linear(byte),
        }
    }

    pub fn encode_one(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => linear_to_ulaw(sample),
            G711::Pcma => linear_to_alaw(sample),
        }
    }

    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        out.extend(samples.iter().map(|&s| match self {
            G711::Pcmu => linear_to_ulaw(s),
            G711::Pcma => linear_to_alaw(s),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ulaw_byte_survives_a_round_trip() {
        for b in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(b));
            // 0x7f and 0xff are both zero; the round trip picks one.
            assert_eq!(ulaw_to_linear(back), ulaw_to_linear(b), "byte {b:#x}");
        }
    }

    #[test]
    fn every_alaw_byte_survives_a_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "byte {b:#x}");
        }
    }

    #[test]
    fn quantisation_error_stays_small_relative_to_the_sample() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            for (name, back) in [("ulaw", ulaw_to_linear(linear_to_ulaw(s))), ("alaw", alaw_to_linear(linear_to_alaw(s)))] {
                let err = (back as i32 - s as i32).abs();
                assert!(err <= (s as i32).abs() / 16 + 16, "{name}: {s} came back as {back}");
            }
        }
    }

    #[test]
    fn reference_points_and_clipping() {
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00, "clipped, not wrapped");
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
    }

    #[test]
    fn silence_is_the_usual_idle_byte() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
    }
}
