//! The nonces we issued and what has been done with each (sans-IO: time is an
//! input). What this enforces against a captured Authorization header:
//!
//! - **Bound to the source address.** A nonce is issued to one IP address and
//!   its text carries a MAC over (secret, time, serial, address), so it is only
//!   accepted from that address. From any other address it is unknown: the
//!   request gets a fresh challenge and counts toward no ban (a spoofer never
//!   receives the challenge sent to the address it forges).
//! - **Each nonce count once.** With `qop=auth` every `nc` of a nonce is
//!   accepted once (a 64-wide window, so requests that overtake each other
//!   still pass); without `qop` a nonce authorizes one request. A repeat gets
//!   401/407 with `stale=true`, so a client that reuses counts just retries.
//! - **Bounded, without a cap per address.** Nonces are numbered, and the
//!   use of nonce n is kept in slot `(n - 1) mod max_total` of a ring (as
//!   Kamailio's nonce-id pool does) that grows to `max_total` slots as nonces
//!   are issued and then wraps, so an idle PBX holds no more than it used.
//!   One address may hold as many outstanding
//!   nonces as it likes (a load generator or a NAT full of phones on one
//!   address is not throttled). A nonce whose slot was taken by a newer one
//!   (more than `max_total` challenges since), or that expired, is *stale*,
//!   never a failure: the device re-authenticates silently, and a captured
//!   header on it is refused. Filling the ring needs `max_total` challenges,
//!   which the per-source flood limit spreads over many minutes per address.
//!
//! Not bound to the Call-ID: REGISTER refreshes and phones that reuse a realm's
//! nonce for the next request (with nc + 1) must keep working, and with every
//! count usable once a captured header is spent anyway.
//!
//! **A retransmission is challenged alike.** A challenge issued for a request
//! (`issue_for`, keyed by that request's transaction, see [`ChallengeKey`])
//! is issued again, the same nonce, to a retransmission of that request while
//! the nonce's slot holds it and it has not expired. With the To tag derived
//! from the same key, a retransmitted request gets a byte-identical 401/407
//! without any response kept for it: a client that already answered the
//! first challenge sees a retransmission of it, not a second challenge
//! (issue 19: a 16 MiB response cache let a 401 go within a second at
//! 15,000 REGISTERs/s). The key → serial map (`by_key`) holds an entry only
//! while the ring slot of its nonce does (a slot overwritten or swept takes
//! its entry with it), so it is bounded by the ring and empty when idle.
//! Issuing a nonce again never resets what was spent of it.
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued to this address, remembered, within its lifetime.
    Fresh,
    /// Issued to this address, but expired or forgotten: challenge again with
    /// `stale=true`.
    Stale,
    /// Not a nonce we issued to this address (forged, another address's, or
    /// from before a restart).
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub struct NonceLimits {
    pub ttl_secs: u64,
    /// Slots in the ring: nonces remembered at once.
    pub max_total: usize,
}

impl NonceLimits {
    pub fn with_ttl(ttl_secs: u64) -> Self {
        NonceLimits { ttl_secs, max_total: 65_536 }
    }
}

/// What has been done with one nonce (its serial says which).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The nonce's serial; 0: empty.
    serial: u64,
    issued: u64,
    /// Highest nc accepted so far (0: none yet).
    max_nc: u32,
    /// Used once without qop.
    used_plain: bool,
    /// Bit i set: nc `max_nc - i` was accepted.
    seen: u64,
    /// The challenged request's key id (`ChallengeKey`); 0: none.
    key: u64,
}

pub struct NonceTable {
    secret: [u8; 32],
    limits: NonceLimits,
    next_serial: u64,
    /// Grows to `limits.max_total` slots, then wraps.
    ring: Vec<Slot>,
    live: usize,
    /// Challenge key id → serial, for the keyed nonces the ring holds.
    by_key: HashMap<u64, u64>,
}

/// The identity of a challenged request, keyed with the table's secret (so
/// it can be neither predicted nor aimed at another request's entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeKey {
    id: u64,
    /// The To tag of the challenge: the same for a retransmission.
    pub to_tag: String,
}

struct Parsed {
    issued: u64,
    serial: u64,
}

impl NonceTable {
    pub fn new(secret: [u8; 32], limits: NonceLimits) -> Self {
        let limits = NonceLimits { max_total: limits.max_total.max(1), ..limits };
        NonceTable { secret, limits, next_serial: 1, ring: Vec::new(), live: 0, by_key: HashMap::new() }
    }

    /// The key of a request challenged from `ip`: `parts` are what a
    /// retransmission of it repeats (its transaction key, Call-ID ...).
    pub fn challenge_key(&self, ip: IpAddr, parts: &[&[u8]]) -> ChallengeKey {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(b"challenge");
        match ip {
            IpAddr::V4(a) => h.update(a.octets()),
            IpAddr::V6(a) => h.update(a.octets()),
        }
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let d = h.finalize();
        let id = u64::from_be_bytes(d[..8].try_into().unwrap_or_default()).max(1);
        ChallengeKey { id, to_tag: hex::encode(&d[8..16]) }
    }

    /// A nonce for the challenge of the request `key` names, sent to `ip`:
    /// the nonce this request got before, while its slot holds it and it
    /// has not expired, else a new one (as [`issue`](Self::issue)).
    pub fn issue_for(&mut self, ip: IpAddr, now_secs: u64, key: &ChallengeKey) -> String {
        if let Some(&serial) = self.by_key.get(&key.id)
            && let Some(slot) = self.ring.get(self.index(serial)).filter(|s| s.serial == serial && s.key == key.id)
            && slot.issued <= now_secs
            && now_secs - slot.issued <= self.limits.ttl_secs
        {
            return Self::text(slot.issued, serial, &self.mac(slot.issued, serial, ip));
        }
        let serial = self.next_serial;
        let nonce = self.issue(ip, now_secs);
        let i = self.index(serial);
        self.ring[i].key = key.id;
        self.by_key.insert(key.id, serial);
        nonce
    }

    /// A slot is emptied or taken by a newer nonce: its key entry goes too.
    fn forget_key(&mut self, old: Slot) {
        if old.key != 0 && self.by_key.get(&old.key) == Some(&old.serial) {
            self.by_key.remove(&old.key);
        }
    }

    fn text(issued: u64, serial: u64, mac: &str) -> String {
        format!("{issued:x}.{serial:x}.{mac}")
    }

    fn mac(&self, issued: u64, serial: u64, ip: IpAddr) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(serial.to_be_bytes());
        match ip {
            IpAddr::V4(a) => h.update(a.octets()),
            IpAddr::V6(a) => h.update(a.octets()),
        }
        hex::encode(&h.finalize()[..12])
    }

    fn index(&self, serial: u64) -> usize {
        (serial.wrapping_sub(1) % self.limits.max_total as u64) as usize
    }

    /// A new nonce for a challenge sent to `ip`.
    pub fn issue(&mut self, ip: IpAddr, now_secs: u64) -> String {
        let serial = self.next_serial;
        self.next_serial += 1;
        let i = self.index(serial);
        let slot = Slot { serial, issued: now_secs, ..Slot::default() };
        match self.ring.get_mut(i) {
            Some(old) => {
                if old.serial == 0 {
                    self.live += 1;
                }
                let old = std::mem::replace(old, slot);
                self.forget_key(old);
            }
            None => {
                // serials count up from 1, so the ring grows by its end
                debug_assert_eq!(i, self.ring.len());
                self.ring.push(slot);
                self.live += 1;
            }
        }
        Self::text(now_secs, serial, &self.mac(now_secs, serial, ip))
    }

    fn parse(&self, nonce: &str, ip: IpAddr) -> Option<Parsed> {
        let mut parts = nonce.split('.');
        let (ts, serial, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || ts.len() > 16 || serial.len() > 16 {
            return None;
        }
        let issued = u64::from_str_radix(ts, 16).ok()?;
        let serial = u64::from_str_radix(serial, 16).ok()?;
        constant_time_eq(mac.as_bytes(), self.mac(issued, serial, ip).as_bytes()).then_some(Parsed { issued, serial })
    }

    /// The slot still holding nonce `serial`, if it was not overwritten.
    fn slot(&mut self, serial: u64) -> Option<&mut Slot> {
        let i = self.index(serial);
        self.ring.get_mut(i).filter(|s| s.serial == serial && serial != 0)
    }

    /// Whether `nonce` was issued to `ip` and is still good at `now_secs`.
    pub fn check(&self, nonce: &str, ip: IpAddr, now_secs: u64) -> NonceState {
        let Some(p) = self.parse(nonce, ip) else { return NonceState::Unknown };
        if p.issued > now_secs + 5 {
            return NonceState::Unknown;
        }
        let expired = now_secs - p.issued.min(now_secs) > self.limits.ttl_secs;
        if expired || self.ring.get(self.index(p.serial)).is_none_or(|s| s.serial != p.serial || p.serial == 0) {
            return NonceState::Stale;
        }
        NonceState::Fresh
    }

    /// Spend one use of a fresh nonce: `nc` with qop, `None` without. False when
    /// that use was already spent (a replay, or a client repeating a count).
    pub fn spend(&mut self, nonce: &str, ip: IpAddr, nc: Option<u32>) -> bool {
        let Some(p) = self.parse(nonce, ip) else { return false };
        let Some(e) = self.slot(p.serial) else { return false };
        match nc {
            None => !std::mem::replace(&mut e.used_plain, true),
            Some(0) => false,
            Some(nc) if nc > e.max_nc => {
                let shift = nc - e.max_nc;
                e.seen = if shift >= 64 { 0 } else { e.seen << shift };
                e.seen |= 1;
                e.max_nc = nc;
                true
            }
            Some(nc) => {
                let back = e.max_nc - nc;
                if back >= 64 || e.seen & (1 << back) != 0 {
                    return false;
                }
                e.seen |= 1 << back;
                true
            }
        }
    }

    /// Forget expired nonces (they would only be stale now); call now and then.
    pub fn sweep(&mut self, now_secs: u64) {
        let ttl = self.limits.ttl_secs;
        let by_key = &mut self.by_key;
        for s in self.ring.iter_mut().filter(|s| s.serial != 0 && now_secs.saturating_sub(s.issued) > ttl) {
            let old = std::mem::take(s);
            if old.key != 0 && by_key.get(&old.key) == Some(&old.serial) {
                by_key.remove(&old.key);
            }
            self.live -= 1;
        }
        if by_key.is_empty() {
            // an idle PBX keeps no map
            *by_key = HashMap::new();
        }
    }

    /// Nonces remembered (issued, not yet expired or overwritten).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NonceTable {
        NonceTable::new([7; 32], NonceLimits { ttl_secs: 300, max_total: 8 })
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bound_to_the_address_it_was_issued_to() {
        let mut t = table();
        let n = t.issue(ip("10.0.0.1"), 1000);
        assert_eq!(t.check(&n, ip("10.0.0.1"), 1001), NonceState::Fresh);
        assert_eq!(t.check(&n, ip("10.0.0.2"), 1001), NonceState::Unknown);
        assert!(!t.spend(&n, ip("10.0.0.2"), Some(1)));
        assert!(t.spend(&n, ip("10.0.0.1"), Some(1)));
    }

    #[test]
    fn forged_and_foreign_nonces_are_unknown() {
        let t = table();
        let other = NonceTable::new([8; 32], NonceLimits::with_ttl(300)).issue(ip("10.0.0.1"), 1000);
        assert_eq!(t.check(&other, ip("10.0.0.1"), 1001), NonceState::Unknown);
        for junk in ["", ".", "..", "zz.zz.zz", "3e8.1", "3e8.1.", "ffffffffffffffffffff.1.00", "3e8.1.00.00"] {
            assert_eq!(t.check(junk, ip("10.0.0.1"), 1001), NonceState::Unknown, "{junk}");
        }
    }

    #[test]
    fn each_count_is_accepted_once_in_any_order() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let n = t.issue(a, 1000);
        assert!(t.spend(&n, a, Some(1)));
        assert!(!t.spend(&n, a, Some(1)), "same nc twice");
        assert!(t.spend(&n, a, Some(3)));
        assert!(t.spend(&n, a, Some(2)), "overtaken count still good once");
        assert!(!t.spend(&n, a, Some(2)));
        assert!(t.spend(&n, a, Some(100)));
        assert!(!t.spend(&n, a, Some(3)), "far behind the window");
        assert!(t.spend(&n, a, Some(40)));
        assert!(!t.spend(&n, a, Some(0)));
    }

    #[test]
    fn without_qop_a_nonce_is_single_use() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let n = t.issue(a, 1000);
        assert!(t.spend(&n, a, None));
        assert!(!t.spend(&n, a, None));
    }

    #[test]
    fn expired_or_forgotten_is_stale_not_unknown() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let n = t.issue(a, 1000);
        assert_eq!(t.check(&n, a, 1301), NonceState::Stale);
        let newer: Vec<_> = (0..8).map(|_| t.issue(ip("10.0.0.7"), 1001)).collect();
        assert_eq!(t.check(&n, a, 1002), NonceState::Stale, "its slot was taken by a newer nonce");
        assert!(!t.spend(&n, a, Some(1)), "a forgotten nonce is never accepted again");
        assert!(newer.iter().all(|m| t.check(m, ip("10.0.0.7"), 1002) == NonceState::Fresh));
        assert_eq!(t.check(&n, ip("10.0.0.9"), 1002), NonceState::Unknown);
    }

    #[test]
    fn the_table_is_bounded_and_swept() {
        let mut t = table();
        for i in 0..100u8 {
            t.issue(IpAddr::from([10, 0, 1, i]), 1000 + u64::from(i));
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.ring.len(), 8, "the ring grows to its size, no further");
        t.sweep(1000 + 99 + 301);
        assert!(t.is_empty());
        let a = ip("10.0.0.1");
        let n = t.issue(a, 2000);
        t.sweep(2100);
        assert_eq!(t.check(&n, a, 2100), NonceState::Fresh);
    }

    #[test]
    fn an_idle_table_holds_nothing() {
        let mut t = NonceTable::new([7; 32], NonceLimits::with_ttl(300));
        assert_eq!(t.ring.capacity(), 0);
        let a = ip("10.0.0.1");
        let n = t.issue(a, 1000);
        assert_eq!(t.ring.len(), 1);
        assert_eq!(t.check(&n, a, 1001), NonceState::Fresh);
        // a serial never issued (past the ring's end) is stale, not a panic
        let far = format!("3e8.{:x}.{}", 5u64, t.mac(1000, 5, a));
        assert_eq!(t.check(&far, a, 1001), NonceState::Stale);
        assert!(!t.spend(&far, a, Some(1)));
        let zero = format!("3e8.0.{}", t.mac(1000, 0, a));
        assert_eq!(t.check(&zero, a, 1001), NonceState::Stale);
        assert!(!t.spend(&zero, a, Some(1)));
    }

    #[test]
    fn one_address_may_hold_many_outstanding_nonces() {
        // A load generator (or a NAT full of phones) on one address: every
        // challenge in flight stays good, up to the ring's size.
        let mut t = NonceTable::new([7; 32], NonceLimits { ttl_secs: 300, max_total: 1000 });
        let host = ip("10.0.0.1");
        let issued: Vec<_> = (0..1000).map(|_| t.issue(host, 1000)).collect();
        for n in &issued {
            assert_eq!(t.check(n, host, 1001), NonceState::Fresh);
            assert!(t.spend(n, host, Some(1)));
            assert!(!t.spend(n, host, Some(1)), "still each count once");
        }
    }

    #[test]
    fn a_flooding_source_makes_a_phone_stale_at_worst() {
        let mut t = NonceTable::new([7; 32], NonceLimits { ttl_secs: 300, max_total: 100 });
        let phone = ip("10.0.0.1");
        let n = t.issue(phone, 1000);
        for _ in 0..99 {
            t.issue(ip("10.0.0.66"), 1000);
        }
        assert_eq!(t.check(&n, phone, 1001), NonceState::Fresh, "fewer than the ring's size: untouched");
        t.issue(ip("10.0.0.66"), 1000);
        assert_eq!(t.check(&n, phone, 1001), NonceState::Stale, "pushed out: challenged again, never a failure");
    }

    #[test]
    fn a_retransmitted_request_is_challenged_with_the_same_nonce() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let k = t.challenge_key(a, &[b"z9hG4bK1", b"10.0.0.1:5060", b"REGISTER", b"call-1"]);
        assert_eq!(k, t.challenge_key(a, &[b"z9hG4bK1", b"10.0.0.1:5060", b"REGISTER", b"call-1"]));
        let n = t.issue_for(a, 1000, &k);
        assert_eq!(t.issue_for(a, 1001, &k), n, "a retransmission: the same nonce");
        assert_eq!(t.len(), 1, "and no new slot");
        // another request (another branch, or the same parts from another address)
        let other = t.challenge_key(a, &[b"z9hG4bK2", b"10.0.0.1:5060", b"REGISTER", b"call-1"]);
        let moved = t.challenge_key(ip("10.0.0.2"), &[b"z9hG4bK1", b"10.0.0.1:5060", b"REGISTER", b"call-1"]);
        assert_ne!(other.to_tag, k.to_tag);
        assert_ne!(moved.to_tag, k.to_tag);
        let m = t.issue_for(a, 1001, &other);
        assert_ne!(m, n);
        assert_ne!(t.issue_for(ip("10.0.0.2"), 1001, &moved), n);
        // the parts are framed: ("ab", "c") is not ("a", "bc")
        assert_ne!(t.challenge_key(a, &[b"ab", b"c"]), t.challenge_key(a, &[b"a", b"bc"]));
        assert_eq!(t.check(&n, a, 1002), NonceState::Fresh);
        assert_eq!(t.check(&m, a, 1002), NonceState::Fresh);
    }

    #[test]
    fn issuing_again_never_gives_back_a_spent_count() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let k = t.challenge_key(a, &[b"z9hG4bK1"]);
        let n = t.issue_for(a, 1000, &k);
        assert!(t.spend(&n, a, Some(1)));
        assert_eq!(t.issue_for(a, 1001, &k), n);
        assert!(!t.spend(&n, a, Some(1)), "a replayed first request does not reset its nonce");
    }

    #[test]
    fn an_expired_or_pushed_out_nonce_is_not_issued_again() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let k = t.challenge_key(a, &[b"z9hG4bK1"]);
        let n = t.issue_for(a, 1000, &k);
        let late = t.issue_for(a, 1301, &k);
        assert_ne!(late, n, "past its lifetime: a new nonce");
        assert_eq!(t.check(&late, a, 1302), NonceState::Fresh);
        for i in 0..8 {
            t.issue_for(a, 1302, &t.challenge_key(a, &[format!("z9hG4bK-other-{i}").as_bytes()]));
        }
        let after = t.issue_for(a, 1302, &k);
        assert_ne!(after, late, "its slot went to newer nonces: a new one");
        assert_eq!(t.check(&after, a, 1302), NonceState::Fresh);
    }

    #[test]
    fn every_request_the_ring_holds_is_found_again() {
        // A retransmission may come thousands of challenges later under load
        // (a direct-mapped index lost 1 % of 20,000 there): every one the
        // ring still holds gets its nonce again.
        let mut t = NonceTable::new([7; 32], NonceLimits { ttl_secs: 300, max_total: 20_000 });
        let a = ip("10.0.0.1");
        let keys: Vec<_> = (0..20_000).map(|i| t.challenge_key(a, &[format!("z9hG4bK{i}").as_bytes()])).collect();
        let first: Vec<_> = keys.iter().map(|k| t.issue_for(a, 1000, k)).collect();
        for (k, n) in keys.iter().zip(&first) {
            assert_eq!(&t.issue_for(a, 1001, k), n);
        }
        assert_eq!(t.len(), 20_000);
    }

    #[test]
    fn the_key_map_is_bounded_by_the_ring_and_freed_when_idle() {
        let mut t = table();
        let a = ip("10.0.0.1");
        let keys: Vec<_> = (0..1000).map(|i| t.challenge_key(a, &[format!("b{i}").as_bytes()])).collect();
        for k in &keys {
            t.issue_for(a, 1000, k);
        }
        assert_eq!(t.by_key.len(), 8, "one entry per slot, no more");
        assert!(keys[992..].iter().all(|k| t.by_key.contains_key(&k.id)), "the newest are the ones kept");
        t.issue(a, 1000);
        assert_eq!(t.by_key.len(), 7, "an unkeyed nonce took a keyed one's slot: its entry went");
        t.sweep(1000 + 301);
        assert!(t.is_empty() && t.by_key.is_empty() && t.by_key.capacity() == 0);
    }
}
