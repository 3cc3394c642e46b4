//! REGISTER: authenticate, update the location service, persist, answer with
//! the bindings and their remaining lifetime.
use super::bindings::{Binding, Change, ContactRequest, RegisterError, RegisterRequest};
use crate::events::PbxEvent;
use crate::sip::diagnostics::Reason;
use crate::sip::auth::request::{authenticate, ensure_to_tag, AuthOutcome};
use crate::sip::core::{connection_transport, now_unix, transport_from_name, transport_name, SipCore};
use crate::storage::{BindingOp, BindingRow};
use rsipstack::sip::{Header, HeadersExt, Param, Request, Response, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

pub async fn handle_register(core: &SipCore, tx: &mut Transaction, source: SocketAddr) {
    let resp = register_response(core, &tx.original, source, tx.connection.as_ref().map(connection_transport));
    if let Err(e) = tx.respond(resp).await {
        tracing::debug!(error = %e, "REGISTER response not sent");
    }
}

fn reply(core: &SipCore, req: &Request, status: StatusCode) -> Response {
    let mut r = core.endpoint.make_response(req, status, None);
    ensure_to_tag(&mut r);
    r
}

/// The answer to a REGISTER (challenge, refusal, or 200 with the bindings);
/// sent statelessly by `sip::front`.
pub fn register_response(core: &SipCore, req: &Request, source: SocketAddr, transport: Option<rsipstack::sip::Transport>) -> Response {
    let ext = match authenticate(core, req, source, transport, false) {
        AuthOutcome::Ok(ext) => ext,
        AuthOutcome::Reply(r) => return r,
    };
    let (resp, reason) = registered_response(core, req, &ext, source, transport);
    if let Some(reason) = reason {
        core.note_exchange(req, source, transport, Some(&ext), resp.status_code.clone(), reason);
    }
    resp
}

/// The answer to an authenticated REGISTER of `ext`, and what it was for
/// the panel's Diagnostics (`None`: nothing worth showing).
fn registered_response(core: &SipCore, req: &Request, ext: &str, source: SocketAddr, transport: Option<rsipstack::sip::Transport>) -> (Response, Option<Reason>) {
    let ext = ext.to_string();
    // One extension may not register another's number.
    let to_user = req.to_header().ok().and_then(|t| t.uri().ok()).and_then(|u| u.user().map(str::to_string));
    if to_user.as_deref() != Some(ext.as_str()) {
        tracing::info!(%source, authenticated = %ext, to = ?to_user, "REGISTER for another extension refused");
        return (reply(core, req, StatusCode::Forbidden), Some(Reason::OtherExtension));
    }
    let parsed = match parse_register(req, source, transport) {
        Ok(p) => p,
        Err(why) => {
            tracing::info!(%source, %ext, "bad REGISTER: {why}");
            return (reply(core, req, StatusCode::BadRequest), Some(Reason::BadRegister));
        }
    };
    let now = now_unix();
    let result = match core.location.lock() {
        Ok(mut loc) => loc.register(&ext, &parsed, &core.limits, now).map(|ch| (ch, loc.lookup(&ext, now))),
        Err(_) => return (reply(core, req, StatusCode::ServerInternalError), None),
    };
    let (changes, current) = match result {
        Ok(v) => v,
        Err(RegisterError::IntervalTooBrief(min)) => {
            let mut r = reply(core, req, StatusCode::IntervalTooBrief);
            r.headers.push(Header::MinExpires(min.to_string().into()));
            return (r, Some(Reason::IntervalTooBrief));
        }
        Err(RegisterError::BadWildcard) => return (reply(core, req, StatusCode::BadRequest), Some(Reason::BadRegister)),
        Err(RegisterError::OutOfOrder) => return (reply(core, req, StatusCode::ServerInternalError), None),
    };
    record_changes(core, &ext, changes);
    let mut resp = reply(core, req, StatusCode::OK);
    for b in &current {
        resp.headers.push(Header::Contact(contact_value(b, now).into()));
    }
    resp.headers.push(Header::Date(httpdate::fmt_http_date(std::time::SystemTime::now()).into()));
    let reason = if current.is_empty() { Reason::Unregistered } else { Reason::Registered };
    (resp, Some(reason))
}

fn contact_value(b: &Binding, now: i64) -> String {
    let mut v = format!("<{}>;expires={}", b.contact_uri, (b.expires_at - now).max(0));
    if let Some(inst) = &b.instance_id {
        v.push_str(&format!(";+sip.instance=\"{inst}\""));
    }
    if let Some(id) = b.reg_id {
        v.push_str(&format!(";reg-id={id}"));
    }
    v
}

fn record_changes(core: &SipCore, ext: &str, changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Added(b) => {
                core.bus.publish(PbxEvent::Registered {
                    extension: ext.to_string(),
                    contact: b.contact_uri.clone(),
                    transport: transport_name(b.transport).to_string(),
                    source: b.source.clone(),
                    expires: (b.expires_at - now_unix()).max(0) as u32,
                });
                tracing::info!(extension = %ext, contact = %b.contact_uri, source = %b.source, transport = transport_name(b.transport), "registered");
                core.binding_writer.send(BindingOp::Upsert(to_row(ext, &b)));
            }
            Change::Refreshed(b) => core.binding_writer.send(BindingOp::Upsert(to_row(ext, &b))),
            Change::Removed { contact_uri, reason } => {
                tracing::info!(extension = %ext, contact = %contact_uri, reason, "unregistered");
                core.binding_writer.send(BindingOp::Delete { extension: ext.to_string(), contact_uri: contact_uri.clone() });
                core.bus.publish(PbxEvent::Unregistered { extension: ext.to_string(), contact: contact_uri, reason: reason.to_string() });
            }
        }
    }
}

/// A browser's socket closed: its registrations go at once, so calls to its
/// extension no longer ring a tab that is gone.
pub fn flow_closed(core: &SipCore, transport: rsipstack::sip::Transport, source: std::net::SocketAddr) {
    let gone = match core.location.lock() {
        Ok(mut loc) => loc.remove_flow(transport, &source.to_string()),
        Err(_) => return,
    };
    let now = now_unix();
    for (ext, b) in gone {
        record_changes(core, &ext, vec![Change::Removed { contact_uri: b.contact_uri, reason: "connection closed" }]);
        // A closed tab sends no BYE: end the calls of an extension that has
        // no other device left, rather than wait for the media timeout.
        if !core.location.lock().map(|l| l.is_registered(&ext, now)).unwrap_or(true) {
            for call in crate::sip::control::calls_of(core, &ext) {
                core.calls.command(&call.call_id, crate::sip::b2bua::registry::Command::BrowserGone { extension: ext.clone() });
            }
        }
    }
}

pub fn to_row(ext: &str, b: &Binding) -> BindingRow {
    BindingRow {
        extension: ext.to_string(),
        contact_uri: b.contact_uri.clone(),
        source_addr: b.source.clone(),
        transport: transport_name(b.transport).to_string(),
        expires_at: b.expires_at,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        user_agent: b.user_agent.clone(),
        instance_id: b.instance_id.clone(),
        reg_id: b.reg_id,
        registered_at: b.registered_at,
    }
}

pub fn from_row(r: &BindingRow) -> Binding {
    Binding {
        contact_uri: r.contact_uri.clone(),
        source: r.source_addr.clone(),
        transport: transport_from_name(&r.transport),
        expires_at: r.expires_at,
        call_id: r.call_id.clone(),
        cseq: r.cseq,
        user_agent: r.user_agent.clone(),
        instance_id: r.instance_id.clone(),
        reg_id: r.reg_id,
        registered_at: r.registered_at,
    }
}

pub fn parse_register(req: &Request, source: SocketAddr, transport: Option<rsipstack::sip::Transport>) -> Result<RegisterRequest, String> {
    // RFC 3261 10.2: the address of record is a SIP or SIPS URI
    let to_uri = req.to_header().ok().and_then(|t| t.uri().ok()).map(|u| u.to_string()).unwrap_or_default();
    if !(to_uri.starts_with("sip:") || to_uri.starts_with("sips:")) {
        return Err(format!("To is not a SIP URI: `{to_uri}`"));
    }
    let call_id = req.call_id_header().map_err(|_| "no Call-ID")?.value().to_string();
    let cseq = req.cseq_header().map_err(|_| "no CSeq")?.seq().map_err(|_| "bad CSeq")?;
    let expires_header = match req.expires_header() {
        Some(e) => Some(e.value().trim().parse::<u32>().map_err(|_| format!("bad Expires `{}`", e.value()))?),
        None => None,
    };
    let mut wildcard = false;
    let mut contacts = Vec::new();
    for raw in req.contact_headers() {
        if raw.value().trim() == "*" {
            wildcard = true;
            continue;
        }
        let list = rsipstack::sip::typed::Contact::parse_header_list(raw.value()).map_err(|e| format!("bad Contact: {e}"))?;
        for c in list {
            let mut cr = ContactRequest { uri: c.uri.to_string(), expires: None, instance_id: None, reg_id: None };
            for p in &c.params {
                match p {
                    Param::Expires(e) => {
                        cr.expires = Some(e.value().trim().parse().map_err(|_| format!("bad contact expires `{}`", e.value()))?)
                    }
                    Param::Other(name, Some(v)) if name.value().eq_ignore_ascii_case("+sip.instance") => {
                        cr.instance_id = Some(v.value().trim_matches('"').to_string())
                    }
                    Param::Other(name, Some(v)) if name.value().eq_ignore_ascii_case("reg-id") => cr.reg_id = v.value().parse().ok(),
                    _ => {}
                }
            }
            contacts.push(cr);
        }
    }
    if contacts.len() > 20 {
        return Err("more than 20 contacts".into());
    }
    Ok(RegisterRequest {
        contacts,
        wildcard,
        expires_header,
        call_id,
        cseq,
        source: source.to_string(),
        transport: transport.unwrap_or(rsipstack::sip::Transport::Udp),
        user_agent: req.user_agent_header().map(|u| u.value().to_string()),
    })
}
