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
    assert_eq!((s.max_media_per_call, s.max_calls_per_extension, s.max_calls), (4, 8, 200));
    for key in ["max_sip_connections_per_ip", "max_websockets", "max_media_per_call", "max_calls_per_extension", "max_calls", "ban_window_secs", "ban_secs", "flood_ban_secs"] {
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

const GROUP_BASE: &str = r#"
extensions:
  - {extension: "101", password: "a", name: "Front door"}
  - {extension: "102", password: "b", name: "Kitchen"}
  - {extension: "103", password: "c"}
"#;

#[test]
fn issue_14_groups_parse() {
    let c = parse(&format!(
        "{GROUP_BASE}groups:\n  - {{extension: \"600\", name: \"House\", members: [\"102\", \"103\"], strategy: ringall, ring_secs: 30}}\n  - {{extension: \"601\", name: \"Intercoms\", members: [\"104\", \"105\"], page: true}}\n  - {{extension: \"602\", members: [\"103\", \"102\"], strategy: hunt, fallback: \"101\"}}\n  - {{extension: \"699\", everyone: true}}\n"
    ))
    .unwrap();
    let g = c.group("600").unwrap();
    assert_eq!((g.strategy, g.ring_secs, g.members.len()), (GroupStrategy::Ringall, 30, 2));
    assert!(c.group("601").unwrap().page);
    assert_eq!(c.group("602").unwrap().strategy, GroupStrategy::Hunt);
    assert_eq!(c.group("602").unwrap().fallback.as_deref(), Some("101"));
    assert!(c.group("699").unwrap().everyone && c.group("699").unwrap().ring_secs == 30);
    assert!(c.group("101").is_none());
}

#[test]
fn bad_groups_name_the_field() {
    let err = |groups: &str| parse(&format!("{GROUP_BASE}groups:\n{groups}")).unwrap_err().to_string();
    assert!(err("  - {extension: \"102\", members: [\"103\"]}\n").starts_with("groups[0].extension: `102` is already"));
    assert!(err("  - {extension: \"600\", members: [\"103\"]}\n  - {extension: \"600\", members: [\"102\"]}\n").starts_with("groups[1].extension: duplicate"));
    assert!(err("  - {extension: \"600\", members: []}\n").starts_with("groups[0].members:"));
    assert!(err("  - {extension: \"600\", members: [\"103\"], ring_secs: 0}\n").starts_with("groups[0].ring_secs"));
    assert!(err("  - {extension: \"600\", members: [\"agent\"]}\n").starts_with("groups[0].members[0]: `agent` needs"));
    assert!(err("  - {extension: \"600\", members: [\"601\"]}\n  - {extension: \"601\", members: [\"102\"]}\n").starts_with("groups[0].members[0]: `601` is a group"));
    assert!(err("  - {extension: \"600\", members: [\"102\"], fallback: \"x y\"}\n").starts_with("groups[0].fallback:"));
    assert!(err("  - {extension: \"600\", members: [\"102\"], strategy: random}\n").contains("strategy"));
}

#[test]
fn issue_14_extensions_parse_and_bad_forwards_name_the_field() {
    let c = parse(
        r#"
groups:
  - {extension: "600", name: "House", members: ["102", "103"], strategy: ringall, ring_secs: 30}
extensions:
  - {extension: "101", password: "a", name: "Front door", kind: doorbell, door_open: "1#"}
  - {extension: "102", password: "b", name: "Kitchen", forward: {no_answer: "600", no_answer_secs: 20}}
  - {extension: "103", password: "c", dnd: true, forward: {busy: "102", always: "101"}}
"#,
    )
    .unwrap();
    let door = c.extension("101").unwrap();
    assert_eq!((door.kind, door.door_open.as_deref()), (ExtensionKind::Doorbell, Some("1#")));
    assert_eq!(c.extension("102").unwrap().forward.no_answer.as_deref(), Some("600"));
    assert_eq!(c.extension("102").unwrap().kind, ExtensionKind::Phone);
    assert!(c.extension("103").unwrap().dnd);
    assert_eq!(c.extension("101").unwrap().forward, ForwardConfig::default());
    let err = |ext: &str| parse(&format!("{GROUP_BASE}{ext}")).unwrap_err().to_string();
    let e = err("  - {extension: \"104\", password: \"d\", forward: {no_answer: \"0151123\"}}\n");
    assert!(e.starts_with("extensions[3].forward.no_answer: `0151123` is not an extension"), "{e}");
    let e = err("  - {extension: \"104\", password: \"d\", forward: {always: \"104\"}}\n");
    assert!(e.starts_with("extensions[3].forward.always: an extension cannot forward to itself"), "{e}");
    let e = err("  - {extension: \"104\", password: \"d\", forward: {busy: \"agent\"}}\n");
    assert!(e.starts_with("extensions[3].forward.busy"), "{e}");
    let e = err("  - {extension: \"104\", password: \"d\", door_open: \"open\"}\n");
    assert!(e.starts_with("extensions[3].door_open"), "{e}");
    assert!(err("  - {extension: \"104\", password: \"d\", kind: camera}\n").contains("kind"));
    // A number outside: only when an outbound route lets the forwarding extension call it.
    let trunk = "trunks: [{name: p, server: \"127.0.0.1:5070\", register: false, caller_id: \"+4930123456\"}]\noutbound_routes: [{prefix: \"0\", trunk: p, extensions: [\"104\"]}]\n";
    let with_trunk = |ext: &str| parse(&format!("{trunk}{GROUP_BASE}{ext}"));
    let c = with_trunk("  - {extension: \"104\", password: \"d\", forward: {no_answer: \"0151123\"}}\n").unwrap();
    assert_eq!(c.extension("104").unwrap().forward.no_answer.as_deref(), Some("0151123"));
    let e = with_trunk("  - {extension: \"104\", password: \"d\"}\n  - {extension: \"105\", password: \"e\", forward: {always: \"0151123\"}}\n").unwrap_err().to_string();
    assert!(e.contains("forward.always: `0151123`") && e.contains("no outbound route lets extension 105 call it"), "{e}");
}

#[test]
fn rtp_address_given_wins() {
    let c = parse("sip: {listen: [udp://0.0.0.0:5060]}\nrtp: {address: 10.1.2.3}\n").unwrap();
    assert_eq!(c.rtp.address.to_string(), "10.1.2.3");
}

#[test]
fn rtp_address_follows_the_primary_address_only_when_sip_listens_on_all() {
    let mut c = parse("sip: {listen: [udp://0.0.0.0:5060]}\n").unwrap();
    let lan = || Some("192.168.1.20".parse().unwrap());
    assert_eq!(super::resolve_rtp_address(&c, lan).to_string(), "192.168.1.20");
    assert_eq!(super::resolve_rtp_address(&c, || None).to_string(), "127.0.0.1", "no route: loopback");
    c.sip.listen = parse("sip: {listen: [udp://127.0.0.1:5060]}\n").unwrap().sip.listen;
    assert_eq!(super::resolve_rtp_address(&c, lan).to_string(), "127.0.0.1");
}

#[test]
fn rtp_address_unspecified_is_still_refused() {
    let e = parse("rtp: {address: 0.0.0.0}\n").unwrap_err().to_string();
    assert!(e.contains("rtp.address"), "{e}");
}
