//! Park's glue. A REFER to the park code (`feature_codes.park`) from an
//! extension's phone puts the other party on the first free slot of the
//! `park::Lot` and ends the parker's leg (202, NOTIFY 200, BYE); the parked
//! party keeps its relay leg, with nobody on the other side. Dialling the
//! slot hands the retriever's INVITE to the parked call as a pickup does.
//! The call's `park::Stay` decides when the parker is rung back and when the
//! parked party is hung up, and `park::parker_end` whether the parker hears
//! the slot (the agent's text-to-speech, played into the parker's leg by
//! the relay) before its leg ends; this file only carries that out.
use super::call::{is_browser, Call, CallMsg, CallerKind};
use super::invite::reply;
use super::machine::{Input, Party};
use super::park::{self, Next, ParkerEnd, Parked, Refusal, Stay};
use crate::events::PbxEvent;
use crate::media::Leg;
use crate::sip::core::SipCoreRef;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HeadersExt, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use tokio::time::{Duration, Instant};

/// Dialling park slot `slot`: authenticated extension `who` takes the call parked there.
pub async fn retrieve(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, who: String, slot: String) {
    let found = core.parking.lock().map_err(|_| Refusal::Empty(slot.clone())).and_then(|l| l.get(&slot).cloned());
    let parked = match found {
        Ok(p) => p,
        Err(why) => {
            let (code, phrase) = why.status();
            tracing::info!(%who, %slot, "retrieve refused with {code}: {phrase}");
            return reply(&core, &mut tx, StatusCode::Other(code, phrase)).await;
        }
    };
    if parked.parked == who {
        // Its own call: handing this INVITE to it would connect it to itself.
        tracing::info!(%who, %slot, call_id = %parked.call_id, "retrieve refused with 403: the caller is the party parked there");
        return reply(&core, &mut tx, StatusCode::Other(403, format!("You are the call parked on {slot}"))).await;
    }
    if tx.original.body.is_empty() {
        return reply(&core, &mut tx, StatusCode::Other(488, "Retrieve needs an SDP offer".into())).await;
    }
    tracing::info!(%who, %slot, call_id = %parked.call_id, parked = %parked.parked, "retrieving a parked call");
    super::pickup_call::hand_over(core, tx, source, who, &parked.call_id, "Call no longer parked").await;
}

/// The user part of a Refer-To value (`<sip:*70@pbx>`), `%2A`/`%23` decoded.
pub(super) fn refer_user(value: &str) -> Option<String> {
    let uri = rsipstack::sip::event_packages::parse_refer_to(value).uri;
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:"))?;
    let user = rest.split_once('@').map(|(u, _)| u)?;
    let user = user.split(';').next().unwrap_or(user);
    Some(user.replace("%2A", "*").replace("%2a", "*").replace("%23", "#"))
}

impl Call {
    /// The device on `leg` is on a trunk (a provider's caller, or the
    /// number a call goes out to): it may not park.
    fn on_trunk(&self, leg: Leg) -> bool {
        if leg == self.caller_leg { self.caller_from_trunk } else { self.trunk.is_some() }
    }

    /// A REFER in the answered call from the device on `from`: only a park
    /// (Refer-To the park code) is taken; any other target gets 501.
    pub(super) async fn on_refer(&mut self, from: Leg, req: Request, handle: TransactionHandle) {
        let target = req.header_value("Refer-To").or_else(|| req.header_value("r")).and_then(|v| refer_user(&v));
        if target.as_deref() != Some(self.core.config.feature_codes.park.as_str()) {
            tracing::info!(call_id = %self.call_id, ?target, "REFER refused with 501: a REFER may only park the call (Refer-To the park code)");
            let _ = handle.reply(StatusCode::NotImplemented).await;
            return;
        }
        match self.park(from).await {
            Ok((parker_dialog, slot)) => {
                let _ = handle.reply(StatusCode::Accepted).await;
                let agent = self.core.agent.get().map(|a| a.service.clone());
                match (park::parker_end(&slot, agent.is_some()), agent) {
                    (ParkerEnd::Announce(text), Some(agent)) => {
                        // The transfer is under way (100) while the parker
                        // hears the slot; 200 and BYE follow the announcement.
                        self.parker_leaving = Some((from, parker_dialog.clone()));
                        let msgs = self.msgs.clone();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(Duration::from_secs(5), parker_dialog.notify_refer(StatusCode::Trying, "active;expires=60")).await;
                            let pcm = agent.render_speech(&text).await.map_err(|e| e.to_string());
                            let _ = msgs.send(CallMsg::ParkerClip(pcm));
                        });
                    }
                    _ => {
                        tracing::info!(call_id = %self.call_id, %slot, "the parker is not told the slot: no text-to-speech (the agent: section is not configured or not running)");
                        end_parker_leg(parker_dialog, Duration::ZERO);
                    }
                }
            }
            Err((code, phrase)) => {
                tracing::info!(call_id = %self.call_id, by = %self.ext_on(from), "park refused with {code}: {phrase}");
                let _ = handle.respond(StatusCode::Other(code, phrase), None, None).await;
            }
        }
    }

    /// The slot's announcement was rendered (or failed): the relay plays it
    /// to the parker's device alone, whose leg ends after it.
    pub(super) fn on_parker_clip(&mut self, pcm: Result<Vec<i16>, String>) {
        let Some((leg, dialog)) = self.parker_leaving.take() else { return };
        let playing = match pcm {
            // Taken back already: the leg is the retriever's now.
            Ok(_) if self.parking.is_none() => None,
            Ok(pcm) => {
                let lead_in = (park::ANNOUNCEMENT_LEAD_IN.as_millis() * 8) as usize;
                let clip: Vec<i16> = std::iter::repeat_n(0, lead_in).chain(pcm).collect();
                self.media.play_to(leg, &clip)
            }
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "park announcement: text-to-speech failed; the parker's leg ends without it");
                None
            }
        };
        match playing {
            Some(d) => {
                tracing::info!(call_id = %self.call_id, seconds = d.as_secs_f32(), "park announcement playing to the parker");
                end_parker_leg(dialog, d + park::BYE_AFTER_ANNOUNCEMENT);
            }
            None => {
                tracing::info!(call_id = %self.call_id, "park announcement not played (the call was taken back first, or the parker's device takes no G.711 from the relay)");
                end_parker_leg(dialog, Duration::ZERO);
            }
        }
    }

    /// Park the party facing `from`'s device on a free slot: the parker's
    /// dialog (to end) and the slot, or the refusal.
    async fn park(&mut self, from: Leg) -> Result<(InviteDialog, String), (u16, String)> {
        let Some(config) = self.core.config.park.clone() else { return Err(Refusal::Off.status()) };
        let Some(w) = self.winner() else { return Err((403, "Only an answered call can be parked".into())) };
        let parker = self.talker_on(from);
        if self.on_trunk(from) || self.core.extension(&parker).is_none() || self.core.is_agent(&parker) {
            return Err((403, "Only an extension's phone may park a call".into()));
        }
        // Like a transfer: the relay's far side is re-pointed later, which a
        // browser on its own WebRTC bridge does not have.
        if self.media.has_own_bridge() {
            return Err((488, "Park is not supported for a call the dashboard answered or placed".into()));
        }
        let party = if from == self.caller_leg { Party::Caller } else { Party::Callee };
        let parker_dialog = match party {
            Party::Caller => Some(self.caller.clone()),
            Party::Callee => self.forks.dialog(w),
        };
        let Some(parker_dialog) = parker_dialog else { return Err((500, "The parker's dialog is gone".into())) };
        let staying = from.other();
        let parked = self.talker_on(staying);
        let entry = Parked { call_id: self.call_id.clone(), parker: parker.clone(), parked: parked.clone() };
        let slot = self.core.parking.lock().map_err(|_| (500, "Park table unavailable".to_string()))?.park(entry).map_err(|r| r.status())?;
        // Park refused a call on a browser's own bridge above: nothing to move.
        let offer = match self.media.transfer_offer(staying).await {
            Ok(o) => o.sdp,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "park failed: no offer for whoever takes the call");
                self.free_slot();
                return Err((500, "No media for the parked call".into()));
            }
        };
        // From now on the parked party hears nothing of the parker (who may
        // still talk while it hears the slot); whoever takes the call next
        // on that leg is heard again (`check_unparked`).
        self.media.mute_from(from, true);
        // Parked first, then the parker's part of the call ends (as
        // transferred; nothing rings): whoever follows the bus sees the
        // parked party stay in the call, never between calls.
        self.core.bus.publish(PbxEvent::Parked { call_id: self.call_id.clone(), slot: slot.clone(), parker: parker.clone(), parked: parked.clone() });
        self.step(Input::Park { leaving: party }).await;
        if party == Party::Caller {
            // The callee stays: it becomes the caller leg, as in a transfer.
            self.caller = self.forks.dialog(w).unwrap_or_else(|| self.caller.clone());
            self.caller_from_fork = Some(w);
            self.caller_leg = staying;
            self.caller_ext = parked.clone();
            // Whoever rings next (retriever, parker) is local.
            self.caller_from_trunk = self.trunk.take().is_some();
        }
        self.callee_ext = slot.clone();
        self.kind = CallerKind::Originated;
        // Parked, it is no group's call: no member or fallback rings on the
        // group's clock; the ring-back rings the parker alone.
        self.group = None;
        self.offer_b = Some(offer);
        self.offer_browsers = None;
        self.core.calls.set_parties(&self.call_id, &self.caller_ext, &slot);
        let ring = Duration::from_secs(self.core.config.sip.ring_timeout_secs);
        self.parking = Some(Stay::new(slot.clone(), parker.clone(), Instant::now(), Duration::from_secs(config.timeout_secs), ring));
        tracing::info!(call_id = %self.call_id, %parker, %parked, %slot, timeout_secs = config.timeout_secs, "call parked");
        Ok((parker_dialog, slot))
    }

    /// When the parked call's timer fires next.
    pub(super) fn park_deadline(&self) -> Option<Instant> {
        self.parking.as_ref().and_then(Stay::deadline)
    }

    /// The park timer fired: ring the parker back, or give up.
    pub(super) async fn park_time(&mut self) -> Option<Input> {
        match self.parking.as_mut()?.on_time(Instant::now()) {
            Next::Nothing => None,
            Next::RingBack => {
                self.ring_back().await;
                None
            }
            Next::HangUp => {
                tracing::info!(call_id = %self.call_id, "parked call not taken back and the parker did not answer: hanging up");
                Some(Input::RingTimeout)
            }
        }
    }

    /// Nobody took the call back in time: the parker's devices ring.
    async fn ring_back(&mut self) {
        let Some(stay) = &self.parking else { return };
        let (parker, slot) = (stay.parker.clone(), stay.slot.clone());
        let bindings = self.core.registered_contacts(&parker);
        let offer = self.offer_b.clone().unwrap_or_default();
        self.offer_browsers = None;
        if bindings.iter().any(is_browser) {
            match self.media.adapt_for_browser(self.fork_leg(), &offer).await {
                Ok(webrtc) => self.offer_browsers = Some(webrtc),
                Err(e) => tracing::warn!(call_id = %self.call_id, error = %e, "ring-back: no WebRTC offer for the parker's browsers"),
            }
        }
        tracing::info!(call_id = %self.call_id, %parker, %slot, devices = bindings.len(), "park timeout: ringing the parker back");
        self.callee_ext = parker;
        self.core.calls.set_parties(&self.call_id, &self.caller_ext, &self.callee_ext);
        self.apply_dtmf_modes();
        self.ring(&bindings, &offer).await;
    }

    /// Someone answered the parked call (a retrieve, the ring-back): it
    /// leaves its slot.
    pub(super) fn check_unparked(&mut self) {
        if self.winner().is_none() {
            return;
        }
        if let Some(mut stay) = self.parking.take() {
            stay.taken();
            self.free_slot();
            self.media.mute_from(Leg::A, false);
            self.media.mute_from(Leg::B, false);
            tracing::info!(call_id = %self.call_id, slot = %stay.slot, by = %self.callee_ext, "parked call taken");
        }
    }

    /// The call's slot, if it has one, is free again.
    pub(super) fn free_slot(&self) {
        if let Some(slot) = self.core.parking.lock().ok().and_then(|mut l| l.free(&self.call_id)) {
            tracing::debug!(call_id = %self.call_id, %slot, "park slot freed");
        }
    }
}

/// After `after`, the parker hears the park worked (NOTIFY 200), then its
/// leg ends (it may hang up first: the BYE then finds no dialog).
fn end_parker_leg(dialog: InviteDialog, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), dialog.notify_refer(StatusCode::OK, "terminated;reason=noresource")).await;
        let _ = dialog.bye().await;
    });
}

#[cfg(test)]
mod tests {
    use super::refer_user;

    #[test]
    fn the_refer_to_user_is_found_in_every_usual_spelling() {
        assert_eq!(refer_user("<sip:*70@127.0.0.1:5060>").as_deref(), Some("*70"));
        assert_eq!(refer_user("sip:%2A70@pbx;transport=udp").as_deref(), Some("*70"));
        assert_eq!(refer_user("\"Park\" <sips:*70;phone-context=x@pbx>").as_deref(), Some("*70"));
        assert_eq!(refer_user("<sip:103@pbx?Replaces=abc>").as_deref(), Some("103"));
        assert_eq!(refer_user("<tel:+4930123>"), None);
        assert_eq!(refer_user("<sip:pbx>"), None);
    }
}
