//! The last responses sent without a transaction, so a retransmitted request
//! gets the same answer again instead of being processed twice (sans-IO:
//! time is an input). A REGISTER whose 200 was lost must get that 200, not
//! a second pass that would find its nonce count already spent.
//!
//! Bounded twice: an entry lives 64*T1 (32 s, RFC 3261 Timer J: how long a
//! client retransmits a non-INVITE request), and all entries together hold
//! at most `max_bytes`; the oldest go first. Past the budget (tens of
//! thousands of responses a second) a late retransmission is processed
//! again, which for a REGISTER means a fresh challenge (`stale=true`): slower
//! for that client, never wrong.
use crate::sip::tx_key::TxKey;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bookkeeping per entry beyond its bytes (map and queue slots, allocations).
const OVERHEAD: usize = 96;

pub struct ResponseCache {
    map: HashMap<TxKey, Cached>,
    /// Insertion order, for expiry and the budget; `u64` is the entry's
    /// generation, so a replaced entry's old place is skipped.
    order: VecDeque<(TxKey, u64)>,
    next_generation: u64,
    bytes: usize,
    max_bytes: usize,
    max_age: Duration,
}

struct Cached {
    response: Vec<u8>,
    to: SocketAddr,
    at: Instant,
    generation: u64,
}

impl ResponseCache {
    pub fn new(max_bytes: usize, max_age: Duration) -> Self {
        ResponseCache { map: HashMap::new(), order: VecDeque::new(), next_generation: 0, bytes: 0, max_bytes, max_age }
    }

    /// The response already sent for `key`, and where it went.
    pub fn get(&self, key: &TxKey, now: Instant) -> Option<(&[u8], SocketAddr)> {
        let c = self.map.get(key)?;
        (now.saturating_duration_since(c.at) <= self.max_age).then_some((c.response.as_slice(), c.to))
    }

    pub fn insert(&mut self, key: TxKey, response: Vec<u8>, to: SocketAddr, now: Instant) {
        self.expire(now);
        let size = Self::size(&key, &response);
        if size > self.max_bytes {
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        if let Some(old) = self.map.insert(key.clone(), Cached { response, to, at: now, generation }) {
            self.bytes -= Self::size(&key, &old.response);
        }
        self.bytes += size;
        self.order.push_back((key, generation));
        while self.bytes > self.max_bytes {
            if !self.pop_oldest() {
                break;
            }
        }
    }

    /// Drop entries older than `max_age`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((key, generation)) = self.order.front() {
            match self.map.get(key) {
                Some(c) if c.generation == *generation && now.saturating_duration_since(c.at) <= self.max_age => break,
                _ => {
                    self.pop_oldest();
                }
            }
        }
    }

    /// Removes the oldest queue slot (and its entry, if not replaced since).
    fn pop_oldest(&mut self) -> bool {
        let Some((key, generation)) = self.order.pop_front() else { return false };
        if self.map.get(&key).is_some_and(|c| c.generation == generation)
            && let Some(c) = self.map.remove(&key)
        {
            self.bytes -= Self::size(&key, &c.response);
        }
        if self.map.is_empty() {
            self.order.clear();
            self.map.shrink_to(64);
            self.order.shrink_to(64);
        }
        true
    }

    fn size(key: &TxKey, response: &[u8]) -> usize {
        key.size() + response.len() + OVERHEAD
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes accounted to the entries (what the budget bounds).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::{Request, SipMessage};

    fn key(branch: &str) -> TxKey {
        let text = format!(
            "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{branch}\r\nFrom: <sip:a@h>;tag=a\r\n\
             To: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        let SipMessage::Request(r): SipMessage = SipMessage::try_from(text.as_bytes()).unwrap() else { unreachable!() };
        let r: Request = r;
        TxKey::of(&r).unwrap()
    }
    fn to() -> SocketAddr {
        "10.0.0.1:5070".parse().unwrap()
    }

    #[test]
    fn a_retransmission_finds_the_response_until_timer_j() {
        let t0 = Instant::now();
        let mut c = ResponseCache::new(1 << 20, Duration::from_secs(32));
        c.insert(key("a"), b"SIP/2.0 200 OK".to_vec(), to(), t0);
        assert_eq!(c.get(&key("a"), t0 + Duration::from_millis(500)), Some((&b"SIP/2.0 200 OK"[..], to())));
        assert_eq!(c.get(&key("b"), t0), None);
        assert_eq!(c.get(&key("a"), t0 + Duration::from_secs(33)), None);
        c.expire(t0 + Duration::from_secs(33));
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_budget_pushes_out_the_oldest() {
        let t0 = Instant::now();
        let one = ResponseCache::size(&key("00000"), &[0; 400]);
        let mut c = ResponseCache::new(one * 10, Duration::from_secs(32));
        for i in 0..1000 {
            c.insert(key(&format!("{i:05}")), vec![0; 400], to(), t0 + Duration::from_millis(i));
            assert!(c.bytes() <= one * 10);
        }
        assert_eq!(c.len(), 10);
        assert!(c.get(&key("00989"), t0).is_none());
        assert!(c.get(&key("00990"), t0 + Duration::from_secs(1)).is_some());
        assert!(c.order.len() <= 10);
    }

    #[test]
    fn a_replaced_entry_is_counted_once() {
        let t0 = Instant::now();
        let mut c = ResponseCache::new(1 << 20, Duration::from_secs(32));
        c.insert(key("a"), vec![1; 100], to(), t0);
        c.insert(key("a"), vec![2; 300], to(), t0 + Duration::from_secs(20));
        assert_eq!(c.bytes(), ResponseCache::size(&key("a"), &[0; 300]));
        // the first insertion's expiry does not take the newer entry with it
        c.expire(t0 + Duration::from_secs(40));
        assert_eq!(c.get(&key("a"), t0 + Duration::from_secs(40)).map(|(r, _)| r.len()), Some(300));
        c.expire(t0 + Duration::from_secs(53));
        assert!(c.is_empty() && c.order.is_empty());
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept() {
        let mut c = ResponseCache::new(100, Duration::from_secs(32));
        c.insert(key("a"), vec![0; 200], to(), Instant::now());
        assert!(c.is_empty());
    }
}
