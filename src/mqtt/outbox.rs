//! Ordered, bounded delivery to the broker, sans-IO.
//!
//! Events must reach the broker once each and in order, even across a broker
//! restart, so we do not trust the client library's queue (a clean session
//! drops what was in flight): a message stays ours until its PUBACK arrives,
//! and on a lost connection unacknowledged events go back to the front.
//! Snapshot messages (discovery, retained states) are not kept across a lost
//! connection: the bridge republishes the current ones on reconnect, which is
//! both smaller and more correct than replaying stale states.
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Must be delivered, in order; kept while the broker is away.
    Event,
    /// Current state of a topic; only the newest per topic matters.
    Snapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    pub kind: Kind,
}

impl Msg {
    pub fn event(topic: String, payload: String) -> Self {
        Msg { topic, payload, retain: false, kind: Kind::Event }
    }
    pub fn state(topic: String, payload: String) -> Self {
        Msg { topic, payload, retain: true, kind: Kind::Snapshot }
    }
    /// An empty retained message: deletes what the broker keeps for `topic`.
    pub fn clear(topic: String) -> Self {
        Msg::state(topic, String::new())
    }
}

#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Msg>,
    /// Given to the client, waiting for it to say which packet id it got.
    handed: VecDeque<(u64, Msg)>,
    /// Written with a packet id, waiting for PUBACK; the u64 keeps send order.
    inflight: HashMap<u16, (u64, Msg)>,
    next_seq: u64,
    connected: bool,
    max_events: usize,
    window: usize,
    dropped_total: u64,
    dropped_since_connect: u64,
}

impl Outbox {
    /// `max_events`: events kept while the broker is away (oldest dropped
    /// past it); `window`: messages given to the client and not yet acked.
    pub fn new(max_events: usize, window: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            handed: VecDeque::new(),
            inflight: HashMap::new(),
            next_seq: 0,
            connected: false,
            max_events: max_events.max(1),
            window: window.max(1),
            dropped_total: 0,
            dropped_since_connect: 0,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Queue a message. A snapshot replaces a queued one for the same topic,
    /// and is ignored while disconnected.
    pub fn push(&mut self, msg: Msg) {
        if msg.kind == Kind::Snapshot && !self.connected {
            return; // republished in full on reconnect
        }
        if msg.kind == Kind::Snapshot {
            self.queue.retain(|m| !(m.kind == Kind::Snapshot && m.topic == msg.topic));
        }
        self.queue.push_back(msg);
        self.enforce_bound();
    }

    pub fn extend(&mut self, msgs: impl IntoIterator<Item = Msg>) {
        for m in msgs {
            self.push(m);
        }
    }

    fn events_held(&self) -> usize {
        let ev = |m: &Msg| m.kind == Kind::Event;
        self.queue.iter().filter(|m| ev(m)).count()
            + self.handed.iter().filter(|(_, m)| ev(m)).count()
            + self.inflight.values().filter(|(_, m)| ev(m)).count()
    }

    fn enforce_bound(&mut self) {
        let mut excess = self.events_held().saturating_sub(self.max_events);
        while excess > 0 {
            let Some(i) = self.queue.iter().position(|m| m.kind == Kind::Event) else { break };
            self.queue.remove(i);
            excess -= 1;
            self.dropped_total += 1;
            self.dropped_since_connect += 1;
            // Once, then every 100th: a long outage must not flood the log.
            if self.dropped_since_connect == 1 || self.dropped_since_connect.is_multiple_of(100) {
                tracing::warn!(
                    dropped = self.dropped_since_connect,
                    kept = self.max_events,
                    "MQTT broker unreachable: event queue full, oldest events dropped"
                );
            }
        }
    }

    /// The next message to give the client, if connected and the window
    /// allows; it is then ours until acked or given back.
    pub fn take_next(&mut self) -> Option<Msg> {
        if !self.connected || self.handed.len() + self.inflight.len() >= self.window {
            return None;
        }
        let msg = self.queue.pop_front()?;
        self.handed.push_back((self.next_seq, msg.clone()));
        self.next_seq += 1;
        Some(msg)
    }

    /// The client refused the last taken message (its queue is full).
    pub fn give_back(&mut self) {
        if let Some((_, m)) = self.handed.pop_back() {
            self.queue.push_front(m);
        }
    }

    /// The client wrote the oldest handed message with packet id `pkid`.
    pub fn written(&mut self, pkid: u16) {
        if let Some(entry) = self.handed.pop_front() {
            self.inflight.insert(pkid, entry);
        }
    }

    pub fn acked(&mut self, pkid: u16) {
        self.inflight.remove(&pkid);
    }

    /// The connection is gone: unacknowledged events go back to the front,
    /// in their original order; snapshots are forgotten.
    pub fn disconnected(&mut self) {
        self.connected = false;
        let mut unacked: Vec<(u64, Msg)> = self.inflight.drain().map(|(_, v)| v).collect();
        unacked.extend(self.handed.drain(..));
        unacked.sort_by_key(|(seq, _)| *seq);
        self.queue.retain(|m| m.kind == Kind::Event);
        for (_, m) in unacked.into_iter().rev().filter(|(_, m)| m.kind == Kind::Event) {
            self.queue.push_front(m);
        }
    }

    /// A new connection: `first` (status, discovery) goes before the events
    /// that waited, `then` (current states) after them. Returns how many
    /// events were dropped while away.
    pub fn connected(&mut self, first: Vec<Msg>, then: Vec<Msg>) -> u64 {
        self.connected = true;
        self.queue.retain(|m| m.kind == Kind::Event);
        for m in first.into_iter().rev() {
            self.queue.push_front(m);
        }
        self.extend(then);
        std::mem::take(&mut self.dropped_since_connect)
    }

    #[cfg(test)]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Nothing queued and nothing waiting for an ack.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.handed.is_empty() && self.inflight.is_empty()
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
