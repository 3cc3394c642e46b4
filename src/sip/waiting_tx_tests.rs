//! What a waiting transaction and a finished dialog hold: ha-pbx patch 8 of
//! vendor/rsipstack (HA-PBX-PATCH.md). An answered client INVITE waits out
//! Timer M (64*T1, 32 s) after the call in a task of its own that keeps the
//! transaction and the dialog; at 500 calls/s that is 16,000 of them. A
//! heap profile (heaptrack, `--features system-allocator`) put 7.5 KiB of
//! each in that task's future (the transaction's `receive()` carried its
//! largest handler inline) and 3.5 KiB in the dialog's state channel, which
//! lived as long as the dialog.
//!
//! Patch 9: the SDP and the headers nothing reads again go too, from the
//! Accepted client INVITE (its INVITE and 2xx) and from an ended dialog
//! (its INVITE and the ACK it got), while the re-ACK of a retransmitted 2xx
//! stays byte for byte the same.
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionState;
use rsipstack::sip::{SipMessage, StatusCode};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::finished_tx_tests;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn content_length(headers: &rsipstack::sip::Headers) -> Option<&str> {
    headers.iter().find(|h| matches!(h, rsipstack::sip::Header::ContentLength(_))).map(|h| h.value().trim())
}

/// An INVITE from `phone` (its Via) with an SDP offer.
fn invite(phone: SocketAddr) -> rsipstack::sip::Request {
    let text = format!(
        "INVITE sip:2000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKw1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1000@127.0.0.1>;tag=fw1\r\nTo: <sip:2000@127.0.0.1>\r\n\
         Call-ID: w1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:1000@{phone}>\r\nUser-Agent: test\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    match SipMessage::try_from(text.as_str()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

/// An endpoint on 127.0.0.1 with one INVITE from a phone socket delivered:
/// the endpoint, its server transaction and the phone.
async fn incoming_invite() -> (rsipstack::transaction::Endpoint, rsipstack::transaction::transaction::Transaction, tokio::net::UdpSocket, CancellationToken) {
    let cancel = CancellationToken::new();
    let udp = UdpConnection::create_connection("127.0.0.1:0".parse().unwrap(), None, Some(cancel.child_token())).await.unwrap();
    let conn: SipConnection = udp.into();
    let layer = TransportLayer::new(cancel.child_token());
    layer.add_transport(conn.clone());
    let endpoint = EndpointBuilder::new().with_transport_layer(layer).with_cancel_token(cancel.child_token()).build();
    let mut incoming = endpoint.incoming_transactions().unwrap();
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    endpoint.inner.on_received_message(invite(phone_addr).into(), conn, &SipAddr::from(phone_addr)).await.unwrap();
    let tx = incoming.recv().await.unwrap();
    (endpoint, tx, phone, cancel)
}

/// A transaction waiting for its next message holds a small future: the
/// handlers run boxed. Before the patch this future was ~7 KiB.
#[tokio::test]
async fn a_waiting_transaction_holds_a_small_future() {
    let (_endpoint, mut tx, _phone, _cancel) = incoming_invite().await;
    let size = std::mem::size_of_val(&tx.receive());
    eprintln!("Transaction::receive() future: {size} bytes");
    assert!(size <= 512, "Transaction::receive() future is {size} bytes");
}

/// The dialog lets go of its state channel once `Terminated` is sent, so the
/// channel (and whoever reads it) ends with the call while rsipstack keeps
/// the dialog itself (the client INVITE's Timer M drain does).
#[tokio::test]
async fn the_state_channel_closes_at_terminated_while_the_dialog_lives() {
    let (endpoint, tx, _phone, _cancel) = incoming_invite().await;
    let layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (state_tx, mut states) = layer.new_dialog_state_channel();
    let dialog = layer.get_or_create_server_invite(&tx, state_tx, None, None).unwrap();
    dialog.reject(Some(StatusCode::BusyHere), None).unwrap();
    let within = Duration::from_secs(5);
    loop {
        let s = tokio::time::timeout(within, states.recv()).await.expect("a state within 5 s");
        match s {
            Some(DialogState::Terminated(..)) => break,
            Some(_) => continue,
            None => panic!("closed before Terminated"),
        }
    }
    let after = tokio::time::timeout(within, states.recv()).await.expect("the channel is still open with the dialog alive");
    assert!(after.is_none(), "a state after Terminated");
    assert!(matches!(dialog.state(), DialogState::Terminated(..)));
    // patch 9: the ended dialog keeps its INVITE's headers, not its SDP
    let kept = dialog.initial_request();
    assert!(kept.body.is_empty(), "an ended dialog keeps the INVITE's body");
    assert_eq!(kept.call_id_header().unwrap().value(), "w1@test");
    assert_eq!(content_length(&kept.headers), Some("0"));
    drop(tx);
}

/// An answered client INVITE waits out Timer M keeping neither the offer nor
/// the answer (the TU got the 2xx whole), and a retransmitted 2xx still gets
/// the very same ACK.
#[tokio::test]
async fn an_accepted_client_invite_sheds_its_sdp_and_still_re_acks() {
    let rig = finished_tx_tests::rig().await;
    // we call the phone: our INVITE's Via is our own address
    let mut ours = invite(rig.server);
    ours.headers.retain(|h| !matches!(h, rsipstack::sip::Header::Via(_)));
    ours.headers.push_front(rsipstack::sip::Header::Via(format!("SIP/2.0/UDP {};branch=z9hG4bKacc1;rport", rig.server).into()));
    let key = TransactionKey::from_request(&ours, TransactionRole::Client).unwrap();
    let mut tx = Transaction::new_client(key, ours, rig.endpoint.inner.clone(), Some(rig.conn.clone()));
    tx.destination = Some(SipAddr::from(rig.phone_addr));
    tx.send().await.unwrap();
    let SipMessage::Request(got) = finished_tx_tests::parse(&rig.next().await) else { panic!("the INVITE") };
    assert_eq!(got.body, SDP.as_bytes());

    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKacc1;rport\r\nFrom: <sip:1000@127.0.0.1>;tag=fw1\r\n\
         To: <sip:2000@127.0.0.1>;tag=callee9\r\nCall-ID: w1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@{}>\r\n\
         Server: phone\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        rig.server,
        rig.phone_addr,
        SDP.len()
    );
    let ok = finished_tx_tests::parse(ok.as_bytes());
    rig.deliver(ok.clone()).await;
    let to_tu = tokio::time::timeout(Duration::from_secs(5), tx.receive()).await.expect("the 2xx within 5 s");
    let Some(SipMessage::Response(to_tu)) = to_tu else { panic!("the 2xx for the TU") };
    assert_eq!(to_tu.body, SDP.as_bytes(), "the TU gets the answer");
    assert_eq!(tx.state, TransactionState::Accepted);
    let ack = rig.next().await;
    assert!(ack.starts_with(b"ACK "), "{}", String::from_utf8_lossy(&ack));

    // what it keeps for Timer M: no body, only the headers that route and name it
    assert!(tx.original.body.is_empty() && tx.last_response.as_ref().unwrap().body.is_empty());
    let names = |h: &rsipstack::sip::Headers| h.iter().map(|h| h.name().to_ascii_lowercase()).collect::<Vec<_>>();
    for gone in ["contact", "user-agent", "content-type", "server"] {
        assert!(!names(&tx.original.headers).iter().any(|n| n == gone), "the INVITE keeps {gone}");
        assert!(!names(&tx.last_response.as_ref().unwrap().headers).iter().any(|n| n == gone), "the 2xx keeps {gone}");
    }
    assert_eq!(content_length(&tx.original.headers), Some("0"));

    // the 2xx again (our ACK was lost): the same ACK, byte for byte
    rig.deliver(ok).await;
    assert!(tokio::time::timeout(Duration::from_secs(5), tx.receive()).await.expect("the 2xx again within 5 s").is_some());
    assert_eq!(rig.next().await, ack);
    assert_eq!(tx.state, TransactionState::Accepted);
}

/// A server INVITE answered 2xx and ACKed keeps no copy of the 2xx for the
/// rest of 64*T1 (patch 9): the peer had it. A late copy of the INVITE is
/// absorbed, not answered and not a new transaction.
#[tokio::test]
async fn an_acked_server_invite_keeps_no_copy_of_its_response() {
    let mut rig = finished_tx_tests::rig().await;
    let invite = finished_tx_tests::request("INVITE", "acked1", 1, rig.phone_addr);
    rig.deliver(invite.clone().into()).await;
    let mut tx = rig.incoming.recv().await.unwrap();
    tx.reply(StatusCode::OK).await.unwrap();
    let SipMessage::Response(ok) = finished_tx_tests::parse(&rig.next().await) else { panic!("the 2xx") };
    assert_eq!(ok.status_code, StatusCode::OK);
    // the ACK of a 2xx is a transaction of its own (another branch)
    let ack = format!(
        "ACK sip:2000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKacked1ack;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:1000@127.0.0.1>;tag=facked1\r\n{}\r\nCall-ID: cacked1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        rig.phone_addr,
        rsipstack::sip::Header::To(ok.to_header().unwrap().clone())
    );
    rig.deliver(finished_tx_tests::parse(ack.as_bytes())).await;
    let got = tokio::time::timeout(Duration::from_secs(5), tx.receive()).await.expect("the ACK within 5 s");
    let Some(SipMessage::Request(got)) = got else { panic!("the ACK for the TU") };
    assert_eq!(got.method, rsipstack::sip::Method::Ack);
    let key = tx.key.clone();
    drop(tx);
    let tag = ok.to_header().unwrap().tag().unwrap().map(|t| t.value().into());
    assert!(tag.is_some());
    assert_eq!(rig.endpoint.inner.finished_transactions.get(&key), Some(rsipstack::transaction::finished::Finished::Acked { to_tag: tag }));
    rig.deliver(invite.into()).await;
    assert!(rig.incoming.try_recv().is_err(), "a late copy of the INVITE became a transaction");
}
