use super::*;
use Action::*;

#[test]
fn first_answer_wins_and_others_are_cancelled() {
    let mut m = CallMachine::new(3);
    assert_eq!(m.on(Input::ForkProgress { fork: 1, has_sdp: false }), vec![Event(CallEvent::Ringing), Ringing { early_media_from: None }]);
    // A second 180 sends nothing new.
    assert!(m.on(Input::ForkProgress { fork: 2, has_sdp: false }).is_empty());
    let out = m.on(Input::ForkAnswered { fork: 2 });
    assert_eq!(out, vec![AnswerCaller { fork: 2 }, CancelFork(0), CancelFork(1), Event(CallEvent::Answered)]);
    assert_eq!(m.winner(), Some(2));
    // Late provisional after the 200 and the cancelled forks' 487 are ignored.
    assert!(m.on(Input::ForkProgress { fork: 0, has_sdp: true }).is_empty());
    assert!(m.on(Input::ForkFailed { fork: 1, status: 487 }).is_empty());
    // A 2xx that crossed our CANCEL is hung up.
    assert_eq!(m.on(Input::ForkAnswered { fork: 0 }), vec![ByeFork(0)]);
    let out = m.on(Input::CalleeHangup);
    assert_eq!(out, vec![ByeCaller, Event(CallEvent::Ended { reason: EndReason::CalleeHangup, answered: true }), Finished]);
    assert!(m.is_finished());
    assert!(m.on(Input::CallerHangup).is_empty());
}

#[test]
fn early_media_from_first_fork_with_sdp() {
    let mut m = CallMachine::new(2);
    m.on(Input::ForkProgress { fork: 0, has_sdp: false });
    assert_eq!(m.on(Input::ForkProgress { fork: 1, has_sdp: true }), vec![Ringing { early_media_from: Some(1) }]);
    assert!(m.on(Input::ForkProgress { fork: 0, has_sdp: true }).is_empty());
}

#[test]
fn all_busy_gives_486_and_missed() {
    let mut m = CallMachine::new(2);
    assert!(m.on(Input::ForkFailed { fork: 0, status: 486 }).is_empty());
    let out = m.on(Input::ForkFailed { fork: 1, status: 408 });
    assert_eq!(
        out,
        vec![RejectCaller(486), Event(CallEvent::Missed), Event(CallEvent::Ended { reason: EndReason::Busy, answered: false }), Finished]
    );
}

#[test]
fn unreachable_devices_give_480_and_decline_wins() {
    let mut m = CallMachine::new(2);
    m.on(Input::ForkFailed { fork: 0, status: 503 });
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 408 })[0], RejectCaller(480));
    let mut m = CallMachine::new(2);
    m.on(Input::ForkFailed { fork: 0, status: 486 });
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 603 })[0], RejectCaller(603));
}

#[test]
fn caller_cancel_cancels_every_ringing_fork() {
    let mut m = CallMachine::new(2);
    m.on(Input::ForkFailed { fork: 0, status: 480 });
    let out = m.on(Input::CallerCancelled);
    assert_eq!(
        out,
        vec![CancelFork(1), Event(CallEvent::Missed), Event(CallEvent::Ended { reason: EndReason::Cancelled, answered: false }), Finished]
    );
}

#[test]
fn ring_timeout_and_media_timeout() {
    let mut m = CallMachine::new(1);
    let out = m.on(Input::RingTimeout);
    assert_eq!(out[..2], [CancelFork(0), RejectCaller(480)]);
    let mut m = CallMachine::new(1);
    m.on(Input::ForkAnswered { fork: 0 });
    assert!(m.on(Input::RingTimeout).is_empty());
    let out = m.on(Input::MediaTimeout);
    assert_eq!(out[..2], [ByeCaller, ByeFork(0)]);
    assert!(m.is_finished());
}

#[test]
fn caller_hangup_after_answer_byes_the_winner() {
    let mut m = CallMachine::new(2);
    m.on(Input::ForkAnswered { fork: 1 });
    assert_eq!(m.on(Input::CallerHangup)[0], ByeFork(1));
}

#[test]
fn terminate_ends_both_legs_in_any_phase() {
    let mut m = CallMachine::new(2);
    let out = m.on(Input::Terminate);
    assert_eq!(out[..3], [CancelFork(0), CancelFork(1), RejectCaller(603)]);
    assert!(out.contains(&Event(CallEvent::Ended { reason: EndReason::Terminated, answered: false })));
    let mut m = CallMachine::new(1);
    m.on(Input::ForkAnswered { fork: 0 });
    let out = m.on(Input::Terminate);
    assert_eq!(out[..2], [ByeCaller, ByeFork(0)]);
    assert!(m.is_finished());
}
