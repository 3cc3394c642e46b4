//! The bridge driven by hand: a fake PBX, and a real rumqttc client whose
//! event loop is never polled, so what the bridge gives it can be read back.
use super::*;
use crate::mqtt::pbx::{ExtensionInfo, LiveCall};
use crate::phone_settings::{self, Settings, Table};
use crate::sip::control::ControlError;
use async_trait::async_trait;
use rumqttc::{EventLoop, MqttOptions, Request};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

#[derive(Default)]
struct State {
    exts: Vec<ExtensionInfo>,
    contacts: HashMap<String, usize>,
    calls: Vec<LiveCall>,
    log: Vec<String>,
    agent: bool,
    settings: Table,
}

#[derive(Clone, Default)]
struct FakePbx(Arc<Mutex<State>>);

impl PbxView for FakePbx {
    fn extensions(&self) -> Vec<ExtensionInfo> {
        self.0.lock().unwrap().exts.clone()
    }
    fn contacts(&self, e: &str) -> usize {
        self.0.lock().unwrap().contacts.get(e).copied().unwrap_or(0)
    }
    fn live_calls(&self) -> Vec<LiveCall> {
        self.0.lock().unwrap().calls.clone()
    }
    fn has_agent(&self) -> bool {
        self.0.lock().unwrap().agent
    }
}

#[async_trait]
impl CallControl for FakePbx {
    fn calls_of(&self, e: &str) -> Vec<LiveCall> {
        self.live_calls().into_iter().filter(|c| c.caller == e || c.callee == e).collect()
    }
    async fn hang_up(&self, id: &str) -> Result<(), ControlError> {
        self.0.lock().unwrap().log.push(format!("hangup {id}"));
        Ok(())
    }
    async fn answer(&self, id: &str, ext: &str) -> Result<(), ControlError> {
        self.0.lock().unwrap().log.push(format!("answer {id} {ext}"));
        Ok(())
    }
    async fn dial(&self, from: &str, to: &str) -> Result<String, ControlError> {
        self.0.lock().unwrap().log.push(format!("dial {from} {to}"));
        Ok("new".into())
    }
    async fn send_dtmf(&self, id: &str, to: &str, d: &str) -> Result<(), ControlError> {
        self.0.lock().unwrap().log.push(format!("dtmf {id} {to} {d}"));
        Ok(())
    }
    async fn transfer(&self, id: &str, leaving: &str, to: &str) -> Result<(), ControlError> {
        self.0.lock().unwrap().log.push(format!("transfer {id} {leaving} {to}"));
        Ok(())
    }
    async fn answer_with_agent(&self, id: &str) -> Result<(), ControlError> {
        self.0.lock().unwrap().log.push(format!("answer_ai {id}"));
        Ok(())
    }
    async fn announce(&self, ext: &str, text: &str) -> Result<String, ControlError> {
        self.0.lock().unwrap().log.push(format!("announce {ext} {text}"));
        Ok("ann".into())
    }
}

#[async_trait]
impl SettingsControl for FakePbx {
    fn settings(&self, e: &str) -> Option<Settings> {
        let s = self.0.lock().unwrap();
        s.exts.iter().any(|x| x.extension == e).then(|| s.settings.effective(e, Settings::default()))
    }
    async fn change_setting(&self, e: &str, c: Change) -> Result<Settings, String> {
        phone_settings::check(e, &c, |n| ["101", "102"].contains(&n))?;
        self.0.lock().unwrap().settings.apply(e, c);
        Ok(self.settings(e).unwrap_or_default())
    }
}

fn setup() -> (Bridge<FakePbx>, EventLoop, FakePbx) {
    let pbx = FakePbx::default();
    {
        let mut s = pbx.0.lock().unwrap();
        s.exts = vec![
            ExtensionInfo { extension: "101".into(), name: Some("Front door".into()), ..Default::default() },
            ExtensionInfo { extension: "102".into(), name: None, ..Default::default() },
        ];
        s.contacts.insert("101".into(), 1);
    }
    let (client, el) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 1024);
    let mut b = Bridge::new(pbx.clone(), Topics::new("ha_pbx", "homeassistant"), client, "test".into());
    b.resync(true);
    (b, el, pbx)
}

/// Everything the bridge gives the client, acknowledging as it goes.
fn flush(b: &mut Bridge<FakePbx>, el: &mut EventLoop) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut pkid = 0u16;
    loop {
        b.pump();
        el.clean();
        let got: Vec<Request> = el.pending.drain(..).collect();
        if got.is_empty() {
            return out;
        }
        for r in got {
            match r {
                Request::Publish(p) => {
                    pkid = pkid % 60_000 + 1;
                    b.on_conn(ConnEvent::Written(pkid));
                    b.on_conn(ConnEvent::Acked(pkid));
                    out.push((p.topic, String::from_utf8_lossy(&p.payload).into_owned()));
                }
                Request::Subscribe(s) => out.push(("SUBSCRIBE".into(), s.filters[0].path.clone())),
                _ => {}
            }
        }
    }
}

fn ringing() -> PbxEvent {
    PbxEvent::Ringing { call_id: "c1".into(), caller: "101".into(), callee: "102".into() }
}

#[tokio::test]
async fn connect_subscribes_then_announces_online_discovery_and_states() {
    let (mut b, mut el, _) = setup();
    assert!(flush(&mut b, &mut el).is_empty(), "nothing before the connection");
    b.on_conn(ConnEvent::Connected);
    let sent = flush(&mut b, &mut el);
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(&topics[..4], ["SUBSCRIBE"; 4]);
    assert!(sent[..4].iter().any(|(_, f)| f == "ha_pbx/cmd/+"), "the PBX-wide commands: {:?}", &sent[..4]);
    assert_eq!(sent[4], ("ha_pbx/status".into(), "online".into()));
    assert_eq!(topics[5], "homeassistant/device/ha_pbx/config");
    assert!(topics.contains(&"homeassistant/device/ha_pbx_ext_101/config"));
    assert!(topics.contains(&"ha_pbx/ext/102/state"));
    let st = sent.iter().find(|(t, _)| t == "ha_pbx/ext/101/state").unwrap();
    assert!(st.1.contains("\"registered\":true"), "{}", st.1);
}

#[tokio::test]
async fn events_while_away_are_delivered_after_discovery_in_order() {
    let (mut b, mut el, _) = setup();
    b.on_conn(ConnEvent::Connected);
    flush(&mut b, &mut el);
    let (tx, rx) = oneshot::channel();
    b.on_conn(ConnEvent::Lost { reason: "gone".into(), resume: tx });
    rx.await.expect("the bridge lets the event loop reconnect");
    b.on_bus(&ringing());
    b.on_bus(&PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() });
    assert!(flush(&mut b, &mut el).is_empty(), "held while away");

    b.on_conn(ConnEvent::Connected);
    let sent = flush(&mut b, &mut el);
    let pos = |pred: &dyn Fn(&(String, String)) -> bool| sent.iter().position(pred).unwrap();
    let online = pos(&|(t, _)| t == "ha_pbx/status");
    let disc = pos(&|(t, _)| t.ends_with("/config"));
    let ring = pos(&|(t, p)| t == "ha_pbx/ext/102/trigger" && p == "ringing");
    let ans = pos(&|(t, p)| t == "ha_pbx/ext/102/trigger" && p == "answered");
    let state = sent.iter().rposition(|(t, _)| t == "ha_pbx/ext/102/state").unwrap();
    assert!(online < disc && disc < ring && ring < ans && ans < state, "{sent:#?}");
    assert!(sent[state].1.contains("in_call"));
}

#[tokio::test]
async fn home_assistant_birth_republishes_everything() {
    let (mut b, mut el, _) = setup();
    b.on_conn(ConnEvent::Connected);
    flush(&mut b, &mut el);
    b.on_conn(ConnEvent::Message { topic: "homeassistant/status".into(), payload: b"offline".to_vec() });
    assert!(flush(&mut b, &mut el).is_empty());
    b.on_conn(ConnEvent::Message { topic: "homeassistant/status".into(), payload: b"online".to_vec() });
    let sent = flush(&mut b, &mut el);
    let configs = sent.iter().filter(|(t, _)| t.ends_with("/config")).count();
    assert_eq!(configs, 3, "bridge and two extensions: {sent:#?}");
    assert!(sent.iter().any(|(t, _)| t == "ha_pbx/ext/101/state"));
}

#[tokio::test]
async fn commands_reach_the_pbx_and_bad_ones_change_nothing() {
    let (mut b, mut el, pbx) = setup();
    pbx.0.lock().unwrap().calls =
        vec![LiveCall { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered: true, ..Default::default() }];
    b.on_conn(ConnEvent::Connected);
    flush(&mut b, &mut el);
    let cmd = |b: &mut Bridge<FakePbx>, topic: &str, payload: &str| {
        b.on_conn(ConnEvent::Message { topic: topic.into(), payload: payload.as_bytes().to_vec() })
    };
    cmd(&mut b, "ha_pbx/ext/101/cmd/dtmf", "12x"); // bad digit
    cmd(&mut b, "ha_pbx/ext/999/cmd/hangup", "PRESS"); // no such extension
    cmd(&mut b, "ha_pbx/ext/101/cmd/answer", "PRESS"); // nothing ringing at 101
    cmd(&mut b, "ha_pbx/ext/101/cmd/bogus", "x");
    cmd(&mut b, "ha_pbx/ext/101/cmd/dtmf", "1#");
    cmd(&mut b, "ha_pbx/ext/102/cmd/transfer", "104");
    cmd(&mut b, "ha_pbx/ext/101/cmd/dial", "102");
    cmd(&mut b, "ha_pbx/ext/102/cmd/hangup", "PRESS");
    cmd(&mut b, "ha_pbx/cmd/dial", r#"{"from": "101"}"#); // no `to`
    cmd(&mut b, "ha_pbx/cmd/announce", "Alarm"); // not JSON
    cmd(&mut b, "ha_pbx/cmd/bogus", "{}");
    cmd(&mut b, "ha_pbx/cmd/dial", r#"{"from": "102", "to": "0301234567"}"#);
    for _ in 0..50 {
        if pbx.0.lock().unwrap().log.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut log = pbx.0.lock().unwrap().log.clone();
    log.sort();
    assert_eq!(log, ["dial 101 102", "dial 102 0301234567", "dtmf c1 101 1#", "hangup c1", "transfer c1 102 104"]);
    assert!(flush(&mut b, &mut el).is_empty(), "commands publish nothing themselves");
}

#[tokio::test]
async fn directory_changes_add_and_remove_devices() {
    let (mut b, mut el, pbx) = setup();
    b.on_conn(ConnEvent::Connected);
    flush(&mut b, &mut el);
    pbx.0.lock().unwrap().exts.retain(|e| e.extension == "101");
    pbx.0.lock().unwrap().exts.push(ExtensionInfo { extension: "103".into(), name: Some("Garage".into()), ..Default::default() });
    b.resync(false);
    let sent = flush(&mut b, &mut el);
    assert!(sent.contains(&("homeassistant/device/ha_pbx_ext_102/config".into(), String::new())));
    assert!(sent.iter().any(|(t, p)| t == "homeassistant/device/ha_pbx_ext_103/config" && p.contains("Garage")));
    // The directory's change on the bus (the panel added 104): at once, no timer.
    pbx.0.lock().unwrap().exts.push(ExtensionInfo { extension: "104".into(), name: Some("Study".into()), ..Default::default() });
    b.on_bus(&PbxEvent::DirectoryChanged { extension: "104".into() });
    let sent = flush(&mut b, &mut el);
    assert!(sent.iter().any(|(t, p)| t == "homeassistant/device/ha_pbx_ext_104/config" && p.contains("Study")), "{sent:?}");
    // A device list from an earlier run naming 105 removes it too.
    b.on_conn(ConnEvent::Message { topic: "ha_pbx/devices".into(), payload: br#"["ha_pbx_ext_101","ha_pbx_ext_105"]"#.to_vec() });
    let sent = flush(&mut b, &mut el);
    assert!(sent.contains(&("homeassistant/device/ha_pbx_ext_105/config".into(), String::new())));
    assert!(!sent.iter().any(|(t, _)| t.contains("ext_101/config")));
}

#[tokio::test]
async fn agent_commands_reach_the_pbx_and_its_entities_follow_the_agent() {
    let (mut b, mut el, pbx) = setup();
    pbx.0.lock().unwrap().calls =
        vec![LiveCall { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered: false, ..Default::default() }];
    b.on_conn(ConnEvent::Connected);
    let sent = flush(&mut b, &mut el);
    let config = |sent: &[(String, String)]| {
        sent.iter().find(|(t, _)| t == "homeassistant/device/ha_pbx_ext_101/config").map(|(_, p)| p.clone())
    };
    assert!(!config(&sent).unwrap().contains("answer_ai"), "no agent, no agent entities");
    // The agent comes up: every extension device is announced again, with them.
    pbx.0.lock().unwrap().agent = true;
    b.resync(false);
    let sent = flush(&mut b, &mut el);
    let c = config(&sent).expect("re-announced");
    assert!(c.contains("cmd/answer_ai") && c.contains("cmd/announce") && c.contains("\"notify\""), "{c}");
    b.resync(false);
    assert!(config(&flush(&mut b, &mut el)).is_none(), "announced once, not on every resync");

    let cmd = |b: &mut Bridge<FakePbx>, topic: &str, payload: &str| {
        b.on_conn(ConnEvent::Message { topic: topic.into(), payload: payload.as_bytes().to_vec() })
    };
    cmd(&mut b, "ha_pbx/ext/101/cmd/answer_ai", "PRESS"); // 101 is the caller: nothing rings there
    cmd(&mut b, "ha_pbx/ext/101/cmd/announce", "  "); // empty
    cmd(&mut b, "ha_pbx/ext/101/cmd/announce", &"x".repeat(2001)); // too long
    cmd(&mut b, "ha_pbx/ext/102/cmd/answer_ai", "PRESS");
    cmd(&mut b, "ha_pbx/ext/101/cmd/announce", "Someone is at the front door");
    for _ in 0..50 {
        if pbx.0.lock().unwrap().log.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut log = pbx.0.lock().unwrap().log.clone();
    log.sort();
    assert_eq!(log, ["announce 101 Someone is at the front door", "answer_ai c1"]);
}

#[tokio::test]
async fn settings_commands_apply_and_every_one_republishes_the_settings() {
    let (mut b, mut el, _pbx) = setup();
    let mut done = b.settings_rx.take().unwrap();
    b.on_conn(ConnEvent::Connected);
    let sent = flush(&mut b, &mut el);
    let settings = |sent: &[(String, String)]| -> Vec<serde_json::Value> {
        sent.iter().filter(|(t, _)| t == "ha_pbx/ext/102/settings").map(|(_, p)| serde_json::from_str(p).unwrap()).collect()
    };
    assert_eq!(settings(&sent).len(), 1, "retained at connect: {sent:#?}");
    assert_eq!(settings(&sent)[0]["dnd"], false);
    let cmd = |b: &mut Bridge<FakePbx>, topic: &str, payload: &str| {
        b.on_conn(ConnEvent::Message { topic: topic.into(), payload: payload.as_bytes().to_vec() })
    };
    cmd(&mut b, "ha_pbx/ext/102/cmd/dnd", "ON");
    b.settings_changed(&done.recv().await.unwrap());
    let got = settings(&flush(&mut b, &mut el));
    assert_eq!((got.len(), &got[0]["dnd"]), (1, &serde_json::json!(true)));
    cmd(&mut b, "ha_pbx/ext/102/cmd/forward_busy", "101");
    b.settings_changed(&done.recv().await.unwrap());
    assert_eq!(settings(&flush(&mut b, &mut el))[0]["forward_busy"], "101");
    // Refused by the PBX (no such number) or here (not ON/OFF): the same state again.
    cmd(&mut b, "ha_pbx/ext/102/cmd/forward_busy", "999");
    b.settings_changed(&done.recv().await.unwrap());
    let got = settings(&flush(&mut b, &mut el));
    assert_eq!((got.len(), &got[0]["forward_busy"], &got[0]["dnd"]), (1, &serde_json::json!("101"), &serde_json::json!(true)));
    cmd(&mut b, "ha_pbx/ext/102/cmd/dnd", "maybe");
    let got = settings(&flush(&mut b, &mut el));
    assert_eq!((got.len(), &got[0]["dnd"]), (1, &serde_json::json!(true)), "republished at once, unchanged");
    // A resync with nothing changed publishes nothing.
    b.resync(false);
    assert!(settings(&flush(&mut b, &mut el)).is_empty());
}
