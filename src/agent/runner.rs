//! One call with the agent: the RTP socket, the 20 ms clock, the voice
//! detector, and the backend jobs, around the sans-IO `Session`.
use super::backends::{Audio, Conversation};
use super::early_stt::{Claim, EarlyStt, Outcome, SttTiming};
use super::line::{Heard, Line, PACKET_SAMPLES};
use super::metrics::TurnTimes;
use super::service::{Agent, TakenMessage};
use super::session::{Action, Backend, EndReason, Input, Limits, Mode, Prompt, Session};
use super::tools::{CallRequest, CallTools};
use super::turn::{TurnConfig, TurnDetector, TurnEvent, FRAME};
use super::{jobs, speech};
use crate::media::audio::g711::Law;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the control plane does for the agent: no SIP types cross here.
pub trait CallControl: Send + Sync {
    /// End the call (BYE on our leg).
    fn hang_up(&self);
    /// Blind-transfer the caller to `extension`; the agent leaves.
    fn transfer(&self, extension: &str) -> Result<(), String>;
}

pub struct AgentCall {
    pub call_id: String,
    pub caller: String,
    /// Who the caller dialled (the agent, or the extension it stands in for).
    pub callee: String,
    pub mode: Mode,
    pub socket: UdpSocket,
    /// Where the far side said it listens; we answer to where packets come from.
    pub peer: SocketAddr,
    pub law: Law,
    pub event_pt: Option<u8>,
    pub control: Arc<dyn CallControl>,
    /// Cancelled when the call ends on the SIP side (BYE, CANCEL).
    pub ended: CancellationToken,
}

/// What backend jobs report back.
pub(super) enum JobEvent {
    Transcript { job: u64, text: String, took: Duration },
    /// 8 kHz audio of job `job`.
    Audio { job: u64, samples: Vec<i16> },
    /// The reply's first sentence reached TTS and sounded.
    ReplyTiming { job: u64, brain: Duration, tts_first_audio: Duration },
    Done { job: u64 },
    Failed { job: u64, backend: Backend },
}

struct Turn {
    speech_ended: Instant,
    stt: SttTiming,
    brain: Duration,
    tts: Duration,
    job: u64,
    /// The reply's audio reached the playback queue.
    audio_queued: bool,
    timed: bool,
}

pub async fn run(agent: Arc<Agent>, call: AgentCall) {
    let AgentCall { call_id, caller, callee, mode, socket, mut peer, law, event_pt, control, ended } = call;
    agent.metrics.call();
    let cfg = &agent.config;
    let now = Instant::now();
    let limits = Limits { silence: Duration::from_secs(cfg.silence_secs), max_call: Duration::from_secs(cfg.max_call_secs), max_failures: 3 };
    let mut session = Session::new(mode.clone(), limits, now);
    let end_of_turn = Duration::from_millis(cfg.end_of_turn_ms);
    let mut turns = TurnDetector::new(TurnConfig { end_ms: cfg.end_of_turn_ms, pause_ms: cfg.early_stt_ms, ..TurnConfig::default() });
    let mut early = EarlyStt::default();
    // The transcription the session is waiting for (not a guess).
    let mut stt_job: Option<u64> = None;
    let mut vad = earshot::Detector::default();
    let mut line = Line::new(law, event_pt);
    let mut pending16: Vec<i16> = Vec::with_capacity(FRAME * 2);
    let mut playback: VecDeque<i16> = VecDeque::new();
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel::<JobEvent>();
    let (calls_tx, mut calls_rx) = mpsc::unbounded_channel::<CallRequest>();
    let tools = Arc::new(CallTools { ha: agent.backends.ha.clone(), allowed_entities: cfg.allowed_entities.clone(), call: calls_tx });
    let conversation = Arc::new(tokio::sync::Mutex::new(Conversation::default()));
    let mut next_job = 0u64;
    // Jobs whose audio is still wanted; a barge-in cancels them.
    let mut speaking: Vec<(u64, CancellationToken)> = Vec::new();
    let mut turn: Option<Turn> = None;
    // The brain's reply in progress; its end (or failure) ends the session's turn.
    let mut reply_job: Option<u64> = None;
    let mut message: Vec<String> = Vec::new();
    let mut hang_up_after_reply = false;
    let mut was_playing = false;
    let mut recv = vec![0u8; 2048];
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut ticks = 0u64;
    let mut actions = session.on(now, Input::Answered);
    tracing::info!(%call_id, %caller, %callee, ?mode, "agent answered");

    loop {
        // Carry out what the session asked for (which may ask for more).
        while !actions.is_empty() {
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Play(prompt) => {
                        let cached = match &prompt {
                            Prompt::Greeting => agent.prompts.greeting(),
                            Prompt::Apology => agent.prompts.apology(),
                            Prompt::Say(_) => None,
                        };
                        match (cached, prompt) {
                            (Some(audio), _) => playback.extend(audio.iter()),
                            (None, Prompt::Apology) => playback.extend(speech::beeps()),
                            // Not rendered yet (greeting) or never kept (Say): synthesize now.
                            (None, p @ (Prompt::Greeting | Prompt::Say(_))) => {
                                let text = if let Prompt::Say(t) = p { t } else { cfg.greeting.clone() };
                                next_job += 1;
                                speaking.push((next_job, jobs::say(agent.clone(), text, next_job, jobs_tx.clone())));
                            }
                        }
                    }
                    Action::StopPlayback => {
                        playback.clear();
                        for (_, cancel) in speaking.drain(..) {
                            cancel.cancel();
                        }
                        tracing::debug!(%call_id, "agent: barge-in, playback stopped");
                    }
                    Action::Transcribe(audio) => {
                        let speech_ended = Instant::now().checked_sub(end_of_turn).unwrap_or_else(Instant::now);
                        let no_stt = SttTiming { took: Duration::ZERO, exposed: Duration::ZERO };
                        turn = Some(Turn { speech_ended, stt: no_stt, brain: Duration::ZERO, tts: Duration::ZERO, job: 0, audio_queued: false, timed: false });
                        let claim = early.claim(audio.len());
                        if claim != Claim::Transcribe {
                            agent.metrics.early_stt(true);
                        }
                        match claim {
                            Claim::Transcribe => {
                                next_job += 1;
                                stt_job = Some(next_job);
                                jobs::transcribe(agent.clone(), Audio { rate: 16000, samples: audio }, next_job, jobs_tx.clone());
                            }
                            Claim::Pending => {}
                            Claim::Heard { text, stt } => actions.extend(heard(&mut session, &mut turn, text, stt)),
                            Claim::Failed => actions.extend(stt_failed(&agent, &mut session)),
                        }
                    }
                    Action::Think(text) => {
                        tracing::info!(%call_id, said = %text, "agent heard");
                        next_job += 1;
                        if let Some(t) = turn.as_mut().filter(|t| t.job == 0) {
                            t.job = next_job;
                        }
                        reply_job = Some(next_job);
                        let cancel = jobs::reply(agent.clone(), text, conversation.clone(), tools.clone(), next_job, jobs_tx.clone());
                        speaking.push((next_job, cancel));
                    }
                    Action::RecordMessage(text) => {
                        tracing::info!(%call_id, part = %text, "agent: message part");
                        message.push(text);
                    }
                    Action::HangUp(reason) => {
                        tracing::info!(%call_id, ?reason, "agent hangs up");
                        control.hang_up();
                    }
                }
            }
        }
        if session.is_ended() {
            break;
        }

        tokio::select! {
            _ = ended.cancelled() => {
                tracing::info!(%call_id, "agent call ended by the other side");
                break;
            }
            r = socket.recv_from(&mut recv) => {
                let Ok((n, from)) = r else { continue };
                peer = from;
                match line.receive(&recv[..n]) {
                    Some(Heard::Key(digit)) => actions = session.on(Instant::now(), Input::Dtmf(digit)),
                    Some(Heard::Audio(samples)) => {
                        pending16.extend_from_slice(&samples);
                        let mut start = 0;
                        while pending16.len() - start >= FRAME {
                            let frame = &pending16[start..start + FRAME];
                            let voice = vad.predict_i16(frame);
                            match turns.on_frame(frame, voice) {
                                Some(TurnEvent::Paused(so_far)) => {
                                    next_job += 1;
                                    early.paused(next_job, so_far.len(), Instant::now());
                                    agent.metrics.early_stt(false);
                                    jobs::transcribe(agent.clone(), Audio { rate: 16000, samples: so_far }, next_job, jobs_tx.clone());
                                }
                                Some(TurnEvent::Resumed) => early.resumed(),
                                Some(ev) => {
                                    if let TurnEvent::TurnEnded(audio) = &ev {
                                        early.turn_ended(audio.len(), Instant::now());
                                    }
                                    actions.extend(session.on(Instant::now(), Input::Turn(ev)));
                                }
                                None => {}
                            }
                            start += FRAME;
                        }
                        pending16.drain(..start);
                    }
                    None => {}
                }
            }
            _ = clock.tick() => {
                ticks += 1;
                let n = playback.len().min(PACKET_SAMPLES);
                let frame: Vec<i16> = playback.drain(..n).collect();
                let mut out = Vec::with_capacity(2);
                line.tick(&frame, &mut out);
                for p in out {
                    let _ = socket.send_to(&p, peer).await;
                }
                if n > 0 {
                    was_playing = true;
                    // The reply's first audio just went out: the turn's figures are complete.
                    if let Some(t) = turn.as_mut().filter(|t| !t.timed && t.job != 0 && t.audio_queued) {
                        {
                            t.timed = true;
                            let times = TurnTimes { stt: t.stt.took, stt_waited: t.stt.exposed, brain: t.brain, tts_first_audio: t.tts, voice_to_voice: t.speech_ended.elapsed(), end_of_turn_wait: end_of_turn };
                            tracing::info!(%call_id, v2v_ms = times.voice_to_voice.as_millis() as u64, stt_ms = t.stt.took.as_millis() as u64, stt_waited_ms = t.stt.exposed.as_millis() as u64, brain_ms = t.brain.as_millis() as u64, tts_ms = t.tts.as_millis() as u64, overhead_ms = times.overhead().as_millis() as u64, "agent turn");
                            agent.metrics.turn(times);
                        }
                    }
                }
                let idle = playback.is_empty() && speaking.is_empty();
                if idle && was_playing {
                    was_playing = false;
                    actions.extend(session.on(Instant::now(), Input::PlaybackIdle));
                    if hang_up_after_reply {
                        actions.push(Action::HangUp(EndReason::Done));
                    }
                }
                if ticks.is_multiple_of(25) {
                    actions.extend(session.on(Instant::now(), Input::Tick));
                }
            }
            Some(ev) = jobs_rx.recv() => match ev {
                JobEvent::Transcript { job, text, took } => {
                    if early.owns(job) {
                        match early.finished(job, Some(text), Instant::now()) {
                            Outcome::Heard { text, stt } => actions = heard(&mut session, &mut turn, text, stt),
                            Outcome::Kept | Outcome::Failed => {}
                        }
                    } else if stt_job == Some(job) {
                        actions = heard(&mut session, &mut turn, text, SttTiming { took, exposed: took });
                    }
                    // else: a guess thrown away (the caller went on speaking).
                }
                JobEvent::Audio { job, samples } => {
                    if speaking.iter().any(|(j, _)| *j == job) {
                        if playback.is_empty() {
                            session.reply_audio_started();
                        }
                        // Its first audio goes on the wire at the next tick.
                        if let Some(t) = turn.as_mut().filter(|t| t.job == job && !t.audio_queued) {
                            t.audio_queued = true;
                        }
                        playback.extend(samples);
                    }
                }
                JobEvent::ReplyTiming { job, brain, tts_first_audio } => {
                    if let Some(t) = turn.as_mut().filter(|t| t.job == job) {
                        t.brain = brain;
                        t.tts = tts_first_audio;
                    }
                }
                JobEvent::Done { job } => {
                    speaking.retain(|(j, _)| *j != job);
                    if reply_job == Some(job) {
                        reply_job = None;
                        actions = session.on(Instant::now(), Input::ReplyDone);
                    }
                }
                JobEvent::Failed { job, backend: Backend::Stt } if stt_job != Some(job) => {
                    if early.owns(job) && early.finished(job, None, Instant::now()) == Outcome::Failed {
                        actions = stt_failed(&agent, &mut session);
                    }
                }
                JobEvent::Failed { job, backend } => {
                    speaking.retain(|(j, _)| *j != job);
                    if reply_job == Some(job) {
                        reply_job = None;
                    }
                    agent.metrics.failure(backend as usize);
                    tracing::warn!(%call_id, ?backend, "agent backend failed; apologising");
                    actions = session.on(Instant::now(), Input::Failed(backend));
                }
            },
            Some(req) = calls_rx.recv() => match req {
                CallRequest::HangUp => {
                    hang_up_after_reply = true;
                }
                CallRequest::Transfer { extension, done } => {
                    let r = control.transfer(&extension);
                    let _ = done.send(r);
                }
                CallRequest::SendDtmf(digits) => line.press(&digits),
                CallRequest::TakeMessage(text) => message.push(text),
            },
        }
    }
    for (_, cancel) in speaking {
        cancel.cancel();
    }
    if !message.is_empty() {
        let transcript = message.join(" ");
        agent.deliver_message(TakenMessage { call_id: call_id.clone(), caller, callee, transcript }).await;
    }
    tracing::info!(%call_id, "agent call finished");
}

/// A turn's transcript reached the session.
fn heard(session: &mut Session, turn: &mut Option<Turn>, text: String, stt: SttTiming) -> Vec<Action> {
    if let Some(t) = turn.as_mut() {
        t.stt = stt;
    }
    session.on(Instant::now(), Input::Transcript(text))
}

fn stt_failed(agent: &Agent, session: &mut Session) -> Vec<Action> {
    agent.metrics.failure(Backend::Stt as usize);
    tracing::warn!("agent: speech-to-text failed; apologising");
    session.on(Instant::now(), Input::Failed(Backend::Stt))
}
