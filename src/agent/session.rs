//! One agent call's turn-taking (sans-IO): who speaks, what to do with a
//! finished caller turn, barge-in, failures and limits. Time comes in with
//! every input; the runner carries out the actions.
use super::turn::TurnEvent;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the agent is for in this call.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The caller dialled the agent: converse with the brain.
    Assistant,
    /// A call nobody answered was handed over: take a message.
    Message,
    /// The agent called someone to say `text`, then hangs up.
    Announce(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Stt,
    Brain,
    Tts,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Greeting,
    Apology,
    /// [`MESSAGE_GREETING`], rendered ahead like the greeting.
    MessageGreeting,
    /// Fixed text (announcement, message-taking lines).
    Say(String),
}

#[derive(Debug, PartialEq)]
pub enum Input {
    Answered,
    Turn(TurnEvent),
    Dtmf(char),
    /// STT's words for the turn being transcribed.
    Transcript(String),
    /// The brain finished and all its speech is queued for playback.
    ReplyDone,
    /// A backend failed (error or timeout) on the turn in progress.
    Failed(Backend),
    /// Our playback queue ran empty.
    PlaybackIdle,
    Tick,
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Play(Prompt),
    /// Barge-in: drop what is queued and stop the reply being spoken.
    StopPlayback,
    Transcribe(Vec<i16>),
    /// Ask the brain; its streamed reply is spoken as it comes.
    Think(String),
    /// Keep what the caller said as (part of) a message.
    RecordMessage(String),
    HangUp(SessionEnd),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Silence,
    MaxDuration,
    Failures,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Transcribing,
    Replying,
}

pub struct Limits {
    pub silence: Duration,
    pub max_call: Duration,
    /// Failed turns in a row before the agent gives up politely.
    pub max_failures: u32,
}

pub struct Session {
    mode: Mode,
    limits: Limits,
    started: Instant,
    last_heard: Instant,
    /// Our audio is playing (or about to).
    playing: bool,
    stage: Option<Stage>,
    waiting: VecDeque<Vec<i16>>,
    failures: u32,
    /// Hang up once the playback queue is empty.
    hang_up_when_quiet: Option<SessionEnd>,
    ended: bool,
}

impl Session {
    pub fn new(mode: Mode, limits: Limits, now: Instant) -> Self {
        Session { mode, limits, started: now, last_heard: now, playing: false, stage: None, waiting: VecDeque::new(), failures: 0, hang_up_when_quiet: None, ended: false }
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn on(&mut self, now: Instant, input: Input) -> Vec<Action> {
        if self.ended {
            return Vec::new();
        }
        let mut out = Vec::new();
        match input {
            Input::Answered => {
                self.last_heard = now;
                let first = match &self.mode {
                    Mode::Assistant => Prompt::Greeting,
                    Mode::Message => Prompt::MessageGreeting,
                    Mode::Announce(text) => {
                        self.hang_up_when_quiet = Some(SessionEnd::Done);
                        Prompt::Say(text.clone())
                    }
                };
                self.play(first, &mut out);
            }
            Input::Turn(TurnEvent::SpeechStarted) => {
                self.last_heard = now;
                if self.playing && self.hang_up_when_quiet.is_none() {
                    self.playing = false;
                    out.push(Action::StopPlayback);
                }
            }
            Input::Turn(TurnEvent::TurnEnded(audio)) => {
                self.last_heard = now;
                if self.hang_up_when_quiet.is_some() {
                    // Saying goodbye or announcing: nothing more to talk about.
                } else if self.stage.is_none() {
                    self.stage = Some(Stage::Transcribing);
                    out.push(Action::Transcribe(audio));
                } else {
                    self.waiting.push_back(audio);
                }
            }
            // Pauses are for the runner's early transcription; the session
            // acts on whole turns only.
            Input::Turn(TurnEvent::Paused(_) | TurnEvent::Resumed) => {}
            Input::Dtmf(digit) => {
                self.last_heard = now;
                if self.stage.is_none() && self.mode == Mode::Assistant {
                    self.stage = Some(Stage::Replying);
                    out.push(Action::Think(format!("(The caller pressed the key {digit} on their phone.)")));
                }
            }
            Input::Transcript(text) => {
                self.failures = 0;
                let text = text.trim().to_string();
                if text.is_empty() || self.stage != Some(Stage::Transcribing) {
                    self.stage = None;
                } else if self.mode == Mode::Message {
                    self.stage = None;
                    out.push(Action::RecordMessage(text));
                    self.play(Prompt::Say(MESSAGE_THANKS.into()), &mut out);
                } else {
                    self.stage = Some(Stage::Replying);
                    out.push(Action::Think(text));
                }
            }
            Input::ReplyDone => {
                self.failures = 0;
                self.stage = None;
            }
            Input::Failed(_) => {
                self.stage = None;
                self.failures += 1;
                self.waiting.clear();
                if self.failures >= self.limits.max_failures {
                    self.hang_up_when_quiet = Some(SessionEnd::Failures);
                }
                self.play(Prompt::Apology, &mut out);
            }
            Input::PlaybackIdle => {
                self.playing = false;
                if let Some(reason) = self.hang_up_when_quiet {
                    self.end(reason, &mut out);
                }
            }
            Input::Tick => {
                let quiet_for = now.saturating_duration_since(self.last_heard);
                if now.saturating_duration_since(self.started) >= self.limits.max_call {
                    self.end(SessionEnd::MaxDuration, &mut out);
                } else if quiet_for >= self.limits.silence && !self.playing && self.stage.is_none() && self.hang_up_when_quiet.is_none() {
                    self.hang_up_when_quiet = Some(SessionEnd::Silence);
                    self.play(Prompt::Say(GOODBYE.into()), &mut out);
                }
            }
        }
        if self.stage.is_none() && !self.ended && self.hang_up_when_quiet.is_none()
            && let Some(audio) = self.waiting.pop_front() {
                self.stage = Some(Stage::Transcribing);
                out.push(Action::Transcribe(audio));
            }
        out
    }

    /// A reply started playing (its first audio is queued).
    pub fn reply_audio_started(&mut self) {
        self.playing = true;
    }

    fn play(&mut self, prompt: Prompt, out: &mut Vec<Action>) {
        if !matches!(&prompt, Prompt::Say(s) if s.is_empty()) {
            self.playing = true;
            out.push(Action::Play(prompt));
        }
    }

    fn end(&mut self, reason: SessionEnd, out: &mut Vec<Action>) {
        self.ended = true;
        out.push(Action::HangUp(reason));
    }
}

pub const MESSAGE_GREETING: &str = "Nobody can come to the phone right now. Please leave a message after this, and hang up when you are done.";
pub const MESSAGE_THANKS: &str = "Thank you, I will pass that on. You can add more, or hang up.";
pub const GOODBYE: &str = "I did not hear anything, so I will hang up now. Goodbye.";

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
