use super::*;
use crate::trunk::Outcome;

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

fn cand(a: &str) -> Candidate {
    Candidate {
        addr: a.parse().unwrap(),
        why: format!("test {a}"),
    }
}

#[test]
fn what_is_looked_up_follows_rfc_3263() {
    assert_eq!(
        plan("192.0.2.7", Transport::Udp),
        Ok(Plan::Literal("192.0.2.7:5060".parse().unwrap()))
    );
    assert_eq!(
        plan("192.0.2.7:5070", Transport::Udp),
        Ok(Plan::Literal("192.0.2.7:5070".parse().unwrap()))
    );
    assert_eq!(
        plan("[2001:db8::1]", Transport::Tls),
        Ok(Plan::Literal("[2001:db8::1]:5061".parse().unwrap()))
    );
    assert_eq!(
        plan("sip.example.net:5080", Transport::Udp),
        Ok(Plan::Address {
            host: "sip.example.net".into(),
            port: 5080
        })
    );
    let srv_name = |t| match plan("sip.example.net", t) {
        Ok(Plan::Srv {
            srv_name,
            host,
            default_port,
        }) => (srv_name, host, default_port),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        srv_name(Transport::Udp),
        (
            "_sip._udp.sip.example.net".into(),
            "sip.example.net".into(),
            5060
        )
    );
    assert_eq!(srv_name(Transport::Tcp).0, "_sip._tcp.sip.example.net");
    assert_eq!(
        srv_name(Transport::Tls),
        (
            "_sips._tcp.sip.example.net".into(),
            "sip.example.net".into(),
            5061
        )
    );
    assert!(
        plan("evil\r\nhost", Transport::Udp).is_err(),
        "hostile server text is refused"
    );
    assert!(plan("host:0", Transport::Udp).is_err());
}

#[test]
fn lower_priority_first_whatever_the_weights() {
    let recs = vec![
        srv(20, 100, 5062, "b.example"),
        srv(10, 0, 5061, "a.example"),
        srv(30, 5, 5063, "c.example"),
    ];
    for draw in [0, 1, 50, 1000] {
        let order: Vec<u16> = srv_order(recs.clone(), |n| draw.min(n))
            .iter()
            .map(|r| r.port)
            .collect();
        assert_eq!(order, [5061, 5062, 5063], "draw {draw}");
    }
}

#[test]
fn weights_share_the_draws_within_a_priority() {
    // weights 1 and 3 at one priority: the second is first for draws 2..=4,
    // the first for 0..=1 (running sums 1, 4), as RFC 2782 selects.
    let recs = vec![srv(10, 1, 1001, "light"), srv(10, 3, 1003, "heavy")];
    let first = |draw: u32| srv_order(recs.clone(), |_| draw)[0].port;
    assert_eq!([0, 1, 2, 3, 4].map(first), [1001, 1001, 1003, 1003, 1003]);
    // over draws spread evenly on 0..=4 the heavy one leads three times in
    // five (RFC 2782 draws from 0 to the sum inclusive)
    let mut seq = 0u32;
    let heavy = (0..400)
        .filter(|_| {
            let o = srv_order(recs.clone(), |n| {
                seq = seq.wrapping_add(1);
                seq % (n + 1)
            });
            o[0].port == 1003
        })
        .count();
    assert_eq!(heavy, 240, "heavy first {heavy} of 400");
}

#[test]
fn zero_weight_is_drawn_only_on_a_zero_draw() {
    let recs = vec![srv(10, 5, 2000, "w5"), srv(10, 0, 1000, "w0")];
    assert_eq!(srv_order(recs.clone(), |_| 0)[0].port, 1000);
    assert_eq!(srv_order(recs.clone(), |_| 3)[0].port, 2000);
    assert_eq!(srv_order(recs, |_| 3).len(), 2, "the other still follows");
}

#[test]
fn service_not_offered_and_too_many_targets() {
    assert!(
        srv_order(vec![srv(0, 0, 5060, ".")], |_| 0).is_empty(),
        "`.`: no SIP here"
    );
    let many: Vec<_> = (0..50).map(|i| srv(i, 1, 5060 + i, "x.example")).collect();
    assert_eq!(srv_order(many, |n| n).len(), MAX_SRV_TARGETS);
}

#[test]
fn failover_walks_the_targets_then_looks_up_again() {
    let mut s = Servers::default();
    assert!(s.needs_lookup(0) && s.current().is_none());
    s.on_lookup(0, vec![cand("127.0.0.1:1001"), cand("127.0.0.1:1002")], 60);
    assert!(!s.needs_lookup(59_999));
    assert_eq!(s.current().unwrap().addr.port(), 1001);
    assert_eq!(
        s.on_failure("127.0.0.1:1001".parse().unwrap()),
        Next::Try(cand("127.0.0.1:1002"))
    );
    // a late failure of the first target moves nothing
    assert_eq!(
        s.on_failure("127.0.0.1:1001".parse().unwrap()),
        Next::Try(cand("127.0.0.1:1002"))
    );
    assert_eq!(s.current().unwrap().addr.port(), 1002);
    assert_eq!(
        s.on_failure("127.0.0.1:1002".parse().unwrap()),
        Next::Exhausted
    );
    assert!(
        s.needs_lookup(1),
        "all failed: ask DNS again, however long the TTL"
    );
    s.on_lookup(2, vec![cand("127.0.0.1:1001"), cand("127.0.0.1:1002")], 60);
    assert_eq!(
        s.current().unwrap().addr.port(),
        1001,
        "fresh answers start from the top"
    );
}

#[test]
fn ttl_expiry_looks_up_again_and_keeps_a_working_target() {
    let mut s = Servers::default();
    s.on_lookup(
        1000,
        vec![cand("127.0.0.1:1001"), cand("127.0.0.1:1002")],
        5,
    );
    s.on_failure("127.0.0.1:1001".parse().unwrap());
    assert!(
        !s.needs_lookup(5_999) && s.needs_lookup(6_000),
        "the TTL is respected"
    );
    s.on_lookup(
        6_000,
        vec![cand("127.0.0.1:1001"), cand("127.0.0.1:1002")],
        5,
    );
    assert_eq!(
        s.current().unwrap().addr.port(),
        1002,
        "the target that works stays in use"
    );
    // the provider moved: the old target is gone from the answers
    s.on_lookup(12_000, vec![cand("127.0.0.1:2001")], 5);
    assert_eq!(s.current().unwrap().addr.port(), 2001);
    assert_eq!(s.addresses(), ["127.0.0.1:2001".parse().unwrap()]);
}

#[test]
fn ttl_and_table_are_bounded() {
    let mut s = Servers::default();
    s.on_lookup(
        0,
        (0..40)
            .map(|i| cand(&format!("127.0.0.1:{}", 1000 + i)))
            .collect(),
        u64::from(u32::MAX),
    );
    assert_eq!(s.addresses().len(), MAX_CANDIDATES);
    assert!(s.needs_lookup(MAX_TTL_SECS * 1000), "a huge TTL is capped");
    s.on_lookup(0, vec![], 60);
    assert!(
        s.needs_lookup(0) && s.current().is_none(),
        "no answers: nothing to use, ask again"
    );
}

#[test]
fn which_outcomes_fail_over() {
    assert!(fails_over(&Outcome::Failed("no answer".into())));
    assert!(fails_over(&Outcome::Refused {
        code: 503,
        reason: "Service Unavailable".into(),
        min_expires: None
    }));
    assert!(
        !fails_over(&Outcome::Refused {
            code: 401,
            reason: "Unauthorized".into(),
            min_expires: None
        }),
        "a wrong password is not the server's fault"
    );
    assert!(!fails_over(&Outcome::Registered { granted_secs: 60 }));
}

#[test]
fn a_dns_failure_keeps_a_working_target_for_a_while_only() {
    let mut s = Servers::default();
    assert_eq!(s.on_lookup_failed(0), None, "nothing known: nothing to use");
    s.on_lookup(0, vec![cand("127.0.0.1:1001"), cand("127.0.0.1:1002")], 5);
    assert!(s.needs_lookup(5_000));
    assert_eq!(s.on_lookup_failed(5_000), Some(cand("127.0.0.1:1001")));
    assert!(
        !s.needs_lookup(5_000 + STALE_RETRY_SECS * 1000 - 1)
            && s.needs_lookup(5_000 + STALE_RETRY_SECS * 1000)
    );
    s.on_failure("127.0.0.1:1001".parse().unwrap());
    s.on_failure("127.0.0.1:1002".parse().unwrap());
    assert_eq!(
        s.on_lookup_failed(40_000),
        None,
        "every target failed: old answers are not used again"
    );
}
