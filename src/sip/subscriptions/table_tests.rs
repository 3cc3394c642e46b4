use super::*;

const LIMITS: Limits = Limits { min_expires: 60, max_expires: 3600, default_expires: 600, max_per_extension: 3, max_total: 5 };

fn peer() -> Peer {
    Peer { remote_target: "sip:102@10.0.0.2:5062".into(), route_set: vec![], destination: "10.0.0.2:5062".into(), transport: "udp".into() }
}

fn sub(owner: &str, package: Package, target: &str, call_id: &str, expires: Option<u32>) -> Subscribe {
    Subscribe {
        owner: owner.into(),
        package,
        event_id: None,
        target: target.into(),
        target_known: true,
        expires,
        call_id: call_id.into(),
        remote_tag: format!("rt-{call_id}"),
        to_tag: None,
        remote_uri: format!("<sip:{owner}@pbx>;tag=rt-{call_id}"),
        local_uri: format!("sip:{target}@pbx"),
        peer: peer(),
    }
}

fn refresh(owner: &str, package: Package, call_id: &str, local_tag: &str, expires: Option<u32>) -> Subscribe {
    Subscribe { to_tag: Some(local_tag.into()), ..sub(owner, package, "101", call_id, expires) }
}

#[test]
fn packages_are_read_from_the_event_header() {
    assert_eq!(Package::parse("dialog"), Some(Package::Dialog));
    assert_eq!(Package::parse("Dialog;id=7"), Some(Package::Dialog));
    assert_eq!(Package::parse(" message-summary "), Some(Package::MessageSummary));
    assert_eq!(Package::parse("presence"), None);
    assert_eq!(Package::parse(""), None);
    assert_eq!(Package::parse("dialogx"), None);
}

#[test]
fn a_new_subscription_is_accepted_and_notified_at_once() {
    let mut t = Table::new(LIMITS);
    let a = t.subscribe(sub("102", Package::Dialog, "101", "c1", Some(120)), "lt1".into(), 1000).unwrap();
    assert_eq!((a.expires, a.local_tag.as_str()), (120, "lt1"));
    let n = a.notify;
    assert_eq!((n.cseq, n.version, n.state), (1, 0, SubState::Active { expires: 120 }));
    assert_eq!(n.ids, DialogIds { call_id: "c1".into(), remote_tag: "rt-c1".into(), local_tag: "lt1".into() });
    assert_eq!(n.state.header(), "active;expires=120");
    assert_eq!(t.len(), 1);
}

#[test]
fn expires_is_bounded_and_defaulted() {
    let mut t = Table::new(LIMITS);
    assert_eq!(t.subscribe(sub("102", Package::Dialog, "101", "a", Some(59)), "x".into(), 0), Err(Refusal::IntervalTooBrief(60)));
    assert_eq!(Refusal::IntervalTooBrief(60).status(), 423);
    assert_eq!(t.subscribe(sub("102", Package::Dialog, "101", "b", Some(99999)), "y".into(), 0).unwrap().expires, 3600);
    assert_eq!(t.subscribe(sub("102", Package::Dialog, "101", "c", None), "z".into(), 0).unwrap().expires, 600);
}

#[test]
fn unknown_targets_and_other_mailboxes_are_refused() {
    let mut t = Table::new(LIMITS);
    let unknown = Subscribe { target_known: false, ..sub("102", Package::Dialog, "999", "a", None) };
    assert_eq!(t.subscribe(unknown, "x".into(), 0), Err(Refusal::UnknownTarget));
    assert_eq!(t.subscribe(sub("102", Package::MessageSummary, "101", "b", None), "x".into(), 0), Err(Refusal::NotYours));
    assert!(t.subscribe(sub("102", Package::MessageSummary, "102", "c", None), "x".into(), 0).is_ok());
    assert_eq!((Refusal::UnknownTarget.status(), Refusal::NotYours.status()), (404, 403));
}

#[test]
fn refresh_extends_and_counts_cseq_and_version_up() {
    let mut t = Table::new(LIMITS);
    t.subscribe(sub("102", Package::Dialog, "101", "c1", Some(120)), "lt".into(), 0).unwrap();
    let a = t.subscribe(refresh("102", Package::Dialog, "c1", "lt", Some(300)), "unused".into(), 100).unwrap();
    assert_eq!((a.expires, a.local_tag.as_str(), a.notify.cseq, a.notify.version), (300, "lt", 2, 1));
    assert!(t.expire(399).is_empty(), "refreshed until 400");
    assert_eq!(t.expire(400).len(), 1);
}

#[test]
fn a_refresh_of_an_unknown_dialog_gets_481_and_of_another_owner_403() {
    let mut t = Table::new(LIMITS);
    assert_eq!(t.subscribe(refresh("102", Package::Dialog, "nope", "lt", None), "x".into(), 0), Err(Refusal::NoSuchSubscription));
    t.subscribe(sub("102", Package::Dialog, "101", "c1", None), "lt".into(), 0).unwrap();
    assert_eq!(t.subscribe(refresh("103", Package::Dialog, "c1", "lt", None), "x".into(), 0), Err(Refusal::NotYours));
    assert_eq!(t.subscribe(refresh("102", Package::MessageSummary, "c1", "lt", None), "x".into(), 0), Err(Refusal::NoSuchSubscription));
    assert_eq!(Refusal::NoSuchSubscription.status(), 481);
}

#[test]
fn expires_zero_unsubscribes_with_a_final_notify() {
    let mut t = Table::new(LIMITS);
    t.subscribe(sub("102", Package::Dialog, "101", "c1", None), "lt".into(), 0).unwrap();
    let a = t.subscribe(refresh("102", Package::Dialog, "c1", "lt", Some(0)), "x".into(), 5).unwrap();
    assert_eq!(a.expires, 0);
    assert_eq!(a.notify.state, SubState::Terminated { reason: "timeout" });
    assert_eq!(a.notify.state.header(), "terminated;reason=timeout");
    assert_eq!(a.notify.cseq, 2);
    assert!(t.is_empty());
    // a fetch: one NOTIFY, nothing kept, no cap counted
    let f = t.subscribe(sub("102", Package::Dialog, "101", "c2", Some(0)), "f".into(), 5).unwrap();
    assert_eq!(f.notify.state, SubState::Terminated { reason: "timeout" });
    assert!(t.is_empty());
}

#[test]
fn caps_per_extension_and_in_total_refuse_more() {
    let mut t = Table::new(LIMITS);
    for i in 0..3 {
        t.subscribe(sub("102", Package::Dialog, "101", &format!("a{i}"), None), format!("t{i}"), 0).unwrap();
    }
    assert_eq!(t.subscribe(sub("102", Package::Dialog, "101", "a9", None), "x".into(), 0), Err(Refusal::ExtensionFull));
    assert_eq!(t.count_of("102"), 3);
    for i in 0..2 {
        t.subscribe(sub("103", Package::Dialog, "101", &format!("b{i}"), None), format!("u{i}"), 0).unwrap();
    }
    assert_eq!(t.subscribe(sub("104", Package::Dialog, "101", "c", None), "x".into(), 0), Err(Refusal::TableFull));
    assert_eq!(Refusal::TableFull.status(), 503);
    assert_eq!(t.len(), 5);
    // a refresh is no new subscription: allowed at the cap
    assert!(t.subscribe(refresh("102", Package::Dialog, "a0", "t0", None), "x".into(), 1).is_ok());
    assert_eq!(t.len(), 5);
}

#[test]
fn changes_notify_only_matching_subscriptions() {
    let mut t = Table::new(LIMITS);
    t.subscribe(sub("102", Package::Dialog, "101", "a", Some(100)), "t1".into(), 0).unwrap();
    t.subscribe(sub("103", Package::Dialog, "104", "b", Some(100)), "t2".into(), 0).unwrap();
    t.subscribe(sub("101", Package::MessageSummary, "101", "c", Some(100)), "t3".into(), 0).unwrap();
    let n = t.changed(Package::Dialog, &["101".into()], 40);
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].target.as_str(), n[0].cseq, n[0].version, n[0].state), ("101", 2, 1, SubState::Active { expires: 60 }));
    let m = t.changed(Package::MessageSummary, &["101".into()], 40);
    assert_eq!((m.len(), m[0].owner.as_str()), (1, "101"));
    assert!(t.changed(Package::Dialog, &["999".into()], 40).is_empty());
}

#[test]
fn expiry_and_failures_remove_subscriptions() {
    let mut t = Table::new(LIMITS);
    let a = t.subscribe(sub("102", Package::Dialog, "101", "a", Some(100)), "t1".into(), 0).unwrap();
    t.subscribe(sub("102", Package::Dialog, "101", "b", Some(200)), "t2".into(), 0).unwrap();
    assert_eq!(t.next_deadline(), Some(100));
    assert!(t.expire(99).is_empty());
    let gone = t.expire(100);
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].id, gone[0].state), (a.notify.id, SubState::Terminated { reason: "timeout" }));
    assert_eq!(t.next_deadline(), Some(200));
    // a dialog that expired is gone: its refresh is 481
    assert_eq!(t.subscribe(refresh("102", Package::Dialog, "a", "t1", None), "x".into(), 101), Err(Refusal::NoSuchSubscription));
    let b = t.changed(Package::Dialog, &["101".into()], 101);
    assert!(t.notify_failed(b[0].id));
    assert!(!t.notify_failed(b[0].id));
    assert!(t.is_empty());
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn a_removed_extension_loses_its_subscriptions_and_its_watchers() {
    let mut t = Table::new(LIMITS);
    t.subscribe(sub("102", Package::Dialog, "101", "a", None), "t1".into(), 0).unwrap();
    t.subscribe(sub("101", Package::Dialog, "103", "b", None), "t2".into(), 0).unwrap();
    t.subscribe(sub("103", Package::Dialog, "104", "c", None), "t3".into(), 0).unwrap();
    let gone = t.extension_removed("101");
    let states: Vec<_> = gone.iter().map(|n| (n.owner.as_str(), n.state)).collect();
    assert_eq!(states, vec![("101", SubState::Terminated { reason: "rejected" }), ("102", SubState::Terminated { reason: "noresource" })]);
    assert_eq!(t.len(), 1);
}
