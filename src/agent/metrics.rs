//! Per-turn figures of the agent, exported as Prometheus text at /metrics.
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds in seconds, chosen around the 30 ms overhead and the
/// 1.2 s voice-to-voice targets.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", self.counts.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", self.count, self.sum, self.count);
    }
}

/// One turn's timings, each measured where it happens.
#[derive(Debug, Default, Clone, Copy)]
pub struct TurnTimes {
    pub stt: Duration,
    /// The part of `stt` after the end of the turn: a transcription started
    /// at a pause runs partly inside the end-of-turn wait.
    pub stt_waited: Duration,
    /// Question sent to the brain → its first complete sentence.
    pub brain: Duration,
    /// That sentence sent to TTS → its first audio.
    pub tts_first_audio: Duration,
    /// End of the caller's speech → first reply packet on the wire.
    pub voice_to_voice: Duration,
    /// The end-of-turn quiet the agent waited for (part of voice-to-voice).
    pub end_of_turn_wait: Duration,
}

impl TurnTimes {
    /// What the agent itself added: voice-to-voice minus the end-of-turn
    /// wait and the backends' time after it.
    pub fn overhead(&self) -> Duration {
        self.voice_to_voice.saturating_sub(self.stt_waited + self.brain + self.tts_first_audio + self.end_of_turn_wait)
    }
}

#[derive(Default)]
pub struct AgentMetrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    stt: Histogram,
    brain: Histogram,
    tts: Histogram,
    v2v: Histogram,
    overhead: Histogram,
    turns: u64,
    calls: u64,
    failures: [u64; 3],
    /// Transcriptions started at a pause, and those that became the turn's.
    early_started: u64,
    early_used: u64,
}

pub const BACKENDS: [&str; 3] = ["stt", "brain", "tts"];

impl AgentMetrics {
    pub fn turn(&self, t: TurnTimes) {
        let mut m = self.inner.lock().expect("metrics lock");
        m.turns += 1;
        m.stt.observe(t.stt.as_secs_f64());
        m.brain.observe(t.brain.as_secs_f64());
        m.tts.observe(t.tts_first_audio.as_secs_f64());
        m.v2v.observe(t.voice_to_voice.as_secs_f64());
        m.overhead.observe(t.overhead().as_secs_f64());
    }

    /// A transcription started at a pause; `used`: it became the turn's.
    pub fn early_stt(&self, used: bool) {
        let mut m = self.inner.lock().expect("metrics lock");
        if used {
            m.early_used += 1;
        } else {
            m.early_started += 1;
        }
    }

    pub fn call(&self) {
        self.inner.lock().expect("metrics lock").calls += 1;
    }

    /// `backend` indexes BACKENDS.
    pub fn failure(&self, backend: usize) {
        self.inner.lock().expect("metrics lock").failures[backend] += 1;
    }

    pub fn render(&self, out: &mut String) {
        let m = self.inner.lock().expect("metrics lock");
        m.stt.render("ha_pbx_agent_stt_seconds", "Speech-to-text time per turn.", out);
        m.brain.render("ha_pbx_agent_brain_seconds", "Question to the brain until its first sentence.", out);
        m.tts.render("ha_pbx_agent_tts_first_audio_seconds", "Sentence to text-to-speech until its first audio.", out);
        m.v2v.render("ha_pbx_agent_voice_to_voice_seconds", "End of caller speech to first agent audio on the wire.", out);
        m.overhead.render("ha_pbx_agent_overhead_seconds", "Voice-to-voice minus backends and the end-of-turn wait.", out);
        let _ = writeln!(out, "# HELP ha_pbx_agent_turns_total Caller turns answered.\n# TYPE ha_pbx_agent_turns_total counter\nha_pbx_agent_turns_total {}", m.turns);
        let _ = writeln!(out, "# HELP ha_pbx_agent_early_stt_started_total Transcriptions started at a pause in the caller's speech (early_stt_ms).\n# TYPE ha_pbx_agent_early_stt_started_total counter\nha_pbx_agent_early_stt_started_total {}", m.early_started);
        let _ = writeln!(out, "# HELP ha_pbx_agent_early_stt_used_total Of those, the ones that became the turn's transcript (the rest were thrown away).\n# TYPE ha_pbx_agent_early_stt_used_total counter\nha_pbx_agent_early_stt_used_total {}", m.early_used);
        let _ = writeln!(out, "# HELP ha_pbx_agent_calls_total Calls the agent answered.\n# TYPE ha_pbx_agent_calls_total counter\nha_pbx_agent_calls_total {}", m.calls);
        let _ = writeln!(out, "# HELP ha_pbx_agent_backend_failures_total Backend errors and timeouts.\n# TYPE ha_pbx_agent_backend_failures_total counter");
        for (i, b) in BACKENDS.iter().enumerate() {
            let _ = writeln!(out, "ha_pbx_agent_backend_failures_total{{backend=\"{b}\"}} {}", m.failures[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_shows_up_in_every_histogram_and_overhead_is_what_is_left() {
        let m = AgentMetrics::default();
        let ms = Duration::from_millis;
        let t = TurnTimes { stt: ms(600), stt_waited: ms(600), brain: ms(200), tts_first_audio: ms(80), voice_to_voice: ms(1610), end_of_turn_wait: ms(700) };
        assert_eq!(t.overhead(), ms(30));
        // Transcription started 250 ms into the wait: 150 ms of it was waited for.
        let early = TurnTimes { stt_waited: ms(150), voice_to_voice: ms(1160), ..t };
        assert_eq!(early.overhead(), ms(30));
        m.turn(t);
        m.failure(0);
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("ha_pbx_agent_overhead_seconds_bucket{le=\"0.03\"} 1"), "{s}");
        assert!(s.contains("ha_pbx_agent_overhead_seconds_bucket{le=\"0.02\"} 0"));
        assert!(s.contains("ha_pbx_agent_voice_to_voice_seconds_count 1"));
        assert!(s.contains("ha_pbx_agent_turns_total 1"));
        m.early_stt(false);
        m.early_stt(false);
        m.early_stt(true);
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("ha_pbx_agent_early_stt_started_total 2\n"), "{s}");
        assert!(s.contains("ha_pbx_agent_early_stt_used_total 1\n"), "{s}");
        assert!(s.contains("ha_pbx_agent_backend_failures_total{backend=\"stt\"} 1"));
        assert!(s.contains("ha_pbx_agent_backend_failures_total{backend=\"tts\"} 0"));
    }
}
