//! Pickup's glue: the picker's INVITE (a feature code) finds the ringing
//! call `pickup::choose` names (or the parked call a slot holds, see
//! `park_call.rs`) and is handed to that call's task, which
//! cancels its ringing forks and answers its caller with the picker, as if
//! the picker were a device that answered. Media is relayed as usual.
use super::call::{forward_states, Call, CallMsg, CallerKind};
use super::fork::ForkEvent;
use super::machine::Input;
use super::pickup::{self, GroupView, RingingCall};
use super::registry::{Command, PickupRequest};
use crate::media::sdp::keep_common_codecs;
use super::invite::reply;
use crate::sip::core::SipCoreRef;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The groups as pickup sees them; `everyone` groups with every Home
/// Assistant user's extension.
fn group_views(core: &SipCoreRef) -> Vec<GroupView> {
    let users: Vec<String> = core
        .directory
        .read()
        .map(|d| d.values().filter(|e| e.source == crate::storage::SOURCE_HA_USER).map(|e| e.extension.clone()).collect())
        .unwrap_or_default();
    core.config
        .groups
        .iter()
        .map(|g| {
            let mut members = g.members.clone();
            if g.everyone {
                members.extend(users.iter().cloned());
            }
            GroupView { number: g.extension.clone(), members }
        })
        .collect()
}

/// A pickup feature code dialled by authenticated extension `picker`;
/// `target` for a directed pickup.
pub async fn handle(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, picker: String, target: Option<String>) {
    if let Some(t) = &target
        && !core.extension_exists(t)
        && core.config.group(t).is_none()
    {
        tracing::info!(%picker, target = %t, "directed pickup refused with 404: no such extension or group");
        return reply(&core, &mut tx, StatusCode::Other(404, "No such extension".into())).await;
    }
    let groups = group_views(&core);
    let calls: Vec<RingingCall> = core
        .calls
        .list()
        .into_iter()
        .filter(|c| !c.answered)
        .map(|c| {
            let rung = groups.iter().find(|g| g.number == c.callee).map_or_else(|| vec![c.callee.clone()], |g| g.members.clone());
            RingingCall { call_id: c.call_id, caller: c.caller, callee: c.callee, rung, seq: c.seq }
        })
        .collect();
    let call_id = match pickup::choose(&picker, target.as_deref(), &calls, &groups) {
        Ok(id) => id,
        Err(why) => {
            tracing::info!(%picker, ?target, "pickup refused with 480: {}", why.reason());
            return reply(&core, &mut tx, StatusCode::Other(480, why.reason())).await;
        }
    };
    if tx.original.body.is_empty() {
        return reply(&core, &mut tx, StatusCode::Other(488, "Pickup needs an SDP offer".into())).await;
    }
    tracing::info!(%picker, ?target, %call_id, "picking up");
    hand_over(core, tx, source, picker, &call_id, "Call no longer ringing").await;
}

/// Hand the picker's (or a park retriever's) INVITE to call `call_id`'s
/// task; `gone` is the 480's reason phrase when that call ended first.
pub(super) async fn hand_over(core: SipCoreRef, tx: Transaction, source: SocketAddr, picker: String, call_id: &str, gone: &str) {
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
    let shared = Arc::new(Mutex::new(Some(tx)));
    let req = PickupRequest { picker, source, tx: shared.clone(), taken: Arc::new(Mutex::new(Some(taken_tx))) };
    let sent = core.calls.command(call_id, Command::PickUp(req));
    // The call takes the INVITE at once; if it ended first, the request is
    // dropped with its channel and the picker is told here.
    let taken = sent && matches!(tokio::time::timeout(Duration::from_secs(2), taken_rx).await, Ok(Ok(())));
    if !taken {
        let left = shared.lock().ok().and_then(|mut t| t.take());
        if let Some(mut tx) = left {
            reply(&core, &mut tx, StatusCode::Other(480, gone.into())).await;
        }
    }
}

impl Call {
    /// The picker's INVITE answers this call: ringing forks are cancelled,
    /// the caller gets the picker's media, the picker ours.
    pub(super) async fn pick_up(&mut self, req: PickupRequest) {
        let Some(mut tx) = req.tx.lock().ok().and_then(|mut t| t.take()) else { return };
        if let Some(t) = req.taken.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.send(());
        }
        // A parked call (waiting, or ringing its parker back) is taken the same way.
        let parked = self.parking.is_some();
        let ringing = parked || (self.machine.is_ringing() && self.kind == CallerKind::Incoming && self.caller_from_fork.is_none());
        if !ringing {
            tracing::info!(call_id = %self.call_id, picker = %req.picker, "pickup refused with 480: no longer ringing");
            return reply(&self.core, &mut tx, StatusCode::Other(480, "Call no longer ringing".into())).await;
        }
        let picker_offer = String::from_utf8_lossy(&tx.original.body).into_owned();
        if crate::media::webrtc::is_webrtc(&picker_offer) {
            tracing::info!(call_id = %self.call_id, picker = %req.picker, "pickup refused with 488: not from a browser yet");
            return reply(&self.core, &mut tx, StatusCode::Other(488, "Pickup from a browser is not supported".into())).await;
        }
        // The callee side becomes a plain device: a browser bridge goes.
        self.media.settle_callee(false);
        let mut offer_b = self.offer_b.clone().unwrap_or_default();
        if self.media.is_browser(self.fork_leg()) {
            match self.media.callee_plain_offer(self.caller_leg).await {
                Ok(o) => offer_b = o,
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, error = %e, "pickup failed: no plain offer");
                    return reply(&self.core, &mut tx, StatusCode::ServiceUnavailable).await;
                }
            }
        }
        let ours = String::from_utf8_lossy(&offer_b).into_owned();
        let (Some(to_picker), Some(as_answer)) = (keep_common_codecs(&ours, &picker_offer), keep_common_codecs(&picker_offer, &ours)) else {
            return reply(&self.core, &mut tx, StatusCode::NotAcceptableHere).await;
        };
        let transport = tx.connection.as_ref().map(crate::sip::core::connection_transport).unwrap_or_default();
        let contact = self.core.contact_uri(None, crate::sip::core::listener_transport(transport));
        let (state_tx, state_rx) = self.core.dialogs.new_dialog_state_channel();
        let dialog = match self.core.dialogs.get_or_create_server_invite(&tx, state_tx, None, Some(contact)) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "pickup failed: no dialog for the picker");
                return reply(&self.core, &mut tx, StatusCode::ServerInternalError).await;
            }
        };
        let mut driver = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.handle(&mut tx).await {
                tracing::debug!(error = %e, "picker INVITE transaction ended with error");
            }
        });
        let id = self.forks.len();
        self.forks.push(Some(dialog.clone()), false, Some(req.source.ip()));
        if let Some(slot) = self.forks.get_mut(id) {
            slot.sdp = Some(as_answer.into_bytes());
            slot.member = Some(req.picker.clone());
        }
        forward_states(state_rx, self.msgs.clone(), move |s: DialogState| CallMsg::Fork(id, ForkEvent::State(s)));
        self.group = None;
        self.picked = Some(id);
        if parked {
            self.callee_ext = req.picker.clone();
            self.core.calls.set_parties(&self.call_id, &self.caller_ext, &self.callee_ext);
        }
        tracing::info!(call_id = %self.call_id, picker = %req.picker, callee = %self.callee_ext, "call picked up");
        self.step(Input::HandOff { forks: 1 }).await;
        self.step(Input::ForkAnswered { fork: id }).await;
        if self.winner() == Some(id) {
            let _ = dialog.accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(to_picker.into_bytes()));
        } else {
            let _ = dialog.reject(Some(StatusCode::Other(480, "Call no longer ringing".into())), None);
        }
    }
}
