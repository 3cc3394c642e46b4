use crate::config::{parse, Transport};

const BASE: &str = r#"
extensions:
  - {extension: "101", password: "secret101"}
  - {extension: "102", password: "secret102"}
"#;

fn with(extra: &str) -> anyhow::Result<crate::config::Config> {
    parse(&format!("{BASE}{extra}"))
}

fn err(extra: &str) -> String {
    format!("{:#}", with(extra).expect_err("must be refused"))
}

#[test]
fn the_issues_example_parses_with_unquoted_numbers() {
    let c = with(
        r#"
trunks:
  - name: provider
    server: sip.example.net
    transport: udp
    username: 4930123456
    auth_username: "abc"
    password: "pw"
    register: true
    caller_id: "+4930123456"
    inbound_hosts: []
    inbound: 101
    dids: {4930123457: "102"}
outbound_routes:
  - {prefix: 0, trunk: provider, strip: 0, prepend: "", extensions: [101, "102"]}
"#,
    )
    .expect("valid");
    let t = &c.trunks[0];
    assert_eq!(t.username.as_deref(), Some("4930123456"));
    assert_eq!(t.transport, Transport::Udp);
    assert_eq!(t.inbound.as_deref(), Some("101"));
    assert_eq!(t.dids.get("4930123457").map(String::as_str), Some("102"));
    assert_eq!((t.expires_secs, t.keepalive_secs), (3600, 30));
    assert_eq!(c.outbound_routes[0].prefix, "0");
    assert_eq!(c.outbound_routes[0].extensions, ["101", "102"]);
}

#[test]
fn an_ip_trunk_needs_no_credentials_but_its_hosts() {
    with("trunks: [{name: twilio, server: 'example.pstn.twilio.com', register: false, inbound_hosts: ['54.172.60.0/30', '192.0.2.7:5060'], inbound: '101', caller_id: '+15551230000'}]")
        .expect("valid");
    assert!(err("trunks: [{name: t, server: x, register: false, inbound: '101'}]").contains("inbound_hosts"));
}

#[test]
fn mistakes_are_named() {
    let cases = [
        ("trunks: [{name: Bad Name, server: x, register: false}]", "trunks[0].name"),
        ("trunks: [{name: a, server: x, register: false}, {name: a, server: y, register: false}]", "duplicate trunk"),
        ("trunks: [{name: a, server: 'x:99999', register: false}]", "not a port"),
        ("trunks: [{name: a, server: 'x y', register: false}]", "not a host"),
        ("trunks: [{name: a, server: x, transport: sctp, register: false}]", "sctp"),
        ("trunks: [{name: a, server: x}]", "needs username and password"),
        ("trunks: [{name: a, server: x, username: 'a b', password: p}]", "username"),
        ("trunks: [{name: a, server: x, username: u, password: 'p\"q'}]", "password"),
        ("trunks: [{name: a, server: x, username: u, password: p, caller_id: '<sip:x>'}]", "caller_id"),
        ("trunks: [{name: a, server: x, username: u, password: p, inbound: '999'}]", "not an extension"),
        ("trunks: [{name: a, server: x, username: u, password: p, dids: {'12': '999'}}]", "dids.12"),
        ("trunks: [{name: a, server: x, username: u, password: p, dids: {'x@y': '101'}}]", "not a phone number"),
        ("trunks: [{name: a, server: x, register: false, inbound_hosts: ['sip.example.net'], inbound: '101'}]", "inbound_hosts[0]"),
        ("trunks: [{name: a, server: x, register: false, inbound_hosts: ['0.0.0.0/0'], inbound: '101'}]", "half the internet"),
        ("trunks: [{name: a, server: x, username: u, password: p, expires_secs: 1}]", "expires_secs"),
        ("trunks: [{name: a, server: x, username: u, password: p, color: red}]", "color"),
        ("trunks: [{name: a, server: x, username: u, password: p, keepalive_secs: 1}]", "keepalive_secs"),
        ("trunks: [{name: a, server: x, username: 'a#b', password: p}]", "username"),
        ("outbound_routes: [{prefix: '0', trunk: nope, extensions: ['101']}]", "not one of trunks"),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
}

#[test]
fn routes_deny_by_default() {
    let trunk = "trunks: [{name: p, server: x, username: u, password: pw}]\n";
    let cases = [
        ("outbound_routes: [{prefix: '0', trunk: p}]", "extensions"),
        ("outbound_routes: [{prefix: '0', trunk: p, extensions: []}]", "nobody is, by default"),
        ("outbound_routes: [{prefix: '0', trunk: p, extensions: ['999']}]", "`999` is not an extension"),
        ("outbound_routes: [{prefix: '0x', trunk: p, extensions: ['101']}]", "prefix"),
        ("outbound_routes: [{prefix: '0', trunk: p, prepend: '+49;x', extensions: ['101']}]", "prepend"),
        ("outbound_routes: [{prefix: '0', trunk: p, strip: 99, extensions: ['101']}]", "strip"),
    ];
    for (yaml, want) in cases {
        let e = err(&format!("{trunk}{yaml}"));
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
    let no_id = "trunks: [{name: p, server: x, register: false, inbound_hosts: ['192.0.2.1']}]\noutbound_routes: [{prefix: '0', trunk: p, extensions: ['101']}]";
    assert!(err(no_id).contains("caller_id"));
}

#[test]
fn a_tls_trunk_is_verified_and_its_tls_ca_checked() {
    // tls is taken; without tls_ca the built-in public roots decide
    let c = with("trunks: [{name: a, server: 'sip.example.net', transport: tls, username: u, password: p}]").expect("valid");
    assert_eq!((c.trunks[0].transport, c.trunks[0].tls_ca.clone()), (Transport::Tls, None));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let pair = rcgen::generate_simple_self_signed(vec!["box.test".to_string()]).unwrap();
    std::fs::write(&ca, pair.cert.pem()).unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'x'; 300 * 1024]).unwrap();
    let tls = |extra: &str| format!("trunks: [{{name: a, server: 'box.test:5061', transport: tls, username: u, password: p{extra}}}]");
    let c = with(&tls(&format!(", tls_ca: '{}'", ca.display()))).expect("valid");
    assert_eq!(c.trunks[0].tls_ca.as_deref(), Some(ca.as_path()));
    let cases = [
        (tls(", tls_ca: '/nonexistent/ca.pem'"), "trunks[0] (a).tls_ca: /nonexistent/ca.pem: No such file".to_string()),
        (tls(&format!(", tls_ca: '{}'", junk.display())), "holds no certificate".into()),
        (tls(&format!(", tls_ca: '{}'", big.display())), "at most 256 KiB".into()),
        (format!("trunks: [{{name: a, server: x, username: u, password: p, tls_ca: '{}'}}]", ca.display()), "tls_ca: only for transport: tls (this trunk is udp)".into()),
        // no switch turns verification off
        (tls(", tls_verify: false"), "unknown field `tls_verify`".into()),
        (tls(", tls_ca: ''"), "tls_ca".into()),
    ];
    for (yaml, want) in cases {
        let e = err(&yaml);
        assert!(e.contains(&want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
}

#[test]
fn srtp_is_off_by_default_and_needs_tls() {
    use crate::config::SrtpMode;
    let tls = |extra: &str| format!("trunks: [{{name: a, server: 'sip.example.net', transport: tls, username: u, password: p{extra}}}]");
    assert_eq!(with(&tls("")).expect("valid").trunks[0].srtp, SrtpMode::Off);
    for (word, mode) in [("off", SrtpMode::Off), ("optional", SrtpMode::Optional), ("mandatory", SrtpMode::Mandatory)] {
        assert_eq!(with(&tls(&format!(", srtp: {word}"))).expect(word).trunks[0].srtp, mode);
    }
    let cases = [
        ("trunks: [{name: a, server: x, username: u, password: p, srtp: mandatory}]", "trunks[0] (a).srtp: mandatory needs transport: tls (this trunk is udp)"),
        ("trunks: [{name: a, server: x, transport: tcp, username: u, password: p, srtp: optional}]", "trunks[0] (a).srtp: optional needs transport: tls (this trunk is tcp)"),
        (&tls(", srtp: yes"), "unknown variant `yes`"),
        (&tls(", srtp: true"), "srtp"),
        (&tls(", srtp: dtls"), "unknown variant `dtls`"),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
    with("trunks: [{name: a, server: x, username: u, password: p, srtp: off}]").expect("off over udp is fine");
}

#[test]
fn a_routes_failover_trunks_are_checked() {
    let trunks = "trunks: [{name: p, server: x, username: u, password: pw}, {name: b, server: y, register: false, caller_id: '+4930'}, {name: n, server: z, register: false}]\n";
    let c = with(&format!("{trunks}outbound_routes: [{{prefix: '0', trunk: p, failover: [b], extensions: ['101']}}]")).expect("valid");
    assert_eq!(c.outbound_routes[0].failover, ["b"]);
    let c = with(&format!("{trunks}outbound_routes: [{{prefix: '0', trunk: p, extensions: ['101']}}]")).expect("valid");
    assert!(c.outbound_routes[0].failover.is_empty(), "none by default");
    let cases = [
        ("failover: [nope]", "outbound_routes[0].failover[0]: `nope` is not one of trunks' names"),
        ("failover: [n]", "failover[0]: trunk `n` needs a caller_id"),
        ("failover: [p]", "failover[0]: `p` is already tried"),
        ("failover: [b, b]", "failover[1]: `b` is already tried"),
        ("failover: [b, b, b, b, b]", "failover: at most 4"),
    ];
    for (field, want) in cases {
        let yaml = format!("{trunks}outbound_routes: [{{prefix: '0', trunk: p, {field}, extensions: ['101']}}]");
        let e = err(&yaml);
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
}
