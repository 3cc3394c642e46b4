//! A new INVITE: authenticate the caller, resolve the callee, start the call.
//! Only authenticated extensions may call, and only extensions can be called:
//! ha-pbx is never an open relay.
use super::call::{self, CallSetup};
use super::forward::{self, Route};
use super::group_call::{self, Plan};
use super::handoff;
use super::pickup_call;
use crate::config::{Feature, AGENT_MEMBER};
use crate::sip::agent_leg::AgentInvite;
use crate::sip::auth::request::{authenticate, ensure_to_tag, AuthOutcome};
use crate::sip::core::SipCoreRef;
use crate::sip::diagnostics::Reason;
use crate::sip::trunk;
use crate::trunk::routes as trunk_routes;
use rsipstack::sip::{HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

pub async fn handle_invite(core: SipCoreRef, mut tx: Transaction, source: SocketAddr) {
    // A provider's call comes from its trunk's address without digest and
    // rings where the trunk says; everyone else is an extension and proves it.
    let from_trunk = match trunk::inbound::classify(&core, &tx.original, source) {
        Some(Ok(call)) => Some(call),
        Some(Err(why)) => {
            tracing::info!(%source, "call from the trunk refused with 404: {why}");
            return reply(&core, &mut tx, StatusCode::NotFound).await;
        }
        None => None,
    };
    let caller = match &from_trunk {
        Some(call) => call.caller.clone(),
        None => match authenticate(&core, &tx.original, source, tx.connection.as_ref().map(crate::sip::core::connection_transport), true) {
            AuthOutcome::Ok(ext) => ext,
            AuthOutcome::Reply(resp) => {
                let _ = tx.respond(resp).await;
                return;
            }
        },
    };
    if tx.original.max_forwards_header().ok().and_then(|m| m.value().trim().parse::<u32>().ok()) == Some(0) {
        return reply(&core, &mut tx, StatusCode::TooManyHops).await;
    }
    let callee = match &from_trunk {
        Some(call) => call.target.clone(),
        None => match tx.original.uri.user().map(str::to_string) {
            Some(c) => c,
            None => return reply(&core, &mut tx, StatusCode::NotFound).await,
        },
    };
    // Held for the whole call: an extension's calls at once, and so the relay
    // ports it can hold, are capped (`security.max_calls_per_extension`),
    // whether the number is an extension, a group or forwarded. A trunk's
    // calls share one cap under the trunk's name.
    let slot_key = from_trunk.as_ref().map_or_else(|| caller.clone(), |c| format!("trunk:{}", c.trunk));
    let _slot = match core.call_slots.try_open(slot_key) {
        Ok(slot) => slot,
        Err(refused) => {
            let why = match refused {
                crate::sip::conn_limit::Refused::Total(n) => format!("security.max_calls ({n}) reached: the PBX carries that many calls"),
                crate::sip::conn_limit::Refused::PerIp(n) => format!("security.max_calls_per_extension ({n}) reached for this extension"),
            };
            tracing::warn!(%caller, %callee, "call refused with 503: {why}");
            note(&core, &tx, source, &caller, StatusCode::ServiceUnavailable, Reason::TooManyCalls);
            return reply(&core, &mut tx, StatusCode::ServiceUnavailable).await;
        }
    };
    // Feature codes, for extensions only (never from a trunk).
    let feature = from_trunk.is_none().then(|| core.config.feature_codes.recognise(&callee)).flatten();
    match feature {
        Some(Feature::Pickup) => return pickup_call::handle(core, tx, source, caller, None).await,
        Some(Feature::DirectedPickup(t)) => return pickup_call::handle(core, tx, source, caller, Some(t)).await,
        Some(Feature::Intercom(ext)) => return intercom(core, tx, source, caller, ext).await,
        Some(Feature::Messages) => return super::messages_call::handle(core, tx, source, caller).await,
        Some(Feature::Park) => {
            tracing::info!(%caller, "park code dialled: refused with 403 (a call is parked by transferring it to the code)");
            return reply(&core, &mut tx, StatusCode::Other(403, "Transfer a call to the park code to park it".into())).await;
        }
        None => {}
    }
    // A park slot: the caller takes the call parked there.
    if from_trunk.is_none() && core.parking.lock().is_ok_and(|l| l.is_slot(&callee)) {
        return super::park_call::retrieve(core, tx, source, caller, callee).await;
    }
    // Do not disturb and forwards first (the config's, or as Home Assistant set them); then a group, or the extension.
    let dialled = callee.clone();
    let (callee, route, forwarded_by) = forward::resolve(&dialled, |n| core.route_settings(n));
    let mut agent_note = AgentInvite::default();
    let callee = match (callee.as_str(), &core.config.agent) {
        (AGENT_MEMBER, Some(a)) => a.extension.clone(),
        _ => callee,
    };
    if callee != dialled {
        tracing::info!(%caller, %dialled, to = %callee, "call forwarded");
        if core.is_agent(&callee) {
            agent_note.message_for = Some(dialled.clone());
        }
    }
    let ring = std::time::Duration::from_secs(core.config.sip.ring_timeout_secs);
    match route {
        Route::Busy => {
            tracing::info!(%caller, callee = %dialled, "do not disturb: busy");
            note(&core, &tx, source, &caller, StatusCode::BusyHere, Reason::Busy);
            return reply(&core, &mut tx, StatusCode::BusyHere).await;
        }
        _ if core.config.group(&callee).is_some_and(|g| g.page) => {
            let group = core.config.group(&callee).expect("checked").clone();
            return super::page_call::run(core, tx, source, caller, group).await;
        }
        _ if core.config.group(&callee).is_some() => {
            let plan = Plan::group(core.config.group(&callee).expect("checked"));
            return group_call::ring_plan(core, tx, source, caller, plan, agent_note).await;
        }
        Route::Ring { no_answer, busy } if no_answer.is_some() || busy.is_some() => {
            let plan = Plan::extension(&callee, no_answer, busy, ring);
            return group_call::ring_plan(core, tx, source, caller, plan, agent_note).await;
        }
        Route::Ring { .. } => {}
    }
    if !core.extension_exists(&callee) {
        // Out over a trunk only from an extension (never trunk to trunk),
        // only by a route, and only for the extensions it lists. A forward
        // to a number outside goes out as if the forwarding extension had
        // dialled it, whoever called (also a call that came in on a trunk).
        let decision = match (&forwarded_by, &from_trunk) {
            (Some(by), _) => trunk_routes::outbound(&core.config.outbound_routes, by, &callee),
            (None, None) => trunk_routes::outbound(&core.config.outbound_routes, &caller, &callee),
            (None, Some(_)) => trunk_routes::Outbound::NoRoute,
        };
        match decision {
            trunk_routes::Outbound::Go { trunk, number } => {
                let failover = trunk_routes::failover_trunks(&core.config.outbound_routes, &callee).to_vec();
                let out = trunk::outbound::OutCall { caller, dialled: callee, trunk, number, failover };
                return trunk::outbound::run(core, tx, source, out).await;
            }
            trunk_routes::Outbound::NotAllowed { prefix, trunk } => {
                tracing::warn!(%caller, %callee, %trunk, %prefix, "call out refused with 403: the extension is not in this outbound route's `extensions`");
                return reply(&core, &mut tx, StatusCode::Forbidden).await;
            }
            trunk_routes::Outbound::NoRoute => {
                tracing::info!(%caller, %callee, "call to unknown number refused with 404: no extension, group or outbound route");
                note(&core, &tx, source, &caller, StatusCode::NotFound, Reason::UnknownNumber);
                return reply(&core, &mut tx, StatusCode::NotFound).await;
            }
        }
    }
    let mut bindings = core.registered_contacts(&callee);
    let mut handoff = match (&core.config.agent, core.agent_binding()) {
        (Some(a), Some(_)) if !core.is_agent(&callee) => handoff::delay(&a.handoff, &caller, &callee, handoff::local_minute_now()),
        _ => None,
    };
    // A rule with no ringing, or nobody to ring: straight to the agent.
    if handoff.is_some_and(|d| d.is_zero()) || (handoff.is_some() && bindings.is_empty()) {
        bindings = core.agent_binding().into_iter().collect();
        agent_note.message_for = Some(callee.clone());
        handoff = None;
    }
    if bindings.is_empty() {
        tracing::info!(%caller, %callee, "callee not registered");
        note(&core, &tx, source, &caller, StatusCode::TemporarilyUnavailable, Reason::CalleeNotRegistered);
        return reply(&core, &mut tx, StatusCode::TemporarilyUnavailable).await;
    }
    note(&core, &tx, source, &caller, StatusCode::Trying, Reason::CallRouted);
    call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff, agent_note, group: None, trunk: None, auto_answer: false, failover: None }).await;
}

/// The intercom code before an extension: its devices are asked to answer
/// by themselves. Its do-not-disturb answers busy; its forwards do not apply.
async fn intercom(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, caller: String, callee: String) {
    if !core.extension_exists(&callee) || core.is_agent(&callee) {
        tracing::info!(%caller, %callee, "intercom refused with 404: not an extension");
        return reply(&core, &mut tx, StatusCode::NotFound).await;
    }
    if core.phone_settings_of(&callee).is_some_and(|s| s.dnd) {
        tracing::info!(%caller, %callee, "intercom: do not disturb, busy");
        return reply(&core, &mut tx, StatusCode::BusyHere).await;
    }
    let bindings = core.registered_contacts(&callee);
    if bindings.is_empty() {
        tracing::info!(%caller, %callee, "intercom: callee not registered");
        return reply(&core, &mut tx, StatusCode::TemporarilyUnavailable).await;
    }
    tracing::info!(%caller, %callee, "intercom call");
    let agent_note = AgentInvite::default();
    call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff: None, agent_note, group: None, trunk: None, auto_answer: true, failover: None }).await;
}

/// For the panel's Diagnostics: what became of `caller`'s INVITE.
fn note(core: &SipCoreRef, tx: &Transaction, source: SocketAddr, caller: &str, status: StatusCode, reason: Reason) {
    core.note_exchange(&tx.original, source, tx.connection.as_ref().map(crate::sip::core::connection_transport), Some(caller), status, reason);
}

/// A final response to an INVITE refused before any call exists (with a To tag).
pub(super) async fn reply(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode) {
    let mut resp = core.endpoint.make_response(&tx.original, status, None);
    ensure_to_tag(&mut resp);
    let _ = tx.respond(resp).await;
}
