use super::*;

const LIMITS: Limits = Limits { min_expires: 60, max_expires: 3600, default_expires: 3600, max_contacts: 6 };

fn req(uris: &[&str], expires: Option<u32>, call_id: &str, cseq: u32) -> RegisterRequest {
    RegisterRequest {
        contacts: uris
            .iter()
            .map(|u| ContactRequest { uri: u.to_string(), expires: None, instance_id: None, reg_id: None })
            .collect(),
        wildcard: false,
        expires_header: expires,
        call_id: call_id.into(),
        cseq,
        source: "127.0.0.1:5070".into(),
        transport: Transport::Udp,
        user_agent: None,
    }
}

#[test]
fn register_refresh_and_expire() {
    let mut t = BindingTable::default();
    let ch = t.register("101", &req(&["sip:101@10.0.0.1"], Some(120), "c1", 1), &LIMITS, 1000).unwrap();
    assert!(matches!(&ch[..], [Change::Added(b)] if b.expires_at == 1120));
    let ch = t.register("101", &req(&["sip:101@10.0.0.1"], Some(120), "c1", 2), &LIMITS, 1100).unwrap();
    assert!(matches!(&ch[..], [Change::Refreshed(b)] if b.expires_at == 1220 && b.registered_at == 1000));
    assert_eq!(t.lookup("101", 1219).len(), 1);
    assert!(t.lookup("101", 1220).is_empty());
    assert_eq!(t.sweep(1220).len(), 1);
    assert_eq!(t.binding_count(), 0);
}

#[test]
fn expires_is_clamped_and_too_brief_is_refused() {
    let mut t = BindingTable::default();
    assert_eq!(t.register("101", &req(&["sip:a@x"], Some(30), "c", 1), &LIMITS, 0), Err(RegisterError::IntervalTooBrief(60)));
    t.register("101", &req(&["sip:a@x"], Some(99999), "c", 2), &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("101", 0)[0].expires_at, 3600);
    t.register("102", &req(&["sip:b@x"], None, "c", 1), &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("102", 0)[0].expires_at, 3600);
}

#[test]
fn six_contacts_and_the_oldest_replaced_past_the_limit() {
    let mut t = BindingTable::default();
    for i in 0..6 {
        t.register("101", &req(&[&format!("sip:d{i}@x")], Some(600), &format!("c{i}"), 1), &LIMITS, i).unwrap();
    }
    assert_eq!(t.lookup("101", 10).len(), 6);
    let ch = t.register("101", &req(&["sip:d6@x"], Some(600), "c6", 1), &LIMITS, 10).unwrap();
    assert!(ch.contains(&Change::Removed { contact_uri: "sip:d0@x".into(), reason: "replaced" }));
    let uris: Vec<_> = t.lookup("101", 10).into_iter().map(|b| b.contact_uri).collect();
    assert_eq!(uris.len(), 6);
    assert!(!uris.contains(&"sip:d0@x".to_string()));
}

#[test]
fn unregister_one_and_wildcard() {
    let mut t = BindingTable::default();
    t.register("101", &req(&["sip:a@x", "sip:b@x"], Some(600), "c", 1), &LIMITS, 0).unwrap();
    let ch = t.register("101", &req(&["sip:a@x"], Some(0), "c", 2), &LIMITS, 1).unwrap();
    assert_eq!(ch, vec![Change::Removed { contact_uri: "sip:a@x".into(), reason: "unregistered" }]);
    assert_eq!(t.lookup("101", 1).len(), 1);
    let mut star = req(&[], Some(0), "c", 3);
    star.wildcard = true;
    assert_eq!(t.register("101", &star, &LIMITS, 2).unwrap().len(), 1);
    assert!(!t.is_registered("101", 2));
    star.expires_header = Some(60);
    assert_eq!(t.register("101", &star, &LIMITS, 2), Err(RegisterError::BadWildcard));
}

#[test]
fn out_of_order_cseq_is_refused() {
    let mut t = BindingTable::default();
    t.register("101", &req(&["sip:a@x"], Some(600), "c", 5), &LIMITS, 0).unwrap();
    assert_eq!(t.register("101", &req(&["sip:a@x"], Some(600), "c", 5), &LIMITS, 1), Err(RegisterError::OutOfOrder));
    // A new Call-ID (device rebooted) may start again at 1.
    assert!(t.register("101", &req(&["sip:a@x"], Some(600), "other", 1), &LIMITS, 1).is_ok());
}

#[test]
fn same_instance_new_uri_replaces() {
    let mut t = BindingTable::default();
    let mut r = req(&["sip:a@10.0.0.1"], Some(600), "c", 1);
    r.contacts[0].instance_id = Some("<urn:uuid:1>".into());
    t.register("101", &r, &LIMITS, 0).unwrap();
    let mut r2 = req(&["sip:a@10.0.0.2"], Some(600), "c2", 1);
    r2.contacts[0].instance_id = Some("<urn:uuid:1>".into());
    t.register("101", &r2, &LIMITS, 1).unwrap();
    let b = t.lookup("101", 1);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact_uri, "sip:a@10.0.0.2");
}

#[test]
fn delivery_address_follows_nat_rules() {
    let mut t = BindingTable::default();
    let mut r = req(&["sip:101@127.0.0.1:6000;transport=udp"], Some(600), "c", 1);
    t.register("101", &r, &LIMITS, 0).unwrap();
    // Same IP as the source: the Contact's port is where the device listens.
    assert_eq!(t.lookup("101", 0)[0].delivery_address(), "127.0.0.1:6000");
    // A private address behind NAT: only the source reaches it.
    r.contacts[0].uri = "sip:102@192.168.1.20:5060".into();
    t.register("102", &r, &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("102", 0)[0].delivery_address(), "127.0.0.1:5070");
    r.contacts[0].uri = "sip:103@phone.invalid".into();
    t.register("103", &r, &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("103", 0)[0].delivery_address(), "127.0.0.1:5070");
    // Streams always go back over the device's own connection.
    r.contacts[0].uri = "sip:104@127.0.0.1:6000;transport=tcp".into();
    r.transport = Transport::Tcp;
    t.register("104", &r, &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("104", 0)[0].delivery_address(), "127.0.0.1:5070");
    // Port defaults to 5060 when the Contact names none.
    r.transport = Transport::Udp;
    r.contacts[0].uri = "sip:105@127.0.0.1".into();
    t.register("105", &r, &LIMITS, 0).unwrap();
    assert_eq!(t.lookup("105", 0)[0].delivery_address(), "127.0.0.1:5060");
}

#[test]
fn a_closed_flow_takes_only_its_own_bindings() {
    let mut t = BindingTable::default();
    let mut ws = req(&["sip:x@abc.invalid;transport=ws"], Some(600), "c1", 1);
    ws.transport = Transport::Ws;
    ws.source = "127.0.0.1:40000".into();
    t.register("102", &ws, &LIMITS, 0).unwrap();
    t.register("102", &req(&["sip:102@10.0.0.2"], Some(600), "c2", 1), &LIMITS, 0).unwrap();
    assert!(t.remove_flow(Transport::Ws, "127.0.0.1:40001").is_empty(), "another socket");
    let gone = t.remove_flow(Transport::Ws, "127.0.0.1:40000");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, "102");
    assert_eq!(t.lookup("102", 1).len(), 1, "the UDP phone stays");
}
