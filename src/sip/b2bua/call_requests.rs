//! A call's mid-dialog traffic: re-INVITE, UPDATE and INFO passed to the
//! other leg with their SDP rewritten, hold and key presses published, key
//! presses turned into SIP INFO for the devices that take them.
use super::call::Call;
use super::dtmf::{self, info_digit};
use crate::events::PbxEvent;
use crate::media::Leg;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, HeadersExt, Method, Request, StatusCode};
use std::time::Duration;

impl Call {
    /// A device's RFC 4733 key press reaches `to` as SIP INFO when `to` is
    /// a browser (what JsSIP reports to the page) or an extension set to
    /// `dtmf: info` (the relay holds the events back from it).
    pub(super) fn dtmf_as_info(&self, to: Leg, digit: char) {
        if !self.media.is_browser(to) && !self.media.takes_info(to) {
            return;
        }
        let dialog = match self.winner() {
            Some(_) if to == self.caller_leg => self.caller.clone(),
            Some(w) => match self.forks.dialog(w) {
                Some(d) => d,
                None => return,
            },
            None => return,
        };
        self.info_out.send(dialog, digit.to_string());
    }

    /// Tell the media side which legs take key presses as SIP INFO: the
    /// extension's `dtmf` setting, except that the agent always uses RFC 4733.
    /// On the callee's leg that is the extension the answering fork rings (a
    /// ring group's member, the picker), not the number dialled.
    pub(super) fn apply_dtmf_modes(&mut self) {
        let winner = self.winner();
        let member = winner.and_then(|w| self.forks.get(w)?.member.clone());
        let parties = dtmf::LegParties {
            caller: &self.caller_ext,
            callee: &self.callee_ext,
            member: member.as_deref(),
            agent: winner.is_some_and(|w| self.forks.is_agent(w)),
        };
        let (caller, other) = dtmf::legs_take_info(&self.core.config, &parties);
        self.media.set_takes_info(self.caller_leg, caller);
        self.media.set_takes_info(self.caller_leg.other(), other);
    }


    /// `by`: the extension whose phone held (a ring group's member that
    /// answered, not the group's number).
    pub(super) fn publish_hold(&self, by: Leg, held: bool) {
        let by = self.talker_on(by);
        tracing::info!(call_id = %self.call_id, %by, held, "hold state changed");
        self.core.bus.publish(PbxEvent::Hold {
            call_id: self.call_id.clone(),
            caller: self.caller_ext.clone(),
            callee: self.callee_ext.clone(),
            by,
            held,
        });
    }

    /// A DTMF digit sent as SIP INFO (application/dtmf-relay or application/dtmf).
    pub(super) fn publish_dtmf(&self, req: &Request, from: &str) {
        if let Some(digit) = info_digit(req) {
            self.core.bus.publish(PbxEvent::Dtmf { call_id: self.call_id.clone(), from: from.to_string(), digit });
        }
    }

    /// Pass a re-INVITE, UPDATE or INFO from `from` to the other leg and its
    /// answer back, SDP rewritten both ways.
    pub(super) async fn pass_request(&mut self, from: Leg, req: Request, handle: TransactionHandle) {
        let Some(winner) = self.winner() else {
            let _ = handle.reply(StatusCode::RequestPending).await;
            return;
        };
        // A browser's (or a `dtmf: info` device's) key press toward a SIP
        // device goes as RFC 4733 unless that device takes INFO too.
        if req.method == Method::Info && info_digit(&req).is_some_and(|d| self.media.dtmf_to_device(from, d)) {
            let _ = handle.reply(StatusCode::OK).await;
            return;
        }
        if self.is_late_offer(&req) {
            let own = if from == self.caller_leg { Some(self.caller.clone()) } else { self.forks.dialog(winner) };
            if let Some(dialog) = own {
                return self.answer_late_offer(from, &req, dialog, handle).await;
            }
        }
        let target = if from == self.caller_leg { self.forks.dialog(winner) } else { Some(self.caller.clone()) };
        let Some(target) = target else {
            let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
            return;
        };
        let is_sdp = req.header_value("Content-Type").is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        let body = if is_sdp && !req.body.is_empty() {
            let was_held = self.media.is_held_by(from);
            match self.media.translate(from, &req.body).await {
                Ok(b) => {
                    let held = self.media.is_held_by(from);
                    if held != was_held {
                        self.publish_hold(from, held);
                    }
                    Some(b)
                }
                Err(e) => {
                    tracing::info!(call_id = %self.call_id, error = %e, "re-offer SDP unusable");
                    let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                    return;
                }
            }
        } else if req.body.is_empty() {
            None
        } else {
            Some(req.body.clone())
        };
        let mut headers = Vec::new();
        if let Some(ct) = req.header_value("Content-Type") {
            headers.push(Header::ContentType(ct.into()));
        }
        for name in ["Session-Expires", "Min-SE", "Supported"] {
            if let Some(v) = req.header_value(name) {
                headers.push(Header::Other(name.into(), v));
            }
        }
        let headers = Some(headers);
        let sent = tokio::time::timeout(Duration::from_secs(32), async {
            match req.method {
                Method::Invite => target.reinvite(headers, body).await,
                Method::Update => target.update(headers, body).await,
                _ => target.info(headers, body).await,
            }
        })
        .await;
        let resp = match sent {
            Ok(Ok(Some(resp))) => resp,
            Ok(Ok(None)) => {
                let _ = handle.reply(StatusCode::RequestPending).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::info!(call_id = %self.call_id, method = %req.method, error = %e, "mid-dialog request failed");
                let _ = handle.reply(StatusCode::ServerInternalError).await;
                return;
            }
            Err(_) => {
                let _ = handle.reply(StatusCode::RequestTimeout).await;
                return;
            }
        };
        let resp_is_sdp = resp.header_value("Content-Type").is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        let resp_body = if resp_is_sdp && !resp.body.is_empty() {
            self.media.translate(from.other(), &resp.body).await.ok()
        } else if resp.body.is_empty() {
            None
        } else {
            Some(resp.body.clone())
        };
        let resp_headers = resp_body.as_ref().map(|_| {
            vec![Header::ContentType(resp.header_value("Content-Type").unwrap_or_else(|| "application/sdp".into()).into())]
        });
        let _ = handle.respond(resp.status_code.clone(), resp_headers, resp_body).await;
    }

}
