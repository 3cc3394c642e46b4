use super::*;
use crate::config::{BrainConfig, HandoffRule, MqttConfig, SttConfig, TtsConfig, Transport};
use std::path::PathBuf;

/// The options.json the Supervisor writes for config.yaml's defaults.
const DEFAULTS: &str = r#"{
  "extensions": [],
  "ha_user_extensions": true,
  "ha_user_extension_start": 100,
  "sip_udp_port": 5060,
  "sip_tcp_port": 5060,
  "sip_tls_port": 5061,
  "rtp_port_min": 20000,
  "rtp_port_max": 20999,
  "log_level": "info"
}"#;

fn with(extra: &str) -> String {
    let mut base: Value = serde_json::from_str(DEFAULTS).unwrap();
    let over: Value = serde_json::from_str(extra).unwrap();
    for (k, v) in over.as_object().unwrap() {
        base[k] = v.clone();
    }
    base.to_string()
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

fn env(data: &Path) -> Environment<'_> {
    Environment {
        data_dir: data,
        bind: "0.0.0.0".parse().unwrap(),
        advertise: "192.168.1.10".parse().unwrap(),
        http_port: 8099,
        mqtt: None,
    }
}

#[test]
fn defaults_parse() {
    let (o, unknown) = parse(DEFAULTS).unwrap();
    assert!(unknown.is_empty());
    assert_eq!(o.sip_udp_port, Some(5060));
    assert_eq!(o.sip_tls_port, Some(5061));
    assert_eq!((o.rtp_port_min, o.rtp_port_max), (20000, 20999));
    assert!(o.ha_user_extensions);
    assert_eq!(o.ha_user_extension_start, 100);
    assert_eq!(o.log_level, "info");
    assert_eq!(o.mqtt, None);
    assert_eq!(o.external_address, None);
}

#[test]
fn empty_object_takes_defaults_but_needs_a_port() {
    assert!(err("{}").contains("sip_udp_port, sip_tcp_port, sip_tls_port"));
    let (o, _) = parse(r#"{"sip_udp_port": 5070}"#).unwrap();
    assert_eq!(o.sip_udp_port, Some(5070));
    assert_eq!(o.sip_tcp_port, None);
}

#[test]
fn extensions_parse_and_name_is_optional() {
    let (o, _) = parse(&with(
        r#"{"extensions": [{"extension": "101", "password": "secret101", "name": "Front door"},
                           {"extension": 102, "password": "secret102"}]}"#,
    ))
    .unwrap();
    assert_eq!(o.extensions.len(), 2);
    assert_eq!(o.extensions[0].name.as_deref(), Some("Front door"));
    assert_eq!(o.extensions[1].extension, "102");
    assert_eq!(o.extensions[1].name, None);
    assert_eq!(o.extensions[1].dtmf, crate::config::DtmfMode::Rfc4733, "default");
}

#[test]
fn extension_dtmf_mode_reaches_the_config() {
    let (o, _) = parse(&with(
        r#"{"extensions": [{"extension": "101", "password": "secret101", "dtmf": "info"},
                           {"extension": "102", "password": "secret102", "dtmf": "rfc4733"}]}"#,
    ))
    .unwrap();
    let data = PathBuf::from("/data");
    let c = to_config(&o, &env(&data)).unwrap();
    let modes: Vec<_> = c.extensions.iter().map(|e| e.dtmf).collect();
    assert_eq!(modes, [crate::config::DtmfMode::Info, crate::config::DtmfMode::Rfc4733]);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#"{"extensions": [{"extension": "101"}]}"#, "extensions[0].password: missing"),
        (r#"{"extensions": [{"password": "secret1"}]}"#, "extensions[0].extension: missing"),
        (r#"{"extensions": [{"extension": "1 0", "password": "secret1"}]}"#, "extensions[0].extension: `1 0`"),
        (r#"{"extensions": [{"extension": "101", "password": "abc"}]}"#, "extensions[0].password: use at least 6"),
        (
            r#"{"extensions": [{"extension": "101", "password": "secret1"}, {"extension": "101", "password": "secret2"}]}"#,
            "extensions[1].extension: `101` is already extensions[0]",
        ),
        (r#"{"extensions": [{"extension": "101", "password": "secret1", "pin": 1}]}"#, "extensions[0].pin: unknown field"),
        (r#"{"extensions": {"a": 1}}"#, "extensions: expected a list"),
        (r#"{"extensions": [{"extension": "101", "password": "secret1", "dtmf": "inband"}]}"#, "extensions[0].dtmf: `inband` must be rfc4733 or info"),
        (r#"{"extensions": [{"extension": "101", "password": "secret1", "dtmf": 1}]}"#, "extensions[0].dtmf: expected rfc4733 or info"),
        (r#"{"sip_udp_port": 70000}"#, "sip_udp_port: 70000 is not a port number"),
        (r#"{"sip_tcp_port": "abc"}"#, "sip_tcp_port: `abc` is not a whole number"),
        (r#"{"sip_tls_port": 5060}"#, "sip_tls_port: 5060 is also sip_tcp_port"),
        (r#"{"rtp_port_min": 30000, "rtp_port_max": 20000}"#, "rtp_port_min: 30000 must be at least 1024"),
        (r#"{"rtp_port_min": 20000, "rtp_port_max": 20001}"#, "rtp_port_max: the range 20000-20001"),
        (r#"{"sip_udp_port": 20010}"#, "sip_udp_port: 20010 lies inside the RTP range"),
        (r#"{"external_address": "my.house"}"#, "external_address: `my.house` is not an IP address"),
        (r#"{"external_address": "0.0.0.0"}"#, "external_address: `0.0.0.0` is not an address"),
        (r#"{"log_level": "loud"}"#, "log_level: `loud`"),
        (r#"{"ha_user_extensions": "yes"}"#, "ha_user_extensions: expected true or false"),
        (r#"{"ha_user_extension_start": 0}"#, "ha_user_extension_start: 0"),
        (r#"{"mqtt_port": 1883}"#, "mqtt_port: set, but mqtt_host is empty"),
    ];
    for (over, want) in cases {
        let e = err(&with(over));
        assert!(e.contains(want), "{over}: got `{e}`, wanted `{want}`");
    }
    assert!(err("[1]").contains("expected an object"));
    assert!(err("{").contains("not valid JSON"));
}

#[test]
fn unknown_keys_are_reported_not_fatal() {
    let (_, unknown) = parse(&with(r#"{"old_option": 1}"#)).unwrap();
    assert_eq!(unknown, vec!["old_option".to_string()]);
}

#[test]
fn ha_log_levels_map_to_ours() {
    for (ha, ours) in [("notice", "info"), ("warning", "warn"), ("fatal", "error"), ("TRACE", "trace")] {
        let (o, _) = parse(&with(&format!(r#"{{"log_level": "{ha}"}}"#))).unwrap();
        assert_eq!(o.log_level, ours);
    }
}

#[test]
fn empty_strings_are_unset() {
    let (o, _) = parse(&with(r#"{"external_address": "", "mqtt_host": " ", "sip_tls_port": null}"#)).unwrap();
    assert_eq!(o.external_address, None);
    assert_eq!(o.mqtt, None);
    assert_eq!(o.sip_tls_port, None);
}

#[test]
fn to_config_builds_listeners_rtp_http_and_extensions() {
    let (o, _) = parse(&with(
        r#"{"extensions": [{"extension": "101", "password": "secret101", "name": "Door"}], "log_level": "debug"}"#,
    ))
    .unwrap();
    let data = PathBuf::from("/data");
    let c = to_config(&o, &env(&data)).unwrap();
    assert_eq!(c.data_dir, data);
    assert_eq!(c.log_level.as_deref(), Some("debug"));
    let listen: Vec<String> = c.sip.listen.iter().map(|l| l.to_string()).collect();
    assert_eq!(listen, ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060", "tls://0.0.0.0:5061"]);
    assert_eq!(c.sip.external_address, Some("192.168.1.10".parse().unwrap()));
    assert_eq!(c.rtp.port_range().unwrap(), (20000, 20999));
    assert_eq!(c.rtp.address.to_string(), "192.168.1.10");
    assert_eq!(c.rtp.bind_address().to_string(), "0.0.0.0");
    assert_eq!(c.http.listen.to_string(), "0.0.0.0:8099");
    assert_eq!(c.extensions.len(), 1);
    assert_eq!(c.extensions[0].name.as_deref(), Some("Door"));
    assert!(c.mqtt.is_none());
}

#[test]
fn transports_can_be_switched_off() {
    let (o, _) = parse(&with(r#"{"sip_tcp_port": null, "sip_tls_port": null}"#)).unwrap();
    let data = PathBuf::from("/data");
    let c = to_config(&o, &env(&data)).unwrap();
    assert_eq!(c.sip.listen.len(), 1);
    assert_eq!(c.sip.listen[0].transport, Transport::Udp);
}

#[test]
fn mqtt_from_options_wins_over_the_supervisor() {
    let supervisor = MqttConfig {
        host: "core-mosquitto".into(),
        port: 1883,
        username: Some("addons".into()),
        password: Some("pw".into()),
        discovery_prefix: "homeassistant".into(),
        base_topic: "ha_pbx".into(),
    };
    let data = PathBuf::from("/data");
    let mut e = env(&data);
    e.mqtt = Some(supervisor);

    let (o, _) = parse(DEFAULTS).unwrap();
    let c = to_config(&o, &e).unwrap();
    let m = c.mqtt.unwrap();
    assert_eq!((m.host.as_str(), m.port, m.username.as_deref()), ("core-mosquitto", 1883, Some("addons")));

    let (o, _) = parse(&with(r#"{"mqtt_host": "192.168.1.5", "mqtt_port": 1884, "mqtt_username": "pbx"}"#)).unwrap();
    let c = to_config(&o, &e).unwrap();
    let m = c.mqtt.unwrap();
    assert_eq!((m.host.as_str(), m.port, m.username.as_deref(), m.password.as_deref()), ("192.168.1.5", 1884, Some("pbx"), None));
}

#[test]
fn ingress_port_must_not_be_a_sip_tcp_port() {
    let (o, _) = parse(DEFAULTS).unwrap();
    let data = PathBuf::from("/data");
    let mut e = env(&data);
    e.http_port = 5061;
    assert!(format!("{:#}", to_config(&o, &e).unwrap_err()).contains("ingress port 5061"));
}

#[test]
fn ipv6_bind_is_bracketed() {
    let (o, _) = parse(DEFAULTS).unwrap();
    let data = PathBuf::from("/data");
    let mut e = env(&data);
    e.bind = "::".parse().unwrap();
    e.advertise = "fd00::10".parse().unwrap();
    let c = to_config(&o, &e).unwrap();
    assert_eq!(c.sip.listen[0].to_string(), "udp://[::]:5060");
    assert_eq!(c.http.listen.to_string(), "[::]:8099");
}

// ------------------------------------------------------------------ agent

/// config.yaml's default `agent` group, switched on.
const AGENT_ON: &str = r#"{"agent": {"enabled": true, "extension": "200",
    "stt": {"kind": "wyoming", "host": "core-whisper", "port": 10300},
    "tts": {"kind": "wyoming", "host": "core-piper", "port": 10200},
    "brain": {"kind": "assist"}, "allowed_entities": [], "handoff": []}}"#;

fn agent_config(extra: &str) -> Result<crate::config::AgentConfig> {
    let (o, _) = parse(&with(extra))?;
    let data = PathBuf::from("/data");
    let c = to_config(&o, &env(&data))?;
    c.agent.ok_or_else(|| anyhow::anyhow!("agent is off"))
}

/// AGENT_ON with `agent.<path>` replaced (`null` removes it).
fn agent_with(path: &str, v: Value) -> String {
    let mut o: Value = serde_json::from_str(AGENT_ON).unwrap();
    let mut at = &mut o["agent"];
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    let last = parts[parts.len() - 1];
    if v.is_null() {
        at.as_object_mut().unwrap().remove(last);
    } else {
        at[last] = v;
    }
    o.to_string()
}

#[test]
fn agent_is_off_by_default_and_when_disabled() {
    assert!(parse(DEFAULTS).unwrap().0.agent.is_none());
    // disabled: the rest of the group is not looked at (it must not stop the PBX)
    let off = r#"{"agent": {"enabled": false, "stt": {"kind": "telepathy"}}}"#;
    let (o, _) = parse(&with(off)).unwrap();
    assert!(o.agent.is_none());
    let data = PathBuf::from("/data");
    assert!(to_config(&o, &env(&data)).unwrap().agent.is_none());
}

#[test]
fn agent_minimal_set_uses_the_wyoming_add_ons_and_assist() {
    let a = agent_config(AGENT_ON).unwrap();
    assert_eq!(a.extension, "200");
    assert_eq!(a.stt, SttConfig::Wyoming { url: "tcp://core-whisper:10300".into() });
    assert_eq!(a.tts, TtsConfig::Wyoming { url: "tcp://core-piper:10200".into(), voice: None });
    assert_eq!(a.brain, BrainConfig::Assist { agent_id: None });
    // the config's own defaults for what the group leaves out
    assert_eq!((a.name.as_str(), a.language.as_str(), a.end_of_turn_ms), ("Assistant", "en", 700));
    assert!(a.homeassistant.is_none(), "the Supervisor's API is added at run time, not from the options");
    assert!(a.allowed_entities.is_empty() && a.handoff.is_empty());
}

#[test]
fn agent_full_set_maps_every_field() {
    let full = r#"{"agent": {"enabled": true, "extension": 300, "name": "Butler", "greeting": "Hi there.",
        "apology": "Oops.", "language": "de", "end_of_turn_ms": 900, "max_call_secs": 120, "silence_secs": 20,
        "backend_timeout_secs": 8, "early_stt_ms": 0,
        "stt": {"kind": "openai", "url": "https://api.openai.com/v1/", "api_key": "sk-1", "model": "whisper-1",
                "host": "core-whisper", "port": 10300},
        "tts": {"kind": "openai", "url": "http://127.0.0.1:8880", "model": "kokoro", "voice": "af_bella"},
        "brain": {"kind": "openai", "url": "http://127.0.0.1:11434", "model": "llama3.2", "api_key": "k",
                  "system_prompt": "Be brief.", "agent_id": "conversation.unused"},
        "allowed_entities": ["light.hallway", " switch.porch_2 "],
        "handoff": [{"callee": 101, "ring_secs": 20}, {"caller": "102", "between": "22:00-07:00"}]}}"#;
    let a = agent_config(full).unwrap();
    assert_eq!((a.extension.as_str(), a.name.as_str(), a.greeting.as_str(), a.apology.as_str()), ("300", "Butler", "Hi there.", "Oops."));
    assert_eq!((a.language.as_str(), a.end_of_turn_ms, a.max_call_secs, a.silence_secs, a.backend_timeout_secs), ("de", 900, 120, 20, 8));
    assert_eq!(a.early_stt_ms, 0);
    // the other kind's fields left in the group are unused
    assert_eq!(a.stt, SttConfig::Openai { url: "https://api.openai.com/v1".into(), api_key: Some("sk-1".into()), model: "whisper-1".into() });
    assert_eq!(
        a.tts,
        TtsConfig::Openai { url: "http://127.0.0.1:8880".into(), api_key: None, model: "kokoro".into(), voice: "af_bella".into() }
    );
    assert_eq!(
        a.brain,
        BrainConfig::Openai {
            url: "http://127.0.0.1:11434".into(),
            api_key: Some("k".into()),
            model: "llama3.2".into(),
            system_prompt: Some("Be brief.".into())
        }
    );
    assert_eq!(a.allowed_entities, ["light.hallway", "switch.porch_2"]);
    assert_eq!(
        a.handoff,
        [
            HandoffRule { callee: Some("101".into()), caller: None, between: None, ring_secs: 20 },
            HandoffRule { callee: None, caller: Some("102".into()), between: Some("22:00-07:00".into()), ring_secs: 0 },
        ]
    );
}

#[test]
fn agent_wyoming_voice_assist_agent_id_and_ipv6_host() {
    let a = agent_config(&agent_with("tts", json!({"kind": "wyoming", "host": "fd00::5", "port": 10200, "voice": "en_US-lessac-medium"})))
        .unwrap();
    assert_eq!(a.tts, TtsConfig::Wyoming { url: "tcp://[fd00::5]:10200".into(), voice: Some("en_US-lessac-medium".into()) });
    let a = agent_config(&agent_with("brain.agent_id", json!("conversation.chatgpt"))).unwrap();
    assert_eq!(a.brain, BrainConfig::Assist { agent_id: Some("conversation.chatgpt".into()) });
}

#[test]
fn agent_errors_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (r#"{"agent": "yes"}"#.into(), "agent: expected a group of options"),
        (agent_with("enabled", json!("on")), "agent.enabled: expected true or false"),
        (agent_with("colour", json!("red")), "agent.colour: unknown option"),
        (agent_with("extension", json!("2 0")), "agent.extension: `2 0`"),
        (agent_with("greeting", json!(5)), "agent.greeting: expected text"),
        (agent_with("end_of_turn_ms", json!(50)), "agent.end_of_turn_ms: must be between 200 and 5000"),
        (agent_with("end_of_turn_ms", json!(-1)), "agent.end_of_turn_ms: `-1` is not a whole number"),
        (agent_with("early_stt_ms", json!(700)), "agent.early_stt_ms: must be 0 (off) or from 100 to less than end_of_turn_ms (700)"),
        (agent_with("early_stt_ms", json!(50)), "agent.early_stt_ms: must be 0"),
        (agent_with("max_call_secs", json!(0)), "max_call_secs"),
        (agent_with("stt", Value::Null), "agent.stt: missing"),
        (agent_with("stt.kind", json!("telepathy")), "agent.stt.kind: `telepathy` is not one of wyoming, openai"),
        (agent_with("stt.host", Value::Null), "agent.stt.host: missing"),
        (agent_with("stt.host", json!("tcp://core-whisper")), "agent.stt.host: `tcp://core-whisper` is not a host"),
        (agent_with("stt.port", json!(70000)), "agent.stt.port: 70000 is not a port"),
        (agent_with("tts.port", Value::Null), "agent.tts.port: missing"),
        (agent_with("tts.kind", json!("openai")), "agent.tts.url: missing"),
        (agent_with("tts", json!({"kind": "openai", "url": "ftp://x"})), "agent.tts.url: `ftp://x`"),
        (agent_with("tts.pitch", json!(3)), "agent.tts.pitch: unknown option"),
        (agent_with("brain.kind", json!("oracle")), "agent.brain.kind: `oracle`"),
        (agent_with("brain", json!({"kind": "openai", "url": "http://127.0.0.1:1"})), "agent.brain.model: missing"),
        (agent_with("brain", json!({"kind": "openai", "url": "http://u@h", "model": "m"})), "agent.brain.url: "),
        (agent_with("allowed_entities", json!(["Light.Hall"])), "agent.allowed_entities[0]: `Light.Hall`"),
        (agent_with("allowed_entities", json!("light.hall")), "agent.allowed_entities: expected a list"),
        (agent_with("handoff", json!([{"callee": "101", "between": "late"}])), "agent.handoff[0].between: `late`"),
        (agent_with("handoff", json!([{"callee": "101"}, {}])), "agent.handoff[1]: empty"),
        (agent_with("handoff", json!([{"callee": "200"}])), "agent.handoff[0].callee: the agent's own extension"),
        (agent_with("handoff", json!([{"callee": "101", "ring_secs": "soon"}])), "agent.handoff[0].ring_secs: `soon`"),
        (agent_with("handoff", json!([{"callee": "101", "after": 3}])), "agent.handoff[0].after: unknown option"),
        (agent_with("handoff", json!(["101"])), "agent.handoff[0]: expected {callee"),
    ];
    for (over, want) in cases {
        let e = format!("{:#}", agent_config(&over).unwrap_err());
        assert!(e.contains(want), "{over}: got `{e}`, wanted `{want}`");
    }
    // the agent's number is one of the extensions
    let mut o: Value = serde_json::from_str(AGENT_ON).unwrap();
    o["extensions"] = json!([{"extension": "200", "password": "secret200"}]);
    let e = format!("{:#}", agent_config(&o.to_string()).unwrap_err());
    assert!(e.contains("agent.extension: `200` is also in extensions"), "{e}");
}

#[test]
fn groups_forwards_and_dnd_reach_the_config() {
    let text = with(r#"{
        "extensions": [
            {"extension": "101", "password": "secret101", "name": "Front door", "kind": "doorbell", "door_open": "1#"},
            {"extension": "102", "password": "secret102", "forward_no_answer": "agent", "forward_no_answer_secs": 15},
            {"extension": "103", "password": "secret103", "dnd": true, "forward_busy": "600"}
        ],
        "groups": [
            {"extension": "600", "name": "House", "members": "102, 103", "strategy": "hunt", "ring_secs": 20, "fallback": "101"},
            {"extension": 699, "name": "Everyone", "everyone": true, "fallback": ""}
        ]
    }"#);
    let (o, unknown) = parse(&text).unwrap();
    assert!(unknown.is_empty());
    assert_eq!(o.extensions[1].forward.no_answer.as_deref(), Some("agent"));
    assert_eq!(o.extensions[1].forward.no_answer_secs, 15);
    assert!(o.extensions[2].dnd);
    let data = PathBuf::from("/data");
    // `agent` as a target needs the agent: without it the config names the field.
    let e = format!("{:#}", to_config(&o, &env(&data)).unwrap_err());
    assert!(e.contains("extensions[1].forward.no_answer"), "{e}");
    let mut o = o;
    o.extensions[1].forward.no_answer = Some("101".into());
    let c = to_config(&o, &env(&data)).unwrap();
    let g = c.group("600").unwrap();
    assert_eq!(g.members, vec!["102".to_string(), "103".to_string()]);
    assert_eq!((g.strategy, g.ring_secs, g.fallback.as_deref()), (crate::config::GroupStrategy::Hunt, 20, Some("101")));
    let every = c.group("699").unwrap();
    assert!(every.everyone && every.fallback.is_none());
    assert!(c.extension("103").unwrap().dnd);
    assert_eq!(c.extension("101").unwrap().kind, crate::config::ExtensionKind::Doorbell);
    assert_eq!(c.extension("101").unwrap().door_open.as_deref(), Some("1#"));
    assert_eq!(c.extension("102").unwrap().kind, crate::config::ExtensionKind::Phone);
    assert_eq!(c.extension("103").unwrap().forward.busy.as_deref(), Some("600"));
    assert_eq!(c.extension("102").unwrap().forward.no_answer_secs, 15);
    assert!(err(&with(r#"{"extensions": [{"extension": "101", "password": "secret101", "forward_no_answer_secs": 0}]}"#)).starts_with("extensions[0].forward_no_answer_secs"));
}

#[test]
fn feature_codes_reach_the_config_and_a_clash_is_named() {
    let text = with(r##"{"extensions": [{"extension": "101", "password": "secret101"}], "pickup_code": "#8", "intercom_code": "*7"}"##);
    let (o, unknown) = parse(&text).unwrap();
    assert!(unknown.is_empty());
    let data = PathBuf::from("/data");
    let c = to_config(&o, &env(&data)).unwrap();
    let want = crate::config::FeatureCodes { pickup: "#8".into(), directed_pickup: "**".into(), intercom: "*7".into(), messages: "*97".into(), park: "*70".into() };
    assert_eq!(c.feature_codes, want);
    let (o, _) = parse(&with(r#"{"extensions": [{"extension": "*71", "password": "secret101"}], "intercom_code": "*7"}"#)).unwrap();
    let e = format!("{:#}", to_config(&o, &env(&data)).unwrap_err());
    assert!(e.contains("feature_codes.intercom: `*7` clashes with the extension or group number `*71`"), "{e}");
}

#[test]
fn park_options_turn_park_on_and_a_clash_or_a_lone_timeout_is_named() {
    let data = PathBuf::from("/data");
    let (o, _) = parse(&with(r#"{"extensions": [{"extension": "101", "password": "secret101"}]}"#)).unwrap();
    assert_eq!(to_config(&o, &env(&data)).unwrap().park, None, "park is off without park_slots");
    let (o, _) = parse(&with(r##"{"extensions": [{"extension": "101", "password": "secret101"}], "park_slots": "801-804", "park_timeout_secs": 30, "park_code": "#70"}"##)).unwrap();
    let c = to_config(&o, &env(&data)).unwrap();
    assert_eq!(c.park, Some(crate::config::ParkConfig { slots: "801-804".into(), timeout_secs: 30 }));
    assert_eq!(c.feature_codes.park, "#70");
    let (o, _) = parse(&with(r#"{"extensions": [{"extension": "802", "password": "secret101"}], "park_slots": "801-804"}"#)).unwrap();
    let e = format!("{:#}", to_config(&o, &env(&data)).unwrap_err());
    assert!(e.contains("park.slots: slot `802` clashes with the extension or group number `802`"), "{e}");
    assert!(err(&with(r#"{"park_timeout_secs": 30}"#)).starts_with("park_timeout_secs: set, but park_slots is empty"));
}

#[test]
fn security_options_left_out_keep_the_config_defaults() {
    let (o, unknown) = parse(DEFAULTS).unwrap();
    assert!(unknown.is_empty());
    let c = to_config(&o, &env(Path::new("/data"))).unwrap();
    let (s, d) = (&c.security, crate::config::SecurityConfig::default());
    assert_eq!((s.ban_after_failures, s.ban_window_secs, s.ban_secs), (d.ban_after_failures, d.ban_window_secs, d.ban_secs));
    assert_eq!((s.flood_rate, s.flood_burst, s.flood_ban_secs), (d.flood_rate, d.flood_burst, d.flood_ban_secs));
    assert_eq!((&s.trusted_sources, &s.blocked_user_agents), (&d.trusted_sources, &d.blocked_user_agents));
    assert_eq!(s.max_calls_per_extension, d.max_calls_per_extension);
}

#[test]
fn security_options_reach_the_config() {
    let (o, unknown) = parse(&with(
        r#"{"ban_after_failures": 2, "ban_window_secs": 120, "ban_secs": "900", "flood_rate": 12.5, "flood_burst": 40,
            "flood_ban_secs": 30, "max_calls_per_extension": 3, "max_calls": 50, "max_media_per_call": 6, "max_sip_connections": 300,
            "max_sip_connections_per_ip": 20, "max_websockets_per_ip": 80, "idle_connection_secs": 600,
            "trusted_sources": ["192.168.1.0/24", " 10.0.0.7 "], "blocked_user_agents": "scanner-x, evil"}"#,
    ))
    .unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    let s = to_config(&o, &env(Path::new("/data"))).unwrap().security;
    assert_eq!((s.ban_after_failures, s.ban_window_secs, s.ban_secs), (2, 120, 900));
    assert_eq!((s.flood_rate, s.flood_burst, s.flood_ban_secs), (12.5, 40, 30));
    assert_eq!((s.max_calls_per_extension, s.max_calls, s.max_media_per_call), (3, 50, 6));
    assert_eq!((s.max_sip_connections, s.max_sip_connections_per_ip, s.max_websockets_per_ip), (300, 20, 80));
    assert_eq!(s.idle_connection_secs, 600);
    assert_eq!(s.trusted_sources, ["192.168.1.0/24", "10.0.0.7"]);
    assert_eq!(s.blocked_user_agents, ["scanner-x", "evil"]);
    // what is not given keeps its default
    assert_eq!(s.max_websockets, crate::config::SecurityConfig::default().max_websockets);
    // 0 turns the flood limit off, as in the YAML file
    let (o, _) = parse(&with(r#"{"flood_rate": 0}"#)).unwrap();
    assert_eq!(to_config(&o, &env(Path::new("/data"))).unwrap().security.flood_rate, 0.0);
}

#[test]
fn security_lists_left_empty_keep_their_defaults() {
    let (o, _) = parse(&with(r#"{"trusted_sources": [], "blocked_user_agents": ["", null]}"#)).unwrap();
    let s = to_config(&o, &env(Path::new("/data"))).unwrap().security;
    assert_eq!(s.trusted_sources, crate::config::SecurityConfig::default().trusted_sources);
    assert!(s.blocked_user_agents.iter().any(|u| u == "friendly-scanner"), "{:?}", s.blocked_user_agents);
}

#[test]
fn security_option_errors_name_the_option() {
    for (bad, msg) in [
        (r#"{"ban_after_failures": 0}"#, "ban_after_failures: must be > 0"),
        (r#"{"ban_after_failures": 99999999999}"#, "ban_after_failures: 99999999999 is too large"),
        (r#"{"ban_secs": -5}"#, "ban_secs: `-5` is not a whole number of 0 or more"),
        (r#"{"ban_window_secs": 1.5}"#, "ban_window_secs: `1.5` is not a whole number"),
        (r#"{"flood_burst": "lots"}"#, "flood_burst: `lots` is not a whole number"),
        (r#"{"flood_burst": 0}"#, "flood_burst: must be > 0"),
        (r#"{"flood_rate": -1}"#, "flood_rate: must be a number >= 0"),
        (r#"{"flood_rate": "fast"}"#, "flood_rate: `fast` is not a number"),
        (r#"{"flood_rate": true}"#, "flood_rate: expected a number, found true/false"),
        (r#"{"max_calls_per_extension": 0}"#, "max_calls_per_extension: must be > 0"),
        (r#"{"idle_connection_secs": 100000}"#, "idle_connection_secs: must be between 1 and 86400"),
        (r#"{"trusted_sources": ["10.0.0.0/40"]}"#, "trusted_sources[0]:"),
        (r#"{"trusted_sources": ["192.168.1.1", 7]}"#, "trusted_sources[1]: expected text, found a number"),
        (r#"{"blocked_user_agents": {"a": 1}}"#, "blocked_user_agents: expected a list, found an object"),
    ] {
        let e = err(&with(bad));
        assert!(e.starts_with(msg), "{bad}: {e}");
    }
}
