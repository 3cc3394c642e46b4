//! The SIP UDP socket, read whole.
//!
//! rsipstack 0.7.14 reads UDP into a fixed 8,192-byte buffer
//! (`MAX_UDP_BUF_SIZE`, no setting), and a datagram larger than the buffer is
//! cut by the kernel without a word, then parsed as if it were whole (a 9.7 KB
//! INVITE lost its m= line). This wrapper sits under rsipstack's
//! `UdpConnection` (its `platform::net::UdpSocket` seam): every datagram is
//! received into a 64 KiB buffer, so its real size is known, and only one that
//! fits both `security.max_message_bytes` and rsipstack's buffer is handed up.
//! A larger request gets `513 Message Too Large` (RFC 3261 21.5.14), anything
//! else larger is dropped; nothing truncated is ever processed. A datagram
//! whose body is shorter than its Content-Length (cut by its sender) gets 400
//! if it is a request and is dropped otherwise (RFC 3261 18.3). A request
//! rsipstack cannot parse, which it would drop without a word, gets 400 (501
//! for an unknown method) when it has the headers a response needs
//! (`stateless::datagram_refusal`, RFC 4475 3.1.2). Raising the
//! 8 KB ceiling itself would need a patched rsipstack; SIP over UDP should stay
//! far below it anyway (RFC 3261 18.1.1: above 1,300 bytes a UDP client
//! switches to TCP, whose limit is `max_message_bytes`).
//!
//! Under overload (the SIP stack's queue long), a request that starts new
//! work is refused with 503 or dropped before it is parsed (`shed.rs`).
//!
//! Before any of that, a datagram from a banned source (wrong passwords, or
//! over the flood limit) is dropped, and every request datagram is counted
//! against the flood limit (`auth/flood.rs`), unparsed: a flood costs a hash
//! lookup per datagram, not a parse and a transaction.
use super::auth::ban::BanList;
use super::auth::flood::FloodLimiter;
use super::guard::flood_admits;
use super::shed::{self, Shedder, Verdict};
use super::stateless;
use rsipstack::transport::connection::MAX_UDP_BUF_SIZE;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Larger than any UDP payload, so the kernel never truncates.
const DATAGRAM_MAX: usize = 65_536;

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`): at
/// 10,000 REGISTERs/s the default 208 KiB (about 300 datagrams queued) filled
/// whenever the receive loop lost the CPU for a few tens of milliseconds, and
/// every datagram dropped there came back 500 ms later as a retransmission.
const RECV_BUFFER: usize = 4 << 20;

/// The SIP UDP socket, non-blocking, with a receive buffer for bursts.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // best effort: a smaller buffer still works, it absorbs shorter bursts
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    tracing::debug!(%addr, recv_buffer = socket.recv_buffer_size().unwrap_or(0), "SIP UDP socket");
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

pub struct WholeDatagrams {
    socket: tokio::net::UdpSocket,
    limit: usize,
    buf: tokio::sync::Mutex<Vec<u8>>,
    bans: Arc<Mutex<BanList>>,
    flood: Arc<Mutex<FloodLimiter>>,
    shed: Arc<Shedder>,
}

impl WholeDatagrams {
    pub fn new(socket: tokio::net::UdpSocket, max_message_bytes: usize, bans: Arc<Mutex<BanList>>, flood: Arc<Mutex<FloodLimiter>>, shed: Arc<Shedder>) -> Self {
        WholeDatagrams {
            socket,
            limit: udp_limit(max_message_bytes),
            buf: tokio::sync::Mutex::new(vec![0; DATAGRAM_MAX]),
            bans,
            flood,
            shed,
        }
    }

    /// Whether a datagram from `from` goes on at all.
    fn admitted(&self, data: &[u8], from: SocketAddr) -> bool {
        // CRLF keep-alives (RFC 5626) are neither counted nor parsed further.
        if data.len() <= 4 {
            return true;
        }
        if self.bans.lock().map(|b| b.is_banned(from.ip(), Instant::now())).unwrap_or(false) {
            return false;
        }
        flood_admits(&self.flood, from.ip(), !data.starts_with(b"SIP/"), "udp")
    }

    /// Answer a datagram that is not handed up (`status` to a request, nothing
    /// to the rest, nothing to a banned source).
    async fn refuse(&self, data: &[u8], from: SocketAddr, status: u16, reason: &str) {
        if self.bans.lock().map(|b| b.is_banned(from.ip(), Instant::now())).unwrap_or(false) {
            return;
        }
        let tag = format!("{:08x}", rand::random::<u32>());
        let (len, limit) = (data.len(), self.limit);
        match stateless::reply_to_raw(data, status, reason, &tag) {
            Some(reply) => {
                tracing::info!(%from, len, limit, "SIP datagram refused: {status} {reason}");
                let _ = self.socket.send_to(&reply, from).await;
            }
            None => tracing::info!(%from, len, limit, "SIP datagram dropped ({reason})"),
        }
    }
}

/// The largest datagram handed to rsipstack.
pub fn udp_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.min(MAX_UDP_BUF_SIZE)
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for WholeDatagrams {
    async fn recv_from(&self, out: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut buf = self.buf.lock().await;
        loop {
            let (len, from) = self.socket.recv_from(&mut buf).await?;
            if !self.admitted(&buf[..len], from) {
                continue;
            }
            // before the parse below: under overload that is the cost to save
            match self.shed.judge(&buf[..len], false) {
                Verdict::Pass => {}
                Verdict::Drop => continue,
                Verdict::Refuse => {
                    if let Some(reply) = shed::refusal(&buf[..len], &format!("{:08x}", rand::random::<u32>())) {
                        let _ = self.socket.send_to(&reply, from).await;
                    }
                    continue;
                }
            }
            match stateless::datagram_refusal(&buf[..len], self.limit.min(out.len())) {
                Some((status, reason)) => self.refuse(&buf[..len], from, status, reason).await,
                None => {
                    out[..len].copy_from_slice(&buf[..len]);
                    return Ok((len, from));
                }
            }
        }
    }

    async fn send_to(&self, data: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(data, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
