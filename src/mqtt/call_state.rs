//! Per-extension call state, sans-IO: fed with bus events, asked for the
//! state of an extension. It keeps the live calls (not one state per
//! extension) so that an extension in several calls at once is right after
//! any one of them ends.
use super::pbx::LiveCall;
use crate::events::{EndReason, PbxEvent};
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
    /// The ring group's member (or picker) that answered, when not the
    /// callee: it is in the call, standing for the number dialled.
    pub answered_by: Option<String>,
    /// The extensions besides the callee that the call rings now (a ring
    /// group's members); empty once answered.
    pub ringing: Vec<String>,
    /// Every member it has rung so far (each hears of it once).
    pub rung: BTreeSet<String>,
    /// Order of first sight: the oldest call decides what is shown.
    pub seq: u64,
}

impl Call {
    /// The extensions whose view this call decides: its parties, and while
    /// it rings the members it rings.
    pub fn extensions(&self) -> BTreeSet<String> {
        let mut out = parties(&self.caller, &self.callee);
        out.extend(self.answered_by.iter().cloned());
        out.extend(self.ringing.iter().cloned());
        out
    }

    /// Whether it rings at `ext` (the number dialled, or a member it rings).
    fn rings(&self, ext: &str) -> bool {
        !self.answered && (self.callee == ext || self.ringing.iter().any(|r| r == ext))
    }

    /// Whether `ext` is in it: a party, or rung.
    fn involves(&self, ext: &str) -> bool {
        self.caller == ext || self.callee == ext || self.answered_by.as_deref() == Some(ext) || self.rings(ext)
    }
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

/// A call parked on a slot: its parked party hears the park's hold audio,
/// in a call with the slot, until someone takes the call or it ends. The
/// parker's leg ends first (`Ended`, transferred), the call goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parking {
    party: String,
    slot: String,
    seq: u64,
}

impl Parking {
    /// The parked party's side of it, as a call answered by the slot.
    fn as_call(&self) -> Call {
        Call {
            caller: self.party.clone(),
            callee: self.slot.clone(),
            answered: true,
            held: false,
            answered_by: None,
            ringing: Vec::new(),
            rung: BTreeSet::new(),
            seq: self.seq,
        }
    }
}

#[derive(Debug, Default)]
pub struct CallStates {
    calls: HashMap<String, Call>,
    /// Parked calls by call id.
    parked: HashMap<String, Parking>,
    next_seq: u64,
}

impl CallStates {
    /// Apply one event; returns the extensions whose view may have changed.
    pub fn apply(&mut self, event: &PbxEvent) -> BTreeSet<String> {
        match event {
            PbxEvent::Ringing { call_id, caller, callee } => self.upsert(call_id, caller, callee, false),
            PbxEvent::RingingMembers { call_id, caller, callee, ringing } => {
                let mut changed = self.upsert(call_id, caller, callee, false);
                changed.extend(self.set_ringing(call_id, ringing));
                changed
            }
            PbxEvent::Answered { call_id, caller, callee, answered_by } => {
                let mut changed = self.upsert(call_id, caller, callee, true);
                if let Some(c) = self.calls.get_mut(call_id) {
                    // The members that did not answer stop ringing.
                    changed.extend(std::mem::take(&mut c.ringing));
                    if answered_by != callee && answered_by != caller && !answered_by.is_empty() {
                        c.answered_by = Some(answered_by.clone());
                        changed.insert(answered_by.clone());
                    }
                }
                // Taken from its slot (or by the parker rung back).
                changed.extend(self.unpark(call_id));
                changed
            }
            PbxEvent::Parked { call_id, slot, parked, .. } => {
                let seq = match self.calls.get(call_id) {
                    Some(c) => c.seq,
                    None => {
                        self.next_seq += 1;
                        self.next_seq - 1
                    }
                };
                let mut changed: BTreeSet<String> = self.unpark(call_id).into_iter().collect();
                self.parked.insert(call_id.clone(), Parking { party: parked.clone(), slot: slot.clone(), seq });
                changed.insert(parked.clone());
                changed
            }
            PbxEvent::Ended { call_id, caller, callee, reason, .. } => {
                let mut changed = parties(caller, callee);
                changed.extend(self.calls.remove(call_id).iter().flat_map(Call::extensions));
                // The parker's leg ending leaves the parked party in the call.
                if *reason != EndReason::Transferred {
                    changed.extend(self.unpark(call_id));
                }
                changed
            }
            PbxEvent::Hold { call_id, held, .. } => match self.calls.get_mut(call_id) {
                Some(c) => {
                    c.held = *held;
                    c.extensions()
                }
                None => BTreeSet::new(),
            },
            // Missed is always followed by Ended; DTMF and registrations
            // change no call state.
            _ => BTreeSet::new(),
        }
    }

    /// The call leaves its slot: its parked party, if it was parked.
    fn unpark(&mut self, call_id: &str) -> Option<String> {
        self.parked.remove(call_id).map(|p| p.party)
    }

    fn upsert(&mut self, call_id: &str, caller: &str, callee: &str, answered: bool) -> BTreeSet<String> {
        let seq = self.next_seq;
        let call = self.calls.entry(call_id.to_string()).or_insert_with(|| Call {
            caller: caller.to_string(),
            callee: callee.to_string(),
            answered: false,
            held: false,
            answered_by: None,
            ringing: Vec::new(),
            rung: BTreeSet::new(),
            seq,
        });
        if call.seq == seq {
            self.next_seq += 1;
        }
        // A late Ringing never takes an answered call back.
        call.answered |= answered;
        parties(caller, callee)
    }

    /// The members a ringing call rings now; an answered call rings nobody.
    /// Returns the members that started or stopped ringing.
    fn set_ringing(&mut self, call_id: &str, ringing: &[String]) -> BTreeSet<String> {
        let Some(c) = self.calls.get_mut(call_id) else { return BTreeSet::new() };
        let now: Vec<String> = if c.answered { Vec::new() } else { ringing.iter().filter(|e| **e != c.callee).cloned().collect() };
        let before = std::mem::replace(&mut c.ringing, now);
        c.rung.extend(c.ringing.iter().cloned());
        before.into_iter().chain(c.ringing.iter().cloned()).collect()
    }

    /// Make the model match the call registry: calls it no longer has are
    /// dropped (a lost Ended must not leave a phone "in call" forever); with
    /// `add_missing`, calls we never heard of are added (after the bus lagged)
    /// and the members known calls ring or that answered them are taken over.
    pub fn reconcile(&mut self, live: &[LiveCall], add_missing: bool) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        self.calls.retain(|id, c| {
            let keep = live.iter().any(|l| &l.call_id == id);
            if !keep {
                changed.extend(c.extensions());
            }
            keep
        });
        self.parked.retain(|id, p| {
            let keep = live.iter().any(|l| &l.call_id == id);
            if !keep {
                changed.insert(p.party.clone());
            }
            keep
        });
        if add_missing {
            for l in live {
                let before = self.calls.get(&l.call_id).cloned();
                self.upsert(&l.call_id, &l.caller, &l.callee, l.answered);
                self.set_ringing(&l.call_id, &l.ringing);
                if let Some(c) = self.calls.get_mut(&l.call_id)
                    && l.answered_by.is_some()
                {
                    c.answered_by = l.answered_by.clone();
                }
                let after = self.calls.get(&l.call_id);
                if before.as_ref() != after {
                    changed.extend(before.iter().flat_map(Call::extensions));
                    changed.extend(after.iter().flat_map(|c| c.extensions()));
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
        self.calls.get(call_id).map(|c| c.seq).or_else(|| self.parked.get(call_id).map(|p| p.seq))
    }

    /// Live calls, a parked one included.
    pub fn active(&self) -> usize {
        self.calls.len() + self.parked.keys().filter(|id| !self.calls.contains_key(*id)).count()
    }

    pub fn view(&self, ext: &str) -> ExtCallView {
        // A parked party is in its parked call with the slot, whatever else
        // the call does meanwhile (the parker rung back).
        let parking: Vec<(String, Call)> =
            self.parked.iter().filter(|(_, p)| p.party == ext).map(|(id, p)| (id.clone(), p.as_call())).collect();
        let mut mine: Vec<(&String, &Call)> =
            self.calls.iter().filter(|(id, c)| c.involves(ext) && !parking.iter().any(|(p, _)| p == *id)).collect();
        mine.extend(parking.iter().map(|(id, c)| (id, c)));
        mine.sort_by_key(|(_, c)| c.seq);
        // A member only being rung is in no answered call.
        let pick = mine
            .iter()
            .find(|(_, c)| c.answered)
            .map(|x| (if x.1.held { CallState::OnHold } else { CallState::InCall }, *x))
            .or_else(|| mine.iter().find(|(_, c)| c.rings(ext)).map(|x| (CallState::Ringing, *x)))
            .or_else(|| mine.first().map(|x| (CallState::Dialing, *x)));
        let (state, call_id, peer, direction) = match pick {
            None => (CallState::Idle, None, None, None),
            Some((state, (id, c))) => {
                // A call to oneself counts as inbound: that side is the one
                // ringing. The caller talks to the member that answered.
                let inbound = c.callee == ext || c.answered_by.as_deref() == Some(ext) || c.rings(ext);
                let (peer, dir) = if inbound {
                    (&c.caller, Direction::Inbound)
                } else {
                    (c.answered_by.as_ref().unwrap_or(&c.callee), Direction::Outbound)
                };
                (state, Some(id.to_string()), Some(peer.clone()), Some(dir))
            }
        };
        ExtCallView { state, ringing: mine.iter().any(|(_, c)| c.rings(ext)), calls: mine.len(), call_id, peer, direction }
    }
}

fn parties(caller: &str, callee: &str) -> BTreeSet<String> {
    [caller.to_string(), callee.to_string()].into_iter().collect()
}

#[cfg(test)]
#[path = "call_state_tests.rs"]
mod tests;
