//! `X-HA-PBX-Agent`: what the B2BUA tells its agent about a call it hands
//! over (the caller's call id, why the agent is called, for whom). Only
//! ever sent to the agent's loopback port.
pub const HEADER: &str = "X-HA-PBX-Agent";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentInvite {
    /// The B2BUA's call id (the caller's Call-ID), for transfers.
    pub call: String,
    /// `message` when a rule handed an unanswered call over; else the agent converses.
    pub message_for: Option<String>,
    /// Text to speak, for announcements the PBX originates.
    pub announce: Option<String>,
}

impl AgentInvite {
    pub fn to_value(&self) -> String {
        let mut v = format!("call={}", escape(&self.call));
        if let Some(m) = &self.message_for {
            v.push_str(&format!(";message-for={}", escape(m)));
        }
        if let Some(a) = &self.announce {
            v.push_str(&format!(";announce={}", escape(a)));
        }
        v
    }

    pub fn parse(value: &str) -> AgentInvite {
        let mut out = AgentInvite::default();
        for part in value.split(';') {
            let Some((k, v)) = part.trim().split_once('=') else { continue };
            let v = unescape(v);
            match k {
                "call" => out.call = v,
                "message-for" => out.message_for = Some(v),
                "announce" => out.announce = Some(v),
                _ => {}
            }
        }
        out
    }
}

/// Percent-escape what would break the header (`;`, `%`, control characters, non-ASCII).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b';' && b != b'%' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Bytes, not str slices: a multi-byte character after `%` must not panic.
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_awkward_text() {
        let a = AgentInvite { call: "abc@1.2.3.4".into(), message_for: Some("100".into()), announce: Some("Door; 50% open — ok".into()) };
        assert_eq!(AgentInvite::parse(&a.to_value()), a);
        assert!(!a.to_value().contains("— "), "non-ASCII is escaped");
    }

    #[test]
    fn stray_percent_signs_and_unicode_do_not_panic() {
        assert_eq!(AgentInvite::parse("call=a%é;announce=50%").announce.as_deref(), Some("50%"));
        assert_eq!(AgentInvite::parse("call=%Zz%").call, "%Zz%");
    }

    #[test]
    fn plain_call() {
        let a = AgentInvite::parse("call=x");
        assert_eq!(a, AgentInvite { call: "x".into(), ..Default::default() });
    }
}
