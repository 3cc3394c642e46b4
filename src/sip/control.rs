//! Commands from outside SIP (MQTT, the HTTP API, the AI agent) on calls.
use super::b2bua::registry::{CallInfo, Command, TransferLeaving};
use super::core::{SipCore, SipCoreRef};
pub use super::control_error::ControlError;

pub fn active_calls(core: &SipCore) -> Vec<CallInfo> {
    core.calls.list()
}

/// End a call: BYE both legs if answered, CANCEL and 487 if still ringing.
pub fn hang_up(core: &SipCore, call_id: &str) -> Result<(), ControlError> {
    if core.calls.command(call_id, Command::HangUp) {
        Ok(())
    } else {
        Err(ControlError::NoSuchCall(call_id.to_string()))
    }
}

/// Click-to-dial: ring `from`; when it answers, ring `to` and connect them.
/// Returns the call id as soon as `from` is ringing.
pub async fn dial(core: &SipCoreRef, from: &str, to: &str) -> Result<String, ControlError> {
    super::b2bua::originate::dial(core.clone(), from, to).await
}

/// Send DTMF digits to extension `to`'s device in a live, answered call
/// (SIP INFO application/dtmf-relay). `to` must be a party of the call (the
/// ring group's member that answered it is).
pub fn send_dtmf(core: &SipCore, call_id: &str, to: &str, digits: &str) -> Result<(), ControlError> {
    if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
        return Err(ControlError::BadArgument(format!("`{digits}` is not 1-32 DTMF digits (0-9, *, #, A-D)")));
    }
    let call = live_call(core, call_id)?;
    let Some(to) = call.party(to) else {
        return Err(ControlError::BadArgument(format!("extension {to} is not in call {call_id}")));
    };
    if !call.answered {
        return Err(ControlError::BadArgument(format!("call {call_id} is not answered yet")));
    }
    core.calls.command(call_id, Command::Dtmf { to, digits: digits.to_string() });
    Ok(())
}

/// Blind transfer: extension `leaving` (a party of the answered call, the
/// ring group's member that answered it included) is hung up and the other party is connected to extension `to`.
pub fn transfer(core: &SipCore, call_id: &str, leaving: &str, to: &str) -> Result<(), ControlError> {
    if !core.extension_exists(to) {
        return Err(ControlError::NoSuchExtension(to.to_string()));
    }
    if core.registered_contacts(to).is_empty() {
        return Err(ControlError::NotRegistered(to.to_string()));
    }
    let call = live_call(core, call_id)?;
    let Some(leaving) = call.party(leaving) else {
        return Err(ControlError::BadArgument(format!("extension {leaving} is not in call {call_id}")));
    };
    if call.involves(to) {
        return Err(ControlError::BadArgument(format!("extension {to} is already in call {call_id}")));
    }
    if !call.answered {
        return Err(ControlError::BadArgument(format!("call {call_id} is not answered yet")));
    }
    match &call.transfer {
        TransferLeaving::Either => {}
        TransferLeaving::Only(ext) if *ext == leaving => {}
        TransferLeaving::Only(ext) => {
            return Err(ControlError::NotPossible(format!(
                "in call {call_id} extension {ext} talks from the dashboard on its own WebRTC bridge, which cannot be handed to another party: only {ext} can leave by transfer"
            )));
        }
        TransferLeaving::Neither => {
            return Err(ControlError::NotPossible(format!(
                "call {call_id} is between two dashboard phones, each on its own WebRTC bridge: a blind transfer of it is not possible"
            )));
        }
    }
    core.calls.command(call_id, Command::Transfer { leaving, to: to.to_string() });
    Ok(())
}

/// Answer a ringing call on the callee's behalf: the devices that offered
/// remote answer in their ringing response (BroadSoft's `Allow-Events: talk`,
/// found on Yealink, Polycom, Snom, Grandstream and others) get an in-dialog
/// `NOTIFY` with `Event: talk` and pick up as if the user had. With `ext`
/// (an MQTT command of that extension) only the devices ringing for it: the
/// number dialled, or a ring group's member the call rings now; without,
/// every one that offered it.
pub fn answer(core: &SipCore, call_id: &str, ext: Option<&str>) -> Result<(), ControlError> {
    let call = live_call(core, call_id)?;
    if call.answered {
        return Err(ControlError::BadArgument(format!("call {call_id} is already answered")));
    }
    if let Some(ext) = ext
        && !call.rings(ext)
    {
        return Err(ControlError::BadArgument(format!("call {call_id} does not ring extension {ext}")));
    }
    let offered = match ext {
        Some(ext) => call.remote_answer.iter().any(|e| e == ext),
        None => !call.remote_answer.is_empty(),
    };
    if !offered {
        return Err(ControlError::NotPossible(format!(
            "no device ringing for {} in call {call_id} offers remote answer (Allow-Events: talk)",
            ext.unwrap_or(&call.callee)
        )));
    }
    core.calls.command(call_id, Command::Answer { ext: ext.map(str::to_string) });
    Ok(())
}

/// "Answer with AI": a ringing call stops ringing and the AI agent takes it
/// (a message for the callee).
pub fn answer_with_agent(core: &SipCore, call_id: &str) -> Result<(), ControlError> {
    if core.agent.get().is_none() {
        return Err(ControlError::NotPossible("the AI agent is not configured (agent: section)".into()));
    }
    let call = live_call(core, call_id)?;
    if call.answered {
        return Err(ControlError::BadArgument(format!("call {call_id} is already answered")));
    }
    core.calls.command(call_id, Command::HandToAgent);
    Ok(())
}

/// The AI agent calls `to` and speaks `text`, then hangs up. `to` is an
/// extension, or a number outside that an outbound route lets the agent's
/// extension call (the route lists it in `extensions`).
pub async fn announce(core: &SipCoreRef, to: &str, text: &str) -> Result<String, ControlError> {
    let Some(agent) = core.agent.get().map(|a| a.extension.clone()) else {
        return Err(ControlError::NotPossible("the AI agent is not configured (agent: section)".into()));
    };
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(ControlError::BadArgument("announcement text must be 1-2000 characters".into()));
    }
    let note = crate::sip::agent_leg::AgentInvite { announce: Some(text.to_string()), ..Default::default() };
    if core.extension_exists(to) {
        super::b2bua::originate::dial_with(core.clone(), to, &agent, note).await
    } else {
        super::b2bua::originate::dial_out_first(core.clone(), to, &agent, note).await
    }
}

/// Calls of an extension (see `CallInfo::involves`: a ring group's member
/// that answered or is rung included), newest first is not guaranteed.
pub fn calls_of(core: &SipCore, extension: &str) -> Vec<CallInfo> {
    core.calls.list().into_iter().filter(|c| c.involves(extension)).collect()
}

fn live_call(core: &SipCore, call_id: &str) -> Result<CallInfo, ControlError> {
    core.calls.get(call_id).ok_or_else(|| ControlError::NoSuchCall(call_id.to_string()))
}
