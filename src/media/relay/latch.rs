//! Symmetric RTP (RFC 4961 practice): where to send to one leg's device.
//!
//! The SDP address is only a first guess: a device behind NAT sends from
//! another port, or from its router's address, than it wrote. So the first
//! packet after signalling "latches" its source, and we send there.
//!
//! Only the hosts signalling named may latch: the host in the SDP, and the
//! host the device's signalling came from (its NAT's public address). A
//! packet from any other host is dropped, whenever it comes, so a stranger
//! who sends to a relay port first (or after the device went quiet) never
//! gets the call's audio (RTP bleed). Among those hosts a new source takes
//! over only once the latched one has been silent for a while (a NAT that
//! rebound the port), or after signalling gives a new address (re-INVITE).
//! A packet from the signalled address itself always wins: signalling is
//! the trusted channel.
//!
//! Sans-IO: time and packets come in as arguments.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long the latched source must be silent before another may take over.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the latched (or newly latched) source: relay it.
    Accept,
    /// No SDP for this leg yet: we cannot tell a device from a port scan.
    NoPeer,
    /// From a host signalling did not name, or from another source of a
    /// named host while the latched source is still talking.
    Untrusted,
}

#[derive(Debug, Clone)]
pub struct Latch {
    relatch_after: Duration,
    signalled: Option<SocketAddr>,
    /// Where the device's signalling came from (its public address behind NAT).
    signalling_host: Option<IpAddr>,
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
        Latch { relatch_after, signalled: None, signalling_host: None, latched: None, last_heard: None }
    }

    /// The host the device's signalling (SIP) came from: it may send media
    /// too. A different host than before drops a latch that only it allowed.
    pub fn set_signalling_host(&mut self, host: Option<IpAddr>) {
        self.signalling_host = host;
        if self.latched.is_some_and(|l| !self.may_send(l.ip())) {
            self.latched = None;
            self.last_heard = None;
        }
    }

    /// A host signalling named: the SDP's (unless 0.0.0.0) or the signalling source.
    fn may_send(&self, host: IpAddr) -> bool {
        self.signalled.is_some_and(|s| s.ip() == host && !host.is_unspecified()) || self.signalling_host == Some(host)
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
        if !self.may_send(src.ip()) {
            return Admit::Untrusted;
        }
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
