//! rsipstack patch 11 (`EndpointOption::accepted_invites_in_table`): an
//! answered outgoing INVITE waits out Timer M (64*T1) as its ACK's bytes in
//! the finished table, not as a live transaction drained by a task holding
//! it and its dialog. What a phone sees stays: a retransmitted 2xx gets the
//! same ACK again, and a 2xx from another fork is ACKed and ended with a BYE
//! (RFC 3261 13.2.2.4). Through a real endpoint and UDP sockets on 127.0.0.1.
use super::finished_tx_tests::{parse, rig_with, Rig};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, SipMessage};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transport::SipAddr;
use std::sync::Arc;
use std::time::Duration;

/// The phone's 200 to `invite`, with To tag `tag` and Contact `contact`,
/// through a proxy that is the phone's own address (so the route set leads
/// to the phone's socket).
fn ok_to(invite: &rsipstack::sip::Request, tag: &str, contact: &str) -> SipMessage {
    let proxy = invite.uri.host_with_port.to_string();
    let via = invite.via_header().unwrap().value().to_string();
    let from = invite.from_header().unwrap().value().to_string();
    let to = invite.to_header().unwrap().value().to_string();
    let call_id = invite.call_id_header().unwrap().value().to_string();
    parse(
        format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to};tag={tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <{contact}>\r\nRecord-Route: <sip:{proxy};lr>\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn request_of(bytes: &[u8]) -> rsipstack::sip::Request {
    match parse(bytes) {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("a request, not {}", r.status_code),
    }
}

fn tag_of(req: &rsipstack::sip::Request) -> String {
    req.to_header().unwrap().tag().unwrap().unwrap().value().to_string()
}

/// Our INVITE to the phone, answered 200 and ACKed: the rig, the INVITE as
/// the phone got it, and the ACK's bytes.
async fn answered_call() -> (Rig, Arc<DialogLayer>, rsipstack::sip::Request, Vec<u8>) {
    let rig = rig_with(EndpointOption { accepted_invites_in_table: true, ..Default::default() }).await;
    let dialogs = Arc::new(DialogLayer::new(rig.endpoint.inner.clone()));
    let phone = rig.phone_addr;
    let opt = InviteOption {
        caller: format!("sip:1000@{}", rig.server).as_str().try_into().unwrap(),
        callee: format!("sip:2000@{phone}").as_str().try_into().unwrap(),
        contact: format!("sip:1000@{}", rig.server).as_str().try_into().unwrap(),
        destination: Some(SipAddr::from(phone)),
        ..Default::default()
    };
    let (state_tx, _states) = dialogs.new_dialog_state_channel();
    let (_dialog, handle) = dialogs.do_invite_async(opt, state_tx).unwrap();
    let invite = request_of(&rig.next().await);
    assert_eq!(invite.method, Method::Invite);
    rig.deliver(ok_to(&invite, "first", &format!("sip:2000@{phone}"))).await;
    let ack = rig.next().await;
    assert!(ack.starts_with(b"ACK "), "{}", String::from_utf8_lossy(&ack));
    let (_, resp) = tokio::time::timeout(Duration::from_secs(5), handle).await.expect("the INVITE's result").unwrap().unwrap();
    assert_eq!(resp.unwrap().status_code.code(), 200);
    (rig, dialogs, invite, ack)
}

#[tokio::test]
async fn an_answered_invite_leaves_no_live_transaction_and_re_acks_from_the_table() {
    let (rig, _dialogs, invite, ack) = answered_call().await;
    let stats = rig.endpoint.inner.get_stats();
    assert_eq!(stats.running_transactions, 0, "the Accepted INVITE is not kept live");
    assert_eq!(stats.finished_transactions, 1, "its ACK is kept in the finished table");
    // the 2xx again (our ACK was lost): the same ACK, byte for byte
    rig.deliver(ok_to(&invite, "first", &format!("sip:2000@{}", rig.phone_addr))).await;
    assert_eq!(rig.next().await, ack);
}

#[tokio::test]
async fn a_2xx_from_another_fork_is_acked_and_ended_with_a_bye() {
    let (rig, _dialogs, invite, first_ack) = answered_call().await;
    let fork_contact = format!("sip:2000@{};fork=2", rig.phone_addr);
    rig.deliver(ok_to(&invite, "second", &fork_contact)).await;
    let ack = request_of(&rig.next().await);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(tag_of(&ack), "second");
    assert_eq!(ack.uri.to_string(), fork_contact, "sent to the fork's Contact");
    assert_eq!(ack.route_header().map(|r| r.value().to_string()), Some(format!("<sip:{};lr>", rig.phone_addr)), "its route set is the fork's Record-Route");
    let bye = request_of(&rig.next().await);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(tag_of(&bye), "second");
    assert_eq!(bye.uri.to_string(), fork_contact);
    let first = request_of(&first_ack);
    assert_eq!(bye.call_id_header().unwrap().value(), invite.call_id_header().unwrap().value());
    assert_eq!(bye.from_header().unwrap().value(), first.from_header().unwrap().value(), "our From, with our tag");
    let cseq = bye.cseq_header().unwrap();
    assert_eq!((cseq.seq().unwrap(), cseq.method().unwrap()), (2, Method::Bye));
    let branch = |r: &rsipstack::sip::Request| r.via_header().unwrap().value().to_string();
    assert_ne!(branch(&bye), branch(&ack), "the BYE is a transaction of its own");
    // the phone answers the BYE: its transaction ends
    let via = bye.via_header().unwrap().value().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        bye.from_header().unwrap().value(),
        bye.to_header().unwrap().value(),
        bye.call_id_header().unwrap().value()
    );
    rig.deliver(parse(ok.as_bytes())).await;
    // the confirmed fork's own 2xx still gets the first ACK
    rig.deliver(ok_to(&invite, "first", &format!("sip:2000@{}", rig.phone_addr))).await;
    assert_eq!(rig.next().await, first_ack);
}
