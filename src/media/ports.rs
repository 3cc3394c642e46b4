//! RTP/RTCP port pairs from a configured range. Each lease binds an even RTP
//! port and the odd RTCP port above it (RFC 3550 §11), skips ports other
//! programs hold, and hands ports out round-robin so a port freed by one call
//! is not reused at once (late packets of the old call would land in the new).
//! The lock is taken only to allocate and to free, never per packet.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

use socket2::{Domain, Protocol, Socket, Type};

/// Room for a burst of ~1000 G.711 packets if the relay task is late; the
/// kernel caps it at net.core.{r,w}mem_max and memory is used only when queued.
const RTP_BUFFER_BYTES: usize = 256 * 1024;
const RTCP_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("RTP port range {first}-{last} holds no even/odd port pair")]
    EmptyRange { first: u16, last: u16 },
    #[error("no free RTP port pair in {first}-{last}: {held} pairs held by calls, the rest busy in other programs")]
    Exhausted { first: u16, last: u16, held: usize },
    #[error("cannot bind RTP port {port} on {bind}: {source}")]
    Bind { bind: IpAddr, port: u16, source: io::Error },
}

#[derive(Debug)]
struct Pool {
    /// Lowest even port of the range.
    base: u16,
    first: u16,
    last: u16,
    /// `held[i]` ⇔ pair `base + 2i` is leased.
    held: Vec<bool>,
    held_count: usize,
    /// Next pair index to try: the round-robin cursor.
    cursor: usize,
}

#[derive(Clone, Debug)]
pub struct PortAllocator {
    bind: IpAddr,
    pool: Arc<Mutex<Pool>>,
}

/// A bound RTP/RTCP socket pair; the ports return to the pool when `lease`
/// drops, so drop it after the sockets.
#[derive(Debug)]
pub struct PortPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub lease: PortLease,
}

#[derive(Debug)]
pub struct PortLease {
    rtp_port: u16,
    pool: Arc<Mutex<Pool>>,
}

impl PortAllocator {
    /// `range` is inclusive; an odd first port is rounded up to even.
    pub fn new(bind: IpAddr, range: (u16, u16)) -> Result<Self, PortError> {
        let (first, last) = range;
        let start = first.max(2);
        let base = start.saturating_add(start % 2);
        let pairs = if last > base { usize::from(last - base).div_ceil(2) } else { 0 };
        if pairs == 0 {
            return Err(PortError::EmptyRange { first, last });
        }
        let pool = Pool { base, first, last, held: vec![false; pairs], held_count: 0, cursor: 0 };
        Ok(PortAllocator { bind, pool: Arc::new(Mutex::new(pool)) })
    }

    /// Binds the next free pair after the previous allocation.
    pub fn allocate(&self) -> Result<PortPair, PortError> {
        let mut pool = lock(&self.pool);
        let pairs = pool.held.len();
        for step in 0..pairs {
            let idx = (pool.cursor + step) % pairs;
            if pool.held[idx] {
                continue;
            }
            let rtp_port = pool.base + 2 * idx as u16;
            match bind_pair(self.bind, rtp_port) {
                Ok((rtp, rtcp)) => {
                    pool.held[idx] = true;
                    pool.held_count += 1;
                    pool.cursor = (idx + 1) % pairs;
                    let lease = PortLease { rtp_port, pool: Arc::clone(&self.pool) };
                    return Ok(PortPair { rtp, rtcp, lease });
                }
                // Another program has it: try the next pair.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                // Wrong bind address, no permission...: every port would fail alike.
                Err(source) => return Err(PortError::Bind { bind: self.bind, port: rtp_port, source }),
            }
        }
        Err(PortError::Exhausted { first: pool.first, last: pool.last, held: pool.held_count })
    }

    /// Pairs currently leased.
    pub fn in_use(&self) -> usize {
        lock(&self.pool).held_count
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        lock(&self.pool).held.len()
    }
}

impl PortLease {
    pub fn rtp_port(&self) -> u16 {
        self.rtp_port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut pool = lock(&self.pool);
        let idx = usize::from((self.rtp_port - pool.base) / 2);
        if pool.held[idx] {
            pool.held[idx] = false;
            pool.held_count -= 1;
        }
    }
}

/// A panic elsewhere while holding the lock leaves the pool consistent (every
/// update is a single step), so keep using it rather than failing every call.
fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bind_pair(ip: IpAddr, rtp_port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
    let rtp = bind_one(SocketAddr::new(ip, rtp_port), RTP_BUFFER_BYTES)?;
    let rtcp = bind_one(SocketAddr::new(ip, rtp_port + 1), RTCP_BUFFER_BYTES)?;
    Ok((rtp, rtcp))
}

/// Non-blocking UDP socket with large buffers, ready for tokio's `from_std`.
fn bind_one(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `::` should also take IPv4 devices; not all systems allow it.
        let _ = socket.set_only_v6(false);
    }
    // Best effort: a smaller buffer still works, just absorbs shorter bursts.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
