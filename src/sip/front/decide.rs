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
use rsipstack::sip::{Method, Request, StatusCode};

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

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::{Header, SipMessage};

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
}
