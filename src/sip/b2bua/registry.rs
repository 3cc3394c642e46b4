//! Live calls, for counting, for commands (hang up a call by id) and busy checks.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A picker's INVITE handed to the ringing call it picks up (see
/// `pickup_call.rs`). Shared so the picker's side can answer it itself when
/// the call ended before it took it.
#[derive(Clone)]
pub struct PickupRequest {
    pub picker: String,
    pub source: std::net::SocketAddr,
    pub tx: Arc<Mutex<Option<rsipstack::transaction::transaction::Transaction>>>,
    /// Told once the call took the INVITE (answered it or refused it).
    pub taken: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl PartialEq for PickupRequest {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.tx, &other.tx)
    }
}
impl Eq for PickupRequest {}

impl std::fmt::Debug for PickupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickupRequest").field("picker", &self.picker).field("source", &self.source).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    HangUp,
    /// Send DTMF digits to the device of extension `to` (a party of the call).
    Dtmf { to: String, digits: String },
    /// Hang up `leaving` and connect the other party to extension `to`.
    Transfer { leaving: String, to: String },
    /// Ask the ringing devices that offered remote answer to pick up: those
    /// of extension `ext` (the number dialled, or a member the call rings),
    /// or with None every one.
    Answer { ext: Option<String> },
    /// Stop ringing and let the AI agent take the call (a message).
    HandToAgent,
    /// The last browser of extension `extension` closed its socket: hang up
    /// if that browser is one of the call's legs (not when, say, the agent
    /// took the call it rang).
    BrowserGone { extension: String },
    /// A feature code: the picker's INVITE answers this ringing call.
    PickUp(PickupRequest),
}

/// Who may leave a call by a blind transfer, the other party staying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferLeaving {
    /// Either party (relays only: the far side is re-pointed).
    Either,
    /// Only this extension, whose browser talks through its own WebRTC
    /// bridge: the device facing the bridge moves onto a relay; a browser
    /// that stayed would have no relay to re-point.
    Only(String),
    /// Neither (a browser on its own bridge on both sides).
    Neither,
}

#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub answered: bool,
    /// The extensions (the number dialled, a ring group's member) whose
    /// ringing device announced remote answer (`Allow-Events: talk`).
    pub remote_answer: Vec<String>,
    /// Who may leave the answered call by a blind transfer.
    pub transfer: TransferLeaving,
    /// Order of arrival (for pickup: oldest first).
    pub seq: u64,
    /// The ringing call was handed to the AI agent ("Answer with AI", a
    /// handoff rule): once answered, the agent is who answered.
    pub to_agent: bool,
    /// The member of a ring group (or a forward's target) who answered, when
    /// that is not `callee` (the number dialled): that extension is in the call.
    pub answered_by: Option<String>,
    /// The extensions other than `callee` that its forks ring now (a ring
    /// group's members as a hunt moves on, a fallback); empty once answered.
    pub ringing: Vec<String>,
    commands: mpsc::UnboundedSender<Command>,
}

impl CallInfo {
    /// Whether `ext` is in this call: its caller, the number dialled, the
    /// ring group's member (or fallback) who answered, or, while it rings,
    /// an extension it rings. The one test of "a call of this extension"
    /// (Phone API, MQTT commands, a browser tab that closed).
    pub fn involves(&self, ext: &str) -> bool {
        self.caller == ext || self.party(ext).is_some() || self.rings(ext)
    }

    /// Whether this call is ringing `ext` (not answered yet, `ext` not its
    /// caller): the number dialled, or a member it rings now.
    pub fn rings(&self, ext: &str) -> bool {
        !self.answered && self.caller != ext && (self.callee == ext || self.ringing.iter().any(|r| r == ext))
    }

    /// How `ext` is named in the call's commands (`Dtmf::to`,
    /// `Transfer::leaving`, `BrowserGone`): the caller as itself, the
    /// callee's side (the member who answered too) as the number dialled.
    /// None when `ext` is not a party (a member only being rung is not).
    pub fn party(&self, ext: &str) -> Option<String> {
        if self.caller == ext || self.callee == ext {
            Some(ext.to_string())
        } else if self.answered_by.as_deref() == Some(ext) {
            Some(self.callee.clone())
        } else {
            None
        }
    }

    /// The other party of the call when `ext` is a party: the member who
    /// answered stands for the number dialled.
    pub fn other(&self, ext: &str) -> Option<String> {
        if self.caller == ext {
            Some(self.answered_by.clone().unwrap_or_else(|| self.callee.clone()))
        } else if self.party(ext).is_some() {
            Some(self.caller.clone())
        } else {
            None
        }
    }
}

#[derive(Default)]
pub struct CallRegistry {
    calls: Mutex<HashMap<String, CallInfo>>,
    next_seq: AtomicU64,
}

impl CallRegistry {
    pub fn insert(&self, call_id: &str, caller: &str, callee: &str) -> mpsc::UnboundedReceiver<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        let info = CallInfo { call_id: call_id.into(), caller: caller.into(), callee: callee.into(), answered: false, remote_answer: Vec::new(), transfer: TransferLeaving::Either, seq: self.next_seq.fetch_add(1, Ordering::Relaxed), to_agent: false, answered_by: None, ringing: Vec::new(), commands: tx };
        if let Ok(mut c) = self.calls.lock() {
            c.insert(call_id.to_string(), info);
        }
        rx
    }
    pub fn set_answered(&self, call_id: &str) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id)) {
            c.answered = true;
            c.ringing.clear();
        }
    }
    /// Who answered, when not the callee itself (a ring group's member).
    pub fn set_answered_by(&self, call_id: &str, member: &str) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id)) {
            c.answered_by = (c.callee != member).then(|| member.to_string());
        }
    }
    /// The extensions the call rings now besides `callee` (see
    /// `CallInfo::ringing`). Returns the list kept when it changed.
    pub fn set_ringing(&self, call_id: &str, ringing: Vec<String>) -> Option<Vec<String>> {
        let mut calls = self.calls.lock().ok()?;
        let c = calls.get_mut(call_id)?;
        let ringing: Vec<String> = if c.answered { Vec::new() } else { ringing.into_iter().filter(|e| *e != c.callee).collect() };
        if c.ringing == ringing {
            return None;
        }
        c.ringing = ringing;
        Some(c.ringing.clone())
    }
    pub fn set_to_agent(&self, call_id: &str) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id)) {
            c.to_agent = true;
        }
    }
    pub fn set_transfer(&self, call_id: &str, transfer: TransferLeaving) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id)) {
            c.transfer = transfer;
        }
    }
    /// A device ringing for `ext` offered remote answer.
    pub fn set_remote_answer(&self, call_id: &str, ext: &str) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id))
            && !c.remote_answer.iter().any(|e| e == ext)
        {
            c.remote_answer.push(ext.to_string());
        }
    }
    pub fn set_parties(&self, call_id: &str, caller: &str, callee: &str) {
        if let Some(c) = self.calls.lock().ok().as_mut().and_then(|m| m.get_mut(call_id)) {
            c.caller = caller.to_string();
            c.callee = callee.to_string();
            c.answered_by = None;
            c.ringing.clear();
            c.remote_answer.clear();
        }
    }
    pub fn remove(&self, call_id: &str) {
        if let Ok(mut c) = self.calls.lock() {
            c.remove(call_id);
        }
    }
    pub fn len(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, call_id: &str) -> Option<CallInfo> {
        self.calls.lock().ok().and_then(|c| c.get(call_id).cloned())
    }
    pub fn list(&self) -> Vec<CallInfo> {
        self.calls.lock().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }
    /// Send a command to a live call; false when no such call.
    pub fn command(&self, call_id: &str, cmd: Command) -> bool {
        self.calls.lock().ok().and_then(|c| c.get(call_id).map(|i| i.commands.send(cmd.clone()).is_ok())).unwrap_or(false)
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
