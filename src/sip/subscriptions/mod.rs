//! Event subscriptions (RFC 6665): BLF (`dialog`, RFC 4235) and MWI
//! (`message-summary`, RFC 3842) for authenticated extensions.
//!
//! The decisions are sans-IO: [`table`] (who may subscribe, lifetimes, caps,
//! CSeq and version per subscription), [`blf`] (each extension's calls from
//! the event bus) and [`bodies`] (the XML and text). This module only moves
//! bytes: [`handler`] answers SUBSCRIBE, [`notifier`] sends NOTIFYs through
//! rsipstack's client transactions, one queue per subscription so its
//! NOTIFYs leave in CSeq order, and feeds bus events and time to the table.
pub mod blf;
pub mod bodies;
pub mod handler;
pub mod notifier;
pub mod table;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use table::{Accepted, Limits, Notify, Refusal, Subscribe, Table};
use tokio::sync::mpsc;

/// NOTIFYs waiting for one subscriber; a subscriber this far behind loses
/// its subscription rather than grow the queue.
const QUEUE: usize = 16;

/// A NOTIFY waiting to be sent, with its body when it was fixed at queueing.
type Queued = (Notify, Option<String>);

pub struct Subscriptions {
    table: Mutex<Table>,
    blf: Mutex<blf::Tracker>,
    epoch: Instant,
    /// Each subscription's NOTIFY sender task.
    queues: Mutex<HashMap<u64, mpsc::Sender<Queued>>>,
}

impl Subscriptions {
    pub fn new(c: &crate::config::SubscriptionsConfig) -> Subscriptions {
        let limits = Limits {
            min_expires: c.min_expires,
            max_expires: c.max_expires,
            default_expires: c.default_expires,
            max_per_extension: c.max_per_extension,
            max_total: c.max_total,
        };
        Subscriptions { table: Mutex::new(Table::new(limits)), blf: Mutex::new(Default::default()), epoch: Instant::now(), queues: Default::default() }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Subscriptions held.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn subscribe(&self, req: Subscribe) -> Result<Accepted, Refusal> {
        let tag = rsipstack::transaction::make_tag().value().to_string();
        let now = self.now();
        self.table.lock().map_err(|_| Refusal::TableFull)?.subscribe(req, tag, now)
    }
}
