use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use super::ports::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[test]
fn hands_out_even_rtp_with_odd_rtcp() {
    let alloc = PortAllocator::new(LOCAL, (38001, 38010)).unwrap();
    assert_eq!(alloc.capacity(), 4, "38002..=38009 are four pairs; 38010 has no partner");
    let pair = alloc.allocate().unwrap();
    let port = pair.lease.rtp_port();
    assert_eq!(port % 2, 0);
    assert_eq!(pair.rtp.local_addr().unwrap().port(), port);
    assert_eq!(pair.rtcp.local_addr().unwrap().port(), port + 1);
}

#[test]
fn refuses_a_range_without_a_pair() {
    assert!(matches!(PortAllocator::new(LOCAL, (38021, 38022)), Err(PortError::EmptyRange { .. })));
    assert!(matches!(PortAllocator::new(LOCAL, (38030, 38020)), Err(PortError::EmptyRange { .. })));
    assert!(PortAllocator::new(LOCAL, (65534, 65535)).is_ok());
    assert!(PortAllocator::new(LOCAL, (65535, 65535)).is_err());
}

#[test]
fn exhaustion_is_a_clear_error_and_drop_returns_ports() {
    let alloc = PortAllocator::new(LOCAL, (38040, 38045)).unwrap();
    let leases: Vec<PortPair> = (0..3).map(|_| alloc.allocate().unwrap()).collect();
    assert_eq!(alloc.in_use(), 3);
    let err = alloc.allocate().unwrap_err();
    assert!(matches!(err, PortError::Exhausted { held: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("38040-38045"), "{err}");
    drop(leases);
    assert_eq!(alloc.in_use(), 0);
    let again: Vec<PortPair> = (0..3).map(|_| alloc.allocate().unwrap()).collect();
    assert_eq!(again.len(), 3);
}

#[test]
fn round_robin_does_not_reuse_a_just_freed_port() {
    let alloc = PortAllocator::new(LOCAL, (38060, 38067)).unwrap();
    let first = alloc.allocate().unwrap();
    let freed = first.lease.rtp_port();
    drop(first);
    let ports: Vec<u16> = (0..3).map(|_| alloc.allocate().unwrap().lease.rtp_port()).collect();
    assert!(!ports.contains(&freed), "{freed} reused among {ports:?}");
    // Only after the cursor wraps around does the port come back.
    assert_eq!(alloc.allocate().unwrap().lease.rtp_port(), freed);
}

#[test]
fn skips_ports_taken_by_other_programs() {
    let squatter = UdpSocket::bind((LOCAL, 38081)).unwrap();
    let alloc = PortAllocator::new(LOCAL, (38080, 38083)).unwrap();
    let pair = alloc.allocate().unwrap();
    assert_eq!(pair.lease.rtp_port(), 38082, "38080 skipped: its RTCP port is taken");
    let err = alloc.allocate().unwrap_err();
    assert!(matches!(err, PortError::Exhausted { held: 1, .. }), "{err:?}");
    drop(squatter);
}

#[test]
fn unusable_bind_address_is_reported_not_skipped() {
    // TEST-NET-1 is on no local interface.
    let alloc = PortAllocator::new("192.0.2.1".parse().unwrap(), (38100, 38109)).unwrap();
    let err = alloc.allocate().unwrap_err();
    assert!(matches!(err, PortError::Bind { port: 38100, .. }), "{err:?}");
}
