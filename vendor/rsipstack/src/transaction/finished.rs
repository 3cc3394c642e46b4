//! ha-pbx patch 7: what a finished transaction keeps to absorb retransmissions.
//!
//! Upstream kept each finished transaction's last *parsed* message (a
//! `SipMessage`, several KiB of headers, strings and vectors) in an unbounded
//! map for 64*T1 (32 s). All that map is ever used for is answering a
//! retransmission the same way again, so it now keeps the message as the bytes
//! it serializes to (a few hundred bytes) plus the one field read without
//! parsing (a response's status code), and parses again only where a field is
//! really needed: the To header of a CANCEL's 200 after the INVITE's final
//! response, and the ACK re-sent (with the retransmitted response's To tag)
//! when a client INVITE's final response comes again. Both are rare (a lost
//! message); the common cases (a retransmitted request answered again, an ACK
//! absorbed) read only the bytes.
//!
//! Bounded: at most `max_entries` entries; past that the oldest goes first
//! (counted in [`FinishedTransactions::evicted`]). Entries all live the same
//! 64*T1, so the oldest is also the nearest its end, when a peer has stopped
//! retransmitting anyway.
use super::key::TransactionKey;
use crate::platform::sync::Mutex;
use crate::prelude::*;
use crate::sip::{Request, Response, SipMessage};
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicU64, Ordering};

/// One finished transaction's last message, serialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    /// A server transaction's last response as sent, and its status code.
    Response { status: u16, bytes: Arc<[u8]> },
    /// A client INVITE transaction's ACK (for a non-2xx, or a placeholder).
    Ack(Arc<[u8]>),
    /// A client transaction's last request that is not an ACK (kept as
    /// upstream kept it; rsipstack stores none today).
    Request(Arc<[u8]>),
    /// ha-pbx patch 9: a server INVITE whose final response was ACKed. The
    /// peer had the response, so nothing is sent again: a late copy of the
    /// INVITE and further ACKs are absorbed (RFC 6026 7.1), a CANCEL gets
    /// 200. Kept instead of the response's bytes (the 2xx with its SDP, or
    /// the 407 every authenticated call begins with) for the rest of 64*T1,
    /// with the response's To tag, which a CANCEL's 200 repeats (RFC 3261
    /// 9.2).
    Acked { to_tag: Option<Box<str>> },
}

impl Finished {
    pub fn of(msg: &SipMessage) -> Self {
        match msg {
            SipMessage::Response(r) => Self::of_response(r),
            SipMessage::Request(r) => Self::of_request(r),
        }
    }

    pub fn of_response(resp: &Response) -> Self {
        Finished::Response { status: resp.status_code.code(), bytes: resp.to_bytes().into() }
    }

    pub fn of_request(req: &Request) -> Self {
        let bytes = req.to_bytes().into();
        if req.method() == &crate::sip::Method::Ack {
            Finished::Ack(bytes)
        } else {
            Finished::Request(bytes)
        }
    }

    /// The message as it was sent (empty for `Acked`).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Finished::Response { bytes, .. } | Finished::Ack(bytes) | Finished::Request(bytes) => bytes,
            Finished::Acked { .. } => &[],
        }
    }

    /// A final (non-1xx) response, sent or already ACKed.
    pub fn is_final_response(&self) -> bool {
        matches!(self, Finished::Response { status, .. } if *status >= 200) || matches!(self, Finished::Acked { .. })
    }

    /// The message parsed again (None for `Acked`, or if it no longer
    /// parses, which a message we serialized ourselves does not do).
    pub fn parse(&self) -> Option<SipMessage> {
        if matches!(self, Finished::Acked { .. }) {
            return None;
        }
        SipMessage::try_from(self.bytes()).ok()
    }
}

struct Table {
    map: BTreeMap<TransactionKey, (u64, Finished)>,
    /// Insertion order with each entry's generation: a slot whose entry was
    /// removed or replaced since is skipped.
    order: VecDeque<(u64, TransactionKey)>,
    next_generation: u64,
}

/// The finished transactions, by key: bounded, oldest out first.
pub struct FinishedTransactions {
    table: Mutex<Table>,
    max_entries: usize,
    evicted: AtomicU64,
}

impl FinishedTransactions {
    pub fn new(max_entries: usize) -> Self {
        FinishedTransactions {
            table: Mutex::new(Table { map: BTreeMap::new(), order: VecDeque::new(), next_generation: 0 }),
            max_entries: max_entries.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    pub fn insert(&self, key: TransactionKey, entry: Finished) {
        let mut t = self.table.lock();
        let generation = t.next_generation;
        t.next_generation += 1;
        t.map.insert(key.clone(), (generation, entry));
        t.order.push_back((generation, key));
        let mut evicted = 0;
        while t.map.len() > self.max_entries {
            let Some((generation, key)) = t.order.pop_front() else { break };
            if t.map.get(&key).is_some_and(|(g, _)| *g == generation) {
                t.map.remove(&key);
                evicted += 1;
            }
        }
        Self::tidy(&mut t);
        if evicted > 0 {
            self.evicted.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Drops the order queue's slots of entries gone since: from its front
    /// at once, and all of them once they outnumber the live entries (slots
    /// of entries replaced, or removed by their timer while older ones live
    /// on), so the queue stays within `2 * len() + 1024`.
    fn tidy(t: &mut Table) {
        while let Some((generation, key)) = t.order.front() {
            if t.map.get(key).is_some_and(|(g, _)| g == generation) {
                break;
            }
            t.order.pop_front();
        }
        if t.map.is_empty() {
            t.order.clear();
            t.order.shrink_to(64);
        } else if t.order.len() > 2 * t.map.len() + 1024 {
            let Table { map, order, .. } = t;
            order.retain(|(g, k)| map.get(k).is_some_and(|(live, _)| live == g));
        }
    }

    pub fn get(&self, key: &TransactionKey) -> Option<Finished> {
        self.table.lock().map.get(key).map(|(_, e)| e.clone())
    }

    pub fn remove(&self, key: &TransactionKey) -> Option<Finished> {
        let mut t = self.table.lock();
        let removed = t.map.remove(key).map(|(_, e)| e);
        Self::tidy(&mut t);
        removed
    }

    /// ha-pbx patch 9: the entry's response was ACKed (the ACK carries the
    /// response's To tag): keep only that (same place in the order, same
    /// timer). False if there is no entry.
    pub fn mark_acked(&self, key: &TransactionKey, to_tag: Option<&str>) -> bool {
        let mut t = self.table.lock();
        match t.map.get_mut(key) {
            Some((_, entry)) => {
                *entry = Finished::Acked { to_tag: to_tag.map(Into::into) };
                true
            }
            None => false,
        }
    }

    pub fn contains_key(&self, key: &TransactionKey) -> bool {
        self.table.lock().map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.table.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries pushed out by the bound since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Slots in the insertion-order queue (live entries plus slots not yet
    /// dropped); stays within a constant of `len()`.
    pub fn order_len(&self) -> usize {
        self.table.lock().order.len()
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
}
