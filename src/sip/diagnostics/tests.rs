use super::*;

fn rec(key: Key, source: &str, status: u16, reason: Reason) -> Record<'static> {
    Record {
        key,
        method: "REGISTER",
        request_uri: "sip:pbx.lan",
        source: source.parse().unwrap(),
        transport: "udp",
        status,
        reason,
        user: None,
    }
}

fn ext(e: &str) -> Key {
    Key::Extension(e.to_string())
}

#[test]
fn newest_first_and_at_most_per_key() {
    let mut log = DiagnosticsLog::default();
    for i in 0..(PER_KEY as i64 + 5) {
        log.record(
            rec(ext("101"), "10.0.0.2:5060", 403, Reason::WrongPassword),
            i,
        );
    }
    log.record(
        rec(ext("101"), "10.0.0.2:5060", 200, Reason::Registered),
        100,
    );
    let snap = log.snapshot();
    assert_eq!(snap.len(), 1);
    let (key, list) = &snap[0];
    assert_eq!(key, &ext("101"));
    assert_eq!(list.len(), PER_KEY);
    assert_eq!(
        (list[0].status, list[0].at_unix_ms, &list[0].reason),
        (200, 100, &Reason::Registered)
    );
    assert_eq!(list[PER_KEY - 1].at_unix_ms, 6, "the oldest went first");
}

#[test]
fn a_scanner_cycling_names_fills_one_list_and_cycling_addresses_is_bounded() {
    let mut log = DiagnosticsLog::default();
    log.record(rec(ext("101"), "10.0.0.2:5060", 200, Reason::Registered), 0);
    // thousands of user names from one address: one key
    for i in 0..5000 {
        let user = format!("user{i}");
        log.record(
            Record {
                user: Some(&user),
                ..rec(
                    Key::Source("192.0.2.9".parse().unwrap()),
                    "192.0.2.9:5060",
                    403,
                    Reason::UnknownExtension,
                )
            },
            i,
        );
    }
    assert_eq!(log.keys(), 2);
    // thousands of addresses: at most MAX_SOURCES of them, the extension stays
    for i in 0..5000u32 {
        let ip = IpAddr::from(std::net::Ipv6Addr::from(
            0x2001_0db8_u128 << 96 | u128::from(i),
        ));
        log.record(
            rec(
                Key::Source(ip),
                &format!("[{ip}]:5060"),
                403,
                Reason::UnknownExtension,
            ),
            10_000 + i64::from(i),
        );
    }
    assert_eq!(log.keys(), MAX_SOURCES + 1);
    let snap = log.snapshot();
    assert_eq!(
        snap[0].0,
        ext("101"),
        "a scanner never pushes out an extension"
    );
    // the most recent addresses are the ones kept
    let newest = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | 4999));
    assert!(snap.iter().any(|(k, _)| *k == Key::Source(newest)));
    assert!(
        !snap
            .iter()
            .any(|(k, _)| *k == Key::Source("192.0.2.9".parse().unwrap()))
    );
}

#[test]
fn extensions_are_capped_and_forgotten() {
    let mut log = DiagnosticsLog::default();
    for i in 0..(MAX_EXTENSIONS + 10) {
        log.record(
            rec(
                ext(&i.to_string()),
                "10.0.0.2:5060",
                200,
                Reason::Registered,
            ),
            i as i64,
        );
    }
    assert_eq!(log.keys(), MAX_EXTENSIONS);
    assert!(
        !log.snapshot().iter().any(|(k, _)| *k == ext("0")),
        "the least recent went"
    );
    log.forget_extension("20");
    assert_eq!(log.keys(), MAX_EXTENSIONS - 1);
}

#[test]
fn what_is_kept_is_sanitised() {
    let mut log = DiagnosticsLog::default();
    let user = format!("evil\r\n{}", "x".repeat(100));
    log.record(
        Record {
            request_uri: "sip:101:secret@pbx.lan",
            user: Some(&user),
            ..rec(
                Key::Source("192.0.2.1".parse().unwrap()),
                "192.0.2.1:5060",
                403,
                Reason::UnknownExtension,
            )
        },
        1,
    );
    let snap = log.snapshot();
    let e = &snap[0].1[0];
    assert_eq!(e.request, "REGISTER sip:101@pbx.lan");
    let u = e.user.as_deref().unwrap();
    assert!(
        !u.contains('\r') && u.chars().count() == reason::MAX_USER,
        "{u:?}"
    );
    assert!(!format!("{e:?}").contains("secret"));
}
