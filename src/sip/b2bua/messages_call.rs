//! The messages code (`feature_codes.messages`, `*97`): the caller is put
//! through to the AI agent, which reads the caller's new messages out (who
//! called, when, what they said) with its text-to-speech, as it speaks an
//! announcement. The messages read out are marked read once the call was
//! answered and has ended, which turns the phone's message lamp (MWI) off.
//!
//! `readout` decides what is said (pure, unit-tested); `handle` only looks
//! the messages up, rings the agent and marks them read.
use super::call::{self, CallSetup};
use crate::events::PbxEvent;
use crate::sip::agent_leg::AgentInvite;
use super::invite::reply;
use crate::sip::core::SipCoreRef;
use crate::storage::MessageRecord;
use rsipstack::sip::{HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

/// At most this many messages are read out in one call (the rest stay new,
/// and the caller is told how many are left).
pub const MAX_READ_OUT: usize = 5;
/// A transcript longer than this is cut (at a word) in the readout.
const MAX_TRANSCRIPT_CHARS: usize = 300;

/// What the agent says: how many new messages there are, then each one read
/// out, oldest first. `total` counts every new message (`msgs` may be fewer);
/// `now` and the messages' times are in the same zone; `name_of` gives an
/// extension's name. The text stays under the announcement limit (2000
/// characters): at most MAX_READ_OUT messages of at most MAX_TRANSCRIPT_CHARS.
pub fn readout(
    msgs: &[MessageRecord],
    total: usize,
    now: &jiff::Zoned,
    name_of: &dyn Fn(&str) -> Option<String>,
) -> String {
    if msgs.is_empty() {
        return "You have no new messages.".into();
    }
    let mut text = match total {
        1 => "You have one new message.".to_string(),
        n => format!("You have {n} new messages."),
    };
    for (i, m) in msgs.iter().enumerate() {
        let who = match name_of(&m.caller) {
            Some(name) if !name.trim().is_empty() => format!("{}, {}", name.trim(), m.caller),
            _ if m.caller.is_empty() => "an unknown caller".into(),
            _ => m.caller.clone(),
        };
        let when = spoken_time(m.at, now);
        let said = cut(m.transcript.trim(), MAX_TRANSCRIPT_CHARS);
        let said = if said.is_empty() {
            "no words were recognised".to_string()
        } else {
            said
        };
        let label = if msgs.len() == 1 {
            "The message".to_string()
        } else {
            format!("Message {}", i + 1)
        };
        text.push_str(&format!(" {label}, from {who}, {when}: {said}"));
        if !text.ends_with(['.', '!', '?']) {
            text.push('.');
        }
    }
    let left = total.saturating_sub(msgs.len());
    match left {
        0 => text.push_str(" End of messages."),
        1 => text.push_str(" One more message is waiting: dial again to hear it."),
        n => text.push_str(&format!(
            " {n} more messages are waiting: dial again to hear them."
        )),
    }
    text
}

/// "today at 14:05", "yesterday at 9:30", "on Tuesday, December 1 at 18:00".
fn spoken_time(at_ms: i64, now: &jiff::Zoned) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return "at an unknown time".into();
    };
    let at = ts.to_zoned(now.time_zone().clone());
    let clock = format!("{}:{:02}", at.hour(), at.minute());
    let (day, today) = (at.date(), now.date());
    if day == today {
        format!("today at {clock}")
    } else if today.yesterday().is_ok_and(|y| y == day) {
        format!("yesterday at {clock}")
    } else {
        format!("on {} at {clock}", at.strftime("%A, %B %-d"))
    }
}

/// At most `max` characters, cut after the last whole word, with "...".
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    let head = head
        .rsplit_once(' ')
        .map_or(head.as_str(), |(h, _)| h)
        .trim_end_matches([',', ';', ':']);
    format!("{head}...")
}

/// The caller dialled the messages code.
pub async fn handle(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, caller: String) {
    let (Some(agent), Some(binding)) = (
        core.config.agent.as_ref().map(|a| a.extension.clone()),
        core.agent_binding(),
    ) else {
        tracing::info!(%caller, "messages code refused with 480: the AI agent reads messages out, and it is not configured (agent: section) or not running");
        return reply(&core, &mut tx, StatusCode::TemporarilyUnavailable).await;
    };
    let boxes = crate::sip::subscriptions::notifier::mailboxes(&core, &caller);
    let (msgs, total) = match core.store.new_messages(&boxes, MAX_READ_OUT).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), %caller, "messages code: messages could not be read; 500");
            return reply(&core, &mut tx, StatusCode::ServerInternalError).await;
        }
    };
    let name_of = |n: &str| core.extension(n).and_then(|e| e.name);
    let text = readout(&msgs, total, &jiff::Zoned::now(), &name_of);
    let call_id = tx
        .original
        .call_id_header()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    tracing::info!(%caller, %call_id, new = total, read_out = msgs.len(), "messages code: the agent reads the new messages out");
    let mut events = core.bus.subscribe();
    let agent_note = AgentInvite {
        announce: Some(text),
        ..Default::default()
    };
    let setup = CallSetup {
        core: core.clone(),
        tx,
        source,
        caller: caller.clone(),
        callee: agent,
        bindings: vec![binding],
        handoff: None,
        agent_note,
        group: None,
        trunk: None,
        auto_answer: false,
        failover: None,
    };
    call::run(setup).await;
    // The call has ended; its Ended event was published before `run` returned.
    let mut answered = false;
    loop {
        match events.try_recv() {
            Ok(PbxEvent::Ended {
                call_id: c,
                answered: a,
                ..
            }) if c == call_id => {
                answered = a;
                break;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    if !answered {
        tracing::info!(%caller, %call_id, "messages code: the call was not answered; the messages stay new");
        return;
    }
    for m in &msgs {
        if let Err(e) = core.mark_message_read(m.id).await {
            tracing::warn!(error = %format!("{e:#}"), id = m.id, "messages code: message not marked read");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, caller: &str, transcript: &str, at: &jiff::Zoned) -> MessageRecord {
        MessageRecord {
            id,
            call_id: format!("c{id}"),
            caller: caller.into(),
            callee: "102".into(),
            transcript: transcript.into(),
            at: at.timestamp().as_millisecond(),
            read_at: None,
        }
    }

    fn now() -> jiff::Zoned {
        "2026-12-04T15:30:00[Europe/Berlin]".parse().unwrap()
    }

    fn names(n: &str) -> Option<String> {
        (n == "101").then(|| "Front door".to_string())
    }

    #[test]
    fn no_messages() {
        assert_eq!(readout(&[], 0, &now(), &names), "You have no new messages.");
    }

    #[test]
    fn one_message_names_the_caller_and_the_time() {
        let at: jiff::Zoned = "2026-12-04T14:05:00[Europe/Berlin]".parse().unwrap();
        let text = readout(
            &[msg(1, "101", "The parcel is at the door", &at)],
            1,
            &now(),
            &names,
        );
        assert_eq!(
            text,
            "You have one new message. The message, from Front door, 101, today at 14:05: The parcel is at the door. End of messages."
        );
    }

    #[test]
    fn several_messages_in_order_with_the_days_and_what_is_left() {
        let y: jiff::Zoned = "2026-12-03T09:30:00[Europe/Berlin]".parse().unwrap();
        let old: jiff::Zoned = "2026-12-01T18:00:00[Europe/Berlin]".parse().unwrap();
        let text = readout(
            &[
                msg(1, "+4930123", "Call me back!", &old),
                msg(2, "", "", &y),
            ],
            4,
            &now(),
            &names,
        );
        assert_eq!(
            text,
            "You have 4 new messages. Message 1, from +4930123, on Tuesday, December 1 at 18:00: Call me back! \
             Message 2, from an unknown caller, yesterday at 9:30: no words were recognised. \
             2 more messages are waiting: dial again to hear them."
        );
    }

    #[test]
    fn long_transcripts_are_cut_and_the_whole_stays_under_the_announcement_limit() {
        let at = now();
        let long = "word ".repeat(1000);
        let msgs: Vec<_> = (0..MAX_READ_OUT as i64)
            .map(|i| msg(i, "101", &long, &at))
            .collect();
        let text = readout(&msgs, 100, &now(), &names);
        assert!(
            text.chars().count() <= 2000,
            "{} characters",
            text.chars().count()
        );
        assert!(text.contains("word..."), "{text}");
        assert!(
            text.ends_with("95 more messages are waiting: dial again to hear them."),
            "{text}"
        );
    }
}
