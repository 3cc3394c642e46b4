//! HTTP digest for SIP (RFC 2617 / RFC 8760), sans-IO: parse, challenge, verify.
//!
//! Nonces are stateless: `hex(issued_at_secs) . hex(hmac(secret, issued_at))`, so
//! any nonce we issued can be checked for authenticity and age without a table,
//! and a restart with the same secret keeps them valid.
use md5::{Digest as _, Md5};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

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

/// Issues and checks nonces; holds the per-process secret.
#[derive(Clone)]
pub struct NonceKeeper {
    secret: [u8; 32],
    ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    Fresh,
    /// Ours, but older than the TTL: the client should retry with `stale=true`.
    Stale,
    /// Not a nonce we issued.
    Invalid,
}

impl NonceKeeper {
    pub fn new(secret: [u8; 32], ttl_secs: u64) -> Self {
        NonceKeeper { secret, ttl_secs }
    }

    fn mac(&self, issued: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        hex::encode(&h.finalize()[..12])
    }

    pub fn issue(&self, now_secs: u64) -> String {
        format!("{now_secs:x}.{}", self.mac(now_secs))
    }

    pub fn check(&self, nonce: &str, now_secs: u64) -> NonceState {
        let Some((ts, mac)) = nonce.split_once('.') else {
            return NonceState::Invalid;
        };
        let Ok(issued) = u64::from_str_radix(ts, 16) else {
            return NonceState::Invalid;
        };
        if !constant_time_eq(mac.as_bytes(), self.mac(issued).as_bytes()) || issued > now_secs + 5 {
            return NonceState::Invalid;
        }
        if now_secs - issued.min(now_secs) > self.ttl_secs {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    /// The nonce is ours but expired: challenge again with `stale=true`.
    Stale,
    /// Wrong password, wrong realm, forged nonce or unknown algorithm.
    Failed,
}

/// Check `creds` for a request with `method`, given the user's password.
pub fn verify(creds: &Credentials, method: &str, realm: &str, password: &str, nonces: &NonceKeeper, now_secs: u64) -> Verdict {
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
    let nonce_state = nonces.check(&creds.nonce, now_secs);
    if nonce_state == NonceState::Invalid {
        return Verdict::Failed;
    }
    let expected = expected_response(creds, algorithm, method, password);
    if !constant_time_eq(expected.as_bytes(), creds.response.to_ascii_lowercase().as_bytes()) {
        return Verdict::Failed;
    }
    // Right password on an old nonce: ask the device to retry, don't count a failure.
    if nonce_state == NonceState::Stale { Verdict::Stale } else { Verdict::Ok }
}

fn expected_response(c: &Credentials, alg: Algorithm, method: &str, password: &str) -> String {
    let ha1 = alg.hash(&format!("{}:{}:{}", c.username, c.realm, password));
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
