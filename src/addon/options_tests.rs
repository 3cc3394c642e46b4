use super::*;
use crate::config::{MqttConfig, Transport};
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
