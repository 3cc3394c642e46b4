//! A ring group's ringing strategy (sans-IO): which members ring when.
//! Time is the call's age (`Duration` since the group started ringing); the
//! driver asks for the next deadline, and reports it back with `on_time`.
//!
//! `Ringall` rings every member with a registered device at once until
//! `ring_secs`. `Hunt` rings them one after the other in the listed order,
//! each for `ring_secs / n` (n: members with a device), the last until
//! `ring_secs` is up; a member whose devices all refuse (busy, declined,
//! gone) is passed over at once. When nobody is left, or the time is up, the
//! group is `Exhausted`: the driver rings the fallback or gives up.
use crate::config::GroupStrategy;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// INVITE every device of member `n` (its index in the list).
    Ring(usize),
    /// CANCEL member `n`'s ringing devices: its turn is over.
    Stop(usize),
    /// Nobody answered: `timed_out` when `ring_secs` ran out, else every
    /// member rung refused (or none could be rung).
    Exhausted { timed_out: bool },
}

#[derive(Debug)]
pub struct GroupRinger {
    strategy: GroupStrategy,
    /// Per member: it has a device to ring.
    reachable: Vec<bool>,
    total: Duration,
    slot: Duration,
    /// Hunt: the member ringing now, and when its turn ends.
    current: Option<usize>,
    turn_ends: Duration,
    done: bool,
}

impl GroupRinger {
    pub fn new(strategy: GroupStrategy, reachable: Vec<bool>, total: Duration) -> Self {
        let n = reachable.iter().filter(|r| **r).count().max(1) as u32;
        GroupRinger { strategy, reachable, total, slot: total / n, current: None, turn_ends: Duration::ZERO, done: false }
    }

    /// The first steps, at time zero.
    pub fn start(&mut self) -> Vec<Step> {
        match self.strategy {
            GroupStrategy::Ringall => {
                let ring: Vec<Step> = (0..self.reachable.len()).filter(|i| self.reachable[*i]).map(Step::Ring).collect();
                if ring.is_empty() { self.exhaust(false) } else { ring }
            }
            GroupStrategy::Hunt => self.next_member(Duration::ZERO),
        }
    }

    /// When `on_time` has something to do; None once exhausted.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.done {
            return None;
        }
        Some(match self.strategy {
            GroupStrategy::Ringall => self.total,
            GroupStrategy::Hunt => self.turn_ends.min(self.total),
        })
    }

    pub fn on_time(&mut self, now: Duration) -> Vec<Step> {
        match self.next_deadline() {
            Some(at) if now >= at => {}
            _ => return Vec::new(),
        }
        let mut out: Vec<Step> = self.current.map(Step::Stop).into_iter().collect();
        if now >= self.total {
            out.extend(self.exhaust(true));
        } else {
            out.extend(self.next_member(now));
        }
        out
    }

    /// Every device rung so far refused.
    pub fn on_all_failed(&mut self, now: Duration) -> Vec<Step> {
        if self.done {
            return Vec::new();
        }
        match self.strategy {
            GroupStrategy::Ringall => self.exhaust(false),
            GroupStrategy::Hunt => self.next_member(now),
        }
    }

    fn next_member(&mut self, now: Duration) -> Vec<Step> {
        let from = self.current.map_or(0, |c| c + 1);
        let Some(next) = (from..self.reachable.len()).find(|i| self.reachable[*i]) else {
            return self.exhaust(false);
        };
        let last = !(next + 1..self.reachable.len()).any(|i| self.reachable[i]);
        self.current = Some(next);
        self.turn_ends = if last { self.total } else { (now + self.slot).min(self.total) };
        vec![Step::Ring(next)]
    }

    fn exhaust(&mut self, timed_out: bool) -> Vec<Step> {
        self.done = true;
        self.current = None;
        vec![Step::Exhausted { timed_out }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GroupStrategy::*;
    use Step::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ringall_rings_every_reachable_member_until_ring_secs() {
        let mut g = GroupRinger::new(Ringall, vec![true, false, true], secs(30));
        assert_eq!(g.start(), vec![Ring(0), Ring(2)]);
        assert_eq!(g.next_deadline(), Some(secs(30)));
        assert!(g.on_time(secs(29)).is_empty());
        assert_eq!(g.on_time(secs(30)), vec![Exhausted { timed_out: true }]);
        assert_eq!(g.next_deadline(), None);
        assert!(g.on_time(secs(40)).is_empty());
    }

    #[test]
    fn ringall_gives_up_when_everyone_refuses_or_nobody_is_reachable() {
        let mut g = GroupRinger::new(Ringall, vec![true, true], secs(30));
        g.start();
        assert_eq!(g.on_all_failed(secs(2)), vec![Exhausted { timed_out: false }]);
        assert!(g.on_all_failed(secs(3)).is_empty());
        let mut none = GroupRinger::new(Ringall, vec![false, false], secs(30));
        assert_eq!(none.start(), vec![Exhausted { timed_out: false }]);
    }

    #[test]
    fn hunt_rings_in_turn_each_for_its_share() {
        let mut g = GroupRinger::new(Hunt, vec![true, true, true], secs(30));
        assert_eq!(g.start(), vec![Ring(0)]);
        assert_eq!(g.next_deadline(), Some(secs(10)));
        assert!(g.on_time(secs(9)).is_empty());
        assert_eq!(g.on_time(secs(10)), vec![Stop(0), Ring(1)]);
        assert_eq!(g.next_deadline(), Some(secs(20)));
        assert_eq!(g.on_time(secs(20)), vec![Stop(1), Ring(2)]);
        assert_eq!(g.next_deadline(), Some(secs(30)));
        assert_eq!(g.on_time(secs(30)), vec![Stop(2), Exhausted { timed_out: true }]);
    }

    #[test]
    fn hunt_passes_over_unreachable_and_refusing_members_and_the_last_rings_to_the_end() {
        let mut g = GroupRinger::new(Hunt, vec![false, true, true], secs(30));
        // Two reachable members: 15 s each.
        assert_eq!(g.start(), vec![Ring(1)]);
        assert_eq!(g.next_deadline(), Some(secs(15)));
        // Member 1 is busy at 2 s: member 2 (the last) rings until 30 s.
        assert_eq!(g.on_all_failed(secs(2)), vec![Ring(2)]);
        assert_eq!(g.next_deadline(), Some(secs(30)));
        assert_eq!(g.on_all_failed(secs(5)), vec![Exhausted { timed_out: false }]);
        assert_eq!(g.next_deadline(), None);
    }

    #[test]
    fn hunt_with_nobody_reachable_is_exhausted_at_once() {
        let mut g = GroupRinger::new(Hunt, vec![false], secs(30));
        assert_eq!(g.start(), vec![Exhausted { timed_out: false }]);
    }
}
