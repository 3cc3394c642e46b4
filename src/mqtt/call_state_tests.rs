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
    let live = vec![LiveCall { call_id: "new".into(), caller: "103".into(), callee: "104".into(), answered: true }];
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
