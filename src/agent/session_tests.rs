use super::*;

fn limits() -> Limits {
    Limits { silence: Duration::from_secs(30), max_call: Duration::from_secs(300), max_failures: 3 }
}

fn answered(mode: Mode) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(mode, limits(), t0);
    let first = s.on(t0, Input::Answered);
    assert_eq!(first.len(), 1, "{first:?}");
    (s, t0)
}

#[test]
fn greeting_then_a_turn_is_transcribed_and_thought_about() {
    let (mut s, t0) = answered(Mode::Assistant);
    assert_eq!(s.on(t0, Input::PlaybackIdle), vec![]);
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::SpeechStarted)), vec![], "nothing plays: no barge-in action");
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1, 2]))), vec![Action::Transcribe(vec![1, 2])]);
    assert_eq!(s.on(t0, Input::Transcript(" turn on the light ".into())), vec![Action::Think("turn on the light".into())]);
    assert_eq!(s.on(t0, Input::ReplyDone), vec![]);
}

#[test]
fn caller_speech_during_playback_stops_it() {
    let (mut s, t0) = answered(Mode::Assistant);
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::SpeechStarted)), vec![Action::StopPlayback]);
    // Once stopped, more speech does not stop it again.
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::SpeechStarted)), vec![]);
}

#[test]
fn turns_arriving_while_busy_wait_their_turn() {
    let (mut s, t0) = answered(Mode::Assistant);
    s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![2]))), vec![]);
    s.on(t0, Input::Transcript("one".into()));
    assert_eq!(s.on(t0, Input::ReplyDone), vec![Action::Transcribe(vec![2])]);
}

#[test]
fn an_empty_transcript_is_no_turn() {
    let (mut s, t0) = answered(Mode::Assistant);
    s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
    assert_eq!(s.on(t0, Input::Transcript("  ".into())), vec![]);
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![3]))), vec![Action::Transcribe(vec![3])]);
}

#[test]
fn a_failure_is_apologised_for_and_three_in_a_row_end_the_call() {
    let (mut s, t0) = answered(Mode::Assistant);
    for round in 1..=3 {
        s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
        assert_eq!(s.on(t0, Input::Failed(Backend::Stt)), vec![Action::Play(Prompt::Apology)], "round {round}");
    }
    assert_eq!(s.on(t0, Input::PlaybackIdle), vec![Action::HangUp(SessionEnd::Failures)]);
    assert!(s.is_ended());
}

#[test]
fn success_resets_the_failure_count() {
    let (mut s, t0) = answered(Mode::Assistant);
    for _ in 0..5 {
        s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
        s.on(t0, Input::Failed(Backend::Brain));
        s.on(t0, Input::PlaybackIdle);
        s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
        s.on(t0, Input::Transcript("hi".into()));
        s.on(t0, Input::ReplyDone);
    }
    assert!(!s.is_ended());
}

#[test]
fn silence_says_goodbye_then_hangs_up() {
    let (mut s, t0) = answered(Mode::Assistant);
    s.on(t0, Input::PlaybackIdle);
    assert_eq!(s.on(t0 + Duration::from_secs(29), Input::Tick), vec![]);
    let bye = s.on(t0 + Duration::from_secs(31), Input::Tick);
    assert_eq!(bye, vec![Action::Play(Prompt::Say(GOODBYE.into()))]);
    assert_eq!(s.on(t0 + Duration::from_secs(33), Input::PlaybackIdle), vec![Action::HangUp(SessionEnd::Silence)]);
}

#[test]
fn max_duration_ends_the_call_even_mid_sentence() {
    let (mut s, t0) = answered(Mode::Assistant);
    assert_eq!(s.on(t0 + Duration::from_secs(301), Input::Tick), vec![Action::HangUp(SessionEnd::MaxDuration)]);
}

#[test]
fn message_mode_records_what_is_said() {
    let (mut s, t0) = answered(Mode::Message);
    s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1])));
    assert_eq!(
        s.on(t0, Input::Transcript("the parcel is next door".into())),
        vec![Action::RecordMessage("the parcel is next door".into()), Action::Play(Prompt::Say(MESSAGE_THANKS.into()))]
    );
}

#[test]
fn an_announcement_is_spoken_without_interruption_then_ends() {
    let t0 = Instant::now();
    let mut s = Session::new(Mode::Announce("Someone is at the door".into()), limits(), t0);
    assert_eq!(s.on(t0, Input::Answered), vec![Action::Play(Prompt::Say("Someone is at the door".into()))]);
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::SpeechStarted)), vec![]);
    assert_eq!(s.on(t0, Input::Turn(TurnEvent::TurnEnded(vec![1]))), vec![]);
    assert_eq!(s.on(t0, Input::PlaybackIdle), vec![Action::HangUp(SessionEnd::Done)]);
}

#[test]
fn keys_pressed_reach_the_brain() {
    let (mut s, t0) = answered(Mode::Assistant);
    let a = s.on(t0, Input::Dtmf('5'));
    assert!(matches!(a.as_slice(), [Action::Think(t)] if t.contains("key 5")), "{a:?}");
}
