//! A new INVITE from a provider: which trunk sent it (by address: the
//! registered server, or `inbound_hosts`), who calls, and where it rings.
//! Only those addresses skip digest; anything else claiming to be the
//! trunk is an ordinary request and must authenticate as an extension.
use super::update;
use crate::sip::core::SipCore;
use crate::trunk::routes;
use rsipstack::sip::{Header, HeadersExt, Request};
use std::net::SocketAddr;

/// An accepted trunk call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkCall {
    pub trunk: String,
    /// The caller's number (P-Asserted-Identity, else From).
    pub caller: String,
    /// The extension, group or agent it rings.
    pub target: String,
}

/// `None`: not from a trunk's address. `Some(Err(why))`: from a trunk, but
/// the number dialled goes nowhere (404).
pub fn classify(
    core: &SipCore,
    req: &Request,
    source: SocketAddr,
) -> Option<Result<TrunkCall, String>> {
    let trunk = routes::trunk_for_source(&core.config.trunks, source, |name| {
        core.trunks.resolved(name)
    })?;
    let ruri_user = req.uri.user();
    let to_user = req.to_header().ok().and_then(|t| t.uri().ok()).and_then(|u| u.user().map(str::to_string));
    let Some(dest) = routes::inbound(trunk, ruri_user, to_user.as_deref()) else {
        return Some(Err(format!(
            "trunk `{}`: no `dids` entry for {:?} / {:?} and no `inbound`",
            trunk.name,
            ruri_user.unwrap_or(""),
            to_user.as_deref().unwrap_or("")
        )));
    };
    let from_user = req.from_header().ok().and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_string));
    let asserted = req.headers.iter().find_map(|h| match h {
        Header::Other(n, v) if n.eq_ignore_ascii_case("P-Asserted-Identity") => uri_user(v),
        _ => None,
    });
    let caller = routes::caller_number(from_user.as_deref(), asserted.as_deref());
    tracing::info!(trunk = %trunk.name, %caller, dialled = dest.dialled.as_deref().unwrap_or(""), to = %dest.target, %source, "call from the trunk");
    update(core, &trunk.name, |s| s.last_caller = Some(caller.clone()));
    Some(Ok(TrunkCall { trunk: trunk.name.clone(), caller, target: dest.target }))
}

/// The user part of the first URI in a header value (`"Name" <sip:u@h>, ...`).
pub(crate) fn uri_user(v: &str) -> Option<String> {
    let start = v.find("sip:").or_else(|| v.find("tel:"))?;
    let rest = &v[start + 4..];
    let end = rest.find(['@', '>', ';', ',']).unwrap_or(rest.len());
    let user = &rest[..end];
    (rest[end..].starts_with('@') || v[start..].starts_with("tel:")).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::uri_user;

    #[test]
    fn asserted_identity_user() {
        assert_eq!(uri_user("\"Anna\" <sip:+4917012345@carrier.example>;x=y").as_deref(), Some("+4917012345"));
        assert_eq!(uri_user("<tel:+4917012345>").as_deref(), Some("+4917012345"));
        assert_eq!(uri_user("<sip:carrier.example>"), None, "no user part");
        assert_eq!(uri_user("junk"), None);
    }
}
