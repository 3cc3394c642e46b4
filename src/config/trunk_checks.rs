//! Checks on `trunks:` and `outbound_routes:`; each error names the field.
//! A trunk handles real money: anything ambiguous stops start-up.
use super::trunks::{split_server, valid_number, valid_trunk_name, valid_user, InboundHost};
use super::Transport;
use super::Config;
use anyhow::{bail, Result};
use std::collections::HashSet;

/// `outbound_routes[].failover`: a bound on the trunks one call out may try.
const MAX_FAILOVER: usize = 4;

pub(super) fn validate_trunks(c: &Config, exts: &HashSet<&str>, groups: &HashSet<&str>) -> Result<()> {
    let agent = c.agent.as_ref().map(|a| a.extension.as_str());
    let target_known = |t: &str| exts.contains(t) || groups.contains(t) || (agent.is_some() && (agent == Some(t) || t == super::AGENT_MEMBER));
    let mut names = HashSet::new();
    for (i, t) in c.trunks.iter().enumerate() {
        let f = format!("trunks[{i}]");
        if !valid_trunk_name(&t.name) {
            bail!("{f}.name: `{}` must be 1-32 characters of a-z, 0-9, _ and -", t.name);
        }
        if !names.insert(t.name.as_str()) {
            bail!("{f}.name: duplicate trunk `{}`", t.name);
        }
        let f = format!("trunks[{i}] ({})", t.name);
        split_server(&t.server).map_err(|e| anyhow::anyhow!("{f}.server: {e}"))?;
        if t.transport == Transport::Tls {
            crate::trunk::tls::verify_name(&t.server).map_err(|e| anyhow::anyhow!("{f}.server: {e}"))?;
        }
        if let Some(ca) = &t.tls_ca {
            if t.transport != Transport::Tls {
                bail!("{f}.tls_ca: only for transport: tls (this trunk is {})", t.transport);
            }
            check_ca_file(ca).map_err(|e| anyhow::anyhow!("{f}.tls_ca: {}: {e}", ca.display()))?;
        }
        if t.srtp != super::SrtpMode::Off && t.transport != Transport::Tls {
            bail!(
                "{f}.srtp: {} needs transport: tls (this trunk is {}): SDES keys travel in the SIP messages, so over {} anyone who sees the media sees its keys too",
                t.srtp.as_str(),
                t.transport,
                t.transport
            );
        }
        for (key, v) in [("username", &t.username), ("auth_username", &t.auth_username), ("caller_id", &t.caller_id)] {
            if let Some(v) = v
                && !valid_user(v)
            {
                bail!("{f}.{key}: `{v}` must be 1-64 letters, digits or + * . _ - ~ !");
            }
        }
        if t.password.as_ref().is_some_and(|p| p.is_empty() || p.contains(['\r', '\n', '"'])) {
            bail!("{f}.password: must not be empty or hold quotes or line breaks");
        }
        if t.register && (t.username.is_none() || t.password.is_none()) {
            bail!("{f}: register: true needs username and password (or register: false for a trunk that trusts our address)");
        }
        if t.password.is_some() && t.username.is_none() {
            bail!("{f}.username: a password needs the username it belongs to");
        }
        if t.expires_secs > 86_400 || t.expires_secs < 5 {
            bail!("{f}.expires_secs: must be between 5 and 86400");
        }
        if t.keepalive_secs != 0 && !(2..=3600).contains(&t.keepalive_secs) {
            bail!("{f}.keepalive_secs: must be 0 (off) or between 2 and 3600");
        }
        for (j, h) in t.inbound_hosts.iter().enumerate() {
            InboundHost::parse(h).map_err(|e| anyhow::anyhow!("{f}.inbound_hosts[{j}]: {e}"))?;
        }
        if !t.register && t.inbound_hosts.is_empty() && (t.inbound.is_some() || !t.dids.is_empty()) {
            bail!("{f}.inbound_hosts: an IP trunk (register: false) takes calls only from the addresses listed here; list the provider's signalling addresses");
        }
        if let Some(target) = &t.inbound
            && !target_known(target)
        {
            bail!("{f}.inbound: `{target}` is not an extension, a group or the agent");
        }
        for (did, target) in &t.dids {
            if !valid_number(did) {
                bail!("{f}.dids: `{did}` is not a phone number (digits, + * #)");
            }
            if !target_known(target) {
                bail!("{f}.dids.{did}: `{target}` is not an extension, a group or the agent");
            }
        }
    }
    for (i, r) in c.outbound_routes.iter().enumerate() {
        let f = format!("outbound_routes[{i}]");
        let Some(t) = c.trunk(&r.trunk) else {
            bail!("{f}.trunk: `{}` is not one of trunks' names", r.trunk);
        };
        if t.caller_id.is_none() && t.username.is_none() {
            bail!("{f}.trunk: trunk `{}` needs a caller_id (or username) to call out with", t.name);
        }
        if r.failover.len() > MAX_FAILOVER {
            bail!("{f}.failover: at most {MAX_FAILOVER} trunks");
        }
        for (j, name) in r.failover.iter().enumerate() {
            let Some(t) = c.trunk(name) else {
                bail!("{f}.failover[{j}]: `{name}` is not one of trunks' names");
            };
            if t.caller_id.is_none() && t.username.is_none() {
                bail!("{f}.failover[{j}]: trunk `{name}` needs a caller_id (or username) to call out with");
            }
            if *name == r.trunk || r.failover[..j].contains(name) {
                bail!("{f}.failover[{j}]: `{name}` is already tried on this route");
            }
        }
        if !r.prefix.is_empty() && !valid_number(&r.prefix) {
            bail!("{f}.prefix: `{}` must be digits, + * # (or empty for every number)", r.prefix);
        }
        if r.strip > 32 {
            bail!("{f}.strip: must be 32 or less");
        }
        if !r.prepend.is_empty() && !valid_number(&r.prepend) {
            bail!("{f}.prepend: `{}` must be digits, + * #", r.prepend);
        }
        if r.extensions.is_empty() {
            bail!("{f}.extensions: list the extensions allowed to call out over this route (nobody is, by default)");
        }
        for (j, e) in r.extensions.iter().enumerate() {
            if !exts.contains(e.as_str()) && agent != Some(e.as_str()) {
                bail!("{f}.extensions[{j}]: `{e}` is not an extension");
            }
        }
    }
    Ok(())
}

/// A `tls_ca` file: readable, not huge, CA certificates in PEM.
fn check_ca_file(path: &std::path::Path) -> Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > crate::trunk::tls::MAX_CA_BYTES {
        return Err(format!("{len} bytes; a CA file is at most {} KiB", crate::trunk::tls::MAX_CA_BYTES / 1024));
    }
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    crate::trunk::tls::parse_ca(&pem).map(drop)
}

#[cfg(test)]
#[path = "trunk_tests.rs"]
mod tests;
