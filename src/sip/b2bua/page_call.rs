//! A page's glue: the caller's server dialog, one fork per member device
//! (with the intercom's auto-answer headers and the caller's first codec), the
//! `PageMachine`'s actions carried out, and `PageMedia` fanning the caller's
//! audio out to every device that answered. A member's browser (the
//! panel's phone, which answers by itself; the SIP Core card, which rings)
//! is offered WebRTC from a bridge of its own (`media::page`'s browsers).
//! The agent is not paged (it would need a voice of its own).
use super::call::{forward_states, CallMsg};
use super::fork::{self, Report};
use super::forks::Forks;
use super::group_call::{devices, member_numbers, Plan};
use super::page::{Action, EndedBy, Input, PageMachine};
use super::page_requests::Legs;
use super::registry::Command;
use crate::config::GroupConfig;
use crate::events::{EndReason, PbxEvent};
use crate::media::page::{self, PageMedia, MAX_LISTENERS};
use crate::media::sdp::OriginKeeper;
use super::invite::reply;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::sip::{Header, HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The devices a page rings: members' SIP devices and browsers, at most `MAX_LISTENERS`.
fn listeners(core: &SipCoreRef, group: &GroupConfig, caller: &str) -> Vec<Binding> {
    let plan = Plan::group(group);
    let mut all: Vec<Binding> = member_numbers(core, &plan, caller)
        .iter()
        .filter(|m| !core.is_agent(m) && *m != crate::config::AGENT_MEMBER)
        .flat_map(|m| devices(core, m))
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
        tracing::info!(%call_id, %caller, group = %callee, "page refused with 480: no member has a device registered");
        return reply(&core, &mut tx, StatusCode::Other(480, "Nobody to page".into())).await;
    }
    let offer = tx.original.body.clone();
    let caller_hosts = crate::media::page::caller_hosts(Some(source.ip()), &offer);
    let mut media = match PageMedia::new(core.media.clone(), bindings.len(), caller_hosts) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "page refused with 503: no media ports");
            return reply(&core, &mut tx, StatusCode::ServiceUnavailable).await;
        }
    };
    let session = rand::random::<u32>() as u64;
    let mut caller_origin = OriginKeeper::new("ha-pbx", session);
    let answer = page::page_codecs(&offer).and_then(|codecs| {
        let answer = page::caller_answer(&offer, &codecs, media.advertise(), media.caller_port(), &mut caller_origin)?;
        Ok((codecs, answer))
    });
    let (codecs, answer) = match answer {
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
    let mut origins = Vec::with_capacity(bindings.len());
    let mut offers = Vec::with_capacity(bindings.len());
    for (id, b) in bindings.iter().enumerate() {
        let mut origin = OriginKeeper::new("ha-pbx", session);
        let sdp = media.add_listener(id).and_then(|port| page::listener_offer(&offer, &codecs, media.advertise(), port, &mut origin));
        origins.push(origin);
        offers.push(sdp.as_ref().ok().cloned());
        // A browser is offered WebRTC from its own bridge, which takes the plain offer.
        let sdp = match sdp {
            Ok(plain) if b.is_browser() => media.browser_offer(id, &plain, session).await,
            other => other.map(String::into_bytes),
        };
        let dialog = sdp.map_err(|e| e.to_string()).and_then(|o| {
            let m = msgs.clone();
            fork::start(&core, b, &caller, &o, headers.clone(), None, move |e| m.send(CallMsg::Fork(id, e)).is_ok())
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
    let legs = Legs { codecs, caller_origin, caller_held: false, origins, offers };
    let mut page = Page { core: core.clone(), call_id, caller, callee, caller_dialog, answer, forks, media, legs, answered_at: None, started: Instant::now() };
    for input in pending {
        page.perform(machine.on(input), &answers);
    }
    let ring_until = Instant::now() + Duration::from_secs(group.ring_secs);
    let mut ring_over = false;
    while !machine.is_done() {
        let input = tokio::select! {
            m = rx.recv() => match m {
                Some(CallMsg::Caller(state)) => page.caller_input(state).await,
                Some(CallMsg::Fork(id, event)) => {
                    let answered = match fork::classify(&event) {
                        Report::Answered(resp) => Some(resp.body.clone()),
                        _ => None,
                    };
                    if let Some(body) = answered
                        && let Some(slot) = answers.get_mut(id) {
                        *slot = Some(page.listener_sdp(id, body).await);
                    }
                    page.fork_input(id, event, machine.is_connected(id)).await
                }
                Some(CallMsg::ParkerClip(_) | CallMsg::LateAnswer(..) | CallMsg::MovedMedia(_)) => None,
                None => Some(Input::CallerHungUp),
            },
            // The caller vanished without a BYE: its silence ends the page.
            _ = page.media.timed_out(), if page.answered_at.is_some() => {
                tracing::info!(call_id = %page.call_id, "no media from the pager for {} s: ending the page", core.config.rtp.media_timeout_secs);
                Some(Input::MediaTimeout)
            }
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
pub(super) struct Page {
    pub(super) core: SipCoreRef,
    pub(super) call_id: String,
    pub(super) caller: String,
    pub(super) callee: String,
    pub(super) caller_dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    /// Our SDP toward the caller, the last one sent.
    pub(super) answer: String,
    pub(super) forks: Forks,
    pub(super) media: PageMedia,
    pub(super) legs: Legs,
    answered_at: Option<Instant>,
    started: Instant,
}

impl Page {
    /// What listener `id` answered, as the page reads it: a browser's WebRTC
    /// answer becomes its bridge's plain SDP (empty if unusable: it hears nothing).
    async fn listener_sdp(&mut self, id: usize, body: Vec<u8>) -> Vec<u8> {
        if !self.media.is_browser(id) {
            return body;
        }
        self.media.from_browser(id, &body).await.unwrap_or_else(|e| {
            tracing::info!(call_id = %self.call_id, listener = id, error = %e, "page: a browser's answer is unusable");
            Vec::new()
        })
    }

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
                Action::Ended { answered, by } => {
                    let (call_id, caller, callee) = (self.call_id.clone(), self.caller.clone(), self.callee.clone());
                    let event = if answered {
                        let since = self.answered_at.unwrap_or(self.started);
                        let reason = match by {
                            EndedBy::Caller => EndReason::CallerHangup,
                            EndedBy::Listeners => EndReason::CalleeHangup,
                            EndedBy::MediaTimeout => EndReason::MediaTimeout,
                        };
                        PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms: since.elapsed().as_millis() as u64 }
                    } else {
                        PbxEvent::Missed { call_id, caller, callee }
                    };
                    tracing::info!(call_id = %self.call_id, answered, ?by, "page ended");
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
