//! Paging's media (1→N, one way): the caller sends to one port of ours and
//! every listener that answered gets a copy from a port of its own. What
//! listeners send is never read (the kernel drops it once the socket's
//! buffer is full), and nothing goes back to the caller. RTP only: RTCP
//! ports are held (the SDP names them) but not relayed.
//!
//! [`fanout`] decides where a packet goes (sans-IO); [`PageMedia`] is the
//! socket shell. No SIP types: the page's driver hands in SDP and listener
//! numbers.
pub mod fanout;
mod sdp;

pub use fanout::{Fanout, FanoutError, MAX_LISTENERS};
pub use sdp::{caller_answer, listener_offer, listener_target};

use crate::media::MediaEngine;
use crate::media::ports::PortPair;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Larger than any RTP packet on an Ethernet MTU.
const RECV_BUFFER_BYTES: usize = 8 * 1024;

enum Control {
    Add(usize, Arc<UdpSocket>, PortPair),
    Listen(usize, SocketAddr),
    Remove(usize),
}

/// One page's media; dropping it ends its task and frees every port.
pub struct PageMedia {
    engine: MediaEngine,
    caller_port: u16,
    ports: HashMap<usize, u16>,
    cap: usize,
    control: mpsc::UnboundedSender<Control>,
}

impl PageMedia {
    /// The caller's port pair; its media is taken from `caller_hosts` only.
    /// At most `cap` listeners (never more than [`MAX_LISTENERS`]).
    pub fn new(engine: MediaEngine, cap: usize, caller_hosts: Vec<IpAddr>) -> anyhow::Result<Self> {
        let pair = engine.allocate_ports()?;
        let caller_port = pair.lease.rtp_port();
        let socket = UdpSocket::from_std(pair.rtp.try_clone()?)?;
        let (control, rx) = mpsc::unbounded_channel();
        let cap = cap.min(MAX_LISTENERS);
        tokio::spawn(run(socket, pair, Fanout::new(cap, caller_hosts), rx));
        Ok(PageMedia { engine, caller_port, ports: HashMap::new(), cap, control })
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
        let _ = self.control.send(Control::Add(id, socket, pair));
        self.ports.insert(id, port);
        Ok(port)
    }

    /// It answered; its device listens at `to`.
    pub fn listen(&self, id: usize, to: SocketAddr) {
        let _ = self.control.send(Control::Listen(id, to));
    }

    /// It left (hung up, refused, cancelled): its port goes back.
    pub fn remove_listener(&mut self, id: usize) {
        self.ports.remove(&id);
        let _ = self.control.send(Control::Remove(id));
    }
}

async fn run(caller: UdpSocket, caller_pair: PortPair, mut fanout: Fanout, mut control: mpsc::UnboundedReceiver<Control>) {
    let mut listeners: HashMap<usize, (Arc<UdpSocket>, PortPair)> = HashMap::new();
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
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
                    fanout.listen(id, to);
                }
                Some(Control::Remove(id)) => {
                    fanout.remove(id);
                    listeners.remove(&id);
                }
            },
            r = caller.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                for (id, to) in fanout.from_caller(from) {
                    if let Some((socket, _)) = listeners.get(&id) {
                        // A full send buffer drops this copy, never the page.
                        let _ = socket.try_send_to(&buf[..n], to);
                    }
                }
            }
        }
    }
    if fanout.dropped > 0 {
        tracing::debug!(dropped = fanout.dropped, "page media: packets from other hosts than the caller's dropped");
    }
    drop(caller);
    drop(caller_pair);
}
