use super::*;
use Action::*;

/// A call whose INVITE went to `forks` devices, and what that did.
fn offered(forks: usize) -> (CallMachine, Vec<Action>) {
    let mut m = CallMachine::new();
    let out = m.on(Input::Offered { forks });
    (m, out)
}

fn ringing(forks: usize) -> CallMachine {
    offered(forks).0
}

/// The events among `actions`, in order.
fn events(actions: &[Action]) -> Vec<CallEvent> {
    actions.iter().filter_map(|a| if let Event(e) = a { Some(*e) } else { None }).collect()
}

#[test]
fn the_call_is_offered_when_the_invite_goes_out() {
    let (_, out) = offered(2);
    assert_eq!(out, vec![Event(CallEvent::Ringing)]);
}

#[test]
fn first_answer_wins_and_others_are_cancelled() {
    let mut m = ringing(3);
    assert_eq!(m.on(Input::ForkProgress { fork: 1, has_sdp: false }), vec![Ringing { early_media_from: None }]);
    // A second 180 sends nothing new.
    assert!(m.on(Input::ForkProgress { fork: 2, has_sdp: false }).is_empty());
    let out = m.on(Input::ForkAnswered { fork: 2 });
    assert_eq!(out, vec![AnswerCaller { fork: 2 }, CancelFork(0), CancelFork(1)]);
    assert_eq!(m.winner(), Some(2));
    assert_eq!(m.on(Input::Connected { fork: 2 }), vec![Event(CallEvent::Answered)]);
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

/// Issue 20: a callee that answers at once. Its 200 reaches the call before
/// its 180 (or no 180 comes at all): `ringing`, `answered`, `ended` still
/// come out in that order, once each.
#[test]
fn an_answer_before_the_180_still_rings_first_once() {
    for offer_first in [true, false] {
        let mut m = CallMachine::new();
        let mut all = Vec::new();
        if offer_first {
            all.extend(m.on(Input::Offered { forks: 1 }));
        } else {
            // The machine alone, without the glue's Offered, never answers
            // a fork it did not ring.
            assert!(m.on(Input::ForkAnswered { fork: 0 }).is_empty());
            all.extend(m.on(Input::Offered { forks: 1 }));
        }
        all.extend(m.on(Input::ForkAnswered { fork: 0 }));
        all.extend(m.on(Input::Connected { fork: 0 }));
        all.extend(m.on(Input::ForkProgress { fork: 0, has_sdp: false })); // the late 180
        all.extend(m.on(Input::CallerHangup));
        assert_eq!(
            events(&all),
            [CallEvent::Ringing, CallEvent::Answered, CallEvent::Ended { reason: EndReason::CallerHangup, answered: true }]
        );
        // The caller was never sent a 180 after its 200.
        assert!(!all.contains(&Ringing { early_media_from: None }));
    }
}

#[test]
fn early_media_from_first_fork_with_sdp() {
    let mut m = ringing(2);
    m.on(Input::ForkProgress { fork: 0, has_sdp: false });
    assert_eq!(m.on(Input::ForkProgress { fork: 1, has_sdp: true }), vec![Ringing { early_media_from: Some(1) }]);
    assert!(m.on(Input::ForkProgress { fork: 0, has_sdp: true }).is_empty());
}

#[test]
fn all_busy_gives_486_and_missed() {
    let mut m = ringing(2);
    assert!(m.on(Input::ForkFailed { fork: 0, status: 486 }).is_empty());
    let out = m.on(Input::ForkFailed { fork: 1, status: 408 });
    assert_eq!(
        out,
        vec![RejectCaller(486), Event(CallEvent::Missed), Event(CallEvent::Ended { reason: EndReason::Busy, answered: false }), Finished]
    );
}

#[test]
fn unreachable_devices_give_480_and_decline_wins() {
    let mut m = ringing(2);
    m.on(Input::ForkFailed { fork: 0, status: 503 });
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 408 })[0], RejectCaller(480));
    let mut m = ringing(2);
    m.on(Input::ForkFailed { fork: 0, status: 486 });
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 603 })[0], RejectCaller(603));
}

#[test]
fn caller_cancel_cancels_every_ringing_fork() {
    let mut m = ringing(2);
    m.on(Input::ForkFailed { fork: 0, status: 480 });
    let out = m.on(Input::CallerCancelled);
    assert_eq!(
        out,
        vec![CancelFork(1), Event(CallEvent::Missed), Event(CallEvent::Ended { reason: EndReason::Cancelled, answered: false }), Finished]
    );
}

#[test]
fn ring_timeout_and_media_timeout() {
    let mut m = ringing(1);
    let out = m.on(Input::RingTimeout);
    assert_eq!(out[..2], [CancelFork(0), RejectCaller(480)]);
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    assert!(m.on(Input::RingTimeout).is_empty());
    let out = m.on(Input::MediaTimeout);
    assert_eq!(out[..2], [ByeCaller, ByeFork(0)]);
    assert!(m.is_finished());
}

#[test]
fn caller_hangup_after_answer_byes_the_winner() {
    let mut m = ringing(2);
    m.on(Input::ForkAnswered { fork: 1 });
    assert_eq!(m.on(Input::CallerHangup)[0], ByeFork(1));
}

#[test]
fn terminate_ends_both_legs_in_any_phase() {
    let mut m = ringing(2);
    let out = m.on(Input::Terminate);
    assert_eq!(out[..3], [CancelFork(0), CancelFork(1), RejectCaller(603)]);
    assert!(out.contains(&Event(CallEvent::Ended { reason: EndReason::Terminated, answered: false })));
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    let out = m.on(Input::Terminate);
    assert_eq!(out[..2], [ByeCaller, ByeFork(0)]);
    assert!(m.is_finished());
}

/// Nobody answers: the ringing devices stop, the agent (fork 2) is rung for
/// the same callee, so no second `ringing`; the old forks' late reports
/// change nothing, and the agent's answer connects the caller.
#[test]
fn handoff_to_the_agent_rings_it_as_the_same_callee() {
    let mut m = ringing(2);
    m.on(Input::ForkProgress { fork: 0, has_sdp: false });
    let out = m.on(Input::HandOff { forks: 1 });
    assert_eq!(out, vec![CancelFork(0), CancelFork(1)]);
    assert_eq!((m.fork_count(), m.current_forks().collect::<Vec<_>>()), (3, vec![2]));
    // The cancelled devices' 487s do not end the call, nor does a late 200.
    assert!(m.on(Input::ForkFailed { fork: 0, status: 487 }).is_empty());
    assert!(m.on(Input::ForkFailed { fork: 1, status: 487 }).is_empty());
    assert!(m.on(Input::ForkAnswered { fork: 0 }).is_empty());
    // The agent's own 180 sends no second 180 to the caller.
    assert!(m.on(Input::ForkProgress { fork: 2, has_sdp: false }).is_empty());
    assert_eq!(m.on(Input::ForkAnswered { fork: 2 }), vec![AnswerCaller { fork: 2 }]);
    assert_eq!(m.winner(), Some(2));
    // Answered, nothing more to hand off.
    assert!(m.on(Input::HandOff { forks: 1 }).is_empty());
}

#[test]
fn a_failing_agent_ends_the_call_as_missed() {
    let mut m = ringing(1);
    m.on(Input::HandOff { forks: 1 });
    let out = m.on(Input::ForkFailed { fork: 1, status: 503 });
    assert_eq!(out[0], RejectCaller(480));
    assert_eq!(events(&out), [CallEvent::Missed, CallEvent::Ended { reason: EndReason::Unavailable, answered: false }]);
}

/// 101 calls 102, 102 answers, then 102 transfers 101 to 103: 102 is hung
/// up and its part ends as transferred; 103 rings (a `ringing` of its own)
/// and answers; the end of the call ends 101 ↔ 103.
#[test]
fn transfer_ends_the_leaving_party_and_rings_the_target() {
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    let out = m.on(Input::Transfer { leaving: Party::Callee });
    assert_eq!(out, vec![ByeFork(0), Event(CallEvent::Ended { reason: EndReason::Transferred, answered: true })]);
    assert!(m.is_ringing() && m.winner().is_none());
    // The BYE's answer from the leaving fork is not the callee hanging up.
    assert!(m.on(Input::ForkAnswered { fork: 0 }).is_empty());
    assert_eq!(m.on(Input::Offered { forks: 2 }), vec![Event(CallEvent::Ringing)]);
    // The caller already has its 200: no 180 to it.
    assert!(m.on(Input::ForkProgress { fork: 1, has_sdp: false }).is_empty());
    assert_eq!(m.on(Input::ForkAnswered { fork: 2 }), vec![AnswerCaller { fork: 2 }, CancelFork(1)]);
    assert_eq!(m.on(Input::Connected { fork: 2 }), vec![Event(CallEvent::Answered)]);
    let out = m.on(Input::CallerHangup);
    assert_eq!(out[0], ByeFork(2));
    assert_eq!(events(&out), [CallEvent::Ended { reason: EndReason::CallerHangup, answered: true }]);
}

#[test]
fn transfer_of_the_caller_byes_the_caller_and_a_target_that_fails_ends_the_call() {
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    assert_eq!(m.on(Input::Transfer { leaving: Party::Caller })[0], ByeCaller);
    m.on(Input::Offered { forks: 1 });
    let out = m.on(Input::ForkFailed { fork: 1, status: 486 });
    assert_eq!(out[0], RejectCaller(486));
    assert_eq!(events(&out), [CallEvent::Missed, CallEvent::Ended { reason: EndReason::Busy, answered: false }]);
    // A transfer needs an answered call.
    let mut m = ringing(1);
    assert!(m.on(Input::Transfer { leaving: Party::Caller }).is_empty());
}

/// A callee that answers with SDP the call cannot use: the caller gets 488,
/// the callee a BYE, and the call ends there (it used to stay "answered",
/// its relay and history row open, with no media timeout to end it).
#[test]
fn an_unusable_answer_ends_the_call_unanswered() {
    let mut m = ringing(2);
    assert_eq!(m.on(Input::ForkAnswered { fork: 1 }), vec![AnswerCaller { fork: 1 }, CancelFork(0)]);
    let out = m.on(Input::AnswerUnusable { fork: 1 });
    assert_eq!(out[..2], [RejectCaller(488), ByeFork(1)]);
    assert_eq!(events(&out), [CallEvent::Missed, CallEvent::Ended { reason: EndReason::Failed, answered: false }]);
    assert!(m.is_finished());
    // Only the winner's answer is confirmed or refused.
    let mut m = ringing(2);
    m.on(Input::ForkAnswered { fork: 0 });
    assert!(m.on(Input::Connected { fork: 1 }).is_empty());
    assert!(m.on(Input::AnswerUnusable { fork: 1 }).is_empty());
}

#[test]
fn a_group_expecting_more_hears_of_refusals_instead_of_ending() {
    let mut m = CallMachine::new();
    assert!(m.on(Input::Expecting { more: true }).is_empty());
    m.on(Input::Offered { forks: 1 });
    assert_eq!(m.ringing_forks().collect::<Vec<_>>(), [0]);
    // Hunt: the first member's turn is over.
    assert_eq!(m.on(Input::StopFork { fork: 0 }), vec![CancelFork(0)]);
    assert_eq!(m.ringing_forks().count(), 0, "a cancelled fork rings no more");
    assert!(m.on(Input::StopFork { fork: 0 }).is_empty());
    // Its 487 only says the round is refused so far.
    assert_eq!(m.on(Input::ForkFailed { fork: 0, status: 487 }), vec![AllRefused]);
    // The next member rings (no second `Ringing` event), and is busy.
    assert!(m.on(Input::Offered { forks: 1 }).is_empty());
    assert_eq!(m.ringing_forks().collect::<Vec<_>>(), [1]);
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 486 }), vec![AllRefused]);
    assert_eq!(m.ringing_forks().count(), 0, "a refusing fork rings no more");
    // Nobody left and no fallback: the caller hears busy.
    let out = m.on(Input::Expecting { more: false });
    assert_eq!(out[0], RejectCaller(486));
    assert_eq!(events(&out), vec![CallEvent::Missed, CallEvent::Ended { reason: EndReason::Busy, answered: false }]);
    assert!(m.is_finished());
}

#[test]
fn a_group_member_answering_cancels_the_others_and_a_fallback_starts_a_new_round() {
    let mut m = CallMachine::new();
    m.on(Input::Expecting { more: true });
    m.on(Input::Offered { forks: 2 });
    m.on(Input::Offered { forks: 1 });
    assert_eq!(m.on(Input::ForkAnswered { fork: 2 }), vec![AnswerCaller { fork: 2 }, CancelFork(0), CancelFork(1)]);
    assert_eq!(m.ringing_forks().count(), 0, "an answered call rings nobody");

    let mut m = CallMachine::new();
    m.on(Input::Expecting { more: true });
    m.on(Input::Offered { forks: 2 });
    // The fallback (the agent) takes over: a new round, nothing more expected.
    assert_eq!(m.on(Input::HandOff { forks: 1 }), vec![CancelFork(0), CancelFork(1)]);
    let out = m.on(Input::ForkFailed { fork: 2, status: 503 });
    assert_eq!(out[0], RejectCaller(480));
}

/// Pickup as `pickup_call.rs` feeds it: the picker's INVITE is a new fork
/// that answers at once; the ringing devices are cancelled, the caller is
/// answered with the picker, and the picker's hangup ends the call.
#[test]
fn pickup_cancels_the_ringing_devices_and_answers_with_the_picker() {
    let mut m = ringing(2);
    m.on(Input::ForkProgress { fork: 0, has_sdp: false });
    assert_eq!(m.on(Input::HandOff { forks: 1 }), vec![CancelFork(0), CancelFork(1)]);
    assert_eq!(m.on(Input::ForkAnswered { fork: 2 }), vec![AnswerCaller { fork: 2 }]);
    assert_eq!(m.on(Input::Connected { fork: 2 }), vec![Event(CallEvent::Answered)]);
    // The cancelled phones' 487s change nothing.
    assert!(m.on(Input::ForkFailed { fork: 1, status: 487 }).is_empty());
    let out = m.on(Input::CalleeHangup);
    assert!(out.contains(&ByeCaller), "{out:?}");
    assert!(m.is_finished());
}

/// 102 parks 101: 102's part ends as transferred without a BYE from the
/// machine (the glue sends it after the NOTIFY); nothing rings. A retrieve
/// is a handoff to one answering fork; a parked party's BYE ends the call.
#[test]
fn park_leaves_the_call_waiting_and_a_retrieve_or_a_hangup_ends_the_wait() {
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    let out = m.on(Input::Park { leaving: Party::Callee });
    assert_eq!(out, vec![Event(CallEvent::Ended { reason: EndReason::Transferred, answered: true })]);
    assert!(m.is_ringing() && m.winner().is_none());
    // Retrieved: a handoff to the retriever's leg, which answers at once.
    assert!(m.on(Input::HandOff { forks: 1 }).is_empty());
    assert_eq!(m.on(Input::ForkAnswered { fork: 1 }), vec![Event(CallEvent::Ringing), AnswerCaller { fork: 1 }]);
    assert_eq!(m.on(Input::Connected { fork: 1 }), vec![Event(CallEvent::Answered)]);
    // The parked party hangs up while parked: the call ends, nothing to cancel.
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    m.on(Input::Park { leaving: Party::Caller });
    let out = m.on(Input::CallerHangup);
    assert_eq!(events(&out), [CallEvent::Missed, CallEvent::Ended { reason: EndReason::Cancelled, answered: false }]);
    assert_eq!(out.last(), Some(&Finished));
    // Rung back and not answered: the ring timeout hangs the parked party up.
    let mut m = ringing(1);
    m.on(Input::ForkAnswered { fork: 0 });
    m.on(Input::Park { leaving: Party::Callee });
    m.on(Input::Offered { forks: 1 });
    let out = m.on(Input::RingTimeout);
    assert_eq!(out[..2], [CancelFork(1), RejectCaller(480)]);
    assert_eq!(events(&out), [CallEvent::Missed, CallEvent::Ended { reason: EndReason::NoAnswer, answered: false }]);
    // Only an answered call can be parked.
    assert!(ringing(1).on(Input::Park { leaving: Party::Caller }).is_empty());
}

#[test]
fn a_call_out_that_failed_at_its_trunk_rings_the_next_with_the_failure_known() {
    // the call out's trunk answers 503: nothing ends while another trunk may take it
    let mut m = CallMachine::new();
    assert!(m.on(Input::Expecting { more: true }).is_empty());
    m.on(Input::Offered { forks: 1 });
    assert_eq!(m.last_failure(), None);
    assert_eq!(m.on(Input::ForkFailed { fork: 0, status: 503 }), vec![AllRefused]);
    assert_eq!(m.last_failure(), Some(503));
    // the next trunk: a new fork, then its refusal (486) is the last failure and ends the call
    assert!(m.on(Input::Offered { forks: 1 }).is_empty());
    assert_eq!(m.last_failure(), None, "the new fork is trying");
    assert_eq!(m.on(Input::ForkFailed { fork: 1, status: 486 }), vec![AllRefused]);
    assert_eq!(m.last_failure(), Some(486));
    let out = m.on(Input::Expecting { more: false });
    assert_eq!(out[0], RejectCaller(486), "busy wins over the first trunk's 503");
    assert!(m.is_finished());
}
