use super::*;

#[test]
fn embedded_default_parses() {
    let c = parse(DEFAULT_YAML).unwrap();
    assert_eq!(c.sip.listen.len(), 2);
    assert!(c.extensions.is_empty());
    assert_eq!(c.http.listen.port(), 8088);
    assert_eq!(c.rtp.port_range().unwrap(), (20000, 20999));
}

#[test]
fn issue_example_parses() {
    let c = parse(
        r#"
data_dir: ./data
sip:
  listen: [udp://127.0.0.1:5060, tcp://127.0.0.1:5060, tls://127.0.0.1:5061]
  tls: {cert: cert.pem, key: key.pem}
rtp:
  ports: 20000-20999
  address: 127.0.0.1
http:
  listen: 127.0.0.1:8088
extensions:
  - {extension: "101", password: "secret101", name: "Front door"}
  - {extension: "102", password: "secret102", name: "Kitchen"}
"#,
    )
    .unwrap();
    assert_eq!(c.sip.listen[2].transport, Transport::Tls);
    assert_eq!(c.extensions[1].name.as_deref(), Some("Kitchen"));
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn unknown_key_is_named() {
    assert!(err("sip: {listne: []}").contains("listne"));
    assert!(err("bogus: 1").contains("bogus"));
}

#[test]
fn bad_address_is_named() {
    let e = err("sip: {listen: [udp://300.1.1.1:5060]}");
    assert!(e.contains("300.1.1.1"), "{e}");
    let e = err("sip: {listen: [sctp://127.0.0.1:5060]}");
    assert!(e.contains("sctp"), "{e}");
    let e = err("http: {listen: nowhere}");
    assert!(e.contains("http") || e.contains("listen"), "{e}");
}

#[test]
fn duplicate_extension_is_named() {
    let e = err("extensions: [{extension: '1', password: a}, {extension: '1', password: b}]");
    assert!(e.contains("extensions[1].extension"), "{e}");
}

#[test]
fn bad_port_range_is_named() {
    assert!(err("rtp: {ports: 30000-20000}").contains("rtp.ports"));
    assert!(err("rtp: {ports: lots}").contains("rtp.ports"));
}

#[test]
fn garbage_never_panics() {
    for text in ["", "[]", "- a", "sip: 5", "extensions: {a: 1}", "\u{0}\u{1}", "rtp: {address: ''}"] {
        let _ = parse(text);
    }
}

#[test]
fn digest_algorithms() {
    use super::DigestAlgorithm::*;
    assert_eq!(parse("{}").unwrap().sip.digest_algorithms, vec![Md5]);
    assert_eq!(parse("sip: {digest_algorithms: [SHA-256, MD5]}").unwrap().sip.digest_algorithms, vec![Sha256, Md5]);
    assert!(err("sip: {digest_algorithms: [SHA-1]}").contains("SHA-1"));
    assert!(err("sip: {digest_algorithms: []}").contains("sip.digest_algorithms"));
}

#[test]
fn wss_listen_needs_its_own_port() {
    let ok = parse("http: {listen: 127.0.0.1:8088, wss_listen: 127.0.0.1:8089}\n").unwrap();
    assert_eq!(ok.http.wss_listen.map(|a| a.port()), Some(8089));
    assert!(err("http: {listen: 0.0.0.0:8088, wss_listen: 127.0.0.1:8088}\n").contains("http.wss_listen"));
}

#[test]
fn extension_dtmf_mode_defaults_to_rfc4733_and_bad_values_are_named() {
    let c = parse("extensions: [{extension: '1', password: a}, {extension: '2', password: b, dtmf: info}, {extension: '3', password: c, dtmf: rfc4733}]").unwrap();
    let modes: Vec<DtmfMode> = c.extensions.iter().map(|e| e.dtmf).collect();
    assert_eq!(modes, [DtmfMode::Rfc4733, DtmfMode::Info, DtmfMode::Rfc4733]);
    let e = err("extensions: [{extension: '1', password: a, dtmf: inband}]");
    assert!(e.contains("extensions[0].dtmf") && e.contains("inband"), "{e}");
}

#[test]
fn connection_and_media_caps_have_defaults_and_must_be_positive() {
    let s = parse(DEFAULT_YAML).unwrap().security;
    assert_eq!((s.idle_connection_secs, s.http_header_timeout_secs), (300, 10));
    assert_eq!((s.max_sip_connections, s.max_sip_connections_per_ip), (1000, 50));
    assert_eq!((s.max_websockets, s.max_websockets_per_ip), (200, 50));
    assert_eq!((s.max_media_per_call, s.max_calls_per_extension), (4, 8));
    for key in ["max_sip_connections_per_ip", "max_websockets", "max_media_per_call", "max_calls_per_extension"] {
        let e = err(&format!("security: {{{key}: 0}}"));
        assert!(e.contains(&format!("security.{key}: must be > 0")), "{e}");
    }
    assert!(err("security: {idle_connection_secs: 0}").contains("security.idle_connection_secs"));
}

#[test]
fn flood_limit_defaults_and_checks() {
    let c = parse(DEFAULT_YAML).unwrap();
    let s = &c.security;
    assert_eq!((s.flood_rate, s.flood_burst, s.flood_ban_secs), (50.0, 200, 60));
    assert_eq!(s.trusted_sources, ["127.0.0.0/8", "::1"]);
    assert!(s.blocked_user_agents.iter().any(|u| u == "friendly-scanner"));
    let c = parse("security: {flood_rate: 0, trusted_sources: [], blocked_user_agents: []}").unwrap();
    assert_eq!(c.security.flood_rate, 0.0);
    assert!(err("security: {flood_rate: -1}").contains("security.flood_rate"));
    assert!(err("security: {flood_burst: 0}").contains("security.flood_burst"));
    assert!(err("security: {trusted_sources: [10.0.0.0/40]}").contains("security.trusted_sources[0]"));
}
