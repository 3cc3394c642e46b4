//! The add-on's `agent` option (a group in config.yaml's schema) -> the
//! `agent:` section of the YAML config, as JSON. The group has the same
//! shape and names as that section, so the config's own checks (run by
//! `options::to_config`) name the same field the user sees; only a Wyoming
//! service is given as `host` + `port` (fields the Configuration tab can
//! check) instead of a `tcp://` URL. Sans-IO.
use super::option_values::{count, kind};
use crate::agent::backends::http::check_base_url;
use crate::agent::backends::wyoming::parse_tcp_url;
use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

const AGENT_KEYS: &[&str] = &[
    "enabled",
    "extension",
    "name",
    "greeting",
    "apology",
    "language",
    "end_of_turn_ms",
    "early_stt_ms",
    "max_call_secs",
    "silence_secs",
    "backend_timeout_secs",
    "stt",
    "tts",
    "brain",
    "allowed_entities",
    "handoff",
];
// Fields of both kinds are accepted in each group: switching `kind` in the
// Configuration tab leaves the other kind's fields filled in; they are unused.
const STT_KEYS: &[&str] = &["kind", "host", "port", "url", "api_key", "model"];
const TTS_KEYS: &[&str] = &["kind", "host", "port", "voice", "url", "api_key", "model"];
const BRAIN_KEYS: &[&str] = &["kind", "agent_id", "url", "api_key", "model", "system_prompt"];
const HANDOFF_KEYS: &[&str] = &["callee", "caller", "between", "ring_secs"];

/// `None`: the agent stays off (no `agent` option, or `enabled: false`;
/// nothing else in the group is looked at then).
pub fn parse(options: &Map<String, Value>) -> Result<Option<Value>> {
    let Some(g) = Group::of(options, "agent", "agent")? else {
        return Ok(None);
    };
    if !g.bool("enabled")?.unwrap_or(false) {
        return Ok(None);
    }
    g.known(AGENT_KEYS)?;
    let mut out = Map::new();
    put(&mut out, "extension", g.text_or_number("extension")?);
    for k in ["name", "greeting", "apology", "language"] {
        put(&mut out, k, g.str(k)?);
    }
    for k in ["end_of_turn_ms", "early_stt_ms", "max_call_secs", "silence_secs", "backend_timeout_secs"] {
        if let Some(n) = g.uint(k)? {
            out.insert(k.into(), n.into());
        }
    }
    out.insert("stt".into(), stt(&g.required_group("stt")?)?);
    out.insert("tts".into(), tts(&g.required_group("tts")?)?);
    out.insert("brain".into(), brain(&g.required_group("brain")?)?);
    out.insert("allowed_entities".into(), allowed_entities(&g)?.into());
    out.insert("handoff".into(), handoff(&g)?.into());
    Ok(Some(Value::Object(out)))
}

fn stt(g: &Group) -> Result<Value> {
    g.known(STT_KEYS)?;
    Ok(match g.kind(&["wyoming", "openai"])? {
        "wyoming" => json!({"kind": "wyoming", "url": g.wyoming_url("core-whisper", 10300)?}),
        _ => {
            let mut m = openai(g)?;
            put(&mut m, "model", g.str("model")?);
            Value::Object(m)
        }
    })
}

fn tts(g: &Group) -> Result<Value> {
    g.known(TTS_KEYS)?;
    let mut m = match g.kind(&["wyoming", "openai"])? {
        "wyoming" => {
            let mut m = Map::new();
            m.insert("kind".into(), "wyoming".into());
            m.insert("url".into(), g.wyoming_url("core-piper", 10200)?.into());
            m
        }
        _ => {
            let mut m = openai(g)?;
            put(&mut m, "model", g.str("model")?);
            m
        }
    };
    put(&mut m, "voice", g.str("voice")?);
    Ok(Value::Object(m))
}

fn brain(g: &Group) -> Result<Value> {
    g.known(BRAIN_KEYS)?;
    let m = match g.kind(&["assist", "openai"])? {
        "assist" => {
            let mut m = Map::new();
            m.insert("kind".into(), "assist".into());
            put(&mut m, "agent_id", g.str("agent_id")?);
            m
        }
        _ => {
            let mut m = openai(g)?;
            let Some(model) = g.str("model")? else {
                bail!("{}: missing; the LLM's model name, e.g. gpt-4o-mini or llama3.2", g.field("model"));
            };
            m.insert("model".into(), model.into());
            put(&mut m, "system_prompt", g.str("system_prompt")?);
            m
        }
    };
    Ok(Value::Object(m))
}

/// `kind: openai`'s url and api_key.
fn openai(g: &Group) -> Result<Map<String, Value>> {
    let Some(url) = g.str("url")? else {
        bail!("{}: missing; kind openai needs the service's base URL, e.g. https://api.openai.com/v1", g.field("url"));
    };
    let url = check_base_url(&url).map_err(|e| anyhow::anyhow!("{}: {e}", g.field("url")))?;
    let mut m = Map::new();
    m.insert("kind".into(), "openai".into());
    m.insert("url".into(), url.into());
    put(&mut m, "api_key", g.str("api_key")?);
    Ok(m)
}

fn allowed_entities(g: &Group) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, v) in g.list("allowed_entities")?.iter().enumerate() {
        let field = format!("{}[{i}]", g.field("allowed_entities"));
        let Value::String(s) = v else {
            bail!("{field}: expected an entity ID such as light.hallway, found {}", kind(v));
        };
        let id = s.trim();
        let valid = id.split_once('.').is_some_and(|(d, o)| {
            let part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            part(d) && part(o)
        });
        if !valid {
            bail!("{field}: `{s}` is not an entity ID (domain.object_id, e.g. light.hallway)");
        }
        out.push(id.into());
    }
    Ok(out)
}

fn handoff(g: &Group) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, v) in g.list("handoff")?.iter().enumerate() {
        let path = format!("{}[{i}]", g.field("handoff"));
        let Value::Object(obj) = v else {
            bail!("{path}: expected {{callee, caller, between, ring_secs}}, found {}", kind(v));
        };
        let r = Group { obj, path };
        r.known(HANDOFF_KEYS)?;
        let mut m = Map::new();
        put(&mut m, "callee", r.text_or_number("callee")?);
        put(&mut m, "caller", r.text_or_number("caller")?);
        put(&mut m, "between", r.str("between")?);
        let ring = r.uint("ring_secs")?.unwrap_or(0);
        if m.is_empty() && ring == 0 {
            bail!("{}: empty; give callee, caller, between or ring_secs (an empty rule would give every call to the agent unrung)", r.path);
        }
        m.insert("ring_secs".into(), ring.into());
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), v.into());
    }
}

/// One object of options and its path for errors (`agent.stt`).
struct Group<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

impl<'a> Group<'a> {
    /// `parent[key]` as a group; `None` when absent.
    fn of(parent: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<Group<'a>>> {
        match parent.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(obj)) => Ok(Some(Group { obj, path: path.into() })),
            Some(other) => bail!("{path}: expected a group of options, found {}", kind(other)),
        }
    }

    fn required_group(&self, key: &str) -> Result<Group<'a>> {
        let path = self.field(key);
        Group::of(self.obj, key, &path)?.ok_or_else(|| anyhow::anyhow!("{path}: missing"))
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn known(&self, keys: &[&str]) -> Result<()> {
        match self.obj.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => bail!("{}: unknown option ({} are known)", self.field(k), keys.join(", ")),
            None => Ok(()),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => bail!("{}: expected true or false, found {}", self.field(key), kind(other)),
        }
    }

    /// Trimmed; empty is unset.
    fn str(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => bail!("{}: expected text, found {}", self.field(key), kind(other)),
        }
    }

    /// Numbers such as an extension may come as JSON numbers.
    fn text_or_number(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            _ => self.str(key),
        }
    }

    fn uint(&self, key: &str) -> Result<Option<u64>> {
        count(&self.field(key), self.obj.get(key))
    }

    fn list(&self, key: &str) -> Result<&'a [Value]> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => bail!("{}: expected a list, found {}", self.field(key), kind(other)),
        }
    }

    fn kind(&self, allowed: &[&'static str]) -> Result<&'static str> {
        let field = self.field("kind");
        let Some(k) = self.str("kind")? else {
            bail!("{field}: missing; one of {}", allowed.join(", "));
        };
        allowed.iter().find(|a| **a == k).copied().ok_or_else(|| anyhow::anyhow!("{field}: `{k}` is not one of {}", allowed.join(", ")))
    }

    /// `host` + `port` -> `tcp://host:port`, checked as the backend will.
    fn wyoming_url(&self, addon_host: &str, addon_port: u16) -> Result<String> {
        let Some(host) = self.str("host")? else {
            bail!("{}: missing; the Wyoming service's host name or address (the add-on's is {addon_host})", self.field("host"));
        };
        let port = match self.uint("port")? {
            None => bail!("{}: missing; the Wyoming service's port (the add-on's is {addon_port})", self.field("port")),
            Some(p) if (1..=65535).contains(&p) => p,
            Some(p) => bail!("{}: {p} is not a port number (1-65535)", self.field("port")),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c)) {
            bail!("{}: `{host}` is not a host name or IP address (no scheme, port or path here)", self.field("host"));
        }
        let url = if bare.contains(':') { format!("tcp://[{bare}]:{port}") } else { format!("tcp://{bare}:{port}") };
        parse_tcp_url(&url).map_err(|e| anyhow::anyhow!("{}: {e}", self.field("host")))?;
        Ok(url)
    }
}
