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
