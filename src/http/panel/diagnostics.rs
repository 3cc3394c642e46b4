//! The Diagnostics page's API (administrators only): each device's recent
//! SIP exchanges with the reason in words, the bans in force and the
//! administrator's unban, and the SIP Core card's configuration.
use super::super::api::{ApiError, token_guard};
use super::super::sip_core::{SipCoreConfig, SipCoreUser};
use crate::sip::core::SipCoreRef;
use crate::sip::diagnostics::reason::{printable, utc};
use crate::sip::diagnostics::{Exchange, Key};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::net::IpAddr;

pub fn routes(core: SipCoreRef) -> Router<SipCoreRef> {
    Router::new()
        .route("/api/admin/diagnostics", get(diagnostics))
        .route("/api/admin/bans", get(bans))
        .route("/api/admin/bans/{addr}", delete(unban))
        .route_layer(middleware::from_fn_with_state(core, token_guard))
}

type AdminResult = Result<(StatusCode, Json<Value>), ApiError>;

fn exchange_json(e: &Exchange) -> Value {
    json!({
        "at_unix_ms": e.at_unix_ms,
        "request": e.request,
        "source": e.source,
        "transport": e.transport,
        "status": e.status,
        "reason": e.reason,
        "reason_words": e.reason.words(),
        "user": e.user,
    })
}

/// Every extension of the directory (with or without exchanges), then each
/// address whose requests named no extension here; and the SIP Core card's
/// configuration as YAML.
async fn diagnostics(
    State(core): State<SipCoreRef>,
    secure: Option<axum::Extension<super::super::wss::Secure>>,
    headers: HeaderMap,
) -> AdminResult {
    let mut logged = core.diagnostics();
    let mut rows = core.extension_rows();
    rows.sort_by(|a, b| a.extension.cmp(&b.extension));
    let mut devices: Vec<Value> = rows
        .iter()
        .map(|r| {
            let key = Key::Extension(r.extension.clone());
            let exchanges: Vec<Value> = logged.iter().find(|(k, _)| *k == key).map(|(_, l)| l.iter().map(exchange_json).collect()).unwrap_or_default();
            json!({"extension": r.extension, "name": r.name, "address": null, "exchanges": exchanges})
        })
        .collect();
    logged.retain(|(k, _)| matches!(k, Key::Source(_)));
    devices.extend(logged.iter().filter_map(|(k, l)| match k {
        Key::Source(ip) => Some(json!({"extension": null, "name": null, "address": ip.to_string(), "exchanges": l.iter().map(exchange_json).collect::<Vec<_>>()})),
        Key::Extension(_) => None,
    }));
    let yaml = serde_norway::to_string(&sip_core_config(&core, &headers, secure.is_some()))
        .unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    Ok((
        StatusCode::OK,
        Json(json!({"devices": devices, "sip_core_yaml": yaml})),
    ))
}

/// The card's settings for every extension of the directory: `ha_username`
/// is the extension's name (the Home Assistant user's name, for the card to
/// pick), the WebSocket this panel is served from.
fn sip_core_config(core: &SipCoreRef, headers: &HeaderMap, secure: bool) -> SipCoreConfig {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        });
    let url = format!(
        "{}://{}/ws",
        if secure { "wss" } else { "ws" },
        host.unwrap_or("<ha-pbx-host>")
    );
    let mut rows = core.extension_rows();
    rows.sort_by(|a, b| a.extension.cmp(&b.extension));
    let users = rows
        .into_iter()
        .map(|r| {
            let name = r.name.clone().unwrap_or_else(|| r.extension.clone());
            SipCoreUser {
                ha_username: name.clone(),
                display_name: name,
                extension: r.extension,
                password: r.password,
            }
        })
        .collect();
    SipCoreConfig {
        custom_wss_url: url,
        users,
    }
}

async fn bans(State(core): State<SipCoreRef>) -> AdminResult {
    let bans: Vec<Value> = core
        .ban_list()
        .iter()
        .map(|b| json!({"address": b.address.to_string(), "extension": b.extension, "until_unix": b.until_unix, "until": utc(b.until_unix), "kind": b.kind, "why": b.kind.words()}))
        .collect();
    Ok((StatusCode::OK, Json(json!({"bans": bans}))))
}

/// Lift every ban of one address (SIP digest, flood, API).
async fn unban(State(core): State<SipCoreRef>, Path(addr): Path<String>) -> AdminResult {
    let Ok(ip) = addr.trim().parse::<IpAddr>() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "address: `{}` is not an IP address (such as 192.0.2.7 or 2001:db8::7)",
                printable(&addr, 64)
            ),
        ));
    };
    if !core.unban(ip) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("address: {ip} is not banned"),
        ));
    }
    tracing::info!(address = %ip, "panel: ban lifted by an administrator");
    Ok((StatusCode::OK, Json(json!({"unbanned": ip.to_string()}))))
}
