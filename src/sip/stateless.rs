//! Answers given before a transaction exists (sans-IO): 513 to a datagram too
//! large to take, 505 to a request that is not SIP/2.0. Built from the few
//! headers a response needs (RFC 3261 8.2.6), so they work on messages that
//! are never parsed whole.
use rsipstack::sip::{Header, Request, Response, StatusCode, Version};

/// The response headers copied from a request.
const KEPT: [(&str, &str, &str); 5] =
    [("via", "v", "Via"), ("from", "f", "From"), ("to", "t", "To"), ("call-id", "i", "Call-ID"), ("cseq", "", "CSeq")];

/// A stateless reply would never be larger than this; past it, drop instead.
const MAX_REPLY: usize = 4096;

/// `SIP/2.0 <status> <reason>` for the raw request `data`, or `None` when no
/// response is possible or due: a response, an ACK, no request line, or a
/// mandatory header missing. `to_tag` is added to a To without a tag.
pub fn reply_to_raw(data: &[u8], status: u16, reason: &str, to_tag: &str) -> Option<Vec<u8>> {
    let head_end = memfind(data, b"\r\n\r\n").unwrap_or(data.len());
    let head = String::from_utf8_lossy(&data[..head_end]);
    let mut lines = head.split("\r\n").skip_while(|l| l.is_empty());
    let request_line = lines.next()?;
    // first and last word: a malformed Request-Line (spaces in the
    // Request-URI, or too many) still gets its 400
    let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
    let (method, version) = (parts.next()?, parts.next_back()?);
    if method.is_empty() || method == "ACK" || !version.starts_with("SIP/") {
        return None;
    }
    // unfold continuation lines
    let mut headers: Vec<String> = Vec::new();
    for line in lines {
        match (line.starts_with([' ', '\t']), headers.last_mut()) {
            (true, Some(last)) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => headers.push(line.to_string()),
        }
    }
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for (long, short, canonical) in KEPT {
        let mut found = false;
        for h in &headers {
            let Some((name, value)) = h.split_once(':') else { continue };
            let name = name.trim();
            if !(name.eq_ignore_ascii_case(long) || (!short.is_empty() && name.eq_ignore_ascii_case(short))) {
                continue;
            }
            found = true;
            let mut value = value.trim().to_string();
            if canonical == "To" && !has_tag(&value) {
                value.push_str(";tag=");
                value.push_str(to_tag);
            }
            out.push_str(&format!("{canonical}: {value}\r\n"));
        }
        if !found {
            return None;
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    (out.len() <= MAX_REPLY).then(|| out.into_bytes())
}

/// Whether a datagram's body is shorter than its Content-Length says (RFC 3261
/// 18.3: the datagram ended early; a request gets 400, a response is dropped).
/// False when there is no header end or no readable Content-Length: the parser
/// decides those.
pub fn body_cut_short(data: &[u8]) -> bool {
    let Some(head_end) = memfind(data, b"\r\n\r\n") else { return false };
    let body = data.len() - (head_end + 4);
    let head = String::from_utf8_lossy(&data[..head_end]);
    let declared = head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")).then(|| value.trim().parse::<usize>().ok())?
    });
    declared.is_some_and(|n| n > body)
}

/// Why a datagram is answered here instead of being handed to rsipstack,
/// as `(status, reason)` for [`reply_to_raw`]: larger than `limit` (513); a
/// body shorter than its Content-Length (400); a request rsipstack cannot
/// parse (400, or 501 when its method is one it does not know, RFC 3261
/// 8.2.1), or whose Request-Line is not `Method SP Request-URI SP
/// SIP-Version` exactly (400; rsipstack would accept extra spaces). `None`:
/// hand it up.
pub fn datagram_refusal(data: &[u8], limit: usize) -> Option<(u16, &'static str)> {
    if data.len() > limit {
        return Some((513, "Message Too Large"));
    }
    if body_cut_short(data) {
        return Some((400, "Bad Request"));
    }
    if data.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let line_end = memfind(data, b"\r\n").unwrap_or(data.len());
    let line = &data[..line_end];
    if line.starts_with(b"SIP/") {
        return None; // a response: rsipstack drops what it cannot parse
    }
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // and a Request-URI is never in <> (RFC 4475 3.1.2.7; rsipstack strips them)
    let strict = parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && !p.contains(&b'\t'))
        && !parts[1].starts_with(b"<")
        && escapes_ok(parts[1]);
    match rsipstack::sip::SipMessage::try_from(data) {
        Ok(_) if strict => None,
        Ok(_) => Some((400, "Bad Request")),
        Err(_) => {
            let method = std::str::from_utf8(parts[0]).unwrap_or("");
            let known = method.parse::<rsipstack::sip::Method>().is_ok();
            Some(if known || method.is_empty() { (400, "Bad Request") } else { (501, "Not Implemented") })
        }
    }
}

/// Whether every `%` starts an escape of two hex digits (RFC 3261 25.1,
/// `escaped`); rsipstack takes `sip:%zz@h` as it is.
fn escapes_ok(uri: &[u8]) -> bool {
    uri.iter().enumerate().filter(|&(_, &b)| b == b'%').all(|(i, _)| uri.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

fn has_tag(to: &str) -> bool {
    // parameters after the URI (after '>' when there is one)
    let params = to.rsplit_once('>').map(|(_, p)| p).unwrap_or(to);
    params.split(';').skip(1).any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A bodiless SIP/2.0 response to a parsed request, whatever its version.
pub fn reply_to(req: &Request, status: StatusCode, to_tag: &str) -> Response {
    let mut headers = req.headers.clone();
    headers.retain(|h| matches!(h, Header::Via(_) | Header::CallId(_) | Header::From(_) | Header::To(_) | Header::CSeq(_)));
    for h in headers.iter_mut() {
        if let Header::To(to) = h
            && !has_tag(to.value())
        {
            *h = Header::To(format!("{};tag={to_tag}", to.value()).into());
        }
    }
    headers.push(Header::ContentLength(0u32.into()));
    Response { status_code: status, wire_reason: None, version: Version::V2, headers, body: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG_INVITE: &str = "INVITE sip:102@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\nFrom: <sip:101@h>;tag=a\r\nTo:\r\n <sip:102@h>\r\n\
        Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 9\r\n\r\nv=0 junks";

    #[test]
    fn too_large_reply_copies_the_transaction_headers() {
        let r = reply_to_raw(BIG_INVITE.as_bytes(), 513, "Message Too Large", "t1").unwrap();
        let text = String::from_utf8(r).unwrap();
        assert_eq!(
            text,
            "SIP/2.0 513 Message Too Large\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\nFrom: <sip:101@h>;tag=a\r\nTo: <sip:102@h>;tag=t1\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let msg = rsipstack::sip::SipMessage::try_from(text.as_bytes()).expect("parses");
        assert!(matches!(msg, rsipstack::sip::SipMessage::Response(_)));
    }

    #[test]
    fn no_reply_where_none_is_due() {
        let ack = BIG_INVITE.replacen("INVITE", "ACK", 1);
        let response = "SIP/2.0 200 OK\r\nVia: x\r\nFrom: x\r\nTo: x\r\nCall-ID: x\r\nCSeq: 1 X\r\n\r\n";
        let no_call_id = BIG_INVITE.replace("Call-ID: c1\r\n", "");
        let huge_via = BIG_INVITE.replace("branch=z9hG4bK1", &"x".repeat(5000));
        for bad in [ack.as_str(), response, no_call_id.as_str(), huge_via.as_str(), "", "\r\n\r\n", "garbage"] {
            assert!(reply_to_raw(bad.as_bytes(), 513, "Message Too Large", "t").is_none(), "{bad:.40}");
        }
        assert!(reply_to_raw(&[0xff; 100], 513, "x", "t").is_none());
    }

    #[test]
    fn a_body_shorter_than_its_content_length_is_seen() {
        assert!(!body_cut_short(BIG_INVITE.as_bytes()));
        assert!(body_cut_short(BIG_INVITE.replace("Content-Length: 9", "Content-Length: 5000").as_bytes()));
        assert!(body_cut_short(BIG_INVITE.replace("Content-Length: 9", "l: 10").as_bytes()));
        assert!(!body_cut_short(BIG_INVITE.replace("Content-Length: 9", "Content-Length: 3").as_bytes()));
        assert!(!body_cut_short(BIG_INVITE.replace("Content-Length: 9", "Content-Length: lots").as_bytes()));
        assert!(!body_cut_short(b"OPTIONS sip:h SIP/2.0\r\nContent-Length: 10\r\n"));
    }

    #[test]
    fn to_tag_is_kept_when_present() {
        let with_tag = BIG_INVITE.replace("To:\r\n <sip:102@h>", "t: <sip:102@h>;tag=zz");
        let text = String::from_utf8(reply_to_raw(with_tag.as_bytes(), 513, "Message Too Large", "t1").unwrap()).unwrap();
        assert!(text.contains("To: <sip:102@h>;tag=zz\r\n"), "{text}");
        assert!(!has_tag("<sip:a@b;tag=x>"), "a tag inside the URI is not the To tag");
        assert!(has_tag("sip:a@b;tag=x"));
    }

    #[test]
    fn a_request_uri_with_a_broken_escape_is_refused() {
        let with_uri = |uri: &str| {
            format!("OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        };
        assert_eq!(datagram_refusal(with_uri("sip:%61lice@h").as_bytes(), 8000), None);
        for bad in ["sip:%zz@h", "sip:a%@h", "sip:a@h;x=%4"] {
            assert_eq!(datagram_refusal(with_uri(bad).as_bytes(), 8000), Some((400, "Bad Request")), "{bad}");
        }
    }

    #[test]
    fn version_reply_is_sip_2() {
        let req = "OPTIONS sip:127.0.0.1 SIP/1.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
            From: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let Ok(rsipstack::sip::SipMessage::Request(r)) = rsipstack::sip::SipMessage::try_from(req.as_bytes()) else {
            panic!("SIP/1.0 request does not parse")
        };
        assert_ne!(r.version, Version::V2);
        let resp = reply_to(&r, StatusCode::VersionNotSupported, "t9").to_string();
        assert!(resp.starts_with("SIP/2.0 505 "), "{resp}");
        assert!(resp.contains(";tag=t9"), "{resp}");
        assert!(!resp.contains("Max-Forwards"), "{resp}");
    }
}
