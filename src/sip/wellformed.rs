//! Whether a message is well-formed enough to take (sans-IO): what RFC 3261
//! makes malformed and rsipstack's lenient parser lets through (RFC 4475
//! 3.1.2 and 3.3), size and version limits, and the option tags a request
//! may `Require` of us. [`super::guard`] applies it to every message before
//! a transaction exists.
use rsipstack::sip::{Header, Method, Request, SipMessage, StatusCode, Version};

/// What to do with a message that is not banned (sans-IO, [`check`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Pass,
    Drop(&'static str),
    Reply(StatusCode),
    /// 420 Bad Extension, with these option tags in `Unsupported`.
    BadExtension(String),
}

/// The option tags a request may `Require` of us (RFC 3261 8.2.2.3). None:
/// the PBX sends no reliable provisional responses (100rel), keeps no
/// session timer of its own (timer) and takes no INVITE with Replaces.
const SUPPORTED_OPTION_TAGS: [&str; 0] = [];

/// `max_message_bytes`: `usize::MAX` when the size is known to be within
/// the limit already (a UDP datagram), so the message is not serialized again.
pub fn check(msg: &SipMessage, max_message_bytes: usize) -> Check {
    let (version, headers, is_ack) = match msg {
        SipMessage::Request(r) => (r.version, r.headers.len(), r.method == Method::Ack),
        SipMessage::Response(r) => (r.version, r.headers.len(), false),
    };
    let too_large = headers > 200 || (max_message_bytes < usize::MAX && msg.to_bytes().len() > max_message_bytes);
    let problem = if too_large {
        (StatusCode::MessageTooLarge, "too large")
    } else if version != Version::V2 {
        (StatusCode::VersionNotSupported, "not SIP/2.0")
    } else if let SipMessage::Request(r) = msg
        && let Some(problem) = request_problem(r)
    {
        problem
    } else if let SipMessage::Response(r) = msg
        && !r.headers.iter().any(|h| matches!(h, Header::CSeq(c) if c.value().split_whitespace().next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 1 << 31)))
    {
        // RFC 4475 3.1.2.5: a response whose CSeq does not parse is dropped
        (StatusCode::BadRequest, "response without a readable CSeq")
    } else if let SipMessage::Request(r) = msg
        && let Some(tags) = unsupported_required(r)
    {
        return Check::BadExtension(tags);
    } else {
        return Check::Pass;
    };
    match msg {
        SipMessage::Request(_) if !is_ack => Check::Reply(problem.0),
        _ => Check::Drop(problem.1),
    }
}

/// What RFC 3261 makes a request malformed and rsipstack's lenient parser
/// lets through (RFC 4475 3.1.2 and 3.3): the answer is 400, or 416 for a
/// Request-URI whose scheme we cannot route.
fn request_problem(r: &Request) -> Option<(StatusCode, &'static str)> {
    let bad = |why| Some((StatusCode::BadRequest, why));
    let count = |f: fn(&Header) -> bool| r.headers.iter().filter(|h| f(h)).count();
    // RFC 3261 8.1.1: these are mandatory, and none of them is a list (7.3.1).
    let once = [
        count(|h| matches!(h, Header::To(_))),
        count(|h| matches!(h, Header::From(_))),
        count(|h| matches!(h, Header::CallId(_))),
        count(|h| matches!(h, Header::CSeq(_))),
    ];
    if once.contains(&0) {
        return bad("a mandatory header is missing");
    }
    if once.iter().any(|&n| n > 1) || count(|h| matches!(h, Header::MaxForwards(_))) > 1 {
        return bad("a single-valued header is repeated");
    }
    if count(|h| matches!(h, Header::Via(_))) == 0 {
        return bad("no Via");
    }
    let mut lengths = r.headers.iter().filter_map(|h| match h {
        Header::ContentLength(l) => Some(l.value().trim().parse::<u32>().ok()),
        _ => None,
    });
    if let Some(first) = lengths.next() {
        // not a number (e.g. negative), or two that disagree
        if first.is_none() || lengths.any(|l| l != first) {
            return bad("bad Content-Length");
        }
    }
    for h in r.headers.iter() {
        match h {
            Header::CSeq(c) => match (c.seq(), c.method()) {
                // RFC 3261 8.1.1.5: less than 2**31
                (Ok(seq), Ok(method)) if seq < 1 << 31 => {
                    if method != r.method {
                        return bad("CSeq method differs from the request's");
                    }
                }
                _ => return bad("bad CSeq"),
            },
            Header::MaxForwards(m) if m.value().trim().parse::<u8>().is_err() => return bad("bad Max-Forwards"),
            Header::Via(v) if empty_element(v.value()) => return bad("empty element in Via"),
            Header::To(v) if !quotes_balanced(v.value()) => return bad("unbalanced quotes in To"),
            Header::From(v) if !quotes_balanced(v.value()) => return bad("unbalanced quotes in From"),
            Header::To(v) if !name_addr_ok(v.value()) => return bad("malformed name-addr in To"),
            Header::From(v) if !name_addr_ok(v.value()) => return bad("malformed name-addr in From"),
            _ => {}
        }
    }
    // RFC 3261 19.1.5: headers in a Request-URI are not allowed
    let uri = r.uri.to_string();
    if uri.contains('?') {
        return bad("headers in the Request-URI");
    }
    // RFC 3261 8.2.2.1: a scheme we cannot route is 416
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Some((StatusCode::UnsupportedUriScheme, "unsupported Request-URI scheme"));
    }
    None
}

/// An empty parameter or list element outside quotes (`;;`, `,,`, or one at
/// the end), as in RFC 4475 3.1.2.1's `Via: SIP/2.0/UDP 192.0.2.15;;,;,,`.
fn empty_element(value: &str) -> bool {
    let mut inside = false;
    let mut last = b';'; // a leading separator counts as an empty element too
    for &b in value.as_bytes() {
        match b {
            b'"' => inside = !inside,
            b' ' | b'\t' => continue,
            b';' | b',' if !inside && matches!(last, b';' | b',') => return true,
            _ => {}
        }
        last = b;
    }
    matches!(last, b';' | b',')
}

/// The option tags of `Require` we do not support, comma-separated, or None
/// (RFC 3261 8.2.2.3; ACK and CANCEL are exempt). RFC 4475 3.3.5.
fn unsupported_required(r: &Request) -> Option<String> {
    if matches!(r.method, Method::Ack | Method::Cancel) {
        return None;
    }
    let unknown: Vec<&str> = r
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(v) => Some(v.value()),
            _ => None,
        })
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !SUPPORTED_OPTION_TAGS.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    (!unknown.is_empty()).then(|| unknown.join(", "))
}

/// Whether a To/From in name-addr form (`name <uri>`) keeps RFC 3261 25.1's
/// shape: the display name is a quoted string or tokens (RFC 4475 3.1.2.15:
/// an unquoted comma is not), and nothing but the URI sits between `<` and
/// `>` (3.1.2.14: `< sip:a@b >` is not). Lenient where phones are: bytes
/// beyond ASCII in an unquoted name (a UTF-8 name a doorbell was given) pass.
/// The addr-spec form (no `<`) is the parser's to judge.
fn name_addr_ok(value: &str) -> bool {
    let value = value.trim_start();
    let Some(open) = value.find('<') else { return true };
    let name = &value[..open];
    let name_ok = if let Some(rest) = name.strip_prefix('"') {
        // the quoted string, then only white space up to `<`
        let mut escaped = false;
        let close = rest.char_indices().find_map(|(i, c)| match (escaped, c) {
            (true, _) => {
                escaped = false;
                None
            }
            (false, '\\') => {
                escaped = true;
                None
            }
            (false, '"') => Some(i),
            _ => None,
        });
        close.is_some_and(|i| rest[i + 1..].trim().is_empty())
    } else if name.contains([';', '"']) {
        return true; // a `<` inside a parameter of an addr-spec: not name-addr
    } else {
        name.bytes().all(|b| b >= 0x80 || b.is_ascii_alphanumeric() || b" \t-.!%*_+`'~".contains(&b))
    };
    let inner = &value[open + 1..];
    let uri_ok = inner.find('>').is_some_and(|close| {
        let uri = &inner[..close];
        !uri.is_empty() && !uri.starts_with([' ', '\t']) && !uri.ends_with([' ', '\t'])
    });
    name_ok && uri_ok
}

/// Whether every quoted string in a header value is closed (`\"` escapes).
fn quotes_balanced(value: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in value.chars() {
        match (inside, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, _, '"') => inside = !inside,
            _ => {}
        }
    }
    !inside
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::sip) fn msg(text: &str) -> SipMessage {
        SipMessage::try_from(text.as_bytes()).unwrap()
    }
    pub(in crate::sip) fn request(start: &str, body: &str) -> SipMessage {
        msg(&format!(
            "{start}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\n\
             Call-ID: c\r\nCSeq: 1 {}\r\nContent-Length: {}\r\n\r\n{body}",
            start.split(' ').next().unwrap(),
            body.len()
        ))
    }

    #[test]
    fn old_versions_get_505_and_big_messages_513() {
        assert_eq!(check(&request("OPTIONS sip:h SIP/2.0", ""), 2000), Check::Pass);
        assert_eq!(check(&request("OPTIONS sip:h SIP/1.0", ""), 2000), Check::Reply(StatusCode::VersionNotSupported));
        assert_eq!(check(&request("ACK sip:h SIP/1.0", ""), 2000), Check::Drop("not SIP/2.0"));
        let big = "x".repeat(2000);
        assert_eq!(check(&request("INVITE sip:h SIP/2.0", &big), 2000), Check::Reply(StatusCode::MessageTooLarge));
        assert_eq!(check(&request("INVITE sip:h SIP/2.0", &big), 4000), Check::Pass);
        assert_eq!(check(&request("ACK sip:h SIP/2.0", &big), 2000), Check::Drop("too large"));
        let resp = msg("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 X\r\n\r\n");
        assert_eq!(check(&resp, 2000), Check::Pass);
    }

    #[test]
    fn require_of_an_unknown_extension_gets_420_naming_it() {
        let with = |method: &str, require: &str| {
            msg(&format!(
                "{method} sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\n\
                 Call-ID: c\r\nCSeq: 1 {method}\r\nRequire: {require}\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        assert_eq!(check(&with("INVITE", "100rel"), 2000), Check::BadExtension("100rel".into()));
        assert_eq!(check(&with("OPTIONS", "timer ,replaces"), 2000), Check::BadExtension("timer, replaces".into()));
        assert_eq!(check(&with("CANCEL", "100rel"), 2000), Check::Pass, "CANCEL ignores Require");
        assert_eq!(check(&with("ACK", "100rel"), 2000), Check::Pass, "ACK ignores Require");
        assert_eq!(check(&with("OPTIONS", ""), 2000), Check::Pass, "an empty Require asks nothing");
    }

    #[test]
    fn name_addrs_keep_their_shape() {
        for good in [
            "<sip:a@h>;tag=1",
            "sip:a@h;tag=1",
            "Front Door <sip:101@h>",
            "\"Bell, Alexander\" <sip:a@h>;tag=2",
            "\"J \\\"R\\\"\" <sip:j@h>",
            "K\u{fc}che <sip:102@h>",
            "O'Brien~2 <sip:103@h>",
            "sip:a@h;x=\"<\"",
        ] {
            assert!(name_addr_ok(good), "{good}");
        }
        for bad in ["\"Watson, Thomas\" < sip:t@h >", "Watson, Thomas <sip:t@h>", "<sip:a@h >", "<>", "\"a\" x <sip:a@h>", "<sip:a@h"] {
            assert!(!name_addr_ok(bad), "{bad}");
        }
    }

    #[test]
    fn a_response_without_a_readable_cseq_is_dropped() {
        let resp = |cseq: &str| msg(&format!("SIP/2.0 503 Busy\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: {cseq}\r\n\r\n"));
        assert_eq!(check(&resp("9292394834772304023312 OPTIONS"), 2000), Check::Drop("response without a readable CSeq"));
        assert_eq!(check(&resp("2147483648 OPTIONS"), 2000), Check::Drop("response without a readable CSeq"));
        assert_eq!(check(&resp("7 OPTIONS"), 2000), Check::Pass);
    }

    #[test]
    fn empty_elements_and_open_quotes() {
        assert!(empty_element("SIP/2.0/UDP 192.0.2.15;;,;,,"));
        assert!(empty_element("SIP/2.0/UDP h;branch=z9hG4bK1;"));
        assert!(empty_element("SIP/2.0/UDP h ; , SIP/2.0/UDP g"));
        assert!(!empty_element("SIP/2.0/UDP h;branch=z9hG4bK1;rport, SIP/2.0/TCP g;branch=z9hG4bK2"));
        assert!(!empty_element("SIP / 2.0 / UDP h ; branch = \";;\""));
        assert!(quotes_balanced("\"J Rosenberg \\\\\\\"\" <sip:j@example.com>;tag=1"));
        assert!(!quotes_balanced("\"Mr. J. User <sip:j.user@example.com>"));
    }

    #[test]
    fn the_whole_message_counts_not_only_the_body() {
        let many = (0..60).map(|i| format!("X-H{i}: {}\r\n", "y".repeat(30))).collect::<String>();
        let text = format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{many}Content-Length: 0\r\n\r\n"
        );
        assert!(text.len() > 2000);
        assert_eq!(check(&msg(&text), 2000), Check::Reply(StatusCode::MessageTooLarge));
    }
}
