//! One call's task: runs the caller's server dialog and the forks' client
//! dialogs through rsipstack, feeds what they report to the `CallMachine`,
//! and carries out its actions. Mid-dialog requests (re-INVITE, UPDATE, INFO)
//! are passed to the other leg with their SDP rewritten.
use super::dtmf::{self, info_digit, InfoSender};
use super::fork::{self, ForkEvent};
use super::machine::{Action, CallEvent, CallMachine, ForkId, Input};
use super::media_legs::CallMedia;
use super::registry::Command;
use crate::events::PbxEvent;
use crate::media::Leg;
use crate::sip::agent_leg::{AgentInvite, HEADER as AGENT_HEADER};
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Method, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(super) enum CallMsg {
    Caller(DialogState),
    Fork(ForkId, DialogState),
    ForkDone(ForkId, InviteAsyncResult),
}

/// Who the caller leg is: a device whose INVITE we answer, or a device the
/// PBX itself called first (click-to-dial), already answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CallerKind {
    Incoming,
    Originated,
}

pub struct CallSetup {
    pub core: SipCoreRef,
    pub tx: Transaction,
    pub caller: String,
    pub callee: String,
    pub bindings: Vec<Binding>,
    /// An `agent.handoff` rule: ring this long, then the agent takes a message.
    pub handoff: Option<Duration>,
    /// What the agent is told when it is rung (a message for whom...).
    pub agent_note: AgentInvite,
}

pub(super) struct Call {
    kind: CallerKind,
    core: SipCoreRef,
    call_id: String,
    caller_ext: String,
    callee_ext: String,
    caller: InviteDialog,
    /// The relay leg the caller's device is on (A, until a transfer swaps it).
    caller_leg: Leg,
    /// After the caller left by transfer, the former callee's dialog is the
    /// caller: its events arrive as this fork's.
    caller_from_fork: Option<usize>,
    /// Every fork ever started; the machine numbers the current ones from here.
    fork_base: usize,
    forks: Vec<InviteDialog>,
    /// SDP each fork sent (early media in 18x, or its 200's answer).
    fork_sdp: Vec<Option<Vec<u8>>>,
    /// Per fork: its ringing response offered remote answer (`Allow-Events: talk`).
    fork_talk: Vec<bool>,
    /// Per fork: it rings the AI agent (RFC 4733 whatever the callee's setting).
    fork_agent: Vec<bool>,
    /// Our SIP INFO key presses, in order.
    info_out: InfoSender,
    media: CallMedia,
    machine: CallMachine,
    msgs: mpsc::UnboundedSender<CallMsg>,
    answered_at: Option<Instant>,
    started: Instant,
    /// Sent to the agent's SIP port with a fork to it (X-HA-PBX-Agent).
    pub(super) agent_note: AgentInvite,
    /// When ringing hands over to the agent (an `agent.handoff` rule).
    pub(super) handoff: Option<Duration>,
    /// The offer the callee's devices got, for a fork to the agent later.
    offer_b: Option<Vec<u8>>,
    /// The offer for the callee's browsers when it also has SIP devices.
    pub(super) offer_browsers: Option<Vec<u8>>,
}

pub async fn run(setup: CallSetup) {
    let CallSetup { core, mut tx, caller, callee, bindings, handoff, agent_note } = setup;
    let call_id = tx.original.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
    let offer = tx.original.body.clone();
    if offer.is_empty() {
        // Late offer (INVITE without SDP) would need us to make an offer of
        // our own; devices in this field always offer, so refuse clearly.
        tracing::info!(%call_id, "INVITE without SDP refused (late offer unsupported)");
        let _ = tx.reply(StatusCode::NotAcceptableHere).await;
        return;
    }
    let mut media = CallMedia::new(core.media.clone());
    let mut bindings = bindings;
    let browsers = bindings.iter().filter(|b| is_browser(b)).count();
    // An extension on a desk phone and in the dashboard: each kind of device
    // gets an offer it can use. A browser caller has one bridge, toward the
    // SIP devices only.
    let mut mixed = browsers > 0 && browsers < bindings.len();
    if mixed && crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&offer)) {
        tracing::info!(%call_id, "a browser calls an extension with SIP devices and browsers: ringing the SIP devices");
        bindings.retain(|b| !is_browser(b));
        mixed = false;
    } else if browsers > 0 && !mixed {
        // A browser callee (SIP Core card) needs a WebRTC offer.
        media.expect_browser(Leg::B);
    }
    let offer_b = match media.translate(Leg::A, &offer).await {
        Ok(sdp) => sdp,
        Err(e) => {
            tracing::info!(%call_id, error = %e, "INVITE refused: unusable SDP offer");
            let status = if e.to_string().contains("port") { StatusCode::ServiceUnavailable } else { StatusCode::NotAcceptableHere };
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
    let (msgs, rx) = mpsc::unbounded_channel();
    let caller_transport = tx.connection.as_ref().map(|c| crate::sip::core::transport_name(crate::sip::core::connection_transport(c))).unwrap_or("udp");
    let contact = core.contact_uri(None, listen_transport(caller_transport));
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

    let mut call = Call::new(core, CallerKind::Incoming, call_id, caller, callee, caller_dialog, media, msgs);
    call.agent_note = agent_note;
    call.handoff = handoff;
    call.offer_browsers = offer_browsers;
    call.drive(rx, &bindings, &offer_b).await;
}

/// A browser's registration (the SIP Core card, over WebSocket).
pub(super) fn is_browser(b: &Binding) -> bool {
    b.transport.starts_with("ws")
}

/// rsipstack transport names map onto our listener transports.
fn listen_transport(name: &str) -> crate::config::Transport {
    match name {
        "tcp" => crate::config::Transport::Tcp,
        "tls" => crate::config::Transport::Tls,
        _ => crate::config::Transport::Udp,
    }
}

fn forward_states(
    mut rx: rsipstack::dialog::dialog::DialogStateReceiver,
    to: mpsc::UnboundedSender<CallMsg>,
    wrap: impl Fn(DialogState) -> CallMsg + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            if to.send(wrap(s)).is_err() {
                break;
            }
        }
    });
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        core: SipCoreRef,
        kind: CallerKind,
        call_id: String,
        caller_ext: String,
        callee_ext: String,
        caller: InviteDialog,
        media: CallMedia,
        msgs: mpsc::UnboundedSender<CallMsg>,
    ) -> Self {
        Call {
            kind,
            core,
            info_out: InfoSender::new(call_id.clone()),
            call_id,
            caller_ext,
            callee_ext,
            caller,
            caller_leg: Leg::A,
            caller_from_fork: None,
            fork_base: 0,
            forks: Vec::new(),
            fork_sdp: Vec::new(),
            fork_talk: Vec::new(),
            fork_agent: Vec::new(),
            media,
            machine: CallMachine::new(0),
            msgs,
            answered_at: None,
            started: Instant::now(),
            agent_note: AgentInvite::default(),
            handoff: None,
            offer_b: None,
            offer_browsers: None,
        }
    }

    /// Ring every binding with `offer` and run the call to its end.
    pub(super) async fn drive(mut self, mut rx: mpsc::UnboundedReceiver<CallMsg>, bindings: &[Binding], offer: &[u8]) {
        let core = self.core.clone();
        let mut commands = core.calls.insert(&self.call_id, &self.caller_ext, &self.callee_ext);
        self.machine = CallMachine::new(bindings.len());
        for b in bindings {
            self.start_fork(b, offer);
        }
        tracing::info!(call_id = %self.call_id, caller = %self.caller_ext, callee = %self.callee_ext, forks = bindings.len(), "call ringing");
        let ring_for = Duration::from_secs(core.config.sip.ring_timeout_secs);
        let mut ring_deadline = tokio::time::Instant::now() + ring_for;
        let mut dtmf = self.media.take_dtmf_events();
        let mut handoff_at = self.handoff.take().map(|d| tokio::time::Instant::now() + d);
        self.offer_b = Some(offer.to_vec());
        while !self.machine.is_finished() {
            let answered = self.machine.winner().is_some();
            let input = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.on_msg(m).await,
                    None => Some(Input::CallerHangup),
                },
                _ = tokio::time::sleep_until(ring_deadline), if !answered => Some(Input::RingTimeout),
                _ = sleep_until_some(handoff_at), if !answered && handoff_at.is_some() => {
                    handoff_at = None;
                    ring_deadline = tokio::time::Instant::now() + ring_for;
                    self.hand_to_agent(offer).await;
                    None
                }
                _ = self.media.timed_out(), if answered => {
                    tracing::info!(call_id = %self.call_id, "no media for {} s: ending call", core.config.rtp.media_timeout_secs);
                    Some(Input::MediaTimeout)
                }
                Some(cmd) = commands.recv() => {
                    if matches!(cmd, Command::Transfer { .. }) {
                        ring_deadline = tokio::time::Instant::now() + ring_for;
                    }
                    self.on_command(cmd).await
                }
                Some((leg, digit)) = next_dtmf(&mut dtmf) => {
                    let from = self.ext_on(leg);
                    self.core.bus.publish(PbxEvent::Dtmf { call_id: self.call_id.clone(), from, digit });
                    self.dtmf_as_info(leg.other(), digit);
                    None
                }
            };
            if let Some(input) = input {
                let actions = self.machine.on(input);
                self.perform(actions).await;
            }
        }
        self.cleanup();
    }

    async fn on_command(&mut self, cmd: Command) -> Option<Input> {
        match cmd {
            Command::HangUp => Some(Input::Terminate),
            Command::BrowserGone { extension } => {
                let legs = [(self.caller_leg, &self.caller_ext), (self.fork_leg(), &self.callee_ext)];
                let in_call = legs.iter().any(|(leg, ext)| **ext == extension && self.media.is_browser(*leg));
                if in_call {
                    tracing::info!(call_id = %self.call_id, %extension, "browser gone: hanging up its call");
                }
                in_call.then_some(Input::Terminate)
            }
            Command::Transfer { leaving, to } => {
                self.transfer(&leaving, &to).await;
                None
            }
            Command::Answer => {
                self.remote_answer();
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
                let target = match self.winner() {
                    Some(w) if to == self.callee_ext => Some(self.forks[w].clone()),
                    Some(_) if to == self.caller_ext => Some(self.caller.clone()),
                    _ => None,
                };
                match target {
                    Some(dialog) => self.info_out.send(dialog, digits),
                    None => tracing::info!(call_id = %self.call_id, %to, "DTMF not sent: call not answered or extension not in it"),
                }
                None
            }
        }
    }

    /// Ask every ringing fork that offered it to answer (see control::answer).
    /// The NOTIFY travels in the fork's early dialog; the device's 200 OK to
    /// the INVITE then arrives like any answer.
    fn remote_answer(&self) {
        if self.machine.winner().is_some() {
            tracing::info!(call_id = %self.call_id, "answer ignored: the call is already answered");
            return;
        }
        for id in self.fork_base..self.forks.len() {
            if !self.fork_talk[id] {
                continue;
            }
            let dialog = self.forks[id].as_subscription();
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

    /// A device's RFC 4733 key press reaches `to` as SIP INFO when `to` is
    /// a browser (what JsSIP reports to the page) or an extension set to
    /// `dtmf: info` (the relay holds the events back from it).
    fn dtmf_as_info(&self, to: Leg, digit: char) {
        if !self.media.is_browser(to) && !self.media.takes_info(to) {
            return;
        }
        let dialog = match self.winner() {
            Some(_) if to == self.caller_leg => self.caller.clone(),
            Some(w) => self.forks[w].clone(),
            None => return,
        };
        self.info_out.send(dialog, digit.to_string());
    }

    /// Tell the media side which legs take key presses as SIP INFO: the
    /// extension's `dtmf` setting, except that the agent always uses RFC 4733.
    fn apply_dtmf_modes(&mut self) {
        for leg in [Leg::A, Leg::B] {
            let agent = leg != self.caller_leg && self.winner().is_some_and(|w| self.fork_agent[w]);
            let info = !agent && dtmf::takes_info(&self.core.config, &self.ext_on(leg));
            self.media.set_takes_info(leg, info);
        }
    }

    /// The answering fork, as an index into `forks`.
    fn winner(&self) -> Option<usize> {
        self.machine.winner().map(|w| self.fork_base + w)
    }

    fn fork_leg(&self) -> Leg {
        self.caller_leg.other()
    }

    fn ext_on(&self, leg: Leg) -> String {
        if leg == self.caller_leg { self.caller_ext.clone() } else { self.callee_ext.clone() }
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
        // The relay's far side is re-pointed, not renegotiated: a browser
        // that answered or called on its own bridge has no relay to re-point.
        if self.media.has_own_bridge() {
            tracing::info!(call_id = %self.call_id, %to, "transfer refused: not supported yet for a call the dashboard answered or placed");
            return;
        }
        let (old_caller_ext, old_callee_ext) = (self.caller_ext.clone(), self.callee_ext.clone());
        let old_caller = self.caller.clone();
        let old_callee = self.forks[w].clone();
        if leaving == self.caller_ext {
            // The callee stays: it becomes the caller leg of the new call.
            self.caller = old_callee;
            self.caller_from_fork = Some(w);
            self.caller_leg = self.fork_leg();
            self.caller_ext = std::mem::take(&mut self.callee_ext);
            tokio::spawn(async move { old_caller.bye().await });
        } else if leaving == self.callee_ext {
            tokio::spawn(async move { old_callee.bye().await });
        } else {
            tracing::info!(call_id = %self.call_id, %leaving, "transfer refused: extension not in the call");
            return;
        }
        let (staying_leg, staying_ext) = (self.caller_leg, self.caller_ext.clone());
        let offer = match self.media.transfer_offer(staying_leg).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "transfer failed: no offer for the target");
                return;
            }
        };
        // A target in the dashboard gets WebRTC from a bridge behind the relay.
        self.offer_browsers = None;
        if bindings.iter().any(is_browser) {
            match self.media.adapt_for_browser(self.fork_leg(), &offer).await {
                Ok(webrtc) => self.offer_browsers = Some(webrtc),
                Err(e) => tracing::warn!(call_id = %self.call_id, error = %e, "transfer: no WebRTC offer for the target's browsers"),
            }
        }
        self.core.bus.publish(PbxEvent::Ended {
            call_id: self.call_id.clone(),
            caller: old_caller_ext,
            callee: old_callee_ext,
            reason: crate::events::EndReason::Transferred,
            answered: true,
            duration_ms: self.answered_at.map(|t| t.elapsed().as_millis() as u64).unwrap_or(0),
        });
        tracing::info!(call_id = %self.call_id, %leaving, staying = %staying_ext, %to, "call transferred");
        self.callee_ext = to.to_string();
        self.kind = CallerKind::Originated;
        self.core.calls.set_parties(&self.call_id, &self.caller_ext, &self.callee_ext);
        self.apply_dtmf_modes();
        self.fork_base = self.forks.len();
        self.machine = CallMachine::new(bindings.len());
        for b in &bindings {
            self.start_fork(b, &offer);
        }
    }

    /// Nobody answered in time: stop ringing and let the agent take a
    /// message (an `agent.handoff` rule).
    async fn hand_to_agent(&mut self, offer: &[u8]) {
        let Some(agent) = self.core.agent_binding() else { return };
        let mut offer = offer.to_vec();
        if self.media.is_browser(self.fork_leg()) {
            // The agent is a plain RTP device: the ringing browsers' bridge
            // goes, and the caller's offer is carried to the agent afresh.
            match self.media.callee_plain_offer(self.caller_leg).await {
                Ok(plain) => offer = plain,
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, error = %e, "handoff to the agent failed: no plain offer");
                    return;
                }
            }
        }
        for id in self.fork_base..self.forks.len() {
            let d = self.forks[id].clone();
            tokio::spawn(async move {
                let _ = d.cancel().await;
            });
        }
        tracing::info!(call_id = %self.call_id, callee = %self.callee_ext, "no answer: the agent takes a message");
        self.agent_note.message_for = Some(self.callee_ext.clone());
        self.fork_base = self.forks.len();
        self.machine = CallMachine::new(1);
        self.start_fork(&agent, &offer);
        self.offer_b = Some(offer);
    }

    fn start_fork(&mut self, b: &Binding, offer: &[u8]) {
        let id = self.forks.len();
        self.fork_sdp.push(None);
        self.fork_talk.push(false);
        let msgs = self.msgs.clone();
        let report = move |e: ForkEvent| {
            let msg = match e {
                ForkEvent::State(s) => CallMsg::Fork(id, s),
                ForkEvent::Done(r) => CallMsg::ForkDone(id, r),
            };
            msgs.send(msg).is_ok()
        };
        let to_agent = self.core.agent.get().is_some_and(|a| a.binding.source == b.source);
        self.fork_agent.push(to_agent);
        let headers = if to_agent {
            let note = AgentInvite { call: self.call_id.clone(), ..self.agent_note.clone() };
            vec![Header::Other(AGENT_HEADER.into(), note.to_value())]
        } else {
            Vec::new()
        };
        let offer = match &self.offer_browsers {
            Some(webrtc) if is_browser(b) => webrtc.as_slice(),
            _ => offer,
        };
        match fork::start(&self.core, b, &self.caller_ext, offer, headers, report) {
            Ok(dialog) => self.forks.push(dialog),
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, "{e}");
                self.push_dead_fork(id);
            }
        }
    }

    /// A fork that could not even be sent counts as failed with 503. Its
    /// slot holds the caller's dialog so indices stay aligned; the machine
    /// never acts on a failed fork.
    fn push_dead_fork(&mut self, id: ForkId) {
        self.forks.push(self.caller.clone());
        let _ = self.msgs.send(CallMsg::ForkDone(id, Err(rsipstack::Error::Error("not sent".into()))));
    }

    async fn on_msg(&mut self, msg: CallMsg) -> Option<Input> {
        // After a transfer the old caller's events no longer matter, and the
        // fork that became the caller speaks for the caller leg.
        let msg = match msg {
            CallMsg::Caller(_) if self.caller_from_fork.is_some() => return None,
            CallMsg::Fork(id, s) if Some(id) == self.caller_from_fork => CallMsg::Caller(s),
            CallMsg::ForkDone(id, _) if Some(id) == self.caller_from_fork => return None,
            CallMsg::Fork(id, _) | CallMsg::ForkDone(id, _) if id < self.fork_base => return None,
            m => m,
        };
        match msg {
            CallMsg::Caller(state) => match state {
                DialogState::Terminated(_, TerminatedReason::UacCancel) => Some(Input::CallerCancelled),
                DialogState::Terminated(_, TerminatedReason::UasDecline) => None, // our own reject
                DialogState::Terminated(_, reason) => {
                    tracing::debug!(call_id = %self.call_id, ?reason, "caller leg terminated");
                    Some(Input::CallerHangup)
                }
                DialogState::Updated(_, req, handle) => {
                    self.pass_request(self.caller_leg, req, handle).await;
                    None
                }
                DialogState::Info(_, req, handle) => {
                    self.publish_dtmf(&req, &self.caller_ext.clone());
                    self.pass_request(self.caller_leg, req, handle).await;
                    None
                }
                DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                    None
                }
                DialogState::Message(_, _, handle) | DialogState::Notify(_, _, handle) | DialogState::Refer(_, _, handle) => {
                    let _ = handle.reply(StatusCode::NotImplemented).await;
                    None
                }
                _ => None,
            },
            CallMsg::Fork(id, state) => {
                let fork = id - self.fork_base;
                match state {
                DialogState::Early(_, resp) => {
                    if resp.status_code == StatusCode::Trying {
                        return None;
                    }
                    let has_sdp = !resp.body.is_empty();
                    if offers_remote_answer(&resp) && !self.fork_talk[id] {
                        self.fork_talk[id] = true;
                        self.core.calls.set_remote_answer(&self.call_id, true);
                    }
                    if has_sdp && self.machine.winner().is_none() {
                        self.fork_sdp[id] = Some(resp.body.clone());
                    }
                    Some(Input::ForkProgress { fork, has_sdp })
                }
                DialogState::Terminated(_, TerminatedReason::UasBye) if self.machine.winner() == Some(fork) => Some(Input::CalleeHangup),
                DialogState::Terminated(_, TerminatedReason::Timeout) if self.machine.winner() == Some(fork) => Some(Input::CalleeHangup),
                DialogState::Updated(_, req, handle) if self.machine.winner() == Some(fork) => {
                    self.pass_request(self.fork_leg(), req, handle).await;
                    None
                }
                DialogState::Info(_, req, handle) if self.machine.winner() == Some(fork) => {
                    self.publish_dtmf(&req, &self.callee_ext.clone());
                    self.pass_request(self.fork_leg(), req, handle).await;
                    None
                }
                DialogState::Updated(_, _, handle) | DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                    None
                }
                _ => None,
                }
            }
            CallMsg::ForkDone(id, result) => {
                let fork = id - self.fork_base;
                match result {
                Ok((_, Some(resp))) if resp.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful => {
                    self.fork_sdp[id] = Some(resp.body.clone());
                    Some(Input::ForkAnswered { fork })
                }
                Ok((_, Some(resp))) => Some(Input::ForkFailed { fork, status: resp.status_code.code() }),
                Ok((_, None)) => Some(Input::ForkFailed { fork, status: 408 }),
                Err(e) => {
                    tracing::debug!(call_id = %self.call_id, fork, error = %e, "fork failed");
                    let status = if e.to_string().to_ascii_lowercase().contains("timeout") { 408 } else { 503 };
                    Some(Input::ForkFailed { fork, status })
                }
                }
            }
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Ringing { early_media_from } => {
                    // While browsers and SIP devices both ring, the caller
                    // gets no early media: its one answer must name the path
                    // of the device that answers.
                    let early_media_from = early_media_from.filter(|_| !self.media.callee_undecided());
                    let body = match early_media_from.and_then(|f| self.fork_sdp[self.fork_base + f].clone()) {
                        Some(sdp) => match self.media.translate(self.fork_leg(), &sdp).await {
                            Ok(s) => Some(s),
                            Err(e) => {
                                tracing::info!(call_id = %self.call_id, error = %e, "early media SDP unusable; sending 180");
                                None
                            }
                        },
                        None => None,
                    };
                    if self.kind == CallerKind::Incoming {
                        let headers = body.as_ref().map(|_| vec![sdp_content_type()]);
                        let _ = self.caller.ringing(headers, body);
                    }
                }
                Action::AnswerCaller { fork } => {
                    let answer = self.fork_sdp[self.fork_base + fork].clone().unwrap_or_default();
                    self.media.settle_callee(crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&answer)));
                    match self.media.translate_final_answer(self.fork_leg(), &answer).await {
                        // An originated caller already has our relay's SDP: the
                        // answer only tells the relay where the callee is.
                        Ok(sdp) if self.kind == CallerKind::Incoming => {
                            let _ = self.caller.accept(Some(vec![sdp_content_type()]), Some(sdp));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            // The callee answered with SDP we cannot use: end both legs cleanly.
                            tracing::warn!(call_id = %self.call_id, error = %e, "answer SDP unusable");
                            let _ = self.caller.reject(Some(StatusCode::NotAcceptableHere), None);
                            let f = self.forks[self.fork_base + fork].clone();
                            tokio::spawn(async move { f.bye().await });
                        }
                    }
                    self.apply_dtmf_modes();
                    self.answered_at = Some(Instant::now());
                    self.core.calls.set_answered(&self.call_id);
                    self.core.calls.set_transferable(&self.call_id, !self.media.has_own_bridge());
                }
                Action::CancelFork(f) => {
                    let d = self.forks[self.fork_base + f].clone();
                    tokio::spawn(async move {
                        let _ = d.cancel().await;
                    });
                }
                Action::ByeFork(f) => {
                    let d = self.forks[self.fork_base + f].clone();
                    tokio::spawn(async move {
                        let _ = d.bye().await;
                    });
                }
                Action::RejectCaller(code) => match self.kind {
                    CallerKind::Incoming => {
                        let _ = self.caller.reject(Some(StatusCode::from(code)), None);
                    }
                    CallerKind::Originated => {
                        tracing::info!(call_id = %self.call_id, code, "dialled extension did not answer: hanging up the caller");
                        let d = self.caller.clone();
                        tokio::spawn(async move { d.bye().await });
                    }
                },
                Action::ByeCaller => {
                    let d = self.caller.clone();
                    tokio::spawn(async move {
                        let _ = d.bye().await;
                    });
                }
                Action::Event(e) => self.publish(e),
                Action::Finished => {}
            }
        }
    }

    fn publish(&self, e: CallEvent) {
        let (call_id, caller, callee) = (self.call_id.clone(), self.caller_ext.clone(), self.callee_ext.clone());
        let event = match e {
            CallEvent::Ringing => PbxEvent::Ringing { call_id, caller, callee },
            CallEvent::Answered => PbxEvent::Answered { call_id, caller, callee },
            CallEvent::Missed => PbxEvent::Missed { call_id, caller, callee },
            CallEvent::Ended { reason, answered } => {
                let since = self.answered_at.unwrap_or(self.started);
                tracing::info!(call_id = %self.call_id, ?reason, answered, "call ended");
                PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms: since.elapsed().as_millis() as u64 }
            }
        };
        self.core.bus.publish(event);
    }

    fn publish_hold(&self, by: Leg, held: bool) {
        let by = self.ext_on(by);
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
    fn publish_dtmf(&self, req: &Request, from: &str) {
        if let Some(digit) = info_digit(req) {
            self.core.bus.publish(PbxEvent::Dtmf { call_id: self.call_id.clone(), from: from.to_string(), digit });
        }
    }

    /// Pass a re-INVITE, UPDATE or INFO from `from` to the other leg and its
    /// answer back, SDP rewritten both ways.
    async fn pass_request(&mut self, from: Leg, req: Request, handle: TransactionHandle) {
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
        let target = if from == self.caller_leg { self.forks[winner].clone() } else { self.caller.clone() };
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

    fn cleanup(&mut self) {
        self.core.calls.remove(&self.call_id);
        self.core.dialogs.remove_dialog(&self.caller.id());
        for f in &self.forks {
            self.core.dialogs.remove_dialog(&f.id());
        }
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_dtmf(rx: &mut Option<mpsc::UnboundedReceiver<(Leg, char)>>) -> Option<(Leg, char)> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// BroadSoft remote control: a phone that can be answered by `NOTIFY`
/// (`Event: talk`) lists `talk` in `Allow-Events` of its ringing response.
fn offers_remote_answer(resp: &rsipstack::sip::Response) -> bool {
    resp.headers.iter().any(|h| match h {
        Header::Other(name, value) => {
            (name.eq_ignore_ascii_case("Allow-Events") || name.eq_ignore_ascii_case("u"))
                && value.split(',').any(|e| e.trim().eq_ignore_ascii_case("talk"))
        }
        _ => false,
    })
}

fn sdp_content_type() -> Header {
    Header::ContentType("application/sdp".into())
}
