use super::*;
use crate::events::EndReason;
use crate::mqtt::outbox::Kind;
use serde_json::json;

fn ext(e: &str, name: Option<&str>) -> ExtensionInfo {
    ExtensionInfo { extension: e.into(), name: name.map(str::to_string), ..Default::default() }
}

fn model() -> Model {
    let mut m = Model::new(Topics::new("ha_pbx", "homeassistant"));
    m.set_extensions(vec![ext("101", Some("Front door")), ext("102", Some("Kitchen"))]);
    m
}

fn topics(msgs: &[Msg]) -> Vec<&str> {
    msgs.iter().map(|m| m.topic.as_str()).collect()
}

fn json_of(m: &Msg) -> Value {
    serde_json::from_str(&m.payload).unwrap()
}

#[test]
fn new_extensions_get_discovery_and_state() {
    let mut m = Model::new(Topics::new("ha_pbx", "homeassistant"));
    let out = m.set_extensions(vec![ext("101", Some("Front door"))]);
    assert_eq!(
        topics(&out),
        ["homeassistant/device/ha_pbx_ext_101/config", "ha_pbx/ext/101/state", "ha_pbx/devices", "ha_pbx/state"]
    );
    assert!(out.iter().all(|m| m.retain && m.kind == Kind::Snapshot));
    assert_eq!(json_of(&out[1])["state"], "idle");
    assert_eq!(json_of(&out[2]), json!(["ha_pbx_ext_101"]));
    // The same directory again changes nothing.
    assert!(m.set_extensions(vec![ext("101", Some("Front door"))]).is_empty());
    // A rename re-announces the device.
    let out = m.set_extensions(vec![ext("101", Some("Gate"))]);
    assert_eq!(json_of(&out[0])["dev"]["name"], "Gate");
}

#[test]
fn registration_changes_state_and_bridge_counts_once() {
    let mut m = model();
    let out = m.set_contacts("101", 2);
    assert_eq!(topics(&out), ["ha_pbx/ext/101/state", "ha_pbx/state"]);
    assert_eq!(json_of(&out[0])["registered"], true);
    assert_eq!(json_of(&out[1])["registered_devices"], 2);
    assert_eq!(json_of(&out[1])["registered_extensions"], 1);
    assert!(m.set_contacts("101", 2).is_empty());
    assert!(m.set_contacts("999", 1).is_empty(), "unknown extension");
}

#[test]
fn a_call_maps_to_states_then_events_in_order() {
    let mut m = model();
    let ring = PbxEvent::Ringing { call_id: "c1".into(), caller: "101".into(), callee: "102".into() };
    let out = m.on_event(&ring, 1000);
    assert_eq!(
        topics(&out),
        [
            "ha_pbx/events",
            "ha_pbx/ext/101/state",
            "ha_pbx/ext/102/state",
            "ha_pbx/ext/102/last_caller",
            "ha_pbx/state",
            "ha_pbx/ext/101/event",
            "ha_pbx/ext/101/trigger",
            "ha_pbx/ext/102/event",
            "ha_pbx/ext/102/trigger",
        ]
    );
    assert_eq!(json_of(&out[0])["type"], "ringing");
    assert_eq!(json_of(&out[1])["state"], "dialing");
    let s102 = json_of(&out[2]);
    assert_eq!((s102["state"].as_str(), s102["ringing"].as_bool(), s102["peer_name"].as_str()), (Some("ringing"), Some(true), Some("Front door")));
    assert_eq!(json_of(&out[3])["display"], "Front door (101)");
    assert_eq!(json_of(&out[4])["active_calls"], 1);
    let e = json_of(&out[7]);
    assert_eq!(e["event_type"], "ringing");
    assert_eq!((e["caller_name"].as_str(), e["callee_name"].as_str()), (Some("Front door"), Some("Kitchen")));
    assert_eq!(out[8].payload, "ringing");
    assert!(!out[5].retain && out[5].kind == Kind::Event);

    let ans = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() };
    let out = m.on_event(&ans, 1001);
    let states: Vec<_> = out.iter().filter(|m| m.topic.ends_with("/state") && m.topic.contains("/ext/")).map(|m| json_of(m)["state"].clone()).collect();
    assert_eq!(states, [json!("in_call"), json!("in_call")]);

    let dtmf = PbxEvent::Dtmf { call_id: "c1".into(), from: "102".into(), digit: '5' };
    let out = m.on_event(&dtmf, 1002);
    assert_eq!(topics(&out), ["ha_pbx/events", "ha_pbx/ext/101/event", "ha_pbx/ext/101/trigger", "ha_pbx/ext/102/event", "ha_pbx/ext/102/trigger"]);
    assert_eq!(json_of(&out[3])["digit"], "5");

    let end = PbxEvent::Ended {
        call_id: "c1".into(),
        caller: "101".into(),
        callee: "102".into(),
        reason: EndReason::CalleeHangup,
        answered: true,
        duration_ms: 3000,
    };
    let out = m.on_event(&end, 1005);
    assert!(topics(&out).contains(&"ha_pbx/last_call"));
    let lc = out.iter().find(|m| m.topic == "ha_pbx/last_call").unwrap();
    assert_eq!(json_of(lc)["display"], "Front door (101) → Kitchen (102), answered, 3 s");
    let idle = out.iter().filter(|m| m.topic.starts_with("ha_pbx/ext/") && m.topic.ends_with("/state")).count();
    assert_eq!(idle, 2);
    assert_eq!(json_of(out.iter().find(|m| m.topic == "ha_pbx/state").unwrap())["active_calls"], 0);
}

#[test]
fn last_caller_is_set_once_per_call_even_without_ringing() {
    let mut m = model();
    let ans = PbxEvent::Answered { call_id: "c9".into(), caller: "102".into(), callee: "101".into(), answered_by: "101".into() };
    let out = m.on_event(&ans, 5);
    let lc: Vec<_> = out.iter().filter(|x| x.topic == "ha_pbx/ext/101/last_caller").collect();
    assert_eq!(lc.len(), 1);
    assert_eq!(json_of(lc[0])["display"], "Kitchen (102)");
    let ring = PbxEvent::Ringing { call_id: "c1".into(), caller: "101".into(), callee: "102".into() };
    assert!(m.on_event(&ring, 6).iter().any(|x| x.topic == "ha_pbx/ext/102/last_caller"));
    let ans = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() };
    assert!(!m.on_event(&ans, 7).iter().any(|x| x.topic.ends_with("last_caller")), "same call: no repeat");
}

#[test]
fn events_for_unknown_extensions_are_skipped() {
    let mut m = model();
    let ring = PbxEvent::Ringing { call_id: "c".into(), caller: "101".into(), callee: "555".into() };
    let out = m.on_event(&ring, 0);
    assert!(!topics(&out).iter().any(|t| t.contains("/555/")));
}

#[test]
fn removed_extensions_are_cleared_and_stay_cleared_on_republish() {
    let mut m = model();
    let out = m.set_extensions(vec![ext("101", Some("Front door"))]);
    assert_eq!(
        topics(&out),
        [
            "homeassistant/device/ha_pbx_ext_102/config",
            "ha_pbx/ext/102/state",
            "ha_pbx/ext/102/last_caller",
            "ha_pbx/ext/102/settings",
            "ha_pbx/devices",
            "ha_pbx/state"
        ]
    );
    assert!(out[..4].iter().all(|m| m.payload.is_empty() && m.retain));
    let all = m.discovery_all();
    assert!(all.iter().any(|x| x.topic == "homeassistant/device/ha_pbx_ext_102/config" && x.payload.is_empty()));
    // Back again: announced, not removed.
    m.set_extensions(vec![ext("101", Some("Front door")), ext("102", None)]);
    let all = m.discovery_all();
    let d = all.iter().find(|x| x.topic == "homeassistant/device/ha_pbx_ext_102/config").unwrap();
    assert_eq!(json_of(d)["dev"]["name"], "Extension 102");
    assert_eq!(all.iter().filter(|x| x.topic == "homeassistant/device/ha_pbx_ext_102/config").count(), 1);
}

#[test]
fn stale_devices_of_an_earlier_run_are_removed_once() {
    let mut m = model();
    let old = vec!["ha_pbx_ext_101".to_string(), "ha_pbx_ext_103".to_string(), "someone_else".to_string()];
    let out = m.stale_devices(&old);
    assert_eq!(topics(&out)[0], "homeassistant/device/ha_pbx_ext_103/config");
    assert_eq!(out.len(), 4);
    assert!(m.stale_devices(&old).is_empty());
}

#[test]
fn snapshots_cover_everything_and_commands_find_extensions() {
    let mut m = model();
    m.on_event(&PbxEvent::Ringing { call_id: "c".into(), caller: "101".into(), callee: "102".into() }, 0);
    let states = m.states_all();
    let t = topics(&states);
    for want in ["ha_pbx/ext/101/state", "ha_pbx/ext/102/state", "ha_pbx/ext/102/last_caller", "ha_pbx/state"] {
        assert!(t.contains(&want), "{want} in {t:?}");
    }
    let disc = m.discovery_all();
    assert_eq!(topics(&disc)[0], "homeassistant/device/ha_pbx/config");
    assert_eq!(disc.len(), 4, "bridge, two extensions, device list");
    assert_eq!(m.ext_of_id("102").as_deref(), Some("102"));
    assert_eq!(m.ext_of_id("999"), None);

    let live = vec![
        LiveCall { call_id: "unknown".into(), caller: "103".into(), callee: "101".into(), answered: false, ..Default::default() },
        LiveCall { call_id: "c".into(), caller: "101".into(), callee: "102".into(), answered: false, ..Default::default() },
    ];
    let ordered = m.oldest_first(live);
    assert_eq!(ordered[0].call_id, "c");
}

#[test]
fn reconcile_clears_a_call_whose_end_was_lost() {
    let mut m = model();
    m.on_event(&PbxEvent::Answered { call_id: "c".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() }, 0);
    let out = m.reconcile(&[], false);
    let states: Vec<_> = out.iter().filter(|x| x.topic.contains("/ext/")).map(|x| json_of(x)["state"].clone()).collect();
    assert_eq!(states, [json!("idle"), json!("idle")]);
}

#[test]
fn a_doorbell_that_calls_fires_ring_and_its_device_has_the_open_door_button() {
    let mut m = Model::new(Topics::new("ha_pbx", "homeassistant"));
    let door = ExtensionInfo { extension: "101".into(), name: Some("Front door".into()), doorbell: true, door_open: Some("1#".into()) };
    let out = m.set_extensions(vec![door, ext("102", Some("Kitchen"))]);
    let config = json_of(&out[0]);
    assert_eq!(config["cmps"]["call"]["dev_cla"], "doorbell");
    assert_eq!(config["cmps"]["open_door"]["pl_prs"], "1#");
    assert!(json_of(&out[2])["cmps"].get("open_door").is_none(), "a phone has no open-door button");
    let out = m.on_event(&PbxEvent::Ringing { call_id: "c".into(), caller: "101".into(), callee: "600".into() }, 0);
    let door_events: Vec<String> = out.iter().filter(|x| x.topic == "ha_pbx/ext/101/event").map(|x| json_of(x)["event_type"].as_str().unwrap().to_string()).collect();
    assert_eq!(door_events, ["ringing", "ring"]);
    assert!(out.iter().any(|x| x.topic == "ha_pbx/ext/101/trigger" && x.payload == "ring"));
    // Called, the doorbell does not ring.
    let out = m.on_event(&PbxEvent::Ringing { call_id: "d".into(), caller: "102".into(), callee: "101".into() }, 0);
    assert!(!out.iter().any(|x| x.payload == "ring"));
}

#[test]
fn settings_are_published_when_changed_or_forced_and_kept_for_snapshots() {
    use crate::phone_settings::Settings;
    let mut m = model();
    let on = Settings { dnd: true, ..Default::default() };
    assert!(m.set_settings("555", Some(&on), true).is_none(), "not an extension");
    assert!(m.set_settings("102", None, true).is_none(), "no settings");
    let msg = m.set_settings("102", Some(&on), false).expect("first time");
    assert_eq!((msg.topic.as_str(), msg.retain), ("ha_pbx/ext/102/settings", true));
    assert_eq!(json_of(&msg)["dnd"], true);
    assert!(m.set_settings("102", Some(&on), false).is_none(), "unchanged");
    assert!(m.set_settings("102", Some(&on), true).is_some(), "forced: published unchanged");
    assert!(m.states_all().iter().any(|x| x.topic == "ha_pbx/ext/102/settings"));
    let d = m.discovery_all();
    let c = json_of(d.iter().find(|x| x.topic == "homeassistant/device/ha_pbx_ext_102/config").unwrap());
    assert_eq!(c["cmps"]["dnd"]["p"], "switch");
    assert_eq!(c["cmps"]["forward_busy"]["p"], "text");
}

#[test]
fn each_member_a_group_rings_gets_its_ringing_event_and_last_caller_once() {
    let mut m = model();
    m.set_extensions(vec![ext("101", Some("Front door")), ext("102", Some("Kitchen")), ext("103", None)]);
    let members = |ringing: &[&str]| PbxEvent::RingingMembers {
        call_id: "g".into(),
        caller: "101".into(),
        callee: "600".into(),
        ringing: ringing.iter().map(|s| s.to_string()).collect(),
    };
    let rung = |out: &[Msg], ext: &str| {
        let events: Vec<Value> = out.iter().filter(|x| x.topic == format!("ha_pbx/ext/{ext}/event")).map(json_of).collect();
        let last: Vec<Value> = out.iter().filter(|x| x.topic == format!("ha_pbx/ext/{ext}/last_caller")).map(json_of).collect();
        (events, last)
    };
    // A hunt group rings 102 first.
    let out = m.on_event(&members(&["102"]), 10);
    let (events, last) = rung(&out, "102");
    assert_eq!(events.len(), 1, "{out:?}");
    assert_eq!(
        (events[0]["event_type"].as_str(), events[0]["caller"].as_str(), events[0]["callee"].as_str(), events[0]["direction"].as_str()),
        (Some("ringing"), Some("101"), Some("600"), Some("inbound"))
    );
    assert_eq!(events[0]["caller_name"], "Front door");
    assert!(out.iter().any(|x| x.topic == "ha_pbx/ext/102/trigger" && x.payload == "ringing"));
    assert_eq!(last.len(), 1);
    assert_eq!((last[0]["display"].as_str(), last[0]["call_id"].as_str()), (Some("Front door (101)"), Some("g")));
    assert_eq!(rung(&out, "103"), (vec![], vec![]));
    // The group's own 180: no member hears of it again.
    let out = m.on_event(&PbxEvent::Ringing { call_id: "g".into(), caller: "101".into(), callee: "600".into() }, 11);
    assert_eq!(rung(&out, "102"), (vec![], vec![]));
    // The hunt moves on to 103, then back to 102: 103 once, 102 not again.
    let out = m.on_event(&members(&["103"]), 12);
    assert_eq!((rung(&out, "103").0.len(), rung(&out, "103").1.len()), (1, 1));
    assert_eq!(rung(&out, "102"), (vec![], vec![]));
    let out = m.on_event(&members(&["102", "103"]), 13);
    assert_eq!((rung(&out, "102"), rung(&out, "103")), ((vec![], vec![]), (vec![], vec![])));
    // A new call rings 102 again.
    let again = PbxEvent::RingingMembers { call_id: "h".into(), caller: "103".into(), callee: "600".into(), ringing: vec!["102".into()] };
    let out = m.on_event(&again, 14);
    assert_eq!((rung(&out, "102").0.len(), rung(&out, "102").1.len()), (1, 1));
}
