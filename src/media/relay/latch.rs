//! Symmetric RTP (RFC 4961 practice): where to send to one leg's device.
//!
//! The SDP address is only a first guess: a device behind NAT sends from
//! another address than it wrote. So the first packet after signalling
//! "latches" its source, and we send there. To resist spoofed packets a new
//! source may take over only once the latched one has been silent for a while,
//! or after signalling gives a new address (re-INVITE). A packet from the
//! signalled address itself always wins: signalling is the trusted channel.
//!
//! Sans-IO: time and packets come in as arguments.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the latched source must be silent before another may take over.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the latched (or newly latched) source: relay it.
    Accept,
    /// No SDP for this leg yet: we cannot tell a device from a port scan.
    NoPeer,
    /// From a stranger while the latched source is still talking.
    Untrusted,
}

#[derive(Debug, Clone)]
pub struct Latch {
    relatch_after: Duration,
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    /// Last packet from `latched`.
    last_heard: Option<Instant>,
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new(RELATCH_AFTER)
    }
}

impl Latch {
    pub fn new(relatch_after: Duration) -> Self {
        Latch { relatch_after, signalled: None, latched: None, last_heard: None }
    }

    /// Address from SDP. A different address than before (re-INVITE, new
    /// device) drops the latch so the next packet can latch at once; the
    /// same address again (session refresh) keeps it.
    pub fn set_peer(&mut self, addr: SocketAddr) {
        if self.signalled != Some(addr) {
            self.signalled = Some(addr);
            self.latched = None;
            self.last_heard = None;
        }
    }

    /// A packet from `src` arrived on this leg's socket.
    pub fn admit(&mut self, src: SocketAddr, now: Instant) -> Admit {
        let Some(signalled) = self.signalled else { return Admit::NoPeer };
        let takeover = match (self.latched, self.last_heard) {
            (Some(latched), _) if latched == src => false,
            (None, _) => true,
            _ if src == signalled => true,
            (Some(_), Some(heard)) => now.saturating_duration_since(heard) >= self.relatch_after,
            (Some(_), None) => true,
        };
        if takeover {
            self.latched = Some(src);
        } else if self.latched != Some(src) {
            return Admit::Untrusted;
        }
        self.last_heard = Some(now);
        Admit::Accept
    }

    /// Where to send to this leg: the latched source, else the SDP address.
    /// None before any SDP, or for an unspecified (0.0.0.0 hold) address
    /// that nobody has latched over yet.
    pub fn target(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled.filter(|a| !a.ip().is_unspecified()))
    }

    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }
}
