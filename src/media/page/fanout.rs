//! Where a page's packets go (sans-IO): what the caller sends is copied to
//! every listener that answered; what listeners send goes nowhere, and
//! nothing ever goes back to the caller. Packets from a host other than the
//! caller's are dropped (nobody else may speak into a page).
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Listeners one page may hold: each holds a port pair of the range.
pub const MAX_LISTENERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutError {
    /// `MAX_LISTENERS` (or the page's own cap) reached.
    Full,
}

#[derive(Debug, Default)]
pub struct Fanout {
    cap: usize,
    /// Per listener: where its device listens, once it answered.
    listeners: BTreeMap<usize, Option<SocketAddr>>,
    /// The hosts the caller may send from (its SDP's, its signalling's).
    caller_hosts: Vec<IpAddr>,
    /// Packets dropped because they came from anyone but the caller.
    pub dropped: u64,
}

impl Fanout {
    pub fn new(cap: usize, caller_hosts: Vec<IpAddr>) -> Self {
        Fanout { cap: cap.min(MAX_LISTENERS), caller_hosts, ..Default::default() }
    }

    /// A listener is being rung: it holds a place (and a port) already.
    pub fn add(&mut self, id: usize) -> Result<(), FanoutError> {
        if !self.listeners.contains_key(&id) && self.listeners.len() >= self.cap {
            return Err(FanoutError::Full);
        }
        self.listeners.entry(id).or_insert(None);
        Ok(())
    }

    /// It answered: from now on it gets the caller's packets at `to`.
    pub fn listen(&mut self, id: usize, to: SocketAddr) -> bool {
        match self.listeners.get_mut(&id) {
            Some(slot) => {
                *slot = Some(to);
                true
            }
            None => false,
        }
    }

    /// Where listener `id` gets the caller's packets, while it listens.
    pub fn target(&self, id: usize) -> Option<SocketAddr> {
        self.listeners.get(&id).copied().flatten()
    }

    pub fn remove(&mut self, id: usize) {
        self.listeners.remove(&id);
    }

    /// Listeners that get audio now.
    pub fn listening(&self) -> usize {
        self.listeners.values().filter(|l| l.is_some()).count()
    }

    /// It stopped taking audio (it holds the page: `sendonly`, `inactive`)
    /// but stays on it; [`Self::listen`] takes it back.
    pub fn pause(&mut self, id: usize) {
        if let Some(slot) = self.listeners.get_mut(&id) {
            *slot = None;
        }
    }

    /// Where a packet arriving at the caller's port from `from` goes; None
    /// when it is not the caller's (dropped, and no sign of life).
    pub fn from_caller(&mut self, from: SocketAddr) -> Option<Vec<(usize, SocketAddr)>> {
        if !self.caller_hosts.contains(&from.ip()) {
            self.dropped += 1;
            return None;
        }
        Some(self.listeners.iter().filter_map(|(id, to)| to.map(|to| (*id, to))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caller_packets_reach_every_answered_listener_and_only_them() {
        let mut f = Fanout::new(8, vec!["10.0.0.1".parse().unwrap()]);
        f.add(0).unwrap();
        f.add(1).unwrap();
        f.add(2).unwrap();
        assert_eq!(f.from_caller(addr("10.0.0.1:4000")), Some(vec![]), "nobody answered yet");
        assert!(f.listen(0, addr("10.0.0.2:5000")));
        assert!(f.listen(2, addr("10.0.0.3:5002")));
        assert_eq!(f.from_caller(addr("10.0.0.1:4000")), Some(vec![(0, addr("10.0.0.2:5000")), (2, addr("10.0.0.3:5002"))]));
        assert_eq!(f.listening(), 2);
        // Listener 2 holds: it gets nothing until it listens again.
        f.pause(2);
        assert_eq!(f.from_caller(addr("10.0.0.1:4000")), Some(vec![(0, addr("10.0.0.2:5000"))]));
        assert!(f.listen(2, addr("10.0.0.3:5004")));
        assert_eq!(f.listening(), 2);
    }

    #[test]
    fn a_listener_that_leaves_gets_nothing_more_and_the_others_go_on() {
        let mut f = Fanout::new(8, vec!["10.0.0.1".parse().unwrap()]);
        for id in 0..2 {
            f.add(id).unwrap();
            f.listen(id, SocketAddr::new("10.0.0.9".parse().unwrap(), 5000 + id as u16));
        }
        f.remove(0);
        assert_eq!(f.from_caller(addr("10.0.0.1:4000")), Some(vec![(1, addr("10.0.0.9:5001"))]));
        assert!(!f.listen(0, addr("10.0.0.9:5000")), "a removed listener cannot come back by answering late");
    }

    #[test]
    fn packets_from_anyone_but_the_caller_are_dropped() {
        let mut f = Fanout::new(8, vec!["10.0.0.1".parse().unwrap()]);
        f.add(0).unwrap();
        f.listen(0, addr("10.0.0.2:5000"));
        assert_eq!(f.from_caller(addr("10.6.6.6:4000")), None);
        assert_eq!(f.dropped, 1);
    }

    #[test]
    fn the_number_of_listeners_is_capped() {
        let mut f = Fanout::new(2, vec![]);
        f.add(0).unwrap();
        f.add(1).unwrap();
        assert_eq!(f.add(2), Err(FanoutError::Full));
        assert_eq!(f.add(1), Ok(()), "adding one again is no new place");
        let mut big = Fanout::new(1000, vec![]);
        for id in 0..MAX_LISTENERS {
            big.add(id).unwrap();
        }
        assert_eq!(big.add(MAX_LISTENERS), Err(FanoutError::Full), "never more than MAX_LISTENERS");
    }
}
