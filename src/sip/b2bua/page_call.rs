//! A page's glue: the caller's server dialog, one fork per member device
//! (with the intercom's auto-answer headers and the caller's first codec), the
//! `PageMachine`'s actions carried out, and `PageMedia` fanning the caller's
//! audio out to every device that answered. Members' browsers and the
//! agent are not paged (they would need a WebRTC bridge or a voice each).
use super::call::{forward_states, CallMsg};
use super::fork::{self, ForkEvent, Report};
use super::forks::Forks;
use super::group_call::{devices, member_numbers, Plan};
use super::page::{Action, Input, PageMachine};
use super::registry::Command;
use crate::config::GroupConfig;
use crate::events::{EndReason, PbxEvent};
use crate::media::page::{self, PageMedia, MAX_LISTENERS};
use super::invite::reply;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::sip::{Header, HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The devices a page rings: members' SIP devices, at most `MAX_LISTENERS`.
fn listeners(core: &SipCoreRef, group: &GroupConfig, caller: &str) -> Vec<Binding> {
    let plan = Plan::group(group);
    let mut all: Vec<Binding> = member_numbers(core, &plan, caller)
        .iter()
        .filter(|m| !core.is_agent(m) && *m != crate::config::AGENT_MEMBER)
        .flat_map(|m| devices(core, m))
        .filter(|b| !b.is_browser())
        .collect();
    if all.len() > MAX_LISTENERS {
        tracing::warn!(group = %group.extension, devices = all.len(), cap = MAX_LISTENERS, "page: only the first {MAX_LISTENERS} devices are paged");
        all.truncate(MAX_LISTENERS);
    }
    all
}

/// An INVITE to a `page: true` group.
pub async fn run(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, caller: String, group: GroupConfig) {
    let call_id = tx.original.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
    let callee = group.extension.clone();
    let bindings = listeners(&core, &group, &caller);
    if bindings.is_empty() {
        tracing::info!(%call_id, %caller, group = %callee, "page refused with 480: no member has a SIP device registered");
        return reply(&core, &mut tx, StatusCode::Other(480, "Nobody to page".into())).await;
    }
    let offer = tx.original.body.clone();
    let caller_hosts: Vec<_> = [Some(source.ip()), sdp_host(&offer)].into_iter().flatten().collect();
    let mut media = match PageMedia::new(core.media.clone(), bindings.len(), caller_hosts) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "page refused with 503: no media ports");
            return reply(&core, &mut tx, StatusCode::ServiceUnavailable).await;
        }
    };
    let session = rand::random::<u32>() as u64;
    let answer = match page::caller_answer(&offer, media.advertise(), media.caller_port(), session) {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(%call_id, error = %e, "page refused with 488: unusable SDP offer");
            return reply(&core, &mut tx, StatusCode::NotAcceptableHere).await;
        }
    };
    let (msgs, mut rx) = mpsc::unbounded_channel();
    let transport = tx.connection.as_ref().map(crate::sip::core::connection_transport).unwrap_or_default();
    let contact = core.contact_uri(None, crate::sip::core::listener_transport(transport));
    let (state_tx, state_rx) = core.dialogs.new_dialog_state_channel();
    let caller_dialog = match core.dialogs.get_or_create_server_invite(&tx, state_tx, None, Some(contact)) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot create the pager's dialog");
            return reply(&core, &mut tx, StatusCode::ServerInternalError).await;
        }
    };
    forward_states(state_rx, msgs.clone(), CallMsg::Caller);
    let mut driver = caller_dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = driver.handle(&mut tx).await {
            tracing::debug!(error = %e, "pager's INVITE transaction ended with error");
        }
    });
    let mut commands = core.calls.insert(&call_id, &caller, &callee);
    core.bus.publish(PbxEvent::Ringing { call_id: call_id.clone(), caller: caller.clone(), callee: callee.clone() });
    let headers = super::auto_answer::headers(&core.config.sip.realm);
    let mut forks = Forks::default();
    let mut answers: Vec<Option<Vec<u8>>> = vec![None; bindings.len()];
    let mut machine = PageMachine::new(bindings.len());
    let mut pending = Vec::new();
    for (id, b) in bindings.iter().enumerate() {
        let dialog = media
            .add_listener(id)
            .and_then(|port| page::listener_offer(&offer, media.advertise(), port, session))
            .map_err(|e| e.to_string())
            .and_then(|o| {
                let m = msgs.clone();
                fork::start(&core, b, &caller, o.as_bytes(), headers.clone(), None, move |e| m.send(CallMsg::Fork(id, e)).is_ok())
            });
        let dialog = match dialog {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(%call_id, device = %b.contact_uri, "page: device not rung: {e}");
                pending.push(Input::Failed(id));
                None
            }
        };
        forks.push(dialog, false, b.source_ip());
    }
    tracing::info!(%call_id, %caller, group = %callee, devices = bindings.len(), "paging");
    let mut page = Page { core: core.clone(), call_id, caller, callee, caller_dialog, answer, forks, media, answered_at: None, started: Instant::now() };
    for input in pending {
        page.perform(machine.on(input), &answers);
    }
    let ring_until = Instant::now() + Duration::from_secs(group.ring_secs);
    let mut ring_over = false;
    while !machine.is_done() {
        let input = tokio::select! {
            m = rx.recv() => match m {
                Some(CallMsg::Caller(state)) => caller_input(state).await,
                Some(CallMsg::Fork(id, event)) => {
                    if let Report::Answered(resp) = fork::classify(&event)
                        && let Some(slot) = answers.get_mut(id) {
                        *slot = Some(resp.body.clone());
                    }
                    fork_input(id, event).await
                }
                Some(CallMsg::ParkerClip(_) | CallMsg::MovedMedia(_)) => None,
                None => Some(Input::CallerHungUp),
            },
            _ = tokio::time::sleep_until(ring_until), if !ring_over => {
                ring_over = true;
                Some(Input::RingTimeout)
            }
            Some(cmd) = commands.recv() => match cmd {
                Command::HangUp => {
                    page.perform(vec![Action::ByeCaller], &answers);
                    Some(Input::CallerHungUp)
                }
                Command::PickUp(req) => {
                    // A page is not picked up: the picker is told so.
                    if let Some(mut t) = req.tx.lock().ok().and_then(|mut t| t.take()) {
                        reply(&core, &mut t, StatusCode::Other(480, "A page cannot be picked up".into())).await;
                    }
                    None
                }
                _ => None,
            },
        };
        if let Some(input) = input {
            let actions = machine.on(input);
            page.perform(actions, &answers);
        }
    }
    page.cleanup();
}

/// The host the caller's SDP names: its media may come from there.
fn sdp_host(offer: &[u8]) -> Option<std::net::IpAddr> {
    let text = std::str::from_utf8(offer).ok()?;
    crate::media::sdp::Sdp::parse(text).ok()?.media_endpoint(0).map(|(a, _)| a.ip())
}

async fn caller_input(state: DialogState) -> Option<Input> {
    match state {
        DialogState::Terminated(_, TerminatedReason::UasDecline) => None, // our own reject
        DialogState::Terminated(..) => Some(Input::CallerHungUp),
        DialogState::Options(_, _, handle) => {
            let _ = handle.reply(StatusCode::OK).await;
            None
        }
        DialogState::Updated(_, _, handle) | DialogState::Info(_, _, handle) | DialogState::Message(_, _, handle) | DialogState::Notify(_, _, handle) | DialogState::Refer(_, _, handle) => {
            // A page's media does not change mid-way (no hold, no transfer).
            let _ = handle.reply(StatusCode::NotImplemented).await;
            None
        }
        _ => None,
    }
}

async fn fork_input(id: usize, event: ForkEvent) -> Option<Input> {
    match fork::classify(&event) {
        Report::Answered(_) => return Some(Input::Answered(id)),
        Report::Failed(_) => return Some(Input::Failed(id)),
        _ => {}
    }
    match event {
        ForkEvent::State(DialogState::Terminated(..)) => Some(Input::HungUp(id)),
        ForkEvent::State(DialogState::Options(_, _, handle)) => {
            let _ = handle.reply(StatusCode::OK).await;
            None
        }
        ForkEvent::State(DialogState::Updated(_, _, handle) | DialogState::Info(_, _, handle)) => {
            let _ = handle.reply(StatusCode::NotImplemented).await;
            None
        }
        _ => None,
    }
}

struct Page {
    core: SipCoreRef,
    call_id: String,
    caller: String,
    callee: String,
    caller_dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    answer: String,
    forks: Forks,
    media: PageMedia,
    answered_at: Option<Instant>,
    started: Instant,
}

impl Page {
    fn perform(&mut self, actions: Vec<Action>, answers: &[Option<Vec<u8>>]) {
        for action in actions {
            match action {
                Action::AnswerCaller => {
                    let sdp = vec![Header::ContentType("application/sdp".into())];
                    let _ = self.caller_dialog.accept(Some(sdp), Some(self.answer.clone().into_bytes()));
                    self.answered_at = Some(Instant::now());
                    self.core.calls.set_answered(&self.call_id);
                    self.core.bus.publish(PbxEvent::Answered { call_id: self.call_id.clone(), caller: self.caller.clone(), callee: self.callee.clone(), answered_by: self.callee.clone() });
                }
                Action::Connect(n) => match answers.get(n).and_then(|a| a.as_deref()).and_then(page::listener_target) {
                    Some(to) => {
                        tracing::info!(call_id = %self.call_id, listener = n, %to, "page: listener connected");
                        self.media.listen(n, to);
                    }
                    None => tracing::info!(call_id = %self.call_id, listener = n, "page: listener answered without a usable address: it hears nothing"),
                },
                Action::Cancel(n) => {
                    self.forks.cancel(n);
                    self.media.remove_listener(n);
                }
                Action::Bye(n) => {
                    self.forks.bye(n);
                    self.media.remove_listener(n);
                }
                Action::RejectCaller(code) => {
                    let _ = self.caller_dialog.reject(Some(StatusCode::Other(code, "Nobody answered the page".into())), None);
                }
                Action::ByeCaller => {
                    let d = self.caller_dialog.clone();
                    tokio::spawn(async move {
                        let _ = d.bye().await;
                    });
                }
                Action::Ended { answered, by_caller } => {
                    let (call_id, caller, callee) = (self.call_id.clone(), self.caller.clone(), self.callee.clone());
                    let event = if answered {
                        let since = self.answered_at.unwrap_or(self.started);
                        let reason = if by_caller { EndReason::CallerHangup } else { EndReason::CalleeHangup };
                        PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms: since.elapsed().as_millis() as u64 }
                    } else {
                        PbxEvent::Missed { call_id, caller, callee }
                    };
                    tracing::info!(call_id = %self.call_id, answered, "page ended");
                    self.core.bus.publish(event);
                }
            }
        }
    }

    fn cleanup(&mut self) {
        self.core.calls.remove(&self.call_id);
        self.core.dialogs.remove_dialog(&self.caller_dialog.id());
        for f in self.forks.dialogs() {
            self.core.dialogs.remove_dialog(&f.id());
        }
    }
}
