//! Sources that fail digest auth repeatedly are ignored for a while (sans-IO).
//!
//! Counted per source IP and only for wrong credentials (a first request
//! without credentials or a stale nonce is normal). A source that has just
//! authenticated correctly is not banned by failures of others behind the
//! same address until the window passes, so a brute-forcer next to a real
//! device cannot lock it out by guessing.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct BanPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub ban_for: Duration,
}

#[derive(Debug, Default)]
struct SourceState {
    failures: u32,
    window_start: Option<Instant>,
    banned_until: Option<Instant>,
    trusted_until: Option<Instant>,
}

#[derive(Debug)]
pub struct BanList {
    policy: BanPolicy,
    sources: HashMap<IpAddr, SourceState>,
}

impl BanList {
    pub fn new(policy: BanPolicy) -> Self {
        BanList { policy, sources: HashMap::new() }
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources.get(&ip).and_then(|s| s.banned_until).is_some_and(|until| now < until)
    }

    /// Record wrong credentials. Returns true when this failure starts a ban.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        let p = self.policy;
        let s = self.sources.entry(ip).or_default();
        if s.banned_until.is_some_and(|u| now < u) {
            return false;
        }
        if s.window_start.is_none_or(|w| now.duration_since(w) > p.window) {
            s.window_start = Some(now);
            s.failures = 0;
        }
        s.failures += 1;
        let trusted = s.trusted_until.is_some_and(|t| now < t);
        if s.failures >= p.max_failures && !trusted {
            s.banned_until = Some(now + p.ban_for);
            s.failures = 0;
            s.window_start = None;
            return true;
        }
        false
    }

    pub fn record_success(&mut self, ip: IpAddr, now: Instant) {
        let window = self.policy.window;
        let s = self.sources.entry(ip).or_default();
        s.failures = 0;
        s.window_start = None;
        s.trusted_until = Some(now + window);
    }

    /// Forget sources with nothing left to remember; call now and then.
    pub fn sweep(&mut self, now: Instant) {
        self.sources.retain(|_, s| {
            s.banned_until.is_some_and(|u| now < u)
                || s.trusted_until.is_some_and(|t| now < t)
                || s.window_start.is_some()
        });
    }

    pub fn banned_count(&self, now: Instant) -> usize {
        self.sources.values().filter(|s| s.banned_until.is_some_and(|u| now < u)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> BanList {
        BanList::new(BanPolicy { max_failures: 3, window: Duration::from_secs(60), ban_for: Duration::from_secs(300) })
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bans_after_max_failures_and_expires() {
        let mut b = list();
        let t0 = Instant::now();
        assert!(!b.record_failure(ip("10.0.0.9"), t0));
        assert!(!b.record_failure(ip("10.0.0.9"), t0));
        assert!(b.record_failure(ip("10.0.0.9"), t0));
        assert!(b.is_banned(ip("10.0.0.9"), t0 + Duration::from_secs(299)));
        assert!(!b.is_banned(ip("10.0.0.8"), t0));
        assert!(!b.is_banned(ip("10.0.0.9"), t0 + Duration::from_secs(301)));
    }

    #[test]
    fn failures_outside_window_do_not_add_up() {
        let mut b = list();
        let t0 = Instant::now();
        b.record_failure(ip("10.0.0.9"), t0);
        b.record_failure(ip("10.0.0.9"), t0);
        assert!(!b.record_failure(ip("10.0.0.9"), t0 + Duration::from_secs(61)));
        assert!(!b.is_banned(ip("10.0.0.9"), t0 + Duration::from_secs(61)));
    }

    #[test]
    fn recent_success_protects_a_shared_address() {
        let mut b = list();
        let t0 = Instant::now();
        b.record_success(ip("10.0.0.1"), t0);
        for _ in 0..10 {
            b.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(1));
        }
        assert!(!b.is_banned(ip("10.0.0.1"), t0 + Duration::from_secs(2)));
        b.sweep(t0 + Duration::from_secs(1000));
        assert_eq!(b.banned_count(t0 + Duration::from_secs(1000)), 0);
    }
}
