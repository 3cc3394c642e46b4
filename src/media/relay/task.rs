//! The async shell around [`Switch`]: one tokio task per relay owns its four
//! sockets and one receive buffer, drains every readable socket in a single
//! poll and sends each packet straight on. Nothing here is shared with other
//! calls, so relays never contend with each other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{SockAddr, SockRef};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::Leg;
use super::engine::ActiveGuard;
use super::event_pt::EventPtMap;
use super::keys::KeyInjector;
use super::splice::Splice;
use crate::media::rtp::StreamPosition;
use super::stats::StatsCells;
use super::switch::{Channel, DropReason, Switch, Verdict};
use crate::media::dtmf::DtmfDetector;
use crate::media::ports::PortLease;
use crate::media::srtp::{SrtpKeys, SrtpLeg};

/// Larger than any RTP packet that fits an Ethernet MTU, with room for
/// jumbo-ish video; a bigger datagram would be truncated.
const RECV_BUFFER_BYTES: usize = 8 * 1024;

/// Signalling-side changes, sent by the [`super::Relay`] handle.
#[derive(Debug)]
pub(super) enum Control {
    Peer { leg: Leg, rtp: SocketAddr, rtcp: Option<SocketAddr> },
    SignallingHost { leg: Leg, host: Option<std::net::IpAddr> },
    TimeoutEnabled(bool),
    /// telephone-event payload type of RTP arriving from `leg`.
    DtmfPayloadType { leg: Leg, pt: Option<u8> },
    SendDtmf { to: Leg, pt: u8, digit: char },
    /// Rewrite of the telephone-event payload type of RTP from `from`.
    EventPtMap { from: Leg, map: Option<EventPtMap> },
    HoldBackDtmf { to: Leg, on: bool },
    /// SDES-SRTP on `leg` (a trunk's), or plain RTP again (`None`).
    Srtp { leg: Leg, keys: Option<Box<SrtpKeys>> },
    /// Our own encoded 20 ms frames toward `to`, in place of the other side's audio.
    Play { to: Leg, pt: u8, frames: Vec<Vec<u8>> },
    /// Drop (or pass again) what `from` sends: a parked party must not hear the parker.
    Mute { from: Leg, on: bool },
    /// The stream toward `to` continues one another sender started.
    ContinueStream { to: Leg, from: StreamPosition },
}

pub(super) struct LegSockets {
    pub(super) rtp: UdpSocket,
    pub(super) rtcp: UdpSocket,
}

impl LegSockets {
    fn get(&self, channel: Channel) -> &UdpSocket {
        match channel {
            Channel::Rtp => &self.rtp,
            Channel::Rtcp => &self.rtcp,
        }
    }
}

/// Reads the clock at most once per poll: every packet of one burst gets the
/// same time, which is precise enough for 2 s latching and second timeouts.
#[derive(Default)]
struct Clock(Option<Instant>);

impl Clock {
    fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// What the task tells the outside: media timeout, counters, key presses.
pub(super) struct Reports {
    pub timed_out: watch::Sender<bool>,
    pub stats: Arc<StatsCells>,
    pub dtmf_events: mpsc::UnboundedSender<(Leg, char)>,
}

pub(super) struct RelayTask {
    sockets: [LegSockets; 2],
    switch: Switch,
    control: mpsc::UnboundedReceiver<Control>,
    timed_out: watch::Sender<bool>,
    stats: Arc<StatsCells>,
    /// RFC 4733 key presses seen per leg, reported to the signalling side.
    dtmf: [DtmfDetector; 2],
    dtmf_events: mpsc::UnboundedSender<(Leg, char)>,
    /// Per leg: its telephone-events' payload type as the other side named it.
    event_pt: [Option<EventPtMap>; 2],
    /// RTP toward each leg stays one stream when the device behind the other changes.
    splice: [Splice; 2],
    /// Key presses written toward each leg, and events held back from it.
    keys: [KeyInjector; 2],
    keys_timer: Pin<Box<Sleep>>,
    keys_buf: Vec<u8>,
    /// The legs whose device speaks SRTP: what it sends is unprotected
    /// before anything else looks at it, what goes to it is protected last.
    srtp: [Option<SrtpLeg>; 2],
    tick: Interval,
    /// One buffer serves all four sockets: each packet is sent on before the
    /// next is read, so nothing is allocated per packet.
    buf: Box<[u8]>,
    /// Declared after `sockets` so it drops after them: a port goes back to
    /// the pool only once it is closed.
    _leases: [PortLease; 2],
    _active: ActiveGuard,
}

impl RelayTask {
    /// Must run inside a tokio runtime (the interval registers a timer).
    pub(super) fn new(
        sockets: [LegSockets; 2],
        leases: [PortLease; 2],
        switch: Switch,
        control: mpsc::UnboundedReceiver<Control>,
        reports: Reports,
        active: ActiveGuard,
    ) -> Self {
        let Reports { timed_out, stats, dtmf_events } = reports;
        let mut tick = tokio::time::interval(switch.check_period());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        RelayTask {
            sockets,
            switch,
            control,
            timed_out,
            stats,
            dtmf: Default::default(),
            dtmf_events,
            event_pt: [None; 2],
            splice: Default::default(),
            keys: Default::default(),
            keys_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            keys_buf: Vec::with_capacity(64),
            srtp: Default::default(),
            tick,
            buf: vec![0u8; RECV_BUFFER_BYTES].into_boxed_slice(),
            _leases: leases,
            _active: active,
        }
    }

    /// Runs until the [`super::Relay`] handle is dropped.
    pub(super) async fn run(mut self) {
        std::future::poll_fn(|cx| self.poll(cx)).await;
        let ports = [self.sockets[0].rtp.local_addr(), self.sockets[1].rtp.local_addr()];
        tracing::debug!(?ports, stats = ?self.stats.snapshot(), "relay stopped");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Control first, so a re-INVITE's address applies to the next packet.
        let mut changed = false;
        loop {
            match self.control.poll_recv(cx) {
                Poll::Ready(Some(control)) => {
                    self.apply(control);
                    changed = true;
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        let mut clock = Clock::default();
        for leg in [Leg::A, Leg::B] {
            for channel in [Channel::Rtp, Channel::Rtcp] {
                self.drain(cx, leg, channel, &mut clock);
            }
        }
        self.send_keys(cx);
        while self.tick.poll_tick(cx).is_ready() {
            changed = true;
        }
        if changed {
            let timed_out = self.switch.is_timed_out(clock.now());
            self.timed_out.send_if_modified(|current| std::mem::replace(current, timed_out) != timed_out);
        }
        // Every source above returned Pending and registered our waker.
        Poll::Pending
    }

    fn apply(&mut self, control: Control) {
        let now = Instant::now();
        match control {
            Control::Peer { leg, rtp, rtcp } => {
                // A new device on the leg (a retrieve): the rest of a clip was not for it.
                self.keys[leg.index()].stop_clip();
                self.switch.set_peer(leg, rtp, rtcp, now)
            }
            Control::SignallingHost { leg, host } => self.switch.set_signalling_host(leg, host),
            Control::TimeoutEnabled(on) => self.switch.set_timeout_enabled(on, now),
            Control::DtmfPayloadType { leg, pt } => self.dtmf[leg.index()].set_payload_type(pt),
            Control::SendDtmf { to, pt, digit } => {
                if !self.keys[to.index()].press(digit, pt, now) {
                    tracing::debug!(%digit, "not a DTMF key: not sent");
                }
            }
            Control::HoldBackDtmf { to, on } => self.keys[to.index()].set_hold_back_events(on),
            Control::Srtp { leg, keys } => {
                let slot = &mut self.srtp[leg.index()];
                match (slot.as_mut(), keys) {
                    (Some(srtp), Some(keys)) => srtp.rekey(*keys),
                    (None, Some(keys)) => *slot = Some(SrtpLeg::new(*keys)),
                    (_, None) => *slot = None,
                }
            }
            Control::EventPtMap { from, map } => self.event_pt[from.index()] = map,
            Control::Play { to, pt, frames } => self.keys[to.index()].play(pt, frames, now),
            Control::Mute { from, on } => self.switch.set_muted(from, on),
            Control::ContinueStream { to, from } => self.splice[to.index()].continue_from(from),
        }
    }

    /// Sends the key-press packets that are due and arms the timer for the next.
    fn send_keys(&mut self, cx: &mut Context<'_>) {
        loop {
            let now = Instant::now();
            for leg in [Leg::A, Leg::B] {
                let Some(dst) = self.switch.rtp_target(leg) else { continue };
                while self.keys[leg.index()].pop_due(now, &mut self.keys_buf) {
                    let packet = match self.srtp[leg.index()].as_mut().map(|s| s.protect_rtp(&self.keys_buf)) {
                        None => std::borrow::Cow::Borrowed(&self.keys_buf[..]),
                        Some(Ok(protected)) => std::borrow::Cow::Owned(protected),
                        Some(Err(_)) => continue,
                    };
                    // Ours, not relayed: kept out of the relay's counters.
                    let _ = SockRef::from(&self.sockets[leg.index()].rtp).send_to(&packet, &SockAddr::from(dst));
                }
            }
            let Some(next) = self.keys.iter().filter_map(KeyInjector::next_due).min() else { return };
            self.keys_timer.as_mut().reset(next.into());
            if self.keys_timer.as_mut().poll(cx).is_pending() {
                return;
            }
        }
    }

    /// Relays every datagram waiting on one socket. Ends on Pending, which
    /// tokio also returns once the task used its fair share of this poll.
    fn drain(&mut self, cx: &mut Context<'_>, leg: Leg, channel: Channel, clock: &mut Clock) {
        let from = self.sockets[leg.index()].get(channel);
        let to = self.sockets[leg.other().index()].get(channel);
        loop {
            let mut buf = ReadBuf::new(&mut self.buf);
            let src = match from.poll_recv_from(cx, &mut buf) {
                Poll::Ready(Ok(src)) => src,
                // e.g. ICMP errors reported on some systems: not fatal.
                Poll::Ready(Err(e)) => {
                    tracing::trace!(error = %e, "relay receive error");
                    continue;
                }
                Poll::Pending => return,
            };
            let mut len = buf.filled().len();
            // An SRTP device's packet counts only once it proved to be
            // theirs: a forged one must not latch, press keys or be relayed.
            if let Some(srtp) = self.srtp[leg.index()].as_mut() {
                let received = &self.buf[..len];
                let plain = match channel {
                    Channel::Rtp => srtp.unprotect_rtp(received),
                    Channel::Rtcp => srtp.unprotect_rtcp(received),
                };
                match plain {
                    Ok(plain) => {
                        len = plain.len();
                        self.buf[..len].copy_from_slice(&plain);
                    }
                    Err(why) => {
                        tracing::trace!(?why, ?leg, "SRTP packet dropped");
                        self.stats.dropped(DropReason::Srtp);
                        continue;
                    }
                }
            }
            let packet = &mut self.buf[..len];
            match self.switch.on_packet(leg, channel, src, clock.now()) {
                // Sent directly, not through tokio: a full send buffer means
                // the packet is dropped (as the network would), never queued.
                Verdict::Forward(dst) => {
                    // Only packets the latch accepted count: a stranger
                    // spraying telephone-events must not press keys.
                    if channel == Channel::Rtp {
                        // First: the detector and the hold-back know events by the receiver's number.
                        if let Some(map) = &self.event_pt[leg.index()] {
                            map.apply(packet);
                        }
                        if let Some(digit) = self.dtmf[leg.index()].on_rtp(packet) {
                            let _ = self.dtmf_events.send((leg, digit));
                        }
                        self.splice[leg.other().index()].rewrite(src, packet);
                        let event_pt = self.dtmf[leg.index()].payload_type();
                        if !self.keys[leg.other().index()].on_forward(packet, event_pt, clock.now()) {
                            continue;
                        }
                    }
                    let packet = match self.srtp[leg.other().index()].as_mut() {
                        None => std::borrow::Cow::Borrowed(&packet[..]),
                        Some(srtp) => {
                            let protected = match channel {
                                Channel::Rtp => srtp.protect_rtp(packet),
                                Channel::Rtcp => srtp.protect_rtcp(packet),
                            };
                            match protected {
                                Ok(p) => std::borrow::Cow::Owned(p),
                                Err(_) => {
                                    self.stats.dropped(DropReason::Srtp);
                                    continue;
                                }
                            }
                        }
                    };
                    match SockRef::from(to).send_to(&packet, &SockAddr::from(dst)) {
                        Ok(_) => self.stats.forwarded(leg, packet.len()),
                        Err(_) => self.stats.dropped(DropReason::SendFailed),
                    }
                }
                Verdict::Drop(reason) => self.stats.dropped(reason),
                Verdict::Muted => {}
            }
        }
    }
}
