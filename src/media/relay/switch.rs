//! The relay's decisions, without sockets: for a packet that arrived on one
//! leg's RTP or RTCP socket, from some source, whether and where to send it
//! out of the other leg's matching socket. The async task only moves bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Leg;
use super::latch::{Admit, Latch};
use super::watchdog::Watchdog;

/// Which of a leg's two sockets. RTCP muxed onto the RTP port (rtcp-mux)
/// simply travels the RTP way: the relay never looks inside packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Rtp,
    Rtcp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The receiving leg has no SDP yet.
    NoPeer,
    /// Not from the latched source (see [`Latch`]).
    Untrusted,
    /// The other leg has no address to send to yet.
    NoDestination,
    /// The kernel refused the send (buffer full, unreachable).
    SendFailed,
    /// An SRTP leg: not authentic, a replay, too short, or one SSRC too
    /// many (`media::srtp`); or our own protection failed.
    Srtp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward(SocketAddr),
    Drop(DropReason),
    /// RTP from a muted leg (see [`Switch::set_muted`]): it counts as media
    /// but goes nowhere. Not a drop: nothing went wrong.
    Muted,
}

#[derive(Debug, Clone)]
pub struct Switch {
    /// Indexed by [`Leg::index`]: where that leg's device is.
    rtp: [Latch; 2],
    rtcp: [Latch; 2],
    signalled: [bool; 2],
    /// Indexed by the sending leg: its RTP is not passed on.
    muted: [bool; 2],
    watchdog: Watchdog,
}

impl Switch {
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Switch {
            rtp: Default::default(),
            rtcp: Default::default(),
            signalled: [false; 2],
            muted: [false; 2],
            watchdog: Watchdog::new(timeout, now),
        }
    }

    /// Addresses from `leg`'s SDP. Without `a=rtcp`, RTCP is at RTP port + 1
    /// (RFC 3550 §11).
    pub fn set_peer(&mut self, leg: Leg, rtp: SocketAddr, rtcp: Option<SocketAddr>, now: Instant) {
        let rtcp = rtcp.unwrap_or_else(|| match rtp.port().checked_add(1) {
            Some(port) => SocketAddr::new(rtp.ip(), port),
            None => rtp,
        });
        self.rtp[leg.index()].set_peer(rtp);
        self.rtcp[leg.index()].set_peer(rtcp);
        self.signalled[leg.index()] = true;
        if self.signalled == [true, true] {
            self.watchdog.arm(now);
        }
    }

    /// The host `leg`'s signalling came from (see [`Latch::set_signalling_host`]).
    pub fn set_signalling_host(&mut self, leg: Leg, host: Option<IpAddr>) {
        self.rtp[leg.index()].set_signalling_host(host);
        self.rtcp[leg.index()].set_signalling_host(host);
    }

    /// On: RTP arriving from `from`'s device is not sent to the other leg
    /// (a parker's microphone while it leaves); RTCP still is.
    pub fn set_muted(&mut self, from: Leg, on: bool) {
        self.muted[from.index()] = on;
    }

    pub fn set_timeout_enabled(&mut self, on: bool, now: Instant) {
        self.watchdog.set_enabled(on, now);
    }

    /// A packet from `src` arrived on `leg`'s `channel` socket.
    pub fn on_packet(&mut self, leg: Leg, channel: Channel, src: SocketAddr, now: Instant) -> Verdict {
        let latches = match channel {
            Channel::Rtp => &mut self.rtp,
            Channel::Rtcp => &mut self.rtcp,
        };
        match latches[leg.index()].admit(src, now) {
            Admit::Accept => {}
            Admit::NoPeer => return Verdict::Drop(DropReason::NoPeer),
            Admit::Untrusted => return Verdict::Drop(DropReason::Untrusted),
        }
        if channel == Channel::Rtp {
            self.watchdog.on_media(now);
            if self.muted[leg.index()] {
                return Verdict::Muted;
            }
        }
        match latches[leg.other().index()].target() {
            Some(dst) => Verdict::Forward(dst),
            None => Verdict::Drop(DropReason::NoDestination),
        }
    }

    /// Where RTP toward `leg`'s device goes now, if known.
    pub fn rtp_target(&self, leg: Leg) -> Option<SocketAddr> {
        self.rtp[leg.index()].target()
    }

    pub fn is_timed_out(&self, now: Instant) -> bool {
        self.watchdog.is_timed_out(now)
    }

    pub fn check_period(&self) -> Duration {
        self.watchdog.check_period()
    }
}
