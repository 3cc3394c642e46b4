//! The Supervisor API as the add-on uses it. Every answer is wrapped as
//! `{"result": "ok", "data": {...}}` or, on error (HTTP 400),
//! `{"result": "error", "message": "..."}` (supervisor/api/utils.py).
//!
//! - `GET /services/mqtt` (needs `services: [mqtt:want]`): the broker
//!   `{host, port, ssl, protocol, username?, password?, addon}`; HTTP 400
//!   "Service not enabled" when no add-on provides MQTT.
//! - `GET /addons/self/info`: among much else `ingress_port`,
//!   `ingress_entry` (`/api/hassio_ingress/<token>`), `ip_address`.
//! - `GET /network/info` (needs `hassio_api: true`): `interfaces[]` with
//!   `primary` and `ipv4.address` (`["192.168.1.10/24"]`).
//! - `/core/api/...` (needs `homeassistant_api: true`): Home Assistant's own
//!   REST API, proxied; its answers are HA's JSON, not the envelope.
use super::http_client::{LocalHttpClient, Response};
use crate::agent::backends::homeassistant::ws::HaSocket;
use crate::agent::backends::BackendError;
use axum::http::Method;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

pub const DEFAULT_URL: &str = "http://supervisor";
const TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts for a request that could not reach the Supervisor at all.
const ATTEMPTS: u32 = 2;

#[derive(Debug, Clone)]
pub struct Supervisor {
    http: LocalHttpClient,
    token: String,
}

/// `GET /services/mqtt` → data.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttService {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ssl: bool,
    pub protocol: String,
    /// Slug of the add-on that provides it, e.g. `core_mosquitto`.
    pub addon: Option<String>,
}

/// The parts of `GET /addons/self/info` the PBX uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfInfo {
    pub ingress_port: Option<u16>,
    pub ingress_entry: Option<String>,
    pub version: Option<String>,
}

/// Why a request failed, for the log.
#[derive(Debug)]
pub enum ApiError {
    /// No connection, timeout, not HTTP: the Supervisor was not reached.
    Unreachable(anyhow::Error),
    /// It answered with an error (`message` or the HTTP status).
    Refused { status: u16, message: String },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unreachable(e) => write!(f, "Supervisor not reachable: {e:#}"),
            ApiError::Refused { status, message } => write!(f, "Supervisor answered HTTP {status}: {message}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl Supervisor {
    pub fn new(url: &str, token: &str) -> Result<Supervisor> {
        let http = LocalHttpClient::new(url).context("Supervisor URL")?;
        Ok(Supervisor { http, token: token.to_string() })
    }

    /// The raw answer; retried once when the Supervisor was not reached.
    async fn call(&self, method: Method, path: &str, json: Option<&Value>) -> Result<Response, ApiError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let req = self.http.request(method.clone(), path, Some(&self.token), json).map_err(ApiError::Unreachable)?;
            match self.http.send(req, TIMEOUT).await {
                Ok(resp) => return Ok(resp),
                Err(e) => last = Some(e),
            }
        }
        Err(ApiError::Unreachable(last.unwrap_or_else(|| anyhow!("no attempt made"))))
    }

    /// One command on Home Assistant's WebSocket API through the Supervisor's
    /// proxy (`ws://supervisor/core/websocket`, authenticated with the add-on's
    /// token; the proxy talks to HA as the Supervisor's own administrator
    /// user): `{"id": 1, "type": msg_type}` and its `result`, through the
    /// agent's client of that API ([`HaSocket`]). One connection per command,
    /// whole exchange within [`TIMEOUT`].
    pub async fn core_ws_command(&self, msg_type: &str) -> Result<Value, ApiError> {
        tokio::time::timeout(TIMEOUT, self.core_ws_exchange(msg_type))
            .await
            .map_err(|_| ApiError::Unreachable(anyhow!("/core/websocket: no answer within {} s", TIMEOUT.as_secs())))?
    }

    async fn core_ws_exchange(&self, msg_type: &str) -> Result<Value, ApiError> {
        let url = format!("{}/core/websocket", self.http.base().replacen("http://", "ws://", 1));
        let mut ws = HaSocket::open(&url, &self.token).await.map_err(core_ws_error)?;
        let result = ws.request(serde_json::json!({"type": msg_type})).await.map_err(core_ws_error);
        ws.close().await;
        result
    }

    /// `data` of a successful answer.
    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let resp = self.call(Method::GET, path, None).await?;
        unwrap_envelope(resp.status, &resp.body)
    }

    /// The state of a Home Assistant entity; `None` when HA does not have it.
    pub async fn core_state(&self, entity_id: &str) -> Result<Option<String>, ApiError> {
        let resp = self.call(Method::GET, &format!("/core/api/states/{entity_id}"), None).await?;
        core_state_from_answer(resp.status, &resp.body)
    }

    /// Render a Home Assistant template (`POST /api/template`, admin only:
    /// the Supervisor's own user is one).
    pub async fn core_template(&self, template: &str) -> Result<String, ApiError> {
        let body = serde_json::json!({"template": template});
        let resp = self.call(Method::POST, "/core/api/template", Some(&body)).await?;
        match resp.status {
            200 => Ok(String::from_utf8_lossy(&resp.body).into_owned()),
            status => Err(ApiError::Refused { status, message: error_message(&resp.body) }),
        }
    }

    /// Set a Home Assistant state (it lasts until HA restarts).
    pub async fn set_core_state(&self, entity_id: &str, state: &str, attributes: Value) -> Result<(), ApiError> {
        let body = serde_json::json!({"state": state, "attributes": attributes});
        let resp = self.call(Method::POST, &format!("/core/api/states/{entity_id}"), Some(&body)).await?;
        match resp.status {
            200 | 201 => Ok(()),
            status => Err(ApiError::Refused { status, message: error_message(&resp.body) }),
        }
    }

    pub async fn mqtt(&self) -> Result<MqttService, ApiError> {
        let data = self.get("/services/mqtt").await?;
        mqtt_from_data(&data).map_err(|e| ApiError::Refused { status: 200, message: format!("{e:#}") })
    }

    pub async fn self_info(&self) -> Result<SelfInfo, ApiError> {
        let data = self.get("/addons/self/info").await?;
        Ok(self_info_from_data(&data))
    }

    pub async fn primary_ipv4(&self) -> Result<Option<IpAddr>, ApiError> {
        let data = self.get("/network/info").await?;
        Ok(primary_ipv4_from_data(&data))
    }
}

/// An error of the WebSocket client as the Supervisor's: HA's refusals
/// (the token, the command) keep their status.
fn core_ws_error(e: BackendError) -> ApiError {
    match e {
        BackendError::Status { status, detail, .. } => ApiError::Refused { status, message: format!("/core/websocket: {detail}") },
        e => ApiError::Unreachable(anyhow!("/core/websocket: {e}")),
    }
}

/// Home Assistant's `GET /api/states/<id>` answer → the state.
pub fn core_state_from_answer(status: u16, body: &[u8]) -> Result<Option<String>, ApiError> {
    match status {
        200 => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|j| j.get("state").and_then(Value::as_str).map(str::to_string))
            .map(Some)
            .ok_or_else(|| ApiError::Refused { status, message: "answer without a state".into() }),
        404 => Ok(None),
        _ => Err(ApiError::Refused { status, message: error_message(body) }),
    }
}

/// `message` of a JSON error answer, else the start of the body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|j| j.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect::<String>().trim().to_string())
}

/// The Supervisor's envelope → `data`, or why not.
pub fn unwrap_envelope(status: u16, body: &[u8]) -> Result<Value, ApiError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = || error_message(body);
    if !(200..300).contains(&status) {
        return Err(ApiError::Refused { status, message: message() });
    }
    let Some(json) = json.as_ref() else {
        return Err(ApiError::Refused { status, message: "answer is not JSON".into() });
    };
    match json.get("result").and_then(Value::as_str) {
        Some("ok") => Ok(json.get("data").cloned().unwrap_or(Value::Object(Default::default()))),
        _ => Err(ApiError::Refused { status, message: message() }),
    }
}

pub fn mqtt_from_data(d: &Value) -> Result<MqttService> {
    let s = |k: &str| d.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
    let host = s("host").ok_or_else(|| anyhow!("MQTT service without a host"))?;
    let port = match d.get("port") {
        Some(Value::Number(n)) => n.as_u64().filter(|p| (1..=65535).contains(p)).ok_or_else(|| anyhow!("MQTT port {n}"))? as u16,
        Some(Value::String(p)) => p.parse().map_err(|_| anyhow!("MQTT port `{p}`"))?,
        _ => bail!("MQTT service without a port"),
    };
    Ok(MqttService {
        host,
        port,
        username: s("username"),
        password: s("password"),
        ssl: d.get("ssl").and_then(Value::as_bool).unwrap_or(false),
        protocol: s("protocol").unwrap_or_else(|| "3.1.1".into()),
        addon: s("addon"),
    })
}

pub fn self_info_from_data(d: &Value) -> SelfInfo {
    SelfInfo {
        ingress_port: d.get("ingress_port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0),
        ingress_entry: d.get("ingress_entry").and_then(Value::as_str).map(str::to_string),
        version: d.get("version").and_then(Value::as_str).map(str::to_string),
    }
}

/// The first IPv4 address of the primary interface (else of any connected one).
pub fn primary_ipv4_from_data(d: &Value) -> Option<IpAddr> {
    let ifaces = d.get("interfaces")?.as_array()?;
    let addr_of = |i: &Value| -> Option<IpAddr> {
        let list = i.get("ipv4")?.get("address")?.as_array()?;
        list.iter()
            .filter_map(Value::as_str)
            .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
            .find(|ip| !ip.is_unspecified())
    };
    let flag = |i: &Value, k: &str| i.get(k).and_then(Value::as_bool).unwrap_or(false);
    ifaces
        .iter()
        .filter(|i| flag(i, "primary"))
        .find_map(addr_of)
        .or_else(|| ifaces.iter().filter(|i| flag(i, "connected")).find_map(addr_of))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_ok_and_errors() {
        let ok = br#"{"result": "ok", "data": {"host": "core-mosquitto"}}"#;
        assert_eq!(unwrap_envelope(200, ok).unwrap(), json!({"host": "core-mosquitto"}));
        let empty = br#"{"result": "ok", "data": {}}"#;
        assert_eq!(unwrap_envelope(200, empty).unwrap(), json!({}));

        let not_enabled = br#"{"result": "error", "message": "Service not enabled"}"#;
        let e = unwrap_envelope(400, not_enabled).unwrap_err().to_string();
        assert_eq!(e, "Supervisor answered HTTP 400: Service not enabled");

        let e = unwrap_envelope(401, b"401: Unauthorized").unwrap_err().to_string();
        assert!(e.contains("HTTP 401: 401: Unauthorized"), "{e}");
        assert!(unwrap_envelope(200, b"<html>").unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn websocket_errors_keep_home_assistants_refusals() {
        let refused = core_ws_error(BackendError::Status { service: "Home Assistant", status: 401, detail: "WebSocket auth: Invalid access token".into() });
        assert!(matches!(&refused, ApiError::Refused { status: 401, message } if message == "/core/websocket: WebSocket auth: Invalid access token"), "{refused}");
        let gone = core_ws_error(BackendError::Unreachable { service: "Home Assistant", detail: "connection refused".into() });
        assert!(matches!(&gone, ApiError::Unreachable(_)) && gone.to_string().contains("/core/websocket: Home Assistant unreachable: connection refused"), "{gone}");
    }

    #[test]
    fn core_states() {
        let ok = br#"{"entity_id": "text.asterisk_addon_ingress_entry", "state": "/api/hassio_ingress/abc", "attributes": {}}"#;
        assert_eq!(core_state_from_answer(200, ok).unwrap().as_deref(), Some("/api/hassio_ingress/abc"));
        assert_eq!(core_state_from_answer(404, br#"{"message": "Entity not found."}"#).unwrap(), None);
        let e = core_state_from_answer(502, b"502: Bad Gateway").unwrap_err().to_string();
        assert_eq!(e, "Supervisor answered HTTP 502: 502: Bad Gateway");
        assert!(core_state_from_answer(200, b"{}").is_err());
    }

    #[test]
    fn mqtt_service_as_the_mosquitto_addon_provides_it() {
        let d = json!({"host": "core-mosquitto", "port": 1883, "ssl": false, "protocol": "3.1.1",
                       "username": "addons", "password": "Eeb7", "addon": "core_mosquitto"});
        let m = mqtt_from_data(&d).unwrap();
        assert_eq!(
            m,
            MqttService {
                host: "core-mosquitto".into(),
                port: 1883,
                username: Some("addons".into()),
                password: Some("Eeb7".into()),
                ssl: false,
                protocol: "3.1.1".into(),
                addon: Some("core_mosquitto".into()),
            }
        );
        let m = mqtt_from_data(&json!({"host": "10.0.0.2", "port": 8883, "ssl": true})).unwrap();
        assert!(m.ssl && m.username.is_none() && m.protocol == "3.1.1");
        assert!(mqtt_from_data(&json!({"port": 1883})).is_err());
        assert!(mqtt_from_data(&json!({"host": "h", "port": 0})).is_err());
    }

    #[test]
    fn self_info_ingress() {
        let d = json!({"name": "ha-pbx", "slug": "ha_pbx", "ingress": true,
                       "ingress_entry": "/api/hassio_ingress/abc", "ingress_url": "/api/hassio_ingress/abc/",
                       "ingress_port": 62000, "ingress_panel": true, "ip_address": "172.30.32.1", "version": "0.1.0"});
        assert_eq!(
            self_info_from_data(&d),
            SelfInfo { ingress_port: Some(62000), ingress_entry: Some("/api/hassio_ingress/abc".into()), version: Some("0.1.0".into()) }
        );
        let none = self_info_from_data(&json!({"ingress_port": null, "ingress_entry": null}));
        assert_eq!(none.ingress_port, None);
        assert_eq!(self_info_from_data(&json!({"ingress_port": 0})).ingress_port, None);
    }

    #[test]
    fn primary_interface_address() {
        let d = json!({"interfaces": [
            {"interface": "wlan0", "primary": false, "connected": true,
             "ipv4": {"method": "auto", "address": ["192.168.2.20/24"], "gateway": "192.168.2.1"}},
            {"interface": "eth0", "primary": true, "connected": true,
             "ipv4": {"method": "auto", "address": ["192.168.1.10/24"], "gateway": "192.168.1.1"}, "ipv6": null}],
            "docker": {"interface": "hassio", "address": "172.30.32.0/23", "gateway": "172.30.32.1"}});
        assert_eq!(primary_ipv4_from_data(&d), Some("192.168.1.10".parse().unwrap()));
        let no_primary = json!({"interfaces": [{"primary": false, "connected": true, "ipv4": {"address": ["10.0.0.5/8"]}}]});
        assert_eq!(primary_ipv4_from_data(&no_primary), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(primary_ipv4_from_data(&json!({"interfaces": [{"primary": true, "ipv4": null}]})), None);
        assert_eq!(primary_ipv4_from_data(&json!({})), None);
    }
}
