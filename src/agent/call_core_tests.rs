//! The agent's call core with no socket, no clock and no backends: packets,
//! 20 ms ticks and job results are handed in, with a virtual time, and what
//! comes out is checked (packets by their decoded audio).
use super::call_core::{CallCore, CallSetup, In, JobEvent, Metric, Out};
use super::prompts::PromptCache;
use super::session::{Backend, SessionEnd, Limits, Mode, GOODBYE, MESSAGE_GREETING};
use super::turn::TurnConfig;
use crate::media::audio::g711::G711;
use crate::media::rtp::{self, RtpWriter};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
const EVENT_PT: u8 = 101;

struct Call {
    core: CallCore,
    now: Instant,
}

impl Call {
    fn new(mode: Mode, prompts: PromptCache) -> Call {
        let now = Instant::now();
        let setup = CallSetup {
            mode,
            limits: Limits { silence: Duration::from_secs(30), max_call: Duration::from_secs(600), max_failures: 3 },
            turn: TurnConfig::default(),
            law: G711::Pcmu,
            event_pt: Some(EVENT_PT),
            greeting: "Hello, how can I help?".into(),
        };
        Call { core: CallCore::new(setup, Arc::new(prompts), now), now }
    }

    fn outs(&mut self) -> Vec<Out> {
        std::iter::from_fn(|| self.core.poll()).collect()
    }

    fn handle(&mut self, input: In<'_>) -> Vec<Out> {
        self.core.handle(self.now, input);
        self.outs()
    }

    /// `n` ticks of the 20 ms clock, the time moving with them.
    fn ticks(&mut self, n: usize) -> Vec<Out> {
        let mut outs = Vec::new();
        for _ in 0..n {
            self.now += TICK;
            self.core.handle(self.now, In::Tick);
            outs.extend(self.outs());
        }
        outs
    }
}

/// Decoded audio of each audio packet sent (not telephone-events).
fn sent_audio(outs: &[Out]) -> Vec<Vec<i16>> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Send(p) => rtp::parse(p).filter(|v| v.payload_type == 0).map(|v| {
                let mut pcm = Vec::new();
                G711::Pcmu.decode(v.payload, &mut pcm);
                pcm
            }),
            _ => None,
        })
        .collect()
}

fn loud(pcm: &[i16]) -> bool {
    pcm.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0) > 1000
}

fn tone(samples: usize) -> Vec<i16> {
    (0..samples).map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16).collect()
}

fn hang_ups(outs: &[Out]) -> Vec<SessionEnd> {
    outs.iter().filter_map(|o| if let Out::HangUp(r) = o { Some(*r) } else { None }).collect()
}

/// The far side presses `key` (RFC 4733: a start, then three ends); each
/// key its own event timestamp.
fn key_packets(key: u8) -> Vec<Vec<u8>> {
    let mut w = RtpWriter::new(9, 1);
    [false, true, true, true]
        .iter()
        .map(|end| {
            let mut p = Vec::new();
            w.write(EVENT_PT, 1600 * u32::from(key), !end, &[key, if *end { 0x8a } else { 0x0a }, 0, 160], &mut p);
            p
        })
        .collect()
}

#[test]
fn the_greeting_is_synthesized_then_played_on_the_clock() {
    let mut call = Call::new(Mode::Assistant, PromptCache::default());
    let first = call.outs();
    let Some(Out::Say { job, text }) = first.first() else { panic!("{first:?}") };
    assert_eq!((text.as_str(), first.len()), ("Hello, how can I help?", 1), "not rendered ahead: synthesized now");
    let job = *job;
    assert!(sent_audio(&call.ticks(3)).iter().all(|p| !loud(p)), "silence until the audio comes");
    call.handle(In::Job(JobEvent::Audio { job, samples: tone(800) }));
    call.handle(In::Job(JobEvent::Done { job }));
    let audio = sent_audio(&call.ticks(7));
    assert_eq!(audio.len(), 7, "one packet a tick");
    assert_eq!(audio.iter().map(|p| loud(p)).collect::<Vec<_>>(), [true, true, true, true, true, false, false], "800 samples: five packets");
    assert!(!call.core.is_ended());
}

#[test]
fn a_cached_greeting_plays_at_once_and_a_key_press_asks_the_brain() {
    let mut call = Call::new(Mode::Assistant, PromptCache::preset(tone(320), tone(160)));
    assert!(call.outs().is_empty(), "rendered ahead: no job");
    let audio = sent_audio(&call.ticks(3));
    assert_eq!(audio.iter().map(|p| loud(p)).collect::<Vec<_>>(), [true, true, false]);
    let mut outs = Vec::new();
    for p in key_packets(5) {
        outs.extend(call.handle(In::Packet(&p)));
    }
    let replies: Vec<_> = outs.iter().filter_map(|o| if let Out::Reply { text, .. } = o { Some(text.clone()) } else { None }).collect();
    assert_eq!(replies.len(), 1, "{outs:?}");
    assert!(replies[0].contains("key 5"), "{replies:?}");
}

#[test]
fn three_failures_apologise_each_time_then_end_the_call() {
    let mut call = Call::new(Mode::Assistant, PromptCache::preset(Vec::new(), tone(160)));
    call.ticks(2);
    let mut reasons = Vec::new();
    for round in 1..=3 {
        let outs: Vec<Out> = key_packets(round).iter().flat_map(|p| call.handle(In::Packet(p))).collect();
        let Some(job) = outs.iter().find_map(|o| if let Out::Reply { job, .. } = o { Some(*job) } else { None }) else { panic!("{outs:?}") };
        let failed = call.handle(In::Job(JobEvent::Failed { job, backend: Backend::Brain }));
        assert!(failed.iter().any(|o| matches!(o, Out::Metric(Metric::Failure(Backend::Brain)))), "{failed:?}");
        let played = call.ticks(5);
        assert!(loud(&sent_audio(&played)[0]), "round {round}: the apology is heard");
        reasons.extend(hang_ups(&played));
    }
    assert_eq!(reasons, [SessionEnd::Failures], "after the third apology, not before");
    assert!(call.core.is_ended());
}

#[test]
fn tool_requests_press_keys_keep_the_message_and_hang_up_after_the_reply() {
    let mut call = Call::new(Mode::Assistant, PromptCache::preset(tone(160), tone(160)));
    call.ticks(2);
    call.handle(In::Press("12".into()));
    let sent = call.ticks(30);
    let events: Vec<u8> = (sent.iter())
        .filter_map(|o| if let Out::Send(p) = o { rtp::parse(p).filter(|v| v.payload_type == EVENT_PT).map(|v| v.payload[0]) } else { None })
        .collect();
    assert!(events.contains(&1) && events.contains(&2), "{events:?}");
    assert!(events.iter().position(|k| *k == 2) > events.iter().rposition(|k| *k == 1), "1 then 2: {events:?}");
    call.handle(In::TakeMessage("call me back".into()));
    assert_eq!(call.core.message().as_deref(), Some("call me back"));

    // The brain asks to hang up while its reply is being spoken: the call ends once it has been heard.
    let outs: Vec<Out> = key_packets(7).iter().flat_map(|p| call.handle(In::Packet(p))).collect();
    let job = outs.iter().find_map(|o| if let Out::Reply { job, .. } = o { Some(*job) } else { None }).unwrap();
    call.handle(In::HangUpAfterReply);
    call.handle(In::Job(JobEvent::Audio { job, samples: tone(480) }));
    call.handle(In::Job(JobEvent::Done { job }));
    let spoken = call.ticks(2);
    assert!(hang_ups(&spoken).is_empty(), "not while the reply plays");
    let rest = call.ticks(3);
    assert_eq!(hang_ups(&rest), [SessionEnd::Done]);
}

#[test]
fn thirty_seconds_of_silence_say_goodbye_then_hang_up() {
    let mut call = Call::new(Mode::Assistant, PromptCache::preset(tone(160), tone(160)));
    let quiet = call.ticks(1499); // 29.98 s
    assert!(!quiet.iter().any(|o| matches!(o, Out::Say { .. } | Out::HangUp(_))), "too early");
    let outs = call.ticks(26); // the session looks every half second
    let Some(job) = outs.iter().find_map(|o| if let Out::Say { job, text } = o { (text == GOODBYE).then_some(*job) } else { None }) else {
        panic!("no goodbye: {outs:?}")
    };
    assert!(hang_ups(&outs).is_empty(), "not before the goodbye is heard");
    call.handle(In::Job(JobEvent::Audio { job, samples: tone(320) }));
    call.handle(In::Job(JobEvent::Done { job }));
    assert_eq!(hang_ups(&call.ticks(3)), [SessionEnd::Silence]);
}

#[test]
fn a_message_call_greets_with_the_message_prompt_and_keeps_nothing_unsaid() {
    let mut call = Call::new(Mode::Message, PromptCache::preset(tone(160), tone(160)));
    let first = call.outs();
    assert!(matches!(first.as_slice(), [Out::Say { text, .. }] if text == MESSAGE_GREETING), "{first:?}");
    assert_eq!(call.core.message(), None);
}

/// A transcript that arrives for a job the session no longer waits for
/// (a guess from a pause, thrown away) changes nothing.
#[test]
fn a_transcript_nobody_waits_for_is_ignored() {
    let mut call = Call::new(Mode::Assistant, PromptCache::preset(tone(160), tone(160)));
    let outs = call.handle(In::Job(JobEvent::Transcript { job: 42, text: "hello".into(), took: Duration::from_millis(300) }));
    assert!(outs.is_empty(), "{outs:?}");
}

#[test]
fn a_message_call_plays_the_message_greeting_rendered_ahead_at_once() {
    let prompts = PromptCache::preset(tone(160), tone(160)).with_message_greeting(tone(320));
    let mut call = Call::new(Mode::Message, prompts);
    assert!(call.outs().is_empty(), "rendered ahead: no job, nothing synthesized sentence by sentence");
    let audio = sent_audio(&call.ticks(3));
    assert_eq!(audio.iter().map(|p| loud(p)).collect::<Vec<_>>(), [true, true, false], "320 samples: two packets");
}
