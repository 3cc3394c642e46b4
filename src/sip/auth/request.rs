//! Digest authentication of a request against the extension directory.
use super::ban::BanStart;
use super::digest::{self, Algorithm, Attempt, Verdict};
use crate::sip::core::{now_unix, SipCore};
use crate::sip::tx_key::TxKey;
use rsipstack::sip::{Header, HeadersExt, Request, Response, StatusCode};
use super::flows::FlowVerdict;
use crate::sip::diagnostics::Reason;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A monotonic instant as unix seconds (for showing when a ban ends).
pub fn unix_of(at: Instant) -> i64 {
    let now = Instant::now();
    let ms = match at.checked_duration_since(now) {
        Some(ahead) => crate::sip::core::now_unix_ms() + ahead.as_millis() as i64,
        None => crate::sip::core::now_unix_ms() - now.saturating_duration_since(at).as_millis() as i64,
    };
    (ms + 500).div_euclid(1000)
}

pub enum AuthOutcome {
    /// The authenticated extension.
    Ok(String),
    /// Send this response (challenge or refusal).
    Reply(Response),
}

/// `proxy` selects 407/Proxy-Authenticate (INVITE) over 401/WWW-Authenticate (REGISTER).
/// A WebSocket flow bound to a panel session (`flows`) is its extension
/// without a digest, and may claim no other.
pub fn authenticate(core: &SipCore, req: &Request, remote: SocketAddr, transport: Option<rsipstack::sip::Transport>, proxy: bool) -> AuthOutcome {
    let claimed = if req.method == rsipstack::sip::Method::Register { req.to_header().ok().and_then(|t| t.uri().ok()) } else { req.from_header().ok().and_then(|f| f.uri().ok()) };
    let claimed = claimed.and_then(|u| u.user().map(str::to_string));
    let verdict = core.flows.lock().map(|f| f.verdict(transport, remote, claimed.as_deref())).unwrap_or(FlowVerdict::Digest);
    match verdict {
        FlowVerdict::Digest => digest_authenticate(core, req, remote, transport, proxy),
        FlowVerdict::Extension(ext) => AuthOutcome::Ok(ext),
        FlowVerdict::Refuse { bound, claimed } => {
            tracing::info!(%remote, %bound, claimed = ?claimed, method = %req.method, "request on a panel session's websocket claims another extension: 403");
            let mut r = core.endpoint.make_response(req, StatusCode::Forbidden, None);
            ensure_to_tag(&mut r);
            AuthOutcome::Reply(r)
        }
    }
}

fn digest_authenticate(core: &SipCore, req: &Request, remote: SocketAddr, transport: Option<rsipstack::sip::Transport>, proxy: bool) -> AuthOutcome {
    let source = remote.ip();
    let note = |user: &str, status: StatusCode, reason: Reason| core.note_exchange(req, remote, transport, Some(user), status, reason);
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
        return AuthOutcome::Reply(challenge(core, req, source, proxy, false));
    };
    let refuse = || AuthOutcome::Reply(core.endpoint.make_response(req, StatusCode::Forbidden, None));
    // This name from this address guessed too often: refused unheard, so
    // guessing on gives nothing away (unknown names are banned alike).
    let pair_ban = core.bans.lock().ok().and_then(|b| b.pair_banned_until(source, &creds.username, Instant::now()));
    if let Some(until) = pair_ban {
        tracing::debug!(%source, user = %creds.username, "banned user name from this source refused");
        note(&creds.username, StatusCode::Forbidden, Reason::ExtensionBanned { until_unix: unix_of(until) });
        return refuse();
    }
    let (method, request_uri) = (req.method.to_string(), req.uri.to_string());
    let attempt = Attempt { method: &method, request_uri: &request_uri, source, now_secs: now_unix() as u64 };
    let row = core.extension(&creds.username);
    let known = row.is_some();
    let ha1 = row.and_then(|e| e.ha1(realm));
    let verdict = match core.nonces.lock() {
        Ok(mut nonces) => digest::verify(&creds, attempt, realm, ha1.as_ref(), &mut nonces),
        Err(_) => return AuthOutcome::Reply(core.endpoint.make_response(req, StatusCode::ServerInternalError, None)),
    };
    match verdict {
        Verdict::Ok => {
            if let Ok(mut bans) = core.bans.lock() {
                bans.record_success(source, Instant::now());
            }
            AuthOutcome::Ok(creds.username)
        }
        Verdict::Stale => AuthOutcome::Reply(challenge(core, req, source, proxy, true)),
        Verdict::UnknownNonce => {
            tracing::debug!(%source, user = %creds.username, "credentials on a nonce not issued to this source: challenged");
            AuthOutcome::Reply(challenge(core, req, source, proxy, false))
        }
        Verdict::UriMismatch => {
            tracing::info!(%source, user = %creds.username, digest_uri = %creds.uri, %request_uri, "digest uri is not the Request-URI");
            note(&creds.username, StatusCode::BadRequest, Reason::DigestUriMismatch);
            AuthOutcome::Reply(core.endpoint.make_response(req, StatusCode::BadRequest, None))
        }
        Verdict::Failed => {
            let start = core.bans.lock().map(|mut b| b.record_failure(source, &creds.username, Instant::now())).unwrap_or(BanStart::None);
            let secs = core.config.security.ban_secs;
            // as the ban list shows it (`/api/admin/bans`)
            let until_of = |until: Option<Instant>| until.map_or(now_unix() + secs as i64, unix_of);
            // the same 403 either way: only the panel tells the two apart
            let reason = match start {
                BanStart::Source => {
                    tracing::warn!(%source, user = %creds.username, "too many failed authentications: source ignored for {secs} s");
                    Reason::AddressBanned { until_unix: until_of(core.bans.lock().ok().and_then(|b| b.banned_until(source, Instant::now()))) }
                }
                BanStart::Pair => {
                    tracing::warn!(%source, user = %creds.username, "too many failed authentications for this user: refused from this source for {secs} s");
                    Reason::ExtensionBanned { until_unix: until_of(core.bans.lock().ok().and_then(|b| b.pair_banned_until(source, &creds.username, Instant::now()))) }
                }
                BanStart::None => {
                    tracing::info!(%source, user = %creds.username, method = %req.method, "authentication failed");
                    if known { Reason::WrongPassword } else { Reason::UnknownExtension }
                }
            };
            note(&creds.username, StatusCode::Forbidden, reason);
            refuse()
        }
    }
}

/// 401/407 with one challenge per configured algorithm (MD5 only by default),
/// on a nonce issued to `source`. A retransmission of a request challenged
/// before (same transaction key and Call-ID, same source) gets the same
/// nonce and To tag, so the same response (`nonces.rs`): it needs no
/// response cache to be answered alike.
fn challenge(core: &SipCore, req: &Request, source: IpAddr, proxy: bool, stale: bool) -> Response {
    let realm = &core.config.sip.realm;
    let status = if proxy { StatusCode::ProxyAuthenticationRequired } else { StatusCode::Unauthorized };
    let now = now_unix() as u64;
    let call_id = req.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
    let issued = core.nonces.lock().map(|mut n| match TxKey::of(req) {
        Some(tx) => {
            let [branch, sent_by, method] = tx.parts();
            let key = n.challenge_key(source, &[branch, sent_by, method, call_id.as_bytes()]);
            (n.issue_for(source, now, &key), Some(key.to_tag))
        }
        None => (n.issue(source, now), None),
    });
    let Ok((nonce, to_tag)) = issued else {
        return core.endpoint.make_response(req, StatusCode::ServerInternalError, None);
    };
    let mut resp = core.endpoint.make_response(req, status, None);
    match to_tag {
        Some(tag) => ensure_to_tag_of(&mut resp, tag),
        None => ensure_to_tag(&mut resp),
    }
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

/// As [`ensure_to_tag`], with this tag.
fn ensure_to_tag_of(resp: &mut Response, tag: String) {
    if let Ok(to) = resp.to_header_mut()
        && to.tag().ok().flatten().is_none() {
            let _ = to.mut_tag(tag.into());
        }
}
