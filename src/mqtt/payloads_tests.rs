use super::*;
use crate::mqtt::call_state::{CallState, CallStates};

fn ended(reason: EndReason, answered: bool) -> PbxEvent {
    PbxEvent::Ended { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), reason, answered, duration_ms: 12_345 }
}

fn kinds(v: &[ExtEvent]) -> Vec<(String, &'static str, String)> {
    v.iter().map(|e| (e.extension.clone(), e.event_type, e.body["direction"].as_str().unwrap().to_string())).collect()
}

#[test]
fn ringing_goes_to_both_parties_with_direction() {
    let e = PbxEvent::Ringing { call_id: "c1".into(), caller: "101".into(), callee: "102".into() };
    let out = ext_events(&e, None);
    assert_eq!(
        kinds(&out),
        [("101".into(), "ringing", "outbound".into()), ("102".into(), "ringing", "inbound".into())]
    );
    assert_eq!(
        out[1].body,
        json!({"event_type": "ringing", "call_id": "c1", "caller": "101", "callee": "102", "direction": "inbound"})
    );
}

#[test]
fn answered_names_who_answered_and_tells_a_picker_or_member_too() {
    let e = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "103".into() };
    let out = ext_events(&e, None);
    assert_eq!(
        kinds(&out),
        [("101".into(), "answered", "outbound".into()), ("102".into(), "answered", "inbound".into()), ("103".into(), "answered", "inbound".into())]
    );
    assert!(out.iter().all(|e| e.body["callee"] == "102" && e.body["answered_by"] == "103"), "{:?}", out.iter().map(|e| &e.body).collect::<Vec<_>>());
    // The callee answered itself: two parties, as before.
    let e = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() };
    let out = ext_events(&e, None);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].body["answered_by"], "102");
}

#[test]
fn unanswered_end_is_missed_or_rejected_then_ended() {
    let out = ext_events(&ended(EndReason::NoAnswer, false), None);
    let types: Vec<_> = out.iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["missed", "missed", "ended", "ended"]);
    assert_eq!(out[2].body["reason"], "no_answer");
    assert_eq!(out[2].body["answered"], false);

    for r in [EndReason::Busy, EndReason::Rejected] {
        let types: Vec<_> = ext_events(&ended(r, false), None).iter().map(|e| e.event_type).collect();
        assert_eq!(types, ["rejected", "rejected", "ended", "ended"], "{r:?}");
    }
    let types: Vec<_> = ext_events(&ended(EndReason::CallerHangup, true), None).iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["ended", "ended"]);
}

#[test]
fn dtmf_uses_the_call_parties_and_carries_the_digit() {
    let e = PbxEvent::Dtmf { call_id: "c1".into(), from: "101".into(), digit: '#' };
    let mut calls = CallStates::default();
    calls.apply(&PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() });
    let out = ext_events(&e, calls.call("c1"));
    assert_eq!(kinds(&out), [("101".into(), "dtmf", "outbound".into()), ("102".into(), "dtmf", "inbound".into())]);
    assert_eq!(out[0].body["digit"], "#");
    assert_eq!(out[0].body["from"], "101");
    // A digit on a call we do not know still reaches the sender's entity.
    let out = ext_events(&e, None);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].extension, "101");
}

#[test]
fn missed_and_registrations_make_no_entity_event() {
    assert!(ext_events(&PbxEvent::Missed { call_id: "c".into(), caller: "1".into(), callee: "2".into() }, None).is_empty());
    let reg = PbxEvent::Registered { extension: "1".into(), contact: "c".into(), transport: "udp".into(), source: "s".into(), expires: 60 };
    assert!(ext_events(&reg, None).is_empty());
}

#[test]
fn every_event_type_is_announced() {
    for t in ["ringing", "answered", "ended", "missed", "rejected", "dtmf", "message", "parked"] {
        assert!(EVENT_TYPES.contains(&t));
    }
}

#[test]
fn a_park_is_an_event_for_the_parker_and_the_parked_party_with_the_slot() {
    let e = PbxEvent::Parked { call_id: "c".into(), slot: "701".into(), parker: "102".into(), parked: "101".into() };
    let out = ext_events(&e, None);
    let who: Vec<(&str, &str)> = out.iter().map(|x| (x.extension.as_str(), x.body["direction"].as_str().unwrap_or(""))).collect();
    assert_eq!(who, [("102", "outbound"), ("101", "inbound")]);
    assert!(out.iter().all(|x| x.event_type == "parked" && x.body["slot"] == "701" && x.body["caller"] == "102"), "{out:?}");
}

#[test]
fn state_and_summaries() {
    let view = ExtCallView {
        state: CallState::InCall,
        ringing: false,
        calls: 1,
        call_id: Some("c1".into()),
        peer: Some("101".into()),
        direction: Some(Direction::Inbound),
    };
    let v = ext_state(&view, 2, Some("Front door"));
    assert_eq!(v["state"], "in_call");
    assert_eq!(v["registered"], true);
    assert_eq!(v["contacts"], 2);
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["peer_name"], "Front door");

    assert_eq!(display("101", Some("Front door")), "Front door (101)");
    assert_eq!(display("101", None), "101");
    assert_eq!(last_caller("c1", "101", None, 5)["display"], "101");

    let names = |e: &str| (e == "101").then(|| "Front door".to_string());
    let lc = last_call(&ended(EndReason::CallerHangup, true), &names, 7).unwrap();
    assert_eq!(lc["display"], "Front door (101) → 102, answered, 12 s");
    assert_eq!(lc["duration_s"], 12);
    let lc = last_call(&ended(EndReason::Busy, false), &names, 7).unwrap();
    assert_eq!(lc["display"], "Front door (101) → 102, busy");
    assert!(last_call(&PbxEvent::Missed { call_id: "c".into(), caller: "1".into(), callee: "2".into() }, &names, 0).is_none());

    let b = bridge_state(3, 2, 4, 1);
    assert_eq!((b["registered_devices"].as_u64(), b["active_calls"].as_u64()), (Some(3), Some(1)));
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_ring_groups_member_that_answered_gets_the_calls_keys_and_end() {
    // 101 called group 600; member 103 answered.
    let mut calls = CallStates::default();
    calls.apply(&PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "600".into(), answered_by: "103".into() });
    let keys = PbxEvent::Dtmf { call_id: "c1".into(), from: "103".into(), digit: '5' };
    let out = ext_events(&keys, calls.call("c1"));
    assert_eq!(
        kinds(&out),
        [("101".into(), "dtmf", "outbound".into()), ("600".into(), "dtmf", "inbound".into()), ("103".into(), "dtmf", "inbound".into())]
    );
    assert_eq!(out[2].body["from"], "103");
    let end = PbxEvent::Ended { call_id: "c1".into(), caller: "101".into(), callee: "600".into(), reason: EndReason::CallerHangup, answered: true, duration_ms: 1 };
    let got: Vec<_> = ext_events(&end, calls.call("c1")).into_iter().map(|e| e.extension).collect();
    assert_eq!(got, ["101", "600", "103"]);
}

#[test]
fn a_member_a_group_starts_ringing_gets_a_ringing_event_once_per_call() {
    let members = |ringing: &[&str]| PbxEvent::RingingMembers {
        call_id: "g".into(),
        caller: "101".into(),
        callee: "600".into(),
        ringing: ringing.iter().map(|s| s.to_string()).collect(),
    };
    // 102 rings first: its event says who calls which number.
    let out = ext_events(&members(&["102"]), None);
    assert_eq!(kinds(&out), [("102".into(), "ringing", "inbound".into())]);
    assert_eq!(out[0].body, json!({"event_type": "ringing", "call_id": "g", "caller": "101", "callee": "600", "direction": "inbound"}));
    // The hunt moves on (or a ring-all's list shrinks): only a member not
    // rung before by this call hears of it; the group's number is no member.
    let mut calls = CallStates::default();
    calls.apply(&members(&["102"]));
    calls.apply(&members(&["103"]));
    assert!(ext_events(&members(&["102", "103"]), calls.call("g")).is_empty());
    assert_eq!(kinds(&ext_events(&members(&["600", "103", "104"]), calls.call("g"))), [("104".into(), "ringing", "inbound".into())]);
}
