//! Call control over HTTP (`/api/...`), behind a bearer token
//! (`http.api_token`; standalone without it, the administrator secret made
//! at first run; in add-on mode the API is off without one) or, standalone,
//! an administrator's panel session. Errors are 4xx with a
//! JSON `{"error": "..."}` naming what was wrong.
use crate::sip::control::{self, ControlError};
use crate::sip::core::SipCoreRef;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Instant;

pub fn routes(core: SipCoreRef) -> Router<SipCoreRef> {
    Router::new()
        .route("/api/calls", get(list).post(dial))
        .route("/api/calls/{id}", delete(hang_up))
        .route("/api/calls/{id}/dtmf", post(dtmf))
        .route("/api/calls/{id}/transfer", post(transfer))
        .route("/api/calls/{id}/answer", post(answer))
        .route("/api/calls/{id}/agent", post(answer_with_agent))
        .route("/api/messages", get(messages))
        .route("/api/messages/{id}/read", post(message_read))
        .route("/api/announce", post(announce))
        .route_layer(middleware::from_fn_with_state(core, token_guard))
}

/// An API error: its status and `{"error": "..."}` naming what was wrong.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        let status = match e {
            ControlError::NoSuchCall(_) | ControlError::NoSuchExtension(_) => StatusCode::NOT_FOUND,
            ControlError::NotRegistered(_) | ControlError::NotPossible(_) => StatusCode::CONFLICT,
            ControlError::BadArgument(_) => StatusCode::BAD_REQUEST,
            ControlError::Forbidden(_) => StatusCode::FORBIDDEN,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult = Result<(StatusCode, Json<Value>), ApiError>;

/// What a request body must look like, for the 400 that refuses another.
pub(super) trait BodyShape {
    const SHAPE: &'static str;
}

/// A JSON body of shape `T`; anything else is a 400 saying what was expected.
pub(super) struct Body<T>(pub T);

impl<T: DeserializeOwned + BodyShape, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(e) => Err(ApiError(StatusCode::BAD_REQUEST, format!("body must be {}: {e}", T::SHAPE))),
        }
    }
}

/// Every `/api` request: the bearer token first (the API is off without
/// `http.api_token`). Wrong or missing tokens are counted per client address
/// like wrong SIP passwords (`security.ban_after_failures` within
/// `ban_window_secs`); then every API request from that address gets 429 for
/// `ban_secs`, the right token included, so guessing on tells nothing. Other
/// addresses are unaffected.
pub(super) async fn token_guard(State(core): State<SipCoreRef>, ConnectInfo(remote): ConnectInfo<SocketAddr>, req: Request, next: Next) -> Response {
    let ip = remote.ip();
    if core.api_banned(ip, Instant::now()) {
        let retry = core.config.security.ban_secs.to_string();
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry)], Json(json!({"error": "too many wrong tokens from this address"})))
            .into_response();
    }
    let panel = req.extensions().get::<std::sync::Arc<super::panel::Panel>>().cloned();
    if let Err(e) = authorized(&core, req.headers(), req.extensions(), panel.as_deref()) {
        if e.0 == StatusCode::UNAUTHORIZED && core.api_token_failed(ip, Instant::now()) {
            tracing::warn!(%ip, "too many wrong API tokens: address refused for {} s", core.config.security.ban_secs);
        }
        return e.into_response();
    }
    next.run(req).await
}

/// The bearer token, or (standalone) an administrator's panel session; an
/// extension's session is known but not enough (403).
fn authorized(core: &SipCoreRef, headers: &HeaderMap, extensions: &axum::http::Extensions, panel: Option<&super::panel::Panel>) -> Result<(), ApiError> {
    match panel.and_then(|p| p.role(headers, extensions)) {
        Some(role) if role.is_admin() => return Ok(()),
        Some(super::panel::sessions::Role::Extension(e)) if !headers.contains_key("authorization") => {
            return Err(ApiError(StatusCode::FORBIDDEN, format!("administrators only: this session is extension {e}'s")));
        }
        _ => {}
    }
    let Some(token) = core.config.http.api_token.as_deref() else {
        return Err(ApiError(StatusCode::FORBIDDEN, "the API is off: set http.api_token".into()));
    };
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| crate::sip::auth::nonces::constant_time_eq(g.as_bytes(), token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()))
    }
}

fn accepted(call_id: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, Json(json!({ "call_id": call_id })))
}

async fn list(State(core): State<SipCoreRef>) -> ApiResult {
    let calls: Vec<Value> = control::active_calls(&core)
        .into_iter()
        .map(|c| json!({"call_id": c.call_id, "caller": c.caller, "callee": c.callee, "answered": c.answered, "answered_by_agent": c.answered && c.to_agent}))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "calls": calls }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    from: String,
    to: String,
}
impl BodyShape for DialBody {
    const SHAPE: &'static str = r#"{"from": EXT, "to": EXT}"#;
}

async fn dial(State(core): State<SipCoreRef>, Body(body): Body<DialBody>) -> ApiResult {
    Ok(accepted(&control::dial(&core, &body.from, &body.to).await?))
}

async fn hang_up(State(core): State<SipCoreRef>, Path(id): Path<String>) -> ApiResult {
    control::hang_up(&core, &id)?;
    Ok(accepted(&id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DtmfBody {
    to: String,
    digits: String,
}
impl BodyShape for DtmfBody {
    const SHAPE: &'static str = r#"{"to": EXT, "digits": "123#"}"#;
}

async fn dtmf(State(core): State<SipCoreRef>, Path(id): Path<String>, Body(body): Body<DtmfBody>) -> ApiResult {
    control::send_dtmf(&core, &id, &body.to, &body.digits)?;
    Ok(accepted(&id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    leaving: String,
    to: String,
}
impl BodyShape for TransferBody {
    const SHAPE: &'static str = r#"{"leaving": EXT, "to": EXT}"#;
}

async fn transfer(State(core): State<SipCoreRef>, Path(id): Path<String>, Body(body): Body<TransferBody>) -> ApiResult {
    control::transfer(&core, &id, &body.leaving, &body.to)?;
    Ok(accepted(&id))
}

async fn answer(State(core): State<SipCoreRef>, Path(id): Path<String>) -> ApiResult {
    control::answer(&core, &id, None)?;
    Ok(accepted(&id))
}

/// "Answer with AI": the agent takes the ringing call.
async fn answer_with_agent(State(core): State<SipCoreRef>, Path(id): Path<String>) -> ApiResult {
    control::answer_with_agent(&core, &id)?;
    Ok(accepted(&id))
}

/// Messages the AI agent took, newest first.
async fn messages(State(core): State<SipCoreRef>) -> ApiResult {
    match core.store.messages(500).await {
        Ok(list) => Ok((StatusCode::OK, Json(json!({ "messages": list })))),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading messages failed");
            Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "messages could not be read".into()))
        }
    }
}

/// Marks a message read: it no longer counts as new for the message-waiting
/// lamp (MWI subscribers get a NOTIFY).
async fn message_read(State(core): State<SipCoreRef>, Path(id): Path<String>) -> ApiResult {
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("message id `{id}` is not a number")));
    };
    match core.mark_message_read(id).await {
        Ok(Some(callee)) => Ok((StatusCode::OK, Json(json!({ "id": id, "callee": callee, "read": true })))),
        Ok(None) => Err(ApiError(StatusCode::NOT_FOUND, format!("no message {id}"))),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "marking a message read failed");
            Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the message could not be updated".into()))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceBody {
    /// An extension, or a number outside (`to` reads better for those).
    #[serde(alias = "to")]
    extension: String,
    text: String,
}
impl BodyShape for AnnounceBody {
    const SHAPE: &'static str = r#"{"extension": EXT or "to": NUMBER, "text": "..."}"#;
}

/// The AI agent calls an extension, or a number outside that an outbound
/// route lets the agent's extension call, and speaks the text.
async fn announce(State(core): State<SipCoreRef>, Body(b): Body<AnnounceBody>) -> ApiResult {
    Ok(accepted(&control::announce(&core, &b.extension, &b.text).await?))
}
