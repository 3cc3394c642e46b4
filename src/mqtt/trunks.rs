//! SIP trunks as Home Assistant devices, sans-IO: one device per configured
//! trunk with its registration (an IP trunk has none), whether the provider
//! answers the OPTIONS keep-alive (when it is on) and the last caller.
//! Fed with the trunks as they are now; answers with the MQTT messages, and
//! only for what changed since it last published.
use super::outbox::Msg;
use super::pbx::TrunkInfo;
use super::topics::{object_id, Topics};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The registration sensor's states (`enum` device class).
pub const REGISTRATION_STATES: [&str; 3] = ["registered", "registering", "failed"];

#[derive(Debug, Default)]
pub struct Trunks {
    /// Trunk name → (object id, last published discovery, last published state).
    known: BTreeMap<String, (String, Value, Value)>,
    /// Ids of trunk devices we removed (repeated on reconnect, as for extensions).
    removed: BTreeSet<String>,
}

impl Trunks {
    /// The trunks as they are now: discovery where a trunk's entities
    /// changed (or it is new), its state where that changed, removal for
    /// trunks no longer configured.
    pub fn set(&mut self, t: &Topics, list: &[TrunkInfo]) -> Vec<Msg> {
        let mut out = vec![];
        let names: BTreeSet<&str> = list.iter().map(|i| i.name.as_str()).collect();
        let gone: Vec<String> = self.known.keys().filter(|n| !names.contains(n.as_str())).cloned().collect();
        for name in gone {
            if let Some((id, _, _)) = self.known.remove(&name) {
                out.extend(removal(t, &id));
                self.removed.insert(id);
            }
        }
        for info in list {
            let id = object_id(&info.name);
            let config = config(t, &id, info);
            let state = state(info);
            let (known_config, known_state) = match self.known.get(&info.name) {
                Some((_, c, s)) => (Some(c), Some(s)),
                None => (None, None),
            };
            if known_config != Some(&config) {
                out.push(Msg::state(t.discovery(&t.trunk_device_id(&id)), config.to_string()));
            }
            if known_state != Some(&state) {
                out.push(Msg::state(t.trunk_state(&id), state.to_string()));
            }
            self.removed.remove(&id);
            self.known.insert(info.name.clone(), (id, config, state));
        }
        out
    }

    /// Every discovery config and removal (after a reconnect).
    pub fn discovery_all(&self, t: &Topics) -> Vec<Msg> {
        let mut out: Vec<Msg> = self.known.values().map(|(id, c, _)| Msg::state(t.discovery(&t.trunk_device_id(id)), c.to_string())).collect();
        for id in &self.removed {
            out.extend(removal(t, id));
        }
        out
    }

    /// Every state, changed or not.
    pub fn states_all(&self, t: &Topics) -> Vec<Msg> {
        self.known.values().map(|(id, _, s)| Msg::state(t.trunk_state(id), s.to_string())).collect()
    }

    /// The device ids we stand for (the retained device list).
    pub fn device_ids(&self, t: &Topics) -> Vec<String> {
        self.known.values().map(|(id, _, _)| t.trunk_device_id(id)).collect()
    }

    /// A device from the retained list (of an earlier run) that is a trunk
    /// no longer configured: removed.
    pub fn stale_device(&mut self, t: &Topics, device_id: &str) -> Vec<Msg> {
        let Some(id) = t.trunk_id_of_device(device_id) else { return vec![] };
        if self.known.values().any(|(k, _, _)| k == id) || !self.removed.insert(id.to_string()) {
            return vec![];
        }
        tracing::info!(device = %device_id, "MQTT: removing the device of a trunk that is no longer configured");
        removal(t, id)
    }
}

fn removal(t: &Topics, id: &str) -> Vec<Msg> {
    vec![Msg::clear(t.discovery(&t.trunk_device_id(id))), Msg::clear(t.trunk_state(id))]
}

/// The trunk's retained state (`reachable` as `/health` writes it:
/// `up`, `down`, `unknown`).
pub fn state(i: &TrunkInfo) -> Value {
    json!({
        "registration": i.registration,
        "last_error": i.last_error,
        "reachable": i.reachable,
        "last_caller": i.last_caller,
        "server": i.server,
    })
}

/// The trunk's device: entities only for what the trunk does.
pub fn config(t: &Topics, id: &str, i: &TrunkInfo) -> Value {
    let node = t.node();
    let uid = |what: &str| format!("{node}_trunk_{id}_{what}");
    let st = t.trunk_state(id);
    let mut cmps = Map::new();
    if i.registration.is_some() {
        cmps.insert("registration".into(), json!({
            "p": "sensor", "name": "Registration", "uniq_id": uid("registration"),
            "dev_cla": "enum", "ops": REGISTRATION_STATES,
            "stat_t": st, "val_tpl": "{{ value_json.registration }}",
            "json_attr_t": st, "json_attr_tpl": "{{ {'last_error': value_json.last_error, 'server': value_json.server} | tojson }}",
            "ic": "mdi:phone-classic",
        }));
    }
    if i.reachable.is_some() {
        cmps.insert("reachable".into(), json!({
            "p": "binary_sensor", "name": "Provider reachable", "uniq_id": uid("reachable"),
            "dev_cla": "connectivity", "ent_cat": "diagnostic",
            "stat_t": st,
            // `unknown` before the first answer: neither on nor off
            "val_tpl": "{{ {'up': 'ON', 'down': 'OFF'}.get(value_json.reachable, 'None') }}",
        }));
    }
    cmps.insert("last_caller".into(), json!({
        "p": "sensor", "name": "Last caller", "uniq_id": uid("last_caller"),
        "stat_t": st, "val_tpl": "{{ value_json.last_caller or '' }}",
        "ic": "mdi:phone-incoming",
    }));
    json!({
        "dev": {"ids": [t.trunk_device_id(id)], "name": format!("Trunk {}", i.name), "mf": "ha-pbx", "mdl": "SIP trunk", "via_device": t.bridge_device_id()},
        "o": super::discovery::origin(),
        "avty_t": t.status(),
        "qos": 1,
        "cmps": cmps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::new("ha-pbx", "homeassistant")
    }

    fn registering(name: &str) -> TrunkInfo {
        TrunkInfo { name: name.into(), registration: Some("registering".into()), reachable: Some(crate::trunk::Reach::Unknown), ..Default::default() }
    }

    fn topics_of(msgs: &[Msg]) -> Vec<String> {
        msgs.iter().map(|m| m.topic.clone()).collect()
    }

    #[test]
    fn a_trunk_is_announced_once_and_its_state_only_when_it_changes() {
        let t = topics();
        let mut m = Trunks::default();
        let first = m.set(&t, &[registering("provider")]);
        assert_eq!(topics_of(&first), ["homeassistant/device/ha-pbx_trunk_provider/config", "ha-pbx/trunk/provider/state"]);
        let config: Value = serde_json::from_str(&first[0].payload).unwrap();
        assert_eq!(config["cmps"]["registration"]["ops"], json!(REGISTRATION_STATES));
        assert_eq!(config["cmps"]["reachable"]["dev_cla"], "connectivity");
        assert!(m.set(&t, &[registering("provider")]).is_empty(), "nothing changed, nothing sent");

        let mut failed = registering("provider");
        failed.registration = Some("failed".into());
        failed.last_error = Some("403 Forbidden".into());
        let msgs = m.set(&t, &[failed]);
        assert_eq!(topics_of(&msgs), ["ha-pbx/trunk/provider/state"]);
        let state: Value = serde_json::from_str(&msgs[0].payload).unwrap();
        assert_eq!((state["registration"].as_str(), state["last_error"].as_str()), (Some("failed"), Some("403 Forbidden")));
    }

    #[test]
    fn an_ip_trunk_has_no_registration_and_no_reachability_without_keepalive() {
        let t = topics();
        let ip = TrunkInfo { name: "twilio".into(), ..Default::default() };
        let config = config(&t, "twilio", &ip);
        let cmps = config["cmps"].as_object().unwrap();
        assert_eq!(cmps.keys().collect::<Vec<_>>(), ["last_caller"]);
    }

    #[test]
    fn a_trunk_gone_from_the_configuration_is_removed_now_and_after_a_restart() {
        let t = topics();
        let mut m = Trunks::default();
        m.set(&t, &[registering("a"), registering("b")]);
        let msgs = m.set(&t, &[registering("a")]);
        assert_eq!(topics_of(&msgs), ["homeassistant/device/ha-pbx_trunk_b/config", "ha-pbx/trunk/b/state"]);
        assert!(msgs.iter().all(|m| m.payload.is_empty()), "removal is an empty retained message");
        assert_eq!(m.device_ids(&t), ["ha-pbx_trunk_a"]);

        // a later run learns of `old` from the retained device list
        let mut fresh = Trunks::default();
        fresh.set(&t, &[registering("a")]);
        assert!(fresh.stale_device(&t, "ha-pbx_trunk_a").is_empty(), "configured: kept");
        assert!(fresh.stale_device(&t, "ha-pbx_ext_101").is_empty(), "not a trunk's device");
        assert_eq!(topics_of(&fresh.stale_device(&t, "ha-pbx_trunk_old")).len(), 2);
        assert!(fresh.stale_device(&t, "ha-pbx_trunk_old").is_empty(), "removed once");
        assert_eq!(topics_of(&fresh.discovery_all(&t)).len(), 3, "a's config and old's removal again after a reconnect");
    }
}
