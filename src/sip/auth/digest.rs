//! HTTP digest for SIP (RFC 2617 / RFC 8760), sans-IO: parse, challenge, verify.
//!
//! Nonces are issued and remembered by [`NonceTable`] (bound to the source
//! address, each count usable once; see `nonces.rs`).
use super::nonces::{constant_time_eq, NonceState, NonceTable};
pub use crate::storage::credentials::{ha1, Algorithm, Ha1};
use std::net::IpAddr;

/// The fields of an `Authorization` / `Proxy-Authorization` digest header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    NotDigest,
    Missing(&'static str),
    Malformed,
}

/// Parse `Digest k=v, k="v", ...`. Tolerates spacing and quoting variants.
pub fn parse_credentials(header: &str) -> Result<Credentials, ParseError> {
    let header = header.trim();
    let rest = match header.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("digest") => rest,
        _ => return Err(ParseError::NotDigest),
    };
    let mut c = Credentials::default();
    for (k, v) in parse_params(rest)? {
        let slot = match k.to_ascii_lowercase().as_str() {
            "username" => &mut c.username,
            "realm" => &mut c.realm,
            "nonce" => &mut c.nonce,
            "uri" => &mut c.uri,
            "response" => &mut c.response,
            "algorithm" => {
                c.algorithm = Some(v);
                continue;
            }
            "qop" => {
                c.qop = Some(v);
                continue;
            }
            "nc" => {
                c.nc = Some(v);
                continue;
            }
            "cnonce" => {
                c.cnonce = Some(v);
                continue;
            }
            "opaque" => {
                c.opaque = Some(v);
                continue;
            }
            _ => continue,
        };
        *slot = v;
    }
    for (name, v) in [("username", &c.username), ("nonce", &c.nonce), ("uri", &c.uri), ("response", &c.response)] {
        if v.is_empty() {
            return Err(ParseError::Missing(name));
        }
    }
    Ok(c)
}

fn parse_params(mut s: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|ch: char| ch == ',' || ch.is_whitespace());
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s.find('=').ok_or(ParseError::Malformed)?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(stripped) = s.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, ch) in stripped.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end.ok_or(ParseError::Malformed)?;
            value = stripped[..end].replace("\\\"", "\"").replace("\\\\", "\\");
            s = &stripped[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        if key.is_empty() {
            return Err(ParseError::Malformed);
        }
        out.push((key, value));
    }
}

/// The value of a `WWW-Authenticate`/`Proxy-Authenticate` header.
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut v = format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        algorithm.name()
    );
    if stale {
        v.push_str(", stale=true");
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Right password on a nonce that is expired, forgotten or already used for
    /// this count: challenge again with `stale=true` (not a failure).
    Stale,
    /// The nonce was not issued to this address (forged, replayed from
    /// elsewhere, from before a restart): challenge again, count nothing.
    UnknownNonce,
    /// The digest `uri` is not the Request-URI: 400, count nothing.
    UriMismatch,
    /// Wrong password, unknown user, wrong realm or unknown algorithm, on a
    /// nonce issued to this address: a failure that counts toward a ban.
    Failed,
}

/// What the digest is checked against: the request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub method: &'a str,
    pub request_uri: &'a str,
    pub source: IpAddr,
    pub now_secs: u64,
}

/// Check `creds` for `attempt`, given the user's HA1 (`None`: no such user,
/// which must look exactly like a wrong password). A good answer spends its
/// nonce count.
pub fn verify(creds: &Credentials, attempt: Attempt, realm: &str, ha1: Option<&Ha1>, nonces: &mut NonceTable) -> Verdict {
    let nonce_state = nonces.check(&creds.nonce, attempt.source, attempt.now_secs);
    if nonce_state == NonceState::Unknown {
        return Verdict::UnknownNonce;
    }
    if !uri_matches(&creds.uri, attempt.request_uri) {
        return Verdict::UriMismatch;
    }
    let algorithm = match creds.algorithm.as_deref() {
        None => Algorithm::Md5,
        Some(a) => match Algorithm::parse(a) {
            Some(a) => a,
            None => return Verdict::Failed,
        },
    };
    if creds.realm != realm {
        return Verdict::Failed;
    }
    let with_qop = creds.qop.as_deref().is_some_and(|q| q.eq_ignore_ascii_case("auth"));
    let nc = match (with_qop, creds.nc.as_deref()) {
        (false, _) => None,
        (true, Some(nc)) if nc.len() == 8 => match u32::from_str_radix(nc, 16) {
            Ok(n) => Some(n),
            Err(_) => return Verdict::Failed,
        },
        (true, _) => return Verdict::Failed,
    };
    // An unknown user is checked against an HA1 nobody has, at the same cost.
    let known = ha1.and_then(|h| h.get(algorithm));
    let expected = response_from_ha1(creds, algorithm, attempt.method, known.unwrap_or("no such user"));
    if known.is_none() || !constant_time_eq(expected.as_bytes(), creds.response.to_ascii_lowercase().as_bytes()) {
        return Verdict::Failed;
    }
    // Right password: an old, forgotten or already spent nonce asks the device
    // to retry with a new one.
    if nonce_state == NonceState::Stale || !nonces.spend(&creds.nonce, attempt.source, nc) {
        return Verdict::Stale;
    }
    Verdict::Ok
}

/// Whether the digest `uri` names the Request-URI (RFC 2617 3.2.2.5). Most
/// clients copy it verbatim; the comparison tolerates case in scheme and host,
/// a default port written out, and URI parameters, since only scheme, user,
/// host and port say where the request goes. A `uri` without a user part that
/// names the Request-URI's host and port is accepted too: sipp (by default) and
/// some devices send the registrar's address for every request.
pub fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    match (uri_key(digest_uri), uri_key(request_uri)) {
        (Some(d), Some(r)) => d == r || (d.1.is_empty() && (&d.0, &d.2, d.3) == (&r.0, &r.2, r.3)),
        _ => false,
    }
}

/// (scheme, user, host, port) of a sip:/sips: URI, normalized.
fn uri_key(uri: &str) -> Option<(String, String, String, u16)> {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let (scheme, rest) = uri.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "sip" => 5060,
        "sips" => 5061,
        _ => return None,
    };
    let rest = rest.split([';', '?']).next()?;
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (u.split(':').next().unwrap_or(u).to_string(), h),
        None => (String::new(), rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, user, host.to_ascii_lowercase(), port))
}

fn response_from_ha1(c: &Credentials, alg: Algorithm, method: &str, ha1: &str) -> String {
    let ha2 = alg.hash(&format!("{method}:{}", c.uri));
    match c.qop.as_deref() {
        Some(q) if q.eq_ignore_ascii_case("auth") => alg.hash(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            c.nonce,
            c.nc.as_deref().unwrap_or(""),
            c.cnonce.as_deref().unwrap_or("")
        )),
        _ => alg.hash(&format!("{ha1}:{}:{ha2}", c.nonce)),
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
