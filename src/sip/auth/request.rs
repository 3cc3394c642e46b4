//! Digest authentication of a request against the extension directory.
use super::digest::{self, Algorithm, Verdict};
use crate::sip::core::{now_unix, SipCore};
use rsipstack::sip::{Header, HeadersExt, Request, Response, StatusCode};
use std::net::IpAddr;
use std::time::Instant;

pub enum AuthOutcome {
    /// The authenticated extension.
    Ok(String),
    /// Send this response (challenge or refusal).
    Reply(Response),
}

/// `proxy` selects 407/Proxy-Authenticate (INVITE) over 401/WWW-Authenticate (REGISTER).
pub fn authenticate(core: &SipCore, req: &Request, source: IpAddr, proxy: bool) -> AuthOutcome {
    let realm = &core.config.sip.realm;
    let header_name = if proxy { "Proxy-Authorization" } else { "Authorization" };
    // A request may carry credentials for several realms; use ours.
    let creds = req
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(header_name))
        .filter_map(|h| digest::parse_credentials(h.value()).ok())
        .find(|c| &c.realm == realm);
    let Some(creds) = creds else {
        return AuthOutcome::Reply(challenge(core, req, proxy, false));
    };
    let now = now_unix() as u64;
    let verdict = match core.extension(&creds.username) {
        Some(ext) => digest::verify(&creds, req.method.to_string().as_str(), realm, &ext.password, &core.nonces, now),
        None => Verdict::Failed,
    };
    match verdict {
        Verdict::Ok => {
            if let Ok(mut bans) = core.bans.lock() {
                bans.record_success(source, Instant::now());
            }
            AuthOutcome::Ok(creds.username)
        }
        Verdict::Stale => AuthOutcome::Reply(challenge(core, req, proxy, true)),
        Verdict::Failed => {
            let banned = core.bans.lock().map(|mut b| b.record_failure(source, Instant::now())).unwrap_or(false);
            if banned {
                tracing::warn!(%source, user = %creds.username, "too many failed authentications: source ignored for {} s", core.config.security.ban_secs);
            } else {
                tracing::info!(%source, user = %creds.username, method = %req.method, "authentication failed");
            }
            AuthOutcome::Reply(core.endpoint.make_response(req, StatusCode::Forbidden, None))
        }
    }
}

/// 401/407 with one challenge per configured algorithm (MD5 only by default).
fn challenge(core: &SipCore, req: &Request, proxy: bool, stale: bool) -> Response {
    let realm = &core.config.sip.realm;
    let nonce = core.nonces.issue(now_unix() as u64);
    let status = if proxy { StatusCode::ProxyAuthenticationRequired } else { StatusCode::Unauthorized };
    let mut resp = core.endpoint.make_response(req, status, None);
    ensure_to_tag(&mut resp);
    for alg in &core.config.sip.digest_algorithms {
        let alg = match alg {
            crate::config::DigestAlgorithm::Md5 => Algorithm::Md5,
            crate::config::DigestAlgorithm::Sha256 => Algorithm::Sha256,
        };
        let value = digest::challenge(realm, &nonce, alg, stale);
        resp.headers.push(if proxy {
            Header::ProxyAuthenticate(value.into())
        } else {
            Header::WwwAuthenticate(value.into())
        });
    }
    resp
}

/// Final responses to out-of-dialog requests need a To tag (RFC 3261 §8.2.6.2).
pub fn ensure_to_tag(resp: &mut Response) {
    if let Ok(to) = resp.to_header_mut()
        && to.tag().ok().flatten().is_none() {
            let _ = to.mut_tag(rsipstack::transaction::make_tag());
        }
}
