//! The typed, in-process event bus: call and registration events that the
//! MQTT bridge, the AI agent and storage subscribe to.
//!
//! A broadcast channel: publishers never wait on a slow subscriber; one that
//! lags past the buffer learns how many events it missed.
use serde::Serialize;
use tokio::sync::broadcast;

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    CallerHangup,
    CalleeHangup,
    Cancelled,
    Busy,
    NoAnswer,
    Unavailable,
    NotFound,
    Rejected,
    MediaTimeout,
    /// Ended by a command (Home Assistant, the HTTP API), not by a party.
    Terminated,
    /// The party left by a transfer to another extension.
    Transferred,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PbxEvent {
    Registered { extension: String, contact: String, transport: String, source: String, expires: u32 },
    Unregistered { extension: String, contact: String, reason: String },
    Ringing { call_id: String, caller: String, callee: String },
    /// The extensions besides `callee` that the ringing call rings now (a
    /// ring group's members as a hunt moves on and forks end, a fallback):
    /// published whenever that list changes before the answer.
    RingingMembers { call_id: String, caller: String, callee: String, ringing: Vec<String> },
    /// `answered_by`: the extension whose device answered (a ring group's
    /// member, whoever picked the call up), else the callee.
    Answered { call_id: String, caller: String, callee: String, answered_by: String },
    Ended { call_id: String, caller: String, callee: String, reason: EndReason, answered: bool, duration_ms: u64 },
    Missed { call_id: String, caller: String, callee: String },
    Dtmf { call_id: String, from: String, digit: char },
    /// A party put the call on hold (`held`) or resumed it (re-INVITE/UPDATE direction).
    Hold { call_id: String, caller: String, callee: String, by: String, held: bool },
    /// `parker` parked the call: `parked` waits on park slot `slot`
    /// (dialling the slot takes it back).
    Parked { call_id: String, slot: String, parker: String, parked: String },
    /// The AI agent took a message for `callee`.
    Message { call_id: String, caller: String, callee: String, transcript: String },
    /// Message `id` for `callee` (an extension or group) was marked read.
    MessageRead { id: i64, callee: String },
    /// `extension` was added to, changed in or removed from the directory
    /// at run time (the panel, Home Assistant's users).
    DirectoryChanged { extension: String },
    /// Trunk `trunk`'s registration, reachability or last caller changed.
    TrunkChanged { trunk: String },
}

impl PbxEvent {
    /// The extension an event is about (the callee for call events; the
    /// trunk's name for a trunk's).
    pub fn extension(&self) -> &str {
        match self {
            PbxEvent::Registered { extension, .. } | PbxEvent::Unregistered { extension, .. } | PbxEvent::DirectoryChanged { extension } => extension,
            PbxEvent::Ringing { callee, .. }
            | PbxEvent::RingingMembers { callee, .. }
            | PbxEvent::Answered { callee, .. }
            | PbxEvent::Ended { callee, .. }
            | PbxEvent::Missed { callee, .. }
            | PbxEvent::Hold { callee, .. }
            | PbxEvent::Message { callee, .. }
            | PbxEvent::MessageRead { callee, .. } => callee,
            PbxEvent::Dtmf { from, .. } => from,
            PbxEvent::Parked { parker, .. } => parker,
            // about no extension: the trunk's name
            PbxEvent::TrunkChanged { trunk } => trunk,
        }
    }
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<PbxEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }
    pub fn publish(&self, event: PbxEvent) {
        tracing::debug!(?event, "event");
        // No subscriber is not an error: events are fire-and-forget.
        let _ = self.tx.send(event);
    }
    pub fn subscribe(&self) -> broadcast::Receiver<PbxEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_events_in_order() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        bus.publish(PbxEvent::Ringing { call_id: "c".into(), caller: "101".into(), callee: "102".into() });
        bus.publish(PbxEvent::Dtmf { call_id: "c".into(), from: "101".into(), digit: '5' });
        assert!(matches!(rx.recv().await.unwrap(), PbxEvent::Ringing { .. }));
        assert_eq!(rx.recv().await.unwrap().extension(), "101");
    }

    #[test]
    fn serializes_with_type_tag() {
        let e = PbxEvent::Missed { call_id: "x".into(), caller: "1".into(), callee: "2".into() };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "missed");
        assert_eq!(v["callee"], "2");
    }
}
