//! One streamed chat-completions answer, sans-IO: content deltas pass
//! through, `tool_calls` deltas (index, id, function.name and
//! function.arguments in fragments) are put together.
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Default)]
pub struct Answer {
    pub content: String,
    /// By `index`.
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub done: bool,
}

/// Bounds on what a (possibly broken) server can make us hold.
const MAX_TOOL_CALLS: usize = 16;
const MAX_TEXT: usize = 256 * 1024;

impl Answer {
    /// Applies one SSE event's data; returns new content to speak.
    pub fn apply(&mut self, data: &str) -> Result<Option<String>, String> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| format!("stream event is not JSON: {e}"))?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let msg = err["message"].as_str().map(str::to_string).unwrap_or_else(|| err.to_string());
            return Err(format!("error in stream: {msg}"));
        }
        let Some(choice) = v["choices"].get(0) else {
            return Ok(None); // usage-only chunks
        };
        if let Some(r) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(r.to_string());
        }
        let delta = &choice["delta"];
        if let Some(calls) = delta["tool_calls"].as_array() {
            for c in calls {
                // some servers leave out `index`: a delta with an id or a name starts a call
                let idx = match c["index"].as_u64() {
                    Some(i) => i as usize,
                    None if c["id"].is_string() || c["function"]["name"].is_string() || self.tool_calls.is_empty() => self.tool_calls.len(),
                    None => self.tool_calls.len() - 1,
                };
                if idx >= MAX_TOOL_CALLS {
                    return Err(format!("more than {MAX_TOOL_CALLS} tool calls"));
                }
                if self.tool_calls.len() <= idx {
                    self.tool_calls.resize(idx + 1, ToolCall::default());
                }
                let call = &mut self.tool_calls[idx];
                if let Some(id) = c["id"].as_str().filter(|s| !s.is_empty()) {
                    call.id = id.to_string();
                }
                if let Some(name) = c["function"]["name"].as_str() {
                    // sent once, but some servers repeat it in every delta
                    if call.name != name {
                        call.name.push_str(name);
                    }
                }
                if let Some(a) = c["function"]["arguments"].as_str() {
                    call.arguments.push_str(a);
                    if call.arguments.len() > MAX_TEXT {
                        return Err("tool arguments too long".into());
                    }
                }
            }
        }
        match delta["content"].as_str() {
            Some(t) if !t.is_empty() => {
                if self.content.len() + t.len() > MAX_TEXT {
                    return Err("answer too long".into());
                }
                self.content.push_str(t);
                Ok(Some(t.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// The calls with a name, ids filled in where the server sent none.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.tool_calls
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, c)| ToolCall { id: if c.id.is_empty() { format!("call_{i}") } else { c.id.clone() }, ..c.clone() })
            .collect()
    }

    /// The assistant message to append to the conversation.
    pub fn message(&self) -> Value {
        let calls = self.calls();
        if calls.is_empty() {
            return json!({"role": "assistant", "content": self.content});
        }
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        let content = if self.content.is_empty() { Value::Null } else { Value::from(self.content.as_str()) };
        json!({"role": "assistant", "content": content, "tool_calls": tool_calls})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value, finish: Value) -> String {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    }

    #[test]
    fn tool_calls_come_together_from_fragments() {
        let mut a = Answer::default();
        let events = [
            chunk(json!({"role": "assistant", "content": null}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function", "function": {"name": "ha_call_service", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"domain\":"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"light\", \"service\": \"turn_on\"}"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 1, "id": "call_def", "function": {"name": "hang_up", "arguments": "{}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "[DONE]".to_string(),
        ];
        for e in &events {
            assert_eq!(a.apply(e).unwrap(), None);
        }
        assert!(a.done);
        assert_eq!(a.finish_reason.as_deref(), Some("tool_calls"));
        let calls = a.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], ToolCall { id: "call_abc".into(), name: "ha_call_service".into(), arguments: "{\"domain\": \"light\", \"service\": \"turn_on\"}".into() });
        assert_eq!(calls[1].name, "hang_up");
        let m = a.message();
        assert_eq!(m["content"], Value::Null);
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], calls[0].arguments);
        assert_eq!(m["tool_calls"][1]["type"], "function");
    }

    #[test]
    fn content_streams_through() {
        let mut a = Answer::default();
        assert_eq!(a.apply(&chunk(json!({"role": "assistant", "content": ""}), Value::Null)).unwrap(), None);
        assert_eq!(a.apply(&chunk(json!({"content": "The light"}), Value::Null)).unwrap().as_deref(), Some("The light"));
        assert_eq!(a.apply(&chunk(json!({"content": " is on."}), Value::Null)).unwrap().as_deref(), Some(" is on."));
        assert_eq!(a.apply(&chunk(json!({}), json!("stop"))).unwrap(), None);
        // a usage-only chunk (stream_options.include_usage)
        assert_eq!(a.apply(r#"{"choices":[],"usage":{"total_tokens":9}}"#).unwrap(), None);
        assert_eq!(a.message(), json!({"role": "assistant", "content": "The light is on."}));
        assert!(a.calls().is_empty());
    }

    #[test]
    fn missing_ids_and_errors() {
        // whole calls without index or id (some local servers)
        let mut a = Answer::default();
        a.apply(&chunk(json!({"tool_calls": [{"function": {"name": "get_state", "arguments": "{\"entity_id\":\"light.hall\"}"}}]}), Value::Null)).unwrap();
        assert_eq!(a.calls()[0].id, "call_0");
        assert_eq!(a.calls()[0].name, "get_state");
        // two whole calls in one delta, no index: two calls
        let mut a = Answer::default();
        a.apply(&chunk(json!({"tool_calls": [{"function": {"name": "a", "arguments": "{}"}}, {"function": {"name": "b", "arguments": "{}"}}]}), Value::Null)).unwrap();
        assert_eq!(a.calls().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        // a repeated name is not doubled
        let mut a = Answer::default();
        a.apply(&chunk(json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "hang_up", "arguments": "{"}}]}), Value::Null)).unwrap();
        a.apply(&chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "hang_up", "arguments": "}"}}]}), Value::Null)).unwrap();
        assert_eq!((a.calls()[0].name.as_str(), a.calls()[0].arguments.as_str()), ("hang_up", "{}"));

        let mut a = Answer::default();
        assert!(a.apply(r#"{"error":{"message":"Rate limit reached"}}"#).unwrap_err().contains("Rate limit"));
        assert!(a.apply("not json").is_err());
        assert!(a.apply(&chunk(json!({"tool_calls": [{"index": 99, "function": {"name": "x"}}]}), Value::Null)).is_err());
    }
}
