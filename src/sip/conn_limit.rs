//! Caps on connections (sans-IO): how many SIP-over-TCP/TLS connections and
//! WebSockets may be open at once, in all and from one source address, and
//! which idle stream connections to close.
//!
//! [`ConnCounter`] only counts; [`StreamTable`] adds what the SIP stream
//! watcher (`crate::sip::guard`) needs: the last time a connection carried a
//! message, and which ones have been idle too long. Time comes in as
//! arguments, so both are tested without sockets or sleeps.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub total: usize,
    pub per_ip: usize,
}

/// Why a connection was refused; names the limit for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total(usize),
    PerIp(usize),
}

impl Refused {
    pub fn describe(self, total_key: &str, per_ip_key: &str) -> String {
        match self {
            Refused::Total(n) => format!("{total_key} ({n}) reached"),
            Refused::PerIp(n) => format!("{per_ip_key} ({n}) reached for this address"),
        }
    }
}

/// Counts per key: a source address (connections) or an extension (calls).
#[derive(Debug)]
pub struct ConnCounter<K = IpAddr> {
    limits: ConnLimits,
    total: usize,
    per_ip: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> ConnCounter<K> {
    pub fn new(limits: ConnLimits) -> Self {
        ConnCounter { limits, total: 0, per_ip: HashMap::new() }
    }

    /// Counts one more connection from `ip`, unless a limit is reached.
    pub fn try_open(&mut self, ip: K) -> Result<(), Refused> {
        if self.total >= self.limits.total {
            return Err(Refused::Total(self.limits.total));
        }
        let n = self.per_ip.entry(ip.clone()).or_insert(0);
        if *n >= self.limits.per_ip {
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
            return Err(Refused::PerIp(self.limits.per_ip));
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// One connection from `ip` (counted by `try_open`) closed.
    pub fn close(&mut self, ip: &K) {
        if let Some(n) = self.per_ip.get_mut(ip) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_ip.remove(ip);
            }
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

/// A [`ConnCounter`] shared by tasks, handing out permits that count until
/// dropped (one per WebSocket, one per call of an extension).
pub struct ConnGate<K = IpAddr>(Arc<Mutex<ConnCounter<K>>>);

impl<K> Clone for ConnGate<K> {
    fn clone(&self) -> Self {
        ConnGate(self.0.clone())
    }
}

pub struct ConnPermit<K: Hash + Eq + Clone = IpAddr> {
    gate: ConnGate<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> ConnGate<K> {
    pub fn new(limits: ConnLimits) -> Self {
        ConnGate(Arc::new(Mutex::new(ConnCounter::new(limits))))
    }

    pub fn try_open(&self, key: K) -> Result<ConnPermit<K>, Refused> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.try_open(key.clone())?;
        Ok(ConnPermit { gate: self.clone(), key })
    }
}

impl<K: Hash + Eq + Clone> Drop for ConnPermit<K> {
    fn drop(&mut self) {
        self.gate.0.lock().unwrap_or_else(|p| p.into_inner()).close(&self.key);
    }
}

/// Key of a SIP stream connection: its transport (`tcp`, `tls`) and the peer.
pub type StreamKey = (rsipstack::sip::Transport, SocketAddr);

struct Open<T> {
    last: Instant,
    handle: T,
}

/// The SIP stream connections accepted and still open. `T` is what closes
/// one (the connection's cancel token in the server, a number in tests).
pub struct StreamTable<T> {
    counter: ConnCounter<IpAddr>,
    open: HashMap<StreamKey, Open<T>>,
}

impl<T: Clone> StreamTable<T> {
    pub fn new(limits: ConnLimits) -> Self {
        StreamTable { counter: ConnCounter::new(limits), open: HashMap::new() }
    }

    /// A new connection: `Ok` to keep it, `Err` to close it at once.
    pub fn admit(&mut self, key: StreamKey, handle: T, now: Instant) -> Result<(), Refused> {
        if self.open.contains_key(&key) {
            return Ok(());
        }
        self.counter.try_open(key.1.ip())?;
        self.open.insert(key, Open { last: now, handle });
        Ok(())
    }

    /// A message arrived over the connection.
    pub fn touch(&mut self, key: &StreamKey, now: Instant) {
        if let Some(o) = self.open.get_mut(key) {
            o.last = now;
        }
    }

    /// The connection is gone (whoever closed it).
    pub fn closed(&mut self, key: &StreamKey) {
        if self.open.remove(key).is_some() {
            self.counter.close(&key.1.ip());
        }
    }

    /// Connections without a message for `idle` that no registration uses
    /// (`bound` says which are used): the caller closes them. They stay counted
    /// until [`Self::closed`].
    pub fn idle(&self, now: Instant, idle: Duration, bound: impl Fn(&StreamKey) -> bool) -> Vec<(StreamKey, T)> {
        self.open
            .iter()
            .filter(|(k, o)| now.saturating_duration_since(o.last) >= idle && !bound(k))
            .map(|(k, o)| (*k, o.handle.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::Transport;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }
    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(ip(last), port)
    }

    #[test]
    fn per_address_cap_then_total_cap() {
        let mut c: ConnCounter = ConnCounter::new(ConnLimits { total: 3, per_ip: 2 });
        assert_eq!(c.try_open(ip(1)), Ok(()));
        assert_eq!(c.try_open(ip(1)), Ok(()));
        assert_eq!(c.try_open(ip(1)), Err(Refused::PerIp(2)));
        assert_eq!(c.try_open(ip(2)), Ok(()));
        assert_eq!(c.try_open(ip(3)), Err(Refused::Total(3)));
        c.close(&ip(1));
        assert_eq!(c.total(), 2);
        assert_eq!(c.try_open(ip(3)), Ok(()));
        // A close for an address never counted changes nothing.
        c.close(&ip(9));
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn zero_per_address_refuses_everyone_without_leaking_entries() {
        let mut c: ConnCounter = ConnCounter::new(ConnLimits { total: 5, per_ip: 0 });
        assert_eq!(c.try_open(ip(1)), Err(Refused::PerIp(0)));
        assert!(c.per_ip.is_empty());
    }

    #[test]
    fn permits_count_until_dropped() {
        let gate: ConnGate = ConnGate::new(ConnLimits { total: 10, per_ip: 1 });
        let first = gate.try_open(ip(1)).expect("first");
        assert!(gate.try_open(ip(1)).is_err());
        drop(first);
        assert!(gate.try_open(ip(1)).is_ok());
    }

    #[test]
    fn calls_per_extension() {
        let gate: ConnGate<String> = ConnGate::new(ConnLimits { total: usize::MAX, per_ip: 2 });
        let a = gate.try_open("101".to_string()).expect("first call");
        let _b = gate.try_open("101".to_string()).expect("second call");
        assert_eq!(gate.try_open("101".to_string()).err(), Some(Refused::PerIp(2)));
        assert!(gate.try_open("102".to_string()).is_ok());
        drop(a);
        assert!(gate.try_open("101".to_string()).is_ok());
    }

    #[test]
    fn refusal_names_the_limit() {
        assert_eq!(Refused::Total(5).describe("a.total", "a.per_ip"), "a.total (5) reached");
        assert_eq!(Refused::PerIp(2).describe("a.total", "a.per_ip"), "a.per_ip (2) reached for this address");
    }

    #[test]
    fn idle_connections_without_a_registration_are_picked() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(30);
        let mut t = StreamTable::new(ConnLimits { total: 10, per_ip: 10 });
        t.admit((Transport::Tcp, addr(1, 5000)), 1, t0).unwrap();
        t.admit((Transport::Tcp, addr(1, 5001)), 2, t0).unwrap();
        t.admit((Transport::Tls, addr(2, 5000)), 3, t0).unwrap();
        t.touch(&(Transport::Tcp, addr(1, 5001)), t0 + Duration::from_secs(20));
        let bound = |k: &StreamKey| *k == (Transport::Tls, addr(2, 5000));
        let mut picked: Vec<_> = t.idle(t0 + Duration::from_secs(31), idle, bound).into_iter().map(|(_, h)| h).collect();
        picked.sort();
        // 2 spoke 11 s ago; 3 carries a registration; only 1 goes.
        assert_eq!(picked, vec![1]);
        assert_eq!(t.idle(t0 + Duration::from_secs(29), idle, |_| false).len(), 0);
        assert_eq!(t.idle(t0 + Duration::from_secs(60), idle, |_| false).len(), 3);
    }

    #[test]
    fn admit_counts_and_closed_releases() {
        let t0 = Instant::now();
        let mut t = StreamTable::new(ConnLimits { total: 2, per_ip: 1 });
        assert!(t.admit((Transport::Tcp, addr(1, 1)), (), t0).is_ok());
        assert_eq!(t.admit((Transport::Tcp, addr(1, 2)), (), t0), Err(Refused::PerIp(1)));
        assert!(t.admit((Transport::Tcp, addr(2, 1)), (), t0).is_ok());
        assert_eq!(t.admit((Transport::Tcp, addr(3, 1)), (), t0), Err(Refused::Total(2)));
        // A refused connection's close event releases nothing.
        t.closed(&(Transport::Tcp, addr(3, 1)));
        assert_eq!(t.len(), 2);
        t.closed(&(Transport::Tcp, addr(1, 1)));
        assert!(t.admit((Transport::Tcp, addr(1, 2)), (), t0).is_ok());
        // The same connection announced twice is counted once.
        assert!(t.admit((Transport::Tcp, addr(1, 2)), (), t0).is_ok());
        assert_eq!(t.len(), 2);
    }
}
