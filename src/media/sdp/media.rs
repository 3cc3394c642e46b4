//! Read-only view of one media section (an m= line and the lines under it),
//! falling back to session-level lines where SDP says they apply.

use std::net::IpAddr;

use super::{Line, attribute};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    Application,
    /// text, message, image (T.38) and anything newer.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Its SDP attribute name (`a=sendonly`).
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    pub encoding: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605). Without an address the
/// connection address of the stream applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpAttr {
    pub port: u16,
    pub addr: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
pub struct Media<'a> {
    pub(super) lines: &'a [Line],
    pub(super) session: &'a [Line],
}

impl<'a> Media<'a> {
    fn tokens(&self) -> std::str::SplitAsciiWhitespace<'a> {
        // lines[0] is the m= line: parse() starts every section with it.
        self.lines[0].value.split_ascii_whitespace()
    }

    pub fn kind(&self) -> MediaKind {
        match self.tokens().next().unwrap_or("") {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "application" => MediaKind::Application,
            _ => MediaKind::Other,
        }
    }

    /// 0 means the stream is disabled (RFC 3264 §6).
    pub fn port(&self) -> u16 {
        let port = self.tokens().nth(1).unwrap_or("0");
        port.split('/').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// e.g. `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`.
    pub fn proto(&self) -> &'a str {
        self.tokens().nth(2).unwrap_or("")
    }

    /// The m= format list as written (not always numbers, e.g. for T.38).
    pub fn formats(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.tokens().skip(3)
    }

    /// This stream refused, as an answer writes it (RFC 3264 §6): its media
    /// and transport, port 0, and its first format (SDP needs one).
    pub fn refusal(&self) -> String {
        let mut tokens = self.tokens();
        let media = tokens.next().unwrap_or("audio");
        let proto = tokens.nth(1).unwrap_or("RTP/AVP");
        let format = tokens.next().unwrap_or("0");
        format!("m={media} 0 {proto} {format}\r\n")
    }

    /// Numeric RTP payload types in m= order; any count, 100+ included.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats().filter_map(|f| f.parse::<u8>().ok()).filter(|pt| *pt < 128).collect()
    }

    /// Media-level c= if present, else session-level. None for a host name
    /// (allowed by SDP, useless to a relay) or a missing c=.
    pub fn connection_addr(&self) -> Option<IpAddr> {
        let line = find(self.lines, b'c').or_else(|| find(self.session, b'c'))?;
        connection_ip(&line.value)
    }

    pub fn rtcp(&self) -> Option<RtcpAttr> {
        let value = self.attribute("rtcp")?;
        let mut tokens = value.split_ascii_whitespace();
        let port = tokens.next()?.parse().ok()?;
        let rest: Vec<&str> = tokens.collect();
        let addr = match rest.as_slice() {
            [_net, _kind, addr, ..] => addr.split('/').next().and_then(|a| a.parse().ok()),
            _ => None,
        };
        Some(RtcpAttr { port, addr })
    }

    pub fn rtcp_mux(&self) -> bool {
        self.has_flag("rtcp-mux")
    }

    /// Media-level direction, else session-level, else sendrecv.
    pub fn direction(&self) -> Direction {
        direction_in(self.lines).or_else(|| direction_in(self.session)).unwrap_or(Direction::SendRecv)
    }

    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'a>> {
        let value = self.pt_attribute("rtpmap", pt)?;
        let mut parts = value.split('/');
        let encoding = parts.next()?.trim();
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = parts.next().and_then(|c| c.trim().parse().ok());
        Some(RtpMap { encoding, clock_rate, channels })
    }

    pub fn fmtp(&self, pt: u8) -> Option<&'a str> {
        self.pt_attribute("fmtp", pt)
    }

    /// Payload type of RFC 4733 telephone-event among this stream's formats.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.payload_types()
            .into_iter()
            .find(|pt| self.rtpmap(*pt).is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event")))
    }

    /// Value of the first media-level `a=<name>:<value>`.
    pub fn attribute(&self, name: &str) -> Option<&'a str> {
        self.lines.iter().filter_map(attribute).find(|(n, _)| *n == name).and_then(|(_, v)| v)
    }

    /// Whether a media-level property attribute `a=<name>` is present.
    pub fn has_flag(&self, name: &str) -> bool {
        self.lines.iter().filter_map(attribute).any(|(n, _)| n == name)
    }

    /// `a=<name>:<pt> <rest>` → `<rest>`.
    fn pt_attribute(&self, name: &str, pt: u8) -> Option<&'a str> {
        self.lines.iter().filter_map(attribute).filter(|(n, _)| *n == name).find_map(|(_, value)| {
            let value = value?.trim_start();
            let (head, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((value, ""));
            (head.parse::<u8>().ok()? == pt).then_some(rest.trim())
        })
    }
}

fn find(lines: &[Line], kind: u8) -> Option<&Line> {
    lines.iter().find(|l| l.kind == kind)
}

/// `IN IP4 192.0.2.1[/ttl[/n]]` → the address.
pub(super) fn connection_ip(value: &str) -> Option<IpAddr> {
    let addr = value.split_ascii_whitespace().nth(2)?;
    addr.split('/').next()?.parse().ok()
}

fn direction_in(lines: &[Line]) -> Option<Direction> {
    lines.iter().filter_map(attribute).find_map(|(name, _)| match name {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
}
