//! G.711 sample conversion (ITU-T G.711, the segment algorithm of the
//! reference implementation): only needed when a leg is transcoded to Opus;
//! G.711 passthrough never touches samples.
use super::codec::G711;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;
/// Upper ends of the A-law segments, on 13-bit magnitudes.
const ALAW_SEGMENT_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

pub fn encode(law: G711, sample: i16) -> u8 {
    match law {
        G711::Pcmu => linear_to_ulaw(sample),
        G711::Pcma => linear_to_alaw(sample),
    }
}

pub fn decode(law: G711, byte: u8) -> i16 {
    match law {
        G711::Pcmu => ulaw_to_linear(byte),
        G711::Pcma => alaw_to_linear(byte),
    }
}

fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    let mut exponent = 7;
    while exponent > 0 && pcm & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte as i32;
    let exponent = (u >> 4) & 0x07;
    let magnitude = (((u & 0x0f) << 3) + ULAW_BIAS) << exponent;
    (if u & 0x80 != 0 { ULAW_BIAS - magnitude } else { magnitude - ULAW_BIAS }) as i16
}

fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(segment) = ALAW_SEGMENT_END.iter().position(|end| pcm <= *end) else {
        return (0x7f ^ mask) as u8;
    };
    let shift = if segment < 2 { 1 } else { segment };
    (((segment << 4) as i32 | ((pcm >> shift) & 0x0f)) ^ mask) as u8
}

fn alaw_to_linear(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let mut magnitude = (a & 0x0f) << 4;
    match (a & 0x70) >> 4 {
        0 => magnitude += 8,
        1 => magnitude += 0x108,
        segment => magnitude = (magnitude + 0x108) << (segment - 1),
    }
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_decode_then_encode() {
        for law in [G711::Pcmu, G711::Pcma] {
            for byte in 0..=255u8 {
                let again = encode(law, decode(law, byte));
                // μ-law has two codes for zero (0x7f and 0xff); both decode to 0.
                if law == G711::Pcmu && decode(law, byte) == 0 {
                    assert_eq!(decode(law, again), 0);
                } else {
                    assert_eq!(again, byte, "{law:?} {byte:#04x}");
                }
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00, "clipped, not wrapped");
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for law in [G711::Pcmu, G711::Pcma] {
            for sample in (-32000i32..32000).step_by(7) {
                let back = decode(law, encode(law, sample as i16)) as i32;
                let step = sample.abs() / 16 + 16;
                assert!((back - sample).abs() <= step, "{law:?} {sample} -> {back}");
            }
        }
    }
}
