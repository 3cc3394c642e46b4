//! Checks serde cannot express; each error names the offending field.
use super::{Config, Transport};
use anyhow::{bail, Result};
use std::collections::HashSet;

pub(super) fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let Some((a, b)) = s.split_once('-') else {
        bail!("rtp.ports: `{s}` is not a FIRST-LAST range such as 20000-20999");
    };
    let first: u16 = a.trim().parse().map_err(|_| anyhow::anyhow!("rtp.ports: `{a}` is not a port number"))?;
    let last: u16 = b.trim().parse().map_err(|_| anyhow::anyhow!("rtp.ports: `{b}` is not a port number"))?;
    if first < 1024 || first >= last {
        bail!("rtp.ports: `{s}` must be FIRST-LAST with 1024 <= FIRST < LAST");
    }
    if last - first + 1 < 4 {
        bail!("rtp.ports: `{s}` holds fewer than 4 ports, not enough for one call");
    }
    Ok((first, last))
}

pub fn valid_extension(ext: &str) -> bool {
    !ext.is_empty()
        && ext.len() <= 32
        && ext.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '*' | '#'))
}

pub(super) fn validate(c: &Config) -> Result<()> {
    if let Some(level) = &c.log_level
        && !matches!(level.as_str(), "trace" | "debug" | "info" | "warn" | "error") {
            bail!("log_level: `{level}` is not one of trace, debug, info, warn, error");
        }
    if c.sip.listen.is_empty() {
        bail!("sip.listen: at least one listen address is needed");
    }
    let mut seen = HashSet::new();
    for (i, l) in c.sip.listen.iter().enumerate() {
        if !seen.insert((l.transport, l.addr)) {
            bail!("sip.listen[{i}]: `{l}` is listed twice");
        }
    }
    if c.sip.tls.is_some() && !c.sip.listen.iter().any(|l| l.transport == Transport::Tls) {
        tracing::warn!("sip.tls is set but sip.listen has no tls:// address; the pair is unused");
    }
    if c.sip.realm.trim().is_empty() {
        bail!("sip.realm: must not be empty");
    }
    let r = &c.sip.registration;
    if r.min_expires == 0 || r.min_expires > r.max_expires {
        bail!("sip.registration.min_expires: must be > 0 and <= max_expires ({})", r.max_expires);
    }
    if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
        bail!("sip.registration.default_expires: must lie between min_expires and max_expires");
    }
    if r.max_contacts == 0 || r.max_contacts > 100 {
        bail!("sip.registration.max_contacts: must be between 1 and 100");
    }
    let s = &c.sip.subscriptions;
    if s.min_expires == 0 || s.min_expires > s.max_expires {
        bail!("sip.subscriptions.min_expires: must be > 0 and <= max_expires ({})", s.max_expires);
    }
    if s.default_expires < s.min_expires || s.default_expires > s.max_expires {
        bail!("sip.subscriptions.default_expires: must lie between min_expires and max_expires");
    }
    if s.max_per_extension == 0 || s.max_per_extension > s.max_total {
        bail!("sip.subscriptions.max_per_extension: must be between 1 and max_total ({})", s.max_total);
    }
    if s.max_total > 100_000 {
        bail!("sip.subscriptions.max_total: at most 100000");
    }
    if c.sip.digest_algorithms.is_empty() {
        bail!("sip.digest_algorithms: at least one of MD5, SHA-256 is needed");
    }
    if c.sip.nonce_ttl_secs < 10 {
        bail!("sip.nonce_ttl_secs: must be at least 10");
    }
    if c.sip.ring_timeout_secs == 0 {
        bail!("sip.ring_timeout_secs: must be > 0");
    }
    parse_port_range(&c.rtp.ports)?;
    if c.rtp.address.is_unspecified() {
        bail!("rtp.address: `{}` cannot be written into SDP; give the address devices reach", c.rtp.address);
    }
    if c.rtp.media_timeout_secs == 0 {
        bail!("rtp.media_timeout_secs: must be > 0");
    }
    if let Some(ip) = c.sip.external_address
        && ip.is_unspecified() {
            bail!("sip.external_address: `{ip}` is not an address devices can reach");
        }
    if c.http.wss_listen.is_some_and(|w| w.port() == c.http.listen.port() && (w.ip() == c.http.listen.ip() || w.ip().is_unspecified() || c.http.listen.ip().is_unspecified())) {
        bail!("http.wss_listen: `{}` is the port of http.listen; give WSS its own port", c.http.wss_listen.expect("checked"));
    }
    if c.http.api_token.as_ref().is_some_and(|t| t.len() < 16) {
        bail!("http.api_token: use at least 16 characters");
    }
    security(&c.security, "security.")?;
    if let Some(m) = &c.mqtt {
        if m.host.trim().is_empty() {
            bail!("mqtt.host: must not be empty");
        }
        for (field, topic) in [("mqtt.discovery_prefix", &m.discovery_prefix), ("mqtt.base_topic", &m.base_topic)] {
            if topic.is_empty() || topic.contains(['+', '#']) || topic.starts_with('/') || topic.ends_with('/') {
                bail!("{field}: `{topic}` must be a plain topic without wildcards or leading/trailing `/`");
            }
        }
    }
    let mut exts = HashSet::new();
    for (i, e) in c.extensions.iter().enumerate() {
        if !valid_extension(&e.extension) {
            bail!("extensions[{i}].extension: `{}` must be 1-32 characters of digits, letters or .-_+*#", e.extension);
        }
        if !exts.insert(e.extension.as_str()) {
            bail!("extensions[{i}].extension: duplicate extension `{}`", e.extension);
        }
        if e.password.is_empty() {
            bail!("extensions[{i}].password: must not be empty (extension {})", e.extension);
        }
    }
    if let Some(a) = &c.agent {
        if !valid_extension(&a.extension) {
            bail!("agent.extension: `{}` must be 1-32 characters of digits, letters or .-_+*#", a.extension);
        }
        if exts.contains(a.extension.as_str()) {
            bail!("agent.extension: `{}` is also in extensions; the agent needs a number of its own", a.extension);
        }
        if a.end_of_turn_ms < 200 || a.end_of_turn_ms > 5000 {
            bail!("agent.end_of_turn_ms: must be between 200 and 5000");
        }
        if a.early_stt_ms != 0 && (a.early_stt_ms < 100 || a.early_stt_ms >= a.end_of_turn_ms) {
            bail!("agent.early_stt_ms: must be 0 (off) or from 100 to less than end_of_turn_ms ({})", a.end_of_turn_ms);
        }
        if a.backend_timeout_secs == 0 || a.max_call_secs == 0 || a.silence_secs == 0 {
            bail!("agent: backend_timeout_secs, max_call_secs and silence_secs must be > 0");
        }
        for (i, r) in a.handoff.iter().enumerate() {
            if let Some(w) = &r.between
                && super::parse_window(w).is_none() {
                    bail!("agent.handoff[{i}].between: `{w}` is not HH:MM-HH:MM");
                }
            if r.callee.as_deref() == Some(a.extension.as_str()) {
                bail!("agent.handoff[{i}].callee: the agent's own extension needs no handoff");
            }
        }
    }
    validate_groups(c, &exts)?;
    let numbers = c.extensions.iter().map(|e| e.extension.as_str()).chain(c.groups.iter().map(|g| g.extension.as_str()));
    let numbers = numbers.chain(c.agent.iter().map(|a| a.extension.as_str()));
    c.feature_codes.validate(numbers.clone())?;
    if let Some(p) = &c.park {
        p.validate(numbers, &c.feature_codes)?;
    }
    let groups: HashSet<&str> = c.groups.iter().map(|g| g.extension.as_str()).collect();
    super::trunk_checks::validate_trunks(c, &exts, &groups)?;
    for (i, e) in c.extensions.iter().enumerate() {
        for (key, target) in e.forward.targets() {
            let known = exts.contains(target.as_str()) || groups.contains(target.as_str()) || (c.agent.is_some() && (target == super::AGENT_MEMBER || c.agent.as_ref().is_some_and(|a| a.extension == *target)));
            let outside = || crate::trunk::routes::allows(&c.outbound_routes, &e.extension, target);
            if !known && !outside() {
                bail!("extensions[{i}].forward.{key}: `{target}` is not an extension, a group or agent, and no outbound route lets extension {} call it (a route's `extensions` must list it)", e.extension);
            }
            if *target == e.extension {
                bail!("extensions[{i}].forward.{key}: an extension cannot forward to itself");
            }
        }
        if let Some(d) = &e.door_open
            && (d.is_empty() || d.len() > 32 || !d.chars().all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c)))
        {
            bail!("extensions[{i}].door_open: `{d}` must be 1-32 DTMF digits (0-9 * # A-D)");
        }
        if !super::NO_ANSWER_SECS.contains(&e.forward.no_answer_secs) {
            let r = super::NO_ANSWER_SECS;
            bail!("extensions[{i}].forward.no_answer_secs: {} must be between {} and {}", e.forward.no_answer_secs, r.start(), r.end());
        }
    }
    Ok(())
}

fn validate_groups(c: &Config, exts: &HashSet<&str>) -> Result<()> {
    use super::AGENT_MEMBER;
    let agent = c.agent.as_ref().map(|a| a.extension.as_str());
    let groups: HashSet<&str> = c.groups.iter().map(|g| g.extension.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, g) in c.groups.iter().enumerate() {
        if !valid_extension(&g.extension) {
            bail!("groups[{i}].extension: `{}` must be 1-32 characters of digits, letters or .-_+*#", g.extension);
        }
        if exts.contains(g.extension.as_str()) || agent == Some(g.extension.as_str()) || g.extension == AGENT_MEMBER {
            bail!("groups[{i}].extension: `{}` is already an extension's number; a group needs a number of its own", g.extension);
        }
        if !seen.insert(g.extension.as_str()) {
            bail!("groups[{i}].extension: duplicate group `{}`", g.extension);
        }
        if g.members.is_empty() && !g.everyone {
            bail!("groups[{i}].members: list at least one extension (or set everyone: true)");
        }
        if g.ring_secs == 0 {
            bail!("groups[{i}].ring_secs: must be > 0");
        }
        let targets = g.members.iter().enumerate().map(|(j, m)| (format!("groups[{i}].members[{j}]"), m)).chain(g.fallback.iter().map(|f| (format!("groups[{i}].fallback"), f)));
        for (field, m) in targets {
            if m == AGENT_MEMBER {
                if c.agent.is_none() {
                    bail!("{field}: `agent` needs the agent section");
                }
            } else if !valid_extension(m) {
                bail!("{field}: `{m}` is not an extension number");
            } else if groups.contains(m.as_str()) {
                bail!("{field}: `{m}` is a group; groups cannot hold groups");
            }
        }
    }
    Ok(())
}

/// The `security:` section's checks; `prefix` goes before each field's name
/// (`security.` in the YAML file, nothing for the add-on's options).
pub fn security(sec: &super::SecurityConfig, prefix: &str) -> Result<()> {
    if sec.max_message_bytes < 1024 || sec.max_message_bytes > 65535 {
        bail!("{prefix}max_message_bytes: must be between 1024 and 65535");
    }
    for (key, value) in [("idle_connection_secs", sec.idle_connection_secs), ("http_header_timeout_secs", sec.http_header_timeout_secs)] {
        if value == 0 || value > 86_400 {
            bail!("{prefix}{key}: must be between 1 and 86400");
        }
    }
    for (key, value) in [
        ("max_sip_connections", sec.max_sip_connections),
        ("max_sip_connections_per_ip", sec.max_sip_connections_per_ip),
        ("max_websockets", sec.max_websockets),
        ("max_websockets_per_ip", sec.max_websockets_per_ip),
        ("max_media_per_call", sec.max_media_per_call),
        ("max_calls_per_extension", sec.max_calls_per_extension),
        ("max_calls", sec.max_calls),
    ] {
        if value == 0 {
            bail!("{prefix}{key}: must be > 0");
        }
    }
    // A ban of 0 s, or a window of 0 s, would switch the ban off silently.
    for (key, secs) in [("ban_window_secs", sec.ban_window_secs), ("ban_secs", sec.ban_secs), ("flood_ban_secs", sec.flood_ban_secs)] {
        if secs == 0 {
            bail!("{prefix}{key}: must be > 0");
        }
    }
    if !sec.flood_rate.is_finite() || sec.flood_rate < 0.0 {
        bail!("{prefix}flood_rate: must be a number >= 0 (0 turns the limit off)");
    }
    if sec.flood_burst == 0 {
        bail!("{prefix}flood_burst: must be > 0");
    }
    for (i, s) in sec.trusted_sources.iter().enumerate() {
        super::Cidr::parse(s).map_err(|e| anyhow::anyhow!("{prefix}trusted_sources[{i}]: {e}"))?;
    }
    if sec.ban_after_failures == 0 {
        bail!("{prefix}ban_after_failures: must be > 0");
    }
    Ok(())
}
