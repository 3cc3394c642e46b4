use super::*;
use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::TerminatedReason;
use rsipstack::sip::SipMessage;
use std::sync::{Arc, Mutex};

fn id() -> DialogId {
    DialogId { call_id: "c1".into(), local_tag: "l".into(), remote_tag: "r".into() }
}

fn response(code: u16, reason: &str, body: &str) -> Response {
    let text = format!(
        "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:101@h>;tag=l\r\nTo: <sip:102@h>;tag=r\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:102@127.0.0.1:5070>\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match SipMessage::try_from(text.as_str()).expect("parses") {
        SipMessage::Response(r) => r,
        _ => unreachable!(),
    }
}

/// What `report` saw, as short names.
fn names(seen: &Mutex<Vec<String>>) -> Vec<String> {
    seen.lock().unwrap().clone()
}

fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(ForkEvent) -> bool) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let report = move |e: ForkEvent| {
        let name = match &e {
            ForkEvent::State(DialogState::Early(_, r)) => format!("early {}", r.status_code.code()),
            ForkEvent::State(DialogState::Confirmed(..)) => "confirmed".into(),
            ForkEvent::State(DialogState::Terminated(..)) => "terminated".into(),
            ForkEvent::State(_) => "state".into(),
            ForkEvent::Done(Ok((_, Some(r)))) => format!("done {}", r.status_code.code()),
            ForkEvent::Done(_) => "done".into(),
        };
        s.lock().unwrap().push(name);
        true
    };
    (seen, report)
}

/// The callee answers at once: its 180 and the 200 are both queued when the
/// fork's task first runs. The 180 must still be reported first (it used to
/// race the 200 from a second task and lose, so HA never saw `ringing`).
#[tokio::test]
async fn a_180_queued_with_the_200_is_reported_before_it() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(DialogState::Early(id(), response(180, "Ringing", "").into())).unwrap();
    tx.send(DialogState::Confirmed(id(), response(200, "OK", "").into())).unwrap();
    let done = std::future::ready(Ok::<_, String>(Ok((id(), Some(response(200, "OK", ""))))));
    let (seen, report) = recorder();
    let task = tokio::spawn(report_in_order(rx, done, report));
    // A BYE from the callee later arrives on the same stream, after the result.
    for _ in 0..100 {
        if names(&seen).len() == 3 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(names(&seen), ["early 180", "confirmed", "done 200"]);
    tx.send(DialogState::Terminated(id(), TerminatedReason::UasBye)).unwrap();
    drop(tx);
    task.await.unwrap();
    assert_eq!(names(&seen), ["early 180", "confirmed", "done 200", "terminated"]);
}

#[tokio::test]
async fn a_result_without_states_is_reported_and_the_task_ends() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<DialogState>();
    let done = std::future::ready(Ok::<_, String>(Ok((id(), Some(response(486, "Busy Here", ""))))));
    let (seen, report) = recorder();
    drop(tx);
    report_in_order(rx, done, report).await;
    assert_eq!(names(&seen), ["done 486"]);
}

#[tokio::test]
async fn a_report_that_refuses_stops_the_task() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(DialogState::Early(id(), response(180, "Ringing", "").into())).unwrap();
    let done = std::future::pending::<Result<InviteAsyncResult, String>>();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    // Returns even though the INVITE never finishes: the call is gone.
    report_in_order(rx, done, move |_| {
        *c.lock().unwrap() += 1;
        false
    })
    .await;
    assert_eq!(*count.lock().unwrap(), 1);
    drop(tx);
}

/// A future that notes when it is dropped (the INVITE task's JoinHandle in
/// the real call: its slot holds the whole finished INVITE task).
struct Watched<F>(F, Arc<std::sync::atomic::AtomicBool>);

impl<F> Drop for Watched<F> {
    fn drop(&mut self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<F: std::future::Future + Unpin> std::future::Future for Watched<F> {
    type Output = F::Output;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// rsipstack keeps an answered fork's dialog, and so the sending half of its
/// state channel, for the INVITE's Accepted state (64*T1) after the call.
/// The task must not wait for that: it ends at `Terminated`, and lets go of
/// the finished INVITE task's handle as soon as the result is in.
#[tokio::test]
async fn the_task_ends_at_terminated_while_rsipstack_keeps_the_dialog() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(DialogState::Confirmed(id(), response(200, "OK", "").into())).unwrap();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Watched(std::future::ready(Ok::<_, String>(Ok((id(), Some(response(200, "OK", "")))))), dropped.clone());
    let (seen, report) = recorder();
    let task = tokio::spawn(report_in_order(rx, done, report));
    for _ in 0..100 {
        if names(&seen).len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(names(&seen), ["confirmed", "done 200"]);
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst), "the INVITE task's handle is still held");
    assert!(!task.is_finished(), "ended before the dialog did");
    tx.send(DialogState::Terminated(id(), TerminatedReason::UasBye)).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task).await.expect("still waiting after Terminated").unwrap();
    assert_eq!(names(&seen), ["confirmed", "done 200", "terminated"]);
    assert!(tx.is_closed(), "the state channel's receiver is still held");
}

/// A declined fork: its dialog is `Terminated` before the INVITE's result
/// arrives. The result is still reported, then the task ends.
#[tokio::test]
async fn terminated_before_the_result_still_reports_the_result_and_ends() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(DialogState::Terminated(id(), TerminatedReason::UasBusy)).unwrap();
    let (result_tx, result_rx) = tokio::sync::oneshot::channel::<InviteAsyncResult>();
    let done = Box::pin(async move { result_rx.await.map_err(|e| e.to_string()) });
    let (seen, report) = recorder();
    let task = tokio::spawn(report_in_order(rx, done, report));
    for _ in 0..100 {
        if names(&seen).len() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(names(&seen), ["terminated"]);
    let _ = result_tx.send(Ok((id(), Some(response(486, "Busy Here", "")))));
    tokio::time::timeout(std::time::Duration::from_secs(10), task).await.expect("still waiting after the result").unwrap();
    assert_eq!(names(&seen), ["terminated", "done 486"]);
    drop(tx);
}

/// The caller's dialog states reach the call until `Terminated`, then the
/// forwarding task lets go of the call's channel although the dialog's
/// sender still lives.
#[tokio::test]
async fn forward_states_ends_at_terminated() {
    use super::super::call::{forward_states, CallMsg};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (to, mut got) = tokio::sync::mpsc::unbounded_channel();
    forward_states(rx, to, CallMsg::Caller);
    tx.send(DialogState::Confirmed(id(), response(200, "OK", "").into())).unwrap();
    tx.send(DialogState::Terminated(id(), TerminatedReason::UacBye)).unwrap();
    let within = std::time::Duration::from_secs(10);
    assert!(matches!(tokio::time::timeout(within, got.recv()).await, Ok(Some(CallMsg::Caller(DialogState::Confirmed(..))))));
    assert!(matches!(tokio::time::timeout(within, got.recv()).await, Ok(Some(CallMsg::Caller(DialogState::Terminated(..))))));
    assert!(tokio::time::timeout(within, got.recv()).await.expect("the call's channel is still held").is_none());
    assert!(tx.is_closed());
}

#[test]
fn reports_map_to_machine_inputs() {
    let ringing = ForkEvent::State(DialogState::Early(id(), response(180, "Ringing", "").into()));
    assert_eq!(classify(&ringing).input(3), Some(Input::ForkProgress { fork: 3, has_sdp: false }));
    let early = ForkEvent::State(DialogState::Early(id(), response(183, "Session Progress", "v=0\r\n").into()));
    assert_eq!(classify(&early).input(0), Some(Input::ForkProgress { fork: 0, has_sdp: true }));
    let trying = ForkEvent::State(DialogState::Early(id(), response(100, "Trying", "").into()));
    assert!(matches!(classify(&trying), Report::Other));
    let ok = ForkEvent::Done(Ok((id(), Some(response(200, "OK", "v=0\r\n")))));
    assert!(matches!(classify(&ok), Report::Answered(r) if r.body == b"v=0\r\n"));
    assert_eq!(classify(&ok).input(1), Some(Input::ForkAnswered { fork: 1 }));
    let busy = ForkEvent::Done(Ok((id(), Some(response(486, "Busy Here", "")))));
    assert_eq!(classify(&busy).input(1), Some(Input::ForkFailed { fork: 1, status: 486 }));
    let silent = ForkEvent::Done(Ok((id(), None)));
    assert_eq!(classify(&silent).input(1), Some(Input::ForkFailed { fork: 1, status: 408 }));
    let timed_out = ForkEvent::Done(Err(rsipstack::Error::IoError(std::io::ErrorKind::TimedOut.into())));
    assert_eq!(classify(&timed_out).input(1), Some(Input::ForkFailed { fork: 1, status: 408 }));
    let not_sent = ForkEvent::Done(Err(rsipstack::Error::Error("not sent".into())));
    assert_eq!(classify(&not_sent).input(1), Some(Input::ForkFailed { fork: 1, status: 503 }));
}

/// Every dialog owns an unbounded channel of states, and tokio allocates a
/// channel's first block of 32 slots when the channel is made: at 304 bytes a
/// state (a parsed response inline) that was 9.7 KiB per call leg, for the
/// call's whole life; boxed, a state is 112 bytes (3.5 KiB a block). rsipstack
/// patch 5 (vendor/rsipstack/HA-PBX-PATCH.md); this fails if an upgrade brings
/// the inline message back. Patch 4 did the same for transaction events.
#[test]
fn dialog_states_and_transaction_events_stay_small() {
    use rsipstack::transaction::transaction::TransactionEvent;
    let (state, event) = (std::mem::size_of::<DialogState>(), std::mem::size_of::<TransactionEvent>());
    eprintln!("DialogState {state} bytes, TransactionEvent {event} bytes");
    assert!(state <= 112, "DialogState is {state} bytes");
    assert!(event <= 64, "TransactionEvent is {event} bytes");
}
