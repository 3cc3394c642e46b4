//! Call control over HTTP (`/api/...`), behind a bearer token
//! (`http.api_token`; the API is off without one). Errors are 4xx with a
//! JSON `{"error": "..."}` naming what was wrong.
use crate::sip::control::{self, ControlError};
use crate::sip::core::SipCoreRef;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Instant;

type Reply = (StatusCode, Json<Value>);

pub fn routes(core: SipCoreRef) -> Router<SipCoreRef> {
    Router::new()
        .route("/api/calls", get(list).post(dial))
        .route("/api/calls/{id}", delete(hang_up))
        .route("/api/calls/{id}/dtmf", post(dtmf))
        .route("/api/calls/{id}/transfer", post(transfer))
        .route("/api/calls/{id}/answer", post(answer))
        .route("/api/calls/{id}/agent", post(answer_with_agent))
        .route("/api/messages", get(messages))
        .route("/api/announce", post(announce))
        .route_layer(middleware::from_fn_with_state(core, token_guard))
}

/// Wrong or missing tokens are counted per client address like wrong SIP
/// passwords (`security.ban_after_failures` within `ban_window_secs`); then
/// every API request from that address gets 429 for `ban_secs`, the right
/// token included, so guessing on tells nothing. Other addresses are unaffected.
async fn token_guard(State(core): State<SipCoreRef>, ConnectInfo(remote): ConnectInfo<SocketAddr>, req: Request, next: Next) -> Response {
    let ip = remote.ip();
    if core.api_bans.lock().map(|b| b.is_banned(ip, Instant::now())).unwrap_or(false) {
        let retry = core.config.security.ban_secs.to_string();
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry)], Json(json!({"error": "too many wrong tokens from this address"})))
            .into_response();
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        let start = core.api_bans.lock().map(|mut b| b.record_failure(ip, "", Instant::now()));
        if start.is_ok_and(|s| s == crate::sip::auth::ban::BanStart::Source) {
            tracing::warn!(%ip, "too many wrong API tokens: address refused for {} s", core.config.security.ban_secs);
        }
    }
    resp
}

fn authorized(core: &SipCoreRef, headers: &HeaderMap) -> Result<(), Reply> {
    let Some(token) = core.config.http.api_token.as_deref() else {
        return Err((StatusCode::FORBIDDEN, Json(json!({"error": "the API is off: set http.api_token"}))));
    };
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| crate::sip::auth::nonces::constant_time_eq(g.as_bytes(), token.as_bytes())) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, Json(json!({"error": "missing or wrong bearer token"}))))
    }
}

fn error(e: ControlError) -> Reply {
    let status = match e {
        ControlError::NoSuchCall(_) | ControlError::NoSuchExtension(_) => StatusCode::NOT_FOUND,
        ControlError::NotRegistered(_) | ControlError::NotPossible(_) => StatusCode::CONFLICT,
        ControlError::BadArgument(_) => StatusCode::BAD_REQUEST,
        ControlError::Forbidden(_) => StatusCode::FORBIDDEN,
    };
    (status, Json(json!({"error": e.to_string()})))
}

async fn list(State(core): State<SipCoreRef>, headers: HeaderMap) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    let calls: Vec<Value> = control::active_calls(&core)
        .into_iter()
        .map(|c| json!({"call_id": c.call_id, "caller": c.caller, "callee": c.callee, "answered": c.answered}))
        .collect();
    (StatusCode::OK, Json(json!({ "calls": calls })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    from: String,
    to: String,
}

async fn dial(State(core): State<SipCoreRef>, headers: HeaderMap, body: Result<Json<DialBody>, axum::extract::rejection::JsonRejection>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("body must be {{\"from\": EXT, \"to\": EXT}}: {e}")}))),
    };
    match control::dial(&core, &body.from, &body.to).await {
        Ok(call_id) => (StatusCode::ACCEPTED, Json(json!({ "call_id": call_id }))),
        Err(e) => error(e),
    }
}

async fn hang_up(State(core): State<SipCoreRef>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    match control::hang_up(&core, &id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "call_id": id }))),
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DtmfBody {
    to: String,
    digits: String,
}

async fn dtmf(State(core): State<SipCoreRef>, headers: HeaderMap, Path(id): Path<String>, body: Result<Json<DtmfBody>, axum::extract::rejection::JsonRejection>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("body must be {{\"to\": EXT, \"digits\": \"123#\"}}: {e}")}))),
    };
    match control::send_dtmf(&core, &id, &body.to, &body.digits) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "call_id": id }))),
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    leaving: String,
    to: String,
}

async fn transfer(State(core): State<SipCoreRef>, headers: HeaderMap, Path(id): Path<String>, body: Result<Json<TransferBody>, axum::extract::rejection::JsonRejection>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("body must be {{\"leaving\": EXT, \"to\": EXT}}: {e}")}))),
    };
    match control::transfer(&core, &id, &body.leaving, &body.to) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "call_id": id }))),
        Err(e) => error(e),
    }
}

async fn answer(State(core): State<SipCoreRef>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    match control::answer(&core, &id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "call_id": id }))),
        Err(e) => error(e),
    }
}

/// "Answer with AI": the agent takes the ringing call.
async fn answer_with_agent(State(core): State<SipCoreRef>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    match control::answer_with_agent(&core, &id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "call_id": id }))),
        Err(e) => error(e),
    }
}

/// Messages the AI agent took, newest first.
async fn messages(State(core): State<SipCoreRef>, headers: HeaderMap) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    match core.store.messages(500).await {
        Ok(list) => (StatusCode::OK, Json(json!({ "messages": list }))),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading messages failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "messages could not be read"})))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceBody {
    extension: String,
    text: String,
}

/// The AI agent calls an extension and speaks the text.
async fn announce(State(core): State<SipCoreRef>, headers: HeaderMap, body: Result<Json<AnnounceBody>, axum::extract::rejection::JsonRejection>) -> Reply {
    if let Err(r) = authorized(&core, &headers) {
        return r;
    }
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("body: {e}")}))),
    };
    match control::announce(&core, &b.extension, &b.text).await {
        Ok(call_id) => (StatusCode::ACCEPTED, Json(json!({"call_id": call_id}))),
        Err(e) => error(e),
    }
}
