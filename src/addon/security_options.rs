//! The config's `security:` limits as add-on options (`ban_after_failures`,
//! `flood_rate`, `trusted_sources` ...). Each is optional: left out, it keeps
//! the config file's default, so an install's options stay valid. The values
//! get the very checks of the YAML file (`config::validate::security`), with
//! errors naming the option. Sans-IO.
use super::option_values::{count, items, kind};
use crate::config::{validate, SecurityConfig};
use anyhow::{bail, Result};
use serde_json::{Map, Number, Value};

/// Whole-number options (the config's field of the same name).
pub const INTEGERS: &[&str] = &[
    "ban_after_failures",
    "ban_window_secs",
    "ban_secs",
    "flood_burst",
    "flood_ban_secs",
    "max_calls_per_extension",
    "max_calls",
    "max_media_per_call",
    "max_sip_connections",
    "max_sip_connections_per_ip",
    "max_websockets_per_ip",
    "idle_connection_secs",
];
/// Lists of text; the form may also hand one text with commas or spaces.
pub const LISTS: &[&str] = &["trusted_sources", "blocked_user_agents"];
/// `flood_rate`: requests per second, may have a fraction.
pub const RATE: &str = "flood_rate";

/// Every option this module reads.
pub fn known() -> impl Iterator<Item = &'static str> {
    INTEGERS.iter().chain(LISTS).copied().chain([RATE])
}

/// The `security:` section (JSON, only the options given), checked.
pub fn parse(obj: &Map<String, Value>) -> Result<Value> {
    let mut out = Map::new();
    for &key in INTEGERS {
        let Some(n) = count(key, obj.get(key))? else { continue };
        if key == "ban_after_failures" || key == "flood_burst" {
            u32::try_from(n).map_err(|_| anyhow::anyhow!("{key}: {n} is too large"))?;
        }
        out.insert(key.into(), Value::Number(n.into()));
    }
    let rate = match obj.get(RATE) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => Some(s.trim().parse::<f64>().map_err(|_| anyhow::anyhow!("{RATE}: `{s}` is not a number"))?),
        Some(other) => bail!("{RATE}: expected a number, found {}", kind(other)),
    };
    if let Some(r) = rate {
        let n = Number::from_f64(r).ok_or_else(|| anyhow::anyhow!("{RATE}: must be a number >= 0 (0 turns the limit off)"))?;
        out.insert(RATE.into(), Value::Number(n));
    }
    for &key in LISTS {
        let items: Vec<String> = match obj.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => items(s).map(String::from).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Null => None,
                    Value::String(s) if s.trim().is_empty() => None,
                    Value::String(s) => Some(Ok(s.trim().to_string())),
                    other => Some(Err(anyhow::anyhow!("{key}[{i}]: expected text, found {}", kind(other)))),
                })
                .collect::<Result<_>>()?,
            Some(other) => bail!("{key}: expected a list, found {}", kind(other)),
        };
        // An empty list keeps the default: a form saved with the list cleared
        // must not silently let scanners in.
        if !items.is_empty() {
            out.insert(key.into(), Value::Array(items.into_iter().map(Value::String).collect()));
        }
    }
    let section = Value::Object(out);
    let sec: SecurityConfig = serde_json::from_value(section.clone()).map_err(|e| anyhow::anyhow!("security options: {e}"))?;
    validate::security(&sec, "")?;
    Ok(section)
}
