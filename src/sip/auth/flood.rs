//! Per-source request rate limit against floods (sans-IO; the idea of
//! Kamailio's `pike` module, as a token bucket).
//!
//! Every request from a source takes one token from that source's bucket,
//! which holds at most `burst` tokens and refills at `rate` per second. A
//! request that finds the bucket empty bans the source for `ban_for`: every
//! message from it is then dropped unseen, before any parsing or transaction
//! work (UDP datagrams below rsipstack, stream messages in the guard), and the
//! caller logs the start of the ban once. Trusted sources (`trusted_sources`,
//! loopback by default) and a `rate` of 0 are never limited.
//!
//! Memory is bounded: at most `MAX_SOURCES` sources are tracked; idle ones
//! (bucket full again, no ban) are forgotten by `sweep`, and a source that
//! finds the table full of busy ones is let through untracked.
use std::collections::HashMap;
use std::net::IpAddr;
use crate::config::Cidr;
use std::time::{Duration, Instant};

/// Sources tracked at most.
pub const MAX_SOURCES: usize = 8_192;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodPolicy {
    /// Sustained requests per second allowed per source; 0 turns the limit off.
    pub rate: f64,
    /// Requests a source may send at once above the sustained rate.
    pub burst: f64,
    pub ban_for: Duration,
}

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub enum FloodVerdict {
    Pass,
    /// From a banned source: drop it without a word.
    Drop,
    /// This request emptied the bucket: the source is banned from now on
    /// (drop it, and log once). `per_sec` is what it sent in the last second.
    BanStarted { per_sec: u32 },
}

#[derive(Debug)]
struct Source {
    tokens: f64,
    last: Instant,
    banned_until: Option<Instant>,
    dropped: u64,
    second_start: Instant,
    this_second: u32,
    last_second: u32,
}

#[derive(Debug)]
pub struct FloodLimiter {
    policy: FloodPolicy,
    trusted: Vec<Cidr>,
    sources: HashMap<IpAddr, Source>,
}

impl FloodLimiter {
    pub fn new(policy: FloodPolicy, trusted: Vec<Cidr>) -> FloodLimiter {
        FloodLimiter { policy, trusted, sources: HashMap::new() }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// Whether `ip` is banned now (any message from it is dropped).
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources.get(&ip).and_then(|s| s.banned_until).is_some_and(|u| now < u)
    }

    /// Count one request from `ip` at `now`.
    pub fn request(&mut self, ip: IpAddr, now: Instant) -> FloodVerdict {
        let p = self.policy;
        if p.rate <= 0.0 || self.is_trusted(ip) {
            return FloodVerdict::Pass;
        }
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            self.sweep(now);
            if self.sources.len() >= MAX_SOURCES {
                return FloodVerdict::Pass;
            }
        }
        let s = self.sources.entry(ip).or_insert_with(|| Source {
            tokens: p.burst,
            last: now,
            banned_until: None,
            dropped: 0,
            second_start: now,
            this_second: 0,
            last_second: 0,
        });
        let since = now.saturating_duration_since(s.second_start);
        if since >= Duration::from_secs(2) {
            (s.second_start, s.last_second, s.this_second) = (now, 0, 0);
        } else if since >= Duration::from_secs(1) {
            (s.second_start, s.last_second, s.this_second) = (now, s.this_second, 0);
        }
        s.this_second = s.this_second.saturating_add(1);
        match s.banned_until {
            Some(until) if now < until => {
                s.dropped += 1;
                return FloodVerdict::Drop;
            }
            Some(_) => {
                // The ban is over: start again with a full bucket.
                (s.banned_until, s.tokens, s.last, s.dropped) = (None, p.burst, now, 0);
            }
            None => {}
        }
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * p.rate).min(p.burst);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            FloodVerdict::Pass
        } else {
            s.banned_until = Some(now + p.ban_for);
            s.dropped = 1;
            FloodVerdict::BanStarted { per_sec: s.this_second.max(s.last_second) }
        }
    }

    /// Forget idle sources; returns the bans that ended, with how many
    /// messages each dropped.
    pub fn sweep(&mut self, now: Instant) -> Vec<(IpAddr, u64)> {
        let p = self.policy;
        let mut ended = Vec::new();
        self.sources.retain(|ip, s| {
            if let Some(until) = s.banned_until {
                if now < until {
                    return true;
                }
                ended.push((*ip, s.dropped));
                return false;
            }
            let refilled = s.tokens + now.saturating_duration_since(s.last).as_secs_f64() * p.rate;
            refilled < p.burst
        });
        ended
    }

    /// Every source banned now, with when its ban ends.
    pub fn bans(&self, now: Instant) -> Vec<(IpAddr, Instant)> {
        let mut out: Vec<_> = self.sources.iter().filter_map(|(ip, s)| Some((*ip, s.banned_until.filter(|u| now < *u)?))).collect();
        out.sort();
        out
    }

    /// An administrator lifts the ban of `ip` (its bucket starts full);
    /// true when it was banned.
    pub fn unban(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.sources.remove(&ip).is_some_and(|s| s.banned_until.is_some_and(|u| now < u))
    }

    /// Sources tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FloodPolicy {
        FloodPolicy { rate: 10.0, burst: 20.0, ban_for: Duration::from_secs(60) }
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_and_a_flood_is_banned_once() {
        let mut f = FloodLimiter::new(policy(), vec![]);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for i in 0..20 {
            assert_eq!(f.request(a, t0 + Duration::from_millis(i)), FloodVerdict::Pass, "request {i}");
        }
        assert_eq!(f.request(a, t0 + Duration::from_millis(20)), FloodVerdict::BanStarted { per_sec: 21 });
        assert!(f.is_banned(a, t0 + Duration::from_millis(21)));
        for i in 0..100 {
            assert_eq!(f.request(a, t0 + Duration::from_millis(30 + i)), FloodVerdict::Drop);
        }
        // Another source is not affected.
        assert_eq!(f.request(ip("192.0.2.2"), t0 + Duration::from_millis(40)), FloodVerdict::Pass);
        // The ban ends after ban_for, with a full bucket.
        let later = t0 + Duration::from_secs(61);
        assert!(!f.is_banned(a, later));
        for _ in 0..20 {
            assert_eq!(f.request(a, later), FloodVerdict::Pass);
        }
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_banned() {
        let mut f = FloodLimiter::new(policy(), vec![]);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        // 10/s for ten minutes (one every 100 ms), after a burst of 20.
        for _ in 0..20 {
            assert_eq!(f.request(a, t0), FloodVerdict::Pass);
        }
        for i in 1..6000u64 {
            assert_eq!(f.request(a, t0 + Duration::from_millis(100 * i)), FloodVerdict::Pass, "request {i}");
        }
    }

    #[test]
    fn trusted_sources_and_a_zero_rate_are_never_limited() {
        let trusted = vec![Cidr::parse("127.0.0.0/8").unwrap(), Cidr::parse("::1").unwrap()];
        let mut f = FloodLimiter::new(policy(), trusted);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(f.request(ip("127.0.0.1"), t0), FloodVerdict::Pass);
            assert_eq!(f.request(ip("::1"), t0), FloodVerdict::Pass);
            assert_eq!(f.request(ip("::ffff:127.0.0.5"), t0), FloodVerdict::Pass);
        }
        assert_eq!(f.tracked(), 0);
        let mut off = FloodLimiter::new(FloodPolicy { rate: 0.0, ..policy() }, vec![]);
        for _ in 0..1000 {
            assert_eq!(off.request(ip("192.0.2.1"), t0), FloodVerdict::Pass);
        }
    }

    #[test]
    fn memory_stays_bounded_under_many_sources() {
        let mut f = FloodLimiter::new(policy(), vec![]);
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 * 3) {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            f.request(a, t0);
        }
        assert!(f.tracked() <= MAX_SOURCES);
        // Once their buckets refill, idle sources are forgotten.
        assert!(f.sweep(t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn sweep_reports_ended_bans() {
        let mut f = FloodLimiter::new(policy(), vec![]);
        let t0 = Instant::now();
        let a = ip("2001:db8::1");
        for _ in 0..25 {
            f.request(a, t0);
        }
        assert!(f.sweep(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(f.sweep(t0 + Duration::from_secs(61)), vec![(a, 5)]);
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn bans_are_listed_and_lifted() {
        let mut f = FloodLimiter::new(policy(), vec![]);
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for _ in 0..21 {
            f.request(a, t0);
        }
        f.request(ip("192.0.2.8"), t0);
        assert_eq!(f.bans(t0), vec![(a, t0 + Duration::from_secs(60))]);
        assert!(!f.unban(ip("192.0.2.8"), t0), "not banned");
        assert!(f.unban(a, t0));
        assert!(f.bans(t0).is_empty());
        assert_eq!(f.request(a, t0), FloodVerdict::Pass, "a full bucket again");
    }
}
