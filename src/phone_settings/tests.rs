use super::*;

fn defaults() -> Settings {
    Settings { dnd: false, forward: ForwardConfig { no_answer: Some("600".into()), no_answer_secs: 15, ..Default::default() } }
}

#[test]
fn payloads_parse_and_bad_ones_name_the_field() {
    assert_eq!(Change::parse("dnd", b"ON"), Ok(Change::Dnd(true)));
    assert_eq!(Change::parse("dnd", b"off"), Ok(Change::Dnd(false)));
    let e = Change::parse("dnd", b"maybe").unwrap_err();
    assert!(e.starts_with("dnd: `maybe`"), "{e}");
    assert_eq!(Change::parse("forward_busy", b" 103 "), Ok(Change::Forward(Kind::Busy, Some("103".into()))));
    assert_eq!(Change::parse("forward_always", b""), Ok(Change::Forward(Kind::Always, None)));
    assert_eq!(Change::parse("forward_no_answer", b"agent"), Ok(Change::Forward(Kind::NoAnswer, Some("agent".into()))));
    let e = Change::parse("forward_busy", b"10 3").unwrap_err();
    assert!(e.starts_with("forward_busy: target `10 3` has the character ` `"), "{e}");
    let e = Change::parse("forward_busy", "x".repeat(33).as_bytes()).unwrap_err();
    assert!(e.starts_with("forward_busy: target longer"), "{e}");
    assert!(Change::parse("forward_busy", &[0xff, 0xfe]).unwrap_err().starts_with("forward_busy: payload is not UTF-8"));
    assert!(Change::parse("volume", b"1").is_err());
    assert_eq!(Change::parse("forward_no_answer_secs", b"25"), Ok(Change::NoAnswerSecs(25)));
    assert_eq!(Change::parse("forward_no_answer_secs", b"25.0"), Ok(Change::NoAnswerSecs(25)), "HA's number entity");
    for bad in [&b"0"[..], b"3601", b"2.5", b"-5", b"soon", b"", b"NaN", b"inf"] {
        let e = Change::parse("forward_no_answer_secs", bad).unwrap_err();
        assert!(e.starts_with("forward_no_answer_secs: `"), "{e}");
    }
    assert!(Change::is_field("forward_no_answer") && Change::is_field("dnd") && !Change::is_field("dial"));
}

#[test]
fn rows_round_trip_and_bad_rows_are_skipped() {
    for c in [Change::Dnd(true), Change::Dnd(false), Change::Forward(Kind::Busy, Some("103".into())), Change::Forward(Kind::NoAnswer, None), Change::NoAnswerSecs(45)] {
        let (f, v) = c.to_row();
        assert_eq!(Change::from_row(f, &v), Ok(c));
    }
    let rows = vec![
        ("102".to_string(), "dnd".to_string(), "on".to_string()),
        ("102".into(), "dnd".into(), "ON!".into()),
        ("102".into(), "colour".into(), "red".into()),
        ("103".into(), "forward_always".into(), "104".into()),
    ];
    let (t, skipped) = Table::from_rows(rows);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(t.effective("102", Settings::default()).dnd);
    assert_eq!(t.effective("103", Settings::default()).forward.always.as_deref(), Some("104"));
}

#[test]
fn targets_must_exist_and_not_be_the_extension() {
    let known = |n: &str| ["102", "103", "600", "agent"].contains(&n);
    assert_eq!(check("102", &Change::Forward(Kind::Busy, Some("103".into())), known), Ok(()));
    assert_eq!(check("102", &Change::Forward(Kind::Busy, None), known), Ok(()));
    assert_eq!(check("102", &Change::Dnd(true), known), Ok(()));
    let e = check("102", &Change::Forward(Kind::NoAnswer, Some("999".into())), known).unwrap_err();
    assert!(e.starts_with("forward_no_answer: `999` is not an extension"), "{e}");
    let e = check("102", &Change::Forward(Kind::Always, Some("102".into())), known).unwrap_err();
    assert!(e.starts_with("forward_always: an extension cannot forward to itself"), "{e}");
}

#[test]
fn changes_override_the_config_field_by_field() {
    let mut t = Table::default();
    assert_eq!(t.effective("102", defaults()), defaults(), "nothing changed: the config's values");
    assert!(!t.has_overrides("102"));
    t.apply("102", Change::Dnd(true));
    t.apply("102", Change::Forward(Kind::Busy, Some("103".into())));
    let s = t.effective("102", defaults());
    assert!(s.dnd);
    assert_eq!(s.forward.busy.as_deref(), Some("103"));
    assert_eq!(s.forward.no_answer.as_deref(), Some("600"), "a field never changed keeps the config's value");
    assert_eq!(s.forward.no_answer_secs, 15);
    // Clearing a forward the config sets overrides it with nothing.
    t.apply("102", Change::Forward(Kind::NoAnswer, None));
    t.apply("102", Change::Dnd(false));
    let s = t.effective("102", defaults());
    assert_eq!((s.dnd, s.forward.no_answer.as_deref()), (false, None));
    assert_eq!(t.effective("103", defaults()), defaults(), "other extensions untouched");
}

#[test]
fn shared_applies_in_place() {
    let s = Shared::new(Table::default());
    s.apply("104", Change::Dnd(true));
    assert!(s.effective("104", Settings::default()).dnd);
}

#[test]
fn no_answer_secs_overrides_and_forgetting_returns_to_the_config() {
    let mut t = Table::default();
    t.apply("102", Change::NoAnswerSecs(45));
    t.apply("102", Change::Dnd(true));
    let s = t.effective("102", defaults());
    assert_eq!((s.forward.no_answer_secs, s.forward.no_answer.as_deref(), s.dnd), (45, Some("600"), true));
    t.forget("102");
    assert_eq!(t.effective("102", defaults()), defaults());
    assert!(!t.has_overrides("102"));
}
