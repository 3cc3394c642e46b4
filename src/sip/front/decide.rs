//! What the SIP front does with a request before any transaction exists
//! (sans-IO): which requests are answered statelessly, and the key a
//! retransmission of one is recognised by.
//!
//! RFC 3261 lets a server answer a non-INVITE request without transaction
//! state as long as a retransmission gets the same answer (8.2.7, 16.11;
//! Kamailio's `sl` module): the REGISTER challenge and the REGISTER itself
//! (processed in arrival order, one at a time, so per binding in order),
//! OPTIONS keep-alives, and the refusals of requests outside any dialog.
//! INVITE, CANCEL, ACK and every request with a To tag keep their rsipstack
//! transaction and dialog.
use crate::sip::router::{route, Route};
use rsipstack::sip::{Header, Method, Request, StatusCode};

/// What the front does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// REGISTER: authenticate and update the location service, answer.
    Register,
    /// An OPTIONS outside a dialog: 200 with Allow and Accept.
    Options,
    /// Refused outright with this status (405 names what we allow).
    Refuse(StatusCode),
    /// Handed to rsipstack: a transaction (and dialog) is needed.
    Transaction,
}

pub fn decide(req: &Request) -> Action {
    match route(req) {
        Route::Register => Action::Register,
        Route::Options => Action::Options,
        // rsipstack makes no transaction without a From tag (RFC 3261
        // 8.1.1.3 requires one; RFC 2543 clients sent none) and drops the
        // request unanswered: the caller or subscriber would retransmit
        // into silence.
        Route::Subscribe | Route::NewInvite if !has_from_tag(req) => Action::Refuse(StatusCode::BadRequest),
        // rsipstack answers a CANCEL itself, matched against its INVITE
        Route::Reply(status) if req.method != Method::Cancel && req.method != Method::Ack => Action::Refuse(status),
        _ => Action::Transaction,
    }
}

fn has_from_tag(req: &Request) -> bool {
    use rsipstack::sip::HeadersExt;
    req.from_header().ok().and_then(|f| f.tag().ok().flatten()).is_some_and(|t| !t.value().is_empty())
}

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

    fn req(start: &str, to_tag: bool) -> Request {
        let method = start.split(' ').next().unwrap();
        let tag = if to_tag { ";tag=b" } else { "" };
        let text = format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK77;rport\r\nFrom: <sip:a@h>;tag=a\r\n\
             To: <sip:b@h>{tag}\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    #[test]
    fn register_options_and_refusals_are_stateless() {
        assert_eq!(decide(&req("REGISTER sip:h SIP/2.0", false)), Action::Register);
        assert_eq!(decide(&req("REGISTER sip:h SIP/2.0", true)), Action::Register);
        assert_eq!(decide(&req("OPTIONS sip:h SIP/2.0", false)), Action::Options);
        assert_eq!(decide(&req("MESSAGE sip:h SIP/2.0", false)), Action::Refuse(StatusCode::MethodNotAllowed));
        assert_eq!(decide(&req("PUBLISH sip:h SIP/2.0", false)), Action::Refuse(StatusCode::MethodNotAllowed));
        assert_eq!(decide(&req("BYE sip:h SIP/2.0", false)), Action::Refuse(StatusCode::CallTransactionDoesNotExist));
    }

    #[test]
    fn invites_dialogs_cancel_and_ack_keep_their_transaction() {
        assert_eq!(decide(&req("INVITE sip:h SIP/2.0", false)), Action::Transaction);
        assert_eq!(decide(&req("INVITE sip:h SIP/2.0", true)), Action::Transaction);
        assert_eq!(decide(&req("OPTIONS sip:h SIP/2.0", true)), Action::Transaction);
        assert_eq!(decide(&req("BYE sip:h SIP/2.0", true)), Action::Transaction);
        assert_eq!(decide(&req("MESSAGE sip:h SIP/2.0", true)), Action::Transaction);
        assert_eq!(decide(&req("CANCEL sip:h SIP/2.0", false)), Action::Transaction);
        assert_eq!(decide(&req("ACK sip:h SIP/2.0", false)), Action::Transaction);
        assert_eq!(decide(&req("SUBSCRIBE sip:h SIP/2.0", false)), Action::Transaction, "answered, then NOTIFY");
        assert_eq!(decide(&req("SUBSCRIBE sip:h SIP/2.0", true)), Action::Transaction, "a refresh");
        let mut untagged = req("SUBSCRIBE sip:h SIP/2.0", false);
        untagged.headers.retain(|h| !matches!(h, Header::From(_)));
        untagged.headers.push(Header::From("<sip:a@h>".into()));
        assert_eq!(decide(&untagged), Action::Refuse(StatusCode::BadRequest), "no From tag: 400, not dropped");
        let mut untagged = req("INVITE sip:h SIP/2.0", false);
        untagged.headers.retain(|h| !matches!(h, Header::From(_)));
        untagged.headers.push(Header::From("<sip:a@h>".into()));
        assert_eq!(decide(&untagged), Action::Refuse(StatusCode::BadRequest), "an INVITE without a From tag: 400, not dropped");
        assert_eq!(decide(&req("INVITE sip:h SIP/2.0", false)), Action::Transaction);
    }

    #[test]
    fn the_key_is_branch_sent_by_and_method() {
        let a = TxKey::of(&req("REGISTER sip:h SIP/2.0", false)).unwrap();
        assert_eq!(a.branch, "z9hG4bK77");
        assert_eq!(a.sent_by, "10.0.0.1:5070");
        assert_eq!(a.method, "REGISTER");
        let b = TxKey::of(&req("OPTIONS sip:h SIP/2.0", false)).unwrap();
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
