//! Click-to-dial (third-party call control, RFC 3725 flow II): ring extension
//! A with an offer of our relay; when A answers, its answer becomes the offer
//! to B, and from there it is an ordinary call with A as the caller. B may
//! be a number outside, over a trunk, when an outbound route lets A call it.
//!
//! A browser on either side (the SIP Core card) is offered WebRTC by a
//! bridge that sits behind the relay's leg (`CallMedia::adapt_for_browser`):
//! the relay exists before anyone answers, and the other device already
//! sends to it.
use super::call::{is_browser, Call, CallMsg, CallerKind};
use super::fork::{self, ForkEvent, Presented, Report};
use super::machine::{Action, CallMachine, Input};
use crate::media::call_media::CallMedia;
use crate::media::Leg;
use crate::sip::agent_leg::AgentInvite;
use crate::sip::control_error::ControlError;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::invite_dialog::InviteDialog;
use std::time::Duration;
use tokio::sync::mpsc;

/// Start ringing `from`; returns the call id at once. `to` rings once `from` answers.
pub async fn dial(core: SipCoreRef, from: &str, to: &str) -> Result<String, ControlError> {
    dial_with(core, from, to, AgentInvite::default()).await
}

/// Who rings first: an extension's devices, or a number outside over a trunk.
struct FirstParty {
    name: String,
    bindings: Vec<Binding>,
    presented: Option<Presented>,
}

/// `dial`, telling the agent (when `to` is the agent) why it is called.
pub async fn dial_with(core: SipCoreRef, from: &str, to: &str, agent_note: AgentInvite) -> Result<String, ControlError> {
    if !core.extension_exists(from) {
        return Err(ControlError::NoSuchExtension(from.to_string()));
    }
    // A number outside: only as an outbound route lets `from` call it.
    let trunk = match core.extension_exists(to) {
        true => None,
        false => Some(crate::sip::trunk::outbound::for_dial(&core, from, to).await?),
    };
    if from == to {
        return Err(ControlError::BadArgument("cannot dial an extension to itself".into()));
    }
    let bindings = core.registered_contacts(from);
    if bindings.is_empty() {
        return Err(ControlError::NotRegistered(from.to_string()));
    }
    let first = FirstParty { name: from.to_string(), bindings, presented: None };
    originate(core, first, to, trunk, agent_note).await
}

/// The number `number` outside is rung first, over the trunk the outbound
/// routes choose as if extension `to` had dialled it (so `to` must be in
/// the route's `extensions`); when it answers, `to` rings. The agent's
/// announcement to a mobile is this, with `to` the agent.
pub async fn dial_out_first(core: SipCoreRef, number: &str, to: &str, agent_note: AgentInvite) -> Result<String, ControlError> {
    if !core.extension_exists(to) {
        return Err(ControlError::NoSuchExtension(to.to_string()));
    }
    let (binding, presented) = crate::sip::trunk::outbound::for_dial(&core, to, number).await?;
    let first = FirstParty { name: number.to_string(), bindings: vec![binding], presented: Some(presented) };
    originate(core, first, to, None, agent_note).await
}

async fn originate(core: SipCoreRef, first: FirstParty, to: &str, trunk: Option<(Binding, Presented)>, agent_note: AgentInvite) -> Result<String, ControlError> {
    let FirstParty { name: from, bindings: a_bindings, presented: a_presented } = first;
    if trunk.is_none() && core.registered_contacts(to).is_empty() {
        return Err(ControlError::NotRegistered(to.to_string()));
    }
    let mut media = CallMedia::new(core.media.clone(), core.config.security.max_media_per_call);
    if let Some(p) = &a_presented {
        media.set_srtp(Leg::A, p.srtp);
    }
    if let Some((_, p)) = &trunk {
        media.set_srtp(Leg::B, p.srtp);
    }
    let no_ports = |e: anyhow::Error| ControlError::BadArgument(format!("no media ports: {e}"));
    let offer = media.offer(Leg::A).await.map_err(no_ports)?;
    // A's browsers get WebRTC from a bridge behind the relay; its SIP devices the plain offer.
    let offer_browser = if a_bindings.iter().any(is_browser) { Some(media.adapt_for_browser(Leg::A, &offer).await.map_err(no_ports)?) } else { None };
    let (msgs, mut rx) = mpsc::unbounded_channel::<CallMsg>();
    let mut forks: Vec<InviteDialog> = Vec::new();
    // Per fork: the host its device registered from (A's media may come from there).
    let mut hosts = Vec::new();
    for b in &a_bindings {
        // Fork numbers count the INVITEs sent, so they index `forks`.
        let id = forks.len();
        let m = msgs.clone();
        let report = move |e: ForkEvent| m.send(CallMsg::Fork(id, e)).is_ok();
        // A's display shows who it is about to be connected to.
        let offer = match &offer_browser {
            Some(webrtc) if is_browser(b) => webrtc,
            _ => &offer,
        };
        match fork::start(&core, b, to, offer, Vec::new(), a_presented.as_ref(), report) {
            Ok(d) => {
                forks.push(d);
                hosts.push(b.source_ip());
            }
            Err(e) => tracing::warn!("dial {from}: {e}"),
        }
    }
    let Some(first) = forks.first() else {
        return Err(match a_presented {
            Some(_) => ControlError::NotPossible(format!("no INVITE could be sent to {from} over the trunk")),
            None => ControlError::NotRegistered(from),
        });
    };
    let call_id = first.id().call_id.clone();
    tracing::info!(%call_id, %from, %to, "dialling: ringing the caller first");
    let to = to.to_string();
    tokio::spawn(async move {
        let Some((winner, answer)) = ring_caller(&core, &mut rx, &forks).await else {
            tracing::info!(%from, %to, "dial ended: the caller did not answer");
            return;
        };
        let a_dialog = forks[winner].clone();
        if let Some(host) = hosts[winner] {
            media.set_signalling_host(Leg::A, host);
        }
        let offer_b = match media.translate(Leg::A, &answer).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(%from, error = %e, "caller's answer unusable; hanging up");
                let _ = a_dialog.bye().await;
                return;
            }
        };
        // From now on A's dialog events are the caller leg's.
        let (call_msgs, call_rx) = mpsc::unbounded_channel();
        let forward = call_msgs.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if let CallMsg::Fork(id, ForkEvent::State(s)) = m
                    && id == winner && forward.send(CallMsg::Caller(s)).is_err() {
                        break;
                    }
            }
        });
        let call_id = a_dialog.id().call_id.clone();
        let (bindings, presented) = match trunk {
            Some((binding, presented)) => (vec![binding], Some(presented)),
            None => (core.registered_contacts(&to), None),
        };
        // B's browsers: WebRTC from a bridge behind the relay's B side.
        let mut offer_b = offer_b;
        let mut offer_browsers = None;
        if bindings.iter().any(is_browser) {
            match media.adapt_for_browser(Leg::B, &offer_b).await {
                Ok(webrtc) if bindings.iter().all(is_browser) => offer_b = webrtc,
                Ok(webrtc) => offer_browsers = Some(webrtc),
                Err(e) => tracing::warn!(%to, error = %e, "no WebRTC offer for the callee's browsers"),
            }
        }
        let mut call = Call::new(core.clone(), CallerKind::Originated, call_id, from, to, a_dialog, media, call_msgs);
        call.agent_note = agent_note;
        call.offer_browsers = offer_browsers;
        call.trunk = presented;
        call.drive(call_rx, &bindings, &offer_b).await;
    });
    Ok(call_id)
}

/// Ring A's devices; Some((winning fork, its SDP answer)) once one answers.
async fn ring_caller(core: &SipCoreRef, rx: &mut mpsc::UnboundedReceiver<CallMsg>, forks: &[InviteDialog]) -> Option<(usize, Vec<u8>)> {
    let mut machine = CallMachine::new();
    machine.on(Input::Offered { forks: forks.len() });
    let mut answers: Vec<Option<Vec<u8>>> = vec![None; forks.len()];
    let timeout = tokio::time::sleep(Duration::from_secs(core.config.sip.ring_timeout_secs));
    tokio::pin!(timeout);
    loop {
        let input = tokio::select! {
            m = rx.recv() => match m? {
                CallMsg::Fork(fork, event) => {
                    let report = fork::classify(&event);
                    if let Report::Answered(resp) = report {
                        answers[fork] = Some(resp.body.clone());
                    }
                    report.input(fork)
                }
                CallMsg::Caller(_) | CallMsg::ParkerClip(_) | CallMsg::LateAnswer(..) | CallMsg::MovedMedia(_) => None,
            },
            _ = &mut timeout => Some(Input::RingTimeout),
        };
        let Some(input) = input else { continue };
        let mut won = None;
        for action in machine.on(input) {
            match action {
                Action::AnswerCaller { fork } => won = Some(fork),
                Action::CancelFork(f) => {
                    let d = forks[f].clone();
                    tokio::spawn(async move { d.cancel().await });
                }
                Action::ByeFork(f) => {
                    let d = forks[f].clone();
                    tokio::spawn(async move { d.bye().await });
                }
                _ => {}
            }
        }
        if let Some(fork) = won {
            return Some((fork, answers[fork].take().unwrap_or_default()));
        }
        if machine.is_finished() {
            return None;
        }
    }
}
