//! What Home Assistant should see, sans-IO: fed with the directory,
//! registrations and bus events, it answers with the MQTT messages to send.
//! It remembers what it last published so that unchanged states are not
//! sent again.
use super::discovery::DOORBELL_RING;
use super::call_state::CallStates;
use super::pbx::{ExtensionInfo, LiveCall, TrunkInfo};
use super::trunks::Trunks;
use super::discovery;
use super::outbox::Msg;
use super::payloads;
use super::settings;
use super::topics::{object_id, Topics};
use crate::events::PbxEvent;
use crate::phone_settings::Settings;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ext {
    id: String,
    name: Option<String>,
    doorbell: bool,
    door_open: Option<String>,
}

#[derive(Debug)]
pub struct Model {
    topics: Topics,
    exts: BTreeMap<String, Ext>,
    contacts: HashMap<String, usize>,
    calls: CallStates,
    published: HashMap<String, Value>,
    last_callers: HashMap<String, Value>,
    last_call: Option<Value>,
    bridge: Option<Value>,
    /// Extension ids whose device we removed: removal is repeated on every
    /// reconnect, so a broker that was away when it happened learns it too.
    removed: BTreeSet<String>,
    /// The AI agent runs: extension devices offer its entities.
    agent: bool,
    /// Last published DND and forwards per extension.
    settings: HashMap<String, Value>,
    /// The trunks' devices.
    trunks: Trunks,
}

impl Model {
    pub fn new(topics: Topics) -> Self {
        Model {
            topics,
            exts: BTreeMap::new(),
            contacts: HashMap::new(),
            calls: CallStates::default(),
            published: HashMap::new(),
            last_callers: HashMap::new(),
            last_call: None,
            bridge: None,
            removed: BTreeSet::new(),
            agent: false,
            settings: HashMap::new(),
            trunks: Trunks::default(),
        }
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    fn name(&self, ext: &str) -> Option<String> {
        self.exts.get(ext).and_then(|e| e.name.clone())
    }

    /// The extension behind a topic id.
    pub fn ext_of_id(&self, id: &str) -> Option<String> {
        self.exts.iter().find(|(_, e)| e.id == id).map(|(k, _)| k.clone())
    }

    pub fn extensions(&self) -> Vec<String> {
        self.exts.keys().cloned().collect()
    }

    /// The directory as it is now: discovery for new or renamed extensions,
    /// removal for the ones that are gone.
    pub fn set_extensions(&mut self, list: Vec<ExtensionInfo>) -> Vec<Msg> {
        let new: BTreeMap<String, Ext> =
            list.into_iter().map(|e| (e.extension.clone(), Ext { id: object_id(&e.extension), name: e.name, doorbell: e.doorbell, door_open: e.door_open })).collect();
        let mut out = vec![];
        let gone: Vec<(String, Ext)> =
            self.exts.iter().filter(|(k, _)| !new.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (ext, e) in &gone {
            tracing::info!(extension = %ext, "MQTT: extension removed from Home Assistant");
            out.extend(self.removal(&e.id));
            self.removed.insert(e.id.clone());
            self.contacts.remove(ext);
            self.published.remove(ext);
            self.last_callers.remove(ext);
            self.settings.remove(ext);
        }
        let changed: Vec<String> = new.iter().filter(|(k, v)| self.exts.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect();
        self.exts = new;
        for ext in &changed {
            let e = &self.exts[ext];
            self.removed.remove(&e.id);
            out.push(self.discovery_msg(ext));
            out.extend(self.ext_state_msg(ext, true));
        }
        if !gone.is_empty() || !changed.is_empty() {
            out.push(self.devices_msg());
            out.extend(self.bridge_msg(false));
        }
        out
    }

    /// The trunks as they are now (their devices, changed states).
    pub fn set_trunks(&mut self, list: &[TrunkInfo]) -> Vec<Msg> {
        let before = self.trunks.device_ids(&self.topics);
        let mut out = self.trunks.set(&self.topics, list);
        if self.trunks.device_ids(&self.topics) != before {
            out.push(self.devices_msg());
        }
        out
    }

    /// Whether the AI agent runs; when that changes, every extension device
    /// is announced again (with or without the agent's entities).
    pub fn set_agent(&mut self, agent: bool) -> Vec<Msg> {
        if self.agent == agent {
            return vec![];
        }
        self.agent = agent;
        self.exts.keys().map(|ext| self.discovery_msg(ext)).collect()
    }

    /// An extension's DND and forwards as they are now; `force` publishes
    /// them even unchanged (after a rejected command, so that Home
    /// Assistant shows what holds).
    pub fn set_settings(&mut self, ext: &str, s: Option<&Settings>, force: bool) -> Option<Msg> {
        let e = self.exts.get(ext)?;
        let v = settings::state(s?);
        if !force && self.settings.get(ext) == Some(&v) {
            return None;
        }
        let msg = Msg::state(self.topics.ext(&e.id, settings::STATE_LEAF), v.to_string());
        self.settings.insert(ext.to_string(), v);
        Some(msg)
    }

    /// Registered contacts of an extension changed (or may have).
    pub fn set_contacts(&mut self, ext: &str, n: usize) -> Vec<Msg> {
        if !self.exts.contains_key(ext) {
            return vec![];
        }
        self.contacts.insert(ext.to_string(), n);
        // Both dedupe against what was last published.
        let mut out: Vec<Msg> = self.ext_state_msg(ext, false).into_iter().collect();
        out.extend(self.bridge_msg(false));
        out
    }

    pub fn on_event(&mut self, event: &PbxEvent, now_unix: i64) -> Vec<Msg> {
        // The call as it was before the event (Ended forgets it).
        let call = match event {
            PbxEvent::Dtmf { call_id, .. } | PbxEvent::Ended { call_id, .. } | PbxEvent::RingingMembers { call_id, .. } => self.calls.call(call_id).cloned(),
            _ => None,
        };
        let changed = self.calls.apply(event);
        let mut out = vec![];
        if let Ok(raw) = serde_json::to_string(event) {
            out.push(Msg::event(self.topics.events(), raw));
        }
        for ext in &changed {
            out.extend(self.ext_state_msg(ext, false));
        }
        // Once per call and extension.
        for (call_id, caller, rung) in payloads::last_caller_of(event, call.as_ref()) {
            let Some(e) = self.exts.get(rung) else { continue };
            if self.last_callers.get(rung).and_then(|v| v["call_id"].as_str()) == Some(call_id) {
                continue;
            }
            let v = payloads::last_caller(call_id, caller, self.name(caller).as_deref(), now_unix);
            out.push(Msg::state(self.topics.ext(&e.id, "last_caller"), v.to_string()));
            self.last_callers.insert(rung.to_string(), v);
        }
        let names = |e: &str| self.name(e);
        if let Some(v) = payloads::last_call(event, &names, now_unix) {
            out.push(Msg::state(self.topics.last_call(), v.to_string()));
            self.last_call = Some(v);
        }
        out.extend(self.bridge_msg(false));
        for mut ev in payloads::ext_events(event, call.as_ref()) {
            let Some(e) = self.exts.get(&ev.extension) else { continue };
            if let Some(b) = ev.body.as_object_mut() {
                for key in ["caller", "callee"] {
                    let name = b.get(key).and_then(Value::as_str).and_then(|x| self.name(x));
                    b.insert(format!("{key}_name"), name.into());
                }
            }
            out.push(Msg::event(self.topics.ext(&e.id, "event"), ev.body.to_string()));
            out.push(Msg::event(self.topics.ext(&e.id, "trigger"), ev.event_type.to_string()));
            // A doorbell that calls rings: `ring`, the event type HA's
            // doorbell cards and automations know.
            if e.doorbell && ev.event_type == "ringing" && ev.body["caller"].as_str() == Some(ev.extension.as_str()) {
                let mut body = ev.body.clone();
                body["event_type"] = DOORBELL_RING.into();
                out.push(Msg::event(self.topics.ext(&e.id, "event"), body.to_string()));
                out.push(Msg::event(self.topics.ext(&e.id, "trigger"), DOORBELL_RING.to_string()));
            }
        }
        out
    }

    /// Align call states with the call registry (see [`CallStates::reconcile`]).
    pub fn reconcile(&mut self, live: &[LiveCall], add_missing: bool) -> Vec<Msg> {
        let changed = self.calls.reconcile(live, add_missing);
        let mut out: Vec<Msg> = changed.iter().filter_map(|e| self.ext_state_msg(e, false)).collect();
        out.extend(self.bridge_msg(false));
        out
    }

    /// Live calls ordered oldest first by when we first saw them.
    pub fn oldest_first(&self, mut calls: Vec<LiveCall>) -> Vec<LiveCall> {
        calls.sort_by_key(|c| self.calls.seq_of(&c.call_id).unwrap_or(u64::MAX));
        calls
    }

    /// Every discovery config (and removal) we stand for.
    pub fn discovery_all(&self) -> Vec<Msg> {
        let t = &self.topics;
        let mut out = vec![Msg::state(t.discovery(&t.bridge_device_id()), discovery::bridge_config(t).to_string())];
        out.extend(self.exts.keys().map(|ext| self.discovery_msg(ext)));
        for id in &self.removed {
            out.extend(self.removal(id));
        }
        out.extend(self.trunks.discovery_all(t));
        out.push(self.devices_msg());
        out
    }

    /// Every retained state, whether or not it changed.
    pub fn states_all(&mut self) -> Vec<Msg> {
        let exts = self.extensions();
        let mut out: Vec<Msg> = exts.iter().filter_map(|e| self.ext_state_msg(e, true)).collect();
        for (ext, v) in &self.last_callers {
            if let Some(e) = self.exts.get(ext) {
                out.push(Msg::state(self.topics.ext(&e.id, "last_caller"), v.to_string()));
            }
        }
        for (ext, v) in &self.settings {
            if let Some(e) = self.exts.get(ext) {
                out.push(Msg::state(self.topics.ext(&e.id, settings::STATE_LEAF), v.to_string()));
            }
        }
        if let Some(v) = &self.last_call {
            out.push(Msg::state(self.topics.last_call(), v.to_string()));
        }
        out.extend(self.trunks.states_all(&self.topics));
        out.extend(self.bridge_msg(true));
        out
    }

    /// The retained device list from the broker (of an earlier run): devices
    /// no longer in the directory are removed.
    pub fn stale_devices(&mut self, device_ids: &[String]) -> Vec<Msg> {
        let current: BTreeSet<&str> = self.exts.values().map(|e| e.id.as_str()).collect();
        let mut out = vec![];
        for dev in device_ids {
            out.extend(self.trunks.stale_device(&self.topics, dev));
            let Some(id) = self.topics.ext_id_of_device(dev) else { continue };
            if !current.contains(id) && self.removed.insert(id.to_string()) {
                tracing::info!(device = %dev, "MQTT: removing the device of an extension that no longer exists");
                out.extend(self.removal(id));
            }
        }
        out
    }

    fn discovery_msg(&self, ext: &str) -> Msg {
        let e = &self.exts[ext];
        let t = &self.topics;
        let config = discovery::ext_config_doorbell(discovery::ext_config(t, ext, &e.id, e.name.as_deref(), self.agent), t, &e.id, e.doorbell, e.door_open.as_deref());
        Msg::state(t.discovery(&t.ext_device_id(&e.id)), settings::with_components(config, t, &e.id).to_string())
    }

    /// Empty retained messages: Home Assistant drops the device, the broker
    /// forgets the states.
    fn removal(&self, id: &str) -> Vec<Msg> {
        let t = &self.topics;
        vec![
            Msg::clear(t.discovery(&t.ext_device_id(id))),
            Msg::clear(t.ext(id, "state")),
            Msg::clear(t.ext(id, "last_caller")),
            Msg::clear(t.ext(id, settings::STATE_LEAF)),
        ]
    }

    fn devices_msg(&self) -> Msg {
        let mut ids: Vec<String> = self.exts.values().map(|e| self.topics.ext_device_id(&e.id)).collect();
        ids.extend(self.trunks.device_ids(&self.topics));
        Msg::state(self.topics.devices(), serde_json::json!(ids).to_string())
    }

    fn ext_state_msg(&mut self, ext: &str, force: bool) -> Option<Msg> {
        let e = self.exts.get(ext)?;
        let view = self.calls.view(ext);
        let peer_name = view.peer.as_deref().and_then(|p| self.name(p));
        let v = payloads::ext_state(&view, self.contacts.get(ext).copied().unwrap_or(0), peer_name.as_deref());
        let msg = Msg::state(self.topics.ext(&e.id, "state"), v.to_string());
        if !force && self.published.get(ext) == Some(&v) {
            return None;
        }
        self.published.insert(ext.to_string(), v);
        Some(msg)
    }

    fn bridge_msg(&mut self, force: bool) -> Option<Msg> {
        let regs: Vec<usize> = self.exts.keys().map(|e| self.contacts.get(e).copied().unwrap_or(0)).collect();
        let v = payloads::bridge_state(regs.iter().sum(), regs.iter().filter(|n| **n > 0).count(), regs.len(), self.calls.active());
        if !force && self.bridge.as_ref() == Some(&v) {
            return None;
        }
        self.bridge = Some(v.clone());
        Some(Msg::state(self.topics.bridge_state(), v.to_string()))
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
