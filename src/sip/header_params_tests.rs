//! rsipstack's header-parameter parsing with the whitespace RFC 3261's
//! grammar allows (25.1: `SEMI = SWS ";" SWS`, `EQUAL = SWS "=" SWS`),
//! as RFC 4475 3.1.1.1 (`wsinv`) writes it: ha-pbx patch 6 of
//! vendor/rsipstack (HA-PBX-PATCH.md). Upstream kept the spaces, so
//! `tag = 98asjd8` was a parameter named `tag ` and the message had no tag.
use rsipstack::sip::typed::{Contact, From, To, Via};
use rsipstack::sip::Param;

fn other<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params.iter().find_map(|p| match p {
        Param::Other(n, v) if n.value() == name => Some(v.as_ref().map(|v| v.value())),
        _ => None,
    })
}

#[test]
fn a_tag_with_spaces_around_the_equals_sign_is_the_tag() {
    let f = From::parse("\"J Rosenberg\" <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8").unwrap();
    assert_eq!(f.tag().map(|t| t.value()), Some("98asjd8"));
    assert_eq!(f.uri.to_string(), "sip:jdrosen@example.com");
    // an addr-spec without <>: the URI ends before the spaces and `;`
    let t = To::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
    assert_eq!(t.tag().map(|t| t.value()), Some("1918181833n"));
    assert_eq!(t.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
    // tabs are whitespace too
    let t = To::parse("<sip:a@example.com>\t;\ttag\t=\tx1").unwrap();
    assert_eq!(t.tag().map(|t| t.value()), Some("x1"));
}

#[test]
fn every_parameter_takes_the_whitespace_not_only_tag() {
    let v = Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ").unwrap();
    assert_eq!(v.branch().map(|b| b.to_string()).as_deref(), Some("z9hG4bK9ikj8"));
    let v = Via::parse("SIP/2.0/UDP 192.168.255.111 ; branch=\r\n z9hG4bK30239 ; received = 192.0.2.9 ; rport = 5070").unwrap();
    assert_eq!(v.branch().map(|b| b.to_string()).as_deref(), Some("z9hG4bK30239"));
    assert!(v.params.contains(&Param::Rport(Some(5070))), "{:?}", v.params);
    assert!(matches!(v.received(), Some(Ok(ip)) if ip.to_string() == "192.0.2.9"), "{:?}", v.params);
    let c = Contact::parse("\"Quoted string\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33 ; expires = 60").unwrap();
    assert_eq!(c.q(), Some(0.33));
    assert_eq!(c.expires(), Some(60));
    assert_eq!(other(&c.params, "newparam"), Some(Some("newvalue")));
    assert_eq!(other(&c.params, "secondparam"), Some(None));
}

#[test]
fn values_keep_their_inner_characters_and_uri_parameters_are_as_before() {
    // only the whitespace around `=` goes: a value's own `=` and the parameters inside <> stay
    let t = To::parse("<sip:services.example.com;lr;unknownwith=value;unknown-no-value> ; x = a=b").unwrap();
    assert_eq!(other(&t.params, "x"), Some(Some("a=b")));
    assert!(t.uri.params.contains(&Param::Lr));
    assert_eq!(other(&t.uri.params, "unknownwith"), Some(Some("value")));
    assert_eq!(other(&t.uri.params, "unknown-no-value"), Some(None));
    // an empty value after `=` stays empty (not the next parameter)
    let f = From::parse("<sip:a@example.com>;tag = ;x=1").unwrap();
    assert_eq!(f.tag().map(|t| t.value()), Some(""));
    assert_eq!(other(&f.params, "x"), Some(Some("1")));
}
