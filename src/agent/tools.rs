//! The LLM's tools: Home Assistant services and states (only for entities
//! on the allow-list) and what it may do with the call itself. Call actions
//! go to the call's runner as requests; HA actions go to HA's REST API.
use super::backends::homeassistant::HaClient;
use super::backends::{ToolHost, ToolSpec};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What a tool asks of the call.
#[derive(Debug)]
pub enum CallRequest {
    HangUp,
    Transfer { extension: String, done: oneshot::Sender<Result<(), String>> },
    SendDtmf(String),
    TakeMessage(String),
}

pub struct CallTools {
    pub ha: Option<Arc<HaClient>>,
    pub allowed_entities: Vec<String>,
    pub call: mpsc::UnboundedSender<CallRequest>,
}

fn text_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, Value> {
    args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| json!({"error": format!("missing string argument `{name}`")}))
}

impl CallTools {
    fn allowed(&self, entity_id: &str) -> Result<(), Value> {
        if self.allowed_entities.iter().any(|e| e == entity_id) {
            Ok(())
        } else {
            Err(json!({"error": format!("entity `{entity_id}` is not on this phone line's allow-list")}))
        }
    }

    fn ha(&self) -> Result<&HaClient, Value> {
        self.ha.as_deref().ok_or_else(|| json!({"error": "Home Assistant is not connected"}))
    }

    async fn call_service(&self, args: &Value) -> Result<Value, Value> {
        let domain = text_arg(args, "domain")?;
        let service = text_arg(args, "service")?;
        let entity_id = text_arg(args, "entity_id")?;
        self.allowed(entity_id)?;
        let mut data = args.get("data").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        // The target is the checked entity, whatever `data` tried to name.
        data["entity_id"] = json!(entity_id);
        let ha = self.ha()?;
        ha.call_service(domain, service, &data).await.map_err(|e| json!({"error": e.to_string()}))?;
        Ok(json!({"ok": true}))
    }

    async fn get_state(&self, args: &Value) -> Result<Value, Value> {
        let entity_id = text_arg(args, "entity_id")?;
        self.allowed(entity_id)?;
        let state = self.ha()?.state(entity_id).await.map_err(|e| json!({"error": e.to_string()}))?;
        Ok(json!({"entity_id": entity_id, "state": state.get("state"), "attributes": state.get("attributes")}))
    }

    fn request(&self, r: CallRequest) -> Result<Value, Value> {
        self.call.send(r).map(|_| json!({"ok": true})).map_err(|_| json!({"error": "the call has ended"}))
    }

    async fn transfer(&self, args: &Value) -> Result<Value, Value> {
        let extension = text_arg(args, "extension")?.to_string();
        let (done, result) = oneshot::channel();
        self.request(CallRequest::Transfer { extension, done })?;
        match result.await {
            Ok(Ok(())) => Ok(json!({"ok": true})),
            Ok(Err(e)) => Err(json!({"error": e})),
            Err(_) => Err(json!({"error": "the call has ended"})),
        }
    }
}

#[async_trait]
impl ToolHost for CallTools {
    fn tools(&self) -> Vec<ToolSpec> {
        specs()
    }

    async fn call(&self, name: &str, args: Value) -> Value {
        let result = match name {
            "ha_call_service" => self.call_service(&args).await,
            "ha_get_state" => self.get_state(&args).await,
            "hang_up" => self.request(CallRequest::HangUp),
            "transfer" => self.transfer(&args).await,
            "send_dtmf" => match text_arg(&args, "digits") {
                Ok(d) if d.chars().all(|c| "0123456789*#ABCDabcd".contains(c)) => self.request(CallRequest::SendDtmf(d.to_string())),
                Ok(d) => Err(json!({"error": format!("`{d}` holds characters that are not DTMF keys")})),
                Err(e) => Err(e),
            },
            "take_message" => text_arg(&args, "message").and_then(|m| self.request(CallRequest::TakeMessage(m.to_string()))),
            other => Err(json!({"error": format!("no tool named `{other}`")})),
        };
        tracing::info!(tool = name, %args, ok = result.is_ok(), "agent tool call");
        result.unwrap_or_else(|e| e)
    }
}

pub fn specs() -> Vec<ToolSpec> {
    let entity = json!({"type": "string", "description": "entity_id, e.g. light.porch"});
    vec![
        ToolSpec {
            name: "ha_call_service",
            description: "Call a Home Assistant service on one entity (turn on/off, lock, open...).",
            parameters: json!({"type": "object", "properties": {
                "domain": {"type": "string", "description": "e.g. light, switch, input_boolean, lock"},
                "service": {"type": "string", "description": "e.g. turn_on, turn_off, toggle, lock, unlock"},
                "entity_id": entity,
                "data": {"type": "object", "description": "extra service data, e.g. brightness_pct"}
            }, "required": ["domain", "service", "entity_id"]}),
        },
        ToolSpec {
            name: "ha_get_state",
            description: "Read the current state and attributes of a Home Assistant entity.",
            parameters: json!({"type": "object", "properties": {"entity_id": entity}, "required": ["entity_id"]}),
        },
        ToolSpec {
            name: "hang_up",
            description: "End the phone call after your last sentence has been spoken.",
            parameters: json!({"type": "object", "properties": {}}),
        },
        ToolSpec {
            name: "transfer",
            description: "Connect the caller to another phone extension and leave the call.",
            parameters: json!({"type": "object", "properties": {"extension": {"type": "string"}}, "required": ["extension"]}),
        },
        ToolSpec {
            name: "send_dtmf",
            description: "Press keys on the line (e.g. the door opener code of a door station).",
            parameters: json!({"type": "object", "properties": {"digits": {"type": "string", "description": "0-9, *, #"}}, "required": ["digits"]}),
        },
        ToolSpec {
            name: "take_message",
            description: "Store a message from the caller for the household.",
            parameters: json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> (CallTools, mpsc::UnboundedReceiver<CallRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (CallTools { ha: None, allowed_entities: vec!["input_boolean.hallway_light".into()], call: tx }, rx)
    }

    #[tokio::test]
    async fn entities_off_the_allow_list_are_refused_before_home_assistant_is_asked() {
        let (t, _rx) = tools();
        let r = t.call("ha_call_service", json!({"domain": "lock", "service": "unlock", "entity_id": "lock.front_door"})).await;
        assert!(r["error"].as_str().unwrap().contains("allow-list"), "{r}");
        let r = t.call("ha_get_state", json!({"entity_id": "lock.front_door"})).await;
        assert!(r["error"].as_str().unwrap().contains("allow-list"), "{r}");
        // Allowed, but no HA configured: a clear error, not a panic.
        let r = t.call("ha_get_state", json!({"entity_id": "input_boolean.hallway_light"})).await;
        assert!(r["error"].as_str().unwrap().contains("not connected"), "{r}");
    }

    #[tokio::test]
    async fn call_tools_become_requests_to_the_call() {
        let (t, mut rx) = tools();
        assert_eq!(t.call("send_dtmf", json!({"digits": "12#"})).await, json!({"ok": true}));
        assert!(matches!(rx.recv().await, Some(CallRequest::SendDtmf(d)) if d == "12#"));
        assert!(t.call("send_dtmf", json!({"digits": "12x"})).await["error"].is_string());
        t.call("take_message", json!({"message": "parcel next door"})).await;
        assert!(matches!(rx.recv().await, Some(CallRequest::TakeMessage(m)) if m == "parcel next door"));
        t.call("hang_up", json!({})).await;
        assert!(matches!(rx.recv().await, Some(CallRequest::HangUp)));
        assert!(t.call("nonsense", json!({})).await["error"].is_string());
        assert!(t.call("take_message", json!({})).await["error"].as_str().unwrap().contains("message"));
    }

    #[tokio::test]
    async fn a_transfer_reports_what_the_call_said() {
        let (t, mut rx) = tools();
        let answer = tokio::spawn(async move {
            if let Some(CallRequest::Transfer { extension, done }) = rx.recv().await {
                let _ = done.send(Err(format!("{extension} is not registered")));
            }
        });
        let r = t.call("transfer", json!({"extension": "105"})).await;
        assert_eq!(r["error"], "105 is not registered");
        answer.await.unwrap();
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        for s in specs() {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
        }
    }
}
