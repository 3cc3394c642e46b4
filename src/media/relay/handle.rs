//! What the signalling side holds for one stream: a handle to the relay's
//! task. Dropping it ends the task, which closes the sockets and returns
//! the ports.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::Leg;
use super::engine::ActiveGuard;
use super::stats::{RelayStats, StatsCells};
use super::switch::Switch;
use super::task::{Control, LegSockets, RelayTask, Reports};
use crate::media::ports::PortPair;
use crate::media::srtp::SrtpKeys;

pub struct Relay {
    ports: [u16; 2],
    /// Rare updates only (SDP, hold); the task sees them on its next wake-up.
    control: mpsc::UnboundedSender<Control>,
    timed_out: watch::Receiver<bool>,
    stats: Arc<StatsCells>,
    dtmf: Option<mpsc::UnboundedReceiver<(Leg, char)>>,
}

impl Relay {
    pub(super) fn spawn(pairs: [PortPair; 2], timeout: Duration, active: ActiveGuard) -> io::Result<Relay> {
        let [a, b] = pairs;
        let ports = [a.lease.rtp_port(), b.lease.rtp_port()];
        let sockets = [
            LegSockets { rtp: UdpSocket::from_std(a.rtp)?, rtcp: UdpSocket::from_std(a.rtcp)? },
            LegSockets { rtp: UdpSocket::from_std(b.rtp)?, rtcp: UdpSocket::from_std(b.rtcp)? },
        ];
        let (control, control_rx) = mpsc::unbounded_channel();
        let (timed_out_tx, timed_out) = watch::channel(false);
        let stats = Arc::new(StatsCells::default());
        let (dtmf_tx, dtmf_rx) = mpsc::unbounded_channel();
        let switch = Switch::new(timeout, Instant::now());
        let task =
            RelayTask::new(
                sockets,
                [a.lease, b.lease],
                switch,
                control_rx,
                Reports { timed_out: timed_out_tx, stats: Arc::clone(&stats), dtmf_events: dtmf_tx },
                active,
            );
        tokio::spawn(task.run());
        Ok(Relay { ports, control, timed_out, stats, dtmf: Some(dtmf_rx) })
    }

    /// The RTP port we advertise to `leg`'s device (RTCP is this + 1).
    pub fn local_port(&self, leg: Leg) -> u16 {
        self.ports[leg.index()]
    }

    /// Where `leg`'s device said (in SDP) it receives. Call again on every
    /// new SDP from that leg; a changed address re-opens latching.
    pub fn set_peer(&self, leg: Leg, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        // Fails only if the task is gone, and then there is nothing to update.
        let _ = self.control.send(Control::Peer { leg, rtp, rtcp });
    }

    /// The host `leg`'s device signals from (its NAT's public address): it
    /// may send this leg's media besides the host its SDP names. No other
    /// host is ever latched.
    pub fn set_signalling_host(&self, leg: Leg, host: Option<std::net::IpAddr>) {
        let _ = self.control.send(Control::SignallingHost { leg, host });
    }

    /// Off while the call is on hold or inactive, where silence is expected.
    pub fn set_timeout_enabled(&self, on: bool) {
        let _ = self.control.send(Control::TimeoutEnabled(on));
    }

    /// Resolves once no RTP flowed either way for the configured timeout
    /// (checked every second at most), or if the relay's task has ended.
    /// Cancel-safe: a fresh call starts a fresh wait.
    pub async fn timed_out(&self) {
        let mut timed_out = self.timed_out.clone();
        let _ = timed_out.wait_for(|t| *t).await;
    }

    /// Detect RFC 4733 key presses in RTP from `leg` with this payload type.
    pub fn set_dtmf_payload_type(&self, leg: Leg, pt: Option<u8>) {
        let _ = self.control.send(Control::DtmfPayloadType { leg, pt });
    }

    /// Telephone-events arriving from `from` with one payload type leave
    /// with another (the number the other side's SDP named); None: as they are.
    pub fn set_event_pt_map(&self, from: Leg, map: Option<super::event_pt::EventPtMap>) {
        let _ = self.control.send(Control::EventPtMap { from, map });
    }

    /// Send a key press toward `to`'s device as RFC 4733 events with payload
    /// type `pt`, inside the stream it receives.
    pub fn send_dtmf(&self, to: Leg, pt: u8, digit: char) {
        let _ = self.control.send(Control::SendDtmf { to, pt, digit });
    }

    /// Play our own encoded 20 ms audio frames (payload type `pt`) toward
    /// `to`'s device, in place of the other side's audio while they last.
    pub fn play(&self, to: Leg, pt: u8, frames: Vec<Vec<u8>>) {
        let _ = self.control.send(Control::Play { to, pt, frames });
    }

    /// On: what `from`'s device sends (RTP) does not reach the other leg.
    pub fn set_muted(&self, from: Leg, on: bool) {
        let _ = self.control.send(Control::Mute { from, on });
    }

    /// On: the other side's RFC 4733 events are not forwarded to `to` (its
    /// device takes key presses another way); they are still detected.
    pub fn set_hold_back_dtmf(&self, to: Leg, on: bool) {
        let _ = self.control.send(Control::HoldBackDtmf { to, on });
    }

    /// SDES-SRTP toward `leg`'s device with these keys (`None`: plain RTP).
    /// New keys for a leg that has some keep each unchanged direction's
    /// roll-over counter and replay window.
    pub fn set_srtp(&self, leg: Leg, keys: Option<SrtpKeys>) {
        let _ = self.control.send(Control::Srtp { leg, keys: keys.map(Box::new) });
    }

    /// The stream toward `to`'s device was started by another sender (a
    /// WebRTC bridge that is gone): what the relay sends it continues that
    /// stream's SSRC, sequence numbers and timestamps.
    pub fn continue_stream(&self, to: Leg, from: crate::media::rtp::StreamPosition) {
        let _ = self.control.send(Control::ContinueStream { to, from });
    }

    /// The stream of (leg, digit) key presses; can be taken once.
    pub fn take_dtmf_events(&mut self) -> Option<mpsc::UnboundedReceiver<(Leg, char)>> {
        self.dtmf.take()
    }

    pub fn stats(&self) -> RelayStats {
        self.stats.snapshot()
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("ports", &self.ports).field("stats", &self.stats()).finish()
    }
}
