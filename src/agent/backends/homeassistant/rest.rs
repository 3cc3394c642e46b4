//! Home Assistant's REST API: services, states, notifications.
use super::urls::{ha_urls, HaUrls};
use crate::agent::backends::http::HttpClient;
use crate::agent::backends::BackendError;
use crate::config::HomeAssistantApi;
use hyper::http::Method;
use serde_json::{json, Value};

pub const SERVICE: &str = "Home Assistant";

/// Home Assistant's APIs with a token (long-lived, or the Supervisor's).
#[derive(Debug, Clone)]
pub struct HaClient {
    http: HttpClient,
    urls: HaUrls,
    token: String,
}

/// Characters HA allows in a domain, service or entity id (a path segment).
fn is_slug(s: &str, dots: bool) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dots && c == '.'))
}

impl HaClient {
    pub fn new(api: &HomeAssistantApi) -> Result<HaClient, String> {
        let urls = ha_urls(&api.url)?;
        if api.token.trim().is_empty() {
            return Err("empty token".into());
        }
        let http = HttpClient::new(SERVICE, &urls.base, Some(api.token.trim()))?;
        Ok(HaClient { http, urls, token: api.token.trim().to_string() })
    }

    /// Tests only: point the WebSocket elsewhere (a fake `supervisor`).
    #[cfg(test)]
    pub(crate) fn with_urls(mut self, urls: HaUrls) -> HaClient {
        self.urls = urls;
        self
    }

    pub fn urls(&self) -> &HaUrls {
        &self.urls
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// `POST /api/services/{domain}/{service}`: the states that changed.
    pub async fn call_service(&self, domain: &str, service: &str, data: &Value) -> Result<Value, BackendError> {
        if !is_slug(domain, false) || !is_slug(service, false) {
            return Err(self.http.protocol(format!("`{domain}.{service}` is not a service name")));
        }
        self.http.json(Method::POST, &format!("/api/services/{domain}/{service}"), Some(data)).await
    }

    /// `GET /api/states/{entity_id}`: `{entity_id, state, attributes, ...}`;
    /// an unknown entity is `Status { status: 404 }`.
    pub async fn state(&self, entity_id: &str) -> Result<Value, BackendError> {
        if !is_slug(entity_id, true) || !entity_id.contains('.') {
            return Err(self.http.protocol(format!("`{entity_id}` is not an entity id")));
        }
        self.http.json(Method::GET, &format!("/api/states/{entity_id}"), None).await
    }

    /// A notification in HA's sidebar (persistent_notification.create).
    pub async fn notify_persistent(&self, title: &str, message: &str) -> Result<(), BackendError> {
        self.call_service("persistent_notification", "create", &json!({"title": title, "message": message})).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    async fn service(State(seen): State<Seen>, h: HeaderMap, Path((d, s)): Path<(String, String)>, Json(body): Json<Value>) -> Json<Value> {
        let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        seen.lock().unwrap().push((auth, format!("{d}.{s}"), body));
        Json(json!([{"entity_id": "light.hall", "state": "on"}]))
    }

    async fn state(Path(id): Path<String>) -> axum::response::Response {
        use axum::response::IntoResponse;
        if id == "light.hall" {
            Json(json!({"entity_id": id, "state": "off", "attributes": {"friendly_name": "Hall"}})).into_response()
        } else {
            (axum::http::StatusCode::NOT_FOUND, Json(json!({"message": "Entity not found."}))).into_response()
        }
    }

    #[tokio::test]
    async fn services_states_and_notifications_over_real_http() {
        let seen: Seen = Arc::default();
        // served under /core like the Supervisor's proxy, to check the prefix is kept
        let app = Router::new()
            .route("/core/api/services/{d}/{s}", post(service))
            .route("/core/api/states/{id}", get(state))
            .with_state(seen.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let ha = HaClient::new(&HomeAssistantApi { url: format!("http://127.0.0.1:{port}/core"), token: "llat".into() }).unwrap();

        let changed = ha.call_service("light", "turn_on", &json!({"entity_id": "light.hall"})).await.unwrap();
        assert_eq!(changed[0]["state"], "on");
        assert_eq!(ha.state("light.hall").await.unwrap()["attributes"]["friendly_name"], "Hall");
        match ha.state("light.nope").await.unwrap_err() {
            BackendError::Status { status: 404, .. } => {}
            e => panic!("{e}"),
        }
        ha.notify_persistent("Missed call", "Bob called at 10:02").await.unwrap();
        assert!(ha.call_service("light", "turn_on/../x", &json!({})).await.is_err());
        assert!(ha.state("../config").await.is_err());

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ("Bearer llat".into(), "light.turn_on".into(), json!({"entity_id": "light.hall"})));
        assert_eq!(seen[1].1, "persistent_notification.create");
        assert_eq!(seen[1].2, json!({"title": "Missed call", "message": "Bob called at 10:02"}));
    }

    #[test]
    fn config_errors() {
        assert!(HaClient::new(&HomeAssistantApi { url: "http://h:8123".into(), token: " ".into() }).unwrap_err().contains("token"));
        assert!(HaClient::new(&HomeAssistantApi { url: "h:8123".into(), token: "t".into() }).is_err());
    }
}
