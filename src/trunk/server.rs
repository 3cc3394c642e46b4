//! Which address of the provider a trunk talks to, as a phone resolves its
//! server (RFC 3263), sans-IO: what to look up (`plan`), the order of SRV
//! targets (`srv_order`, RFC 2782 priority and weight) and, in `Servers`,
//! the current target, the next one when it fails, and when the answers are
//! too old (their TTL) and must be looked up again. The DNS questions
//! themselves are asked by `crate::sip::trunk::dns`.
use crate::config::Transport;
use crate::config::trunks::split_server_port;
use std::net::{IpAddr, SocketAddr};

/// At most this many SRV targets are looked up, and this many addresses kept
/// in all (a hostile or broken zone cannot grow the table).
pub const MAX_SRV_TARGETS: usize = 8;
pub const MAX_CANDIDATES: usize = 16;
/// DNS answers are kept at most this long, whatever their TTL says (a
/// provider moving its servers is followed within the hour).
pub const MAX_TTL_SECS: u64 = 3600;
/// DNS failed while older answers are at hand: they are used this much
/// longer before DNS is asked again.
pub const STALE_RETRY_SECS: u64 = 30;

/// What is looked up for a trunk's `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// An IP address (with or without port): no DNS.
    Literal(SocketAddr),
    /// `host:port`: A/AAAA of the host, that port (no SRV: RFC 3263 4.2).
    Address { host: String, port: u16 },
    /// A bare host name: SRV `srv_name`; without SRV records, A/AAAA of
    /// `host` at `default_port`.
    Srv {
        srv_name: String,
        host: String,
        default_port: u16,
    },
}

/// How `server` is resolved for `transport` (`_sip._udp`, `_sip._tcp`,
/// `_sips._tcp`; 5060, or 5061 for tls).
pub fn plan(server: &str, transport: Transport) -> Result<Plan, String> {
    let (host, port) = split_server_port(server)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let default_port = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Plan::Literal(SocketAddr::new(
            ip,
            port.unwrap_or(default_port),
        )));
    }
    if let Some(port) = port {
        return Ok(Plan::Address { host, port });
    }
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    Ok(Plan::Srv {
        srv_name: format!("{prefix}.{}", host.trim_end_matches('.')),
        host,
        default_port,
    })
}

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; `.` (the service is not offered) is dropped.
    pub target: String,
}

/// RFC 2782's order: lowest priority first; within a priority, targets are
/// drawn by weight (a zero weight has a small chance, after the others'
/// draw: it is put first in the list, as the RFC says). `pick(n)` returns a
/// random number in `0..=n`. At most `MAX_SRV_TARGETS` come back.
pub fn srv_order(mut records: Vec<SrvRecord>, mut pick: impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    records.retain(|r| !r.target.is_empty() && r.target != "." && r.port != 0);
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len().min(MAX_SRV_TARGETS));
    while !records.is_empty() && out.len() < MAX_SRV_TARGETS {
        let prio = records[0].priority;
        let same = records.iter().take_while(|r| r.priority == prio).count();
        let total: u32 = records[..same].iter().map(|r| u32::from(r.weight)).sum();
        let draw = pick(total).min(total);
        let mut running = 0u32;
        let chosen = records[..same]
            .iter()
            .position(|r| {
                running += u32::from(r.weight);
                running >= draw
            })
            .unwrap_or(0);
        out.push(records.remove(chosen));
    }
    out
}

/// One address to try, and how it was found (for the log and `/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub addr: SocketAddr,
    pub why: String,
}

/// A failed target: whether another is left to try now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try this one now.
    Try(Candidate),
    /// Every target failed: the caller gives up for now (its back-off);
    /// the next attempt looks the name up again.
    Exhausted,
}

/// One trunk's targets, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    candidates: Vec<Candidate>,
    current: usize,
    /// The answers expire then (ms on the caller's clock).
    valid_until: u64,
    /// All failed, or a failure asked for fresh answers.
    stale: bool,
}

impl Servers {
    /// Whether DNS must be asked before `current` (never asked, the TTL ran
    /// out, or every target failed).
    pub fn needs_lookup(&self, now_ms: u64) -> bool {
        self.candidates.is_empty() || self.stale || now_ms >= self.valid_until
    }

    /// Fresh answers: the candidates in order, valid `ttl_secs` (bounded by
    /// `MAX_TTL_SECS`). The first is current again, unless the one in use
    /// is still among them (a re-resolution does not undo a failover).
    pub fn on_lookup(&mut self, now_ms: u64, mut candidates: Vec<Candidate>, ttl_secs: u64) {
        candidates.truncate(MAX_CANDIDATES);
        let keep = (!self.stale)
            .then(|| self.current().map(|c| c.addr))
            .flatten();
        self.current = keep
            .and_then(|a| candidates.iter().position(|c| c.addr == a))
            .unwrap_or(0);
        self.candidates = candidates;
        self.valid_until = now_ms.saturating_add(ttl_secs.min(MAX_TTL_SECS) * 1000);
        self.stale = false;
    }

    /// DNS did not answer: the target in use goes on being used for
    /// `STALE_RETRY_SECS` (a resolver's hiccup does not take a working trunk
    /// down), unless every target had failed or there is none.
    pub fn on_lookup_failed(&mut self, now_ms: u64) -> Option<Candidate> {
        if self.stale {
            return None;
        }
        let c = self.current().cloned()?;
        self.valid_until = now_ms.saturating_add(STALE_RETRY_SECS * 1000);
        Some(c)
    }

    /// The target to use now (`None` before any answer, or with none).
    pub fn current(&self) -> Option<&Candidate> {
        self.candidates.get(self.current)
    }

    /// `addr` did not answer (no response, a transport error, a 503): move
    /// to the next target. A failure of another than the current one (an
    /// older attempt) changes nothing.
    pub fn on_failure(&mut self, addr: SocketAddr) -> Next {
        if self.current().is_none_or(|c| c.addr != addr) {
            return self.current().cloned().map_or(Next::Exhausted, Next::Try);
        }
        if self.current + 1 < self.candidates.len() {
            self.current += 1;
            return Next::Try(self.candidates[self.current].clone());
        }
        self.current = 0;
        self.stale = true;
        Next::Exhausted
    }

    /// Every address the name resolved to: a request from one of them is
    /// the trunk's (the provider may send from any of its servers).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.candidates.iter().map(|c| c.addr).collect()
    }
}

/// Whether a REGISTER's outcome means "this server failed, try the next"
/// (RFC 3263 4.3: no answer, a transport error, or 503).
pub fn fails_over(outcome: &super::Outcome) -> bool {
    matches!(
        outcome,
        super::Outcome::Failed(_) | super::Outcome::Refused { code: 503, .. }
    )
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
