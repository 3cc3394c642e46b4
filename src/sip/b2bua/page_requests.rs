//! A page's mid-dialog traffic. A re-INVITE or UPDATE from the caller or
//! from a listener (a session refresh, hold, a new address) is answered
//! here, as the page's own media answers it: 200 with our SDP (same port,
//! same codec, the direction RFC 3264 gives for what the page does on that
//! leg), nothing passed on, since every leg's session is with the PBX.
//! The caller holding pauses the media timeout; a listener holding stops
//! getting audio until it resumes. An offer the page cannot keep (its codec
//! gone, no stream) gets 488 and the page goes on unchanged. A browser
//! listener's re-offer is read and answered through its bridge.
use super::fork::{self, ForkEvent, Report};
use super::page::Input;
use super::page_call::Page;
use crate::events::PbxEvent;
use crate::media::page;
use crate::media::sdp::OriginKeeper;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason, TransactionHandle};
use rsipstack::sip::{Header, HeadersExt, Method, Request, StatusCode};

/// What the page keeps per leg to answer re-offers.
pub(super) struct Legs {
    /// The page's payload types (the caller's first codec, telephone-event).
    pub(super) codecs: Vec<u8>,
    pub(super) caller_origin: OriginKeeper,
    /// The caller's last SDP said it sends nothing.
    pub(super) caller_held: bool,
    /// Per listener: our o=, and our last SDP to it.
    pub(super) origins: Vec<OriginKeeper>,
    pub(super) offers: Vec<Option<String>>,
}

fn sdp_headers() -> Option<Vec<Header>> {
    Some(vec![Header::ContentType("application/sdp".into())])
}

/// The SDP a request carries, if any (other bodies are not offers).
fn offer_of(req: &Request) -> Option<&[u8]> {
    let is_sdp = req.header_value("Content-Type").is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
    (is_sdp && !req.body.is_empty()).then_some(&req.body[..])
}

impl Page {
    pub(super) async fn caller_input(&mut self, state: DialogState) -> Option<Input> {
        match state {
            DialogState::Terminated(_, TerminatedReason::UasDecline) => None, // our own reject
            DialogState::Terminated(..) => Some(Input::CallerHungUp),
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                None
            }
            DialogState::Updated(_, req, handle) => {
                self.caller_reoffer(&req, handle).await;
                None
            }
            DialogState::Info(_, _, handle) | DialogState::Message(_, _, handle) | DialogState::Notify(_, _, handle) | DialogState::Refer(_, _, handle) => {
                // A page carries no key presses, messages or transfers.
                let _ = handle.reply(StatusCode::NotImplemented).await;
                None
            }
            _ => None,
        }
    }

    pub(super) async fn fork_input(&mut self, id: usize, event: ForkEvent, connected: bool) -> Option<Input> {
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
            ForkEvent::State(DialogState::Updated(_, req, handle)) if connected => {
                self.listener_reoffer(id, &req, handle).await;
                None
            }
            ForkEvent::State(DialogState::Updated(_, _, handle)) => {
                let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
                None
            }
            ForkEvent::State(DialogState::Info(_, _, handle)) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
                None
            }
            _ => None,
        }
    }

    /// A re-INVITE or UPDATE from the caller.
    async fn caller_reoffer(&mut self, req: &Request, handle: TransactionHandle) {
        let Some(offer) = offer_of(req) else {
            // No offer: an INVITE gets ours (the last we sent), an UPDATE refreshes.
            let body = (req.method == Method::Invite).then(|| self.answer.clone().into_bytes());
            let _ = handle.respond(StatusCode::OK, body.as_ref().and(sdp_headers()), body).await;
            return;
        };
        let (addr, port) = (self.media.advertise(), self.media.caller_port());
        match page::caller_answer(offer, &self.legs.codecs, addr, port, &mut self.legs.caller_origin) {
            Ok(answer) => {
                let held = page::caller_holds(offer);
                self.media.set_timeout_enabled(!held);
                if held != self.legs.caller_held {
                    self.legs.caller_held = held;
                    tracing::info!(call_id = %self.call_id, by = %self.caller, held, "page: hold state changed");
                    self.core.bus.publish(PbxEvent::Hold { call_id: self.call_id.clone(), caller: self.caller.clone(), callee: self.callee.clone(), by: self.caller.clone(), held });
                }
                self.answer = answer.clone();
                let _ = handle.respond(StatusCode::OK, sdp_headers(), Some(answer.into_bytes())).await;
            }
            Err(e) => {
                tracing::info!(call_id = %self.call_id, method = %req.method, error = %e, "page: the caller's re-offer refused with 488; the page goes on as it was");
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            }
        }
    }

    /// A re-INVITE or UPDATE from listener `id` (answered, still on the page).
    async fn listener_reoffer(&mut self, id: usize, req: &Request, handle: TransactionHandle) {
        let (Some(port), Some(origin)) = (self.media.listener_port(id), self.legs.origins.get_mut(id)) else {
            let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
            return;
        };
        let browser = self.media.is_browser(id);
        let Some(offer) = offer_of(req) else {
            // A browser's INVITE without an offer would need a WebRTC one: refused, as a call refuses it.
            if browser && req.method == Method::Invite {
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
            let body = if req.method == Method::Invite { self.legs.offers.get(id).cloned().flatten().map(String::into_bytes) } else { None };
            let _ = handle.respond(StatusCode::OK, body.as_ref().and(sdp_headers()), body).await;
            return;
        };
        // A browser's re-offer (hold, resume) is read through its bridge, and answered through it.
        let offer = if browser { self.media.from_browser(id, offer).await } else { Ok(offer.to_vec()) };
        let answered = offer.and_then(|offer| Ok((page::listener_answer(&offer, &self.legs.codecs, self.media.advertise(), port, origin)?, offer)));
        let answered = match answered {
            Ok((plain, offer)) if browser => self.media.to_browser(id, &plain).await.map(|to_browser| (plain, to_browser, offer)),
            Ok((plain, offer)) => Ok((plain.clone(), plain.into_bytes(), offer)),
            Err(e) => Err(e),
        };
        match answered {
            Ok((answer, body, offer)) => {
                match page::listener_target(&offer) {
                    Some(to) => self.media.listen(id, to),
                    None => self.media.pause(id),
                }
                tracing::info!(call_id = %self.call_id, listener = id, browser, takes_audio = page::listener_target(&offer).is_some(), "page: a listener's re-offer answered");
                if let Some(slot) = self.legs.offers.get_mut(id) {
                    *slot = Some(answer);
                }
                let _ = handle.respond(StatusCode::OK, sdp_headers(), Some(body)).await;
            }
            Err(e) => {
                tracing::info!(call_id = %self.call_id, listener = id, method = %req.method, error = %e, "page: a listener's re-offer refused with 488; it goes on as it was");
                let _ = handle.reply(StatusCode::NotAcceptableHere).await;
            }
        }
    }
}
