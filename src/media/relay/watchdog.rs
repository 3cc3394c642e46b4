//! Media timeout: a call whose RTP stopped in both directions for `timeout`
//! is dead (device crashed, network gone, BYE lost) and should be hung up.
//!
//! The clock is armed only once both legs have SDP, so a long ring does not
//! count as silence, and any new SDP restarts it (a 200 OK after silent early
//! media must not be a timeout on arrival). It is paused while the call is on
//! hold, where silence is legitimate. Sans-IO: time comes in as arguments.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Watchdog {
    timeout: Duration,
    enabled: bool,
    armed: bool,
    last_activity: Instant,
}

impl Watchdog {
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Watchdog { timeout, enabled: true, armed: false, last_activity: now }
    }

    /// Starts (or restarts) the silence clock: both legs have SDP now.
    pub fn arm(&mut self, now: Instant) {
        self.armed = true;
        self.last_activity = now;
    }

    /// Off while on hold. Coming back on restarts the clock, so a long hold
    /// is not mistaken for a dead call the moment it ends.
    pub fn set_enabled(&mut self, on: bool, now: Instant) {
        if on && !self.enabled {
            self.last_activity = now;
        }
        self.enabled = on;
    }

    /// An RTP packet was relayed, in either direction.
    pub fn on_media(&mut self, now: Instant) {
        if now > self.last_activity {
            self.last_activity = now;
        }
    }

    pub fn is_timed_out(&self, now: Instant) -> bool {
        self.enabled && self.armed && now.saturating_duration_since(self.last_activity) >= self.timeout
    }

    /// How often the shell should call [`Self::is_timed_out`]: fine enough
    /// for short test timeouts, at most once a second for real ones.
    pub fn check_period(&self) -> Duration {
        (self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}
