//! The call between a caller leg and the forks that ring the callee's devices,
//! as a sans-IO state machine: inputs are what the legs report, outputs are
//! what the glue in `call.rs` must do. Every timing decision (ring timeout,
//! media timeout) arrives as an input, so tests need no clock.
use crate::events::EndReason;

pub type ForkId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A fork sent 180/183; `has_sdp` when it carries early media.
    ForkProgress { fork: ForkId, has_sdp: bool },
    ForkAnswered { fork: ForkId },
    /// Final non-2xx, transport error (status 503) or timeout (408).
    ForkFailed { fork: ForkId, status: u16 },
    CallerCancelled,
    CallerHangup,
    CalleeHangup,
    RingTimeout,
    MediaTimeout,
    /// Hang up from outside (HA, the API): both legs go, whatever the phase.
    Terminate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 180 to the caller, or 183 with this fork's SDP (early media).
    Ringing { early_media_from: Option<ForkId> },
    /// 200 to the caller with this fork's answer.
    AnswerCaller { fork: ForkId },
    CancelFork(ForkId),
    ByeFork(ForkId),
    RejectCaller(u16),
    ByeCaller,
    Event(CallEvent),
    /// Nothing more will happen: release media, forget the call.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    Ringing,
    Answered,
    Missed,
    Ended { reason: EndReason, answered: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fork {
    Trying,
    Early,
    Failed(u16),
    Cancelled,
    Won,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered(ForkId),
    Ended,
}

#[derive(Debug)]
pub struct CallMachine {
    forks: Vec<Fork>,
    phase: Phase,
    ringing_sent: bool,
    early_media: Option<ForkId>,
}

impl CallMachine {
    /// A call ringing `forks` devices at once.
    pub fn new(forks: usize) -> Self {
        CallMachine { forks: vec![Fork::Trying; forks], phase: Phase::Ringing, ringing_sent: false, early_media: None }
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn winner(&self) -> Option<ForkId> {
        match self.phase {
            Phase::Answered(f) => Some(f),
            _ => None,
        }
    }

    pub fn on(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.phase, input) {
            (Phase::Ended, _) => {}
            (Phase::Ringing, Input::ForkProgress { fork, has_sdp }) => {
                if self.forks.get(fork) == Some(&Fork::Trying) {
                    self.forks[fork] = Fork::Early;
                }
                if !self.ringing_sent {
                    out.push(Action::Event(CallEvent::Ringing));
                }
                // Early media from the first fork that offers it; a plain 180
                // is sent once.
                if has_sdp && self.early_media.is_none() {
                    self.early_media = Some(fork);
                    out.push(Action::Ringing { early_media_from: Some(fork) });
                } else if !self.ringing_sent {
                    out.push(Action::Ringing { early_media_from: None });
                }
                self.ringing_sent = true;
            }
            (Phase::Ringing, Input::ForkAnswered { fork }) if fork < self.forks.len() => {
                self.forks[fork] = Fork::Won;
                self.phase = Phase::Answered(fork);
                out.push(Action::AnswerCaller { fork });
                for (i, f) in self.forks.iter_mut().enumerate() {
                    if matches!(f, Fork::Trying | Fork::Early) {
                        *f = Fork::Cancelled;
                        out.push(Action::CancelFork(i));
                    }
                }
                out.push(Action::Event(CallEvent::Answered));
            }
            // A second 2xx after another fork won (the CANCEL crossed it).
            (Phase::Answered(w), Input::ForkAnswered { fork }) if fork != w => out.push(Action::ByeFork(fork)),
            (Phase::Ringing, Input::ForkFailed { fork, status }) => {
                if let Some(f) = self.forks.get_mut(fork)
                    && matches!(f, Fork::Trying | Fork::Early) {
                        *f = Fork::Failed(status);
                    }
                if self.forks.iter().all(|f| matches!(f, Fork::Failed(_) | Fork::Cancelled)) {
                    let status = self.best_failure();
                    out.push(Action::RejectCaller(status));
                    self.end(&mut out, reason_for_status(status), false);
                }
            }
            (Phase::Ringing, Input::CallerCancelled) => {
                self.cancel_all(&mut out);
                self.end(&mut out, EndReason::Cancelled, false);
            }
            (Phase::Ringing, Input::RingTimeout) => {
                self.cancel_all(&mut out);
                out.push(Action::RejectCaller(480));
                self.end(&mut out, EndReason::NoAnswer, false);
            }
            (Phase::Answered(w), Input::CallerHangup) => {
                out.push(Action::ByeFork(w));
                self.end(&mut out, EndReason::CallerHangup, true);
            }
            (Phase::Answered(_), Input::CalleeHangup) => {
                out.push(Action::ByeCaller);
                self.end(&mut out, EndReason::CalleeHangup, true);
            }
            (Phase::Answered(w), Input::MediaTimeout) => {
                out.push(Action::ByeCaller);
                out.push(Action::ByeFork(w));
                self.end(&mut out, EndReason::MediaTimeout, true);
            }
            (Phase::Ringing, Input::Terminate) => {
                self.cancel_all(&mut out);
                out.push(Action::RejectCaller(603));
                self.end(&mut out, EndReason::Terminated, false);
            }
            (Phase::Answered(w), Input::Terminate) => {
                out.push(Action::ByeCaller);
                out.push(Action::ByeFork(w));
                self.end(&mut out, EndReason::Terminated, true);
            }
            // Caller BYE before answer (allowed after a 2xx raced it) ends it too.
            (Phase::Ringing, Input::CallerHangup) => {
                self.cancel_all(&mut out);
                self.end(&mut out, EndReason::Cancelled, false);
            }
            // Late provisional responses after a 200, failures of forks we
            // cancelled, and other inputs that no longer matter are ignored.
            _ => {}
        }
        out
    }

    fn cancel_all(&mut self, out: &mut Vec<Action>) {
        for (i, f) in self.forks.iter_mut().enumerate() {
            if matches!(f, Fork::Trying | Fork::Early) {
                *f = Fork::Cancelled;
                out.push(Action::CancelFork(i));
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Action>, reason: EndReason, answered: bool) {
        if !answered {
            out.push(Action::Event(CallEvent::Missed));
        }
        out.push(Action::Event(CallEvent::Ended { reason, answered }));
        out.push(Action::Finished);
        self.phase = Phase::Ended;
    }

    /// RFC 3261 §16.7-style choice among the forks' failures: a 6xx or busy
    /// wins (the person said no), then "temporarily unavailable", else the first.
    fn best_failure(&self) -> u16 {
        let codes: Vec<u16> = self.forks.iter().filter_map(|f| if let Fork::Failed(c) = f { Some(*c) } else { None }).collect();
        if let Some(c) = codes.iter().find(|c| **c >= 600) {
            return *c;
        }
        if codes.contains(&486) {
            return 486;
        }
        if codes.iter().all(|c| matches!(c, 408 | 480 | 503)) {
            return 480;
        }
        codes.iter().copied().find(|c| !matches!(c, 408 | 480 | 503)).unwrap_or(480)
    }
}

fn reason_for_status(status: u16) -> EndReason {
    match status {
        486 | 600 => EndReason::Busy,
        603 => EndReason::Rejected,
        404 | 604 => EndReason::NotFound,
        408 | 480 | 503 => EndReason::Unavailable,
        _ => EndReason::Failed,
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
