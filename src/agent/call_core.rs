//! One call with the agent, sans-IO: RTP packets, the 20 ms clock, backend
//! results and tool requests come in with the time ([`CallCore::handle`]);
//! packets to send, backend jobs to start or stop and metrics come out
//! ([`CallCore::poll`]). Inside: the line (G.711, RFC 4733), the voice
//! detector and turn detector, early transcription, the turn-taking
//! `Session`, the playback queue and each turn's timing. The runner
//! (runner.rs) owns the socket, the clock and the jobs, and decides nothing.
use super::early_stt::{Claim, EarlyStt, Outcome, SttTiming};
use super::line::{Heard, Line, PACKET_SAMPLES};
use super::metrics::TurnTimes;
use super::prompts::PromptCache;
use super::session::{Action, Backend, SessionEnd, Input, Limits, Mode, Prompt, Session, MESSAGE_GREETING};
use super::speech;
use super::turn::{TurnConfig, TurnDetector, TurnEvent, FRAME};
use crate::media::audio::g711::G711;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The session's periodic tick, in 20 ms clock ticks (half a second).
const SESSION_TICK_EVERY: u64 = 25;

/// What backend jobs report back.
#[derive(Debug)]
pub(super) enum JobEvent {
    Transcript { job: u64, text: String, took: Duration },
    /// 8 kHz audio of job `job`.
    Audio { job: u64, samples: Vec<i16> },
    /// The reply's first sentence reached TTS and sounded.
    ReplyTiming { job: u64, brain: Duration, tts_first_audio: Duration },
    Done { job: u64 },
    Failed { job: u64, backend: Backend },
}

pub(super) enum In<'a> {
    /// An RTP packet from the far side.
    Packet(&'a [u8]),
    /// The 20 ms clock.
    Tick,
    Job(JobEvent),
    /// A tool asked to hang up once the reply has been spoken.
    HangUpAfterReply,
    /// A tool asked to press keys toward the far side.
    Press(String),
    /// A tool took (part of) a message.
    TakeMessage(String),
}

#[derive(Debug)]
pub(super) enum Out {
    /// An RTP packet for the far side.
    Send(Vec<u8>),
    /// Synthesize `text` as job `job` (its audio comes back as [`JobEvent::Audio`]).
    Say { job: u64, text: String },
    /// Transcribe 16 kHz audio as job `job`.
    Transcribe { job: u64, audio: Vec<i16> },
    /// Ask the brain about `text`; its spoken reply is job `job`.
    Reply { job: u64, text: String },
    /// Barge-in: job `job`'s audio is no longer wanted.
    Cancel(u64),
    HangUp(SessionEnd),
    Metric(Metric),
}

#[derive(Debug)]
pub(super) enum Metric {
    /// A turn's transcription was (true) or was not (false) the one started early.
    EarlyStt(bool),
    Failure(Backend),
    Turn(TurnTimes),
}

pub(super) struct CallSetup {
    pub mode: Mode,
    pub limits: Limits,
    pub turn: TurnConfig,
    pub law: G711,
    pub event_pt: Option<u8>,
    /// The greeting's text, when it has not been rendered ahead.
    pub greeting: String,
}

/// One caller turn's timing, from the end of its speech to the reply's first packet.
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

pub(super) struct CallCore {
    session: Session,
    prompts: Arc<PromptCache>,
    greeting: String,
    end_of_turn: Duration,
    turns: TurnDetector,
    early: EarlyStt,
    vad: earshot::Detector,
    line: Line,
    /// 16 kHz audio not yet a whole detector frame.
    pending16: Vec<i16>,
    playback: VecDeque<i16>,
    /// The transcription the session is waiting for (not a guess).
    stt_job: Option<u64>,
    next_job: u64,
    /// Jobs whose audio is still wanted; a barge-in cancels them.
    speaking: Vec<u64>,
    turn: Option<Turn>,
    /// The brain's reply in progress; its end (or failure) ends the session's turn.
    reply_job: Option<u64>,
    message: Vec<String>,
    hang_up_after_reply: bool,
    was_playing: bool,
    ticks: u64,
    out: VecDeque<Out>,
}

impl CallCore {
    /// The call was answered at `now`: the session starts (greeting and all).
    pub(super) fn new(setup: CallSetup, prompts: Arc<PromptCache>, now: Instant) -> Self {
        let CallSetup { mode, limits, turn, law, event_pt, greeting } = setup;
        let end_of_turn = Duration::from_millis(turn.end_ms);
        let mut core = CallCore {
            session: Session::new(mode, limits, now),
            prompts,
            greeting,
            end_of_turn,
            turns: TurnDetector::new(turn),
            early: EarlyStt::default(),
            vad: earshot::Detector::default(),
            line: Line::new(law, event_pt),
            pending16: Vec::with_capacity(FRAME * 2),
            playback: VecDeque::new(),
            stt_job: None,
            next_job: 0,
            speaking: Vec::new(),
            turn: None,
            reply_job: None,
            message: Vec::new(),
            hang_up_after_reply: false,
            was_playing: false,
            ticks: 0,
            out: VecDeque::new(),
        };
        let actions = core.session.on(now, Input::Answered);
        core.act(now, actions);
        core
    }

    pub(super) fn is_ended(&self) -> bool {
        self.session.is_ended()
    }

    pub(super) fn poll(&mut self) -> Option<Out> {
        self.out.pop_front()
    }

    /// The message taken in this call, if any (its parts joined).
    pub(super) fn message(&self) -> Option<String> {
        (!self.message.is_empty()).then(|| self.message.join(" "))
    }

    pub(super) fn handle(&mut self, now: Instant, input: In<'_>) {
        match input {
            In::Packet(packet) => self.on_packet(now, packet),
            In::Tick => self.on_tick(now),
            In::Job(event) => self.on_job(now, event),
            In::HangUpAfterReply => self.hang_up_after_reply = true,
            In::Press(digits) => self.line.press(&digits, now),
            In::TakeMessage(text) => self.message.push(text),
        }
    }

    fn job(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    /// Carries out what the session asked for (which may ask for more).
    fn act(&mut self, now: Instant, mut actions: Vec<Action>) {
        while !actions.is_empty() {
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Play(prompt) => self.play(prompt),
                    Action::StopPlayback => {
                        self.playback.clear();
                        for job in self.speaking.drain(..) {
                            self.out.push_back(Out::Cancel(job));
                        }
                        tracing::debug!("agent: barge-in, playback stopped");
                    }
                    Action::Transcribe(audio) => actions.extend(self.transcribe(now, audio)),
                    Action::Think(text) => {
                        tracing::info!(said = %text, "agent heard");
                        let job = self.job();
                        if let Some(t) = self.turn.as_mut().filter(|t| t.job == 0) {
                            t.job = job;
                        }
                        self.reply_job = Some(job);
                        self.speaking.push(job);
                        self.out.push_back(Out::Reply { job, text });
                    }
                    Action::RecordMessage(text) => {
                        tracing::info!(part = %text, "agent: message part");
                        self.message.push(text);
                    }
                    Action::HangUp(reason) => self.out.push_back(Out::HangUp(reason)),
                }
            }
        }
    }

    fn play(&mut self, prompt: Prompt) {
        let cached = match &prompt {
            Prompt::Greeting => self.prompts.greeting(),
            Prompt::Apology => self.prompts.apology(),
            Prompt::MessageGreeting => self.prompts.message_greeting(),
            Prompt::Say(_) => None,
        };
        match (cached, prompt) {
            (Some(audio), _) => self.playback.extend(audio.iter()),
            (None, Prompt::Apology) => self.playback.extend(speech::beeps()),
            // Not rendered yet (the greetings) or never kept (Say): synthesize now.
            (None, p @ (Prompt::Greeting | Prompt::MessageGreeting | Prompt::Say(_))) => {
                let text = match p {
                    Prompt::Say(t) => t,
                    Prompt::MessageGreeting => MESSAGE_GREETING.to_string(),
                    _ => self.greeting.clone(),
                };
                let job = self.job();
                self.speaking.push(job);
                self.out.push_back(Out::Say { job, text });
            }
        }
    }

    /// The session wants a finished turn transcribed: it may already be,
    /// from the pause before its end (early STT).
    fn transcribe(&mut self, now: Instant, audio: Vec<i16>) -> Vec<Action> {
        let speech_ended = now.checked_sub(self.end_of_turn).unwrap_or(now);
        let no_stt = SttTiming { took: Duration::ZERO, exposed: Duration::ZERO };
        self.turn = Some(Turn { speech_ended, stt: no_stt, brain: Duration::ZERO, tts: Duration::ZERO, job: 0, audio_queued: false, timed: false });
        let claim = self.early.claim(audio.len());
        if claim != Claim::Transcribe {
            self.out.push_back(Out::Metric(Metric::EarlyStt(true)));
        }
        match claim {
            Claim::Transcribe => {
                let job = self.job();
                self.stt_job = Some(job);
                self.out.push_back(Out::Transcribe { job, audio });
                Vec::new()
            }
            Claim::Pending => Vec::new(),
            Claim::Heard { text, stt } => self.heard(now, text, stt),
            Claim::Failed => self.stt_failed(now),
        }
    }

    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        match self.line.receive(packet) {
            Some(Heard::Key(digit)) => {
                let actions = self.session.on(now, Input::Dtmf(digit));
                self.act(now, actions);
            }
            Some(Heard::Audio(samples)) => {
                self.pending16.extend_from_slice(&samples);
                let mut start = 0;
                while self.pending16.len() - start >= FRAME {
                    let frame = &self.pending16[start..start + FRAME];
                    let voice = self.vad.predict_i16(frame);
                    let event = self.turns.on_frame(frame, voice);
                    start += FRAME;
                    match event {
                        Some(TurnEvent::Paused(so_far)) => {
                            let job = self.job();
                            self.early.paused(job, so_far.len(), now);
                            self.out.push_back(Out::Metric(Metric::EarlyStt(false)));
                            self.out.push_back(Out::Transcribe { job, audio: so_far });
                        }
                        Some(TurnEvent::Resumed) => self.early.resumed(),
                        Some(event) => {
                            if let TurnEvent::TurnEnded(audio) = &event {
                                self.early.turn_ended(audio.len(), now);
                            }
                            let actions = self.session.on(now, Input::Turn(event));
                            self.act(now, actions);
                        }
                        None => {}
                    }
                }
                self.pending16.drain(..start);
            }
            None => {}
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.ticks += 1;
        let n = self.playback.len().min(PACKET_SAMPLES);
        let frame: Vec<i16> = self.playback.drain(..n).collect();
        let mut packets = Vec::with_capacity(2);
        self.line.tick(&frame, now, &mut packets);
        self.out.extend(packets.into_iter().map(Out::Send));
        if n > 0 {
            self.was_playing = true;
            // The reply's first audio just went out: the turn's figures are complete.
            if let Some(t) = self.turn.as_mut().filter(|t| !t.timed && t.job != 0 && t.audio_queued) {
                t.timed = true;
                let times = TurnTimes {
                    stt: t.stt.took,
                    stt_waited: t.stt.exposed,
                    brain: t.brain,
                    tts_first_audio: t.tts,
                    voice_to_voice: now.saturating_duration_since(t.speech_ended),
                    end_of_turn_wait: self.end_of_turn,
                };
                self.out.push_back(Out::Metric(Metric::Turn(times)));
            }
        }
        let idle = self.playback.is_empty() && self.speaking.is_empty();
        if idle && self.was_playing {
            self.was_playing = false;
            let mut actions = self.session.on(now, Input::PlaybackIdle);
            if self.hang_up_after_reply {
                actions.push(Action::HangUp(SessionEnd::Done));
            }
            self.act(now, actions);
        }
        if self.ticks.is_multiple_of(SESSION_TICK_EVERY) {
            let actions = self.session.on(now, Input::Tick);
            self.act(now, actions);
        }
    }

    fn on_job(&mut self, now: Instant, event: JobEvent) {
        let actions = match event {
            JobEvent::Transcript { job, text, took } => {
                if self.early.owns(job) {
                    match self.early.finished(job, Some(text), now) {
                        Outcome::Heard { text, stt } => self.heard(now, text, stt),
                        Outcome::Kept | Outcome::Failed => Vec::new(),
                    }
                } else if self.stt_job == Some(job) {
                    self.heard(now, text, SttTiming { took, exposed: took })
                } else {
                    Vec::new() // a guess thrown away (the caller went on speaking)
                }
            }
            JobEvent::Audio { job, samples } => {
                if self.speaking.contains(&job) {
                    if self.playback.is_empty() {
                        self.session.reply_audio_started();
                    }
                    // Its first audio goes on the wire at the next tick.
                    if let Some(t) = self.turn.as_mut().filter(|t| t.job == job && !t.audio_queued) {
                        t.audio_queued = true;
                    }
                    self.playback.extend(samples);
                }
                Vec::new()
            }
            JobEvent::ReplyTiming { job, brain, tts_first_audio } => {
                if let Some(t) = self.turn.as_mut().filter(|t| t.job == job) {
                    t.brain = brain;
                    t.tts = tts_first_audio;
                }
                Vec::new()
            }
            JobEvent::Done { job } => {
                self.speaking.retain(|j| *j != job);
                if self.reply_job == Some(job) {
                    self.reply_job = None;
                    self.session.on(now, Input::ReplyDone)
                } else {
                    Vec::new()
                }
            }
            JobEvent::Failed { job, backend: Backend::Stt } if self.stt_job != Some(job) => {
                if self.early.owns(job) && self.early.finished(job, None, now) == Outcome::Failed {
                    self.stt_failed(now)
                } else {
                    Vec::new()
                }
            }
            JobEvent::Failed { job, backend } => {
                self.speaking.retain(|j| *j != job);
                if self.reply_job == Some(job) {
                    self.reply_job = None;
                }
                self.out.push_back(Out::Metric(Metric::Failure(backend)));
                tracing::warn!(?backend, "agent backend failed; apologising");
                self.session.on(now, Input::Failed(backend))
            }
        };
        self.act(now, actions);
    }

    /// A turn's transcript reached the session.
    fn heard(&mut self, now: Instant, text: String, stt: SttTiming) -> Vec<Action> {
        if let Some(t) = self.turn.as_mut() {
            t.stt = stt;
        }
        self.session.on(now, Input::Transcript(text))
    }

    fn stt_failed(&mut self, now: Instant) -> Vec<Action> {
        self.out.push_back(Out::Metric(Metric::Failure(Backend::Stt)));
        tracing::warn!("agent: speech-to-text failed; apologising");
        self.session.on(now, Input::Failed(Backend::Stt))
    }
}
