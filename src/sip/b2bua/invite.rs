//! A new INVITE: authenticate the caller, resolve the callee, start the call.
//! Only authenticated extensions may call, and only extensions can be called:
//! ha-pbx is never an open relay.
use super::call::{self, CallSetup};
use super::forward::{self, Route};
use super::group_call::{self, Plan};
use super::handoff;
use crate::config::AGENT_MEMBER;
use crate::sip::agent_leg::AgentInvite;
use crate::sip::auth::request::{authenticate, ensure_to_tag, AuthOutcome};
use crate::sip::core::SipCoreRef;
use rsipstack::sip::{HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

pub async fn handle_invite(core: SipCoreRef, mut tx: Transaction, source: SocketAddr) {
    let caller = match authenticate(&core, &tx.original, source.ip(), true) {
        AuthOutcome::Ok(ext) => ext,
        AuthOutcome::Reply(resp) => {
            let _ = tx.respond(resp).await;
            return;
        }
    };
    if tx.original.max_forwards_header().ok().and_then(|m| m.value().trim().parse::<u32>().ok()) == Some(0) {
        return reply(&core, &mut tx, StatusCode::TooManyHops).await;
    }
    let Some(callee) = tx.original.uri.user().map(str::to_string) else {
        return reply(&core, &mut tx, StatusCode::NotFound).await;
    };
    // Held for the whole call: an extension's calls at once, and so the relay
    // ports it can hold, are capped (`security.max_calls_per_extension`),
    // whether the number is an extension, a group or forwarded.
    let _slot = match core.call_slots.try_open(caller.clone()) {
        Ok(slot) => slot,
        Err(_) => {
            let cap = core.config.security.max_calls_per_extension;
            tracing::warn!(%caller, %callee, "call refused with 503: security.max_calls_per_extension ({cap}) reached for this extension");
            return reply(&core, &mut tx, StatusCode::ServiceUnavailable).await;
        }
    };
    // Do not disturb and forwards first (the config's, or as Home Assistant set them); then a group, or the extension.
    let dialled = callee.clone();
    let (callee, route) = forward::resolve(&dialled, |n| core.route_settings(n));
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
            return reply(&core, &mut tx, StatusCode::BusyHere).await;
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
        tracing::info!(%caller, %callee, "call to unknown number refused");
        return reply(&core, &mut tx, StatusCode::NotFound).await;
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
        return reply(&core, &mut tx, StatusCode::TemporarilyUnavailable).await;
    }
    call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff, agent_note, group: None }).await;
}

async fn reply(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode) {
    let mut resp = core.endpoint.make_response(&tx.original, status, None);
    ensure_to_tag(&mut resp);
    let _ = tx.respond(resp).await;
}
