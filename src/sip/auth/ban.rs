//! Sources that fail digest auth repeatedly are ignored for a while (sans-IO).
//!
//! Only wrong credentials on a nonce that was issued to the same address
//! count (a first request without credentials, a stale nonce, or a nonce the
//! source never received — a spoofed source — count nothing; see `nonces.rs`).
//! Failures are counted twice:
//!
//! - per (address, user name): `max_failures` within `window` bans that pair,
//!   whatever else the address does. A success for one extension never
//!   forgives guesses for another, and a success never resets a count: it
//!   only ages out of the window.
//! - per address: `max_failures` within `window` bans the address, unless it
//!   authenticated correctly within the window (a brute-forcer behind the same
//!   NAT as a real device should not lock the device out); such an address is
//!   still banned at `TRUSTED_FACTOR` times as many failures.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A recently successful address is banned only at this many times the limit.
pub const TRUSTED_FACTOR: u32 = 10;
/// User names longer than this are counted by their first this many bytes.
const MAX_USER_KEY: usize = 64;
/// Pairs remembered at most (beyond that only per-address counts grow).
const MAX_PAIRS: usize = 65_536;
/// Addresses remembered at most (an IPv6 prefix holds more than any table):
/// when full, what has nothing left to remember is dropped first, and past
/// that a new address's failures count only per (address, user).
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct BanPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub ban_for: Duration,
}

#[derive(Debug, Default)]
struct Counter {
    failures: u32,
    window_start: Option<Instant>,
    banned_until: Option<Instant>,
}

impl Counter {
    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|u| now < u)
    }

    /// Count one failure; true when it reaches `limit` and starts a ban.
    fn fail(&mut self, p: &BanPolicy, limit: u32, now: Instant) -> bool {
        if self.window_start.is_none_or(|w| now.duration_since(w) > p.window) {
            self.window_start = Some(now);
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures >= limit {
            self.banned_until = Some(now + p.ban_for);
            self.failures = 0;
            self.window_start = None;
            return true;
        }
        false
    }

    fn live(&self, p: &BanPolicy, now: Instant) -> bool {
        self.banned(now) || self.window_start.is_some_and(|w| now.duration_since(w) <= p.window)
    }
}

#[derive(Debug, Default)]
struct SourceState {
    counter: Counter,
    trusted_until: Option<Instant>,
}

/// What one failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanStart {
    None,
    /// This user name from this address is refused from now on.
    Pair,
    /// Everything from this address is ignored from now on.
    Source,
}

#[derive(Debug)]
pub struct BanList {
    policy: BanPolicy,
    sources: HashMap<IpAddr, SourceState>,
    pairs: HashMap<(IpAddr, String), Counter>,
    /// When a full address table was last swept to make room.
    full_swept_at: Option<Instant>,
}

fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_KEY);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_string()
}

impl BanList {
    pub fn new(policy: BanPolicy) -> Self {
        BanList { policy, sources: HashMap::new(), pairs: HashMap::new(), full_swept_at: None }
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources.get(&ip).is_some_and(|s| s.counter.banned(now))
    }

    /// Whether `user` from `ip` is refused (the address itself may be fine).
    pub fn is_pair_banned(&self, ip: IpAddr, user: &str, now: Instant) -> bool {
        self.pairs.get(&(ip, user_key(user))).is_some_and(|c| c.banned(now))
    }

    /// Record wrong credentials for `user` from `ip`.
    pub fn record_failure(&mut self, ip: IpAddr, user: &str, now: Instant) -> BanStart {
        let p = self.policy;
        if self.has_room_for(ip, now) {
            let s = self.sources.entry(ip).or_default();
            if s.counter.banned(now) {
                return BanStart::None;
            }
            let trusted = s.trusted_until.is_some_and(|t| now < t);
            let limit = if trusted { p.max_failures.saturating_mul(TRUSTED_FACTOR) } else { p.max_failures };
            if s.counter.fail(&p, limit, now) {
                return BanStart::Source;
            }
        }
        let key = (ip, user_key(user));
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            return BanStart::None;
        }
        let pair = self.pairs.entry(key).or_default();
        if pair.banned(now) {
            return BanStart::None;
        }
        if pair.fail(&p, p.max_failures, now) { BanStart::Pair } else { BanStart::None }
    }

    /// A correct answer from `ip`: shields the address (not any user name)
    /// from the per-address ban for one window. Forgives nothing.
    pub fn record_success(&mut self, ip: IpAddr, now: Instant) {
        let window = self.policy.window;
        if self.has_room_for(ip, now) {
            self.sources.entry(ip).or_default().trusted_until = Some(now + window);
        }
    }

    /// Whether `ip` is remembered or can be (sweeping first when full).
    fn has_room_for(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.sources.len() < MAX_SOURCES || self.sources.contains_key(&ip) {
            return true;
        }
        // at most one sweep a second, so a full table costs no scan per failure
        if self.full_swept_at.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        self.full_swept_at = Some(now);
        let p = self.policy;
        self.sources.retain(|_, s| s.counter.live(&p, now) || s.trusted_until.is_some_and(|t| now < t));
        self.sources.len() < MAX_SOURCES
    }

    /// Forget what there is nothing left to remember of; call now and then.
    pub fn sweep(&mut self, now: Instant) {
        let p = self.policy;
        self.sources.retain(|_, s| s.counter.live(&p, now) || s.trusted_until.is_some_and(|t| now < t));
        self.pairs.retain(|_, c| c.live(&p, now));
    }

    pub fn banned_count(&self, now: Instant) -> usize {
        self.sources.values().filter(|s| s.counter.banned(now)).count()
    }

    /// When the ban of `ip` ends, if it is banned now.
    pub fn banned_until(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        self.sources.get(&ip).and_then(|s| s.counter.banned_until).filter(|u| now < *u)
    }

    /// When the ban of `user` from `ip` ends, if there is one now.
    pub fn pair_banned_until(&self, ip: IpAddr, user: &str, now: Instant) -> Option<Instant> {
        self.pairs.get(&(ip, user_key(user))).and_then(|c| c.banned_until).filter(|u| now < *u)
    }

    /// Every ban in force: (address, user name for a pair's, until when),
    /// addresses first.
    pub fn bans(&self, now: Instant) -> Vec<(IpAddr, Option<String>, Instant)> {
        let mut out: Vec<_> = self.sources.iter().filter_map(|(ip, s)| Some((*ip, None, s.counter.banned_until.filter(|u| now < *u)?))).collect();
        out.extend(self.pairs.iter().filter_map(|((ip, user), c)| Some((*ip, Some(user.clone()), c.banned_until.filter(|u| now < *u)?))));
        out.sort();
        out
    }

    /// An administrator lifts every ban of `ip` (the address's and those of
    /// its user names) and its failure counts; true when there was a ban.
    pub fn unban(&mut self, ip: IpAddr, now: Instant) -> bool {
        let mut was = false;
        if let Some(s) = self.sources.get_mut(&ip) {
            was |= s.counter.banned(now);
            s.counter = Counter::default();
        }
        self.pairs.retain(|(a, _), c| {
            if *a == ip {
                was |= c.banned(now);
                return false;
            }
            true
        });
        was
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
    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn bans_after_max_failures_and_expires() {
        let mut b = list();
        let t0 = Instant::now();
        assert_eq!(b.record_failure(ip("10.0.0.9"), "101", t0), BanStart::None);
        assert_eq!(b.record_failure(ip("10.0.0.9"), "102", t0), BanStart::None);
        assert_eq!(b.record_failure(ip("10.0.0.9"), "103", t0), BanStart::Source);
        assert!(b.is_banned(ip("10.0.0.9"), secs(t0, 299)));
        assert!(!b.is_banned(ip("10.0.0.8"), t0));
        assert!(!b.is_banned(ip("10.0.0.9"), secs(t0, 301)));
    }

    #[test]
    fn failures_outside_window_do_not_add_up() {
        let mut b = list();
        let t0 = Instant::now();
        b.record_failure(ip("10.0.0.9"), "101", t0);
        b.record_failure(ip("10.0.0.9"), "101", t0);
        assert_eq!(b.record_failure(ip("10.0.0.9"), "101", secs(t0, 61)), BanStart::None);
        assert!(!b.is_banned(ip("10.0.0.9"), secs(t0, 61)));
        assert!(!b.is_pair_banned(ip("10.0.0.9"), "101", secs(t0, 61)));
    }

    #[test]
    fn recent_success_protects_a_shared_address_but_not_the_guessed_user() {
        let mut b = list();
        let t0 = Instant::now();
        b.record_success(ip("10.0.0.1"), t0);
        let starts: Vec<_> = (0..3).map(|_| b.record_failure(ip("10.0.0.1"), "102", secs(t0, 1))).collect();
        assert_eq!(starts, [BanStart::None, BanStart::None, BanStart::Pair]);
        assert!(!b.is_banned(ip("10.0.0.1"), secs(t0, 2)), "the device behind the address goes on");
        assert!(b.is_pair_banned(ip("10.0.0.1"), "102", secs(t0, 2)));
        assert!(!b.is_pair_banned(ip("10.0.0.1"), "101", secs(t0, 2)));
        assert!(!b.is_pair_banned(ip("10.0.0.2"), "102", secs(t0, 2)));
        assert!(b.is_pair_banned(ip("10.0.0.1"), "102", secs(t0, 300)));
        assert!(!b.is_pair_banned(ip("10.0.0.1"), "102", secs(t0, 302)));
        b.sweep(secs(t0, 1000));
        assert_eq!(b.banned_count(secs(t0, 1000)), 0);
        assert!(b.sources.is_empty() && b.pairs.is_empty());
    }

    #[test]
    fn a_success_for_one_user_never_forgives_guesses_for_another() {
        // The svcrack case: a device registers fine, then thousands of guesses
        // for another extension come from the same address.
        let mut b = list();
        let t0 = Instant::now();
        b.record_failure(ip("10.0.0.1"), "102", t0);
        b.record_failure(ip("10.0.0.1"), "102", t0);
        b.record_success(ip("10.0.0.1"), secs(t0, 1));
        assert_eq!(b.record_failure(ip("10.0.0.1"), "102", secs(t0, 2)), BanStart::Pair);
        let mut source_banned_at = None;
        for i in 0..100 {
            b.record_success(ip("10.0.0.1"), secs(t0, 3));
            if b.record_failure(ip("10.0.0.1"), &format!("2{i:02}"), secs(t0, 3)) == BanStart::Source {
                source_banned_at = Some(i);
                break;
            }
        }
        // 3 failures for 102 and 27 for others: 30 = 3 x TRUSTED_FACTOR
        assert_eq!(source_banned_at, Some(26), "a trusted address is still banned at {TRUSTED_FACTOR}x");
        assert!(b.is_banned(ip("10.0.0.1"), secs(t0, 4)));
    }

    #[test]
    fn long_user_names_share_one_key() {
        let mut b = list();
        let t0 = Instant::now();
        let long = "é".repeat(100);
        b.record_success(ip("10.0.0.1"), t0);
        for i in 0..3 {
            b.record_failure(ip("10.0.0.1"), &format!("{long}{i}"), t0);
        }
        assert!(b.is_pair_banned(ip("10.0.0.1"), &long, t0));
    }

    #[test]
    fn bans_are_listed_and_lifted_by_address() {
        let mut b = list();
        let t0 = Instant::now();
        b.record_success(ip("10.0.0.1"), t0);
        for _ in 0..3 {
            b.record_failure(ip("10.0.0.1"), "102", t0);
            b.record_failure(ip("10.0.0.9"), "101", t0);
        }
        let until = secs(t0, 300);
        assert_eq!(b.banned_until(ip("10.0.0.9"), t0), Some(until));
        assert_eq!(b.pair_banned_until(ip("10.0.0.1"), "102", t0), Some(until));
        assert_eq!(b.bans(t0), vec![(ip("10.0.0.1"), Some("102".to_string()), until), (ip("10.0.0.9"), None, until)]);
        assert!(b.bans(secs(t0, 301)).is_empty(), "ended bans are not listed");
        assert!(!b.unban(ip("10.0.0.2"), t0), "not banned");
        assert!(b.unban(ip("10.0.0.9"), t0));
        assert!(!b.is_banned(ip("10.0.0.9"), t0));
        // its failures are forgiven too: the next wrong one does not ban again at once
        assert_eq!(b.record_failure(ip("10.0.0.9"), "101", t0), BanStart::None);
        assert!(b.unban(ip("10.0.0.1"), t0));
        assert!(!b.is_pair_banned(ip("10.0.0.1"), "102", t0));
        assert!(b.bans(t0).is_empty());
    }

    #[test]
    fn the_address_table_is_bounded() {
        let mut b = list();
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 1000) {
            let a = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)));
            b.record_success(a, t0);
            b.record_failure(a, "101", t0);
        }
        assert_eq!(b.sources.len(), MAX_SOURCES);
        // once the entries have nothing left to say, new addresses are counted again
        let later = secs(t0, 3600);
        let late = ip("10.9.9.9");
        for _ in 0..3 {
            b.record_failure(late, "u", later);
        }
        assert!(b.is_banned(late, later));
    }
}
