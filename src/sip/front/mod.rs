//! The stateless SIP front: requests that need no transaction state are
//! answered here, in the endpoint's receive loop, before rsipstack would
//! create a transaction (a task, channels and a 32 s record per request).
//! REGISTER (challenge and registration), OPTIONS keep-alives and refusals
//! of requests outside any dialog go this way; INVITE, CANCEL, ACK and
//! in-dialog requests go on to rsipstack. What goes where is decided in
//! [`decide`]; retransmissions over UDP are answered from [`cache`] (keyed
//! as RFC 3261 17.2.3 keys server transactions), except a REGISTER's 401,
//! which is made again alike (same nonce and To tag, `auth::nonces`).
//! Reliable transports do not retransmit, so nothing is cached for them.
//!
//! Requests pass here one at a time, in arrival order, so the REGISTERs of
//! one binding are processed in order (RFC 3261 10.3).
pub mod cache;
pub mod decide;

use crate::sip::auth::request::ensure_to_tag;
use crate::sip::core::{connection_transport, SipCoreRef};
use crate::sip::registrar::handler::register_response;
use crate::sip::router::ALLOW;
use cache::ResponseCache;
use crate::sip::tx_key::TxKey;
use decide::{decide, Action};
use rsipstack::sip::{Header, Request, Response, SipMessage, StatusCode};
use rsipstack::transport::{SipAddr, SipConnection};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Responses kept for retransmissions: 64*T1 (RFC 3261 Timer J).
const KEEP_FOR: Duration = Duration::from_secs(32);
/// At most this many bytes of them (about 24,000 responses: over two seconds
/// of 10,000 REGISTERs/s, whose challenges are not kept (made alike again),
/// so a request retransmitted after T1 (500 ms) still finds its response;
/// 4 MiB held 0.3 s there with the challenges kept, and a retransmitted
/// REGISTER whose 200 was lost got `401 stale` instead).
const CACHE_BYTES: usize = 16 << 20;

pub struct Front {
    /// Set once the SIP core exists (it is built after the endpoint).
    core: OnceLock<SipCoreRef>,
    cache: Mutex<ResponseCache>,
}

impl Default for Front {
    fn default() -> Self {
        Front { core: OnceLock::new(), cache: Mutex::new(ResponseCache::new(CACHE_BYTES, KEEP_FOR)) }
    }
}

impl Front {
    pub fn attach(&self, core: SipCoreRef) {
        let _ = self.core.set(core);
    }

    /// Answers `req` here when no transaction is needed; false: hand it on.
    pub async fn answer(&self, req: &Request, conn: &SipConnection, from: &SipAddr) -> bool {
        let Some(core) = self.core.get() else { return false };
        let action = decide(req);
        if action == Action::Transaction {
            return false;
        }
        let Ok(source) = from.get_socketaddr() else { return false };
        if conn.is_reliable() {
            let resp = respond(core, req, &action, source, conn);
            // a stream peer that does not read must not hold up this loop
            let conn = conn.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.send(SipMessage::Response(resp), None).await {
                    tracing::debug!(error = %e, "stateless response not sent");
                }
            });
            return true;
        }
        let SipConnection::Udp(udp) = conn else { return false };
        let key = TxKey::of(req);
        let now = Instant::now();
        let cached = key.as_ref().and_then(|k| {
            let cache = self.cache.lock().ok()?;
            cache.get(k, now).map(|(bytes, to)| (bytes.to_vec(), to))
        });
        if let Some((bytes, to)) = cached {
            tracing::trace!(%source, "retransmission answered from the response cache");
            let _ = udp.send_raw(&bytes, &SipAddr::from(to)).await;
            return true;
        }
        let resp = respond(core, req, &action, source, conn);
        // A REGISTER's challenge is made the same again for a retransmission
        // (the same nonce and To tag, `auth::nonces`): keeping its bytes here
        // would only push out the 200s, which cannot be made again.
        let again_alike = action == Action::Register && resp.status_code == StatusCode::Unauthorized;
        let resp = SipMessage::Response(resp);
        // where rsipstack's transactions send it: the top Via (received, rport)
        let Ok(to) = SipConnection::get_destination(&resp) else {
            tracing::debug!(%source, "no destination for a stateless response");
            return true;
        };
        let bytes = resp.to_bytes();
        if let Err(e) = udp.send_raw(&bytes, &SipAddr::from(to)).await {
            tracing::debug!(error = %e, "stateless response not sent");
        }
        if let Some(key) = key
            && !again_alike
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.insert(key, bytes, to, now);
        }
        true
    }

    /// Forget responses past their time (called now and then).
    pub fn sweep(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.expire(Instant::now());
        }
    }
}

fn respond(core: &SipCoreRef, req: &Request, action: &Action, source: std::net::SocketAddr, conn: &SipConnection) -> Response {
    match action {
        Action::Register => register_response(core, req, source, Some(connection_transport(conn))),
        Action::Options => plain(core, req, StatusCode::OK, vec![Header::Allow(ALLOW.into()), Header::Accept("application/sdp".into())]),
        Action::Refuse(status) => {
            let allow = *status == StatusCode::MethodNotAllowed;
            plain(core, req, status.clone(), if allow { vec![Header::Allow(ALLOW.into())] } else { Vec::new() })
        }
        Action::Transaction => plain(core, req, StatusCode::ServerInternalError, Vec::new()),
    }
}

/// What the router's transactions answer: the request's headers, a To tag, `extra`.
fn plain(core: &SipCoreRef, req: &Request, status: StatusCode, extra: Vec<Header>) -> Response {
    let mut resp = core.endpoint.make_response(req, status, None);
    ensure_to_tag(&mut resp);
    resp.headers.extend(extra);
    resp
}
