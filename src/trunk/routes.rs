//! Where trunk calls go (sans-IO): which trunk a request comes from, which
//! extension an incoming call rings, and whether an extension may dial a
//! number out. Deny by default: no route, no trunk; not listed, no call.
use crate::config::trunks::{valid_number, valid_user, InboundHost};
use crate::config::{OutboundRoute, TrunkConfig};
use std::net::SocketAddr;

/// The decision on a number an extension dialled that is no extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// No route's prefix matches (404).
    NoRoute,
    /// The route matching it does not list the caller (403).
    NotAllowed { prefix: String, trunk: String },
    /// Send `number` (strip and prepend applied) out on `trunk`.
    Go { trunk: String, number: String },
}

/// The longest matching prefix decides (the first listed on a tie).
pub fn outbound(routes: &[OutboundRoute], caller: &str, dialled: &str) -> Outbound {
    if !valid_number(dialled) {
        return Outbound::NoRoute;
    }
    let Some(route) = best_route(routes, dialled) else { return Outbound::NoRoute };
    if !route.extensions.iter().any(|e| e == caller) {
        return Outbound::NotAllowed { prefix: route.prefix.clone(), trunk: route.trunk.clone() };
    }
    let rest = dialled.get(route.strip..).unwrap_or("");
    let number = format!("{}{}", route.prepend, rest);
    if rest.is_empty() || !valid_number(&number) {
        return Outbound::NoRoute;
    }
    Outbound::Go { trunk: route.trunk.clone(), number }
}

/// Whether the routes let `caller` dial `dialled` out (what `outbound` says
/// when it says Go).
pub fn allows(routes: &[OutboundRoute], caller: &str, dialled: &str) -> bool {
    matches!(outbound(routes, caller, dialled), Outbound::Go { .. })
}

fn best_route<'a>(routes: &'a [OutboundRoute], dialled: &str) -> Option<&'a OutboundRoute> {
    routes.iter().filter(|r| dialled.starts_with(r.prefix.as_str())).fold(None::<&OutboundRoute>, |best, r| match best {
        Some(b) if b.prefix.len() >= r.prefix.len() => Some(b),
        _ => Some(r),
    })
}

/// The trunks a call out to `dialled` tries after the route's `trunk` (the
/// route [`outbound`] chose), in order; empty without `failover`.
pub fn failover_trunks<'a>(routes: &'a [OutboundRoute], dialled: &str) -> &'a [String] {
    best_route(routes, dialled).map_or(&[], |r| r.failover.as_slice())
}

/// The trunk a request from `source` belongs to: an address a registering
/// trunk's `server` resolved to (`resolved`: every SRV target's, not only the
/// one registered with; address and port), or an `inbound_hosts` entry.
pub fn trunk_for_source(
    trunks: &[TrunkConfig],
    source: SocketAddr,
    resolved: impl Fn(&str) -> Vec<SocketAddr>,
) -> Option<&TrunkConfig> {
    let source = unmap(source);
    trunks.iter().find(|t| {
        (t.register && resolved(&t.name).into_iter().any(|s| unmap(s) == source))
            || t.inbound_hosts
                .iter()
                .filter_map(|h| InboundHost::parse(h).ok())
                .any(|h| h.matches(source))
    })
}

fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().map(|ip| SocketAddr::from((ip, v6.port()))).unwrap_or(a),
        v4 => v4,
    }
}

/// An incoming trunk call's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The dialled number found (a DID, or the trunk's own username).
    pub dialled: Option<String>,
    /// The extension, group or agent that rings.
    pub target: String,
}

/// The dialled number is looked for where providers put it: the
/// Request-URI user, then the To user; `dids` are matched with or without
/// a leading `+`. No DID matched: the trunk's `inbound`; neither: `None`.
pub fn inbound(t: &TrunkConfig, ruri_user: Option<&str>, to_user: Option<&str>) -> Option<Inbound> {
    let candidates: Vec<&str> = [ruri_user, to_user].into_iter().flatten().filter(|u| !u.is_empty()).collect();
    let bare = |s: &str| s.trim_start_matches('+').to_string();
    for c in &candidates {
        if let Some((did, target)) = t.dids.iter().find(|(d, _)| bare(d) == bare(c)) {
            return Some(Inbound { dialled: Some(did.clone()), target: target.clone() });
        }
    }
    let dialled = candidates.iter().find(|c| valid_number(c) || Some(**c) == t.username.as_deref()).map(|c| c.to_string());
    t.inbound.as_ref().map(|target| Inbound { dialled, target: target.clone() })
}

/// The caller's number as the extension is shown it: the provider's
/// P-Asserted-Identity user, else the From user; `anonymous` when neither
/// is a plain number or name (nothing of it reaches a header unchecked).
pub fn caller_number(from_user: Option<&str>, asserted_user: Option<&str>) -> String {
    [asserted_user, from_user]
        .into_iter()
        .flatten()
        .find(|u| valid_user(u))
        .map(str::to_string)
        .unwrap_or_else(|| "anonymous".into())
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
