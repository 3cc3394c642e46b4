//! What a waiting transaction and a finished dialog hold: ha-pbx patch 8 of
//! vendor/rsipstack (HA-PBX-PATCH.md). An answered client INVITE waits out
//! Timer M (64*T1, 32 s) after the call in a task of its own that keeps the
//! transaction and the dialog; at 500 calls/s that is 16,000 of them. A
//! heap profile (heaptrack, `--features system-allocator`) put 7.5 KiB of
//! each in that task's future (the transaction's `receive()` carried its
//! largest handler inline) and 3.5 KiB in the dialog's state channel, which
//! lived as long as the dialog.
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{SipMessage, StatusCode};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn invite(phone: SocketAddr) -> rsipstack::sip::Request {
    let text = format!(
        "INVITE sip:2000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKw1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1000@127.0.0.1>;tag=fw1\r\nTo: <sip:2000@127.0.0.1>\r\n\
         Call-ID: w1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:1000@{phone}>\r\nContent-Length: 0\r\n\r\n"
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
    drop(tx);
}
