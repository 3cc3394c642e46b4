//! Who may use the Phone API (`me`): an extension's session only; the
//! administrator, the API token and no session each get a 4xx saying why.
use super::*;
use axum::http::HeaderValue;

fn answer(panel: &Panel, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    me(panel, headers, &Extensions::new()).map_err(|e| {
        let r = e.into_response();
        let status = r.status();
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 4096)).expect("body");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        (status, v["error"].as_str().expect("error text").to_string())
    })
}

fn with_session(panel: &Panel, role: Role) -> HeaderMap {
    let id = panel.open(role).expect("a session");
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_str(&format!("{}={id}", super::super::sessions::COOKIE)).unwrap());
    h
}

#[test]
fn an_extensions_session_is_that_extension() {
    let panel = Panel::new(None);
    assert_eq!(answer(&panel, &with_session(&panel, Role::Extension("102".into()))), Ok("102".into()));
    assert_eq!(answer(&panel, &with_session(&panel, Role::AdminPhone("100".into()))), Ok("100".into()));
}

#[test]
fn no_session_is_401() {
    let panel = Panel::new(None);
    assert_eq!(answer(&panel, &HeaderMap::new()), Err((StatusCode::UNAUTHORIZED, "not signed in".into())));
    let mut forged = HeaderMap::new();
    forged.insert(header::COOKIE, HeaderValue::from_static("ha_pbx_session=forged0123456789forged0123456789forged01234"));
    assert_eq!(answer(&panel, &forged).unwrap_err().0, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_api_token_alone_is_told_it_has_no_extension() {
    let panel = Panel::new(None);
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer whatever-the-token-is"));
    let (status, why) = answer(&panel, &h).unwrap_err();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(why.contains("API token has no extension") && why.contains("sign in with an extension"), "{why}");
}

#[test]
fn the_administrators_session_is_403_naming_why() {
    let panel = Panel::new(None);
    let (status, why) = answer(&panel, &with_session(&panel, Role::Admin)).unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(why.contains("the phone is an extension's"), "{why}");
}

#[test]
fn a_group_member_that_answered_is_in_the_call() {
    let calls = crate::sip::b2bua::registry::CallRegistry::default();
    let _rx = calls.insert("c1", "101", "600");
    let ringing = calls.get("c1").unwrap();
    assert_eq!(other(&ringing, "102"), None, "a member is not in the call before it answers");
    calls.set_answered("c1");
    calls.set_answered_by("c1", "102");
    let call = calls.get("c1").unwrap();
    assert_eq!(other(&call, "102").as_deref(), Some("101"), "the door is the member's other party");
    assert_eq!(other(&call, "101").as_deref(), Some("102"), "and the member the door's");
    assert_eq!(other(&call, "103"), None, "another member is not in it");
    assert_eq!(party(&call, "102"), "600", "the member leaves (transfer) as the group's leg");
    assert_eq!(party(&call, "101"), "101");
    // Answered by the callee itself: nobody else is named.
    let _rx = calls.insert("c2", "101", "102");
    calls.set_answered_by("c2", "102");
    assert_eq!(calls.get("c2").unwrap().answered_by, None);
    // New parties (a transfer): the member who answered is no longer in it.
    calls.set_parties("c1", "101", "104");
    assert_eq!(calls.get("c1").unwrap().answered_by, None);
}
