//! Real UDP on 127.0.0.1: fake devices on both legs talk through a relay.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::{Leg, MediaConfig, MediaEngine, Relay};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);

/// Each test gets its own port range so parallel tests never collide.
fn engine(first: u16, last: u16, timeout: Duration) -> MediaEngine {
    MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first, last), timeout }).unwrap()
}

async fn device() -> UdpSocket {
    UdpSocket::bind((LOCAL, 0)).await.unwrap()
}

fn addr(sock: &UdpSocket) -> SocketAddr {
    sock.local_addr().unwrap()
}

fn relay_rtp(relay: &Relay, leg: Leg) -> SocketAddr {
    SocketAddr::new(LOCAL, relay.local_port(leg))
}

fn relay_rtcp(relay: &Relay, leg: Leg) -> SocketAddr {
    SocketAddr::new(LOCAL, relay.local_port(leg) + 1)
}

/// 12-byte RTP header + payload; PT 101 packets look like RFC 4733 events.
fn rtp(pt: u8, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt, (seq >> 8) as u8, seq as u8, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

async fn recv(sock: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    buf.truncate(n);
    Some((buf, from))
}

async fn nothing_arrives(sock: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await.is_err()
}

/// set_peer reaches the task through a channel; give it a moment.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn relays_identical_payloads_both_ways() {
    let engine = engine(39000, 39099, Duration::from_secs(30));
    let relay = engine.create_relay().await.unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    settle().await;

    for seq in 0..20u16 {
        let packet = if seq % 5 == 4 { rtp(101, seq, 4) } else { rtp(0, seq, 160) };
        a.send_to(&packet, relay_rtp(&relay, Leg::A)).await.unwrap();
        let (got, from) = recv(&b).await.expect("A→B packet");
        assert_eq!(got, packet);
        assert_eq!(from, relay_rtp(&relay, Leg::B), "B hears the relay's B-side port");
    }
    for seq in 0..20u16 {
        let packet = rtp(8, seq, 160);
        b.send_to(&packet, relay_rtp(&relay, Leg::B)).await.unwrap();
        let (got, from) = recv(&a).await.expect("B→A packet");
        assert_eq!(got, packet);
        assert_eq!(from, relay_rtp(&relay, Leg::A));
    }
    let stats = relay.stats();
    assert_eq!(stats.a_to_b.packets, 20);
    assert_eq!(stats.a_to_b.bytes, 16 * 172 + 4 * 16);
    assert_eq!(stats.b_to_a.packets, 20);
    assert_eq!(stats.dropped(), 0);
    assert_ne!(relay.local_port(Leg::A), relay.local_port(Leg::B));
}

#[tokio::test]
async fn latches_to_a_source_other_than_the_sdp_address() {
    let engine = engine(39100, 39199, Duration::from_secs(30));
    let relay = engine.create_relay().await.unwrap();
    // A's SDP names one port, but A (behind "NAT") really sends from another.
    let (sdp_guess, a_real, b) = (device().await, device().await, device().await);
    relay.set_peer(Leg::A, addr(&sdp_guess), None);
    relay.set_peer(Leg::B, addr(&b), None);
    settle().await;

    let early = rtp(0, 1, 160);
    b.send_to(&early, relay_rtp(&relay, Leg::B)).await.unwrap();
    assert_eq!(recv(&sdp_guess).await.unwrap().0, early, "before latching: SDP address");

    let from_a = rtp(0, 2, 160);
    a_real.send_to(&from_a, relay_rtp(&relay, Leg::A)).await.unwrap();
    assert_eq!(recv(&b).await.unwrap().0, from_a);

    let reply = rtp(0, 3, 160);
    b.send_to(&reply, relay_rtp(&relay, Leg::B)).await.unwrap();
    assert_eq!(recv(&a_real).await.unwrap().0, reply, "after latching: the real source");
    assert!(nothing_arrives(&sdp_guess).await);
}

#[tokio::test]
async fn unknown_and_spoofed_sources_are_dropped_and_counted() {
    let engine = engine(39200, 39299, Duration::from_secs(30));
    let relay = engine.create_relay().await.unwrap();
    let (a, b, stranger) = (device().await, device().await, device().await);
    a.send_to(&rtp(0, 1, 160), relay_rtp(&relay, Leg::A)).await.unwrap();
    settle().await;
    assert_eq!(relay.stats().dropped_no_peer, 1);

    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    settle().await;
    a.send_to(&rtp(0, 2, 160), relay_rtp(&relay, Leg::A)).await.unwrap();
    assert!(recv(&b).await.is_some());
    stranger.send_to(&rtp(0, 3, 160), relay_rtp(&relay, Leg::A)).await.unwrap();
    assert!(nothing_arrives(&b).await);
    assert_eq!(relay.stats().dropped_untrusted, 1);
}

#[tokio::test]
async fn rtcp_goes_through_on_port_plus_one_and_muxed_on_rtp() {
    let engine = engine(39300, 39399, Duration::from_secs(30));
    let relay = engine.create_relay().await.unwrap();
    let (a_rtp, a_rtcp, b_rtp, b_rtcp) = (device().await, device().await, device().await, device().await);
    relay.set_peer(Leg::A, addr(&a_rtp), Some(addr(&a_rtcp)));
    relay.set_peer(Leg::B, addr(&b_rtp), Some(addr(&b_rtcp)));
    settle().await;

    // RTCP sender report header (PT 200).
    let report = vec![0x80, 200, 0, 6, 1, 2, 3, 4, 9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5];
    a_rtcp.send_to(&report, relay_rtcp(&relay, Leg::A)).await.unwrap();
    let (got, from) = recv(&b_rtcp).await.expect("A→B RTCP");
    assert_eq!((got, from), (report.clone(), relay_rtcp(&relay, Leg::B)));
    b_rtcp.send_to(&report, relay_rtcp(&relay, Leg::B)).await.unwrap();
    assert_eq!(recv(&a_rtcp).await.expect("B→A RTCP").0, report);

    // rtcp-mux: RTCP on the RTP port is forwarded as is, on the RTP path.
    a_rtp.send_to(&report, relay_rtp(&relay, Leg::A)).await.unwrap();
    assert_eq!(recv(&b_rtp).await.expect("muxed RTCP").0, report);
}

#[tokio::test]
async fn timeout_fires_when_traffic_stops_and_not_while_it_flows() {
    let silence = Duration::from_millis(300);
    let engine = engine(39400, 39499, silence);
    let relay = engine.create_relay().await.unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    settle().await;

    let target = relay_rtp(&relay, Leg::A);
    let talk = async {
        for seq in 0..50u16 {
            a.send_to(&rtp(0, seq, 160), target).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = relay.timed_out() => panic!("timed out while media flowed"),
        _ = talk => {}
    }
    let stopped = Instant::now();
    timeout(Duration::from_secs(3), relay.timed_out()).await.expect("timeout after silence");
    let waited = stopped.elapsed();
    assert!(waited >= silence - Duration::from_millis(50), "fired after only {waited:?}");
}

#[tokio::test]
async fn timeout_paused_while_on_hold() {
    let silence = Duration::from_millis(200);
    let engine = engine(39500, 39599, silence);
    let relay = engine.create_relay().await.unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_timeout_enabled(false);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    assert!(timeout(Duration::from_millis(800), relay.timed_out()).await.is_err(), "fired on hold");
    relay.set_timeout_enabled(true);
    timeout(Duration::from_secs(2), relay.timed_out()).await.expect("fires once off hold and silent");
}

#[tokio::test]
async fn ports_are_released_after_drop() {
    // Four pairs: exactly two relays.
    let engine = engine(39600, 39607, Duration::from_secs(30));
    let relays = vec![engine.create_relay().await.unwrap(), engine.create_relay().await.unwrap()];
    let err = engine.create_relay().await.unwrap_err().to_string();
    assert!(err.contains("no free RTP port pair in 39600-39607"), "{err}");
    assert_eq!(engine.active_relays(), 2);

    drop(relays);
    let deadline = Instant::now() + WAIT;
    while engine.active_relays() > 0 {
        assert!(Instant::now() < deadline, "relay tasks did not stop");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let again = [engine.create_relay().await.unwrap(), engine.create_relay().await.unwrap()];
    assert_eq!(engine.active_relays(), again.len());
}

/// B's audio packet `seq` reaches A numbered `seen` (A's stream has SSRC deadbeef).
async fn audio_from_b(relay: &Relay, a: &UdpSocket, b: &UdpSocket, seq: u16, seen: u16) {
    b.send_to(&rtp(0, seq, 160), relay_rtp(relay, Leg::B)).await.unwrap();
    assert_eq!(u16::from_be_bytes(recv(a).await.expect("audio B→A").0[2..4].try_into().unwrap()), seen);
}

#[tokio::test]
async fn a_key_press_is_written_into_the_stream_toward_a_leg() {
    let engine = engine(39900, 39915, Duration::from_secs(30));
    let relay = engine.create_relay().await.unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    settle().await;
    audio_from_b(&relay, &a, &b, 500, 500).await;

    relay.send_dtmf(Leg::A, 96, '9');
    let mut detector = crate::media::dtmf::DtmfDetector::default();
    detector.set_payload_type(Some(96));
    let mut digits = Vec::new();
    for expected_seq in 501..512u16 {
        let (p, from) = recv(&a).await.expect("event packet");
        assert_eq!(from, relay_rtp(&relay, Leg::A));
        assert_eq!((p[1] & 0x7f, u16::from_be_bytes([p[2], p[3]])), (96, expected_seq));
        assert_eq!(&p[8..12], &[0xde, 0xad, 0xbe, 0xef], "the stream A already receives");
        digits.extend(detector.on_rtp(&p));
    }
    assert_eq!(digits, ['9']);
    assert!(nothing_arrives(&b).await, "nothing toward the other leg");
    // B's next audio packet follows the events.
    audio_from_b(&relay, &a, &b, 501, 512).await;
}

#[tokio::test]
async fn held_back_events_are_still_reported() {
    let engine = engine(39920, 39935, Duration::from_secs(30));
    let mut relay = engine.create_relay().await.unwrap();
    let mut events = relay.take_dtmf_events().unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    relay.set_dtmf_payload_type(Leg::B, Some(101));
    relay.set_hold_back_dtmf(Leg::A, true);
    settle().await;
    audio_from_b(&relay, &a, &b, 10, 10).await;
    // RFC 4733 end packet for '4' from B.
    let mut end = vec![0x80, 101, 0, 11, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
    end.extend_from_slice(&[4, 0x8a, 0x05, 0x00]);
    b.send_to(&end, relay_rtp(&relay, Leg::B)).await.unwrap();
    assert_eq!(timeout(WAIT, events.recv()).await.unwrap(), Some((Leg::B, '4')));
    assert!(nothing_arrives(&a).await, "the event did not reach A");
    // No gap where the event was.
    audio_from_b(&relay, &a, &b, 12, 11).await;
    // Events toward B (from A) are not held back.
    relay.set_dtmf_payload_type(Leg::A, Some(101));
    settle().await;
    a.send_to(&end, relay_rtp(&relay, Leg::A)).await.unwrap();
    assert_eq!(recv(&b).await.expect("A's event reaches B").0, end);
}

#[tokio::test]
async fn a_providers_own_event_number_reaches_the_other_side_as_its_number() {
    let engine = engine(38200, 38215, Duration::from_secs(30));
    let mut relay = engine.create_relay().await.unwrap();
    let mut events = relay.take_dtmf_events().unwrap();
    let (a, b) = (device().await, device().await);
    relay.set_peer(Leg::A, addr(&a), None);
    relay.set_peer(Leg::B, addr(&b), None);
    // A named 101, B named 96 and sends its key presses as 96
    relay.set_event_pt_map(Leg::B, super::event_pt::EventPtMap::new(96, 101));
    relay.set_dtmf_payload_type(Leg::B, Some(101));
    settle().await;
    let mut end = vec![0x80, 0x80 | 96, 0, 11, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
    end.extend_from_slice(&[7, 0x8a, 0x05, 0x00]);
    b.send_to(&end, relay_rtp(&relay, Leg::B)).await.unwrap();
    let (got, _) = recv(&a).await.expect("B's event reaches A");
    assert_eq!(got[1], 0x80 | 101, "marker kept, A's payload type");
    assert_eq!((&got[..1], &got[2..]), (&end[..1], &end[2..]), "the rest as sent");
    assert_eq!(timeout(WAIT, events.recv()).await.unwrap(), Some((Leg::B, '7')));
    // B's audio and A's packets pass untouched
    let audio = rtp(0, 12, 160);
    b.send_to(&audio, relay_rtp(&relay, Leg::B)).await.unwrap();
    assert_eq!(recv(&a).await.expect("audio").0, audio);
    let from_a = rtp(96, 3, 4);
    a.send_to(&from_a, relay_rtp(&relay, Leg::A)).await.unwrap();
    assert_eq!(recv(&b).await.expect("A's 96 reaches B").0, from_a);
}
