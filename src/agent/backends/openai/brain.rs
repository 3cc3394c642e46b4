//! An OpenAI-compatible chat-completions LLM as the brain: streamed
//! answers, ha-pbx's tools, and rounds of tool calls until it answers.
use super::delta::Answer;
use super::sse::SseParser;
use crate::agent::backends::http::{next_chunk, HttpClient};
use crate::agent::backends::{BackendError, Brain, Conversation, ToolHost, ToolSpec};
use async_trait::async_trait;
use hyper::http::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const SERVICE: &str = "LLM";
/// Requests per caller turn: tool rounds plus the answer.
pub const MAX_ROUNDS: usize = 5;

pub struct OpenAiBrain {
    http: HttpClient,
    model: String,
    system_prompt: String,
}

/// For a voice on a phone line: what TTS reads well, and honest about tools.
pub fn default_system_prompt(name: &str, language: &str) -> String {
    format!(
        "You are {name}, a voice assistant answering a phone call for a home that runs Home Assistant. \
         Everything you write is read aloud by text-to-speech to the caller, so answer in one to three short, \
         plain spoken sentences: no markdown, lists, emoji, code or URLs, and write numbers and times as they are said. \
         Use the tools to read or control devices and to handle the call; only say something was done when a tool \
         confirmed it. If you cannot help, say so briefly. Speak the caller's language (configured: {language})."
    )
}

impl OpenAiBrain {
    pub fn new(url: &str, api_key: Option<&str>, model: &str, system_prompt: String) -> Result<OpenAiBrain, String> {
        Ok(OpenAiBrain { http: HttpClient::new(SERVICE, &super::api_base(url), api_key)?, model: model.to_string(), system_prompt })
    }
}

/// `tools[]` of the request.
pub fn tools_json(tools: &[ToolSpec]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect()
}

pub fn request_body(model: &str, messages: &[Value], tools: &[Value]) -> Value {
    let mut body = json!({"model": model, "messages": messages, "stream": true});
    if !tools.is_empty() {
        body["tools"] = Value::from(tools.to_vec());
    }
    body
}

/// What to hand the LLM for one call: arguments that are not JSON are the
/// model's mistake, told back to it rather than run.
pub async fn run_tool(tools: &dyn ToolHost, name: &str, arguments: &str) -> Value {
    let args = if arguments.trim().is_empty() { Ok(json!({})) } else { serde_json::from_str::<Value>(arguments) };
    match args {
        Ok(a) => tools.call(name, a).await,
        Err(e) => json!({"error": format!("arguments are not valid JSON: {e}")}),
    }
}

impl OpenAiBrain {
    /// One streamed request; content goes to `out` as it comes. `Ok(None)`
    /// when `out` was closed (the pipeline stopped listening).
    async fn round(&self, messages: &[Value], tools: &[Value], out: &mpsc::Sender<String>) -> Result<Option<Answer>, BackendError> {
        let body = request_body(&self.model, messages, tools);
        let resp = self.http.send(self.http.json_request(Method::POST, "/v1/chat/completions", Some(&body))?).await?;
        let mut body = resp.into_body();
        let mut sse = SseParser::new();
        let mut answer = Answer::default();
        let mut listening = true;
        while !answer.done {
            let Some(chunk) = next_chunk(SERVICE, &mut body).await? else {
                // some servers just close after the last chunk
                if let Some(d) = sse.finish() {
                    answer.apply(&d).map_err(|e| self.http.protocol(e))?;
                }
                break;
            };
            for data in sse.push(&chunk).map_err(|e| self.http.protocol(e))? {
                if let Some(text) = answer.apply(&data).map_err(|e| self.http.protocol(e))?
                    && listening
                    && out.send(text).await.is_err()
                {
                    listening = false;
                }
                if answer.done {
                    break;
                }
            }
            if !listening {
                break;
            }
        }
        Ok(listening.then_some(answer))
    }
}

#[async_trait]
impl Brain for OpenAiBrain {
    async fn reply(&self, said: &str, conversation: &mut Conversation, tools: &dyn ToolHost, out: mpsc::Sender<String>) -> Result<(), BackendError> {
        if conversation.messages.is_empty() {
            conversation.messages.push(json!({"role": "system", "content": self.system_prompt}));
        }
        conversation.messages.push(json!({"role": "user", "content": said}));
        let specs = tools_json(&tools.tools());
        for _ in 0..MAX_ROUNDS {
            let Some(answer) = self.round(&conversation.messages, &specs, &out).await? else {
                return Ok(());
            };
            conversation.messages.push(answer.message());
            let calls = answer.calls();
            if calls.is_empty() {
                return Ok(());
            }
            for call in calls {
                let result = run_tool(tools, &call.name, &call.arguments).await;
                conversation.messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": result.to_string()}));
            }
        }
        Err(self.http.protocol(format!("still calling tools after {MAX_ROUNDS} rounds")))
    }
}
