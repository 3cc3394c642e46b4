//! Where every incoming SIP request goes: REGISTER to the registrar, a new
//! INVITE to the B2BUA, in-dialog requests to their dialog, OPTIONS answered.
use super::auth::request::ensure_to_tag;
use super::b2bua::invite::handle_invite;
use super::core::SipCoreRef;
use super::registrar::handler::handle_register;
use rsipstack::dialog::dialog::{Dialog, DialogState};
use rsipstack::sip::{Header, HeadersExt, Method, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use std::net::SocketAddr;

pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER, SUBSCRIBE";

pub async fn serve(core: SipCoreRef, mut incoming: TransactionReceiver) {
    while let Some(tx) = incoming.recv().await {
        let core = core.clone();
        tokio::spawn(handle(core, tx));
    }
}

fn source_of(tx: &Transaction) -> Option<SocketAddr> {
    tx.connection.as_ref()?.get_remote_addr()?.get_socketaddr().ok()
}

async fn handle(core: SipCoreRef, mut tx: Transaction) {
    let Some(source) = source_of(&tx) else {
        tracing::debug!("request without a source address dropped");
        return;
    };
    match route(&tx.original) {
        Route::Register => handle_register(&core, &mut tx, source).await,
        Route::NewInvite => handle_invite(core, tx, source).await,
        Route::Options => {
            let headers = vec![Header::Allow(ALLOW.into()), Header::Accept("application/sdp".into())];
            respond(&core, &mut tx, StatusCode::OK, headers).await
        }
        Route::Ack => {}
        Route::Subscribe => super::subscriptions::handler::handle_subscribe(&core, &mut tx, source).await,
        Route::InDialog => match core.dialogs.match_dialog(&tx) {
            Some(mut dialog) => match unconfirmed_for_invite(&tx, &dialog) {
                Some(state) => refuse_overlapping_invite(&core, &mut tx, &state).await,
                None => {
                    if let Err(e) = dialog.handle(&mut tx).await {
                        tracing::debug!(error = %e, method = %tx.original.method, "in-dialog request failed");
                    }
                }
            },
            None => reply(&core, &mut tx, StatusCode::CallTransactionDoesNotExist).await,
        },
        Route::Reply(status) => reply(&core, &mut tx, status).await,
    }
}

/// Where a request goes, decided from the request alone (sans-IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Register,
    /// An INVITE without a To tag: a new call.
    NewInvite,
    Options,
    /// SUBSCRIBE, new or within its subscription: to the subscription table.
    Subscribe,
    /// Absorbed (the transaction layer matched what it could).
    Ack,
    /// A request with a To tag: to its dialog, or 481.
    InDialog,
    /// Answered at once with this status.
    Reply(StatusCode),
}

pub fn route(req: &Request) -> Route {
    let in_dialog = req.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
    match req.method {
        Method::Register => Route::Register,
        Method::Invite if !in_dialog => Route::NewInvite,
        Method::Options if !in_dialog => Route::Options,
        Method::Ack => Route::Ack,
        Method::Subscribe => Route::Subscribe,
        _ if in_dialog => Route::InDialog,
        Method::Bye | Method::Cancel | Method::Info | Method::Update | Method::PRack => {
            Route::Reply(StatusCode::CallTransactionDoesNotExist)
        }
        Method::Publish | Method::Message | Method::Notify | Method::Refer => {
            Route::Reply(StatusCode::MethodNotAllowed)
        }
        _ => Route::Reply(StatusCode::NotImplemented),
    }
}

/// The dialog's state when `tx` is an INVITE and the dialog is not confirmed.
fn unconfirmed_for_invite(tx: &Transaction, dialog: &Dialog) -> Option<DialogState> {
    (tx.original.method == Method::Invite).then(|| dialog.state()).filter(|s| !s.is_confirmed())
}

/// A re-INVITE while the dialog's previous INVITE transaction is still open:
/// our 2xx not yet ACKed (the ACK lost or overtaken) or an earlier re-INVITE
/// still being answered. rsipstack would take it for the dialog's initial
/// INVITE and never answer, so the peer would retransmit into silence.
/// RFC 3261 14.2: 500 with a random Retry-After of up to 10 s, after which
/// the peer sends it again; a dialog already over gets 481.
async fn refuse_overlapping_invite(core: &SipCoreRef, tx: &mut Transaction, state: &DialogState) {
    if state.is_terminated() {
        return reply(core, tx, StatusCode::CallTransactionDoesNotExist).await;
    }
    tracing::info!(call_id = %tx.original.call_id_header().map(|c| c.value().to_string()).unwrap_or_default(),
        state = %state, "re-INVITE while the previous INVITE is still open: 500 with Retry-After");
    let retry_after = Header::RetryAfter(retry_after_secs().to_string().into());
    respond(core, tx, StatusCode::ServerInternalError, vec![retry_after]).await
}

fn retry_after_secs() -> u8 {
    1 + rand::random::<u8>() % 10
}

/// A bodiless final response; a 405 names what we allow.
async fn reply(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode) {
    let allow = status == StatusCode::MethodNotAllowed;
    let headers = if allow { vec![Header::Allow(ALLOW.into())] } else { Vec::new() };
    respond(core, tx, status, headers).await
}

async fn respond(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    let mut resp = core.endpoint.make_response(&tx.original, status, None);
    ensure_to_tag(&mut resp);
    resp.headers.extend(headers);
    let _ = tx.respond(resp).await;
}
