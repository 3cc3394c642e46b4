//! OPTIONS keep-alive toward a trunk, sans-IO: the time (ms) and each
//! probe's outcome in; "probe now" and the trunk's reachability out. Any
//! answer, even an error status, means the provider is there (`up`); two
//! probes in a row without one mean `down`. Probes go every `interval`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone)]
pub struct KeepAlive {
    interval_ms: u64,
    due: Option<u64>,
    misses: u32,
    reach: Reach,
}

impl KeepAlive {
    /// The first probe goes at `now_ms`.
    pub fn new(interval_ms: u64, now_ms: u64) -> Self {
        KeepAlive { interval_ms: interval_ms.max(1000), due: Some(now_ms), misses: 0, reach: Reach::Unknown }
    }

    /// True: send an OPTIONS now (none is out until its outcome).
    pub fn poll(&mut self, now_ms: u64) -> bool {
        match self.due {
            Some(at) if now_ms >= at => {
                self.due = None;
                true
            }
            _ => false,
        }
    }

    pub fn next_wake(&self) -> Option<u64> {
        self.due
    }

    /// How long a probe may wait for its answer.
    pub fn probe_timeout_ms(&self) -> u64 {
        self.interval_ms.min(5_000)
    }

    /// A probe's outcome: `answered` is any response at all. Returns the
    /// new reachability when it changed.
    pub fn on_outcome(&mut self, now_ms: u64, answered: bool) -> Option<Reach> {
        let before = self.reach;
        if answered {
            self.misses = 0;
            self.reach = Reach::Up;
        } else {
            self.misses = self.misses.saturating_add(1);
            if self.misses >= 2 || self.reach == Reach::Unknown {
                self.reach = Reach::Down;
            }
        }
        self.due = Some(now_ms + self.interval_ms);
        (self.reach != before).then_some(self.reach)
    }

    pub fn reach(&self) -> Reach {
        self.reach
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_on_the_interval_one_at_a_time() {
        let mut k = KeepAlive::new(30_000, 0);
        assert!(k.poll(0));
        assert!(!k.poll(100_000), "the first probe is still out");
        assert_eq!(k.on_outcome(40, true), Some(Reach::Up));
        assert_eq!(k.next_wake(), Some(30_040));
        assert!(!k.poll(30_039));
        assert!(k.poll(30_040));
        assert_eq!(k.on_outcome(30_050, true), None, "still up: no change reported");
    }

    #[test]
    fn one_lost_probe_is_not_down_two_are() {
        let mut k = KeepAlive::new(10_000, 0);
        k.poll(0);
        k.on_outcome(0, true);
        k.poll(10_000);
        assert_eq!(k.on_outcome(15_000, false), None);
        assert_eq!(k.reach(), Reach::Up);
        k.poll(25_000);
        assert_eq!(k.on_outcome(30_000, false), Some(Reach::Down));
        k.poll(40_000);
        assert_eq!(k.on_outcome(40_010, true), Some(Reach::Up), "any answer brings it back");
    }

    #[test]
    fn never_answered_is_down_at_once() {
        let mut k = KeepAlive::new(2_000, 0);
        k.poll(0);
        assert_eq!(k.on_outcome(2_000, false), Some(Reach::Down));
        assert_eq!(k.probe_timeout_ms(), 2_000);
        assert_eq!(KeepAlive::new(60_000, 0).probe_timeout_ms(), 5_000);
    }
}
