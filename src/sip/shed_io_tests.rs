//! Load shedding on a real UDP socket (`udp_socket.rs` with `shed.rs`): the
//! queue's gauge set by hand, datagrams sent from another socket on
//! 127.0.0.1, what comes back read there.
use super::auth::ban::{BanList, BanPolicy};
use super::auth::flood::{FloodLimiter, FloodPolicy};
use super::shed::{Shedder, Watermarks};
use super::udp_socket::{bind, WholeDatagrams};
use rsipstack::platform::net::UdpSocket as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn request(method: &str, to: &str, branch: &str) -> Vec<u8> {
    format!(
        "{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{branch}\r\n\
         From: <sip:101@127.0.0.1>;tag=f1\r\nTo: {to}\r\nCall-ID: shed-{branch}\r\nCSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn an_overloaded_socket_refuses_new_requests_and_passes_the_rest() {
    let bans = Arc::new(Mutex::new(BanList::new(BanPolicy { max_failures: 10, window: Duration::from_secs(60), ban_for: Duration::from_secs(60) })));
    let flood = Arc::new(Mutex::new(FloodLimiter::new(FloodPolicy { rate: 0.0, burst: 1.0, ban_for: Duration::from_secs(60) }, Vec::new())));
    let gauge = Arc::new(AtomicUsize::new(0));
    let shed = Arc::new(Shedder::new(gauge.clone(), Watermarks { refuse_new: 100, drop_new: 200, drop_all: 300 }));
    let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let pbx = Arc::new(WholeDatagrams::new(socket, 8192, bans, flood, shed.clone()));
    let (up_tx, mut up) = tokio::sync::mpsc::unbounded_channel();
    let reader = pbx.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok((len, _)) = reader.recv_from(&mut buf).await {
            let _ = up_tx.send(buf[..len].to_vec());
        }
    });
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut answer = vec![0u8; 8192];
    let wait = Duration::from_secs(5);

    // a queue past the first mark: a new INVITE gets 503 and is not handed up
    gauge.store(150, Ordering::Relaxed);
    phone.send_to(&request("INVITE", "<sip:100@127.0.0.1>", "a"), addr).await.unwrap();
    let (len, _) = tokio::time::timeout(wait, phone.recv_from(&mut answer)).await.expect("no answer").unwrap();
    let text = String::from_utf8_lossy(&answer[..len]).to_string();
    assert!(text.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{text}");
    assert!(text.contains("\r\nRetry-After: 5\r\n") && text.contains("\r\nCall-ID: shed-a\r\n"), "{text}");
    // a BYE in a dialog ends work: it goes up
    phone.send_to(&request("BYE", "<sip:100@127.0.0.1>;tag=t", "b"), addr).await.unwrap();
    let up_msg = tokio::time::timeout(wait, up.recv()).await.expect("BYE not handed up").unwrap();
    assert!(up_msg.starts_with(b"BYE "), "{}", String::from_utf8_lossy(&up_msg));

    // past the second mark a new request is dropped unanswered; a BYE still goes up
    gauge.store(250, Ordering::Relaxed);
    phone.send_to(&request("REGISTER", "<sip:100@127.0.0.1>", "c"), addr).await.unwrap();
    phone.send_to(&request("BYE", "<sip:100@127.0.0.1>;tag=t", "d"), addr).await.unwrap();
    let up_msg = tokio::time::timeout(wait, up.recv()).await.expect("BYE not handed up").unwrap();
    assert!(String::from_utf8_lossy(&up_msg).contains("Call-ID: shed-d"), "the REGISTER came up: {}", String::from_utf8_lossy(&up_msg));
    // the socket read the REGISTER before the BYE: had it been answered, the answer would be queued by now
    assert!(phone.try_recv_from(&mut answer).is_err(), "the dropped REGISTER was answered");

    // at the ceiling everything is dropped; below the first mark all passes again
    gauge.store(300, Ordering::Relaxed);
    phone.send_to(&request("BYE", "<sip:100@127.0.0.1>;tag=t", "e"), addr).await.unwrap();
    // the socket judges it when it reads it: wait for that before the gauge falls
    tokio::time::timeout(wait, async {
        while shed.figures().2 < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the BYE at the ceiling was not dropped");
    gauge.store(0, Ordering::Relaxed);
    phone.send_to(&request("INVITE", "<sip:100@127.0.0.1>", "f"), addr).await.unwrap();
    let up_msg = tokio::time::timeout(wait, up.recv()).await.expect("INVITE not handed up").unwrap();
    let up_text = String::from_utf8_lossy(&up_msg).to_string();
    assert!(up_text.contains("Call-ID: shed-f"), "the BYE at the ceiling came up: {up_text}");
    assert_eq!(shed.figures(), (0, 1, 2));
}
