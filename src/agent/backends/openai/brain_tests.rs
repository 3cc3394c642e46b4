//! The OpenAI brain against a small chat-completions server in the test
//! that streams real-format SSE: a tool call split over several deltas,
//! then (after the tool result) a text answer in pieces.
use super::*;
use crate::agent::backends::{Brain, Conversation, ToolHost, ToolSpec};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl ToolHost for Recorder {
    fn tools(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "ha_call_service",
            description: "Call a Home Assistant service on an allowed entity.",
            parameters: json!({"type": "object", "properties": {"domain": {"type": "string"}, "service": {"type": "string"}, "entity_id": {"type": "string"}}, "required": ["domain", "service", "entity_id"]}),
        }]
    }
    async fn call(&self, name: &str, arguments: Value) -> Value {
        self.calls.lock().unwrap().push((name.to_string(), arguments));
        json!({"ok": true, "state": "on"})
    }
}

fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
                   "system_fingerprint": "fp_1", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

struct Srv {
    requests: Mutex<Vec<(String, Value)>>,
    /// Released by the test once it has the first piece of text.
    gate: Mutex<Option<oneshot::Receiver<()>>>,
}

async fn completions(State(srv): State<Arc<Srv>>, h: HeaderMap, Json(body): Json<Value>) -> axum::response::Response {
    let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let n = {
        let mut r = srv.requests.lock().unwrap();
        r.push((auth, body));
        r.len()
    };
    let pieces: Vec<String> = if n == 1 {
        vec![
            chunk(json!({"role": "assistant", "content": null, "refusal": null}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_Q1", "type": "function", "function": {"name": "ha_call_service", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"dom"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ain\":\"light\",\"service\":"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"turn_on\",\"entity_id\":\"light.hall\"}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".into(),
        ]
    } else {
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "The hall"}), Value::Null),
            chunk(json!({"content": " light is on."}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".into(),
        ]
    };
    let gate = if n == 2 { srv.gate.lock().unwrap().take() } else { None };
    // each SSE event its own write; on the second answer the rest waits for the gate
    let stream = futures::stream::unfold((pieces.into_iter(), gate, 0usize), |(mut it, mut gate, i)| async move {
        let piece = it.next()?;
        if i == 2
            && let Some(g) = gate.take()
        {
            let _ = g.await;
        }
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(piece)), (it, gate, i + 1)))
    });
    axum::response::Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
}

#[tokio::test]
async fn tool_call_then_streamed_answer() {
    let (gate_tx, gate_rx) = oneshot::channel();
    let srv = Arc::new(Srv { requests: Mutex::default(), gate: Mutex::new(Some(gate_rx)) });
    let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(srv.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });

    let brain = Arc::new(OpenAiBrain::new(&format!("http://127.0.0.1:{port}"), Some("sk-test"), "gpt-4o-mini", "Be brief.".into()).unwrap());
    let tools = Arc::new(Recorder::default());
    let (tx, mut rx) = mpsc::channel(16);
    let (b, t) = (brain.clone(), tools.clone());
    let task = tokio::spawn(async move {
        let mut conv = Conversation::default();
        b.reply("Turn on the hall light", &mut conv, t.as_ref(), tx).await.map(|_| conv)
    });
    // the first piece arrives while the server still holds back the rest
    assert_eq!(rx.recv().await.unwrap(), "The hall");
    gate_tx.send(()).unwrap();
    assert_eq!(rx.recv().await.unwrap(), " light is on.");
    let conv = task.await.unwrap().unwrap();
    assert!(rx.recv().await.is_none());

    assert_eq!(*tools.calls.lock().unwrap(), vec![("ha_call_service".to_string(), json!({"domain": "light", "service": "turn_on", "entity_id": "light.hall"}))]);

    let reqs = srv.requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    let (auth, first) = &reqs[0];
    assert_eq!(auth, "Bearer sk-test");
    assert_eq!(first["model"], "gpt-4o-mini");
    assert_eq!(first["stream"], true);
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "ha_call_service");
    assert_eq!(first["messages"], json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Turn on the hall light"}]));
    // the second request carries the assistant's tool call and the tool's result
    let msgs = reqs[1].1["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_Q1");
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["arguments"], "{\"domain\":\"light\",\"service\":\"turn_on\",\"entity_id\":\"light.hall\"}");
    assert_eq!(msgs[3], json!({"role": "tool", "tool_call_id": "call_Q1", "content": "{\"ok\":true,\"state\":\"on\"}"}));
    // and the conversation remembers the whole turn for the next one
    assert_eq!(conv.messages.len(), 5);
    assert_eq!(conv.messages[4], json!({"role": "assistant", "content": "The hall light is on."}));
}

/// A model that only ever calls tools is stopped after MAX_ROUNDS requests.
#[tokio::test]
async fn endless_tool_calls_are_bounded() {
    let count = Arc::new(Mutex::new(0usize));
    let c2 = count.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            *c2.lock().unwrap() += 1;
            async move {
                let body = chunk(json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "ha_call_service", "arguments": "not json"}}]}), json!("tool_calls")) + "data: [DONE]\n\n";
                axum::response::Response::builder().header("content-type", "text/event-stream").body(Body::from(body)).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    let brain = OpenAiBrain::new(&format!("http://127.0.0.1:{port}/v1"), None, "m", "p".into()).unwrap();
    let tools = Recorder::default();
    let (tx, _rx) = mpsc::channel(16);
    let mut conv = Conversation::default();
    let e = brain.reply("loop", &mut conv, &tools, tx).await.unwrap_err();
    assert!(e.to_string().contains("after 5 rounds"), "{e}");
    assert_eq!(*count.lock().unwrap(), brain::MAX_ROUNDS);
    // arguments that are not JSON never reach the tool; the model is told
    assert!(tools.calls.lock().unwrap().is_empty());
    assert!(conv.messages.last().unwrap()["content"].as_str().unwrap().contains("not valid JSON"));
}
