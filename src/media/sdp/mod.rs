//! Line-preserving SDP model (RFC 4566 / 8866): every line we do not touch is
//! written back exactly, so codecs, fmtp and unknown attributes pass through a
//! relay unchanged. Only what the relay must own (addresses, ports, o=, ICE)
//! is rewritten.

mod common;
mod crypto;
mod error;
mod media;
mod offer;
mod origin;
mod parse;
mod rewrite;

#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod rewrite_tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use common::keep_common_codecs;
pub use crypto::{Crypto, MAX_CRYPTO_LINES, Offered};
pub use error::SdpError;
pub use media::{Direction, Media, MediaKind, RtcpAttr, RtpMap};
pub use offer::g711_offer;
pub use origin::OriginKeeper;
pub use parse::{MAX_BYTES, MAX_LINES, MAX_MEDIA};

/// One `<type>=<value>` line; `kind` is the ASCII type letter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kind: u8,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Lines before the first m=.
    session: Vec<Line>,
    /// One entry per m= section; each starts with its m= line.
    media: Vec<Vec<Line>>,
}

impl Sdp {
    /// Never panics; refuses oversized or malformed bodies with the line at fault.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        parse::parse(text)
    }

    pub fn media_count(&self) -> usize {
        self.media.len()
    }

    pub fn media(&self, idx: usize) -> Option<Media<'_>> {
        let lines = self.media.get(idx)?;
        Some(Media { lines, session: &self.session })
    }

    /// Port of m= line `idx`; 0 when disabled or out of range.
    pub fn media_port(&self, idx: usize) -> u16 {
        self.media(idx).map_or(0, |m| m.port())
    }

    /// Where the device wants RTP (and RTCP, if `a=rtcp` says) for stream
    /// `idx`. None when the stream is disabled or has no usable IP address.
    /// The address may be 0.0.0.0 (old-style hold); the relay treats that as
    /// "nowhere to send until the device sends".
    pub fn media_endpoint(&self, idx: usize) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let media = self.media(idx)?;
        let port = media.port();
        if port == 0 {
            return None;
        }
        let ip = media.connection_addr()?;
        let rtcp = media.rtcp().map(|r| SocketAddr::new(r.addr.unwrap_or(ip), r.port));
        Some((SocketAddr::new(ip, port), rtcp))
    }

    /// Streams `from..` as an answer refusing them writes them, in order
    /// ([`Media::refusal`]): appended after the streams an answer takes,
    /// they keep the offer's sections in place (RFC 3264 §6).
    pub fn refusals_from(&self, from: usize) -> Vec<String> {
        (from..self.media_count()).filter_map(|i| self.media(i)).map(|m| m.refusal()).collect()
    }

    /// True when media is not meant to flow both ways: sendonly, recvonly,
    /// inactive, or the RFC 2543 `c=0.0.0.0` hold. Disabled streams are not holds.
    pub fn is_hold(&self, idx: usize) -> bool {
        let Some(media) = self.media(idx) else { return false };
        media.port() != 0
            && (media.direction() != Direction::SendRecv || media.connection_addr().is_some_and(|a| a.is_unspecified()))
    }

    /// RFC 4733 payload type of the first audio stream that offers one.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        (0..self.media_count())
            .filter_map(|i| self.media(i))
            .filter(|m| m.kind() == MediaKind::Audio)
            .find_map(|m| m.telephone_event_pt())
    }

    fn lines(&self) -> impl Iterator<Item = &Line> {
        self.session.iter().chain(self.media.iter().flatten())
    }
}

/// Emits CRLF line endings, as RFC 8866 requires.
impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            write!(f, "{}={}\r\n", line.kind as char, line.value)?;
        }
        Ok(())
    }
}

/// `a=name:value` → (name, Some(value)); `a=flag` → (flag, None); other lines → None.
fn attribute(line: &Line) -> Option<(&str, Option<&str>)> {
    if line.kind != b'a' {
        return None;
    }
    Some(match line.value.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (line.value.as_str(), None),
    })
}

/// `IN IP4 <addr>` / `IN IP6 <addr>`; a v4-mapped v6 address is written as IP4.
fn net_addr(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("IN IP4 {v4}"),
        IpAddr::V6(v6) => format!("IN IP6 {v6}"),
    }
}
