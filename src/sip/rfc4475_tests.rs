//! RFC 4475's torture messages (tests/rfc4475/*.sip, written from the RFC's
//! text by tests/rfc4475/generate.py), each run through what our UDP
//! receive path does before a transaction exists, and the answer checked
//! against the one the RFC expects. A `GAP:` comment marks where we answer
//! differently from the RFC, and says why.
use super::wellformed::{check, Check};
use super::registrar::handler::parse_register;
use super::router::{route, Route};
use super::stateless;
use rsipstack::sip::{SipMessage, StatusCode, Transport};
use rsipstack::transport::SipConnection;
use std::net::SocketAddr;

#[derive(Debug, PartialEq)]
enum Answer {
    /// Answered with this status before (or instead of) parsing.
    Stateless(u16),
    /// Answered with this status after parsing (guard, router, registrar).
    Status(u16),
    /// 420 Bad Extension, naming these option tags in Unsupported.
    BadExtension(String),
    /// Dropped without an answer.
    Dropped,
    /// Handed to the part that handles it (a transaction, a dialog, a call).
    Handled(Route),
    /// A response, taken for its transaction.
    Response,
}

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{name}.sip", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Our answer to `name` arriving as a UDP datagram.
fn answer(name: &str) -> Answer {
    let data = load(name);
    if let Some((status, reason)) = stateless::datagram_refusal(&data, 8192) {
        return match stateless::reply_to_raw(&data, status, reason, "t") {
            Some(_) => Answer::Stateless(status),
            None => Answer::Dropped,
        };
    }
    let Ok(msg) = SipMessage::try_from(data.as_slice()) else { return Answer::Dropped };
    let source: SocketAddr = ([192, 0, 2, 99], 5060).into();
    let Ok(msg) = SipConnection::update_msg_received(msg, source, Transport::Udp) else { return Answer::Dropped };
    match check(&msg, 16 * 1024) {
        Check::Pass => {}
        Check::Drop(_) => return Answer::Dropped,
        Check::Reply(s) => return Answer::Status(s.code()),
        Check::BadExtension(tags) => return Answer::BadExtension(tags),
    }
    let SipMessage::Request(req) = msg else { return Answer::Response };
    // what the stateless front refuses outright (no From tag: 400)
    if let super::front::decide::Action::Refuse(s) = super::front::decide::decide(&req) {
        return Answer::Status(s.code());
    }
    match route(&req) {
        Route::Reply(s) => Answer::Status(s.code()),
        Route::Register => match parse_register(&req, source, Some(Transport::Udp)) {
            Ok(_) => Answer::Handled(Route::Register),
            Err(_) => Answer::Status(StatusCode::BadRequest.code()),
        },
        other => Answer::Handled(other),
    }
}

#[track_caller]
fn expect(name: &str, want: Answer) {
    assert_eq!(answer(name), want, "RFC 4475 message `{name}`");
}

/// Every message of `cases` against its answer; all mismatches at once.
#[track_caller]
fn expect_all(cases: &[(&str, Answer)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(name, want)| {
            let got = answer(name);
            (got != *want).then(|| format!("`{name}`: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "RFC 4475 messages answered otherwise:\n{}", wrong.join("\n"));
}

/// Answered with `status`, below rsipstack or above it.
#[track_caller]
fn expect_status(name: &str, status: u16) {
    let got = answer(name);
    assert!(got == Answer::Stateless(status) || got == Answer::Status(status), "RFC 4475 message `{name}`: {got:?}, not {status}");
}

// 3.1.1: valid messages are taken.

#[test]
fn valid_messages_are_handled() {
    use Answer::*;
    // 3.1.1.1 short tortuous INVITE: folded headers, odd case, leading zeros,
    // and its From and To tags written with LWS around `=` (`tag = 98asjd8`),
    // read since vendor/rsipstack's patch 6 (header_params_tests). Its To
    // has a tag, so it is an in-dialog request (an unknown dialog: 481 there).
    expect("wsinv", Handled(Route::InDialog));
    expect("esc01", Handled(Route::NewInvite)); // 3.1.1.3 valid % escaping
    expect("escnull", Handled(Route::Register)); // 3.1.1.4 escaped NULs in URIs
    expect("lwsdisp", Handled(Route::Options)); // 3.1.1.6 no LWS before <
    expect("longreq", Handled(Route::NewInvite)); // 3.1.1.7 long values
    expect("dblreq", Handled(Route::Register)); // 3.1.1.8 a second request after the first: ignored
    expect("semiuri", Handled(Route::Options)); // 3.1.1.9 ; in the user part
    expect("transports", Handled(Route::Options)); // 3.1.1.10 unknown transports in Via
    expect("unreason", Response); // 3.1.1.12 unusual reason phrase
    expect("noreason", Response); // 3.1.1.13 empty reason phrase
}

#[test]
fn valid_messages_with_unknown_methods_get_501() {
    // 3.1.1.2 every character a token allows, in the method too; 3.1.1.5 a
    // % in a method is not an escape (RE%47IST%45R is not REGISTER).
    // rsipstack's parser knows no other methods than its own, so these are
    // answered below it (stateless::datagram_refusal), as RFC 3261 8.2.1
    // asks of a method the UAS does not support.
    expect("intmeth", Answer::Stateless(501));
    expect("esc02", Answer::Stateless(501));
}

#[test]
fn a_multipart_message_parses_and_message_is_not_allowed() {
    // 3.1.1.11 multipart MIME body with binary parts: parsed whole; we do not
    // take MESSAGE requests (405).
    expect("mpart01", Answer::Status(405));
    let SipMessage::Request(r) = SipMessage::try_from(load("mpart01").as_slice()).unwrap() else { panic!() };
    assert!(r.body.ends_with(b"--boundary42--\r\n"), "the binary body is kept whole");
}

// 3.1.2: invalid messages get 400 (505 for a version; responses are dropped).

#[test]
fn invalid_requests_get_400() {
    use Answer::*;
    expect_all(&[
        ("badinv01", Status(400)), // 3.1.2.1 extraneous separators in Via
        ("clerr", Stateless(400)), // 3.1.2.2 Content-Length larger than the body
        ("ncl", Status(400)), // 3.1.2.3 negative Content-Length
        ("scalar02", Status(400)), // 3.1.2.4 overlarge CSeq, Max-Forwards, Expires
        ("quotbal", Status(400)), // 3.1.2.6 unterminated quoted string
        ("ltgtruri", Stateless(400)), // 3.1.2.7 <> around the Request-URI
        ("lwsruri", Stateless(400)), // 3.1.2.8 LWS inside the Request-URI
        ("lwsstart", Stateless(400)), // 3.1.2.9 several SP between Request-Line elements
        ("trws", Stateless(400)), // 3.1.2.10 SP at the end of the Request-Line
        ("escruri", Status(400)), // 3.1.2.11 escaped headers in the Request-URI
        ("mismatch01", Status(400)), // 3.1.2.17 CSeq method differs
    ]);
}

#[test]
fn unknown_version_gets_505_and_bad_responses_are_dropped() {
    expect("badvers", Answer::Status(505)); // 3.1.2.16
    expect("bigcode", Answer::Dropped); // 3.1.2.19 overlarge status code
    // 3.1.2.5 overlarge scalars in a response: dropped (its CSeq does not
    // parse; rsipstack reads Retry-After only when asked, and we never do).
    expect("scalarlg", Answer::Dropped);
}

#[test]
fn mismatched_cseq_with_unknown_method() {
    // 3.1.2.18: 501 (400 acceptable).
    expect("mismatch02", Answer::Stateless(501));
}

#[test]
fn display_names_and_addr_specs() {
    // 3.1.2.14 spaces inside <> and 3.1.2.15 an unquoted comma in a display
    // name: 400 (wellformed::name_addr_ok). 3.1.2.12's bad time zone in
    // Date is fine to ignore (we never read Date), and so is 3.1.2.13's
    // Contact URI with a header outside <>: RFC 4475 allows either 400 or
    // taking it, and the registrar then stores the URI it read.
    expect("badaspec", Answer::Status(400));
    expect("baddn", Answer::Status(400));
    expect("baddate", Answer::Handled(Route::NewInvite));
    let regbadct = answer("regbadct");
    assert!(matches!(regbadct, Answer::Status(400) | Answer::Handled(Route::Register)), "{regbadct:?}");
}

// 3.2 transaction layer, 3.3 application layer, 3.4 backward compatibility.

#[test]
fn missing_required_headers_get_400() {
    expect("insuf", Answer::Status(400)); // 3.3.1
    expect("multi01", Answer::Status(400)); // 3.3.8 several values in single-value headers
    expect("mcl01", Answer::Status(400)); // 3.3.9 two Content-Length values
}

#[test]
fn a_branch_without_a_cookie_is_still_a_transaction() {
    expect("badbranch", Answer::Handled(Route::Options)); // 3.2.1: handle it (200)
}

#[test]
fn unknown_uri_schemes() {
    // 3.3.2 and 3.3.3: 416 Unsupported URI Scheme.
    expect_all(&[("unkscm", Answer::Status(416)), ("novelsc", Answer::Status(416))]);
    // 3.3.4: To and Contact with other schemes in a REGISTER: 400 (the
    // registrar refuses the Contact).
    expect_status("unksm2", 400);
}

#[test]
fn require_of_an_unknown_extension() {
    // 3.3.5: 420 Bad Extension listing them in Unsupported. We answer as
    // the UAS, so Require counts and Proxy-Require does not.
    expect("bext01", Answer::BadExtension("nothingSupportsThis, nothingSupportsThisEither".into()));
}

#[test]
fn application_layer_messages() {
    use Answer::*;
    // 3.3.6 unknown Content-Type in an INVITE: 415 is the call's to give
    // (b2bua::invite reads the offer); here it is a new call.
    expect("invut", Handled(Route::NewInvite));
    // 3.3.7 unknown Authorization scheme: the registrar challenges (401),
    // since the digest parser does not take it for credentials.
    expect("regaut01", Handled(Route::Register));
    assert_eq!(
        crate::sip::auth::digest::parse_credentials("NoOneKnowsThisScheme opaque-data=here"),
        Err(crate::sip::auth::digest::ParseError::NotDigest)
    );
    expect("bcast", Response); // 3.3.10: a response, never sent to its broadcast Via by us
    expect("zeromf", Handled(Route::Options)); // 3.3.11: we are the UAS, so it is answered
    expect("cparam01", Handled(Route::Register)); // 3.3.12
    expect("cparam02", Handled(Route::Register)); // 3.3.13
    expect("regescrt", Handled(Route::Register)); // 3.3.14
    expect("sdp01", Handled(Route::NewInvite)); // 3.3.15 Accept without SDP: the call answers
    // 3.4 RFC 2543 INVITE (no From tag, no Via branch). RFC 4475 lets an
    // element that does not keep RFC 2543 compatibility refuse it, and
    // ha-pbx is one: no phone made this century sends one, and rsipstack
    // makes no transaction or dialog without a From tag (RFC 3261 8.1.1.3).
    // The front answers 400 rather than dropping it, so the sender does not
    // retransmit into silence (front::decide).
    expect("inv2543", Status(400));
}

#[test]
fn every_message_file_is_tested() {
    let dir = format!("{}/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let n = std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sip")).count();
    assert_eq!(n, 49);
}
