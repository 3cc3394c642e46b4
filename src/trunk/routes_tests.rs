use super::*;
use crate::config::TrunkConfig;

fn route(prefix: &str, trunk: &str, strip: usize, prepend: &str, exts: &[&str]) -> OutboundRoute {
    OutboundRoute { prefix: prefix.into(), trunk: trunk.into(), strip, prepend: prepend.into(), extensions: exts.iter().map(|e| e.to_string()).collect(), failover: Vec::new() }
}

fn trunk(yaml: &str) -> TrunkConfig {
    serde_norway::from_str(yaml).expect("trunk yaml")
}

#[test]
fn outbound_applies_strip_and_prepend() {
    let routes = [route("0", "p", 1, "+49", &["101", "102"])];
    assert_eq!(outbound(&routes, "101", "030123456"), Outbound::Go { trunk: "p".into(), number: "+4930123456".into() });
}

#[test]
fn allows_is_what_outbound_says_go_to() {
    let routes = [route("0", "p", 1, "+49", &["101"])];
    assert!(allows(&routes, "101", "030123456"));
    assert!(!allows(&routes, "102", "030123456"), "not listed");
    assert!(!allows(&routes, "101", "130123456"), "no route");
    assert!(!allows(&routes, "101", "0"), "nothing left after strip");
}

#[test]
fn outbound_refuses_extensions_not_listed_and_numbers_without_a_route() {
    let routes = [route("0", "p", 0, "", &["101"])];
    assert_eq!(outbound(&routes, "102", "0301"), Outbound::NotAllowed { prefix: "0".into(), trunk: "p".into() });
    assert_eq!(outbound(&routes, "101", "9301"), Outbound::NoRoute);
    assert_eq!(outbound(&[], "101", "0301"), Outbound::NoRoute);
}

#[test]
fn outbound_longest_prefix_decides() {
    let routes = [route("0", "cheap", 0, "", &["101", "102"]), route("00", "intl", 0, "", &["101"])];
    assert_eq!(outbound(&routes, "101", "0044123"), Outbound::Go { trunk: "intl".into(), number: "0044123".into() });
    assert!(matches!(outbound(&routes, "102", "0044123"), Outbound::NotAllowed { .. }), "102 may not call abroad, even though `0` would let it");
    assert_eq!(outbound(&routes, "102", "0301"), Outbound::Go { trunk: "cheap".into(), number: "0301".into() });
}

#[test]
fn outbound_refuses_hostile_or_empty_numbers() {
    let routes = [route("", "p", 2, "", &["101"])];
    for n in ["", "0;x", "0@evil", "12", "1\r\nVia: x", &"1".repeat(40)] {
        assert_eq!(outbound(&routes, "101", n), Outbound::NoRoute, "{n:?}");
    }
    assert_eq!(outbound(&routes, "101", "123"), Outbound::Go { trunk: "p".into(), number: "3".into() });
}

#[test]
fn source_matches_the_registered_server_or_inbound_hosts() {
    let reg = trunk("{name: reg, server: 'sip.example.net', username: u, password: p}");
    let ip = trunk("{name: ip, server: '192.0.2.1', register: false, inbound_hosts: ['198.51.100.0/30', '127.0.0.1:5099']}");
    let trunks = [reg, ip];
    let server: SocketAddr = "203.0.113.5:5060".parse().unwrap();
    let backup: SocketAddr = "203.0.113.9:5070".parse().unwrap(); // its second SRV target
    let lookup = |name: &str| {
        if name == "reg" {
            vec![server, backup]
        } else {
            vec![]
        }
    };
    assert_eq!(
        trunk_for_source(&trunks, server, lookup).map(|t| t.name.as_str()),
        Some("reg")
    );
    assert_eq!(
        trunk_for_source(&trunks, backup, lookup).map(|t| t.name.as_str()),
        Some("reg"),
        "any target the name resolved to"
    );
    assert_eq!(
        trunk_for_source(&trunks, "203.0.113.5:5061".parse().unwrap(), lookup),
        None,
        "another port of that host is not the trunk"
    );
    assert_eq!(
        trunk_for_source(&trunks, "198.51.100.3:1234".parse().unwrap(), lookup)
            .map(|t| t.name.as_str()),
        Some("ip")
    );
    assert_eq!(
        trunk_for_source(&trunks, "198.51.100.4:1234".parse().unwrap(), lookup),
        None
    );
    assert_eq!(
        trunk_for_source(&trunks, "127.0.0.1:5099".parse().unwrap(), lookup)
            .map(|t| t.name.as_str()),
        Some("ip")
    );
    assert_eq!(
        trunk_for_source(&trunks, "127.0.0.2:5099".parse().unwrap(), lookup),
        None
    );
    assert_eq!(
        trunk_for_source(&trunks, "[::ffff:127.0.0.1]:5099".parse().unwrap(), lookup)
            .map(|t| t.name.as_str()),
        Some("ip")
    );
}

#[test]
fn inbound_finds_the_did_in_request_uri_or_to() {
    let t = trunk("{name: p, server: x, username: '4930123456', password: s, inbound: '101', dids: {'4930123457': '200', '+4930999': '102'}}");
    assert_eq!(inbound(&t, Some("4930123457"), Some("x")), Some(Inbound { dialled: Some("4930123457".into()), target: "200".into() }));
    // the DID only in To, the Request-URI holding our registered Contact user
    assert_eq!(inbound(&t, Some("4930123456"), Some("+4930123457")).map(|i| i.target), Some("200".into()));
    assert_eq!(inbound(&t, Some("4930999"), None).map(|i| i.target), Some("102".into()), "a leading + does not matter");
    assert_eq!(inbound(&t, Some("4930123456"), Some("4930123456")), Some(Inbound { dialled: Some("4930123456".into()), target: "101".into() }));
    assert_eq!(inbound(&t, None, None), Some(Inbound { dialled: None, target: "101".into() }));
    let no_default = trunk("{name: p, server: x, username: u, password: s, dids: {'1': '200'}}");
    assert_eq!(inbound(&no_default, Some("2"), Some("3")), None);
}

#[test]
fn caller_number_prefers_the_asserted_identity_and_refuses_junk() {
    assert_eq!(caller_number(Some("+4917012345"), None), "+4917012345");
    assert_eq!(caller_number(Some("+4917012345"), Some("+4917099999")), "+4917099999");
    assert_eq!(caller_number(Some("a b"), Some("x>y")), "anonymous");
    assert_eq!(caller_number(None, None), "anonymous");
    assert_eq!(caller_number(Some("Anonymous"), None), "Anonymous");
}

#[test]
fn failover_trunks_come_from_the_route_that_decides() {
    let mut home = route("0", "p", 1, "+49", &["101"]);
    home.failover = vec!["backup".into(), "third".into()];
    let routes = [home, route("00", "intl", 0, "", &["101"])];
    assert_eq!(failover_trunks(&routes, "0301234"), ["backup", "third"]);
    assert!(failover_trunks(&routes, "0044123").is_empty(), "the longer prefix decides, and it has none");
    assert!(failover_trunks(&routes, "9123").is_empty());
}
