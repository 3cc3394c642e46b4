use super::*;
use crate::events::EndReason;

fn ringing(id: &str, a: &str, b: &str) -> PbxEvent {
    PbxEvent::Ringing { call_id: id.into(), caller: a.into(), callee: b.into() }
}
fn answered(id: &str, a: &str, b: &str) -> PbxEvent {
    PbxEvent::Answered { call_id: id.into(), caller: a.into(), callee: b.into(), answered_by: b.into() }
}
fn ended(id: &str, a: &str, b: &str) -> PbxEvent {
    PbxEvent::Ended {
        call_id: id.into(),
        caller: a.into(),
        callee: b.into(),
        reason: EndReason::CallerHangup,
        answered: true,
        duration_ms: 1,
    }
}

#[test]
fn caller_dials_callee_rings_both_in_call_then_idle() {
    let mut s = CallStates::default();
    assert_eq!(s.view("101").state, CallState::Idle);

    let changed = s.apply(&ringing("c1", "101", "102"));
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["101", "102"]);
    let a = s.view("101");
    assert_eq!((a.state, a.ringing, a.direction), (CallState::Dialing, false, Some(Direction::Outbound)));
    assert_eq!(a.peer.as_deref(), Some("102"));
    let b = s.view("102");
    assert_eq!((b.state, b.ringing, b.direction), (CallState::Ringing, true, Some(Direction::Inbound)));
    assert_eq!(b.call_id.as_deref(), Some("c1"));

    s.apply(&answered("c1", "101", "102"));
    assert_eq!(s.view("101").state, CallState::InCall);
    assert_eq!(s.view("102").state, CallState::InCall);
    assert!(!s.view("102").ringing);

    s.apply(&ended("c1", "101", "102"));
    for ext in ["101", "102"] {
        let v = s.view(ext);
        assert_eq!((v.state, v.calls, v.call_id), (CallState::Idle, 0, None));
    }
    assert_eq!(s.active(), 0);
}

#[test]
fn answered_without_ringing_and_late_ringing_do_not_confuse_it() {
    let mut s = CallStates::default();
    s.apply(&answered("c1", "101", "102"));
    assert_eq!(s.view("102").state, CallState::InCall);
    s.apply(&ringing("c1", "101", "102"));
    assert_eq!(s.view("102").state, CallState::InCall, "a late ringing must not un-answer");
}

#[test]
fn ended_without_ringing_and_unrelated_events_are_harmless() {
    let mut s = CallStates::default();
    s.apply(&ended("ghost", "101", "102"));
    s.apply(&PbxEvent::Dtmf { call_id: "x".into(), from: "101".into(), digit: '1' });
    assert_eq!(s.view("101").state, CallState::Idle);
    assert!(s.apply(&PbxEvent::Missed { call_id: "x".into(), caller: "1".into(), callee: "2".into() }).is_empty());
}

#[test]
fn simultaneous_calls_in_call_wins_and_ringing_flag_shows_call_waiting() {
    let mut s = CallStates::default();
    s.apply(&ringing("c1", "101", "102"));
    s.apply(&answered("c1", "101", "102"));
    // 103 calls 102 while 102 talks to 101.
    s.apply(&ringing("c2", "103", "102"));
    let v = s.view("102");
    assert_eq!((v.state, v.ringing, v.calls), (CallState::InCall, true, 2));
    assert_eq!(v.call_id.as_deref(), Some("c1"));
    assert_eq!(s.view("103").state, CallState::Dialing);

    // The first call ends: 102 now rings for c2.
    s.apply(&ended("c1", "101", "102"));
    let v = s.view("102");
    assert_eq!((v.state, v.calls, v.peer.as_deref()), (CallState::Ringing, 1, Some("103")));
    assert_eq!(s.view("101").state, CallState::Idle);

    s.apply(&answered("c2", "103", "102"));
    s.apply(&ended("c2", "103", "102"));
    assert_eq!(s.view("102").state, CallState::Idle);
}

#[test]
fn ringing_in_beats_dialing_out() {
    let mut s = CallStates::default();
    s.apply(&ringing("out", "102", "104"));
    s.apply(&ringing("in", "103", "102"));
    let v = s.view("102");
    assert_eq!((v.state, v.call_id.as_deref()), (CallState::Ringing, Some("in")));
    // Oldest first among equals.
    s.apply(&ringing("in2", "101", "102"));
    assert_eq!(s.view("102").call_id.as_deref(), Some("in"));
    assert!(s.seq_of("in").unwrap() < s.seq_of("in2").unwrap());
}

#[test]
fn reconcile_drops_dead_calls_and_optionally_adds_live_ones() {
    let mut s = CallStates::default();
    s.apply(&ringing("dead", "101", "102"));
    let live = vec![LiveCall { call_id: "new".into(), caller: "103".into(), callee: "104".into(), answered: true, ..Default::default() }];
    let changed = s.reconcile(&live, false);
    assert!(changed.contains("101") && changed.contains("102"));
    assert_eq!(s.active(), 0);
    let changed = s.reconcile(&live, true);
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["103", "104"]);
    assert_eq!(s.view("104").state, CallState::InCall);
    assert!(s.reconcile(&live, true).is_empty(), "nothing new the second time");
}

#[test]
fn hold_and_resume_show_on_hold_for_both_parties() {
    let hold = |held: bool| PbxEvent::Hold { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), by: "101".into(), held };
    let mut s = CallStates::default();
    // A hold for a call we do not know changes nothing.
    assert!(s.apply(&hold(true)).is_empty());
    s.apply(&ringing("c1", "101", "102"));
    s.apply(&answered("c1", "101", "102"));
    assert_eq!(s.apply(&hold(true)).into_iter().collect::<Vec<_>>(), ["101", "102"]);
    assert_eq!(s.view("101").state, CallState::OnHold);
    assert_eq!(s.view("102").state, CallState::OnHold);
    s.apply(&hold(false));
    assert_eq!(s.view("102").state, CallState::InCall);
    s.apply(&ended("c1", "101", "102"));
    assert_eq!(s.view("101").state, CallState::Idle);
}

fn members(id: &str, a: &str, b: &str, ringing: &[&str]) -> PbxEvent {
    PbxEvent::RingingMembers { call_id: id.into(), caller: a.into(), callee: b.into(), ringing: ringing.iter().map(|s| s.to_string()).collect() }
}

#[test]
fn a_ring_groups_members_ring_then_the_one_that_answered_is_in_the_call() {
    let mut s = CallStates::default();
    // The members ring before the group's first 180 (Ringing).
    let changed = s.apply(&members("g", "101", "600", &["102", "103"]));
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["101", "102", "103", "600"]);
    s.apply(&ringing("g", "101", "600"));
    for ext in ["102", "103"] {
        let v = s.view(ext);
        assert_eq!((v.state, v.ringing, v.direction), (CallState::Ringing, true, Some(Direction::Inbound)), "{ext}");
        assert_eq!((v.peer.as_deref(), v.call_id.as_deref()), (Some("101"), Some("g")));
    }
    assert_eq!(s.view("101").state, CallState::Dialing);
    assert_eq!(s.view("104").state, CallState::Idle);

    // 103 answers: it is in the call, 102 stops ringing, 101 talks to 103.
    let changed = s.apply(&PbxEvent::Answered { call_id: "g".into(), caller: "101".into(), callee: "600".into(), answered_by: "103".into() });
    assert!(["101", "102", "103"].iter().all(|e| changed.contains(*e)), "{changed:?}");
    let v = s.view("103");
    assert_eq!((v.state, v.ringing, v.peer.as_deref(), v.direction), (CallState::InCall, false, Some("101"), Some(Direction::Inbound)));
    let v = s.view("101");
    assert_eq!((v.state, v.peer.as_deref(), v.direction), (CallState::InCall, Some("103"), Some(Direction::Outbound)));
    let v = s.view("102");
    assert_eq!((v.state, v.ringing, v.calls), (CallState::Idle, false, 0));
    // A late list of members changes nothing once answered.
    s.apply(&members("g", "101", "600", &["102"]));
    assert_eq!(s.view("102").state, CallState::Idle);

    // 103 holds: both show it; the end leaves everyone idle.
    let hold = PbxEvent::Hold { call_id: "g".into(), caller: "101".into(), callee: "600".into(), by: "103".into(), held: true };
    assert!(s.apply(&hold).contains("103"));
    assert_eq!((s.view("103").state, s.view("101").state), (CallState::OnHold, CallState::OnHold));
    let changed = s.apply(&ended("g", "101", "600"));
    assert!(changed.contains("103"), "the member hears of the end: {changed:?}");
    assert_eq!(s.view("103").state, CallState::Idle);
}

#[test]
fn a_hunt_moves_the_ringing_from_member_to_member() {
    let mut s = CallStates::default();
    s.apply(&members("g", "101", "600", &["102"]));
    assert_eq!(s.view("102").state, CallState::Ringing);
    // 102's turn ends, 103's begins: both views change.
    let changed = s.apply(&members("g", "101", "600", &["103"]));
    assert!(changed.contains("102") && changed.contains("103"));
    assert_eq!((s.view("102").state, s.view("103").state), (CallState::Idle, CallState::Ringing));
    // The group's number itself is not listed as a member.
    s.apply(&members("g", "101", "600", &["600", "103"]));
    assert_eq!(s.call("g").unwrap().ringing, ["103"]);
    // Nobody answers: the end frees the member rung last.
    assert!(s.apply(&ended("g", "101", "600")).contains("103"));
    assert_eq!(s.view("103").state, CallState::Idle);
}

#[test]
fn a_member_in_a_call_and_rung_by_a_group_shows_call_waiting() {
    let mut s = CallStates::default();
    s.apply(&answered("c1", "104", "102"));
    s.apply(&members("g", "101", "600", &["102", "103"]));
    let v = s.view("102");
    assert_eq!((v.state, v.ringing, v.calls, v.call_id.as_deref()), (CallState::InCall, true, 2, Some("c1")));
}

#[test]
fn reconcile_takes_over_the_members_of_live_calls() {
    let mut s = CallStates::default();
    let ringing = LiveCall { call_id: "g".into(), caller: "101".into(), callee: "600".into(), ringing: vec!["102".into()], ..Default::default() };
    let changed = s.reconcile(std::slice::from_ref(&ringing), true);
    assert!(changed.contains("102"), "{changed:?}");
    assert_eq!(s.view("102").state, CallState::Ringing);
    let answered = LiveCall { answered: true, answered_by: Some("103".into()), ringing: vec![], ..ringing };
    let changed = s.reconcile(std::slice::from_ref(&answered), true);
    assert!(changed.contains("102") && changed.contains("103"), "{changed:?}");
    assert_eq!((s.view("102").state, s.view("103").state), (CallState::Idle, CallState::InCall));
    // The call's end was lost: the member is freed too.
    assert!(s.reconcile(&[], false).contains("103"));
    assert_eq!(s.view("103").state, CallState::Idle);
}

fn parked(id: &str, slot: &str, parker: &str, party: &str) -> PbxEvent {
    PbxEvent::Parked { call_id: id.into(), slot: slot.into(), parker: parker.into(), parked: party.into() }
}

fn transferred(id: &str, a: &str, b: &str) -> PbxEvent {
    PbxEvent::Ended { call_id: id.into(), caller: a.into(), callee: b.into(), reason: EndReason::Transferred, answered: true, duration_ms: 1 }
}

#[test]
fn a_parked_party_stays_in_a_call_with_the_slot_until_taken_or_ended() {
    let mut s = CallStates::default();
    s.apply(&answered("c1", "101", "102"));
    // 102 parks 101 on 701: its leg ends as transferred, 101 stays.
    assert!(s.apply(&parked("c1", "701", "102", "101")).contains("101"));
    let changed = s.apply(&transferred("c1", "101", "102"));
    assert!(changed.contains("102"), "{changed:?}");
    let v = s.view("101");
    assert_eq!((v.state, v.peer.as_deref(), v.call_id.as_deref(), v.calls), (CallState::InCall, Some("701"), Some("c1"), 1));
    assert_eq!(s.view("102").state, CallState::Idle);
    assert_eq!(s.active(), 1, "the parked call is still a call");
    // Nobody took it: the parker is rung back; 101 still hears the park.
    s.apply(&ringing("c1", "101", "102"));
    assert_eq!((s.view("102").state, s.view("102").ringing), (CallState::Ringing, true));
    let v = s.view("101");
    assert_eq!((v.state, v.peer.as_deref(), v.calls), (CallState::InCall, Some("701"), 1));
    // 103 takes it from the slot: 101 talks to 103, 102 stops ringing.
    let take = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "701".into(), answered_by: "103".into() };
    assert!(s.apply(&take).contains("101"));
    let v = s.view("101");
    assert_eq!((v.state, v.peer.as_deref()), (CallState::InCall, Some("103")));
    s.apply(&ended("c1", "101", "701"));
    assert_eq!((s.view("101").state, s.view("103").state, s.active()), (CallState::Idle, CallState::Idle, 0));

    // Parked again and left: the parked party's hang-up frees it.
    s.apply(&answered("c2", "101", "102"));
    s.apply(&parked("c2", "702", "102", "101"));
    s.apply(&transferred("c2", "101", "102"));
    assert_eq!(s.view("101").peer.as_deref(), Some("702"));
    assert!(s.apply(&ended("c2", "101", "702")).contains("101"));
    assert_eq!((s.view("101").state, s.active()), (CallState::Idle, 0));
    // A registry without the call drops a parked call whose end was lost.
    s.apply(&answered("c3", "101", "102"));
    s.apply(&parked("c3", "701", "102", "101"));
    s.apply(&transferred("c3", "101", "102"));
    assert!(s.reconcile(&[], false).contains("101"));
    assert_eq!((s.view("101").state, s.active()), (CallState::Idle, 0));
}
