//! One trunk's outbound registration as a sans-IO state machine: the time
//! (milliseconds on any monotonic clock) and each REGISTER's outcome go in;
//! out come "send a REGISTER asking for N seconds now" and when to wake.
//!
//! A 200 grants `expires`; the refresh goes out well before it runs out. A
//! failure (wrong password, timeout, refusal) is retried after a back-off
//! that doubles from 30 s to 10 minutes, so a wrong password never becomes a
//! loop; a 423 is retried once at once with the provider's Min-Expires.

const FIRST_RETRY_MS: u64 = 30_000;
const MAX_RETRY_MS: u64 = 600_000;

/// What became of one REGISTER (after rsipstack answered any 401/407).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx, with the lifetime the registrar granted.
    Registered { granted_secs: u32 },
    /// A final non-2xx: `Min-Expires` comes with a 423.
    Refused { code: u16, reason: String, min_expires: Option<u32> },
    /// No answer, DNS or transport failure.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A REGISTER is due at this time.
    Due(u64),
    /// A REGISTER is out; its outcome is awaited.
    Sending,
    /// Shutting down: no more REGISTERs.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct RegMachine {
    phase: Phase,
    /// What we ask for (raised by a 423's Min-Expires).
    ask_secs: u32,
    /// Registered until this time, if ever.
    until: Option<u64>,
    failures: u32,
    last_error: Option<String>,
    /// A 423 was just retried: another one backs off.
    retried_423: bool,
}

/// What `/health`, the log and Home Assistant show.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegStatus {
    /// `registered`, `registering` or `failed`.
    pub state: &'static str,
    pub last_error: Option<String>,
    /// Seconds until the registration runs out, while it holds.
    pub expires_in: Option<u64>,
    /// Seconds until the next REGISTER (refresh or retry).
    pub next_attempt_in: Option<u64>,
    pub failures: u32,
}

impl RegMachine {
    /// A machine that registers at once (`now_ms`).
    pub fn new(ask_secs: u32, now_ms: u64) -> Self {
        RegMachine { phase: Phase::Due(now_ms), ask_secs, until: None, failures: 0, last_error: None, retried_423: false }
    }

    /// `Some(expires)`: send a REGISTER asking for that many seconds now.
    pub fn poll(&mut self, now_ms: u64) -> Option<u32> {
        match self.phase {
            Phase::Due(at) if now_ms >= at => {
                self.phase = Phase::Sending;
                Some(self.ask_secs)
            }
            _ => None,
        }
    }

    /// When `poll` has something to do next (none while a REGISTER is out).
    pub fn next_wake(&self) -> Option<u64> {
        match self.phase {
            Phase::Due(at) => Some(at),
            Phase::Sending | Phase::Stopped => None,
        }
    }

    /// ha-pbx is stopping: whether to un-REGISTER (Expires: 0), which is
    /// when the provider holds a registration of ours or may (a REGISTER
    /// was out). Nothing is sent afterwards, whatever `on_outcome` hears.
    pub fn stop(&mut self, now_ms: u64) -> bool {
        let unregister = self.is_registered(now_ms) || self.phase == Phase::Sending;
        self.phase = Phase::Stopped;
        self.until = None;
        unregister
    }

    /// The network changed or the provider forgot us: register again now.
    pub fn restart(&mut self, now_ms: u64) {
        if matches!(self.phase, Phase::Due(_)) {
            self.phase = Phase::Due(now_ms);
        }
    }

    pub fn is_registered(&self, now_ms: u64) -> bool {
        self.until.is_some_and(|u| now_ms < u)
    }

    pub fn on_outcome(&mut self, now_ms: u64, outcome: Outcome) {
        if self.phase == Phase::Stopped {
            return;
        }
        match outcome {
            Outcome::Registered { granted_secs } => {
                let granted_ms = u64::from(granted_secs.max(1)) * 1000;
                self.until = Some(now_ms + granted_ms);
                self.failures = 0;
                self.last_error = None;
                self.retried_423 = false;
                self.phase = Phase::Due(now_ms + refresh_after_ms(granted_ms));
            }
            Outcome::Refused { code: 423, min_expires: Some(min), reason } if !self.retried_423 && min > self.ask_secs && min <= 86_400 => {
                self.ask_secs = min;
                self.retried_423 = true;
                self.last_error = Some(format!("423 {reason}: asking for {min} s"));
                self.phase = Phase::Due(now_ms);
            }
            Outcome::Refused { code, reason, .. } => self.fail(now_ms, format!("{code} {reason}")),
            Outcome::Failed(e) => self.fail(now_ms, e),
        }
    }

    fn fail(&mut self, now_ms: u64, error: String) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(error);
        let retry = if let Some(until) = self.until.filter(|u| *u > now_ms) {
            // Still registered: retry sooner than the back-off if it runs out first.
            backoff_ms(self.failures).min(((until - now_ms) / 2).max(1000))
        } else {
            backoff_ms(self.failures)
        };
        self.phase = Phase::Due(now_ms + retry);
    }

    pub fn status(&self, now_ms: u64) -> RegStatus {
        let registered = self.is_registered(now_ms);
        let state = if registered {
            "registered"
        } else if self.failures > 0 {
            "failed"
        } else {
            "registering"
        };
        RegStatus {
            state,
            last_error: self.last_error.clone(),
            expires_in: self.until.filter(|_| registered).map(|u| (u - now_ms) / 1000),
            next_attempt_in: self.next_wake().map(|at| at.saturating_sub(now_ms) / 1000),
            failures: self.failures,
        }
    }
}

/// Refresh at half the lifetime for short ones, a minute early for long ones.
fn refresh_after_ms(granted_ms: u64) -> u64 {
    if granted_ms > 120_000 { granted_ms - 60_000 } else { (granted_ms / 2).max(1000) }
}

/// 30 s, 60 s, 120 s, ... up to 10 minutes.
fn backoff_ms(failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(10);
    (FIRST_RETRY_MS << shift).min(MAX_RETRY_MS)
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
