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
use rsipstack::sip::{Header, Method, Request, SipMessage, StatusCode, Transport, Version};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::{SipConnection, TransportEvent};
use std::collections::HashSet;
use std::net::IpAddr;
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

/// What to do with a message that is not banned (sans-IO, [`check`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Pass,
    Drop(&'static str),
    Reply(StatusCode),
}

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
                    let tag = format!("{:08x}", rand::random::<u32>());
                    let resp = stateless::reply_to(req, status, &tag);
                    if let Err(e) = conn.send(SipMessage::Response(resp), Some(from)).await {
                        tracing::debug!(error = %e, "stateless reply not sent");
                    }
                    return None;
                }
            }
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> SipMessage {
        SipMessage::try_from(text.as_bytes()).unwrap()
    }
    fn request(start: &str, body: &str) -> SipMessage {
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
