//! The administration API the panel uses (`/api/admin/...`, administrators
//! only: the bearer token or an administrator's session). Extensions made
//! here are stored in SQLite (source `panel`) and put into the registrar's
//! directory at once; removing one drops its registrations. Extensions from
//! the configuration file (or add-on options, or Home Assistant users) are
//! listed read-only.
use super::super::api::{token_guard, ApiError, Body, BodyShape};
use super::Panel;
use crate::config::validate::valid_extension;
use crate::sip::core::SipCoreRef;
use crate::storage::credentials::{random_secret, Ha1};
use crate::storage::{ExtensionRow, SOURCE_PANEL};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Length of generated SIP passwords.
const PASSWORD_LEN: usize = 20;
const MAX_PASSWORD: usize = 128;
const MAX_NAME: usize = 64;

pub fn routes(core: SipCoreRef) -> Router<SipCoreRef> {
    Router::new()
        .route("/api/admin/extensions", get(list).post(create))
        .route("/api/admin/extensions/{ext}", get(show).patch(change).delete(remove))
        .route("/api/admin/extensions/{ext}/qr.svg", get(qr_code))
        .route_layer(middleware::from_fn_with_state(core, token_guard))
}

type AdminResult = Result<(StatusCode, Json<Value>), ApiError>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// Every extension (with its registrations), group and the agent.
async fn list(State(core): State<SipCoreRef>) -> AdminResult {
    let regs = core.registrations();
    let mut rows = core.extension_rows();
    rows.sort_by(|a, b| a.extension.cmp(&b.extension));
    let extensions: Vec<Value> = rows
        .iter()
        .map(|r| {
            let devices: Vec<Value> = regs
                .iter()
                .filter(|(e, _)| *e == r.extension)
                .map(|(_, b)| json!({"user_agent": b.user_agent, "address": b.source, "transport": b.transport.to_string(), "registered_at": b.registered_at, "expires_at": b.expires_at}))
                .collect();
            json!({"extension": r.extension, "name": r.name, "source": r.source, "editable": r.source == SOURCE_PANEL, "registered": !devices.is_empty(), "devices": devices})
        })
        .collect();
    let groups: Vec<Value> = core.config.groups.iter().map(|g| json!({"extension": g.extension, "name": g.name, "members": g.members, "everyone": g.everyone})).collect();
    Ok((StatusCode::OK, Json(json!({"extensions": extensions, "groups": groups, "agent": core.agent().map(|a| a.extension.clone()), "sip_server": core.sip_server()}))))
}

/// One panel-made extension with its password and the settings a phone needs.
async fn show(State(core): State<SipCoreRef>, Path(ext): Path<String>) -> AdminResult {
    let row = editable(&core, &ext)?;
    Ok((StatusCode::OK, Json(with_settings(&core, &row))))
}

fn with_settings(core: &SipCoreRef, row: &ExtensionRow) -> Value {
    super::account::settings(&row.extension, row.name.as_deref(), Some(&row.password), &super::account::Reach::of(core), &core.config.sip.realm)
}

/// The QR code of `qr_text` (the SIP account as a URI, `qr.rs`), as SVG;
/// the same 404 / 403 as the settings. It holds the password: never cached.
async fn qr_code(State(core): State<SipCoreRef>, Path(ext): Path<String>) -> Result<Response, ApiError> {
    let row = editable(&core, &ext)?;
    let uri = super::qr::account_uri(&row.extension, &row.password, &core.sip_host(), crate::config::phone_listener(&core.sip_transports()));
    let svg = super::qr::svg(&uri).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

/// The row of `ext` when the panel owns it; 404 or 403 (read-only) else.
fn editable(core: &SipCoreRef, ext: &str) -> Result<ExtensionRow, ApiError> {
    if !valid_extension(ext) {
        // not echoed: it may hold anything a client sent
        return Err(bad("extension: not an extension number (1-32 characters of digits, letters or .-_+*#)"));
    }
    match core.extension(ext) {
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("extension {ext}: no such extension"))),
        Some(r) if r.source != SOURCE_PANEL => Err(ApiError::new(StatusCode::FORBIDDEN, format!("extension {ext}: read-only here (it comes from {})", source_words(&r.source)))),
        Some(r) => Ok(r),
    }
}

fn source_words(source: &str) -> &'static str {
    match source {
        crate::storage::SOURCE_CONFIG => "the configuration file or add-on options",
        crate::storage::SOURCE_HA_USER => "a Home Assistant user",
        _ => "elsewhere",
    }
}

/// Checked like the configuration file's `extensions[]` entries.
fn check_name(name: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(bad(format!("name: at most {MAX_NAME} characters, no control characters")));
    }
    Ok(Some(n.to_string()))
}

fn check_password(p: Option<&str>) -> Result<String, ApiError> {
    match p {
        None | Some("") => Ok(random_secret(PASSWORD_LEN)),
        Some(p) if p.len() > MAX_PASSWORD || p.chars().any(char::is_control) => Err(bad(format!("password: at most {MAX_PASSWORD} bytes, no control characters"))),
        Some(p) if p.len() < 8 => Err(bad("password: at least 8 characters (or leave it empty for a generated one)")),
        Some(p) => Ok(p.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewExtension {
    extension: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
}
impl BodyShape for NewExtension {
    const SHAPE: &'static str = r#"{"extension": "110", "name": "...", "password": "... (optional: generated when absent)"}"#;
}

fn row_for(core: &SipCoreRef, extension: &str, name: Option<String>, password: String) -> ExtensionRow {
    let realm = &core.config.sip.realm;
    let ha1 = Ha1::from_password(extension, realm, &password);
    ExtensionRow { extension: extension.to_string(), password, name, source: SOURCE_PANEL.into(), ha1_realm: Some(realm.clone()), ha1_md5: ha1.md5, ha1_sha256: ha1.sha256 }
}

async fn store_and_publish(core: &SipCoreRef, row: ExtensionRow) -> Result<(), ApiError> {
    core.store.upsert_extension(&row).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "storing an extension failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the extension could not be stored")
    })?;
    if !core.put_extension(row) {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the directory is unavailable"));
    }
    Ok(())
}

/// Add an extension: it can register at once.
async fn create(State(core): State<SipCoreRef>, Body(b): Body<NewExtension>) -> AdminResult {
    let ext = b.extension.trim();
    if !valid_extension(ext) {
        return Err(bad(format!("extension: `{ext}` must be 1-32 characters of digits, letters or .-_+*#")));
    }
    if core.extension(ext).is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("extension: {ext} exists already")));
    }
    if core.config.group(ext).is_some() || core.config.agent.as_ref().is_some_and(|a| a.extension == ext) || ext == crate::config::AGENT_MEMBER {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("extension: {ext} is a group's or the agent's number")));
    }
    // the same rule the configuration file's numbers are held to at start
    if let Err(e) = core.config.feature_codes.validate(std::iter::once(ext)) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("extension: {e}")));
    }
    let name = check_name(b.name.as_deref())?;
    let password = check_password(b.password.as_deref())?;
    let row = row_for(&core, ext, name, password);
    let shown = with_settings(&core, &row);
    store_and_publish(&core, row).await?;
    tracing::info!(extension = %ext, "panel: extension added");
    Ok((StatusCode::CREATED, Json(shown)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeExtension {
    #[serde(default)]
    name: Option<String>,
    /// true: a new generated password (the old one stops working at once).
    #[serde(default)]
    new_password: bool,
}
impl BodyShape for ChangeExtension {
    const SHAPE: &'static str = r#"{"name": "...", "new_password": true}"#;
}

async fn change(State(core): State<SipCoreRef>, panel: Option<Extension<Arc<Panel>>>, Path(ext): Path<String>, Body(b): Body<ChangeExtension>) -> AdminResult {
    let old = editable(&core, &ext)?;
    let name = match b.name.as_deref() {
        Some(n) => check_name(Some(n))?,
        None => old.name.clone(),
    };
    let password = if b.new_password { random_secret(PASSWORD_LEN) } else { old.password.clone() };
    let row = row_for(&core, &ext, name, password);
    let shown = with_settings(&core, &row);
    store_and_publish(&core, row).await?;
    if b.new_password {
        if let Some(p) = panel {
            p.close_extension(&ext);
        }
        tracing::info!(extension = %ext, "panel: extension's password regenerated");
    }
    Ok((StatusCode::OK, Json(shown)))
}

/// Remove an extension: its registrations are dropped at once.
async fn remove(State(core): State<SipCoreRef>, panel: Option<Extension<Arc<Panel>>>, Path(ext): Path<String>) -> AdminResult {
    editable(&core, &ext)?;
    core.store.delete_extension(&ext, SOURCE_PANEL).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "removing an extension failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the extension could not be removed")
    })?;
    let dropped = core.remove_extension_now(&ext);
    if let Some(p) = panel {
        p.close_extension(&ext);
    }
    tracing::info!(extension = %ext, registrations = dropped, "panel: extension removed");
    Ok((StatusCode::OK, Json(json!({"removed": ext, "registrations_dropped": dropped}))))
}
