use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Leg;
use super::switch::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(10);
const DEV_A: &str = "10.0.0.1:4000";
const DEV_B: &str = "10.0.0.2:6000";

fn connected(t0: Instant) -> Switch {
    let mut sw = Switch::new(TIMEOUT, t0);
    sw.set_peer(Leg::A, addr(DEV_A), None, t0);
    sw.set_peer(Leg::B, addr(DEV_B), Some(addr("10.0.0.2:7777")), t0);
    sw
}

#[test]
fn rtp_crosses_to_the_other_leg() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    assert_eq!(sw.on_packet(Leg::A, Channel::Rtp, addr(DEV_A), t0), Verdict::Forward(addr(DEV_B)));
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), t0), Verdict::Forward(addr(DEV_A)));
}

#[test]
fn rtcp_goes_to_rtcp_attribute_or_rtp_port_plus_one() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    assert_eq!(sw.on_packet(Leg::A, Channel::Rtcp, addr("10.0.0.1:4001"), t0), Verdict::Forward(addr("10.0.0.2:7777")));
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtcp, addr("10.0.0.2:7777"), t0), Verdict::Forward(addr("10.0.0.1:4001")));
}

#[test]
fn replies_go_to_the_latched_source_not_the_sdp_address() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    let natted = addr("203.0.113.5:50000");
    sw.set_signalling_host(Leg::A, Some(natted.ip()));
    sw.on_packet(Leg::A, Channel::Rtp, natted, t0);
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), t0), Verdict::Forward(natted));
}

#[test]
fn drops_before_peers_are_known() {
    let t0 = Instant::now();
    let mut sw = Switch::new(TIMEOUT, t0);
    assert_eq!(sw.on_packet(Leg::A, Channel::Rtp, addr(DEV_A), t0), Verdict::Drop(DropReason::NoPeer));
    sw.set_peer(Leg::A, addr(DEV_A), None, t0);
    assert_eq!(sw.on_packet(Leg::A, Channel::Rtp, addr(DEV_A), t0), Verdict::Drop(DropReason::NoDestination));
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), t0), Verdict::Drop(DropReason::NoPeer));
}

#[test]
fn spoofed_source_is_dropped() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    sw.on_packet(Leg::A, Channel::Rtp, addr(DEV_A), t0);
    let verdict = sw.on_packet(Leg::A, Channel::Rtp, addr("198.51.100.1:9"), t0 + Duration::from_millis(100));
    assert_eq!(verdict, Verdict::Drop(DropReason::Untrusted));
}

#[test]
fn rtp_keeps_the_call_alive_rtcp_does_not() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    let at = |s: u64| t0 + Duration::from_secs(s);
    sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), at(8));
    assert!(!sw.is_timed_out(at(17)));
    sw.on_packet(Leg::A, Channel::Rtcp, addr("10.0.0.1:4001"), at(17));
    assert!(sw.is_timed_out(at(18)));
}

#[test]
fn hold_pauses_the_timeout() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    sw.set_timeout_enabled(false, t0);
    assert!(!sw.is_timed_out(t0 + Duration::from_secs(100)));
}

#[test]
fn timeout_waits_for_both_legs_sdp() {
    let t0 = Instant::now();
    let mut sw = Switch::new(TIMEOUT, t0);
    sw.set_peer(Leg::A, addr(DEV_A), None, t0);
    assert!(!sw.is_timed_out(t0 + Duration::from_secs(60)));
    sw.set_peer(Leg::B, addr(DEV_B), None, t0 + Duration::from_secs(60));
    assert!(!sw.is_timed_out(t0 + Duration::from_secs(65)));
    assert!(sw.is_timed_out(t0 + Duration::from_secs(70)));
}

#[test]
fn rtp_port_65535_without_rtcp_attribute_does_not_overflow() {
    let t0 = Instant::now();
    let mut sw = Switch::new(TIMEOUT, t0);
    sw.set_peer(Leg::A, addr("10.0.0.1:65535"), None, t0);
    sw.set_peer(Leg::B, addr(DEV_B), None, t0);
    assert_eq!(
        sw.on_packet(Leg::B, Channel::Rtcp, addr("10.0.0.2:6001"), t0),
        Verdict::Forward(addr("10.0.0.1:65535"))
    );
}

#[test]
fn a_muted_leg_is_heard_by_nobody_but_keeps_the_call_alive() {
    let t0 = Instant::now();
    let mut sw = connected(t0);
    let at = |s: u64| t0 + Duration::from_secs(s);
    sw.set_muted(Leg::B, true);
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), at(8)), Verdict::Muted);
    assert_eq!(sw.on_packet(Leg::A, Channel::Rtp, addr(DEV_A), at(8)), Verdict::Forward(addr(DEV_B)), "the other way is untouched");
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtcp, addr("10.0.0.2:7777"), at(8)), Verdict::Forward(addr("10.0.0.1:4001")), "RTCP still passes");
    sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), at(15));
    assert!(!sw.is_timed_out(at(24)), "muted media is still media");
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr("198.51.100.1:9"), at(16)), Verdict::Drop(DropReason::Untrusted), "a stranger is still refused first");
    sw.set_muted(Leg::B, false);
    assert_eq!(sw.on_packet(Leg::B, Channel::Rtp, addr(DEV_B), at(16)), Verdict::Forward(addr(DEV_A)));
}
