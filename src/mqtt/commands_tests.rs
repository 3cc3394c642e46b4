use super::*;
use async_trait::async_trait;
use std::sync::Mutex;

fn call(id: &str, caller: &str, callee: &str, answered: bool) -> LiveCall {
    LiveCall { call_id: id.into(), caller: caller.into(), callee: callee.into(), answered, ..Default::default() }
}

#[test]
fn payloads_are_validated() {
    assert_eq!(parse("hangup", b"PRESS"), Ok(Verb::HangUp));
    assert_eq!(parse("answer", b""), Ok(Verb::Answer));
    assert_eq!(parse("dial", b" 102 \n"), Ok(Verb::Dial("102".into())));
    assert_eq!(parse("transfer", b"104"), Ok(Verb::Transfer("104".into())));
    assert_eq!(parse("dtmf", b"12*#ab"), Ok(Verb::Dtmf("12*#AB".into())));
    for (verb, payload) in [
        ("dial", &b""[..]),
        ("dial", b"10 2"),
        ("dial", b"sip:102@x"),
        ("dial", &[b'1'; 33]),
        ("dtmf", b"12x"),
        ("dtmf", b""),
        ("transfer", b"a/b"),
        ("dial", &[0xff, 0xfe]),
        ("reboot", b"now"),
    ] {
        let err = parse(verb, payload).expect_err(&format!("{verb} {payload:?}"));
        assert!(!err.is_empty());
    }
}

#[test]
fn agent_payloads_are_validated() {
    assert_eq!(parse("answer_ai", b"PRESS"), Ok(Verb::AnswerAi));
    assert_eq!(parse("announce", b"  Someone is at the front door\n"), Ok(Verb::Announce("Someone is at the front door".into())));
    let max = "é".repeat(MAX_ANNOUNCE);
    assert_eq!(parse("announce", max.as_bytes()), Ok(Verb::Announce(max.clone())), "characters, not bytes");
    assert!(parse("announce", b" \n ").unwrap_err().contains("empty"));
    assert!(parse("announce", "x".repeat(MAX_ANNOUNCE + 1).as_bytes()).unwrap_err().contains("2001 characters"));
    assert!(parse("announce", &[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
}

#[test]
fn answer_with_ai_picks_the_call_ringing_at_the_extension_and_announce_targets_it() {
    let calls = [call("out", "101", "104", false), call("in1", "102", "101", false), call("up", "103", "101", true)];
    assert_eq!(plan("101", Verb::AnswerAi, &calls).unwrap(), [Action::AnswerAi { call_id: "in1".into() }]);
    let err = plan("101", Verb::AnswerAi, &[calls[0].clone(), calls[2].clone()]).unwrap_err();
    assert!(err.contains("nothing is ringing at extension 101"), "{err}");
    assert_eq!(
        plan("101", Verb::Announce("Hi".into()), &calls).unwrap(),
        [Action::Announce { to: "101".into(), text: "Hi".into() }]
    );
}

#[test]
fn hang_up_ends_every_live_call_of_the_extension() {
    let calls = [call("a", "101", "102", true), call("b", "103", "101", false)];
    let plan = plan("101", Verb::HangUp, &calls).unwrap();
    assert_eq!(plan, [Action::HangUp { call_id: "a".into() }, Action::HangUp { call_id: "b".into() }]);
    assert!(super::plan("101", Verb::HangUp, &[]).is_err());
}

#[test]
fn answer_picks_the_oldest_call_ringing_at_the_extension() {
    let calls = [call("out", "101", "104", false), call("in1", "102", "101", false), call("in2", "103", "101", false)];
    assert_eq!(plan("101", Verb::Answer, &calls).unwrap(), [Action::Answer { call_id: "in1".into(), ext: "101".into() }]);
    assert!(plan("101", Verb::Answer, &calls[..1]).is_err(), "its own outgoing call is not answered by it");
}

#[test]
fn dtmf_and_transfer_need_exactly_one_answered_call() {
    let one = [call("a", "101", "102", true), call("r", "103", "101", false)];
    assert_eq!(
        plan("101", Verb::Dtmf("1#".into()), &one).unwrap(),
        [Action::Dtmf { call_id: "a".into(), to: "101".into(), digits: "1#".into() }]
    );
    assert_eq!(
        plan("101", Verb::Transfer("104".into()), &one).unwrap(),
        [Action::Transfer { call_id: "a".into(), leaving: "101".into(), to: "104".into() }]
    );
    let two = [call("a", "101", "102", true), call("b", "103", "101", true)];
    assert!(plan("101", Verb::Dtmf("1".into()), &two).unwrap_err().contains("ambiguous"));
    assert!(plan("101", Verb::Transfer("1".into()), &[]).is_err());
}

#[test]
fn a_ring_groups_member_acts_on_the_group_call() {
    // `calls_of("102")`: group 600 rings it, then it answered.
    let ringing = [call("g", "101", "600", false)];
    assert_eq!(plan("102", Verb::AnswerAi, &ringing).unwrap(), [Action::AnswerAi { call_id: "g".into() }]);
    let err = plan("102", Verb::HangUp, &ringing).unwrap_err();
    assert!(err.contains("no live call"), "a member being rung does not end the group's call: {err}");
    // Remote answer names the member: only its own ringing devices answer.
    assert_eq!(plan("102", Verb::Answer, &ringing).unwrap(), [Action::Answer { call_id: "g".into(), ext: "102".into() }]);
    assert!(plan("101", Verb::Answer, &ringing).unwrap_err().contains("nothing is ringing"), "the caller is not rung");
    let answered = [call("g", "101", "600", true)];
    assert_eq!(plan("102", Verb::HangUp, &answered).unwrap(), [Action::HangUp { call_id: "g".into() }]);
    assert_eq!(
        plan("102", Verb::Dtmf("5".into()), &answered).unwrap(),
        [Action::Dtmf { call_id: "g".into(), to: "102".into(), digits: "5".into() }]
    );
    assert_eq!(
        plan("102", Verb::Transfer("104".into()), &answered).unwrap(),
        [Action::Transfer { call_id: "g".into(), leaving: "102".into(), to: "104".into() }]
    );
}

#[test]
fn dial_is_from_the_extension_and_not_to_itself() {
    assert_eq!(plan("101", Verb::Dial("102".into()), &[]).unwrap(), [Action::Dial { from: "101".into(), to: "102".into() }]);
    assert!(plan("101", Verb::Dial("101".into()), &[]).is_err());
}

/// Records what it was asked to do.
#[derive(Default)]
struct Fake {
    log: Mutex<Vec<String>>,
}

#[async_trait]
impl CallControl for Fake {
    fn calls_of(&self, _: &str) -> Vec<LiveCall> {
        vec![]
    }
    async fn hang_up(&self, id: &str) -> Result<(), ControlError> {
        self.log.lock().unwrap().push(format!("hangup {id}"));
        Ok(())
    }
    async fn answer(&self, id: &str, ext: &str) -> Result<(), ControlError> {
        self.log.lock().unwrap().push(format!("answer {id} {ext}"));
        Err(ControlError::NoSuchCall(id.into()))
    }
    async fn dial(&self, from: &str, to: &str) -> Result<String, ControlError> {
        self.log.lock().unwrap().push(format!("dial {from} {to}"));
        Ok("new".into())
    }
    async fn send_dtmf(&self, id: &str, to: &str, d: &str) -> Result<(), ControlError> {
        self.log.lock().unwrap().push(format!("dtmf {id} {to} {d}"));
        Ok(())
    }
    async fn transfer(&self, id: &str, leaving: &str, to: &str) -> Result<(), ControlError> {
        self.log.lock().unwrap().push(format!("transfer {id} {leaving} {to}"));
        Ok(())
    }
    async fn answer_with_agent(&self, id: &str) -> Result<(), ControlError> {
        self.log.lock().unwrap().push(format!("answer_ai {id}"));
        Ok(())
    }
    async fn announce(&self, to: &str, text: &str) -> Result<String, ControlError> {
        self.log.lock().unwrap().push(format!("announce {to} {text}"));
        Ok("ann".into())
    }
}

#[tokio::test]
async fn actions_reach_call_control() {
    let f = Fake::default();
    execute(&f, &Action::HangUp { call_id: "a".into() }).await.unwrap();
    execute(&f, &Action::Dial { from: "101".into(), to: "102".into() }).await.unwrap();
    execute(&f, &Action::Dtmf { call_id: "a".into(), to: "102".into(), digits: "5".into() }).await.unwrap();
    execute(&f, &Action::Transfer { call_id: "a".into(), leaving: "101".into(), to: "104".into() }).await.unwrap();
    assert!(execute(&f, &Action::Answer { call_id: "z".into(), ext: "102".into() }).await.is_err());
    execute(&f, &Action::AnswerAi { call_id: "r".into() }).await.unwrap();
    execute(&f, &Action::Announce { to: "101".into(), text: "Hi there".into() }).await.unwrap();
    assert_eq!(
        *f.log.lock().unwrap(),
        ["hangup a", "dial 101 102", "dtmf a 102 5", "transfer a 101 104", "answer z 102", "answer_ai r", "announce 101 Hi there"]
    );
}

#[test]
fn pbx_wide_commands_take_json_naming_their_parties() {
    assert_eq!(
        parse_pbx("announce", br#"{"to": "01511234567", "text": " The alarm went off "}"#),
        Ok(Action::Announce { to: "01511234567".into(), text: "The alarm went off".into() })
    );
    assert_eq!(parse_pbx("dial", br#"{"from": "101", "to": "0301234567"}"#), Ok(Action::Dial { from: "101".into(), to: "0301234567".into() }));
    let refused = [
        ("announce", &br#"The alarm went off"#[..], "not the JSON"),
        ("announce", br#"{"to": "0151"}"#, "not the JSON"),
        ("announce", br#"{"to": "0151", "text": "x", "extra": 1}"#, "not the JSON"),
        ("announce", br#"{"to": "0151;x", "text": "x"}"#, "character `;`"),
        ("announce", br#"{"to": "", "text": "x"}"#, "empty announcement target"),
        ("announce", br#"{"to": "0151", "text": "  "}"#, "empty announcement text"),
        ("dial", br#"{"from": "101", "to": "101"}"#, "cannot call itself"),
        ("hangup", b"{}", "unknown command `hangup`"),
    ];
    for (verb, payload, why) in refused {
        let got = parse_pbx(verb, payload);
        assert!(matches!(&got, Err(e) if e.contains(why)), "{verb} {:?}: {got:?}", String::from_utf8_lossy(payload));
    }
    let long = format!(r#"{{"to": "0151", "text": "{}"}}"#, "x".repeat(MAX_ANNOUNCE + 1));
    assert!(parse_pbx("announce", long.as_bytes()).is_err());
}
