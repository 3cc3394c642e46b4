//! RTP/RTCP relay for one SDP stream between two legs (A: caller side,
//! B: callee side). Each leg gets its own RTP/RTCP port pair; what arrives on
//! one leg's socket leaves through the other's. Payload bytes are never
//! touched, so every codec, SRTP and RFC 4733 events pass through; RTP
//! headers only change when a leg's source changes mid-call ([`splice`]),
//! a key press is written into a stream ([`keys`]), or a side sends its
//! key presses with a telephone-event number the other did not name
//! ([`event_pt`]). A leg toward a trunk that wants SDES-SRTP has its keys
//! (`Relay::set_srtp`): what its device sends is unprotected first, what
//! goes to it protected last (`media::srtp`), and the other leg stays plain.
//!
//! The decisions live in sans-IO state machines ([`latch`], [`watchdog`],
//! [`switch`]) driven by time and packets; `task` is the thin socket shell.

mod engine;
pub mod event_pt;
mod handle;
pub mod keys;
pub mod latch;
pub mod splice;
mod stats;
pub mod switch;
mod task;
pub mod watchdog;

#[cfg(test)]
mod event_pt_tests;
#[cfg(test)]
mod integration_tests;
#[cfg(test)]
mod keys_tests;
#[cfg(test)]
mod latch_tests;
#[cfg(test)]
mod srtp_tests;
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
