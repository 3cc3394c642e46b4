//! SUBSCRIBE (RFC 6665): authenticate, read the request into a
//! [`Subscribe`], let the [`Table`](super::table::Table) decide, answer,
//! and queue the first NOTIFY. Bad input gets a 4xx and a log line naming
//! the field.
use super::table::{Package, Peer, Refusal, Subscribe, ALLOW_EVENTS};
use crate::sip::auth::request::{authenticate, AuthOutcome};
use crate::sip::core::{connection_transport, transport_name, SipCore, SipCoreRef};
use rsipstack::sip::{Header, HeadersExt, Request, Response, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

pub async fn handle_subscribe(core: &SipCoreRef, tx: &mut Transaction, source: SocketAddr) {
    let transport = tx.connection.as_ref().map(connection_transport).unwrap_or(rsipstack::sip::Transport::Udp);
    let (resp, first) = answer(core, &tx.original, source, transport);
    if let Err(e) = tx.respond(resp).await {
        tracing::debug!(error = %e, "SUBSCRIBE response not sent");
        return;
    }
    // RFC 6665 4.2.1.2: the state at once, after the 200.
    if let Some(n) = first {
        core.subscriptions.send(core, n, None);
    }
}

fn reply(core: &SipCore, req: &Request, status: StatusCode) -> Response {
    let mut r = core.endpoint.make_response(req, status, None);
    crate::sip::auth::request::ensure_to_tag(&mut r);
    r
}

/// The response, and the NOTIFY to send after it.
fn answer(core: &SipCore, req: &Request, source: SocketAddr, transport: rsipstack::sip::Transport) -> (Response, Option<super::table::Notify>) {
    let owner = match authenticate(core, req, source, Some(transport), false) {
        AuthOutcome::Ok(ext) => ext,
        AuthOutcome::Reply(r) => return (r, None),
    };
    let event = req.headers.iter().find_map(|h| match h {
        Header::Event(e) => Some(e.value().to_string()),
        _ => None,
    });
    let Some(package) = event.as_deref().and_then(Package::parse) else {
        tracing::info!(%source, %owner, event = ?event, "SUBSCRIBE for an event package we do not serve: 489");
        let mut r = reply(core, req, StatusCode::BadEvent);
        r.headers.push(Header::Other("Allow-Events".into(), ALLOW_EVENTS.into()));
        return (r, None);
    };
    let parsed = match parse(req, &owner, package, event.as_deref().unwrap_or(""), source, transport) {
        Ok(p) => p,
        Err(why) => {
            tracing::info!(%source, %owner, "bad SUBSCRIBE: {why}");
            return (reply(core, req, StatusCode::BadRequest), None);
        }
    };
    let parsed = Subscribe { target_known: core.extension_exists(&parsed.target) && !core.is_agent(&parsed.target) || core.config.group(&parsed.target).is_some(), ..parsed };
    let (target, new) = (parsed.target.clone(), parsed.to_tag.is_none());
    match core.subscriptions.subscribe(parsed) {
        Ok(a) => {
            if new {
                tracing::info!(%source, %owner, %target, package = package.name(), expires = a.expires, "subscribed");
            }
            let mut r = core.endpoint.make_response(req, StatusCode::OK, None);
            if let Ok(to) = r.to_header_mut()
                && to.tag().ok().flatten().is_none()
            {
                let _ = to.mut_tag(a.local_tag.clone().into());
            }
            r.headers.push(Header::Expires(a.expires.to_string().into()));
            r.headers.push(Header::Contact(format!("<{}>", core.contact_uri(None, crate::sip::core::listener_transport(transport))).into()));
            (r, Some(a.notify))
        }
        Err(refusal) => {
            let status = StatusCode::from(refusal.status());
            match &refusal {
                Refusal::ExtensionFull => tracing::warn!(%source, %owner, "SUBSCRIBE refused: sip.subscriptions.max_per_extension reached"),
                Refusal::TableFull => tracing::warn!(%source, %owner, "SUBSCRIBE refused: sip.subscriptions.max_total reached"),
                other => tracing::info!(%source, %owner, %target, package = package.name(), refusal = ?other, "SUBSCRIBE refused"),
            }
            let mut r = reply(core, req, status);
            if let Refusal::IntervalTooBrief(min) = refusal {
                r.headers.push(Header::MinExpires(min.to_string().into()));
            }
            (r, None)
        }
    }
}

/// The request's fields; `Err` names the field that is missing or malformed.
pub(crate) fn parse(req: &Request, owner: &str, package: Package, event: &str, source: SocketAddr, transport: rsipstack::sip::Transport) -> Result<Subscribe, String> {
    let target = req.uri.user().map(str::to_string).filter(|u| !u.is_empty()).ok_or("Request-URI has no user part (the watched extension)")?;
    // nothing that could break a NOTIFY body's line or a log line (fuzz: a CR got in)
    if !target.chars().all(|c| c.is_ascii_graphic()) {
        return Err("Request-URI user (the watched extension) has spaces or control characters".into());
    }
    let expires = match req.expires_header() {
        Some(e) => Some(e.value().trim().parse::<u32>().map_err(|_| format!("bad Expires `{}`", e.value()))?),
        None => None,
    };
    let call_id = req.call_id_header().map_err(|_| "no Call-ID")?.value().to_string();
    let from = req.from_header().map_err(|_| "no From")?;
    let remote_tag = from.tag().ok().flatten().map(|t| t.value().to_string()).filter(|t| !t.is_empty()).ok_or("From has no tag")?;
    let remote_uri = from.uri().map_err(|e| format!("bad From: {e}"))?.to_string();
    let to = req.to_header().map_err(|_| "no To")?;
    let to_tag = to.tag().ok().flatten().map(|t| t.value().to_string());
    let local_uri = to.uri().map_err(|e| format!("bad To: {e}"))?.to_string();
    let contact = req
        .typed_contact_headers()
        .map_err(|e| format!("bad Contact: {e}"))?
        .into_iter()
        .next()
        .ok_or("no Contact (where NOTIFYs go)")?
        .uri
        .to_string();
    let route_set = req
        .typed_record_route_headers()
        .map_err(|e| format!("bad Record-Route: {e}"))?
        .into_iter()
        .map(|r| r.uri.to_string())
        .collect::<Vec<_>>();
    if route_set.len() > 8 {
        return Err("more than 8 Record-Route entries".into());
    }
    let event_id = event
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("id"))
        .map(|(_, v)| v.trim().to_string());
    if event_id.as_ref().is_some_and(|i| i.len() > 64 || !i.chars().all(|c| c.is_ascii_graphic())) {
        return Err("bad Event id parameter".into());
    }
    Ok(Subscribe {
        owner: owner.to_string(),
        package,
        event_id,
        target,
        target_known: false,
        expires,
        call_id,
        remote_tag,
        to_tag,
        remote_uri,
        local_uri,
        peer: Peer { remote_target: contact, route_set, destination: source.to_string(), transport: transport_name(transport).to_string() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `subscribe` fuzz target: a Request-URI user with a CR
    /// and NULs was taken as the watched extension and reached the
    /// message-summary body.
    #[test]
    fn a_target_with_control_characters_is_refused() {
        let data = include_bytes!("../../../fuzz/regressions/subscribe-control-chars-in-target");
        let Ok(rsipstack::sip::SipMessage::Request(req)) = rsipstack::sip::SipMessage::try_from(&data[..]) else { panic!("the input parses") };
        let source: SocketAddr = ([192, 0, 2, 8], 5060).into();
        let err = parse(&req, "101", Package::MessageSummary, "message-summary", source, rsipstack::sip::Transport::Udp).unwrap_err();
        assert!(err.contains("control characters"), "{err}");
    }
}
