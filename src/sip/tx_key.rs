//! A server transaction's identity as RFC 3261 17.2.3 matches it (sans-IO):
//! what a retransmission of a request repeats. The stateless front keys its
//! response cache by it, and a challenge its nonce and To tag
//! (`auth::nonces::ChallengeKey`).
use rsipstack::sip::{Header, Request};

/// A server transaction's identity (RFC 3261 17.2.3): the top Via's branch
/// and sent-by, and the method. Two requests with the same key are one
/// request and its retransmission.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    branch: String,
    sent_by: String,
    method: String,
}

impl TxKey {
    /// `None` for a request without a top Via or without an RFC 3261 branch
    /// (`z9hG4bK…`): such a retransmission is processed again.
    pub fn of(req: &Request) -> Option<TxKey> {
        let via = req.headers.iter().find_map(|h| match h {
            Header::Via(v) => Some(v.value()),
            _ => None,
        })?;
        let (branch, sent_by) = via_branch_and_sent_by(via)?;
        Some(TxKey { branch: branch.to_string(), sent_by: sent_by.to_ascii_lowercase(), method: req.method.to_string() })
    }

    /// Branch, sent-by and method, as bytes (for a keyed hash).
    pub fn parts(&self) -> [&[u8]; 3] {
        [self.branch.as_bytes(), self.sent_by.as_bytes(), self.method.as_bytes()]
    }

    /// Bytes held by the key, for the cache's budget.
    pub fn size(&self) -> usize {
        self.branch.len() + self.sent_by.len() + self.method.len()
    }
}

/// `(branch, sent-by)` of one Via value (`SIP/2.0/UDP host:port;branch=…`),
/// the first when the value is a list. `None` without a `z9hG4bK` branch.
pub fn via_branch_and_sent_by(via: &str) -> Option<(&str, &str)> {
    let first = via.split(',').next()?;
    let mut parts = first.split(';');
    let protocol_and_host = parts.next()?.trim();
    // "SIP/2.0/UDP" then the sent-by, separated by linear white space
    let sent_by = protocol_and_host.split_ascii_whitespace().nth(1)?;
    let branch = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("branch").then(|| value.trim())
    })?;
    (branch.len() > 7 && branch.as_bytes()[..7].eq_ignore_ascii_case(b"z9hG4bK")).then_some((branch, sent_by))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    fn req(start: &str) -> Request {
        let method = start.split(' ').next().unwrap();
        let text = format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK77;rport\r\nFrom: <sip:a@h>;tag=a\r\n\
             To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_key_is_branch_sent_by_and_method() {
        let a = TxKey::of(&req("REGISTER sip:h SIP/2.0")).unwrap();
        assert_eq!(a.branch, "z9hG4bK77");
        assert_eq!(a.sent_by, "10.0.0.1:5070");
        assert_eq!(a.method, "REGISTER");
        let b = TxKey::of(&req("OPTIONS sip:h SIP/2.0")).unwrap();
        assert_ne!(a, b, "same branch, other method");
    }

    #[test]
    fn via_values_are_read_leniently() {
        assert_eq!(via_branch_and_sent_by("SIP/2.0/UDP h:1;branch=z9hG4bKx"), Some(("z9hG4bKx", "h:1")));
        assert_eq!(via_branch_and_sent_by("SIP/2.0/TCP  [::1]:5 ; received=1.2.3.4 ; BRANCH = z9hG4bKy"), Some(("z9hG4bKy", "[::1]:5")));
        assert_eq!(via_branch_and_sent_by("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"), Some(("z9hG4bK1", "a")));
        for none in ["", "SIP/2.0/UDP h", "SIP/2.0/UDP h;branch=1234567", "SIP/2.0/UDP h;branch=z9hG4bK", "SIP/2.0/UDP;branch=z9hG4bKq", ";;,"] {
            assert_eq!(via_branch_and_sent_by(none), None, "{none}");
        }
    }
}
