//! A trunk's server as a phone resolves it (RFC 3263): this asks DNS
//! (hickory-resolver, configured from the system's /etc/resolv.conf) and
//! keeps each trunk's `Servers`, which decide the order of the targets,
//! the failover and when answers are too old (`crate::trunk::server`).
//! The target in use, how it was found and every address the name resolved
//! to go into the trunk's state (`/health`, the inbound check).
use super::update;
use crate::config::TrunkConfig;
use crate::sip::core::SipCore;
use crate::trunk::server::{
    Candidate, MAX_SRV_TARGETS, MAX_TTL_SECS, Next, Plan, Servers, SrvRecord, plan, srv_order,
};
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One name's lookup may take this long in all (the resolver's own
/// timeouts and attempts come from resolv.conf).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses kept per host name (A and AAAA).
const MAX_ADDRS_PER_HOST: usize = 4;
/// Answers got without a TTL (the system's resolver): kept this long.
const SYSTEM_TTL_SECS: u64 = 30;

/// Every trunk's targets; one entry per configured trunk (the table holds
/// only names from the configuration).
#[derive(Default)]
pub struct TrunkDns {
    epoch: std::sync::OnceLock<Instant>,
    resolver: tokio::sync::OnceCell<Option<TokioResolver>>,
    servers: Mutex<HashMap<String, Servers>>,
}

impl std::fmt::Debug for TrunkDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkDns").finish_non_exhaustive()
    }
}

impl TrunkDns {
    fn now_ms(&self) -> u64 {
        self.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    /// The target to send to now: the current one, or, when its answers
    /// are older than their TTL or every target failed, the first after
    /// asking DNS again.
    pub async fn target(&self, core: &SipCore, t: &TrunkConfig) -> Result<Candidate, String> {
        let now = self.now_ms();
        if let Some(c) = self.with(&t.name, |s| {
            (!s.needs_lookup(now))
                .then(|| s.current().cloned())
                .flatten()
        }) {
            return Ok(c);
        }
        let looked_up = match tokio::time::timeout(LOOKUP_TIMEOUT, self.lookup(t)).await {
            Ok(r) => r,
            Err(_) => Err(format!("cannot resolve `{}`: DNS timed out", t.server)),
        };
        let (candidates, ttl) = match looked_up {
            Ok(found) => found,
            Err(e) => {
                return match self.with(&t.name, |s| s.on_lookup_failed(self.now_ms())) {
                    Some(old) => {
                        tracing::warn!(trunk = %t.name, error = %e, server = %old.addr, "trunk server lookup failed: the target in use is kept for now");
                        Ok(old)
                    }
                    None => Err(e),
                };
            }
        };
        let before = self.with(&t.name, |s| s.current().map(|c| c.addr));
        let (chosen, resolved) = self.with(&t.name, |s| {
            s.on_lookup(self.now_ms(), candidates, ttl);
            (s.current().cloned(), s.addresses())
        });
        let chosen = chosen.ok_or_else(|| format!("cannot resolve `{}`: no address", t.server))?;
        if before != Some(chosen.addr) {
            tracing::info!(trunk = %t.name, server = %chosen.addr, via = %chosen.why, targets = resolved.len(), ttl_secs = ttl, "trunk server chosen");
        }
        publish(core, t, Some(&chosen), resolved);
        Ok(chosen)
    }

    /// `addr` failed (`reason`: no answer, a transport error, a 503): the
    /// next target, or `Exhausted` when none is left (the next `target`
    /// asks DNS again).
    pub fn failed(&self, core: &SipCore, t: &TrunkConfig, addr: SocketAddr, reason: &str) -> Next {
        let (next, resolved) = self.with(&t.name, |s| (s.on_failure(addr), s.addresses()));
        match &next {
            Next::Try(c) if c.addr != addr => {
                tracing::warn!(trunk = %t.name, failed = %addr, %reason, server = %c.addr, via = %c.why, "trunk server failed: trying the next target");
                publish(core, t, Some(c), resolved);
            }
            Next::Try(_) => {}
            Next::Exhausted => {
                tracing::warn!(trunk = %t.name, failed = %addr, %reason, "trunk server failed, and no other target is left: its name is looked up again")
            }
        }
        next
    }

    fn with<R>(&self, name: &str, f: impl FnOnce(&mut Servers) -> R) -> R {
        let mut m = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(name.to_string()).or_default())
    }

    async fn resolver(&self) -> Option<&TokioResolver> {
        self.resolver
            .get_or_init(|| async {
                let built = TokioResolver::builder_tokio().and_then(|mut b| {
                    b.options_mut().cache_size = 64;
                    b.options_mut().positive_max_ttl = Some(Duration::from_secs(MAX_TTL_SECS));
                    b.build()
                });
                match built {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "no DNS resolver from /etc/resolv.conf: trunk servers are looked up by A/AAAA only, with the system's resolver (no SRV)");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// The candidates in order and how long they hold (seconds).
    async fn lookup(&self, t: &TrunkConfig) -> Result<(Vec<Candidate>, u64), String> {
        match plan(&t.server, t.transport)? {
            Plan::Literal(addr) => Ok((
                vec![Candidate {
                    addr,
                    why: "an IP address (no DNS)".into(),
                }],
                MAX_TTL_SECS,
            )),
            Plan::Address { host, port } => {
                let (ips, ttl) = self.addresses(&host).await?;
                Ok((at_port(ips, port, format!("A/AAAA {host} (port {port} given: no SRV)")), ttl))
            }
            Plan::Srv {
                srv_name,
                host,
                default_port,
            } => {
                match self.srv(&srv_name).await {
                    Ok(Some(found)) if !found.0.is_empty() => return Ok(found),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(trunk = %t.name, %srv_name, error = %e, "SRV lookup failed: trying A/AAAA")
                    }
                }
                let (ips, ttl) = self.addresses(&host).await?;
                Ok((at_port(ips, default_port, format!("A/AAAA {host} port {default_port} (no SRV {srv_name})")), ttl))
            }
        }
    }

    /// SRV records of `name`, ordered, each target's addresses looked up.
    /// `Ok(None)`: no SRV records (or no resolver to ask).
    async fn srv(&self, name: &str) -> Result<Option<(Vec<Candidate>, u64)>, String> {
        let Some(resolver) = self.resolver().await else {
            return Ok(None);
        };
        let lookup = match resolver.srv_lookup(name).await {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(None),
            Err(e) => return Err(format!("{e}")),
        };
        let mut ttl = ttl_of(lookup.valid_until());
        let records: Vec<SrvRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii().trim_end_matches('.').to_string(),
                }),
                _ => None,
            })
            .take(4 * MAX_SRV_TARGETS)
            .collect();
        let mut out = Vec::new();
        for r in srv_order(records, |n| rand::random_range(0..=n)) {
            match self.addresses(&r.target).await {
                Ok((ips, t)) => {
                    ttl = ttl.min(t);
                    let why = format!(
                        "SRV {name} priority {} weight {}: {}:{}",
                        r.priority, r.weight, r.target, r.port
                    );
                    out.extend(ips.into_iter().map(|ip| Candidate {
                        addr: SocketAddr::new(ip, r.port),
                        why: why.clone(),
                    }));
                }
                Err(e) => {
                    tracing::debug!(%name, target = %r.target, error = %e, "SRV target has no address: skipped")
                }
            }
        }
        Ok(Some((out, ttl)))
    }

    /// A/AAAA of `host` (IPv4 first), and how long they hold.
    async fn addresses(&self, host: &str) -> Result<(Vec<IpAddr>, u64), String> {
        let (mut ips, ttl): (Vec<IpAddr>, u64) = match self.resolver().await {
            Some(r) => {
                let l = r
                    .lookup_ip(host)
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?;
                (l.iter().collect(), ttl_of(l.valid_until()))
            }
            None => {
                let found = tokio::net::lookup_host((host, 0))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?;
                (found.map(|a| a.ip()).collect(), SYSTEM_TTL_SECS)
            }
        };
        ips.sort_by_key(|ip| ip.is_ipv6());
        ips.dedup();
        ips.truncate(MAX_ADDRS_PER_HOST);
        if ips.is_empty() {
            return Err(format!("cannot resolve {host}: no address"));
        }
        Ok((ips, ttl))
    }
}

/// Each address at `port`, chosen for the same reason.
fn at_port(ips: Vec<IpAddr>, port: u16, why: String) -> Vec<Candidate> {
    ips.into_iter().map(|ip| Candidate { addr: SocketAddr::new(ip, port), why: why.clone() }).collect()
}

fn ttl_of(valid_until: Instant) -> u64 {
    valid_until
        .saturating_duration_since(Instant::now())
        .as_secs()
}

/// Into the trunk's state: the target in use, how, and every address.
fn publish(core: &SipCore, t: &TrunkConfig, chosen: Option<&Candidate>, resolved: Vec<SocketAddr>) {
    update(core, &t.name, |s| {
        s.server = chosen.map(|c| c.addr);
        s.server_via = chosen.map(|c| c.why.clone());
        s.resolved = resolved;
    });
}
