//! Home Assistant device discovery (the 2025.4 "device" form: one retained
//! config per device with `dev`, `o` and its components in `cmps`).
//! Abbreviated keys where Home Assistant documents them; `device_automation`
//! components use full keys, which every version accepts.
use super::call_state::CallState;
use super::payloads::EVENT_TYPES;
use super::topics::Topics;
use serde_json::{json, Map, Value};

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) fn origin() -> Value {
    json!({"name": "ha-pbx", "sw": VERSION})
}

/// The ha-pbx device: counts, version, last call.
pub fn bridge_config(t: &Topics) -> Value {
    let node = t.node();
    let state = t.bridge_state();
    json!({
        "dev": {"ids": [t.bridge_device_id()], "name": "ha-pbx", "mf": "ha-pbx", "mdl": "SIP PBX", "sw": VERSION},
        "o": origin(),
        "avty_t": t.status(),
        "qos": 1,
        "cmps": {
            "registered_devices": {
                "p": "sensor", "name": "Registered devices", "uniq_id": format!("{node}_registered_devices"),
                "stat_t": state, "val_tpl": "{{ value_json.registered_devices }}",
                "stat_cla": "measurement", "ic": "mdi:phone-check",
            },
            "active_calls": {
                "p": "sensor", "name": "Active calls", "uniq_id": format!("{node}_active_calls"),
                "stat_t": state, "val_tpl": "{{ value_json.active_calls }}",
                "stat_cla": "measurement", "ic": "mdi:phone-in-talk",
            },
            "version": {
                "p": "sensor", "name": "Version", "uniq_id": format!("{node}_version"),
                "stat_t": state, "val_tpl": "{{ value_json.version }}",
                "ent_cat": "diagnostic", "ic": "mdi:tag",
            },
            "last_call": {
                "p": "sensor", "name": "Last call", "uniq_id": format!("{node}_last_call"),
                "stat_t": t.last_call(), "val_tpl": "{{ value_json.display }}",
                "json_attr_t": t.last_call(), "ic": "mdi:phone-log",
            },
        },
    })
}

/// One device per extension. `id` is the extension's [`super::topics::object_id`].
/// `agent`: the AI agent runs, so "Answer with AI" and "Announce" are offered
/// (without it they could only fail).
pub fn ext_config(t: &Topics, ext: &str, id: &str, name: Option<&str>, agent: bool) -> Value {
    let node = t.node();
    let uid = |what: &str| format!("{node}_{id}_{what}");
    let state = t.ext(id, "state");
    let device_name = match name {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("Extension {ext}"),
    };
    let mut cmps = Map::new();
    let mut add = |key: String, v: Value| {
        cmps.insert(key, v);
    };
    add("call_state".into(), json!({
        "p": "sensor", "name": "Call state", "uniq_id": uid("call_state"),
        "dev_cla": "enum", "ops": CallState::ALL,
        "stat_t": state, "val_tpl": "{{ value_json.state }}",
        "json_attr_t": state,
        "json_attr_tpl": "{{ {'call_id': value_json.call_id, 'peer': value_json.peer, 'peer_name': value_json.peer_name, 'direction': value_json.direction, 'calls': value_json.calls} | tojson }}",
        "ic": "mdi:phone",
    }));
    add("registered".into(), json!({
        "p": "binary_sensor", "name": "Registered", "uniq_id": uid("registered"),
        "dev_cla": "connectivity",
        "stat_t": state, "val_tpl": "{{ 'ON' if value_json.registered else 'OFF' }}",
        "json_attr_t": state, "json_attr_tpl": "{{ {'contacts': value_json.contacts} | tojson }}",
    }));
    add("ringing".into(), json!({
        "p": "binary_sensor", "name": "Ringing", "uniq_id": uid("ringing"),
        "stat_t": state, "val_tpl": "{{ 'ON' if value_json.ringing else 'OFF' }}",
        "ic": "mdi:phone-ring",
    }));
    add("last_caller".into(), json!({
        "p": "sensor", "name": "Last caller", "uniq_id": uid("last_caller"),
        "stat_t": t.ext(id, "last_caller"), "val_tpl": "{{ value_json.display }}",
        "json_attr_t": t.ext(id, "last_caller"), "ic": "mdi:card-account-phone",
    }));
    add("call".into(), json!({
        "p": "event", "name": "Call", "uniq_id": uid("call"),
        "evt_typ": EVENT_TYPES, "stat_t": t.ext(id, "event"), "ic": "mdi:phone-message",
    }));
    add("hang_up".into(), json!({
        "p": "button", "name": "Hang up", "uniq_id": uid("hang_up"),
        "cmd_t": t.ext(id, "cmd/hangup"), "ic": "mdi:phone-hangup",
    }));
    add("answer".into(), json!({
        "p": "button", "name": "Answer", "uniq_id": uid("answer"),
        "cmd_t": t.ext(id, "cmd/answer"), "ic": "mdi:phone",
    }));
    add("dial".into(), json!({
        "p": "text", "name": "Dial", "uniq_id": uid("dial"),
        "cmd_t": t.ext(id, "cmd/dial"), "min": 0, "max": 32, "pattern": "^[0-9A-Za-z*#+._-]*$",
        "ic": "mdi:dialpad",
    }));
    if agent {
        add("answer_ai".into(), json!({
            "p": "button", "name": "Answer with AI", "uniq_id": uid("answer_ai"),
            "cmd_t": t.ext(id, "cmd/answer_ai"), "ic": "mdi:robot",
        }));
        add("announce".into(), json!({
            "p": "notify", "name": "Announce", "uniq_id": uid("announce"),
            "cmd_t": t.ext(id, "cmd/announce"), "ic": "mdi:bullhorn",
        }));
    }
    for event_type in EVENT_TYPES {
        add(format!("trigger_{event_type}"), json!({
            "p": "device_automation", "automation_type": "trigger",
            "type": "call", "subtype": event_type,
            "topic": t.ext(id, "trigger"), "payload": event_type,
        }));
    }
    json!({
        "dev": {
            "ids": [t.ext_device_id(id)], "name": device_name, "mf": "ha-pbx",
            "mdl": "SIP extension", "sn": ext, "via_device": t.bridge_device_id(),
        },
        "o": origin(),
        "avty_t": t.status(),
        "qos": 1,
        "cmps": cmps,
    })
}

/// The event type a doorbell fires when it calls (Home Assistant's standard).
pub const DOORBELL_RING: &str = "ring";

/// An extension device made a doorbell (`kind: doorbell`): its event
/// entity gets `device_class: doorbell` and the `ring` type (beside the
/// others), and `door_open` digits add an "Open door" button that presses
/// them through the extension's DTMF command (into its live call).
pub fn ext_config_doorbell(mut config: Value, t: &Topics, id: &str, doorbell: bool, door_open: Option<&str>) -> Value {
    let Some(cmps) = config.get_mut("cmps").and_then(Value::as_object_mut) else { return config };
    if doorbell {
        if let Some(call) = cmps.get_mut("call").and_then(Value::as_object_mut) {
            call.insert("dev_cla".into(), "doorbell".into());
            let mut types: Vec<&str> = vec![DOORBELL_RING];
            types.extend(EVENT_TYPES);
            call.insert("evt_typ".into(), json!(types));
        }
        cmps.insert(format!("trigger_{DOORBELL_RING}"), json!({
            "p": "device_automation", "automation_type": "trigger",
            "type": "call", "subtype": DOORBELL_RING,
            "topic": t.ext(id, "trigger"), "payload": DOORBELL_RING,
        }));
    }
    if let Some(digits) = door_open {
        cmps.insert("open_door".into(), json!({
            "p": "button", "name": "Open door", "uniq_id": format!("{}_{id}_open_door", t.node()),
            "cmd_t": t.ext(id, "cmd/dtmf"), "pl_prs": digits, "ic": "mdi:door-open",
        }));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_device_has_every_entity_and_trigger() {
        let t = Topics::new("ha_pbx", "homeassistant");
        let c = ext_config(&t, "101", "101", Some("Front door"), false);
        assert_eq!(c["dev"]["ids"][0], "ha_pbx_ext_101");
        assert_eq!(c["dev"]["name"], "Front door");
        assert_eq!(c["dev"]["via_device"], "ha_pbx");
        assert_eq!(c["o"]["name"], "ha-pbx");
        assert_eq!(c["avty_t"], "ha_pbx/status");
        let cmps = c["cmps"].as_object().unwrap();
        let platform = |k: &str| cmps[k]["p"].as_str().unwrap().to_string();
        assert_eq!(platform("call_state"), "sensor");
        assert_eq!(cmps["call_state"]["ops"], json!(["idle", "ringing", "dialing", "in_call", "on_hold"]));
        assert_eq!(platform("registered"), "binary_sensor");
        assert_eq!(platform("ringing"), "binary_sensor");
        assert_eq!(platform("last_caller"), "sensor");
        assert_eq!(platform("call"), "event");
        assert_eq!(cmps["call"]["evt_typ"], json!(EVENT_TYPES));
        assert_eq!(cmps["call"]["stat_t"], "ha_pbx/ext/101/event");
        assert_eq!((platform("hang_up"), cmps["hang_up"]["cmd_t"].as_str()), ("button".into(), Some("ha_pbx/ext/101/cmd/hangup")));
        assert_eq!(platform("answer"), "button");
        assert_eq!((platform("dial"), cmps["dial"]["cmd_t"].as_str()), ("text".into(), Some("ha_pbx/ext/101/cmd/dial")));
        for ty in EVENT_TYPES {
            let trg = &cmps[&format!("trigger_{ty}")];
            assert_eq!(trg["p"], "device_automation");
            assert_eq!(trg["payload"], ty);
            assert_eq!(trg["topic"], "ha_pbx/ext/101/trigger");
        }
        assert!(!cmps.contains_key("answer_ai") && !cmps.contains_key("announce"), "no agent, no agent entities");
        // Unique ids are unique.
        let mut uids: Vec<_> = cmps.values().filter_map(|v| v["uniq_id"].as_str()).collect();
        let n = uids.len();
        uids.sort();
        uids.dedup();
        assert_eq!(uids.len(), n);
    }

    #[test]
    fn a_doorbell_rings_and_opens_the_door_by_dtmf() {
        let t = Topics::new("ha_pbx", "homeassistant");
        let plain = ext_config(&t, "101", "101", Some("Front door"), false);
        assert_eq!(ext_config_doorbell(plain.clone(), &t, "101", false, None), plain);
        let c = ext_config_doorbell(plain.clone(), &t, "101", true, Some("1#"));
        let cmps = c["cmps"].as_object().unwrap();
        assert_eq!(cmps["call"]["dev_cla"], "doorbell");
        assert_eq!(cmps["call"]["evt_typ"][0], "ring");
        assert_eq!(cmps["call"]["evt_typ"].as_array().unwrap().len(), EVENT_TYPES.len() + 1);
        assert_eq!(cmps["trigger_ring"]["payload"], "ring");
        assert_eq!(cmps["open_door"]["p"], "button");
        assert_eq!(cmps["open_door"]["cmd_t"], "ha_pbx/ext/101/cmd/dtmf");
        assert_eq!(cmps["open_door"]["pl_prs"], "1#");
        assert_eq!(cmps["open_door"]["uniq_id"], "ha_pbx_101_open_door");
    }

    #[test]
    fn agent_entities_only_when_the_agent_runs() {
        let t = Topics::new("ha_pbx", "homeassistant");
        let without = ext_config(&t, "101", "101", None, false);
        let with = ext_config(&t, "101", "101", None, true);
        let cmps = with["cmps"].as_object().unwrap();
        assert_eq!(cmps["answer_ai"]["p"], "button");
        assert_eq!(cmps["answer_ai"]["name"], "Answer with AI");
        assert_eq!(cmps["answer_ai"]["cmd_t"], "ha_pbx/ext/101/cmd/answer_ai");
        assert_eq!(cmps["announce"]["p"], "notify");
        assert_eq!(cmps["announce"]["name"], "Announce");
        assert_eq!(cmps["announce"]["cmd_t"], "ha_pbx/ext/101/cmd/announce");
        // Everything else is the same.
        let mut rest = cmps.clone();
        rest.remove("answer_ai");
        rest.remove("announce");
        assert_eq!(Value::Object(rest), without["cmps"]);
        let mut uids: Vec<_> = cmps.values().filter_map(|v| v["uniq_id"].as_str()).collect();
        let n = uids.len();
        uids.sort();
        uids.dedup();
        assert_eq!(uids.len(), n);
    }

    #[test]
    fn unnamed_extension_gets_a_name_and_bridge_has_its_sensors() {
        let t = Topics::new("ha_pbx", "homeassistant");
        assert_eq!(ext_config(&t, "104", "104", None, false)["dev"]["name"], "Extension 104");
        let b = bridge_config(&t);
        assert_eq!(b["dev"]["ids"][0], "ha_pbx");
        for k in ["registered_devices", "active_calls", "version", "last_call"] {
            assert_eq!(b["cmps"][k]["p"], "sensor", "{k}");
        }
        assert_eq!(b["cmps"]["active_calls"]["stat_t"], "ha_pbx/state");
    }
}
