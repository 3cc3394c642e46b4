//! A call from an INVITE: what the caller offers is checked and translated
//! for the callee's devices (plain RTP, WebRTC, or both for an extension in
//! a browser and on a desk phone), the caller's server dialog is made, and
//! the [`Call`] task takes over (`call.rs`).
use super::call::{forward_states, is_browser, Call, CallMsg, CallerKind};
use crate::media::call_media::CallMedia;
use crate::media::Leg;
use crate::sip::agent_leg::AgentInvite;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::sip::{HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct CallSetup {
    pub core: SipCoreRef,
    pub tx: Transaction,
    /// Where the caller's INVITE came from: its media may come from that host.
    pub source: std::net::SocketAddr,
    pub caller: String,
    pub callee: String,
    pub bindings: Vec<Binding>,
    /// An `agent.handoff` rule: ring this long, then the agent takes a message.
    pub handoff: Option<Duration>,
    /// What the agent is told when it is rung (a message for whom...).
    pub agent_note: AgentInvite,
    /// A ring group: its members ring by its strategy (`bindings` holds
    /// all their devices, for the choice of offers).
    pub group: Option<super::group_setup::GroupSetup>,
    /// The callee is a number out over a trunk: how the call is presented there.
    pub trunk: Option<super::fork::Presented>,
    /// Intercom: the forks ask the devices to answer by themselves.
    pub auto_answer: bool,
    /// A call out: the trunks it tries next when the provider does not take it.
    pub failover: Option<crate::trunk::failover::Failover>,
}

pub async fn run(setup: CallSetup) {
    let CallSetup { core, mut tx, source, caller, callee, bindings, handoff, agent_note, group, trunk, auto_answer, failover } = setup;
    let call_id = tx.original.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
    let offer = tx.original.body.clone();
    if offer.is_empty() {
        // Late offer (INVITE without SDP) would need us to make an offer of
        // our own; devices in this field always offer, so refuse clearly.
        tracing::info!(%call_id, "INVITE without SDP refused (late offer unsupported)");
        let _ = tx.reply(StatusCode::NotAcceptableHere).await;
        return;
    }
    let mut media = CallMedia::new(core.media.clone(), core.config.security.max_media_per_call);
    media.set_signalling_host(Leg::A, source.ip());
    let caller_trunk = crate::trunk::routes::trunk_for_source(&core.config.trunks, source, |n| core.trunks.resolved(n));
    if let Some(t) = caller_trunk {
        media.set_srtp(Leg::A, t.srtp);
    }
    if let Some(p) = &trunk {
        media.set_srtp(Leg::B, p.srtp);
    }
    let mut bindings = bindings;
    let browsers = bindings.iter().filter(|b| is_browser(b)).count();
    let caller_browser = crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&offer));
    let preview = super::preview::decide(super::preview::Ringing { browsers, caller_browser, group: group.is_some(), devices: bindings.len() - browsers });
    if let (true, Err(why)) = (browsers > 0, preview) {
        tracing::debug!(%call_id, why, "no door preview for this call");
    }
    // Browsers previewing through the fan-out get an offer each, made as
    // each is rung (`Call::start_fork`); the callee's offer is plain.
    let fan_out = preview == Ok(super::preview::Mode::FanOut);
    // An extension on a desk phone and in the dashboard: each kind of device
    // gets an offer it can use. A browser caller has one bridge, toward the
    // SIP devices only.
    let mut mixed = browsers > 0 && browsers < bindings.len() && !fan_out;
    if mixed && crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&offer)) {
        tracing::info!(%call_id, "a browser calls an extension with SIP devices and browsers: ringing the SIP devices");
        bindings.retain(|b| !is_browser(b));
        mixed = false;
    } else if browsers > 0 && !mixed && !fan_out {
        // A browser callee (SIP Core card) needs a WebRTC offer.
        media.expect_browser(Leg::B);
    }
    let offer_b = match media.translate(Leg::A, &offer).await {
        Ok(sdp) => sdp,
        Err(e) => {
            tracing::info!(%call_id, error = %e, "INVITE refused: unusable SDP offer");
            // No media ports left is ours to fix (503); anything else is the offer's fault (488).
            let ours = e.chain().any(|c| c.is::<crate::media::ports::PortError>() || c.is::<std::io::Error>());
            let status = if ours { StatusCode::ServiceUnavailable } else { StatusCode::NotAcceptableHere };
            let _ = tx.reply(status).await;
            return;
        }
    };
    let mut offer_browsers = None;
    if mixed {
        match media.offer_for_browser_forks(&offer).await {
            Ok(o) => offer_browsers = Some(o),
            Err(e) => {
                tracing::info!(%call_id, error = %e, "no WebRTC offer for the callee's browsers: ringing its SIP devices");
                bindings.retain(|b| !is_browser(b));
            }
        }
    }
    // Browsers dropped above (a browser calling, no WebRTC offer) are not previewed.
    let preview = preview.ok().filter(|_| bindings.iter().any(is_browser));
    let mut group = group.map(super::group_setup::GroupRun::new);
    if let Some(g) = &mut group {
        g.retain(|b| bindings.iter().any(|k| k.source == b.source && k.contact_uri == b.contact_uri));
    }
    let (msgs, rx) = mpsc::unbounded_channel();
    let caller_transport = tx.connection.as_ref().map(crate::sip::core::connection_transport).unwrap_or_default();
    let contact = core.contact_over(None, crate::sip::core::listener_transport(caller_transport), tx.connection.as_ref());
    let (state_tx, state_rx) = core.dialogs.new_dialog_state_channel();
    let caller_dialog = match core.dialogs.get_or_create_server_invite(&tx, state_tx, None, Some(contact)) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot create caller dialog");
            let _ = tx.reply(StatusCode::ServerInternalError).await;
            return;
        }
    };
    forward_states(state_rx, msgs.clone(), CallMsg::Caller);
    let mut caller_dialog_task = caller_dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = caller_dialog_task.handle(&mut tx).await {
            tracing::debug!(error = %e, "caller INVITE transaction ended with error");
        }
    });

    let caller_from_trunk = caller_trunk.is_some();
    let mut call = Call::new(core, CallerKind::Incoming, call_id, caller, callee, caller_dialog, media, msgs);
    call.caller_from_trunk = caller_from_trunk;
    call.agent_note = agent_note;
    call.handoff = handoff;
    call.offer_browsers = offer_browsers;
    call.group = group;
    call.trunk = trunk;
    call.failover = failover;
    call.auto_answer = auto_answer;
    call.preview = preview;
    call.drive(rx, &bindings, &offer_b).await;
}
