//! SDES-SRTP (RFC 3711 protection, keys from RFC 4568 `a=crypto`) for one
//! relay leg: the leg toward a trunk whose provider wants SRTP. The house
//! side stays plain RTP; the relay unprotects what the provider sends and
//! protects what goes to it.
//!
//! The cryptography (AES counter mode, HMAC-SHA1, key derivation, the
//! roll-over counter, replay windows) is webrtc-rs's `webrtc-srtp`; this
//! file holds plain key material (no SIP, no SDP), checks a packet is long
//! enough before the crate sees it, and bounds what a stranger can make the
//! crate keep: it keeps state per SSRC before a packet is authenticated, so
//! only the first [`MAX_SSRCS`] SSRCs of a direction are ever looked at.
//!
//! Sans-IO: packets in, packets out.

use std::collections::HashSet;

use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Master key (16 bytes) and master salt (14 bytes) of the AES_CM_128 suites.
pub const KEY_LEN: usize = 16;
pub const SALT_LEN: usize = 14;
pub const MATERIAL_LEN: usize = KEY_LEN + SALT_LEN;
/// Packets accepted out of order behind the newest (RFC 3711 §3.3.2 asks
/// for at least 64).
const REPLAY_WINDOW: usize = 128;
/// SSRCs one direction of a leg may use: a call has one or two (audio,
/// events); a packet with a further SSRC is dropped before the crate
/// keeps anything for it.
pub const MAX_SSRCS: usize = 8;
/// RTP header without CSRCs or extensions.
const RTP_HEADER: usize = 12;
/// RTCP header with the sender's SSRC, then the SRTCP index (E bit and 31 bits).
const RTCP_HEADER: usize = 8;
const SRTCP_INDEX: usize = 4;
/// SRTCP's authentication tag: 80 bits in both suites.
const RTCP_TAG: usize = 10;

/// The crypto suites this side speaks (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// AES_CM_128_HMAC_SHA1_80: 80-bit tags on RTP and RTCP.
    AesCm128HmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32: 32-bit tags on RTP, 80 on RTCP.
    AesCm128HmacSha1_32,
}

impl Suite {
    /// The name `a=crypto` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// `None`: a suite we do not speak (AES-256, GCM, F8, NULL...).
    pub fn from_name(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32].into_iter().find(|s| s.name() == name)
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }

    fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// One direction's master key and salt, and the suite they are for.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: Suite,
    /// Key then salt, as `inline:` carries them.
    pub material: [u8; MATERIAL_LEN],
}

impl SrtpKey {
    /// A fresh key from the thread's CSPRNG (one per call and direction).
    pub fn random(suite: Suite) -> SrtpKey {
        SrtpKey { suite, material: rand::random() }
    }

    fn context(&self) -> Context {
        let (key, salt) = self.material.split_at(KEY_LEN);
        Context::new(key, salt, self.suite.profile(), Some(srtp_replay_protection(REPLAY_WINDOW)), Some(srtcp_replay_protection(REPLAY_WINDOW)))
            .expect("lengths fixed by the type")
    }
}

/// Never printed: a log line must not carry a key.
impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKey").field("suite", &self.suite).finish_non_exhaustive()
    }
}

/// A leg's keys: `send` protects what we send to its device, `receive`
/// unprotects what its device sends us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpKeys {
    pub send: SrtpKey,
    pub receive: SrtpKey,
}

/// Why a packet was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpDrop {
    /// Shorter than a header and a tag.
    TooShort,
    /// A further SSRC past [`MAX_SSRCS`].
    TooManySsrcs,
    /// The crate refused it: a wrong tag, a replay, a malformed header.
    Refused,
}

/// One direction: the crate's context and the SSRCs it has been shown.
struct Direction {
    context: Context,
    suite: Suite,
    rtp_ssrcs: HashSet<u32>,
    rtcp_ssrcs: HashSet<u32>,
}

impl Direction {
    fn new(key: &SrtpKey) -> Direction {
        Direction { context: key.context(), suite: key.suite, rtp_ssrcs: HashSet::new(), rtcp_ssrcs: HashSet::new() }
    }

    fn admit(seen: &mut HashSet<u32>, ssrc: u32) -> Result<(), SrtpDrop> {
        if seen.contains(&ssrc) {
            return Ok(());
        }
        if seen.len() >= MAX_SSRCS {
            return Err(SrtpDrop::TooManySsrcs);
        }
        seen.insert(ssrc);
        Ok(())
    }
}

/// The SRTP end of one relay leg.
pub struct SrtpLeg {
    keys: SrtpKeys,
    send: Direction,
    receive: Direction,
}

impl SrtpLeg {
    pub fn new(keys: SrtpKeys) -> SrtpLeg {
        let send = Direction::new(&keys.send);
        let receive = Direction::new(&keys.receive);
        SrtpLeg { keys, send, receive }
    }

    /// New keys for this leg (a re-INVITE). A direction whose key did not
    /// change keeps its state: roll-over counter and replay window.
    pub fn rekey(&mut self, keys: SrtpKeys) {
        if keys.send != self.keys.send {
            self.send = Direction::new(&keys.send);
        }
        if keys.receive != self.keys.receive {
            self.receive = Direction::new(&keys.receive);
        }
        self.keys = keys;
    }

    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// Plain RTP from the house, protected for the leg's device.
    pub fn protect_rtp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpDrop> {
        let d = &mut self.send;
        if plain.len() < RTP_HEADER {
            return Err(SrtpDrop::TooShort);
        }
        Direction::admit(&mut d.rtp_ssrcs, rtp_ssrc(plain))?;
        d.context.encrypt_rtp(plain).map(|b| b.to_vec()).map_err(|_| SrtpDrop::Refused)
    }

    /// SRTP from the leg's device: authenticated, not a replay, decrypted.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpDrop> {
        let d = &mut self.receive;
        if packet.len() < RTP_HEADER + d.suite.rtp_tag_len() {
            return Err(SrtpDrop::TooShort);
        }
        Direction::admit(&mut d.rtp_ssrcs, rtp_ssrc(packet))?;
        d.context.decrypt_rtp(packet).map(|b| b.to_vec()).map_err(|_| SrtpDrop::Refused)
    }

    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpDrop> {
        let d = &mut self.send;
        if plain.len() < RTCP_HEADER {
            return Err(SrtpDrop::TooShort);
        }
        Direction::admit(&mut d.rtcp_ssrcs, rtcp_ssrc(plain))?;
        d.context.encrypt_rtcp(plain).map(|b| b.to_vec()).map_err(|_| SrtpDrop::Refused)
    }

    /// SRTCP's tag is 80 bits in both suites. Only encrypted SRTCP (the E
    /// bit set) is taken: webrtc-srtp 0.17.2 hands back a packet whose E bit
    /// is clear without checking its tag, and unencrypted SRTCP is never
    /// negotiated here (`UNENCRYPTED_SRTCP` is refused in `a=crypto`).
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpDrop> {
        let d = &mut self.receive;
        if packet.len() < RTCP_HEADER + SRTCP_INDEX + RTCP_TAG {
            return Err(SrtpDrop::TooShort);
        }
        if packet[packet.len() - RTCP_TAG - SRTCP_INDEX] & 0x80 == 0 {
            return Err(SrtpDrop::Refused);
        }
        Direction::admit(&mut d.rtcp_ssrcs, rtcp_ssrc(packet))?;
        d.context.decrypt_rtcp(packet).map(|b| b.to_vec()).map_err(|_| SrtpDrop::Refused)
    }
}

fn rtp_ssrc(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

fn rtcp_ssrc(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
