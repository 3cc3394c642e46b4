//! Keeps the Home Assistant state `text.asterisk_addon_ingress_entry` set to
//! the add-on's ingress entry (`/api/hassio_ingress/<token>`): the SIP Core
//! card (v3/v4 and later) reads it to build its WebSocket URL, so cards set
//! up for the Asterisk add-on connect to ha-pbx unchanged.
//!
//! A state set through the REST API lives only until Home Assistant
//! restarts, and add-ons with `startup: services` start before HA does. So
//! rather than posting once (or on MQTT's birth message, which needs MQTT),
//! the keeper reads the state every [`CHECK_EVERY`] through the Supervisor's
//! `/core/api` proxy and posts it again whenever it is missing or different:
//! this covers HA starting late, HA restarts, and someone removing the
//! state, with one small GET per interval when all is well.
use super::supervisor::Supervisor;
use std::time::Duration;
use tokio::task::JoinHandle;

pub const ENTITY: &str = "text.asterisk_addon_ingress_entry";
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// What one check found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadySet,
    Posted,
    Failed(String),
}

/// Should the state be (re)posted, given what HA has now?
pub fn needs_post(current: Option<&str>, entry: &str) -> bool {
    current != Some(entry)
}

pub async fn check_once(sup: &Supervisor, entry: &str) -> Outcome {
    let current = match sup.core_state(ENTITY).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("GET /core/api/states/{ENTITY}: {e}")),
    };
    if !needs_post(current.as_deref(), entry) {
        return Outcome::AlreadySet;
    }
    let attributes = serde_json::json!({"friendly_name": "ha-pbx ingress entry"});
    match sup.set_core_state(ENTITY, entry, attributes).await {
        Ok(()) => Outcome::Posted,
        Err(e) => Outcome::Failed(format!("POST /core/api/states/{ENTITY}: {e}")),
    }
}

/// Run the keeper for the life of the process.
pub fn spawn(sup: Supervisor, entry: String, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        // log a failure once per outage, not every interval
        let mut failing = false;
        loop {
            match check_once(&sup, &entry).await {
                Outcome::Posted => {
                    tracing::info!("Home Assistant state {ENTITY} set to {entry} (for the SIP Core card)");
                    failing = false;
                }
                Outcome::AlreadySet => failing = false,
                Outcome::Failed(why) if !failing => {
                    tracing::warn!("cannot set {ENTITY} in Home Assistant yet (retrying every {} s): {why}", every.as_secs());
                    failing = true;
                }
                Outcome::Failed(why) => tracing::debug!("{ENTITY}: still failing: {why}"),
            }
            tokio::time::sleep(every).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::{Json, Router};
    use std::sync::{Arc, Mutex};

    #[test]
    fn posts_only_when_missing_or_different() {
        assert!(needs_post(None, "/api/hassio_ingress/a"));
        assert!(needs_post(Some("/api/hassio_ingress/old"), "/api/hassio_ingress/a"));
        assert!(!needs_post(Some("/api/hassio_ingress/a"), "/api/hassio_ingress/a"));
    }

    type States = Arc<Mutex<Option<String>>>;

    /// A stand-in for the Supervisor's `/core/api/states/<id>` proxy that
    /// checks the token and keeps one state.
    async fn fake(states: States) -> String {
        async fn read(State(s): State<States>, h: HeaderMap) -> (StatusCode, Json<serde_json::Value>) {
            if h.get("authorization").map(|v| v.as_bytes()) != Some(b"Bearer tok") {
                return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"message": "401: Unauthorized"})));
            }
            match s.lock().unwrap().clone() {
                Some(v) => (StatusCode::OK, Json(serde_json::json!({"entity_id": ENTITY, "state": v}))),
                None => (StatusCode::NOT_FOUND, Json(serde_json::json!({"message": "Entity not found."}))),
            }
        }
        async fn write(State(s): State<States>, Json(body): Json<serde_json::Value>) -> (StatusCode, Json<serde_json::Value>) {
            *s.lock().unwrap() = body["state"].as_str().map(str::to_string);
            (StatusCode::CREATED, Json(body))
        }
        let app = Router::new().route(&format!("/core/api/states/{ENTITY}"), get(read).post(write)).with_state(states);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn sets_the_state_and_sets_it_again_when_it_is_gone() {
        let states: States = Default::default();
        let url = fake(states.clone()).await;
        let sup = Supervisor::new(&url, "tok").unwrap();
        let entry = "/api/hassio_ingress/Fq1Lg4B2";
        assert_eq!(check_once(&sup, entry).await, Outcome::Posted);
        assert_eq!(states.lock().unwrap().as_deref(), Some(entry));
        assert_eq!(check_once(&sup, entry).await, Outcome::AlreadySet);
        *states.lock().unwrap() = None; // Home Assistant restarted
        assert_eq!(check_once(&sup, entry).await, Outcome::Posted);

        let wrong = Supervisor::new(&url, "other").unwrap();
        match check_once(&wrong, entry).await {
            Outcome::Failed(why) => assert!(why.contains("HTTP 401"), "{why}"),
            o => panic!("{o:?}"),
        }
    }
}
