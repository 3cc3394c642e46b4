//! A door preview's video on the page fan-out: the caller's video RTP comes
//! to a port pair of its own and is copied, as its audio is, to each
//! listener's own video port pair, toward that listener's bridge. Nothing
//! goes back to the caller but keyframe requests: each listener's video
//! RTCP port is read for the PLI/FIR its bridge sends when its browser
//! needs a picture (a panel that joined late), and [`KeyframeGate`] makes
//! them one request to the caller per gap. Requests are taken only from
//! the host the listener's bridge receives on. Paging has no video.
use super::fanout::Fanout;
use super::keyframes::KeyframeGate;
use crate::media::ports::PortPair;
use crate::media::webrtc::keyframe_asked;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Keyframe requests waiting for the page task; more are dropped (the
/// gate would hold them anyway).
const REQUEST_QUEUE: usize = 16;

/// A listener bridge asked for a keyframe: (listener, from, FIR).
pub(super) type Request = (usize, SocketAddr, bool);

pub(super) fn request_channel() -> (mpsc::Sender<Request>, mpsc::Receiver<Request>) {
    mpsc::channel(REQUEST_QUEUE)
}

/// One listener's video ports; its RTCP reader ends with it.
pub(super) struct VideoListener {
    rtp: Arc<UdpSocket>,
    _pair: PortPair,
    reader: JoinHandle<()>,
}

impl Drop for VideoListener {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl VideoListener {
    /// Listener `id`'s video port pair; its RTCP port's keyframe requests go to `requests`.
    pub(super) fn new(id: usize, pair: PortPair, requests: mpsc::Sender<Request>) -> anyhow::Result<Self> {
        let rtp = Arc::new(UdpSocket::from_std(pair.rtp.try_clone()?)?);
        let rtcp = UdpSocket::from_std(pair.rtcp.try_clone()?)?;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, from)) = rtcp.recv_from(&mut buf).await {
                if let Some(fir) = keyframe_asked(&buf[..n]) {
                    // Full: the page task has requests enough to act on.
                    let _ = requests.try_send((id, from, fir));
                }
            }
        });
        Ok(VideoListener { rtp, _pair: pair, reader })
    }
}

/// The caller's side of the page's video, in the page task.
pub(super) struct VideoShell {
    pub(super) rtp: UdpSocket,
    pub(super) rtcp: UdpSocket,
    _pair: PortPair,
    /// Where keyframe requests go: the caller's SDP's video RTCP, then
    /// where its RTCP comes from.
    caller_rtcp: Option<SocketAddr>,
    caller_hosts: Vec<IpAddr>,
    fanout: Fanout,
    gate: KeyframeGate,
    listeners: HashMap<usize, VideoListener>,
}

impl VideoShell {
    pub(super) fn new(pair: PortPair, caller_rtcp: Option<SocketAddr>, caller_hosts: Vec<IpAddr>, cap: usize) -> anyhow::Result<Self> {
        let rtp = UdpSocket::from_std(pair.rtp.try_clone()?)?;
        let rtcp = UdpSocket::from_std(pair.rtcp.try_clone()?)?;
        let fanout = Fanout::new(cap, caller_hosts.clone());
        Ok(VideoShell { rtp, rtcp, _pair: pair, caller_rtcp, caller_hosts, fanout, gate: KeyframeGate::new(rand::random()), listeners: HashMap::new() })
    }

    pub(super) fn add(&mut self, id: usize, listener: VideoListener) {
        if self.fanout.add(id).is_ok() {
            self.listeners.insert(id, listener);
        }
    }

    pub(super) fn listen(&mut self, id: usize, to: SocketAddr) {
        self.fanout.listen(id, to);
    }

    pub(super) fn pause(&mut self, id: usize) {
        self.fanout.pause(id);
    }

    pub(super) fn remove(&mut self, id: usize) {
        self.fanout.remove(id);
        self.listeners.remove(&id);
    }

    /// The caller's video packet: a copy to each listening bridge, and a
    /// keyframe request held for its SSRC may go now.
    pub(super) fn on_caller_packet(&mut self, packet: &[u8], from: SocketAddr) {
        let Some(targets) = self.fanout.from_caller(from) else { return };
        if packet.len() >= 12 && packet[0] >> 6 == 2 {
            let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
            if let Some(request) = self.gate.on_caller_rtp(ssrc, Instant::now()) {
                self.send_request(&request);
            }
        }
        for (id, to) in targets {
            if let Some(l) = self.listeners.get(&id) {
                // A full send buffer drops this copy, never the page.
                let _ = l.rtp.try_send_to(packet, to);
            }
        }
    }

    /// The caller's RTCP (its reports): read so its source is where our
    /// requests go (symmetric RTCP); anyone else's is dropped.
    pub(super) fn caller_rtcp_from(&mut self, from: SocketAddr) {
        if self.caller_hosts.contains(&from.ip()) {
            self.caller_rtcp = Some(from);
        }
    }

    /// Listener `id`'s bridge asks for a keyframe from `from`: taken only
    /// from the host it receives the video on.
    pub(super) fn keyframe_asked(&mut self, (id, from, fir): Request) {
        if self.fanout.target(id).is_none_or(|to| to.ip() != from.ip()) {
            return;
        }
        if let Some(request) = self.gate.on_request(fir, Instant::now()) {
            self.send_request(&request);
        }
    }

    fn send_request(&self, request: &[u8]) {
        if let Some(to) = self.caller_rtcp {
            tracing::debug!(%to, "door preview: keyframe request to the caller");
            let _ = self.rtcp.try_send_to(request, to);
        }
    }

    pub(super) fn log_end(&self) {
        tracing::debug!(asked = self.gate.asked, sent = self.gate.sent, dropped = self.fanout.dropped, "door preview video: keyframe requests asked by bridges and sent to the caller");
    }
}
