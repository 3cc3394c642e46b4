//! RTP/RTCP relay for one SDP stream between two legs (A: caller side,
//! B: callee side). Each leg gets its own RTP/RTCP port pair; what arrives on
//! one leg's socket leaves through the other's. Payload bytes are never
//! touched, so every codec, SRTP and RFC 4733 events pass through; RTP
//! headers only change when a leg's source changes mid-call ([`splice`]) or
//! a key press is written into a stream ([`keys`]).
//!
//! The decisions live in sans-IO state machines ([`latch`], [`watchdog`],
//! [`switch`]) driven by time and packets; `task` is the thin socket shell.

mod engine;
mod handle;
pub mod keys;
pub mod latch;
pub mod splice;
mod stats;
pub mod switch;
mod task;
pub mod watchdog;

#[cfg(test)]
mod integration_tests;
#[cfg(test)]
mod keys_tests;
#[cfg(test)]
mod latch_tests;
#[cfg(test)]
mod switch_tests;
#[cfg(test)]
mod watchdog_tests;

pub use engine::{MediaConfig, MediaEngine};
pub(crate) use engine::ActiveGuard;
pub use handle::Relay;
pub use keys::{CLIP_FRAME, MAX_CLIP_FRAMES};
pub use stats::{FlowStats, RelayStats};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
