//! Transcribing before the turn is sure to be over (sans-IO).
//!
//! The end-of-turn wait (700 ms of quiet by default) and speech-to-text
//! (≈0.5 s with Whisper tiny on two cores) used to run one after the other.
//! At the first pause the turn so far is sent to STT as a guess; when the
//! turn then ends without the caller speaking again, its audio is that guess
//! plus quiet, and the guess's transcript is the turn's. Voice after the
//! pause throws the guess away and the next pause makes a new one.
use std::time::{Duration, Instant};

/// What to do about a turn the session wants transcribed.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// No usable guess: transcribe the audio now.
    Transcribe,
    /// The guess for it is still being transcribed; its result will come.
    Pending,
    /// The guess's transcript is ready.
    Heard { text: String, stt: SttTiming },
    /// The guess's transcription failed.
    Failed,
}

/// What a finished guess means for the call.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Not claimed yet (or thrown away): nothing to do now.
    Kept,
    /// Its turn was waiting for it: here is the transcript.
    Heard { text: String, stt: SttTiming },
    /// Its turn was waiting for it and it failed.
    Failed,
}

/// How long STT took, and how much of that the caller still waited for
/// after the end of the turn (the rest ran during the end-of-turn wait).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SttTiming {
    pub took: Duration,
    pub exposed: Duration,
}

#[derive(Debug)]
enum State {
    Running,
    Heard(String, Instant),
    Failed,
}

#[derive(Debug)]
struct Guess {
    job: u64,
    started: Instant,
    /// Samples of the turn the guess was made from.
    len: usize,
    /// Set when the turn ended with no voice after the guess: the turn's
    /// length and when it ended.
    ended: Option<(usize, Instant)>,
    claimed: bool,
    state: State,
}

#[derive(Debug, Default)]
pub struct EarlyStt {
    guess: Option<Guess>,
}

impl EarlyStt {
    /// The caller paused: a transcription job `job` starts on `len` samples.
    pub fn paused(&mut self, job: u64, len: usize, now: Instant) {
        self.guess = Some(Guess { job, started: now, len, ended: None, claimed: false, state: State::Running });
    }

    /// The caller spoke again: the guess is not the turn.
    pub fn resumed(&mut self) {
        if self.guess.as_ref().is_some_and(|g| g.ended.is_none()) {
            self.guess = None;
        }
    }

    /// The turn ended with `len` samples; the guess (if any) is for it.
    pub fn turn_ended(&mut self, len: usize, now: Instant) {
        match self.guess.as_mut() {
            Some(g) if g.ended.is_none() && len >= g.len => g.ended = Some((len, now)),
            _ => self.guess = None,
        }
    }

    /// Whether `job` is a guess (its result goes to `finished`).
    pub fn owns(&self, job: u64) -> bool {
        self.guess.as_ref().is_some_and(|g| g.job == job)
    }

    /// The session wants a turn of `len` samples transcribed.
    pub fn claim(&mut self, len: usize) -> Claim {
        let Some(g) = self.guess.as_mut().filter(|g| g.ended.is_some_and(|(l, _)| l == len) && !g.claimed) else {
            return Claim::Transcribe;
        };
        g.claimed = true;
        match &g.state {
            State::Running => Claim::Pending,
            State::Heard(..) => {
                let Some(Guess { state: State::Heard(text, done), started, ended, .. }) = self.guess.take() else { unreachable!() };
                Claim::Heard { text, stt: timing(started, done, ended) }
            }
            State::Failed => {
                self.guess = None;
                Claim::Failed
            }
        }
    }

    /// Job `job` (a guess) finished: `Some(text)` or failed (`None`).
    pub fn finished(&mut self, job: u64, text: Option<String>, now: Instant) -> Outcome {
        let Some(g) = self.guess.as_mut().filter(|g| g.job == job) else { return Outcome::Kept };
        if !g.claimed {
            g.state = match text {
                Some(t) => State::Heard(t, now),
                None => State::Failed,
            };
            return Outcome::Kept;
        }
        let (started, ended) = (g.started, g.ended);
        self.guess = None;
        match text {
            Some(text) => Outcome::Heard { text, stt: timing(started, now, ended) },
            None => Outcome::Failed,
        }
    }
}

fn timing(started: Instant, done: Instant, ended: Option<(usize, Instant)>) -> SttTiming {
    let from = ended.map_or(started, |(_, e)| e.max(started));
    SttTiming { took: done.saturating_duration_since(started), exposed: done.saturating_duration_since(from) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_guess_that_finishes_after_the_turn_ends_is_delivered_when_it_comes() {
        let t0 = Instant::now();
        let mut e = EarlyStt::default();
        e.paused(7, 1000, t0);
        assert!(e.owns(7) && !e.owns(8));
        e.turn_ended(1500, t0 + ms(450));
        assert_eq!(e.claim(1500), Claim::Pending);
        let out = e.finished(7, Some("what time is it".into()), t0 + ms(600));
        assert_eq!(out, Outcome::Heard { text: "what time is it".into(), stt: SttTiming { took: ms(600), exposed: ms(150) } });
        assert!(!e.owns(7));
    }

    #[test]
    fn a_guess_ready_before_the_turn_ends_costs_no_wait() {
        let t0 = Instant::now();
        let mut e = EarlyStt::default();
        e.paused(7, 1000, t0);
        assert_eq!(e.finished(7, Some("hi".into()), t0 + ms(300)), Outcome::Kept);
        e.turn_ended(1500, t0 + ms(450));
        assert_eq!(e.claim(1500), Claim::Heard { text: "hi".into(), stt: SttTiming { took: ms(300), exposed: ms(0) } });
        // used once
        assert_eq!(e.claim(1500), Claim::Transcribe);
    }

    #[test]
    fn voice_after_the_pause_throws_the_guess_away() {
        let t0 = Instant::now();
        let mut e = EarlyStt::default();
        e.paused(7, 1000, t0);
        e.resumed();
        assert!(!e.owns(7));
        assert_eq!(e.finished(7, Some("half a sentence".into()), t0 + ms(300)), Outcome::Kept);
        e.turn_ended(3000, t0 + ms(900));
        assert_eq!(e.claim(3000), Claim::Transcribe);
    }

    #[test]
    fn a_guess_is_only_for_the_turn_it_was_made_in() {
        let t0 = Instant::now();
        let mut e = EarlyStt::default();
        e.paused(7, 1000, t0);
        e.turn_ended(1500, t0 + ms(450));
        // The session is busy; the caller speaks again and that turn is claimed first.
        assert_eq!(e.claim(2200), Claim::Transcribe);
        // A turn with no pause report (max length cut) does not take an older guess.
        e.turn_ended(900, t0 + ms(900));
        assert_eq!(e.claim(1500), Claim::Transcribe);
    }

    #[test]
    fn a_failed_guess_fails_the_turn_it_was_claimed_for() {
        let t0 = Instant::now();
        let mut e = EarlyStt::default();
        e.paused(7, 1000, t0);
        e.turn_ended(1500, t0 + ms(450));
        assert_eq!(e.claim(1500), Claim::Pending);
        assert_eq!(e.finished(7, None, t0 + ms(500)), Outcome::Failed);
        e.paused(9, 10, t0);
        assert_eq!(e.finished(9, None, t0 + ms(100)), Outcome::Kept);
        e.turn_ended(20, t0 + ms(450));
        assert_eq!(e.claim(20), Claim::Failed);
    }
}
