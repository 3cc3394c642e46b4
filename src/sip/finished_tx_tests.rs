//! rsipstack's finished transactions, kept serialized and bounded: ha-pbx
//! patch 7 of vendor/rsipstack (HA-PBX-PATCH.md). The table alone, then the
//! retransmission paths through a real endpoint on 127.0.0.1 (a UDP socket
//! stands in for the phone): a retransmitted INVITE or OPTIONS after its
//! transaction finished gets the very same bytes again, a late CANCEL gets
//! 200 with the INVITE response's To tag, an ACK is absorbed (and from then
//! on the INVITE too: patch 9 keeps no copy of an ACKed response), and a client
//! INVITE's ACK is sent again for a retransmitted final response.
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{SipMessage, StatusCode};
use rsipstack::transaction::finished::{Finished, FinishedTransactions};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub(super) fn request(method: &str, branch: &str, cseq: u32, phone: SocketAddr) -> rsipstack::sip::Request {
    let text = format!(
        "{method} sip:2000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1000@127.0.0.1>;tag=f{branch}\r\nTo: <sip:2000@127.0.0.1>\r\n\
         Call-ID: c{branch}@test\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_str()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn key(n: usize) -> TransactionKey {
    let phone: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    TransactionKey::from_request(&request("OPTIONS", &format!("k{n}"), 1, phone), TransactionRole::Server).unwrap()
}

fn entry(n: usize) -> Finished {
    Finished::Response { status: 200, bytes: format!("SIP/2.0 200 OK {n}").into_bytes().into() }
}

#[test]
fn the_table_keeps_at_most_its_bound_and_pushes_out_the_oldest() {
    let t = FinishedTransactions::new(100);
    for n in 0..1000 {
        t.insert(key(n), entry(n));
        assert!(t.len() <= 100);
    }
    assert_eq!(t.len(), 100);
    assert_eq!(t.evicted(), 900);
    assert!(t.get(&key(899)).is_none());
    assert_eq!(t.get(&key(900)), Some(entry(900)));
    assert_eq!(t.get(&key(999)), Some(entry(999)));
    // removed by their timers: nothing left, nothing counted as evicted
    for n in 900..1000 {
        assert_eq!(t.remove(&key(n)), Some(entry(n)));
    }
    assert!(t.is_empty());
    assert_eq!(t.order_len(), 0);
    assert_eq!(t.evicted(), 900);
}

#[test]
fn removals_out_of_order_do_not_grow_the_order_queue() {
    let t = FinishedTransactions::new(65_536);
    // one entry lives on while 100,000 others come and go behind it
    t.insert(key(0), entry(0));
    for n in 1..100_000 {
        t.insert(key(n), entry(n));
        t.remove(&key(n));
        assert!(t.order_len() <= 2 * t.len() + 1024, "order queue {} for {} entries", t.order_len(), t.len());
    }
    assert_eq!(t.len(), 1);
    assert_eq!(t.evicted(), 0);
    // a replaced entry is one entry, and the older insertion does not evict it
    t.insert(key(0), entry(7));
    assert_eq!(t.len(), 1);
    assert_eq!(t.get(&key(0)), Some(entry(7)));
}

#[test]
fn an_entry_is_the_message_as_sent_and_parses_back() {
    let phone: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let req = request("INVITE", "p", 1, phone);
    let e = Finished::of_request(&req);
    assert!(matches!(e, Finished::Request(_)));
    assert_eq!(e.bytes(), req.to_bytes().as_slice());
    assert_eq!(e.parse(), Some(SipMessage::Request(req.clone())));
    let ack = Finished::of_request(&request("ACK", "p", 1, phone));
    assert!(matches!(ack, Finished::Ack(_)));
    assert!(!ack.is_final_response());
}

pub(super) struct Rig {
    pub(super) endpoint: rsipstack::transaction::Endpoint,
    pub(super) conn: SipConnection,
    pub(super) server: SocketAddr,
    pub(super) phone: UdpSocket,
    pub(super) phone_addr: SocketAddr,
    pub(super) incoming: rsipstack::transaction::TransactionReceiver,
    _cancel: CancellationToken,
}

pub(super) async fn rig() -> Rig {
    rig_with(Default::default()).await
}

pub(super) async fn rig_with(option: rsipstack::transaction::endpoint::EndpointOption) -> Rig {
    let cancel = CancellationToken::new();
    let udp = UdpConnection::create_connection("127.0.0.1:0".parse().unwrap(), None, Some(cancel.child_token())).await.unwrap();
    let server = udp.get_addr().get_socketaddr().unwrap();
    let conn: SipConnection = udp.into();
    let layer = TransportLayer::new(cancel.child_token());
    layer.add_transport(conn.clone());
    let endpoint = EndpointBuilder::new().with_option(option).with_transport_layer(layer).with_cancel_token(cancel.child_token()).build();
    let incoming = endpoint.incoming_transactions().unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    Rig { endpoint, conn, server, phone, phone_addr, incoming, _cancel: cancel }
}

impl Rig {
    fn from(&self) -> SipAddr {
        SipAddr::from(self.phone_addr)
    }

    pub(super) async fn deliver(&self, msg: SipMessage) {
        self.endpoint.inner.on_received_message(msg, self.conn.clone(), &self.from()).await.unwrap();
    }

    /// The next datagram the phone gets (within 5 s: a deadline, not a wait).
    pub(super) async fn next(&self) -> Vec<u8> {
        let mut buf = vec![0; 65_536];
        let (len, from) = tokio::time::timeout(Duration::from_secs(5), self.phone.recv_from(&mut buf)).await.expect("a datagram for the phone").unwrap();
        assert_eq!(from, self.server);
        buf.truncate(len);
        buf
    }
}

pub(super) fn parse(bytes: &[u8]) -> SipMessage {
    SipMessage::try_from(bytes).unwrap()
}

fn to_tag(msg: &SipMessage) -> Option<String> {
    let to = match msg {
        SipMessage::Request(r) => r.to_header().unwrap().clone(),
        SipMessage::Response(r) => r.to_header().unwrap().clone(),
    };
    to.tag().unwrap().map(|t| t.value().to_string())
}

#[tokio::test]
async fn a_retransmitted_request_after_its_transaction_finished_gets_the_same_bytes() {
    let mut rig = rig().await;
    let invite = request("INVITE", "inv1", 1, rig.phone_addr);
    rig.deliver(invite.clone().into()).await;
    let mut tx = rig.incoming.recv().await.unwrap();
    tx.reply(StatusCode::BusyHere).await.unwrap();
    let first = rig.next().await;
    let SipMessage::Response(busy) = parse(&first) else { panic!("a response") };
    assert_eq!(busy.status_code, StatusCode::BusyHere);
    let key = tx.key.clone();
    drop(tx);
    assert!(matches!(rig.endpoint.inner.finished_transactions.get(&key), Some(Finished::Response { status: 486, .. })));

    // the INVITE again: the same 486, byte for byte, and no new transaction
    rig.deliver(invite.clone().into()).await;
    assert_eq!(rig.next().await, first);
    assert!(rig.incoming.try_recv().is_err());

    // a CANCEL after the final response: 200, with the 486's To tag
    rig.deliver(request("CANCEL", "inv1", 1, rig.phone_addr).into()).await;
    let ok = parse(&rig.next().await);
    let SipMessage::Response(ok_resp) = &ok else { panic!("a response") };
    assert_eq!(ok_resp.status_code, StatusCode::OK);
    assert_eq!(ok_resp.cseq_header().unwrap().method().unwrap(), rsipstack::sip::Method::Cancel);
    assert!(to_tag(&ok).is_some());
    assert_eq!(to_tag(&ok), to_tag(&SipMessage::Response(busy.clone())));

    // the ACK of the 486 is absorbed, and with it the 486's bytes go (patch
    // 9): a late copy of the INVITE is absorbed too, so the next datagram
    // the phone gets is the answer to the OPTIONS sent after them
    let mut ack = request("ACK", "inv1", 1, rig.phone_addr);
    ack.headers.retain(|h| !matches!(h, rsipstack::sip::Header::To(_)));
    ack.headers.push(rsipstack::sip::Header::To(busy.to_header().unwrap().clone()));
    rig.deliver(ack.clone().into()).await;
    let busy_tag = to_tag(&SipMessage::Response(busy.clone()));
    assert_eq!(rig.endpoint.inner.finished_transactions.get(&key), Some(Finished::Acked { to_tag: busy_tag.clone().map(Into::into) }));
    rig.deliver(invite.into()).await;
    rig.deliver(ack.into()).await;
    assert!(rig.incoming.try_recv().is_err());
    // a CANCEL after the ACK: 200 with the 486's To tag still
    rig.deliver(request("CANCEL", "inv1", 1, rig.phone_addr).into()).await;
    let ok = parse(&rig.next().await);
    assert_eq!(to_tag(&ok), busy_tag);

    // a non-INVITE: OPTIONS answered 200, then retransmitted
    let options = request("OPTIONS", "opt1", 1, rig.phone_addr);
    rig.deliver(options.clone().into()).await;
    let mut tx = rig.incoming.recv().await.unwrap();
    tx.reply(StatusCode::OK).await.unwrap();
    let first = rig.next().await;
    let SipMessage::Response(options_ok) = parse(&first) else { panic!("a response") };
    assert_eq!(options_ok.cseq_header().unwrap().method().unwrap(), rsipstack::sip::Method::Options);
    drop(tx);
    rig.deliver(options.into()).await;
    assert_eq!(rig.next().await, first);
    assert!(rig.incoming.try_recv().is_err());
}

#[tokio::test]
async fn a_retransmitted_final_response_gets_the_client_invites_ack_again() {
    let rig = rig().await;
    // the phone is the callee here: our INVITE went to it, it answered 486
    // and we acknowledged; the 486 comes again because the ACK was lost
    let invite = request("INVITE", "out1", 1, rig.phone_addr);
    let text = format!(
        "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKout1;rport\r\nFrom: <sip:1000@127.0.0.1>;tag=fout1\r\n\
         To: <sip:2000@127.0.0.1>;tag=callee7\r\nCall-ID: cout1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        rig.phone_addr
    );
    let SipMessage::Response(busy) = parse(text.as_bytes()) else { unreachable!() };
    let ack = rig.endpoint.inner.make_ack(&invite, &busy).unwrap();
    let key = TransactionKey::from_response(&busy, TransactionRole::Client).unwrap();
    rig.endpoint.inner.detach_transaction(&key, Some(ack.clone().into()));
    assert!(matches!(rig.endpoint.inner.finished_transactions.get(&key), Some(Finished::Ack(_))));

    rig.deliver(busy.into()).await;
    let again = parse(&rig.next().await);
    let SipMessage::Request(again) = again else { panic!("an ACK") };
    assert_eq!(again.method, rsipstack::sip::Method::Ack);
    assert_eq!(again.to_bytes(), ack.to_bytes());
    assert_eq!(to_tag(&SipMessage::Request(again)).as_deref(), Some("callee7"));
}
