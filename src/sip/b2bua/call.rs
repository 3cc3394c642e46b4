//! One call's task: runs the caller's server dialog and the forks' client
//! dialogs through rsipstack, feeds what they report to the `CallMachine`,
//! and carries out its actions. Commands from outside (hang up, transfer,
//! the agent) are in `call_commands.rs`; mid-dialog requests (re-INVITE,
//! UPDATE, INFO), passed to the other leg with their SDP rewritten, in
//! `call_requests.rs`; how an INVITE becomes a call in `call_setup.rs`.
use super::dtmf::InfoSender;
use super::fork::{self, ForkEvent, Report};
use super::forks::Forks;
use super::machine::{Action, CallEvent, CallMachine, ForkId, Input};
use crate::media::call_media::CallMedia;
use super::registry::Command;
use crate::events::PbxEvent;
use crate::media::Leg;
use crate::sip::agent_leg::{AgentInvite, HEADER as AGENT_HEADER};
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use super::call_setup::{run, CallSetup};

pub(super) enum CallMsg {
    Caller(DialogState),
    /// What fork `ForkId` reported, in the order its device sent it.
    Fork(ForkId, ForkEvent),
    /// The park announcement for the parker, rendered (8 kHz), or why not.
    ParkerClip(Result<Vec<i16>, String>),
    /// The ACK to our offer in a 200 to a re-INVITE without SDP from that
    /// leg's device: its body (the answer), or None when no ACK came.
    LateAnswer(Leg, Option<Vec<u8>>),
    /// The staying device's answer to its re-INVITE onto the relay (a
    /// transfer away from a browser's own bridge).
    MovedMedia(Vec<u8>),
}

/// Who the caller leg is: a device whose INVITE we answer, or a device the
/// PBX itself called first (click-to-dial), already answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CallerKind {
    Incoming,
    Originated,
}

pub(super) struct Call {
    pub(super) kind: CallerKind,
    pub(super) core: SipCoreRef,
    pub(super) call_id: String,
    pub(super) caller_ext: String,
    pub(super) callee_ext: String,
    pub(super) caller: InviteDialog,
    /// The relay leg the caller's device is on (A, until a transfer swaps it).
    pub(super) caller_leg: Leg,
    /// After the caller left by transfer, the former callee's dialog is the
    /// caller: its events arrive as this fork's.
    pub(super) caller_from_fork: Option<ForkId>,
    /// Every fork ever started, numbered as the machine numbers them.
    pub(super) forks: Forks,
    /// Our SIP INFO key presses, in order.
    pub(super) info_out: InfoSender,
    pub(super) media: CallMedia,
    pub(super) machine: CallMachine,
    pub(super) msgs: mpsc::UnboundedSender<CallMsg>,
    pub(super) answered_at: Option<Instant>,
    started: Instant,
    /// Sent to the agent's SIP port with a fork to it (X-HA-PBX-Agent).
    pub(super) agent_note: AgentInvite,
    /// When ringing hands over to the agent (an `agent.handoff` rule).
    pub(super) handoff: Option<Duration>,
    /// The offer the callee's devices got, for a fork to the agent later.
    pub(super) offer_b: Option<Vec<u8>>,
    /// The offer for the callee's browsers when it also has SIP devices.
    pub(super) offer_browsers: Option<Vec<u8>>,
    /// The ring group being rung, until its fallback (or the answer).
    pub(super) group: Option<super::group_setup::GroupRun>,
    /// The machine said `AllRefused`: the group decides what rings next.
    pub(super) refused: bool,
    /// Forks go out over a trunk, presented so.
    pub(super) trunk: Option<super::fork::Presented>,
    /// A call out's trunks to try next (`trunk_failover.rs`).
    pub(super) failover: Option<crate::trunk::failover::Failover>,
    /// The fork that is a picker's INVITE (a server dialog: its BYE ends as `UacBye`).
    pub(super) picked: Option<ForkId>,
    /// Intercom: auto-answer headers on the forks to devices.
    pub(super) auto_answer: bool,
    /// The caller leg's device is on a trunk (it may not park).
    pub(super) caller_from_trunk: bool,
    /// Parked: its slot and timer (see `park_call.rs`).
    pub(super) parking: Option<super::park::Stay>,
    /// The parker's leg and dialog, kept up while it hears the slot.
    pub(super) parker_leaving: Option<(Leg, InviteDialog)>,
    /// Its browser forks may preview the call, and how (`preview.rs`).
    pub(super) preview: Option<super::preview::Mode>,
    /// The caller got the preview fan-out's 183 (`Mode::FanOut`).
    pub(super) fan_out_told: bool,
    /// A transfer away from a browser's own bridge: the caller leg's device
    /// is re-INVITEd onto the relay when the target answers.
    pub(super) move_caller_media: bool,
}

/// A browser's registration (the SIP Core card, over WebSocket).
pub(super) fn is_browser(b: &Binding) -> bool {
    b.is_browser()
}

pub(super) fn forward_states(
    mut rx: rsipstack::dialog::dialog::DialogStateReceiver,
    to: mpsc::UnboundedSender<CallMsg>,
    wrap: impl Fn(DialogState) -> CallMsg + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            // Nothing follows `Terminated`; rsipstack may keep the dialog
            // (and so this channel) well after the call, holding `to`.
            let last = matches!(s, DialogState::Terminated(..));
            if to.send(wrap(s)).is_err() || last {
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
            forks: Forks::default(),
            media,
            machine: CallMachine::new(),
            msgs,
            answered_at: None,
            started: Instant::now(),
            agent_note: AgentInvite::default(),
            handoff: None,
            offer_b: None,
            offer_browsers: None,
            group: None,
            refused: false,
            trunk: None,
            failover: None,
            picked: None,
            auto_answer: false,
            caller_from_trunk: false,
            parking: None,
            parker_leaving: None,
            preview: None,
            fan_out_told: false,
            move_caller_media: false,
        }
    }

    /// Ring every binding with `offer` and run the call to its end.
    pub(super) async fn drive(mut self, mut rx: mpsc::UnboundedReceiver<CallMsg>, bindings: &[Binding], offer: &[u8]) {
        let core = self.core.clone();
        let mut commands = core.calls.insert(&self.call_id, &self.caller_ext, &self.callee_ext);
        self.offer_b = Some(offer.to_vec());
        let ring_for = Duration::from_secs(core.config.sip.ring_timeout_secs);
        // A group rings its own time, then its fallback rings `ring_for`.
        let mut ring_deadline = Instant::now() + self.group.as_ref().map_or(ring_for, |g| ring_for.max(g.ring() + Duration::from_secs(1)));
        if self.group.is_some() {
            self.start_group().await;
        } else {
            if self.failover.is_some() {
                // a failure at the provider is not the end: the next trunk may take it
                self.step(Input::Expecting { more: true }).await;
            }
            self.ring(bindings, offer).await;
        }
        tracing::info!(call_id = %self.call_id, caller = %self.caller_ext, callee = %self.callee_ext, forks = bindings.len(), "call ringing");
        let mut dtmf = self.media.take_dtmf_events();
        let mut handoff_at = self.handoff.take().map(|d| Instant::now() + d);
        while !self.machine.is_finished() {
            let answered = self.machine.winner().is_some();
            let input = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.on_msg(m).await,
                    None => Some(Input::CallerHangup),
                },
                _ = tokio::time::sleep_until(ring_deadline), if !answered && self.parking.is_none() => Some(Input::RingTimeout),
                _ = sleep_until_some(self.park_deadline()), if self.park_deadline().is_some() => self.park_time().await,
                _ = sleep_until_some(self.group_deadline()), if !answered && self.group_deadline().is_some() => {
                    if self.group_time().await {
                        ring_deadline = Instant::now() + ring_for;
                    }
                    None
                }
                _ = sleep_until_some(handoff_at), if !answered && handoff_at.is_some() => {
                    handoff_at = None;
                    ring_deadline = Instant::now() + ring_for;
                    self.hand_to_agent(offer).await;
                    None
                }
                _ = self.media.timed_out(), if answered => {
                    tracing::info!(call_id = %self.call_id, "no media for {} s: ending call", core.config.rtp.media_timeout_secs);
                    Some(Input::MediaTimeout)
                }
                Some(cmd) = commands.recv() => {
                    if matches!(cmd, Command::Transfer { .. }) {
                        ring_deadline = Instant::now() + ring_for;
                    }
                    self.on_command(cmd).await
                }
                Some((leg, digit)) = next_dtmf(&mut dtmf) => {
                    let from = self.talker_on(leg);
                    self.core.bus.publish(PbxEvent::Dtmf { call_id: self.call_id.clone(), from, digit });
                    self.dtmf_as_info(leg.other(), digit);
                    None
                }
            };
            if let Some(input) = input {
                self.step(input).await;
            }
            self.check_unparked();
            if std::mem::take(&mut self.refused) && (self.group_refused().await || self.trunk_failover().await) {
                ring_deadline = Instant::now() + ring_for;
            }
        }
        self.cleanup();
    }

    /// One input through the machine, and its actions carried out.
    pub(super) async fn step(&mut self, input: Input) {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let actions = self.machine.on(input);
            next = self.perform(actions).await;
        }
        self.track_ringing();
    }

    /// Tell the registry which extensions (a ring group's members, a
    /// fallback) the call rings now: forks start and end, a hunt moves on.
    /// A change is published (MQTT shows those extensions ringing).
    fn track_ringing(&self) {
        let mut ringing: Vec<String> = Vec::new();
        // A picker's fork answers at once: it rings nobody.
        let rung = self.machine.ringing_forks().filter(|f| Some(*f) != self.picked);
        for member in rung.filter_map(|f| self.forks.get(f)?.member.clone()) {
            if !ringing.contains(&member) {
                ringing.push(member);
            }
        }
        if let Some(ringing) = self.core.calls.set_ringing(&self.call_id, ringing) {
            let (call_id, caller, callee) = (self.call_id.clone(), self.caller_ext.clone(), self.callee_ext.clone());
            self.core.bus.publish(PbxEvent::RingingMembers { call_id, caller, callee, ringing });
        }
    }

    /// INVITE every binding of the callee: the call is offered to it.
    pub(super) async fn ring(&mut self, bindings: &[Binding], offer: &[u8]) {
        for b in bindings {
            self.start_fork(b, offer).await;
        }
        self.step(Input::Offered { forks: bindings.len() }).await;
    }

    pub(super) async fn start_fork(&mut self, b: &Binding, offer: &[u8]) {
        let id = self.forks.len();
        let own_offer = self.fan_out_offer(id, b).await;
        let msgs = self.msgs.clone();
        let report = move |e: ForkEvent| msgs.send(CallMsg::Fork(id, e)).is_ok();
        let to_agent = self.core.agent.get().is_some_and(|a| a.binding.source == b.source);
        let headers = if to_agent {
            let note = AgentInvite { call: self.call_id.clone(), ..self.agent_note.clone() };
            vec![Header::Other(AGENT_HEADER.into(), note.to_value())]
        } else if self.auto_answer {
            super::auto_answer::headers(&self.core.config.sip.realm)
        } else if self.preview.is_some() && is_browser(b) {
            vec![super::preview::header()]
        } else {
            Vec::new()
        };
        let offer = match (&own_offer, &self.offer_browsers) {
            (Some(Ok(own)), _) => own.as_slice(),
            (Some(Err(())), _) => {
                let _ = self.msgs.send(CallMsg::Fork(id, ForkEvent::Done(Err(rsipstack::Error::Error("no preview place".into())))));
                self.forks.push(None, false, b.source_ip());
                return;
            }
            (None, Some(webrtc)) if is_browser(b) => webrtc.as_slice(),
            _ => offer,
        };
        let dialog = match fork::start(&self.core, b, &self.caller_ext, offer, headers, self.trunk.as_ref(), report) {
            Ok(dialog) => Some(dialog),
            Err(e) => {
                // A fork that could not even be sent counts as failed with 503.
                tracing::warn!(call_id = %self.call_id, "{e}");
                let _ = self.msgs.send(CallMsg::Fork(id, ForkEvent::Done(Err(rsipstack::Error::Error("not sent".into())))));
                None
            }
        };
        self.forks.push(dialog, to_agent, b.source_ip());
    }

    /// The answering fork.
    pub(super) fn winner(&self) -> Option<ForkId> {
        self.machine.winner()
    }

    pub(super) fn fork_leg(&self) -> Leg {
        self.caller_leg.other()
    }

    pub(super) fn ext_on(&self, leg: Leg) -> String {
        if leg == self.caller_leg { self.caller_ext.clone() } else { self.callee_ext.clone() }
    }

    /// Who talks on `leg`: on the callee's, the ring group's member (or the
    /// fallback, or the picker) that answered rather than the number dialled.
    pub(super) fn talker_on(&self, leg: Leg) -> String {
        match self.winner().and_then(|w| self.forks.get(w)).and_then(|s| s.member.clone()) {
            Some(member) if leg != self.caller_leg => member,
            _ => self.ext_on(leg),
        }
    }

    async fn on_msg(&mut self, msg: CallMsg) -> Option<Input> {
        // After a transfer the old caller's events no longer matter, and the
        // fork that became the caller speaks for the caller leg.
        let msg = match msg {
            CallMsg::Caller(_) if self.caller_from_fork.is_some() => return None,
            CallMsg::Fork(id, ForkEvent::State(s)) if Some(id) == self.caller_from_fork => CallMsg::Caller(s),
            CallMsg::Fork(id, ForkEvent::Done(_)) if Some(id) == self.caller_from_fork => return None,
            m => m,
        };
        match msg {
            CallMsg::Caller(state) => self.on_caller_state(state).await,
            CallMsg::ParkerClip(pcm) => {
                self.on_parker_clip(pcm);
                None
            }
            CallMsg::LateAnswer(leg, answer) => {
                self.on_late_answer(leg, answer).await;
                None
            }
            CallMsg::MovedMedia(answer) => {
                if let Err(e) = self.media.translate(self.caller_leg, &answer).await {
                    tracing::warn!(call_id = %self.call_id, error = %e, "staying device's answer on the relay unusable");
                }
                None
            }
            CallMsg::Fork(id, event) => {
                let report = fork::classify(&event);
                let ringing = self.machine.is_ringing() && self.machine.is_current(id);
                if let (true, Some(slot)) = (ringing, self.forks.get_mut(id)) {
                    match report {
                        Report::Progress(resp) => {
                            if fork::offers_remote_answer(resp) && !slot.talk {
                                slot.talk = true;
                                // Whom it rings for: a ring group's member, else the callee.
                                let ext = slot.member.as_deref().unwrap_or(&self.callee_ext);
                                self.core.calls.set_remote_answer(&self.call_id, ext);
                            }
                            if !resp.body.is_empty() {
                                slot.sdp = Some(resp.body.clone());
                            }
                        }
                        Report::Answered(resp) => slot.sdp = Some(resp.body.clone()),
                        Report::Failed(status) => tracing::debug!(call_id = %self.call_id, fork = id, status, "fork failed"),
                        Report::Other => {}
                    }
                    match report {
                        Report::Progress(resp) if !resp.body.is_empty() => self.fan_out_preview(id, &resp.body.clone()).await,
                        Report::Failed(_) => self.media.preview_gone(id),
                        _ => {}
                    }
                }
                if let Some(input) = report.input(id) {
                    return Some(input);
                }
                match event {
                    ForkEvent::State(state) => self.on_fork_state(id, state).await,
                    ForkEvent::Done(_) => None,
                }
            }
        }
    }

    async fn on_caller_state(&mut self, state: DialogState) -> Option<Input> {
        match state {
            DialogState::Terminated(_, TerminatedReason::UacCancel) => Some(Input::CallerCancelled),
            DialogState::Terminated(_, TerminatedReason::UasDecline) => None, // our own reject
            DialogState::Terminated(_, reason) => {
                tracing::debug!(call_id = %self.call_id, ?reason, "caller leg terminated");
                Some(Input::CallerHangup)
            }
            DialogState::Updated(_, req, handle) => {
                self.pass_request(self.caller_leg, *req, handle).await;
                None
            }
            DialogState::Info(_, req, handle) => {
                self.publish_dtmf(&req, &self.caller_ext.clone());
                self.pass_request(self.caller_leg, *req, handle).await;
                None
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                None
            }
            DialogState::Refer(_, req, handle) if self.winner().is_some() => {
                self.on_refer(self.caller_leg, *req, handle).await;
                None
            }
            DialogState::Message(_, _, handle) | DialogState::Notify(_, _, handle) | DialogState::Refer(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
                None
            }
            _ => None,
        }
    }

    /// A fork's dialog after its INVITE (the winner's BYE and mid-dialog requests).
    async fn on_fork_state(&mut self, fork: ForkId, state: DialogState) -> Option<Input> {
        let won = self.winner() == Some(fork);
        match state {
            DialogState::Terminated(_, TerminatedReason::UasBye | TerminatedReason::Timeout) if won => Some(Input::CalleeHangup),
            DialogState::Terminated(_, TerminatedReason::UacBye) if won && self.picked == Some(fork) => Some(Input::CalleeHangup),
            DialogState::Updated(_, req, handle) if won => {
                self.pass_request(self.fork_leg(), *req, handle).await;
                None
            }
            DialogState::Info(_, req, handle) if won => {
                self.publish_dtmf(&req, &self.talker_on(self.fork_leg()));
                self.pass_request(self.fork_leg(), *req, handle).await;
                None
            }
            DialogState::Refer(_, req, handle) if won => {
                self.on_refer(self.fork_leg(), *req, handle).await;
                None
            }
            DialogState::Updated(_, _, handle) | DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                None
            }
            DialogState::Refer(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
                None
            }
            _ => None,
        }
    }

    /// Carry out the machine's actions; what they led to (the answer
    /// reached the caller, or could not) is the machine's next input.
    async fn perform(&mut self, actions: Vec<Action>) -> Option<Input> {
        let mut next = None;
        for action in actions {
            match action {
                Action::Ringing { early_media_from } => self.ringing(early_media_from).await,
                Action::AnswerCaller { fork } => {
                    if let Some(host) = self.forks.host(fork) {
                        self.media.set_signalling_host(self.fork_leg(), host);
                    }
                    let answer = self.forks.sdp(fork).unwrap_or_default();
                    let from_browser = crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&answer));
                    self.media.settle_callee(from_browser);
                    let answered = match self.media.has_previews() && from_browser {
                        // A browser of the preview fan-out answered: its bridge takes the caller.
                        true => self.media.preview_answered(fork, &answer).await,
                        false => {
                            self.media.end_previews();
                            self.media.translate_final_answer(self.fork_leg(), &answer).await
                        }
                    };
                    match answered {
                        // An originated caller already has our relay's SDP: the
                        // answer only tells the relay where the callee is.
                        Ok(sdp) if self.kind == CallerKind::Incoming => {
                            let _ = self.caller.accept(Some(vec![sdp_content_type()]), Some(sdp));
                        }
                        Ok(sdp) if std::mem::take(&mut self.move_caller_media) => self.move_caller(sdp),
                        Ok(_) => {}
                        Err(e) => {
                            // The callee answered with SDP we cannot use: the machine ends both legs.
                            tracing::warn!(call_id = %self.call_id, error = %e, "answer SDP unusable");
                            next = Some(Input::AnswerUnusable { fork });
                            continue;
                        }
                    }
                    next = Some(Input::Connected { fork });
                    self.apply_dtmf_modes();
                    self.answered_at = Some(Instant::now());
                    self.core.calls.set_answered(&self.call_id);
                    if let Some(member) = self.forks.get(fork).and_then(|s| s.member.clone()) {
                        self.core.calls.set_answered_by(&self.call_id, &member);
                    }
                    self.core.calls.set_transfer(&self.call_id, self.who_may_leave());
                }
                Action::CancelFork(f) => self.forks.cancel(f),
                Action::ByeFork(f) => self.forks.bye(f),
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
                Action::AllRefused => self.refused = true,
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
        next
    }

    fn publish(&self, e: CallEvent) {
        let (call_id, caller, callee) = (self.call_id.clone(), self.caller_ext.clone(), self.callee_ext.clone());
        let event = match e {
            CallEvent::Ringing => PbxEvent::Ringing { call_id, caller, callee },
            CallEvent::Answered => {
                let answered_by = self.talker_on(self.fork_leg());
                PbxEvent::Answered { call_id, caller, callee, answered_by }
            }
            CallEvent::Missed => PbxEvent::Missed { call_id, caller, callee },
            CallEvent::Ended { reason, answered } => {
                let since = self.answered_at.unwrap_or(self.started);
                tracing::info!(call_id = %self.call_id, ?reason, answered, "call ended");
                PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms: since.elapsed().as_millis() as u64 }
            }
        };
        self.core.bus.publish(event);
    }

    fn cleanup(&mut self) {
        self.core.calls.remove(&self.call_id);
        self.free_slot();
        self.core.dialogs.remove_dialog(&self.caller.id());
        for f in self.forks.dialogs() {
            self.core.dialogs.remove_dialog(&f.id());
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
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

pub(super) fn sdp_content_type() -> Header {
    Header::ContentType("application/sdp".into())
}
