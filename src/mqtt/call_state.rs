//! Per-extension call state, sans-IO: fed with bus events, asked for the
//! state of an extension. It keeps the live calls (not one state per
//! extension) so that an extension in several calls at once is right after
//! any one of them ends.
use super::pbx::LiveCall;
use crate::events::PbxEvent;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Idle,
    Ringing,
    Dialing,
    InCall,
    /// An answered call that one party put on hold.
    OnHold,
}

impl CallState {
    pub const ALL: [&'static str; 5] = ["idle", "ringing", "dialing", "in_call", "on_hold"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub caller: String,
    pub callee: String,
    pub answered: bool,
    pub held: bool,
    /// Order of first sight: the oldest call decides what is shown.
    pub seq: u64,
}

/// What an extension shows: the state and the call that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtCallView {
    pub state: CallState,
    /// Some call is ringing *at* this extension (also while in another call).
    pub ringing: bool,
    pub calls: usize,
    pub call_id: Option<String>,
    pub peer: Option<String>,
    pub direction: Option<Direction>,
}

#[derive(Debug, Default)]
pub struct CallStates {
    calls: HashMap<String, Call>,
    next_seq: u64,
}

impl CallStates {
    /// Apply one event; returns the extensions whose view may have changed.
    pub fn apply(&mut self, event: &PbxEvent) -> BTreeSet<String> {
        match event {
            PbxEvent::Ringing { call_id, caller, callee } => self.upsert(call_id, caller, callee, false),
            PbxEvent::Answered { call_id, caller, callee, .. } => self.upsert(call_id, caller, callee, true),
            PbxEvent::Ended { call_id, caller, callee, .. } => {
                self.calls.remove(call_id);
                parties(caller, callee)
            }
            PbxEvent::Hold { call_id, caller, callee, held, .. } => match self.calls.get_mut(call_id) {
                Some(c) => {
                    c.held = *held;
                    parties(caller, callee)
                }
                None => BTreeSet::new(),
            },
            // Missed is always followed by Ended; DTMF and registrations
            // change no call state.
            _ => BTreeSet::new(),
        }
    }

    fn upsert(&mut self, call_id: &str, caller: &str, callee: &str, answered: bool) -> BTreeSet<String> {
        let seq = self.next_seq;
        let call = self.calls.entry(call_id.to_string()).or_insert_with(|| Call {
            caller: caller.to_string(),
            callee: callee.to_string(),
            answered: false,
            held: false,
            seq,
        });
        if call.seq == seq {
            self.next_seq += 1;
        }
        // A late Ringing never takes an answered call back.
        call.answered |= answered;
        parties(caller, callee)
    }

    /// Make the model match the call registry: calls it no longer has are
    /// dropped (a lost Ended must not leave a phone "in call" forever); with
    /// `add_missing`, calls we never heard of are added (after the bus lagged).
    pub fn reconcile(&mut self, live: &[LiveCall], add_missing: bool) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        self.calls.retain(|id, c| {
            let keep = live.iter().any(|l| &l.call_id == id);
            if !keep {
                changed.insert(c.caller.clone());
                changed.insert(c.callee.clone());
            }
            keep
        });
        if add_missing {
            for l in live {
                let before = self.calls.get(&l.call_id).cloned();
                self.upsert(&l.call_id, &l.caller, &l.callee, l.answered);
                if before.as_ref() != self.calls.get(&l.call_id) {
                    changed.extend(parties(&l.caller, &l.callee));
                }
            }
        }
        changed
    }

    pub fn call(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
    }

    /// When a call was first seen (for choosing the oldest among several).
    pub fn seq_of(&self, call_id: &str) -> Option<u64> {
        self.calls.get(call_id).map(|c| c.seq)
    }

    pub fn active(&self) -> usize {
        self.calls.len()
    }

    pub fn view(&self, ext: &str) -> ExtCallView {
        let mut mine: Vec<(&String, &Call)> =
            self.calls.iter().filter(|(_, c)| c.caller == ext || c.callee == ext).collect();
        mine.sort_by_key(|(_, c)| c.seq);
        let inbound_ringing = |c: &Call| !c.answered && c.callee == ext;
        let pick = mine
            .iter()
            .find(|(_, c)| c.answered)
            .map(|x| (if x.1.held { CallState::OnHold } else { CallState::InCall }, *x))
            .or_else(|| mine.iter().find(|(_, c)| inbound_ringing(c)).map(|x| (CallState::Ringing, *x)))
            .or_else(|| mine.first().map(|x| (CallState::Dialing, *x)));
        let (state, call_id, peer, direction) = match pick {
            None => (CallState::Idle, None, None, None),
            Some((state, (id, c))) => {
                // A call to oneself counts as inbound: that side is the one ringing.
                let (peer, dir) =
                    if c.callee == ext { (&c.caller, Direction::Inbound) } else { (&c.callee, Direction::Outbound) };
                (state, Some(id.to_string()), Some(peer.clone()), Some(dir))
            }
        };
        ExtCallView { state, ringing: mine.iter().any(|(_, c)| inbound_ringing(c)), calls: mine.len(), call_id, peer, direction }
    }
}

fn parties(caller: &str, callee: &str) -> BTreeSet<String> {
    [caller.to_string(), callee.to_string()].into_iter().collect()
}

#[cfg(test)]
#[path = "call_state_tests.rs"]
mod tests;
