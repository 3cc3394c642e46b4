//! A new INVITE: authenticate the caller, resolve the callee, start the call.
//! Only authenticated extensions may call, and only extensions can be called:
//! ha-pbx is never an open relay.
use super::call::{self, CallSetup};
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
    if !core.extension_exists(&callee) {
        tracing::info!(%caller, %callee, "call to unknown number refused");
        return reply(&core, &mut tx, StatusCode::NotFound).await;
    }
    let bindings = core.registered_contacts(&callee);
    if bindings.is_empty() {
        tracing::info!(%caller, %callee, "callee not registered");
        return reply(&core, &mut tx, StatusCode::TemporarilyUnavailable).await;
    }
    call::run(CallSetup { core, tx, caller, callee, bindings }).await;
}

async fn reply(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode) {
    let mut resp = core.endpoint.make_response(&tx.original, status, None);
    ensure_to_tag(&mut resp);
    let _ = tx.respond(resp).await;
}
