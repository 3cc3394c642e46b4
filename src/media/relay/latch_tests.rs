use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::latch::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const SDP: &str = "192.168.1.20:4000";
const NAT: &str = "203.0.113.7:61000";
const SPOOF: &str = "198.51.100.66:5555";
/// Another source on the device's own router.
const OTHER_PORT: &str = "203.0.113.7:9999";

/// A device behind NAT: its SDP names its private address, its signalling
/// came from the router's public one.
fn signalled() -> Latch {
    let mut latch = Latch::default();
    latch.set_peer(addr(SDP));
    latch.set_signalling_host(Some(addr(NAT).ip()));
    latch
}

#[test]
fn sends_to_sdp_address_before_latching() {
    let latch = signalled();
    assert_eq!(latch.target(), Some(addr(SDP)));
    assert_eq!(latch.latched(), None);
}

#[test]
fn drops_packets_before_any_peer_is_known() {
    let mut latch = Latch::default();
    assert_eq!(latch.admit(addr(NAT), Instant::now()), Admit::NoPeer);
    assert_eq!(latch.target(), None);
}

#[test]
fn first_packet_latches_its_source() {
    let mut latch = signalled();
    assert_eq!(latch.admit(addr(NAT), Instant::now()), Admit::Accept);
    assert_eq!(latch.target(), Some(addr(NAT)));
}

#[test]
fn stranger_is_refused_while_latched_source_talks() {
    let t0 = Instant::now();
    let mut latch = signalled();
    latch.admit(addr(NAT), t0);
    assert_eq!(latch.admit(addr(OTHER_PORT), t0 + Duration::from_millis(500)), Admit::Untrusted);
    latch.admit(addr(NAT), t0 + Duration::from_millis(1500));
    // 1.9 s after the last real packet: still refused.
    assert_eq!(latch.admit(addr(OTHER_PORT), t0 + Duration::from_millis(3400)), Admit::Untrusted);
    assert_eq!(latch.target(), Some(addr(NAT)));
}

#[test]
fn new_source_takes_over_after_latched_one_went_silent() {
    let t0 = Instant::now();
    let mut latch = signalled();
    latch.admit(addr(NAT), t0);
    // The NAT binding changed (router reboot): new port, old one silent.
    let moved = addr("203.0.113.7:61002");
    assert_eq!(latch.admit(moved, t0 + RELATCH_AFTER), Admit::Accept);
    assert_eq!(latch.target(), Some(moved));
    assert_eq!(latch.admit(addr(NAT), t0 + RELATCH_AFTER), Admit::Untrusted);
}

#[test]
fn new_sdp_address_unlatches_at_once() {
    let t0 = Instant::now();
    let mut latch = signalled();
    latch.admit(addr(NAT), t0);
    latch.set_peer(addr("192.168.1.30:5000"));
    assert_eq!(latch.target(), Some(addr("192.168.1.30:5000")));
    let other = addr("203.0.113.7:40000");
    assert_eq!(latch.admit(other, t0 + Duration::from_millis(10)), Admit::Accept);
    assert_eq!(latch.target(), Some(other));
}

/// RTP bleed: a third host that sends to the relay port before the device
/// (or once it went quiet) is never latched, and never gets the audio.
#[test]
fn a_host_signalling_did_not_name_never_latches() {
    let t0 = Instant::now();
    let mut latch = signalled();
    assert_eq!(latch.admit(addr(SPOOF), t0), Admit::Untrusted);
    assert_eq!(latch.target(), Some(addr(SDP)));
    assert_eq!(latch.admit(addr(NAT), t0 + Duration::from_millis(20)), Admit::Accept);
    // Silent for far longer than RELATCH_AFTER: still not the stranger's.
    assert_eq!(latch.admit(addr(SPOOF), t0 + Duration::from_secs(30)), Admit::Untrusted);
    assert_eq!(latch.target(), Some(addr(NAT)));
    // Without the signalling source known, only the SDP's host may send.
    let mut latch = Latch::default();
    latch.set_peer(addr(SDP));
    assert_eq!(latch.admit(addr(NAT), t0), Admit::Untrusted);
    assert_eq!(latch.admit(addr("192.168.1.20:4002"), t0), Admit::Accept);
}

#[test]
fn a_new_signalling_host_drops_a_latch_only_the_old_one_allowed() {
    let t0 = Instant::now();
    let mut latch = signalled();
    latch.admit(addr(NAT), t0);
    // The call was transferred to a device behind another router.
    latch.set_signalling_host(Some(addr("203.0.113.99:1").ip()));
    assert_eq!(latch.target(), Some(addr(SDP)));
    assert_eq!(latch.admit(addr(NAT), t0 + Duration::from_millis(20)), Admit::Untrusted);
    assert_eq!(latch.admit(addr("203.0.113.99:7000"), t0 + Duration::from_millis(40)), Admit::Accept);
}

#[test]
fn same_sdp_address_again_keeps_the_latch() {
    let t0 = Instant::now();
    let mut latch = signalled();
    latch.admit(addr(NAT), t0);
    latch.set_peer(addr(SDP));
    assert_eq!(latch.target(), Some(addr(NAT)));
    assert_eq!(latch.admit(addr(SPOOF), t0), Admit::Untrusted);
}

#[test]
fn signalled_address_always_wins() {
    let t0 = Instant::now();
    let mut latch = signalled();
    // Another port of the router beat the device to it...
    latch.admit(addr("203.0.113.7:9"), t0);
    // ...but the address from SDP takes the latch back immediately.
    assert_eq!(latch.admit(addr(SDP), t0 + Duration::from_millis(20)), Admit::Accept);
    assert_eq!(latch.target(), Some(addr(SDP)));
    assert_eq!(latch.admit(addr("203.0.113.7:9"), t0 + Duration::from_millis(40)), Admit::Untrusted);
}

#[test]
fn unspecified_sdp_address_means_nowhere_until_latched() {
    let mut latch = Latch::default();
    latch.set_peer(addr("0.0.0.0:4000"));
    assert_eq!(latch.target(), None);
    // 0.0.0.0 names no host: only the signalling source may latch.
    assert_eq!(latch.admit(addr(NAT), Instant::now()), Admit::Untrusted);
    latch.set_signalling_host(Some(addr(NAT).ip()));
    assert_eq!(latch.admit(addr(NAT), Instant::now()), Admit::Accept);
    assert_eq!(latch.target(), Some(addr(NAT)));
}
