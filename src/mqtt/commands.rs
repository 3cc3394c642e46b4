//! Commands from Home Assistant: parsed and planned without IO (a bad
//! payload becomes an error string to log, and nothing happens), then run
//! through [`CallControl`].
use super::pbx::{CallControl, LiveCall};
use crate::sip::control::ControlError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    HangUp,
    Answer,
    Dial(String),
    Dtmf(String),
    Transfer(String),
    /// "Answer with AI": the agent takes the call ringing at the extension.
    AnswerAi,
    /// The agent calls the extension and speaks the text.
    Announce(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    HangUp { call_id: String },
    /// Remote answer of the devices ringing for `ext` (the number dialled,
    /// or a ring group's member the call rings).
    Answer { call_id: String, ext: String },
    Dial { from: String, to: String },
    /// `to`: the extension whose phone gets the digits.
    Dtmf { call_id: String, to: String, digits: String },
    /// `leaving` hangs up; the other party is connected to `to`.
    Transfer { call_id: String, leaving: String, to: String },
    AnswerAi { call_id: String },
    Announce { to: String, text: String },
}

const MAX_LEN: usize = 32;
/// Longest announcement, in characters (as `sip::control::announce` allows).
pub const MAX_ANNOUNCE: usize = 2000;

/// `verb` is the last level of `<base>/ext/<id>/cmd/<verb>`.
pub fn parse(verb: &str, payload: &[u8]) -> Result<Verb, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "payload is not UTF-8".to_string())?.trim();
    match verb {
        // Buttons send "PRESS"; any payload presses.
        "hangup" => Ok(Verb::HangUp),
        "answer" => Ok(Verb::Answer),
        "dial" => target(text, "number to dial").map(Verb::Dial),
        "transfer" => target(text, "transfer target").map(Verb::Transfer),
        "dtmf" => digits(text).map(Verb::Dtmf),
        "answer_ai" => Ok(Verb::AnswerAi),
        "announce" => announcement(text).map(Verb::Announce),
        other => Err(format!("unknown command `{other}` (hangup, answer, answer_ai, dial, dtmf, transfer, announce)")),
    }
}

/// A PBX-wide command, `<base>/cmd/<verb>` with a JSON payload:
/// `announce` {"to": EXT or NUMBER, "text": "..."}, `dial` {"from": EXT, "to": EXT or NUMBER}.
pub fn parse_pbx(verb: &str, payload: &[u8]) -> Result<Action, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Announce {
        to: String,
        text: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Dial {
        from: String,
        to: String,
    }
    let json = |shape: &str| format!("payload is not the JSON {shape}");
    match verb {
        "announce" => {
            let a: Announce = serde_json::from_slice(payload).map_err(|e| format!("{} ({e})", json(r#"{"to": "...", "text": "..."}"#)))?;
            Ok(Action::Announce { to: target(a.to.trim(), "announcement target")?, text: announcement(a.text.trim())? })
        }
        "dial" => {
            let d: Dial = serde_json::from_slice(payload).map_err(|e| format!("{} ({e})", json(r#"{"from": "...", "to": "..."}"#)))?;
            let (from, to) = (target(d.from.trim(), "extension dialling")?, target(d.to.trim(), "number to dial")?);
            if from == to {
                return Err(format!("dial: extension {from} cannot call itself"));
            }
            Ok(Action::Dial { from, to })
        }
        other => Err(format!("unknown command `{other}` (announce, dial)")),
    }
}

fn target(text: &str, what: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "*#+._-".contains(c);
    if text.is_empty() {
        Err(format!("empty {what}"))
    } else if text.len() > MAX_LEN {
        Err(format!("{what} longer than {MAX_LEN} characters"))
    } else if let Some(bad) = text.chars().find(|c| !ok(*c)) {
        Err(format!("{what} `{text}` has the character `{bad}` (allowed: letters, digits, * # + . _ -)"))
    } else {
        Ok(text.to_string())
    }
}

fn announcement(text: &str) -> Result<String, String> {
    let n = text.chars().count();
    if n == 0 {
        Err("empty announcement text".into())
    } else if n > MAX_ANNOUNCE {
        Err(format!("announcement text of {n} characters (at most {MAX_ANNOUNCE})"))
    } else {
        Ok(text.to_string())
    }
}

fn digits(text: &str) -> Result<String, String> {
    let d = text.to_ascii_uppercase();
    if d.is_empty() {
        Err("no DTMF digits".into())
    } else if d.len() > MAX_LEN {
        Err(format!("more than {MAX_LEN} DTMF digits"))
    } else if let Some(bad) = d.chars().find(|c| !(c.is_ascii_digit() || "*#ABCD".contains(*c))) {
        Err(format!("`{bad}` is not a DTMF digit (0-9 * # A-D)"))
    } else {
        Ok(d)
    }
}

/// Which calls a command acts on. `calls` are the extension's live calls
/// (`sip::control::calls_of`: a ring group's member that answered or is
/// rung included), oldest first.
pub fn plan(ext: &str, verb: Verb, calls: &[LiveCall]) -> Result<Vec<Action>, String> {
    let answered: Vec<&LiveCall> = calls.iter().filter(|c| c.answered).collect();
    let one_answered = |what: &str| match answered.as_slice() {
        [c] => Ok(c.call_id.clone()),
        [] => Err(format!("{what}: extension {ext} has no answered call")),
        many => Err(format!("{what}: extension {ext} has {} answered calls, which one is ambiguous", many.len())),
    };
    // `calls` are this extension's: one it did not make that still rings
    // rings it (dialled, or as a ring group's member).
    let ringing_here = |what: &str| {
        calls
            .iter()
            .find(|c| !c.answered && c.caller != ext)
            .map(|c| c.call_id.clone())
            .ok_or_else(|| format!("{what}: nothing is ringing at extension {ext}"))
    };
    // A ring group's member only being rung is no party: its hang-up does
    // not end the call for the group (its phone declines on its own).
    let parties: Vec<&LiveCall> = calls.iter().filter(|c| c.answered || c.caller == ext || c.callee == ext).collect();
    match verb {
        Verb::HangUp if parties.is_empty() => Err(format!("hang up: extension {ext} has no live call")),
        Verb::HangUp => Ok(parties.iter().map(|c| Action::HangUp { call_id: c.call_id.clone() }).collect()),
        // Remote answer picks up this extension's ringing devices only (not
        // another member's of the same ring group).
        Verb::Answer => Ok(vec![Action::Answer { call_id: ringing_here("answer")?, ext: ext.to_string() }]),
        Verb::AnswerAi => Ok(vec![Action::AnswerAi { call_id: ringing_here("answer with AI")? }]),
        Verb::Announce(text) => Ok(vec![Action::Announce { to: ext.to_string(), text }]),
        Verb::Dial(to) if to == ext => Err(format!("dial: extension {ext} cannot call itself")),
        Verb::Dial(to) => Ok(vec![Action::Dial { from: ext.to_string(), to }]),
        // Digits go to this extension's own phone (e.g. a door opener code).
        Verb::Dtmf(digits) => Ok(vec![Action::Dtmf { call_id: one_answered("DTMF")?, to: ext.to_string(), digits }]),
        Verb::Transfer(to) => Ok(vec![Action::Transfer { call_id: one_answered("transfer")?, leaving: ext.to_string(), to }]),
    }
}

pub async fn execute<C: CallControl + ?Sized>(ctl: &C, action: &Action) -> Result<(), ControlError> {
    match action {
        Action::HangUp { call_id } => ctl.hang_up(call_id).await,
        Action::Answer { call_id, ext } => ctl.answer(call_id, ext).await,
        Action::Dial { from, to } => ctl.dial(from, to).await.map(|id| tracing::info!(call_id = %id, "MQTT dial {from} → {to}")),
        Action::Dtmf { call_id, to, digits } => ctl.send_dtmf(call_id, to, digits).await,
        Action::Transfer { call_id, leaving, to } => ctl.transfer(call_id, leaving, to).await,
        Action::AnswerAi { call_id } => ctl.answer_with_agent(call_id).await,
        Action::Announce { to, text } => {
            ctl.announce(to, text).await.map(|id| tracing::info!(call_id = %id, "MQTT announcement to {to}"))
        }
    }
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
