//! Home Assistant WebSocket API messages, sans-IO: the auth handshake, a
//! request's `result`, and `conversation/process` (HA's Assist with its own
//! intents and tools).
use serde_json::{json, Value};

/// What the server said during the handshake.
#[derive(Debug, PartialEq)]
pub enum AuthStep {
    /// `auth_required`: send `auth_message`.
    Required,
    Ok,
    /// `auth_invalid` with its message.
    Invalid(String),
    Other(String),
}

pub fn auth_step(msg: &Value) -> AuthStep {
    match msg["type"].as_str() {
        Some("auth_required") => AuthStep::Required,
        Some("auth_ok") => AuthStep::Ok,
        Some("auth_invalid") => AuthStep::Invalid(msg["message"].as_str().unwrap_or("invalid token").to_string()),
        other => AuthStep::Other(other.unwrap_or("(no type)").to_string()),
    }
}

pub fn auth_message(token: &str) -> Value {
    json!({"type": "auth", "access_token": token})
}

/// The answer to request `id`: `None` when `msg` is something else (an
/// event, another id); HA's `result`, or its error as `code: message`.
pub fn result_for(msg: &Value, id: u64) -> Option<Result<Value, String>> {
    if msg["type"] != "result" || msg["id"].as_u64() != Some(id) {
        return None;
    }
    if msg["success"] != true {
        let e = &msg["error"];
        return Some(Err(format!("{}: {}", e["code"].as_str().unwrap_or("error"), e["message"].as_str().unwrap_or("(no message)"))));
    }
    Some(Ok(msg["result"].clone()))
}

/// `conversation/process` (the id is put in by [`super::ws::HaSocket::request`]).
pub fn process_message(text: &str, language: &str, conversation_id: Option<&str>, agent_id: Option<&str>) -> Value {
    let mut m = json!({"type": "conversation/process", "text": text});
    if !language.is_empty() {
        m["language"] = json!(language);
    }
    if let Some(c) = conversation_id {
        m["conversation_id"] = json!(c);
    }
    if let Some(a) = agent_id {
        m["agent_id"] = json!(a);
    }
    m
}

#[derive(Debug, PartialEq)]
pub struct Processed {
    /// What to say; may be empty.
    pub speech: String,
    pub conversation_id: Option<String>,
}

/// What `conversation/process` answered (its request's `result`).
pub fn processed(r: &Value) -> Result<Processed, String> {
    if r["response"].is_null() {
        return Err("result without `response`".into());
    }
    let speech = r["response"]["speech"]["plain"]["speech"].as_str().unwrap_or("").trim().to_string();
    Ok(Processed { speech, conversation_id: r["conversation_id"].as_str().map(str::to_string) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake() {
        assert_eq!(auth_step(&json!({"type": "auth_required", "ha_version": "2025.4.4"})), AuthStep::Required);
        assert_eq!(auth_step(&json!({"type": "auth_ok"})), AuthStep::Ok);
        assert_eq!(auth_step(&json!({"type": "auth_invalid", "message": "Invalid access token or password"})), AuthStep::Invalid("Invalid access token or password".into()));
        assert_eq!(auth_step(&json!({})), AuthStep::Other("(no type)".into()));
        assert_eq!(auth_message("t"), json!({"type": "auth", "access_token": "t"}));
    }

    #[test]
    fn process_request_carries_only_what_is_set() {
        assert_eq!(process_message("hi", "en", None, None), json!({"type": "conversation/process", "text": "hi", "language": "en"}));
        assert_eq!(
            process_message("hi", "", Some("01J"), Some("conversation.openai")),
            json!({"type": "conversation/process", "text": "hi", "conversation_id": "01J", "agent_id": "conversation.openai"})
        );
    }

    #[test]
    fn results() {
        // as HA 2025.4 answers
        let ok = json!({"id": 1, "type": "result", "success": true, "result": {
            "response": {"speech": {"plain": {"speech": "Turned on the light", "extra_data": null}},
                         "card": {}, "language": "en", "response_type": "action_done",
                         "data": {"targets": [], "success": [{"name": "Hallway light", "type": "entity", "id": "input_boolean.hallway_light"}], "failed": []}},
            "conversation_id": "01JSQ6Y1Z6G5M9W5V3YH0PQX4T", "continue_conversation": false}});
        let result = result_for(&ok, 1).unwrap().unwrap();
        assert_eq!(processed(&result).unwrap(), Processed { speech: "Turned on the light".into(), conversation_id: Some("01JSQ6Y1Z6G5M9W5V3YH0PQX4T".into()) });
        assert_eq!(result_for(&ok, 2), None);
        assert_eq!(result_for(&json!({"id": 1, "type": "event", "event": {}}), 1), None);
        let err = json!({"id": 1, "type": "result", "success": false, "error": {"code": "invalid_format", "message": "extra keys not allowed"}});
        assert_eq!(result_for(&err, 1), Some(Err("invalid_format: extra keys not allowed".into())));
        assert_eq!(result_for(&json!({"id": 1, "type": "result", "success": false}), 1), Some(Err("error: (no message)".into())));
        assert!(processed(&result_for(&json!({"id": 1, "type": "result", "success": true, "result": null}), 1).unwrap().unwrap()).is_err());
        // config/auth/list, as the add-on asks it through the Supervisor
        let users = json!({"id": 3, "type": "result", "success": true, "result": [{"id": "a1", "group_ids": ["system-admin"]}]});
        assert_eq!(result_for(&users, 3), Some(Ok(json!([{"id": "a1", "group_ids": ["system-admin"]}]))));
    }
}
