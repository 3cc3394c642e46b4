//! The Phone page's API (`/api/phone/...`), for a signed-in extension only:
//! its contact list, and the call actions a browser cannot do itself over
//! SIP (open the door, hand the ringing call to the agent, blind transfer).
//! Each acts only on a call the session's own extension is a party of, and
//! goes through the same `sip::control` commands as the HTTP API and MQTT.
//! The door's digits never reach the browser: the server sends them.
use super::super::api::{ApiError, Body, BodyShape};
use super::sessions::Role;
use super::Panel;
use crate::config::ExtensionKind;
use crate::sip::control;
use crate::sip::core::SipCoreRef;
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes() -> Router<SipCoreRef> {
    Router::new()
        .route("/api/phone", get(contacts))
        .route("/api/phone/door", post(open_door))
        .route("/api/phone/agent", post(answer_with_agent))
        .route("/api/phone/transfer", post(transfer))
        .route("/api/phone/messages", get(my_messages))
        .route("/api/phone/messages/{id}/read", post(my_message_read))
        .route("/api/phone/account", get(my_account))
        .route("/api/phone/account/qr.svg", get(my_account_qr))
}

type PhoneResult = Result<(StatusCode, Json<Value>), ApiError>;

/// The session's extension; administrators and strangers have no phone.
fn me(panel: &Panel, headers: &HeaderMap, extensions: &Extensions) -> Result<String, ApiError> {
    match panel.role(headers, extensions) {
        Some(Role::Extension(e) | Role::AdminPhone(e)) => Ok(e),
        Some(Role::Admin) => Err(ApiError::new(StatusCode::FORBIDDEN, "the phone is an extension's: sign in with an extension and its password")),
        // The API token is not looked at here (right or wrong, the same
        // answer: no way to test tokens unbanned), only named as not enough.
        None if headers.contains_key(header::AUTHORIZATION) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "the phone is an extension's: the API token has no extension; sign in with an extension and its password"))
        }
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "not signed in")),
    }
}

/// Whether `ext` is a doorbell with `door_open` digits (from the configuration).
fn door_code(core: &SipCoreRef, ext: &str) -> Option<String> {
    core.config.extension(ext).filter(|c| c.kind == ExtensionKind::Doorbell).and_then(|c| c.door_open.clone())
}

/// Extensions (with whether each is a doorbell that opens), groups and the agent.
async fn contacts(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let mut rows = core.extension_rows();
    rows.sort_by(|a, b| a.extension.cmp(&b.extension));
    let extensions: Vec<Value> = rows
        .iter()
        .map(|r| {
            let doorbell = core.config.extension(&r.extension).is_some_and(|c| c.kind == ExtensionKind::Doorbell);
            json!({"extension": r.extension, "name": r.name, "doorbell": doorbell, "door_open": door_code(&core, &r.extension).is_some(), "registered": !core.registered_contacts(&r.extension).is_empty()})
        })
        .collect();
    let groups: Vec<Value> = core.config.groups.iter().map(|g| json!({"extension": g.extension, "name": g.name})).collect();
    let name = rows.iter().find(|r| r.extension == me).and_then(|r| r.name.clone());
    Ok((StatusCode::OK, Json(json!({"extension": me, "name": name, "extensions": extensions, "groups": groups, "agent": core.agent().map(|a| a.extension.clone())}))))
}

/// "Open door": the answered call of this extension with a doorbell that has
/// `door_open` gets those digits (SIP INFO to the doorbell, as from Home Assistant).
async fn open_door(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let found = control::calls_of(&core, &me).into_iter().filter(|c| c.answered).find_map(|c| {
        let door = c.other(&me)?;
        door_code(&core, &door).map(|code| (c.call_id, door, code))
    });
    let Some((call_id, door, code)) = found else {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("extension {me} is in no answered call with a doorbell that has door_open")));
    };
    control::send_dtmf(&core, &call_id, &door, &code)?;
    tracing::info!(extension = %me, doorbell = %door, "panel phone: door opened");
    Ok((StatusCode::ACCEPTED, Json(json!({"call_id": call_id, "doorbell": door}))))
}

/// "Answer with AI": the call ringing this extension (dialled, or ringing it
/// as a ring group's member) goes to the agent.
async fn answer_with_agent(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let Some(call) = control::calls_of(&core, &me).into_iter().find(|c| c.rings(&me)) else {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("no call is ringing extension {me}")));
    };
    control::answer_with_agent(&core, &call.call_id)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"call_id": call.call_id}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: String,
}
impl BodyShape for TransferBody {
    const SHAPE: &'static str = r#"{"to": EXT}"#;
}

/// "Transfer": this extension leaves its answered call; the other party is
/// connected to `to`.
async fn transfer(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions, Body(body): Body<TransferBody>) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let Some(call) = control::calls_of(&core, &me).into_iter().find(|c| c.answered) else {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("extension {me} is in no answered call")));
    };
    control::transfer(&core, &call.call_id, &me, &body.to)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"call_id": call.call_id}))))
}

/// How many of its messages an extension sees at once (newest first).
const MY_MESSAGES: i64 = 200;

fn store_failed(e: anyhow::Error, what: &str) -> ApiError {
    tracing::error!(error = %format!("{e:#}"), "panel phone: {what} failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
}

/// The messages the agent took for this extension (transcript, caller, time), newest first.
async fn my_messages(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let list = core.store.messages_for(&me, MY_MESSAGES).await.map_err(|e| store_failed(e, "reading the messages"))?;
    Ok((StatusCode::OK, Json(json!({"extension": me, "messages": list}))))
}

/// Marks one of this extension's messages read. Another extension's message
/// gets the same 404 as one that does not exist: nothing tells them apart.
async fn my_message_read(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions, Path(id): Path<String>) -> PhoneResult {
    let me = me(&panel, &headers, &extensions)?;
    let Some(id) = id.parse::<i64>().ok().filter(|i| *i > 0) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "id: a message number"));
    };
    let owner = core.store.message_callee(id).await.map_err(|e| store_failed(e, "reading the message"))?;
    if owner.as_deref() != Some(me.as_str()) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("extension {me} has no message {id}")));
    }
    core.mark_message_read(id).await.map_err(|e| store_failed(e, "marking the message read"))?;
    Ok((StatusCode::OK, Json(json!({"id": id, "read": true}))))
}

/// This extension's own SIP account: the password ha-pbx keeps for it (one
/// made by the panel or for a Home Assistant user), or none for one from the
/// configuration file. Only ever the session's own extension: there is no
/// parameter to ask for another. It holds the password: never cached.
fn my_row(core: &SipCoreRef, me: &str) -> Result<Value, ApiError> {
    let Some(row) = core.extension(me) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("extension {me}: no such extension")));
    };
    let password = Some(row.password.as_str()).filter(|p| !p.is_empty());
    Ok(super::account::settings(&row.extension, row.name.as_deref(), password, &super::account::Reach::of(core), &core.config.sip.realm))
}

async fn my_account(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> Result<Response, ApiError> {
    let me = me(&panel, &headers, &extensions)?;
    let account = my_row(&core, &me)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(account)).into_response())
}

/// The QR code of this extension's own account; 404 when ha-pbx keeps no
/// password for it (the settings text says where the password is).
async fn my_account_qr(panel: Extension<Arc<Panel>>, State(core): State<SipCoreRef>, headers: HeaderMap, extensions: Extensions) -> Result<Response, ApiError> {
    let me = me(&panel, &headers, &extensions)?;
    let Some(payload) = my_row(&core, &me)?["qr_text"].as_str().map(str::to_string) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("extension {me}: its password is in ha-pbx's configuration, not kept here, so there is no QR code")));
    };
    let svg = super::qr::svg(&payload).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

#[cfg(test)]
#[path = "phone_tests.rs"]
mod tests;
