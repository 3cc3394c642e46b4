use super::*;
use crate::storage::credentials::Ha1;

fn t0() -> Instant {
    Instant::now()
}

#[test]
fn the_one_time_link_works_once() {
    let now = t0();
    let mut s = Sessions::new(Some("link-token".into()), SESSION_TTL, 10);
    assert_eq!(s.redeem_login("wrong", now, "a".into()), None);
    assert_eq!(s.redeem_login("link-token", now, "b".into()).as_deref(), Some("b"));
    assert_eq!(s.role("b", now), Some(Role::Admin));
    assert_eq!(s.redeem_login("link-token", now, "c".into()), None, "used up");
    assert_eq!(s.role("c", now), None);
}

#[test]
fn no_link_without_a_token() {
    let mut s = Sessions::new(None, SESSION_TTL, 10);
    assert_eq!(s.redeem_login("", t0(), "a".into()), None);
    assert!(s.is_empty());
}

#[test]
fn sessions_expire_unless_used() {
    let now = t0();
    let ttl = Duration::from_secs(100);
    let mut s = Sessions::new(None, ttl, 10);
    s.open(Role::Extension("110".into()), now, "x".into());
    assert_eq!(s.role("x", now + Duration::from_secs(90)), Some(Role::Extension("110".into())));
    assert!(s.role("x", now + Duration::from_secs(180)).is_some(), "use renewed it");
    assert_eq!(s.role("x", now + Duration::from_secs(281)), None);
    assert!(s.is_empty(), "expired one removed");
}

#[test]
fn unknown_and_closed_sessions_have_no_role() {
    let now = t0();
    let mut s = Sessions::new(None, SESSION_TTL, 10);
    s.open(Role::Admin, now, "x".into());
    assert_eq!(s.role("y", now), None);
    s.close("x");
    assert_eq!(s.role("x", now), None);
}

#[test]
fn the_table_is_bounded() {
    let now = t0();
    let mut s = Sessions::new(None, SESSION_TTL, 3);
    for i in 0..5u64 {
        s.open(Role::Extension(i.to_string()), now + Duration::from_secs(i), format!("s{i}"));
    }
    assert_eq!(s.len(), 3);
    assert_eq!(s.role("s0", now + Duration::from_secs(5)), None, "oldest went first");
    assert!(s.role("s4", now + Duration::from_secs(5)).is_some());
}

#[test]
fn closing_an_extension_ends_its_sessions_only() {
    let now = t0();
    let mut s = Sessions::new(None, SESSION_TTL, 10);
    s.open(Role::Extension("110".into()), now, "a".into());
    s.open(Role::Extension("111".into()), now, "b".into());
    s.close_extension("110");
    assert_eq!(s.role("a", now), None);
    assert!(s.role("b", now).is_some());
}

fn row(ext: &str, realm: &str, password: &str) -> ExtensionRow {
    let h = Ha1::from_password(ext, realm, password);
    ExtensionRow { extension: ext.into(), source: "config".into(), ha1_realm: Some(realm.into()), ha1_md5: h.md5, ha1_sha256: h.sha256, ..Default::default() }
}

#[test]
fn password_is_checked_against_the_stored_ha1() {
    let r = row("110", "ha-pbx", "secret110");
    assert!(password_matches(Some(&r), "ha-pbx", "secret110"));
    assert!(!password_matches(Some(&r), "ha-pbx", "secret111"));
    assert!(!password_matches(Some(&r), "ha-pbx", ""));
    assert!(!password_matches(None, "ha-pbx", "secret110"), "unknown extension");
    assert!(!password_matches(Some(&r), "other-realm", "secret110"), "no credential for that realm");
    let kept = ExtensionRow { extension: "111".into(), password: "pw111".into(), source: "panel".into(), ..Default::default() };
    assert!(password_matches(Some(&kept), "ha-pbx", "pw111"), "a kept password's HA1 is computed");
}

#[test]
fn cookie_parsing() {
    assert_eq!(cookie_session("a=1; ha_pbx_session=abc; b=2"), Some("abc"));
    assert_eq!(cookie_session("ha_pbx_session="), None);
    assert_eq!(cookie_session("other=x"), None);
    assert_eq!(cookie_session("garbage;;;="), None);
    assert!(set_cookie("id", SESSION_TTL).contains("HttpOnly; SameSite=Strict"));
}

#[test]
fn websocket_origin_must_be_the_panels_own() {
    assert!(same_origin(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
    assert!(same_origin(Some("https://pbx.local"), Some("PBX.local")));
    assert!(!same_origin(Some("http://evil.example"), Some("127.0.0.1:8080")));
    assert!(!same_origin(Some("http://127.0.0.1:8081"), Some("127.0.0.1:8080")));
    assert!(!same_origin(None, Some("127.0.0.1:8080")), "no Origin: no cookie identity");
    assert!(!same_origin(Some("null"), Some("127.0.0.1:8080")));
    assert!(!same_origin(Some("http://"), Some("")));
}
