//! Where the caller's turns begin and end (sans-IO): fed one voice
//! probability per 16 ms frame (earshot's frame at 16 kHz), it reports
//! speech starting (for barge-in) and a finished turn with its audio.
use std::collections::VecDeque;

/// Samples per frame: 16 ms at 16 kHz, what earshot scores.
pub const FRAME: usize = 256;
const FRAME_MS: u64 = 16;

#[derive(Debug, Clone, Copy)]
pub struct TurnConfig {
    /// A frame scoring at least this is voice.
    pub threshold: f32,
    /// Voice this long in a row starts speech (a click or a cough is shorter).
    pub start_ms: u64,
    /// Quiet this long after speech ends the turn.
    pub end_ms: u64,
    /// Quiet this long reports a pause with the turn so far, so that
    /// transcription can start before the turn is sure to be over; 0: never.
    pub pause_ms: u64,
    /// Audio kept from before speech was confirmed, so the first syllable is not cut.
    pub preroll_ms: u64,
    /// A turn longer than this is ended where it stands.
    pub max_turn_ms: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig { threshold: 0.5, start_ms: 96, end_ms: 700, pause_ms: 0, preroll_ms: 320, max_turn_ms: 30_000 }
    }
}

#[derive(Debug, PartialEq)]
pub enum TurnEvent {
    /// The caller started speaking.
    SpeechStarted,
    /// The caller has been quiet for `pause_ms`: the turn so far. If no
    /// `Resumed` follows, the `TurnEnded` after it is this audio plus quiet.
    Paused(Vec<i16>),
    /// Voice again after a `Paused`: that audio was not the whole turn.
    Resumed,
    /// The caller finished a turn; its 16 kHz audio, pre-roll included.
    TurnEnded(Vec<i16>),
}

pub struct TurnDetector {
    config: TurnConfig,
    /// Frames before speech is confirmed (pre-roll and the voiced run).
    recent: VecDeque<Vec<i16>>,
    voiced_run: u64,
    quiet_run: u64,
    /// Some while the caller is speaking: the turn's audio so far.
    turn: Option<Vec<i16>>,
}

impl TurnDetector {
    pub fn new(config: TurnConfig) -> Self {
        TurnDetector { config, recent: VecDeque::new(), voiced_run: 0, quiet_run: 0, turn: None }
    }

    pub fn is_speaking(&self) -> bool {
        self.turn.is_some()
    }

    /// One 16 ms frame and its voice probability.
    pub fn on_frame(&mut self, frame: &[i16], voice: f32) -> Option<TurnEvent> {
        let voiced = voice >= self.config.threshold;
        let was_paused = self.is_paused();
        if let Some(turn) = self.turn.as_mut() {
            turn.extend_from_slice(frame);
            self.quiet_run = if voiced { 0 } else { self.quiet_run + FRAME_MS };
            let long = turn.len() as u64 / 16 >= self.config.max_turn_ms;
            if self.quiet_run >= self.config.end_ms || long {
                self.quiet_run = 0;
                self.voiced_run = 0;
                return self.turn.take().map(TurnEvent::TurnEnded);
            }
            if voiced && was_paused {
                return Some(TurnEvent::Resumed);
            }
            // Reported once per quiet stretch: on the frame that reaches it.
            if self.is_paused() && !was_paused {
                return self.turn.clone().map(TurnEvent::Paused);
            }
            return None;
        }
        self.recent.push_back(frame.to_vec());
        let keep = ((self.config.preroll_ms + self.config.start_ms) / FRAME_MS + 1) as usize;
        while self.recent.len() > keep {
            self.recent.pop_front();
        }
        self.voiced_run = if voiced { self.voiced_run + FRAME_MS } else { 0 };
        if self.voiced_run >= self.config.start_ms {
            let audio: Vec<i16> = self.recent.drain(..).flatten().collect();
            self.turn = Some(audio);
            self.quiet_run = 0;
            return Some(TurnEvent::SpeechStarted);
        }
        None
    }

    /// The quiet since the last voice has reached `pause_ms`.
    fn is_paused(&self) -> bool {
        self.config.pause_ms > 0 && self.quiet_run >= self.config.pause_ms
    }

    /// Forget a turn in progress (the call is going away, or the audio
    /// heard was our own playback's echo and must not count).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.turn = None;
        self.voiced_run = 0;
        self.quiet_run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut TurnDetector, frames: usize, voice: f32, value: i16) -> Vec<TurnEvent> {
        (0..frames).filter_map(|_| d.on_frame(&[value; FRAME], voice)).collect()
    }

    #[test]
    fn speech_then_quiet_is_one_turn_with_its_preroll() {
        let mut d = TurnDetector::new(TurnConfig::default());
        assert!(feed(&mut d, 50, 0.0, 1).is_empty());
        let ev = feed(&mut d, 60, 0.9, 2);
        assert_eq!(ev, vec![TurnEvent::SpeechStarted]);
        assert!(d.is_speaking());
        let ev = feed(&mut d, 60, 0.1, 3);
        let [TurnEvent::TurnEnded(audio)] = ev.as_slice() else { panic!("expected one turn end, got {ev:?}") };
        // 700 ms of quiet ends it: 44 quiet frames are inside the turn.
        assert_eq!(audio.iter().filter(|&&s| s == 3).count(), 44 * FRAME);
        assert_eq!(audio.iter().filter(|&&s| s == 2).count(), 60 * FRAME);
        // Pre-roll: some of the quiet before speech was kept, bounded.
        let pre = audio.iter().filter(|&&s| s == 1).count() / FRAME;
        assert!((15..=27).contains(&pre), "{pre} pre-roll frames");
        assert!(!d.is_speaking());
    }

    #[test]
    fn a_click_does_not_start_speech() {
        let mut d = TurnDetector::new(TurnConfig::default());
        for _ in 0..20 {
            assert!(feed(&mut d, 3, 0.9, 1).is_empty());
            assert!(feed(&mut d, 10, 0.0, 1).is_empty());
        }
    }

    #[test]
    fn short_pauses_inside_a_sentence_do_not_end_the_turn() {
        let mut d = TurnDetector::new(TurnConfig::default());
        assert_eq!(feed(&mut d, 20, 0.9, 1), vec![TurnEvent::SpeechStarted]);
        for _ in 0..5 {
            assert!(feed(&mut d, 25, 0.0, 1).is_empty(), "a 400 ms pause is not the end");
            assert!(feed(&mut d, 10, 0.9, 1).is_empty());
        }
        assert_eq!(feed(&mut d, 44, 0.0, 1).len(), 1);
    }

    fn pausing() -> TurnDetector {
        TurnDetector::new(TurnConfig { pause_ms: 240, ..TurnConfig::default() })
    }

    #[test]
    fn a_pause_reports_the_turn_so_far_once_and_the_end_is_that_plus_quiet() {
        let mut d = pausing();
        assert_eq!(feed(&mut d, 30, 0.9, 2), vec![TurnEvent::SpeechStarted]);
        let ev = feed(&mut d, 60, 0.1, 3);
        let [TurnEvent::Paused(so_far), TurnEvent::TurnEnded(all)] = ev.as_slice() else { panic!("{ev:?}") };
        // 240 ms is 15 quiet frames.
        assert_eq!(so_far.iter().filter(|&&s| s == 3).count(), 15 * FRAME);
        assert!(all.starts_with(so_far) && all.len() == so_far.len() + 29 * FRAME);
    }

    #[test]
    fn voice_after_a_pause_is_reported_and_the_next_pause_reports_again() {
        let mut d = pausing();
        feed(&mut d, 30, 0.9, 2);
        let ev = feed(&mut d, 20, 0.1, 3);
        assert!(matches!(ev.as_slice(), [TurnEvent::Paused(_)]), "{ev:?}");
        assert_eq!(feed(&mut d, 5, 0.9, 4), vec![TurnEvent::Resumed]);
        // A shorter pause than pause_ms reports nothing; voice after it no `Resumed`.
        assert!(feed(&mut d, 10, 0.1, 5).is_empty());
        assert!(feed(&mut d, 5, 0.9, 6).is_empty());
        let ev = feed(&mut d, 60, 0.1, 7);
        let [TurnEvent::Paused(so_far), TurnEvent::TurnEnded(all)] = ev.as_slice() else { panic!("{ev:?}") };
        assert!(so_far.contains(&6) && all.starts_with(so_far));
    }

    #[test]
    fn without_pause_ms_no_pauses_are_reported() {
        let mut d = TurnDetector::new(TurnConfig::default());
        feed(&mut d, 30, 0.9, 2);
        let ev = feed(&mut d, 60, 0.1, 3);
        assert!(matches!(ev.as_slice(), [TurnEvent::TurnEnded(_)]), "{ev:?}");
    }

    #[test]
    fn an_endless_monologue_is_cut_at_the_limit() {
        let mut d = TurnDetector::new(TurnConfig { max_turn_ms: 2000, ..TurnConfig::default() });
        let ev = feed(&mut d, 200, 0.9, 1);
        assert_eq!(ev[0], TurnEvent::SpeechStarted);
        assert!(matches!(ev[1], TurnEvent::TurnEnded(_)));
    }
}
