//! Paging's media (1→N, one way): the caller sends to one port of ours and
//! every listener that answered gets a copy from a port of its own. What
//! listeners send is never read (the kernel drops it once the socket's
//! buffer is full), and nothing goes back to the caller. RTP only: RTCP
//! ports are held (the SDP names them) but not relayed. A listener that is
//! a browser gets a WebRTC bridge between its port and the browser
//! ([`browsers`]).
//!
//! The caller's silence is watched as a call's is (the relay's
//! [`Watchdog`], `rtp.media_timeout_secs`): armed when the first listener
//! connects, paused while the caller holds; [`PageMedia::timed_out`] then
//! tells the driver to end the page. A page counts as one of the engine's
//! active relays (`/health`'s `media_relays`) while it holds ports.
//!
//! A door preview's fan-out carries the caller's video too ([`video`],
//! [`PageMedia::enable_video`]), with the bridges' keyframe requests made
//! one toward the caller ([`keyframes`]).
//!
//! [`fanout`] decides where a packet goes (sans-IO); [`PageMedia`] is the
//! socket shell. No SIP types: the page's driver hands in SDP and listener
//! numbers.
mod browsers;
pub mod fanout;
pub mod keyframes;
mod sdp;
mod video;

pub use fanout::{Fanout, FanoutError, MAX_LISTENERS};
pub use sdp::{caller_answer, caller_holds, caller_hosts, caller_video_rtcp, listener_answer, listener_offer, listener_target, listener_video_target, page_codecs, preview_caller_answer, preview_listener_offer, preview_video, PageVideo};

use crate::media::MediaEngine;
use crate::media::ports::PortPair;
use crate::media::relay::ActiveGuard;
use crate::media::relay::watchdog::Watchdog;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

/// Larger than any RTP packet on an Ethernet MTU.
const RECV_BUFFER_BYTES: usize = 8 * 1024;

enum Control {
    Add(usize, Arc<UdpSocket>, PortPair),
    Listen(usize, SocketAddr),
    Pause(usize),
    Remove(usize),
    TimeoutEnabled(bool),
    Video(Box<video::VideoShell>),
    AddVideo(usize, video::VideoListener),
    ListenVideo(usize, SocketAddr),
}

/// One page's media; dropping it ends its task and frees every port.
pub struct PageMedia {
    engine: MediaEngine,
    caller_port: u16,
    ports: HashMap<usize, u16>,
    cap: usize,
    control: mpsc::UnboundedSender<Control>,
    timed_out: watch::Receiver<bool>,
    /// The listeners that are browsers: their bridges.
    browsers: HashMap<usize, crate::media::call_media::BrowserLeg>,
    /// With video (a door preview): the caller's video port, each listener's.
    video_port: Option<u16>,
    video_ports: HashMap<usize, u16>,
    caller_hosts: Vec<IpAddr>,
    /// Where the listeners' bridges' keyframe requests go (the page task).
    keyframe_requests: mpsc::Sender<video::Request>,
}

impl PageMedia {
    /// The caller's port pair; its media is taken from `caller_hosts` only.
    /// At most `cap` listeners (never more than [`MAX_LISTENERS`]).
    pub fn new(engine: MediaEngine, cap: usize, caller_hosts: Vec<IpAddr>) -> anyhow::Result<Self> {
        let pair = engine.allocate_ports()?;
        let caller_port = pair.lease.rtp_port();
        let socket = UdpSocket::from_std(pair.rtp.try_clone()?)?;
        let (control, rx) = mpsc::unbounded_channel();
        let (timed_out_tx, timed_out) = watch::channel(false);
        let cap = cap.min(MAX_LISTENERS);
        let dog = Watchdog::new(engine.config().timeout, Instant::now());
        let shell = Shell { caller: socket, _caller_pair: pair, dog, timed_out: timed_out_tx, _active: engine.count_active() };
        let (keyframe_requests, requests) = video::request_channel();
        tokio::spawn(run(shell, Fanout::new(cap, caller_hosts.clone()), rx, requests));
        Ok(PageMedia { engine, caller_port, ports: HashMap::new(), cap, control, timed_out, browsers: HashMap::new(), video_port: None, video_ports: HashMap::new(), caller_hosts, keyframe_requests })
    }

    /// The page carries the caller's video too (a door preview), before any
    /// listener is added: our port for it. Keyframe requests go to
    /// `caller_rtcp` (then to where the caller's RTCP comes from).
    pub fn enable_video(&mut self, caller_rtcp: Option<SocketAddr>) -> anyhow::Result<u16> {
        if let Some(port) = self.video_port {
            return Ok(port);
        }
        if !self.ports.is_empty() {
            anyhow::bail!("video is set up before the first listener");
        }
        let pair = self.engine.allocate_ports()?;
        let port = pair.lease.rtp_port();
        let shell = video::VideoShell::new(pair, caller_rtcp, self.caller_hosts.clone(), self.cap)?;
        let _ = self.control.send(Control::Video(Box::new(shell)));
        self.video_port = Some(port);
        Ok(port)
    }

    /// Our video port for the caller, with video.
    pub fn caller_video_port(&self) -> Option<u16> {
        self.video_port
    }

    /// Listener `id`'s video port, with video.
    pub fn listener_video_port(&self, id: usize) -> Option<u16> {
        self.video_ports.get(&id).copied()
    }

    /// Resolves once the caller sent no RTP for the media timeout after the
    /// first listener connected (not while it holds), or if the task ended.
    /// Cancel-safe.
    pub async fn timed_out(&self) {
        let mut timed_out = self.timed_out.clone();
        let _ = timed_out.wait_for(|t| *t).await;
    }

    /// Off while the caller holds the page (its SDP says it sends nothing).
    pub fn set_timeout_enabled(&self, on: bool) {
        let _ = self.control.send(Control::TimeoutEnabled(on));
    }

    /// The port listener `id` was offered, while it is on the page.
    pub fn listener_port(&self, id: usize) -> Option<u16> {
        self.ports.get(&id).copied()
    }

    pub fn advertise(&self) -> IpAddr {
        self.engine.advertise()
    }

    pub fn caller_port(&self) -> u16 {
        self.caller_port
    }

    /// A listener is rung: its port (the one its offer names).
    pub fn add_listener(&mut self, id: usize) -> anyhow::Result<u16> {
        if let Some(p) = self.ports.get(&id) {
            return Ok(*p);
        }
        if self.ports.len() >= self.cap {
            anyhow::bail!("a page holds at most {} listeners", self.cap);
        }
        let pair = self.engine.allocate_ports()?;
        let port = pair.lease.rtp_port();
        let socket = Arc::new(UdpSocket::from_std(pair.rtp.try_clone()?)?);
        if self.video_port.is_some() {
            let video_pair = self.engine.allocate_ports()?;
            let video_port = video_pair.lease.rtp_port();
            let listener = video::VideoListener::new(id, video_pair, self.keyframe_requests.clone())?;
            let _ = self.control.send(Control::AddVideo(id, listener));
            self.video_ports.insert(id, video_port);
        }
        let _ = self.control.send(Control::Add(id, socket, pair));
        self.ports.insert(id, port);
        Ok(port)
    }

    /// Its bridge takes the caller's video at `to`.
    pub fn listen_video(&self, id: usize, to: SocketAddr) {
        let _ = self.control.send(Control::ListenVideo(id, to));
    }

    /// It answered; its device listens at `to`.
    pub fn listen(&self, id: usize, to: SocketAddr) {
        let _ = self.control.send(Control::Listen(id, to));
    }

    /// It holds the page (takes no audio now) but stays on it.
    pub fn pause(&self, id: usize) {
        let _ = self.control.send(Control::Pause(id));
    }

    /// It left (hung up, refused, cancelled): its port goes back.
    pub fn remove_listener(&mut self, id: usize) {
        self.ports.remove(&id);
        self.video_ports.remove(&id);
        self.browsers.remove(&id);
        let _ = self.control.send(Control::Remove(id));
    }
}

/// The page task's own state besides the fan-out.
struct Shell {
    caller: UdpSocket,
    _caller_pair: PortPair,
    dog: Watchdog,
    timed_out: watch::Sender<bool>,
    /// Counted as an active relay until the task ends (its ports closed).
    _active: ActiveGuard,
}

/// A packet on `socket`, never when there is none (no video).
async fn recv_on(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn run(mut shell: Shell, mut fanout: Fanout, mut control: mpsc::UnboundedReceiver<Control>, mut requests: mpsc::Receiver<video::Request>) {
    let mut listeners: HashMap<usize, (Arc<UdpSocket>, PortPair)> = HashMap::new();
    let mut video: Option<Box<video::VideoShell>> = None;
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut video_buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut rtcp_buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut armed = false;
    let mut tick = tokio::time::interval(shell.dog.check_period());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            c = control.recv() => match c {
                None => break,
                Some(Control::Add(id, socket, pair)) => {
                    if fanout.add(id).is_ok() {
                        listeners.insert(id, (socket, pair));
                    }
                }
                Some(Control::Listen(id, to)) => {
                    // The first listener connected: the caller's silence counts from now.
                    if fanout.listen(id, to) && !armed {
                        armed = true;
                        shell.dog.arm(Instant::now());
                    }
                }
                Some(Control::Pause(id)) => {
                    fanout.pause(id);
                    if let Some(v) = video.as_mut() {
                        v.pause(id);
                    }
                }
                Some(Control::Remove(id)) => {
                    fanout.remove(id);
                    listeners.remove(&id);
                    if let Some(v) = video.as_mut() {
                        v.remove(id);
                    }
                }
                Some(Control::TimeoutEnabled(on)) => shell.dog.set_enabled(on, Instant::now()),
                Some(Control::Video(v)) => video = Some(v),
                Some(Control::AddVideo(id, listener)) => {
                    if let Some(v) = video.as_mut() {
                        v.add(id, listener);
                    }
                }
                Some(Control::ListenVideo(id, to)) => {
                    if let Some(v) = video.as_mut() {
                        v.listen(id, to);
                    }
                }
            },
            r = recv_on(video.as_deref().map(|v| &v.rtp), &mut video_buf) => {
                if let (Ok((n, from)), Some(v)) = (r, video.as_mut()) {
                    v.on_caller_packet(&video_buf[..n], from);
                }
            }
            r = recv_on(video.as_deref().map(|v| &v.rtcp), &mut rtcp_buf) => {
                if let (Ok((_, from)), Some(v)) = (r, video.as_mut()) {
                    v.caller_rtcp_from(from);
                }
            }
            Some(request) = requests.recv() => {
                if let Some(v) = video.as_mut() {
                    v.keyframe_asked(request);
                }
            }
            r = shell.caller.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let Some(targets) = fanout.from_caller(from) else { continue };
                shell.dog.on_media(Instant::now());
                for (id, to) in targets {
                    if let Some((socket, _)) = listeners.get(&id) {
                        // A full send buffer drops this copy, never the page.
                        let _ = socket.try_send_to(&buf[..n], to);
                    }
                }
            }
            _ = tick.tick() => {
                if shell.dog.is_timed_out(Instant::now()) {
                    shell.timed_out.send_if_modified(|t| !std::mem::replace(t, true));
                }
            }
        }
    }
    if fanout.dropped > 0 {
        tracing::debug!(dropped = fanout.dropped, "page media: packets from other hosts than the caller's dropped");
    }
    if let Some(v) = &video {
        v.log_end();
    }
    drop(video);
    drop(listeners);
    drop(shell);
}
