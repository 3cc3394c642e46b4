//! The call between a caller leg and the forks that ring the callee's devices,
//! as a sans-IO state machine: inputs are what the legs report, outputs are
//! what the glue in `call.rs` must do. Every timing decision (ring timeout,
//! media timeout, when to hand over to the agent) arrives as an input, so
//! tests need no clock.
//!
//! Forks are numbered over the whole call: the first ring, the agent rung
//! after a handoff and a transfer's target get the next numbers in turn.
//!
//! Events: `Ringing` once the INVITE has gone to the callee's devices (a
//! device that answers without a 180 was still rung), always before
//! `Answered`, which comes once the caller has the answer; one `Ended`
//! (with `Missed` before it when the call never connected) per callee.
use crate::events::EndReason;

pub type ForkId = usize;

/// A party of an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Caller,
    Callee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// INVITEs went to `forks` more devices of the callee (the next fork
    /// numbers): the call is offered, `Ringing` is published.
    Offered { forks: usize },
    /// A fork sent 180/183; `has_sdp` when it carries early media.
    ForkProgress { fork: ForkId, has_sdp: bool },
    ForkAnswered { fork: ForkId },
    /// The glue carried out `AnswerCaller`: the caller has the answer.
    Connected { fork: ForkId },
    /// The glue could not use the fork's answer (no usable SDP): both legs
    /// go, and the call ends unanswered.
    AnswerUnusable { fork: ForkId },
    /// Final non-2xx, transport error (status 503) or timeout (408).
    ForkFailed { fork: ForkId, status: u16 },
    CallerCancelled,
    CallerHangup,
    CalleeHangup,
    RingTimeout,
    MediaTimeout,
    /// Hang up from outside (HA, the API): both legs go, whatever the phase.
    Terminate,
    /// Nobody answered in time: stop the ringing forks, ring the agent on
    /// `forks` new forks (the callee stays who it was: no new `Ringing`).
    HandOff { forks: usize },
    /// More forks may still be offered (a ring group's next members, its
    /// fallback): while `more`, forks that all refuse give `AllRefused`
    /// instead of ending the call. `more: false` when every fork so far
    /// refused ends it with their best failure.
    Expecting { more: bool },
    /// CANCEL a ringing fork without ending the call (a hunt group's member
    /// whose turn is over).
    StopFork { fork: ForkId },
    /// Blind transfer of the answered call: `leaving` is hung up and its
    /// part of the call ends (`Ended`, reason transferred). The call rings
    /// again: the glue names the new callee, then says `Offered`.
    Transfer { leaving: Party },
    /// Park: as `Transfer`, but the leaving party is not hung up here (the
    /// glue ends its leg after telling it the park worked). Nothing rings
    /// until the glue says `Offered` (a ring-back) or `HandOff` (a retrieve).
    Park { leaving: Party },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 180 to the caller, or 183 with this fork's SDP (early media).
    Ringing { early_media_from: Option<ForkId> },
    /// 200 to the caller with this fork's answer; the glue reports back
    /// `Connected` or `AnswerUnusable`.
    AnswerCaller { fork: ForkId },
    CancelFork(ForkId),
    ByeFork(ForkId),
    RejectCaller(u16),
    /// Every fork of this round refused while more were expected: the glue
    /// decides what rings next (then `Offered`, `HandOff` or `Expecting`).
    AllRefused,
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
    /// A fork of an earlier round (before a handoff or transfer) or one
    /// that left by transfer: nothing it reports matters any more.
    Gone,
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
    /// `Ringing` published for the current callee.
    offered: bool,
    /// 180 (or 183) sent to the caller.
    caller_told: bool,
    early_media: Option<ForkId>,
    /// `Expecting { more: true }` in force.
    more_coming: bool,
}

impl Default for CallMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl CallMachine {
    /// A call with no fork yet: `Offered` starts the ringing.
    pub fn new() -> Self {
        CallMachine { forks: Vec::new(), phase: Phase::Ringing, offered: false, caller_told: false, early_media: None, more_coming: false }
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn is_ringing(&self) -> bool {
        self.phase == Phase::Ringing
    }

    pub fn winner(&self) -> Option<ForkId> {
        match self.phase {
            Phase::Answered(f) => Some(f),
            _ => None,
        }
    }

    /// How many forks the call has had; the next one gets this number.
    pub fn fork_count(&self) -> usize {
        self.forks.len()
    }

    /// The forks of the current round (the ones that may still report):
    /// every fork not `Gone`.
    pub fn current_forks(&self) -> impl Iterator<Item = ForkId> + '_ {
        self.forks.iter().enumerate().filter(|(_, f)| **f != Fork::Gone).map(|(i, _)| i)
    }

    /// The forks still ringing while the call rings: not refused, not
    /// cancelled (a hunt member whose turn is over), not of an earlier round.
    pub fn ringing_forks(&self) -> impl Iterator<Item = ForkId> + '_ {
        let ringing = self.phase == Phase::Ringing;
        self.forks.iter().enumerate().filter(move |(_, f)| ringing && matches!(f, Fork::Trying | Fork::Early)).map(|(i, _)| i)
    }

    pub fn is_current(&self, fork: ForkId) -> bool {
        self.forks.get(fork).is_some_and(|f| *f != Fork::Gone)
    }

    pub fn on(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.phase, input) {
            (Phase::Ended, _) => {}
            (Phase::Ringing, Input::Offered { forks }) => {
                self.forks.extend(std::iter::repeat_n(Fork::Trying, forks));
                self.offer(&mut out);
            }
            (_, Input::ForkProgress { fork, .. } | Input::ForkAnswered { fork } | Input::ForkFailed { fork, .. })
                if matches!(self.forks.get(fork), None | Some(Fork::Gone)) => {}
            (Phase::Ringing, Input::ForkProgress { fork, has_sdp }) => {
                if self.forks[fork] == Fork::Trying {
                    self.forks[fork] = Fork::Early;
                }
                self.offer(&mut out);
                // Early media from the first fork that offers it; a plain 180
                // is sent once.
                if has_sdp && self.early_media.is_none() {
                    self.early_media = Some(fork);
                    out.push(Action::Ringing { early_media_from: Some(fork) });
                } else if !self.caller_told {
                    out.push(Action::Ringing { early_media_from: None });
                }
                self.caller_told = true;
            }
            (Phase::Ringing, Input::ForkAnswered { fork }) if matches!(self.forks[fork], Fork::Trying | Fork::Early) => {
                // Answered without a 180 (an intercom, the agent, auto-answer):
                // it was still offered first.
                self.offer(&mut out);
                self.forks[fork] = Fork::Won;
                self.phase = Phase::Answered(fork);
                out.push(Action::AnswerCaller { fork });
                self.cancel_ringing(&mut out);
            }
            (Phase::Answered(w), Input::Connected { fork }) if w == fork => out.push(Action::Event(CallEvent::Answered)),
            (Phase::Answered(w), Input::AnswerUnusable { fork }) if w == fork => {
                out.push(Action::RejectCaller(488));
                out.push(Action::ByeFork(w));
                self.end(&mut out, EndReason::Failed, false);
            }
            // A 2xx from a fork we had cancelled (the CANCEL crossed it), or
            // after another fork won.
            (Phase::Ringing | Phase::Answered(_), Input::ForkAnswered { fork }) if self.winner() != Some(fork) => {
                out.push(Action::ByeFork(fork));
            }
            (Phase::Ringing, Input::ForkFailed { fork, status }) => {
                if matches!(self.forks[fork], Fork::Trying | Fork::Early) {
                    self.forks[fork] = Fork::Failed(status);
                }
                if self.all_refused() {
                    if self.more_coming {
                        out.push(Action::AllRefused);
                    } else {
                        self.reject_refused(&mut out);
                    }
                }
            }
            (Phase::Ringing, Input::Expecting { more }) => {
                self.more_coming = more;
                if !more && self.all_refused() {
                    self.reject_refused(&mut out);
                }
            }
            (Phase::Ringing, Input::StopFork { fork }) => {
                if let Some(f @ (Fork::Trying | Fork::Early)) = self.forks.get_mut(fork) {
                    *f = Fork::Cancelled;
                    out.push(Action::CancelFork(fork));
                }
            }
            (Phase::Ringing, Input::CallerCancelled) => {
                self.cancel_ringing(&mut out);
                self.end(&mut out, EndReason::Cancelled, false);
            }
            (Phase::Ringing, Input::RingTimeout) => {
                self.cancel_ringing(&mut out);
                out.push(Action::RejectCaller(480));
                self.end(&mut out, EndReason::NoAnswer, false);
            }
            (Phase::Ringing, Input::HandOff { forks }) => {
                self.cancel_ringing(&mut out);
                self.next_round();
                self.more_coming = false;
                self.forks.extend(std::iter::repeat_n(Fork::Trying, forks));
                // The agent may bring early media of its own.
                self.early_media = None;
            }
            (Phase::Answered(w), Input::Transfer { leaving } | Input::Park { leaving }) => {
                if matches!(input, Input::Transfer { .. }) {
                    out.push(match leaving {
                        Party::Caller => Action::ByeCaller,
                        Party::Callee => Action::ByeFork(w),
                    });
                }
                out.push(Action::Event(CallEvent::Ended { reason: EndReason::Transferred, answered: true }));
                self.next_round();
                self.phase = Phase::Ringing;
                self.offered = false;
                // The caller (whoever stays) has its answer already.
                self.caller_told = true;
                self.early_media = None;
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
                self.cancel_ringing(&mut out);
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
                self.cancel_ringing(&mut out);
                self.end(&mut out, EndReason::Cancelled, false);
            }
            // Late provisional responses after a 200, failures of forks we
            // cancelled, and other inputs that no longer matter are ignored.
            _ => {}
        }
        out
    }

    /// The failure of the fork started last (a call out's failover decides by it).
    pub fn last_failure(&self) -> Option<u16> {
        match self.forks.last() {
            Some(Fork::Failed(status)) => Some(*status),
            _ => None,
        }
    }

    /// The round has forks and every one failed or was cancelled.
    fn all_refused(&self) -> bool {
        let mut round = self.forks.iter().filter(|f| **f != Fork::Gone).peekable();
        round.peek().is_some() && round.all(|f| matches!(f, Fork::Failed(_) | Fork::Cancelled))
    }

    fn reject_refused(&mut self, out: &mut Vec<Action>) {
        let status = self.best_failure();
        out.push(Action::RejectCaller(status));
        self.end(out, reason_for_status(status), false);
    }

    /// `Ringing` once per callee, before anything else about it.
    fn offer(&mut self, out: &mut Vec<Action>) {
        if !self.offered {
            self.offered = true;
            out.push(Action::Event(CallEvent::Ringing));
        }
    }

    fn cancel_ringing(&mut self, out: &mut Vec<Action>) {
        for (i, f) in self.forks.iter_mut().enumerate() {
            if matches!(f, Fork::Trying | Fork::Early) {
                *f = Fork::Cancelled;
                out.push(Action::CancelFork(i));
            }
        }
    }

    /// Every fork so far is out of the call; new ones start a round.
    fn next_round(&mut self) {
        self.forks.iter_mut().for_each(|f| *f = Fork::Gone);
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
