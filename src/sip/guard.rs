//! First look at every message, before a transaction exists: drop what comes
//! from banned sources, from a source over the flood limit (`auth/flood.rs`;
//! UDP datagrams are counted earlier, unparsed, in `udp_socket.rs`) and
//! requests whose User-Agent is on `security.blocked_user_agents`; answer a request larger than
//! `security.max_message_bytes` (or with more than 200 headers) with 513 and
//! one that is not SIP/2.0 with 505, and drop such responses. Every transport
//! passes here (UDP datagrams over the limit are already refused whole below
//! rsipstack, see `udp_socket.rs`; TCP, TLS and WebSocket messages here).
//!
//! It also sees SIP-over-TCP/TLS connections open and close ([`StreamWatch`]):
//! one over `security.max_sip_connections` (or `_per_ip`) is closed at once,
//! and [`StreamWatch::sweep_idle`] closes those that carried no message for
//! `security.idle_connection_secs` and that no registration uses.
use super::auth::ban::BanList;
use super::auth::flood::{FloodLimiter, FloodVerdict};
use super::conn_limit::{ConnLimits, StreamKey, StreamTable};
use super::stateless;
use super::wellformed::{check, Check};
use rsipstack::sip::{Header, SipMessage, StatusCode, Transport};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::stream::RawVerdict;
use rsipstack::transport::{SipConnection, TransportEvent};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct Guard {
    pub bans: Arc<Mutex<BanList>>,
    pub flood: Arc<Mutex<FloodLimiter>>,
    /// Lower-case substrings of User-Agent values whose requests are dropped.
    pub blocked_user_agents: Vec<String>,
    pub max_message_bytes: usize,
    pub streams: Arc<StreamWatch>,
    /// Answers what needs no transaction (REGISTER, OPTIONS, refusals).
    pub front: Arc<super::front::Front>,
}

/// The SIP stream connections that clients opened to our TCP/TLS listeners.
pub struct StreamWatch {
    table: Mutex<StreamTable<CancellationToken>>,
    /// Ports of our TCP and TLS listeners: a connection whose local port is
    /// one of them was accepted (ours to outbound peers are not counted).
    listen_ports: HashSet<u16>,
    refused: AtomicU64,
    last_refusal_log: Mutex<Option<Instant>>,
}

impl StreamWatch {
    pub fn new(limits: ConnLimits, listen_ports: HashSet<u16>) -> Self {
        StreamWatch { table: Mutex::new(StreamTable::new(limits)), listen_ports, refused: AtomicU64::new(0), last_refusal_log: Mutex::new(None) }
    }

    fn key(&self, conn: &SipConnection) -> Option<StreamKey> {
        let transport = match conn {
            SipConnection::Tcp(_) => Transport::Tcp,
            SipConnection::Tls(_) => Transport::Tls,
            _ => return None,
        };
        let local = conn.get_addr().get_socketaddr().ok()?;
        if !self.listen_ports.contains(&local.port()) {
            return None;
        }
        let remote = conn.get_remote_addr()?.get_socketaddr().ok()?;
        Some((transport, remote))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, StreamTable<CancellationToken>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns false when the connection was refused (and is being closed).
    fn on_event(&self, event: &TransportEvent) -> bool {
        let now = Instant::now();
        match event {
            TransportEvent::New(conn) => {
                let (Some(key), Some(token)) = (self.key(conn), conn.cancel_token()) else { return true };
                if let Err(why) = self.table().admit(key, token.clone(), now) {
                    token.cancel();
                    self.log_refusal(key, why.describe("security.max_sip_connections", "security.max_sip_connections_per_ip"));
                    return false;
                }
                true
            }
            TransportEvent::Incoming(_, conn, _) => {
                if let Some(key) = self.key(conn) {
                    self.table().touch(&key, now);
                }
                true
            }
            TransportEvent::Closed(conn) => {
                if let Some(key) = self.key(conn) {
                    self.table().closed(&key);
                }
                true
            }
        }
    }

    /// One line per refusal, but at most one every 10 s under a flood (with the count).
    fn log_refusal(&self, key: StreamKey, why: String) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_refusal_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            return;
        }
        *last = Some(now);
        tracing::warn!(transport = %key.0, remote = %key.1, refused_so_far = n, "SIP connection refused and closed: {why}");
    }

    /// Closes the connections idle for `idle` that no registration uses
    /// (`bound`: transport and source of every binding).
    pub fn sweep_idle(&self, idle: Duration, bound: &HashSet<(Transport, String)>) {
        let picked = self.table().idle(Instant::now(), idle, |(t, a)| bound.contains(&(*t, a.to_string())));
        for ((transport, remote), token) in picked {
            tracing::info!(%transport, %remote, idle_secs = idle.as_secs(), "idle SIP connection without a registration closed");
            token.cancel();
        }
    }
}

/// Count a request (`is_request`) or check a response's source against the
/// flood limit; false: drop the message. The start of a ban is logged once.
pub fn flood_admits(flood: &Mutex<FloodLimiter>, ip: IpAddr, is_request: bool, transport: &str) -> bool {
    let Ok(mut f) = flood.lock() else { return true };
    let now = Instant::now();
    if !is_request {
        return !f.is_banned(ip, now);
    }
    match f.request(ip, now) {
        FloodVerdict::Pass => true,
        FloodVerdict::Drop => false,
        FloodVerdict::BanStarted { per_sec } => {
            tracing::warn!(source = %ip, transport, requests_last_second = per_sec, "SIP flood: source over the request rate limit, ignored for a while");
            false
        }
    }
}

/// The raw checks a UDP datagram gets before it is parsed
/// (`stateless::datagram_refusal`: a Request-Line that is not `Method SP
/// Request-URI SP SIP/2.0` exactly, a request rsipstack cannot parse), for
/// a message framed on a TCP/TLS connection (rsipstack's stream codec, ha-pbx
/// patch) or carried in a WebSocket frame ([`super::websocket`]), so every
/// transport gives a malformed request the same answer. A refused request
/// from a banned source, or over the flood limit, is dropped unanswered
/// (what passes is counted later, parsed, by [`Guard`]).
pub fn raw_verdict(data: &[u8], from: SocketAddr, bans: &Mutex<BanList>, flood: &Mutex<FloodLimiter>, transport: &str) -> RawVerdict {
    // the size limit is the parsed message's (`check`), as for TCP before
    let Some((status, reason)) = stateless::datagram_refusal(data, usize::MAX) else { return RawVerdict::Pass };
    if bans.lock().map(|b| b.is_banned(from.ip(), Instant::now())).unwrap_or(false) || !flood_admits(flood, from.ip(), true, transport) {
        return RawVerdict::Drop;
    }
    match stateless::reply_to_raw(data, status, reason, &new_tag()) {
        Some(reply) => {
            tracing::info!(%from, transport, "SIP message refused before parsing: {status} {reason}");
            RawVerdict::Reply(reply)
        }
        None => {
            tracing::info!(%from, transport, "SIP message dropped before parsing ({reason})");
            RawVerdict::Drop
        }
    }
}

/// Whether the request's User-Agent contains one of `blocked` (lower case).
fn blocked_user_agent(msg: &SipMessage, blocked: &[String]) -> Option<String> {
    let SipMessage::Request(req) = msg else { return None };
    req.headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("User-Agent"))
        .map(|h| h.value().to_string())
        .find(|ua| {
            let lower = ua.to_ascii_lowercase();
            blocked.iter().any(|b| !b.is_empty() && lower.contains(b.as_str()))
        })
}

#[async_trait::async_trait]
impl TransportEventInspector for Guard {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if !self.streams.on_event(&event) {
            return None;
        }
        if let TransportEvent::Incoming(msg, conn, from) = &event {
            if let Ok(addr) = from.get_socketaddr()
                && self.bans.lock().map(|b| b.is_banned(addr.ip(), Instant::now())).unwrap_or(false)
            {
                tracing::trace!(%addr, "message from banned source dropped");
                return None;
            }
            // UDP datagrams were counted unparsed, in udp_socket.rs.
            if conn.is_reliable()
                && let Ok(addr) = from.get_socketaddr()
                && !flood_admits(&self.flood, addr.ip(), matches!(msg, SipMessage::Request(_)), "stream")
            {
                return None;
            }
            if let Some(ua) = blocked_user_agent(msg, &self.blocked_user_agents) {
                tracing::debug!(%from, user_agent = %ua, "request from a blocked User-Agent dropped");
                return None;
            }
            // a datagram's size was checked whole, before parsing (udp_socket.rs)
            let limit = if conn.is_reliable() { self.max_message_bytes } else { usize::MAX };
            match check(msg, limit) {
                Check::Pass => {
                    if let SipMessage::Request(req) = msg
                        && self.front.answer(req, conn, from).await
                    {
                        return None;
                    }
                }
                Check::Drop(why) => {
                    tracing::info!(%from, "SIP message dropped: {why}");
                    return None;
                }
                Check::Reply(status) => {
                    let SipMessage::Request(req) = msg else { return None };
                    tracing::info!(%from, method = %req.method, %status, "SIP request refused before any transaction");
                    send_refusal(conn, from, stateless::reply_to(req, status, &new_tag())).await;
                    return None;
                }
                Check::BadExtension(tags) => {
                    let SipMessage::Request(req) = msg else { return None };
                    tracing::info!(%from, method = %req.method, unsupported = %tags, "SIP request requires option tags we lack: 420");
                    let mut resp = stateless::reply_to(req, StatusCode::BadExtension, &new_tag());
                    resp.headers.push(Header::Unsupported(tags.as_str().into()));
                    send_refusal(conn, from, resp).await;
                    return None;
                }
            }
        }
        Some(event)
    }
}

fn new_tag() -> String {
    format!("{:08x}", rand::random::<u32>())
}

async fn send_refusal(conn: &SipConnection, to: &rsipstack::transport::SipAddr, resp: rsipstack::sip::Response) {
    if let Err(e) = conn.send(SipMessage::Response(resp), Some(to)).await {
        tracing::debug!(error = %e, "stateless reply not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::super::wellformed::tests::{msg, request};
    use super::*;

    use crate::sip::auth::ban::BanPolicy;
    use crate::sip::auth::flood::FloodPolicy;

    fn limits() -> (Mutex<BanList>, Mutex<FloodLimiter>) {
        let bans = BanList::new(BanPolicy { max_failures: 2, window: Duration::from_secs(60), ban_for: Duration::from_secs(60) });
        let flood = FloodLimiter::new(FloodPolicy { rate: 100.0, burst: 100.0, ban_for: Duration::from_secs(60) }, Vec::new());
        (Mutex::new(bans), Mutex::new(flood))
    }

    fn status_of(v: &RawVerdict) -> Option<String> {
        match v {
            RawVerdict::Reply(b) => Some(String::from_utf8_lossy(b).split("\r\n").next()?.to_string()),
            _ => None,
        }
    }

    #[test]
    fn malformed_request_lines_are_answered_before_parsing() {
        let (bans, flood) = limits();
        let from: SocketAddr = "10.0.0.9:5060".parse().unwrap();
        let with_line = |line: &str| {
            format!(
                "{line}\r\nVia: SIP/2.0/TCP 10.0.0.9;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\n\
                 Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let verdict = |line: &str| raw_verdict(with_line(line).as_bytes(), from, &bans, &flood, "tcp");
        assert_eq!(verdict("OPTIONS sip:h SIP/2.0"), RawVerdict::Pass);
        // SIP/1.0 parses; its 505 comes from `check`, after parsing
        assert_eq!(verdict("OPTIONS sip:h SIP/1.0"), RawVerdict::Pass);
        for bad in ["OPTIONS sip:h SIP/2.0x", "OPTIONS sip:a b@h SIP/2.0", "OPTIONS  sip:h SIP/2.0", "OPTIONS <sip:h> SIP/2.0", "OPTIONS\tsip:h SIP/2.0"] {
            assert_eq!(status_of(&verdict(bad)).as_deref(), Some("SIP/2.0 400 Bad Request"), "{bad}");
        }
        assert_eq!(status_of(&verdict("OPT@ONS sip:h SIP/2.0")).as_deref(), Some("SIP/2.0 501 Not Implemented"));
        // a response that does not parse is the codec's to drop
        assert_eq!(verdict("SIP/2.0 2000 OK"), RawVerdict::Pass);
        // an ACK is never answered
        assert_eq!(verdict("ACK sip:a b@h SIP/2.0"), RawVerdict::Drop);
    }

    #[test]
    fn banned_sources_get_no_answer_before_parsing() {
        let (bans, flood) = limits();
        let from: SocketAddr = "10.0.0.9:5060".parse().unwrap();
        {
            let mut b = bans.lock().unwrap();
            let now = Instant::now();
            for user in ["101", "102", "103", "104"] {
                b.record_failure(from.ip(), user, now);
            }
            assert!(b.is_banned(from.ip(), now));
        }
        let bad = "OPTIONS sip:a b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(raw_verdict(bad.as_bytes(), from, &bans, &flood, "tcp"), RawVerdict::Drop);
    }

    #[test]
    fn scanners_are_known_by_their_user_agent() {
        let blocked = vec!["friendly-scanner".to_string(), "sipvicious".to_string()];
        let with_ua = |ua: &str| {
            msg(&format!(
                "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=a\r\nTo: <sip:b@h>\r\n\
                 Call-ID: c\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        assert!(blocked_user_agent(&with_ua("friendly-scanner"), &blocked).is_some());
        assert!(blocked_user_agent(&with_ua("SIPVicious 0.3.4"), &blocked).is_some());
        assert!(blocked_user_agent(&with_ua("Grandstream GXP1625"), &blocked).is_none());
        assert!(blocked_user_agent(&with_ua("friendly-scanner"), &[]).is_none());
        assert!(blocked_user_agent(&request("OPTIONS sip:h SIP/2.0", ""), &blocked).is_none());
    }
}
