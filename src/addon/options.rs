//! The add-on's `/data/options.json` (written by the Supervisor from the
//! user's Configuration tab, shaped by `schema:` in config.yaml): parsing,
//! validation with errors that name the option, and the step to a normal
//! [`Config`]. Sans-IO: no file, socket or Supervisor is touched here.
use super::option_values::{items, kind, whole};
use crate::config::{self, Config};
use anyhow::{bail, Result};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::path::Path;

/// One `extensions:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionOption {
    pub extension: String,
    pub password: String,
    pub name: Option<String>,
    pub dtmf: config::DtmfMode,
    /// `forward_always`, `forward_busy`, `forward_no_answer`, `forward_no_answer_secs`.
    pub forward: config::ForwardConfig,
    pub dnd: bool,
    /// `kind: doorbell` and its `door_open` digits.
    pub doorbell: bool,
    pub door_open: Option<String>,
}

/// A broker given by hand (`mqtt_host` ...); wins over the Supervisor's.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttOption {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AddonOptions {
    pub extensions: Vec<ExtensionOption>,
    /// Ring groups, already in the config's shape (`members` a list); the
    /// config's checks name their mistakes.
    pub groups: Vec<Value>,
    /// Give every Home Assistant user an extension of their own.
    pub ha_user_extensions: bool,
    /// First number handed to Home Assistant users (then +1, +2, ...).
    pub ha_user_extension_start: u32,
    /// `None`: that transport is off.
    pub sip_udp_port: Option<u16>,
    pub sip_tcp_port: Option<u16>,
    pub sip_tls_port: Option<u16>,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub external_address: Option<IpAddr>,
    /// Already mapped to ha-pbx's levels (trace, debug, info, warn, error).
    pub log_level: String,
    pub mqtt: Option<MqttOption>,
    /// The `agent:` config section (JSON) when the agent is enabled.
    pub agent: Option<Value>,
    /// `trunks:` and `outbound_routes:` in the config's shape (see `trunk_options`).
    pub trunks: Vec<Value>,
    pub outbound_routes: Vec<Value>,
    /// `feature_codes:` with the codes given (`pickup_code` ...); the others keep their defaults.
    pub feature_codes: Value,
    /// `park:` (slots, timeout) when `park_slots` is given; park is off without it.
    pub park: Option<Value>,
    /// `security:` with the limits given (`ban_after_failures` ...); the others keep their defaults.
    pub security: Value,
}

pub const DEFAULT_HA_USER_START: u32 = 100;
pub const DEFAULT_RTP_MIN: u16 = 20000;
pub const DEFAULT_RTP_MAX: u16 = 20999;

/// Options the schema knows; anything else is reported and ignored (an
/// options.json left over from an older version must not stop the PBX).
const KNOWN: &[&str] = &[
    "extensions",
    "groups",
    "ha_user_extensions",
    "ha_user_extension_start",
    "sip_udp_port",
    "sip_tcp_port",
    "sip_tls_port",
    "rtp_port_min",
    "rtp_port_max",
    "external_address",
    "log_level",
    "mqtt_host",
    "mqtt_port",
    "mqtt_username",
    "mqtt_password",
    "agent",
    "trunks",
    "outbound_routes",
    "pickup_code",
    "directed_pickup_code",
    "intercom_code",
    "messages_code",
    "park_code",
    "park_slots",
    "park_timeout_secs",
];

/// Parse and validate the text of options.json. Returns the options and the
/// names of unknown keys (for a warning once logging is up).
pub fn parse(text: &str) -> Result<(AddonOptions, Vec<String>)> {
    let root: Value = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("options.json is not valid JSON: {e}"))?;
    let Value::Object(obj) = root else {
        bail!("options.json: expected an object of options, found {}", kind(&root));
    };
    let unknown: Vec<String> = obj.keys().filter(|k| !KNOWN.contains(&k.as_str()) && !super::security_options::known().any(|s| s == k.as_str())).cloned().collect();

    let extensions = parse_extensions(&obj)?;
    let groups = parse_groups(&obj)?;
    let ha_user_extensions = opt_bool(&obj, "ha_user_extensions")?.unwrap_or(true);
    let ha_user_extension_start = match opt_int(&obj, "ha_user_extension_start")? {
        None => DEFAULT_HA_USER_START,
        Some(n) if (1..=99_999_000).contains(&n) => n as u32,
        Some(n) => bail!("ha_user_extension_start: {n} must be between 1 and 99999000"),
    };
    let sip_udp_port = opt_port(&obj, "sip_udp_port")?;
    let sip_tcp_port = opt_port(&obj, "sip_tcp_port")?;
    let sip_tls_port = opt_port(&obj, "sip_tls_port")?;
    let rtp_port_min = opt_port(&obj, "rtp_port_min")?.unwrap_or(DEFAULT_RTP_MIN);
    let rtp_port_max = opt_port(&obj, "rtp_port_max")?.unwrap_or(DEFAULT_RTP_MAX);
    let external_address = match opt_str(&obj, "external_address")? {
        None => None,
        Some(s) => {
            let ip: IpAddr = s.parse().map_err(|_| {
                anyhow::anyhow!("external_address: `{s}` is not an IP address (e.g. 192.168.1.10, or your public address behind NAT)")
            })?;
            if ip.is_unspecified() || ip.is_multicast() {
                bail!("external_address: `{s}` is not an address devices can reach");
            }
            Some(ip)
        }
    };
    let log_level = match opt_str(&obj, "log_level")?.as_deref() {
        None => "info".to_string(),
        Some(l) => map_log_level(l).ok_or_else(|| {
            anyhow::anyhow!("log_level: `{l}` is not one of trace, debug, info, notice, warning, error, fatal")
        })?,
    };
    let mqtt = match opt_str(&obj, "mqtt_host")? {
        None => {
            for k in ["mqtt_port", "mqtt_username", "mqtt_password"] {
                if obj.get(k).is_some_and(|v| !v.is_null()) {
                    bail!("{k}: set, but mqtt_host is empty; give mqtt_host too, or leave all mqtt_* empty to use the broker Home Assistant knows");
                }
            }
            None
        }
        Some(host) => Some(MqttOption {
            host,
            port: opt_port(&obj, "mqtt_port")?.unwrap_or(1883),
            username: opt_str(&obj, "mqtt_username")?,
            password: opt_str(&obj, "mqtt_password")?,
        }),
    };

    let agent = super::agent_options::parse(&obj)?;
    let security = super::security_options::parse(&obj)?;
    let (trunks, outbound_routes) = super::trunk_options::parse(&obj)?;
    let mut feature_codes = serde_json::Map::new();
    for (option, key) in [("pickup_code", "pickup"), ("directed_pickup_code", "directed_pickup"), ("intercom_code", "intercom"), ("messages_code", "messages"), ("park_code", "park")] {
        if let Some(code) = opt_str(&obj, option)? {
            feature_codes.insert(key.into(), Value::String(code));
        }
    }

    let park_timeout = opt_int(&obj, "park_timeout_secs")?;
    let park = match opt_str(&obj, "park_slots")? {
        Some(slots) => Some(json!({"slots": slots, "timeout_secs": park_timeout.unwrap_or(120)})),
        None if park_timeout.is_some() => bail!("park_timeout_secs: set, but park_slots is empty; give park_slots (e.g. 701-709) to turn call park on"),
        None => None,
    };

    let o = AddonOptions {
        extensions,
        groups,
        ha_user_extensions,
        ha_user_extension_start,
        sip_udp_port,
        sip_tcp_port,
        sip_tls_port,
        rtp_port_min,
        rtp_port_max,
        external_address,
        log_level,
        mqtt,
        agent,
        trunks,
        outbound_routes,
        feature_codes: Value::Object(feature_codes),
        park,
        security,
    };
    o.check()?;
    Ok((o, unknown))
}

/// Home Assistant's (bashio's) level names to ours.
fn map_log_level(l: &str) -> Option<String> {
    Some(
        match l.to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" | "notice" => "info",
            "warning" | "warn" => "warn",
            "error" | "fatal" => "error",
            _ => return None,
        }
        .to_string(),
    )
}

impl AddonOptions {
    /// Checks across options (each field alone was checked while parsing).
    fn check(&self) -> Result<()> {
        if self.sip_udp_port.is_none() && self.sip_tcp_port.is_none() && self.sip_tls_port.is_none() {
            bail!("sip_udp_port, sip_tcp_port, sip_tls_port: all are empty; set at least one so that devices can reach the PBX");
        }
        if let (Some(tcp), Some(tls)) = (self.sip_tcp_port, self.sip_tls_port)
            && tcp == tls
        {
            bail!("sip_tls_port: {tls} is also sip_tcp_port; TLS needs a TCP port of its own (usually 5061)");
        }
        if self.rtp_port_min < 1024 || self.rtp_port_min >= self.rtp_port_max {
            bail!(
                "rtp_port_min: {} must be at least 1024 and below rtp_port_max ({})",
                self.rtp_port_min,
                self.rtp_port_max
            );
        }
        if self.rtp_port_max - self.rtp_port_min + 1 < 4 {
            bail!("rtp_port_max: the range {}-{} holds fewer than 4 ports, not enough for one call", self.rtp_port_min, self.rtp_port_max);
        }
        if let Some(p) = self.sip_udp_port
            && (self.rtp_port_min..=self.rtp_port_max).contains(&p)
        {
            bail!("sip_udp_port: {p} lies inside the RTP range {}-{}", self.rtp_port_min, self.rtp_port_max);
        }
        Ok(())
    }

    /// The TCP ports the PBX listens on for SIP (to keep HTTP off them).
    pub fn sip_tcp_ports(&self) -> Vec<u16> {
        self.sip_tcp_port.into_iter().chain(self.sip_tls_port).collect()
    }
}

fn parse_extensions(obj: &Map<String, Value>) -> Result<Vec<ExtensionOption>> {
    let list = match obj.get("extensions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => bail!("extensions: expected a list, found {}", kind(other)),
    };
    let mut out: Vec<ExtensionOption> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Value::Object(e) = item else {
            bail!("extensions[{i}]: expected {{extension, password, name, dtmf}}, found {}", kind(item));
        };
        for k in e.keys() {
            if !matches!(k.as_str(), "extension" | "password" | "name" | "dtmf" | "dnd" | "kind" | "door_open" | "forward_always" | "forward_busy" | "forward_no_answer" | "forward_no_answer_secs") {
                bail!("extensions[{i}].{k}: unknown field (extension, password, name, dtmf, kind, door_open, dnd and forward_* are known)");
            }
        }
        let field = format!("extensions[{i}]");
        let extension = match e.get("extension") {
            Some(Value::String(s)) => s.trim().to_string(),
            // The UI may hand a number when the user typed one.
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => bail!("{field}.extension: missing"),
            Some(other) => bail!("{field}.extension: expected a number such as \"101\", found {}", kind(other)),
        };
        if extension.is_empty() || extension.len() > 32 || !extension.chars().all(|c| c.is_ascii_alphanumeric() || "._-+*#".contains(c)) {
            bail!("{field}.extension: `{extension}` must be 1-32 characters of digits, letters or .-_+*#");
        }
        let password = match e.get("password") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => bail!("{field}.password: missing (extension {extension})"),
            Some(other) => bail!("{field}.password: expected text, found {}", kind(other)),
        };
        if password.len() < 6 {
            bail!("{field}.password: use at least 6 characters (extension {extension})");
        }
        let name = match e.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => bail!("{field}.name: expected text, found {}", kind(other)),
        };
        let dtmf = match e.get("dtmf") {
            None | Some(Value::Null) => config::DtmfMode::default(),
            Some(Value::String(s)) if s == "rfc4733" => config::DtmfMode::Rfc4733,
            Some(Value::String(s)) if s == "info" => config::DtmfMode::Info,
            Some(Value::String(s)) => bail!("{field}.dtmf: `{s}` must be rfc4733 or info (extension {extension})"),
            Some(other) => bail!("{field}.dtmf: expected rfc4733 or info, found {}", kind(other)),
        };
        if let Some(j) = out.iter().position(|o| o.extension == extension) {
            bail!("{field}.extension: `{extension}` is already extensions[{j}]");
        }
        let target = |k: &str| match e.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(anyhow::anyhow!("{field}.{k}: expected an extension, a group or agent, found {}", kind(other))),
        };
        let mut forward = config::ForwardConfig { always: target("forward_always")?, busy: target("forward_busy")?, no_answer: target("forward_no_answer")?, ..Default::default() };
        if let Some(n) = opt_int(e, "forward_no_answer_secs").map_err(|err| anyhow::anyhow!("{field}.{err}"))? {
            let r = config::NO_ANSWER_SECS;
            match u64::try_from(n) {
                Ok(n) if r.contains(&n) => forward.no_answer_secs = n,
                _ => bail!("{field}.forward_no_answer_secs: {n} must be between {} and {}", r.start(), r.end()),
            }
        }
        let dnd = opt_bool(e, "dnd").map_err(|err| anyhow::anyhow!("{field}.{err}"))?.unwrap_or(false);
        let doorbell = match e.get("kind") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s == "phone" => false,
            Some(Value::String(s)) if s == "doorbell" => true,
            Some(other) => bail!("{field}.kind: expected phone or doorbell, found {other}"),
        };
        let door_open = target("door_open")?;
        out.push(ExtensionOption { extension, password, name, dtmf, forward, dnd, doorbell, door_open });
    }
    Ok(out)
}

/// `groups:` entries to the config's shape: `members` may be one text of
/// numbers separated by commas or spaces (what the options form can hold).
fn parse_groups(obj: &Map<String, Value>) -> Result<Vec<Value>> {
    let list = match obj.get("groups") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => bail!("groups: expected a list, found {}", kind(other)),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Value::Object(g) = item else {
            bail!("groups[{i}]: expected {{extension, name, members, strategy, ring_secs, fallback, everyone, page}}, found {}", kind(item));
        };
        let mut g = g.clone();
        g.retain(|_, v| !v.is_null() && *v != Value::String(String::new()));
        if let Some(Value::String(s)) = g.get("members") {
            let members: Vec<Value> = items(s).map(|m| Value::String(m.into())).collect();
            g.insert("members".into(), Value::Array(members));
        }
        if let Some(Value::Number(n)) = g.get("extension") {
            let n = n.to_string();
            g.insert("extension".into(), Value::String(n));
        }
        out.push(Value::Object(g));
    }
    Ok(out)
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => bail!("{key}: expected true or false, found {}", kind(other)),
    }
}

fn opt_int(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    whole(key, obj.get(key))
}

fn opt_port(obj: &Map<String, Value>, key: &str) -> Result<Option<u16>> {
    match opt_int(obj, key)? {
        None => Ok(None),
        Some(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        Some(p) => bail!("{key}: {p} is not a port number (1-65535)"),
    }
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => bail!("{key}: expected text, found {}", kind(other)),
    }
}

/// What the add-on learned outside options.json (the Supervisor, the
/// environment), needed to build the [`Config`].
#[derive(Debug, Clone)]
pub struct Environment<'a> {
    /// `/data`: the database and the TLS pair live here.
    pub data_dir: &'a Path,
    /// Address the SIP, RTP and HTTP sockets bind to (0.0.0.0 in the add-on).
    pub bind: IpAddr,
    /// Address written into Contact/Via and SDP.
    pub advertise: IpAddr,
    /// The ingress port the Supervisor's proxy connects to.
    pub http_port: u16,
    /// The broker to use when the options name none.
    pub mqtt: Option<crate::config::MqttConfig>,
}

/// Options + environment -> the normal, validated [`Config`]. Built as JSON
/// (a subset of YAML) and run through [`config::parse`], so every check of
/// the YAML path applies and new config fields keep their defaults.
pub fn to_config(o: &AddonOptions, env: &Environment<'_>) -> Result<Config> {
    if o.sip_tcp_ports().contains(&env.http_port) {
        bail!("the ingress port {} given by the Supervisor is also a SIP TCP port; change sip_tcp_port or sip_tls_port", env.http_port);
    }
    let host = |port: u16| match env.bind {
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        IpAddr::V4(ip) => format!("{ip}:{port}"),
    };
    let mut listen = Vec::new();
    if let Some(p) = o.sip_udp_port {
        listen.push(format!("udp://{}", host(p)));
    }
    if let Some(p) = o.sip_tcp_port {
        listen.push(format!("tcp://{}", host(p)));
    }
    if let Some(p) = o.sip_tls_port {
        listen.push(format!("tls://{}", host(p)));
    }
    let extensions: Vec<Value> = o
        .extensions
        .iter()
        .map(|e| {
            let f = &e.forward;
            let forward = json!({"always": f.always, "busy": f.busy, "no_answer": f.no_answer, "no_answer_secs": f.no_answer_secs});
            let kind = if e.doorbell { "doorbell" } else { "phone" };
            json!({"extension": e.extension, "password": e.password, "name": e.name, "dtmf": e.dtmf.as_str(), "forward": forward, "dnd": e.dnd,
                   "kind": kind, "door_open": e.door_open})
        })
        .collect();
    let mqtt = match (&o.mqtt, &env.mqtt) {
        (Some(m), _) => json!({"host": m.host, "port": m.port, "username": m.username, "password": m.password}),
        (None, Some(m)) => json!({"host": m.host, "port": m.port, "username": m.username, "password": m.password,
                                  "discovery_prefix": m.discovery_prefix, "base_topic": m.base_topic}),
        (None, None) => Value::Null,
    };
    let doc = json!({
        "data_dir": env.data_dir,
        "log_level": o.log_level,
        "sip": {"listen": listen, "external_address": env.advertise.to_string()},
        "rtp": {
            "ports": format!("{}-{}", o.rtp_port_min, o.rtp_port_max),
            "address": env.advertise.to_string(),
            "bind": env.bind.to_string(),
        },
        "http": {"listen": host(env.http_port)},
        "extensions": extensions,
        "groups": o.groups,
        "mqtt": mqtt,
        "agent": o.agent,
        "trunks": o.trunks,
        "outbound_routes": o.outbound_routes,
        "feature_codes": o.feature_codes,
        "park": o.park,
        "security": o.security,
    });
    config::parse(&doc.to_string()).map_err(|e| anyhow::anyhow!("add-on options: {e:#}"))
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
