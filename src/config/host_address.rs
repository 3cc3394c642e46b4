//! The host's primary address, found without sending a packet: a UDP
//! socket's `connect()` to a documentation address (RFC 5737 TEST-NET-1)
//! only picks the route and its source address; nothing goes on the wire.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The source address of the default route, when there is one and it is
/// not loopback or unspecified.
pub fn primary_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).ok()?;
    socket.connect(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9))).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}
