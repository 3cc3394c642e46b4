//! RFC 4568 `a=crypto` (SDES): reading a device's keys out of a stream and
//! writing ours in. Only what `media::srtp` speaks is usable: the
//! AES_CM_128_HMAC_SHA1_80/_32 suites, one inline key of 30 bytes, no MKI,
//! no session parameters, and a lifetime (if given) no shorter than a call.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::{Line, Media, Sdp, attribute};
use crate::media::srtp::{MATERIAL_LEN, SrtpKey, Suite};

/// `a=crypto` lines looked at per stream; an offer has one or two in practice.
pub const MAX_CRYPTO_LINES: usize = 8;
/// The shortest key lifetime accepted: 2^31 packets, as RFC 4568's
/// examples write it. Shorter ones would need a rekey we do not do.
const MIN_LIFETIME_LOG2: u32 = 31;

/// One usable `a=crypto` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub key: SrtpKey,
}

impl Crypto {
    /// Parses the value after `a=crypto:`. Err names the field at fault,
    /// never the key itself.
    pub fn parse(value: &str) -> Result<Crypto, String> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or("no tag")?;
        let tag: u32 = tag.parse().ok().filter(|t| (1..=999_999_999).contains(t)).ok_or("tag: not 1-9 digits")?;
        let suite_name = fields.next().ok_or("no crypto-suite")?;
        let suite = Suite::from_name(suite_name).ok_or_else(|| format!("crypto-suite {}: not supported", excerpt(suite_name)))?;
        let params = fields.next().ok_or("no key-params")?;
        if let Some(session) = fields.next() {
            return Err(format!("session parameter {}: not supported", excerpt(session)));
        }
        if params.contains(';') {
            return Err("key-params: more than one key (;) is not supported".into());
        }
        let inline = params.strip_prefix("inline:").ok_or("key-params: not `inline:`")?;
        let mut parts = inline.split('|');
        let b64 = parts.next().unwrap_or("");
        let bytes = STANDARD.decode(b64).or_else(|_| STANDARD_NO_PAD.decode(b64)).map_err(|_| "key-params: the key is not base64".to_string())?;
        let material: [u8; MATERIAL_LEN] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("key-params: the key and salt are {} bytes, not {MATERIAL_LEN}", b.len()))?;
        let mut lifetime_seen = false;
        for extra in parts {
            if extra.contains(':') {
                return Err("key-params: an MKI is not supported".into());
            }
            if lifetime_seen {
                return Err("key-params: more than one lifetime".into());
            }
            lifetime_seen = true;
            check_lifetime(extra)?;
        }
        Ok(Crypto { tag, key: SrtpKey { suite, material } })
    }

    /// The value for `a=crypto:` (without the name).
    pub fn format(&self) -> String {
        format!("{} {} inline:{}", self.tag, self.key.suite.name(), STANDARD.encode(self.key.material))
    }
}

/// `2^31` or a decimal count of packets.
fn check_lifetime(text: &str) -> Result<(), String> {
    let log2 = match text.strip_prefix("2^") {
        Some(exp) => exp.parse::<u32>().ok(),
        None => text.parse::<u64>().ok().filter(|n| *n > 0).map(|n| 63 - n.leading_zeros()),
    };
    match log2 {
        Some(l) if l >= MIN_LIFETIME_LOG2 => Ok(()),
        Some(_) => Err(format!("key-params: lifetime {} is shorter than 2^{MIN_LIFETIME_LOG2} packets (rekeying is not supported)", excerpt(text))),
        None => Err(format!("key-params: lifetime {} is not a number", excerpt(text))),
    }
}

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().nth(40).is_some() {
        s.push('…');
    }
    format!("{s:?}")
}

/// What a stream's `a=crypto` lines offer.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    /// No `a=crypto` line.
    None,
    /// The first usable line, in the device's order of preference.
    Usable(Crypto),
    /// Lines, none usable: why the first was not.
    Unusable(String),
}

impl<'a> Media<'a> {
    /// The values of this stream's `a=crypto` lines (at most [`MAX_CRYPTO_LINES`]).
    pub fn crypto_lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.lines.iter().filter_map(attribute).filter(|(n, _)| *n == "crypto").map(|(_, v)| v.unwrap_or("")).take(MAX_CRYPTO_LINES)
    }

    /// The first `a=crypto` line we can use.
    pub fn offered_crypto(&self) -> Offered {
        let mut first_error = None;
        for value in self.crypto_lines() {
            match Crypto::parse(value) {
                Ok(c) => return Offered::Usable(c),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Offered::None, Offered::Unusable)
    }

    /// `RTP/SAVP` or `RTP/SAVPF`: SRTP is the only way this stream goes.
    pub fn is_savp(&self) -> bool {
        matches!(self.proto(), "RTP/SAVP" | "RTP/SAVPF")
    }
}

impl Sdp {
    /// Stream `idx` gets `proto` on its m= line and exactly the `a=crypto`
    /// lines given (none: the device's go).
    pub fn set_crypto(&mut self, idx: usize, proto: &str, cryptos: &[Crypto]) {
        let Some(section) = self.media.get_mut(idx) else { return };
        let mut tokens: Vec<&str> = section[0].value.split_ascii_whitespace().collect();
        if tokens.len() >= 3 {
            tokens[2] = proto;
            section[0].value = tokens.join(" ");
        }
        section.retain(|l| attribute(l).is_none_or(|(n, _)| n != "crypto"));
        for c in cryptos {
            section.push(Line { kind: b'a', value: format!("crypto:{}", c.format()) });
        }
    }
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
