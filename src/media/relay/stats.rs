//! Per-relay counters. Written by the relay's own task only (relaxed atomics
//! on memory no other call touches), read by anyone through a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::Leg;
use super::switch::DropReason;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
}

/// RTP and RTCP together. Drops are packets received but not sent on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub a_to_b: FlowStats,
    pub b_to_a: FlowStats,
    pub dropped_no_peer: u64,
    pub dropped_untrusted: u64,
    pub dropped_no_destination: u64,
    pub dropped_send_failed: u64,
    /// On an SRTP leg: not authentic, replayed, or not SRTP at all.
    pub dropped_srtp: u64,
}

impl RelayStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_no_peer + self.dropped_untrusted + self.dropped_no_destination + self.dropped_send_failed + self.dropped_srtp
    }
}

#[derive(Debug, Default)]
pub(super) struct StatsCells {
    packets: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    dropped: [AtomicU64; 5],
}

impl StatsCells {
    /// A packet received on `from` was sent out of the other leg.
    pub(super) fn forwarded(&self, from: Leg, bytes: usize) {
        self.packets[from.index()].fetch_add(1, Relaxed);
        self.bytes[from.index()].fetch_add(bytes as u64, Relaxed);
    }

    pub(super) fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Relaxed);
    }

    pub(super) fn snapshot(&self) -> RelayStats {
        let flow = |leg: Leg| FlowStats {
            packets: self.packets[leg.index()].load(Relaxed),
            bytes: self.bytes[leg.index()].load(Relaxed),
        };
        let dropped = |reason: DropReason| self.dropped[reason as usize].load(Relaxed);
        RelayStats {
            a_to_b: flow(Leg::A),
            b_to_a: flow(Leg::B),
            dropped_no_peer: dropped(DropReason::NoPeer),
            dropped_untrusted: dropped(DropReason::Untrusted),
            dropped_no_destination: dropped(DropReason::NoDestination),
            dropped_send_failed: dropped(DropReason::SendFailed),
            dropped_srtp: dropped(DropReason::Srtp),
        }
    }
}
