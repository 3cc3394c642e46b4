//! Real UDP on 127.0.0.1: a plain device on leg A, an SRTP device (a
//! trunk's provider) on leg B, with the far end's own crate context.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::{Leg, MediaConfig, MediaEngine};
use crate::media::srtp::{SrtpKey, SrtpKeys, Suite};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn recv(sock: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await.ok()?.ok()?;
    buf.truncate(n);
    Some(buf)
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, (seq >> 8) as u8, seq as u8, 0, 0, 0, 160];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// Polls the relay's counters until `done` holds (the task works apart).
async fn until(relay: &super::Relay, done: impl Fn(&super::RelayStats) -> bool) -> super::RelayStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let s = relay.stats();
        if done(&s) || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_srtp_leg_is_protected_and_the_house_leg_plain() {
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (38700, 38715), timeout: Duration::from_secs(30) }).unwrap();
    let relay = engine.create_relay().await.unwrap();
    let house = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let provider = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let keys = SrtpKeys { send: SrtpKey::random(Suite::AesCm128HmacSha1_80), receive: SrtpKey::random(Suite::AesCm128HmacSha1_32) };
    relay.set_peer(Leg::A, house.local_addr().unwrap(), None);
    relay.set_peer(Leg::B, provider.local_addr().unwrap(), None);
    relay.set_srtp(Leg::B, Some(keys.clone()));
    let to_a = SocketAddr::new(LOCAL, relay.local_port(Leg::A));
    let to_b = SocketAddr::new(LOCAL, relay.local_port(Leg::B));
    // The provider's own contexts: it receives with our send key and sends with its own.
    let mut provider_rx = webrtc_srtp::context::Context::new(&keys.send.material[..16], &keys.send.material[16..], webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80, None, None).unwrap();
    let mut provider_tx = webrtc_srtp::context::Context::new(&keys.receive.material[..16], &keys.receive.material[16..], webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_32, None, None).unwrap();
    // Control messages reach the task before the first packet it reads.
    for seq in 0..10u16 {
        let plain = rtp(seq, 0xaaaa);
        house.send_to(&plain, to_a).await.unwrap();
        let got = recv(&provider).await.expect("house → provider");
        assert_eq!(got.len(), plain.len() + 10, "an 80-bit tag");
        assert_ne!(got[12..172], plain[12..], "not the plain payload");
        assert_eq!(provider_rx.decrypt_rtp(&got).unwrap().to_vec(), plain);

        let theirs = rtp(seq, 0xbbbb);
        provider.send_to(&provider_tx.encrypt_rtp(&theirs).unwrap(), to_b).await.unwrap();
        assert_eq!(recv(&house).await.expect("provider → house"), theirs, "plain toward the house");
    }
    // Plain RTP, a forged packet and a replay from the provider's address go nowhere.
    provider.send_to(&rtp(50, 0xbbbb), to_b).await.unwrap();
    let mut forged = provider_tx.encrypt_rtp(&rtp(51, 0xbbbb)).unwrap().to_vec();
    forged[20] ^= 0x40;
    provider.send_to(&forged, to_b).await.unwrap();
    let good = provider_tx.encrypt_rtp(&rtp(52, 0xbbbb)).unwrap();
    provider.send_to(&good, to_b).await.unwrap();
    assert_eq!(recv(&house).await.expect("the authentic one"), rtp(52, 0xbbbb));
    provider.send_to(&good, to_b).await.unwrap();
    let stats = until(&relay, |s| s.dropped_srtp >= 3).await;
    assert_eq!(stats.dropped_srtp, 3, "{stats:?}");
    assert_eq!(stats.b_to_a.packets, 11, "{stats:?}");

    // Plain RTP again on that leg: packets pass untouched.
    relay.set_srtp(Leg::B, None);
    house.send_to(&rtp(60, 0xaaaa), to_a).await.unwrap();
    assert_eq!(recv(&provider).await.expect("plain again"), rtp(60, 0xaaaa));
}
