//! What a live call is told from outside (Home Assistant, the HTTP API, the
//! agent's handoff timer): hang up, answer, DTMF, blind transfer, hand to
//! the agent. Each becomes the call machine's input where it changes the
//! call, so the machine decides and publishes what happens.
use super::call::{is_browser, Call, CallerKind};
use super::machine::{Input, Party};
use super::registry::{Command, TransferLeaving};
use crate::media::Leg;
use rsipstack::sip::Header;

impl Call {
    pub(super) async fn on_command(&mut self, cmd: Command) -> Option<Input> {
        match cmd {
            Command::HangUp => Some(Input::Terminate),
            Command::BrowserGone { extension } => {
                // The ring group's member that answered is the callee's leg.
                let party = self.core.calls.get(&self.call_id).and_then(|c| c.party(&extension));
                let legs = [(self.caller_leg, &self.caller_ext), (self.fork_leg(), &self.callee_ext)];
                let in_call = legs.iter().any(|(leg, ext)| party.as_ref() == Some(*ext) && self.media.is_browser(*leg));
                if in_call {
                    tracing::info!(call_id = %self.call_id, %extension, "browser gone: hanging up its call");
                }
                in_call.then_some(Input::Terminate)
            }
            Command::Transfer { leaving, to } => {
                self.transfer(&leaving, &to).await;
                None
            }
            Command::PickUp(req) => {
                self.pick_up(req).await;
                None
            }
            Command::Answer { ext } => {
                self.remote_answer(ext.as_deref());
                None
            }
            Command::HandToAgent => {
                if self.machine.winner().is_some() {
                    tracing::info!(call_id = %self.call_id, "answer with AI ignored: the call is already answered");
                } else if let Some(offer) = self.offer_b.clone() {
                    self.hand_to_agent(&offer).await;
                }
                None
            }
            Command::Dtmf { to, digits } => {
                // As the extension takes key presses: RFC 4733 in its stream,
                // or SIP INFO (its `dtmf: info`, a browser, no telephone-event).
                let target = match self.winner() {
                    Some(w) if to == self.callee_ext => Some((Leg::B, self.forks.dialog(w))),
                    Some(_) if to == self.caller_ext => Some((Leg::A, Some(self.caller.clone()))),
                    _ => None,
                };
                match target {
                    Some((leg, _)) if self.media.send_keys_to(leg, &digits) => {
                        tracing::info!(call_id = %self.call_id, %to, %digits, "DTMF sent as RFC 4733");
                    }
                    Some((_, Some(dialog))) => self.info_out.send(dialog, digits),
                    _ => tracing::info!(call_id = %self.call_id, %to, "DTMF not sent: call not answered or extension not in it"),
                }
                None
            }
        }
    }

    /// Ask the ringing forks that offered it to answer (see control::answer):
    /// those ringing `ext` (the callee's own, or a member's), or with None
    /// every one. The NOTIFY travels in the fork's early dialog; the
    /// device's 200 OK to the INVITE then arrives like any answer.
    fn remote_answer(&self, ext: Option<&str>) {
        if !self.machine.is_ringing() {
            tracing::info!(call_id = %self.call_id, "answer ignored: the call is already answered");
            return;
        }
        for id in self.machine.current_forks() {
            let rings_ext = |s: &&super::forks::Slot| ext.is_none_or(|e| s.member.as_deref().unwrap_or(&self.callee_ext) == e);
            let Some(dialog) = self.forks.get(id).filter(|s| s.talk).filter(rings_ext).and_then(|s| s.dialog.as_ref()) else { continue };
            let dialog = dialog.as_subscription();
            let call_id = self.call_id.clone();
            tokio::spawn(async move {
                let rsipstack::dialog::dialog::Dialog::ClientSubscription(d) = dialog else { return };
                let event = Header::Event("talk".into());
                match d.request(rsipstack::sip::Method::Notify, Some(vec![event]), None).await {
                    Ok(Some(r)) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful => {
                        tracing::info!(%call_id, "remote answer accepted by the device")
                    }
                    Ok(Some(r)) => tracing::info!(%call_id, status = %r.status_code, "remote answer refused by the device"),
                    Ok(None) => tracing::info!(%call_id, "remote answer: no response from the device"),
                    Err(e) => tracing::info!(%call_id, error = %e, "remote answer NOTIFY failed"),
                }
            });
        }
    }

    /// Blind transfer by command: `leaving` (a party of the answered call)
    /// is hung up and the other party is connected to extension `to`. Only
    /// the relay's far side changes, so the remaining device keeps its media
    /// path and needs no re-INVITE.
    async fn transfer(&mut self, leaving: &str, to: &str) {
        let Some(w) = self.winner() else {
            tracing::info!(call_id = %self.call_id, "transfer ignored: the call is not answered");
            return;
        };
        let bindings = self.core.registered_contacts(to);
        if bindings.is_empty() {
            tracing::info!(call_id = %self.call_id, %to, "transfer refused: target not registered");
            return;
        }
        let (party, staying_leg) = if leaving == self.caller_ext {
            (Party::Caller, self.fork_leg())
        } else if leaving == self.callee_ext {
            (Party::Callee, self.caller_leg)
        } else {
            tracing::info!(call_id = %self.call_id, %leaving, "transfer refused: extension not in the call");
            return;
        };
        // The relay's far side is re-pointed, not renegotiated; a browser
        // that stays on its own bridge has no relay to re-point.
        if !self.media.may_leave(staying_leg.other()) {
            tracing::info!(call_id = %self.call_id, %leaving, %to, "transfer refused: the staying party is a browser on its own WebRTC bridge");
            return;
        }
        let offer = match self.media.transfer_offer(staying_leg).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "transfer failed: no offer for the target");
                return;
            }
        };
        // The leaving browser's bridge is gone: the staying device is
        // re-INVITEd toward the relay once the target answers.
        self.move_caller_media = offer.move_staying;
        let offer = offer.sdp;
        // The leaving party is hung up, and its part of the call ends
        // (published with the old parties' names).
        self.step(Input::Transfer { leaving: party }).await;
        if party == Party::Caller {
            // The callee stays: it becomes the caller leg of the new call.
            self.caller = self.forks.dialog(w).unwrap_or_else(|| self.caller.clone());
            self.caller_from_fork = Some(w);
            self.caller_leg = staying_leg;
            self.caller_ext = std::mem::take(&mut self.callee_ext);
        }
        // A target in the dashboard gets WebRTC from a bridge behind the relay.
        self.offer_browsers = None;
        if bindings.iter().any(is_browser) {
            match self.media.adapt_for_browser(self.fork_leg(), &offer).await {
                Ok(webrtc) => self.offer_browsers = Some(webrtc),
                Err(e) => tracing::warn!(call_id = %self.call_id, error = %e, "transfer: no WebRTC offer for the target's browsers"),
            }
        }
        tracing::info!(call_id = %self.call_id, %leaving, staying = %self.caller_ext, %to, moved_off_bridge = self.move_caller_media, "call transferred");
        self.callee_ext = to.to_string();
        self.kind = CallerKind::Originated;
        self.core.calls.set_parties(&self.call_id, &self.caller_ext, &self.callee_ext);
        self.apply_dtmf_modes();
        self.ring(&bindings, &offer).await;
    }

    /// Nobody answered in time: stop ringing and let the agent take a
    /// message (an `agent.handoff` rule, a group's fallback). False when it
    /// cannot.
    pub(super) async fn hand_to_agent(&mut self, offer: &[u8]) -> bool {
        let Some(agent) = self.core.agent_binding() else { return false };
        if !self.machine.is_ringing() {
            return false;
        }
        let mut offer = offer.to_vec();
        if self.media.is_browser(self.fork_leg()) {
            // The agent is a plain RTP device: the ringing browsers' bridge
            // goes, and the caller's offer is carried to the agent afresh.
            match self.media.callee_plain_offer(self.caller_leg).await {
                Ok(plain) => offer = plain,
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, error = %e, "handoff to the agent failed: no plain offer");
                    return false;
                }
            }
        }
        tracing::info!(call_id = %self.call_id, callee = %self.callee_ext, "no answer: the agent takes a message");
        self.agent_note.message_for = Some(self.callee_ext.clone());
        self.core.calls.set_to_agent(&self.call_id);
        self.step(Input::HandOff { forks: 1 }).await;
        self.start_fork(&agent, &offer).await;
        self.offer_b = Some(offer);
        true
    }
    /// The target of a transfer away from a browser answered: `sdp` (its
    /// answer, through the relay) is offered to the staying device, which
    /// still talks to the gone bridge, in a re-INVITE; its answer tells the
    /// relay where it listens (`CallMsg::MovedMedia`). Not awaited here: a
    /// device slow to answer must not hold up the call.
    pub(super) fn move_caller(&self, sdp: Vec<u8>) {
        let (dialog, msgs, call_id) = (self.caller.clone(), self.msgs.clone(), self.call_id.clone());
        tokio::spawn(async move {
            let sent = tokio::time::timeout(std::time::Duration::from_secs(32), dialog.reinvite(Some(vec![super::call::sdp_content_type()]), Some(sdp))).await;
            match sent {
                Ok(Ok(Some(resp))) if resp.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful && !resp.body.is_empty() => {
                    tracing::info!(%call_id, "staying device moved onto the relay");
                    let _ = msgs.send(super::call::CallMsg::MovedMedia(resp.body));
                }
                Ok(Ok(Some(resp))) => tracing::warn!(%call_id, status = %resp.status_code, "staying device refused the re-INVITE onto the relay"),
                Ok(Ok(None)) => tracing::warn!(%call_id, "staying device: no answer to the re-INVITE onto the relay"),
                Ok(Err(e)) => tracing::warn!(%call_id, error = %e, "staying device: re-INVITE onto the relay failed"),
                Err(_) => tracing::warn!(%call_id, "staying device: re-INVITE onto the relay timed out"),
            }
        });
    }
    /// Who may leave the answered call by a blind transfer (the registry's
    /// note, which the transfer commands check before they ask).
    pub(super) fn who_may_leave(&self) -> TransferLeaving {
        match (self.media.may_leave(self.caller_leg), self.media.may_leave(self.fork_leg())) {
            (true, true) => TransferLeaving::Either,
            (true, false) => TransferLeaving::Only(self.caller_ext.clone()),
            (false, true) => TransferLeaving::Only(self.callee_ext.clone()),
            (false, false) => TransferLeaving::Neither,
        }
    }
}
