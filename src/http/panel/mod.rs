//! The panel: the page and its files, embedded in the binary (web/), the
//! administration API (`admin`) and the Phone page's. Standalone, who a
//! request is comes from a session cookie (sign-in with an extension and its
//! SIP password, or the one-time administrator link). In add-on mode
//! ([`Panel::ingress`]) there is no sign-in: the add-on's middleware puts a
//! [`Vouched`] role into each request from the ingress proxy's user headers,
//! and the add-on's SIP Core page is `addon/panel.rs`.
mod admin;
mod csv;
mod history;
mod diagnostics;
mod phone;
mod account;
mod qr;
pub mod sessions;

use self::sessions::{Role, Sessions, SESSION_TTL};
use super::api::ApiError;
use crate::sip::core::SipCoreRef;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const PANEL_CSS: &str = include_str!("../../../web/panel.css");
const PANEL_JS: &str = include_str!("../../../web/panel.js");
const PHONE_JS: &str = include_str!("../../../web/phone.js");
const DIAGNOSTICS_JS: &str = include_str!("../../../web/diagnostics.js");
const MESSAGES_JS: &str = include_str!("../../../web/messages.js");
/// JsSIP 3.10.6, bundled and minified (web/vendor/README.md says how).
const JSSIP_JS: &str = include_str!("../../../web/vendor/jssip-3.10.6.min.js");

/// Length of session ids (62 symbols: ~256 bits).
const SESSION_ID_LEN: usize = 43;
/// Length of the one-time link's token.
pub const LOGIN_TOKEN_LEN: usize = 32;

/// The panel's state: its sessions. Carried as an `Extension` on every route,
/// so the call-control API (`api.rs`) also takes an administrator's session.
pub struct Panel {
    sessions: Mutex<Sessions>,
    /// Add-on mode: roles come only from [`Vouched`]; no sign-in, no cookies.
    ingress: bool,
}

/// Who the embedding vouches a request is (add-on mode: the Home Assistant
/// user the ingress proxy names, an administrator or not, with their
/// extension), put into the request's extensions by its middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched(pub Role);

impl Panel {
    /// `login_token`: the one-time administrator link's token, if one was made.
    pub fn new(login_token: Option<String>) -> Arc<Panel> {
        Arc::new(Panel { sessions: Mutex::new(Sessions::new(login_token, SESSION_TTL, sessions::MAX_SESSIONS)), ingress: false })
    }

    /// The panel behind Home Assistant's ingress: who is who only from [`Vouched`].
    pub fn ingress() -> Arc<Panel> {
        Arc::new(Panel { sessions: Mutex::new(Sessions::new(None, SESSION_TTL, 1)), ingress: true })
    }

    pub fn is_ingress(&self) -> bool {
        self.ingress
    }

    /// The request's role: the embedding's [`Vouched`] one, else (standalone)
    /// that of the live session the cookie names.
    pub fn role(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<Role> {
        if let Some(Vouched(role)) = extensions.get::<Vouched>() {
            return Some(role.clone());
        }
        if self.ingress {
            return None;
        }
        let cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(sessions::cookie_session)?;
        self.sessions.lock().ok()?.role(cookie, Instant::now())
    }

    /// The extension whose phone a `/ws` upgrade is: a live extension
    /// session's cookie on a request from the panel's own origin (a page on
    /// another site cannot borrow the cookie for a socket). Administrator
    /// sessions, other origins and no session: `None` (digest as before).
    pub fn phone_extension(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<String> {
        // through ingress Home Assistant has authenticated the user already
        if let Some(Vouched(role)) = extensions.get::<Vouched>() {
            return role.extension().map(str::to_string);
        }
        if self.ingress {
            return None;
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if !sessions::same_origin(origin, host) {
            return None;
        }
        match self.role(headers, extensions)? {
            Role::Extension(e) => Some(e),
            Role::Admin | Role::AdminPhone(_) => None,
        }
    }

    fn open(&self, role: Role) -> Option<String> {
        let id = crate::storage::credentials::random_secret(SESSION_ID_LEN);
        Some(self.sessions.lock().ok()?.open(role, Instant::now(), id))
    }

    fn close_extension(&self, extension: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.close_extension(extension);
        }
    }
}

/// A random token for the one-time link.
pub fn new_login_token() -> String {
    crate::storage::credentials::random_secret(LOGIN_TOKEN_LEN)
}

/// The panel's routes, with `panel` as an `Extension` on them all (add it
/// to the whole router with [`layer`]).
pub fn routes(core: SipCoreRef) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/panel.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], PANEL_CSS) }))
        .route("/panel.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PANEL_JS) }))
        .route("/phone.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PHONE_JS) }))
        .route("/diagnostics.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], DIAGNOSTICS_JS) }))
        .route("/messages.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], MESSAGES_JS) }))
        .route("/api/session", get(whoami).post(sign_in).delete(sign_out))
        .route("/vendor/jssip-3.10.6.min.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=86400")], JSSIP_JS) }))
        .merge(admin::routes(core.clone()))
        .merge(history::routes(core.clone()))
        .merge(diagnostics::routes(core.clone()))
        .merge(phone::routes())
        .with_state(core)
}

/// `router` with the panel's routes, `panel` reachable from every route.
pub fn layer(router: Router, core: SipCoreRef, panel: Arc<Panel>) -> Router {
    router.merge(routes(core)).layer(axum::Extension(panel))
}

#[derive(Deserialize)]
pub(crate) struct IndexQuery {
    pub(crate) login: Option<String>,
}

/// The page; with `?login=TOKEN` (the one-time link) an administrator
/// session is opened and the browser sent on to `./`, so the token does not
/// stay in its address bar or history.
async fn index(panel: axum::Extension<Arc<Panel>>, Query(q): Query<IndexQuery>, ConnectInfo(remote): ConnectInfo<SocketAddr>, State(core): State<SipCoreRef>) -> Response {
    let page = ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], INDEX_HTML);
    let Some(token) = q.login.filter(|_| !panel.ingress) else {
        return page.into_response();
    };
    let ip = remote.ip();
    if core.api_banned(ip, Instant::now()) {
        return (StatusCode::TOO_MANY_REQUESTS, "too many wrong sign-ins from this address").into_response();
    }
    let id = crate::storage::credentials::random_secret(SESSION_ID_LEN);
    let opened = panel.sessions.lock().ok().and_then(|mut s| s.redeem_login(&token, Instant::now(), id));
    match opened {
        Some(id) => {
            tracing::info!(%ip, "panel: administrator signed in with the one-time link (it no longer works)");
            (StatusCode::SEE_OTHER, [(header::LOCATION, "./".to_string()), (header::SET_COOKIE, sessions::set_cookie(&id, SESSION_TTL))]).into_response()
        }
        None => {
            if core.api_token_failed(ip, Instant::now()) {
                tracing::warn!(%ip, "too many wrong sign-ins: address refused for {} s", core.config.security.ban_secs);
            }
            tracing::warn!(%ip, "panel: sign-in link refused (used already, or wrong)");
            (StatusCode::SEE_OTHER, [(header::LOCATION, "./#link-used")]).into_response()
        }
    }
}

fn role_json(role: &Role) -> serde_json::Value {
    json!({"role": if role.is_admin() { "admin" } else { "extension" }, "extension": role.extension()})
}

async fn whoami(panel: axum::Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> Result<Json<serde_json::Value>, ApiError> {
    match panel.role(&headers, &extensions) {
        Some(role) => {
            let mut v = role_json(&role);
            // through ingress there is no signing out: Home Assistant signed the user in
            v["via"] = json!(if panel.ingress { "ingress" } else { "session" });
            v["sip_server"] = json!(core.sip_server());
            v["agent"] = json!(core.agent().map(|a| a.extension.clone()));
            Ok(Json(v))
        }
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "not signed in")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    pub(crate) extension: String,
    pub(crate) password: String,
}

/// Sign-in with an extension and its SIP password. Wrong ones count like
/// wrong API tokens (`security.ban_after_failures` per address, then 429).
async fn sign_in(panel: axum::Extension<Arc<Panel>>, State(core): State<SipCoreRef>, ConnectInfo(remote): ConnectInfo<SocketAddr>, body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>) -> Response {
    let ip = remote.ip();
    if panel.ingress {
        // every browser comes from the proxy's one address: wrong guesses
        // would ban everyone; Home Assistant has signed the user in anyway
        return ApiError::new(StatusCode::FORBIDDEN, "no sign-in through Home Assistant: open the panel from its sidebar").into_response();
    }
    if core.api_banned(ip, Instant::now()) {
        let retry = core.config.security.ban_secs.to_string();
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry)], Json(json!({"error": "too many wrong sign-ins from this address; try again later"}))).into_response();
    }
    let Ok(Json(b)) = body else {
        return ApiError::new(StatusCode::BAD_REQUEST, r#"body must be {"extension": "...", "password": "..."}"#).into_response();
    };
    let row = core.extension(&b.extension);
    if !sessions::password_matches(row.as_ref(), &core.config.sip.realm, &b.password) {
        if core.api_token_failed(ip, Instant::now()) {
            tracing::warn!(%ip, "too many wrong sign-ins: address refused for {} s", core.config.security.ban_secs);
        }
        // Only a well-formed number goes into the log: no control characters from a client.
        let shown = if crate::config::validate::valid_extension(&b.extension) { b.extension.as_str() } else { "(not an extension number)" };
        tracing::warn!(%ip, extension = %shown, "panel: sign-in refused (unknown extension or wrong password)");
        return ApiError::new(StatusCode::UNAUTHORIZED, "wrong extension or password").into_response();
    }
    let role = Role::Extension(b.extension.clone());
    let Some(id) = panel.open(role.clone()) else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "sessions unavailable").into_response();
    };
    tracing::info!(%ip, extension = %b.extension, "panel: extension signed in");
    (StatusCode::OK, [(header::SET_COOKIE, sessions::set_cookie(&id, SESSION_TTL))], Json(role_json(&role))).into_response()
}

async fn sign_out(panel: axum::Extension<Arc<Panel>>, headers: HeaderMap) -> Response {
    if let Some(id) = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(sessions::cookie_session)
        && let Ok(mut s) = panel.sessions.lock()
    {
        s.close(id);
    }
    (StatusCode::OK, [(header::SET_COOKIE, sessions::clear_cookie())], Json(json!({"signed_out": true}))).into_response()
}
