//! The Assist brain against a small HA WebSocket server in the test.
use super::*;
use crate::agent::backends::{BackendError, Brain, Conversation, ToolHost, ToolSpec};
use crate::config::HomeAssistantApi;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

struct NoTools;
#[async_trait::async_trait]
impl ToolHost for NoTools {
    fn tools(&self) -> Vec<ToolSpec> {
        Vec::new()
    }
    async fn call(&self, _: &str, _: Value) -> Value {
        panic!("Assist runs HA's own tools")
    }
}

type Seen = Arc<Mutex<Vec<Value>>>;

async fn recv(ws: &mut WebSocket) -> Value {
    loop {
        match ws.recv().await.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            _ => continue,
        }
    }
}

async fn fake_ha(mut ws: WebSocket, seen: Seen) {
    ws.send(Message::text(json!({"type": "auth_required", "ha_version": "2025.4.4"}).to_string())).await.unwrap();
    let auth = recv(&mut ws).await;
    if auth["access_token"] != "llat" {
        ws.send(Message::text(json!({"type": "auth_invalid", "message": "Invalid access token or password"}).to_string())).await.unwrap();
        return;
    }
    ws.send(Message::text(json!({"type": "auth_ok", "ha_version": "2025.4.4"}).to_string())).await.unwrap();
    let req = recv(&mut ws).await;
    seen.lock().unwrap().push(req.clone());
    let turn = seen.lock().unwrap().len();
    // an unrelated event first: the client must wait for its result
    ws.send(Message::text(json!({"id": 99, "type": "event", "event": {}}).to_string())).await.unwrap();
    let answer = json!({"id": req["id"], "type": "result", "success": true, "result": {
        "response": {"speech": {"plain": {"speech": format!("Answer {turn}"), "extra_data": null}}, "response_type": "query_answer", "language": "en", "data": {}},
        "conversation_id": "conv-1", "continue_conversation": false}});
    ws.send(Message::text(answer.to_string())).await.unwrap();
    let _ = ws.recv().await;
}

async fn serve(path: &'static str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(path, get(|ws: WebSocketUpgrade, State(seen): State<Seen>| async move { ws.on_upgrade(move |s| fake_ha(s, seen)) }))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://127.0.0.1:{port}"), seen)
}

#[tokio::test]
async fn assist_turns_carry_the_conversation_id() {
    let (url, seen) = serve("/api/websocket").await;
    let ha = Arc::new(HaClient::new(&HomeAssistantApi { url, token: "llat".into() }).unwrap());
    let brain = AssistBrain::new(ha, Some("conversation.home_assistant"), "en");
    let mut conv = Conversation::default();
    let (tx, mut rx) = mpsc::channel(4);
    brain.reply("Is the hallway light on?", &mut conv, &NoTools, tx.clone()).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "Answer 1");
    assert_eq!(conv.assist_id.as_deref(), Some("conv-1"));
    brain.reply("Turn it off", &mut conv, &NoTools, tx).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "Answer 2");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], json!({"id": 1, "type": "conversation/process", "text": "Is the hallway light on?", "language": "en", "agent_id": "conversation.home_assistant"}));
    assert_eq!(seen[1]["conversation_id"], "conv-1");
}

#[tokio::test]
async fn addon_websocket_path_and_bad_token() {
    // the Supervisor's proxy serves the WebSocket at /core/websocket; the
    // test server stands in for `supervisor` under a /core prefix
    let (url, _) = serve("/core/websocket").await;
    let mut urls = ha_urls(&format!("{url}/core")).unwrap();
    assert!(urls.websocket.ends_with("/core/api/websocket"), "only the host `supervisor` drops /api");
    urls.websocket = urls.websocket.replace("/core/api/websocket", "/core/websocket");
    let ha = HaClient::new(&HomeAssistantApi { url: format!("{url}/core"), token: "wrong".into() }).unwrap().with_urls(urls);
    let brain = AssistBrain::new(Arc::new(ha), None, "en");
    let (tx, _rx) = mpsc::channel(4);
    let e = brain.reply("hi", &mut Conversation::default(), &NoTools, tx).await.unwrap_err();
    assert!(matches!(&e, BackendError::Status { status: 401, detail, .. } if detail.contains("Invalid access token")), "{e}");

    // nothing there
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let ha = HaClient::new(&HomeAssistantApi { url: format!("http://127.0.0.1:{port}"), token: "llat".into() }).unwrap();
    let (tx, _rx) = mpsc::channel(4);
    let e = AssistBrain::new(Arc::new(ha), None, "en").reply("hi", &mut Conversation::default(), &NoTools, tx).await.unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn the_addons_supervisor_client_uses_the_same_socket() {
    use crate::addon::supervisor::{ApiError, Supervisor};
    // the Supervisor's proxy at /core/websocket, the add-on's token
    let (url, seen) = serve("/core/websocket").await;
    let result = Supervisor::new(&url, "llat").unwrap().core_ws_command("config/auth/list").await.unwrap();
    assert_eq!(result["conversation_id"], "conv-1", "the result of request 1, past the event: {result}");
    assert_eq!(seen.lock().unwrap()[0], json!({"id": 1, "type": "config/auth/list"}));
    let e = Supervisor::new(&url, "wrong").unwrap().core_ws_command("config/auth/list").await.unwrap_err();
    assert!(matches!(&e, ApiError::Refused { status: 401, message } if message.contains("Invalid access token")), "{e}");
}
