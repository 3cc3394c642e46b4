//! JSON bodies of the state and event messages. Pure functions of their
//! inputs, so the mapping from bus events to what Home Assistant sees is
//! tested without a broker.
use super::call_state::{Call, Direction, ExtCallView};
use crate::events::{EndReason, PbxEvent};
use serde_json::{json, Value};

/// The event types an extension's event entity and device triggers carry.
pub const EVENT_TYPES: [&str; 8] = ["ringing", "answered", "ended", "missed", "rejected", "dtmf", "message", "parked"];

/// `<base>/ext/<id>/state`, retained.
pub fn ext_state(view: &ExtCallView, contacts: usize, peer_name: Option<&str>) -> Value {
    json!({
        "state": view.state,
        "ringing": view.ringing,
        "registered": contacts > 0,
        "contacts": contacts,
        "calls": view.calls,
        "call_id": view.call_id,
        "peer": view.peer,
        "peer_name": peer_name,
        "direction": view.direction,
    })
}

/// `<base>/state`, retained: the ha-pbx device's sensors.
pub fn bridge_state(registered_devices: usize, registered_extensions: usize, extensions: usize, active_calls: usize) -> Value {
    json!({
        "registered_devices": registered_devices,
        "registered_extensions": registered_extensions,
        "extensions": extensions,
        "active_calls": active_calls,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// "Front door (101)", or "101" for an extension without a name.
pub fn display(ext: &str, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} ({ext})"),
        _ => ext.to_string(),
    }
}

/// `<base>/ext/<id>/last_caller`, retained.
pub fn last_caller(call_id: &str, caller: &str, caller_name: Option<&str>, at_unix: i64) -> Value {
    json!({ "display": display(caller, caller_name), "caller": caller, "name": caller_name, "call_id": call_id, "at": at_unix })
}

/// `<base>/last_call`, retained, from an `Ended` event.
pub fn last_call(event: &PbxEvent, names: &dyn Fn(&str) -> Option<String>, at_unix: i64) -> Option<Value> {
    let PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms } = event else {
        return None;
    };
    let secs = duration_ms / 1000;
    let outcome = if *answered { format!("answered, {secs} s") } else { snake(reason) };
    let text = format!(
        "{} → {}, {outcome}",
        display(caller, names(caller).as_deref()),
        display(callee, names(callee).as_deref())
    );
    Some(json!({
        "display": text,
        "call_id": call_id,
        "caller": caller,
        "callee": callee,
        "answered": answered,
        "reason": reason,
        "duration_s": secs,
        "ended_at": at_unix,
    }))
}

fn snake(reason: &EndReason) -> String {
    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// One message for an extension's event entity and device trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtEvent {
    pub extension: String,
    pub event_type: &'static str,
    pub body: Value,
}

/// The per-extension events a bus event becomes: call events go to both
/// parties (with `direction` saying which side this extension was on), and
/// `ringing` to each member a ring group's call starts ringing, once.
/// `Missed` is skipped: an unanswered `Ended` becomes `missed`, or `rejected`
/// when the callee said busy or declined, followed by `ended`.
/// `call` is the call as known before the event: its parties (DTMF names
/// only the sender), and the ring group's member that answered it, whose
/// extension gets the call's `dtmf` and `ended` too.
pub fn ext_events(event: &PbxEvent, call: Option<&Call>) -> Vec<ExtEvent> {
    let (call_id, caller, callee, types, extra): (&str, &str, &str, Vec<&'static str>, Value) = match event {
        PbxEvent::Ringing { call_id, caller, callee } => (call_id, caller, callee, vec!["ringing"], json!({})),
        PbxEvent::Answered { call_id, caller, callee, answered_by } => (call_id, caller, callee, vec!["answered"], json!({"answered_by": answered_by})),
        PbxEvent::Ended { call_id, caller, callee, reason, answered, duration_ms } => {
            let mut types = vec![];
            if !answered {
                types.push(if matches!(reason, EndReason::Busy | EndReason::Rejected) { "rejected" } else { "missed" });
            }
            types.push("ended");
            (call_id, caller, callee, types, json!({"reason": reason, "answered": answered, "duration_ms": duration_ms}))
        }
        PbxEvent::Dtmf { call_id, from, digit } => {
            let (caller, callee) = call.map_or((from.as_str(), ""), |c| (c.caller.as_str(), c.callee.as_str()));
            (call_id, caller, callee, vec!["dtmf"], json!({"digit": digit.to_string(), "from": from}))
        }
        // A message the agent took: an event on the extension it was for.
        PbxEvent::Message { call_id, caller, callee, transcript } => (call_id, caller, callee, vec!["message"], json!({"transcript": transcript})),
        // Parked: an event on the parker's and on the parked party's extension.
        PbxEvent::Parked { call_id, slot, parker, parked } => (call_id, parker, parked, vec!["parked"], json!({"slot": slot})),
        // Hold shows in the call state sensor (on_hold), not as an event type.
        PbxEvent::RingingMembers { call_id, caller, callee, ringing } => return members_rung(call_id, caller, callee, ringing, call),
        PbxEvent::Missed { .. } | PbxEvent::Registered { .. } | PbxEvent::Unregistered { .. } | PbxEvent::Hold { .. } | PbxEvent::MessageRead { .. } | PbxEvent::DirectoryChanged { .. } | PbxEvent::TrunkChanged { .. } => return vec![],
    };
    let mut out = vec![];
    let mut sides = vec![(caller, Direction::Outbound)];
    if callee != caller && !callee.is_empty() {
        sides.push((callee, Direction::Inbound));
    }
    // A group's member or a picker answered: its extension hears of it
    // too, and of the call's key presses and end.
    let member = match event {
        PbxEvent::Answered { answered_by, .. } => Some(answered_by.as_str()),
        PbxEvent::Dtmf { .. } | PbxEvent::Ended { .. } => call.and_then(|c| c.answered_by.as_deref()),
        _ => None,
    };
    if let Some(member) = member
        && !member.is_empty()
        && !sides.iter().any(|(e, _)| *e == member)
    {
        sides.push((member, Direction::Inbound));
    }
    for event_type in types {
        for (ext, direction) in &sides {
            let mut body = json!({
                "event_type": event_type,
                "call_id": call_id,
                "caller": caller,
                "callee": callee,
                "direction": direction,
            });
            if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            out.push(ExtEvent { extension: ext.to_string(), event_type, body });
        }
    }
    out
}

/// `ringing` on the extension of each member the call now rings that it
/// had not rung before (a hunt moving on rings each member once), with the
/// number dialled as callee; none once the call is answered.
fn members_rung(call_id: &str, caller: &str, callee: &str, ringing: &[String], call: Option<&Call>) -> Vec<ExtEvent> {
    if call.is_some_and(|c| c.answered) {
        return vec![];
    }
    let new = ringing.iter().filter(|m| *m != callee && *m != caller && !call.is_some_and(|c| c.rung.contains(*m)));
    new.map(|m| ExtEvent {
        extension: m.clone(),
        event_type: "ringing",
        body: json!({"event_type": "ringing", "call_id": call_id, "caller": caller, "callee": callee, "direction": Direction::Inbound}),
    })
    .collect()
}

/// The extensions whose last caller an event makes `caller`: the one rung
/// or answering (Answered covers a phone that answered without ringing),
/// and each member a ring group's call rings.
pub fn last_caller_of<'a>(event: &'a PbxEvent, call: Option<&Call>) -> Vec<(&'a str, &'a str, &'a str)> {
    match event {
        PbxEvent::Ringing { call_id, caller, callee } | PbxEvent::Answered { call_id, caller, callee, .. } => vec![(call_id, caller, callee)],
        PbxEvent::RingingMembers { call_id, caller, callee, ringing } if !call.is_some_and(|c| c.answered) => {
            ringing.iter().filter(|m| *m != callee && *m != caller).map(|m| (call_id.as_str(), caller.as_str(), m.as_str())).collect()
        }
        _ => vec![],
    }
}

#[cfg(test)]
#[path = "payloads_tests.rs"]
mod tests;
