//! A call to a ring group, or to an extension with forwards on busy or no
//! answer (a group of one): which devices each member has (at INVITE
//! time), the `GroupRinger`'s steps carried out as forks, and the fallback
//! (the agent taking a message, an extension or a group) when nobody answered.
use super::call::{self, is_browser, Call, CallSetup};
use super::group::{GroupRinger, Step};
pub use super::group_setup::GroupSetup;
use super::machine::Input;
use crate::config::{GroupConfig, GroupStrategy, AGENT_MEMBER};
use crate::sip::agent_leg::AgentInvite;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use crate::sip::trunk::outbound::OutLeg;
use rsipstack::sip::StatusCode;
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Who rings, how, and who takes over.
pub struct Plan {
    /// The number dialled (or forwarded to).
    pub callee: String,
    pub members: Vec<String>,
    /// Also every Home Assistant user's extension.
    pub everyone: bool,
    pub strategy: GroupStrategy,
    pub ring: Duration,
    pub on_timeout: Option<String>,
    pub on_refused: Option<String>,
}

impl Plan {
    pub fn group(g: &GroupConfig) -> Plan {
        Plan {
            callee: g.extension.clone(),
            members: g.members.clone(),
            everyone: g.everyone,
            strategy: g.strategy,
            ring: Duration::from_secs(g.ring_secs),
            on_timeout: g.fallback.clone(),
            on_refused: g.fallback.clone(),
        }
    }

    /// An extension whose forwards take over on no answer or busy; without
    /// a no-answer forward it rings `ring` (the PBX's ring timeout).
    pub fn extension(ext: &str, no_answer: Option<(Duration, String)>, busy: Option<String>, ring: Duration) -> Plan {
        let (ring, on_timeout) = match no_answer {
            Some((d, t)) => (d, Some(t)),
            None => (ring, None),
        };
        Plan { callee: ext.into(), members: vec![ext.into()], everyone: false, strategy: GroupStrategy::Ringall, ring, on_timeout, on_refused: busy }
    }
}

/// The group's members by number: the listed ones, then (with `everyone`)
/// every Home Assistant user's extension; never the caller itself.
pub(super) fn member_numbers(core: &SipCoreRef, plan: &Plan, caller: &str) -> Vec<String> {
    let mut numbers: Vec<String> = plan.members.clone();
    if plan.everyone {
        let mut users: Vec<String> = core
            .directory
            .read()
            .map(|d| d.values().filter(|e| e.source == crate::storage::SOURCE_HA_USER).map(|e| e.extension.clone()).collect())
            .unwrap_or_default();
        users.sort();
        numbers.extend(users);
    }
    let mut seen = std::collections::HashSet::new();
    // A member on do-not-disturb is not rung (a group of one, the forwarding
    // extension itself, has decided before).
    // As set now: the config's `dnd`, or Home Assistant's switch.
    let dnd = |n: &str| core.phone_settings_of(n).is_some_and(|s| s.dnd);
    numbers.retain(|n| n != caller && !dnd(n) && seen.insert(n.clone()));
    numbers
}

/// A member's (or fallback's) devices; a group (as a fallback) has its
/// members' devices.
pub(super) fn devices(core: &SipCoreRef, member: &str) -> Vec<Binding> {
    if member == AGENT_MEMBER {
        return core.agent_binding().into_iter().collect();
    }
    if let Some(g) = core.config.group(member) {
        return g.members.iter().filter(|m| core.config.group(m).is_none()).flat_map(|m| devices(core, m)).collect();
    }
    core.registered_contacts(member)
}

/// `target` as a number outside that extension `by`'s forward may call
/// (the outbound routes decide as if `by` had dialled it): where it goes and
/// how it is presented, and the route's trunks to fail over to. None for the
/// house's own numbers, and (logged) for a number no route lets `by` call
/// or a trunk that cannot be reached.
async fn outside(core: &SipCoreRef, by: &str, target: &str) -> Option<OutLeg> {
    if core.is_house_number(target) {
        return None;
    }
    match crate::sip::trunk::outbound::for_forward(core, by, target).await {
        Ok(out) => Some(out),
        Err(e) => {
            tracing::warn!(extension = %by, forward = %target, "forward outside not taken: {e}");
            None
        }
    }
}

/// An INVITE to a group's number (or a forwarding extension): ring its
/// members, or go straight to the fallback when none has a device, or
/// answer 480.
pub async fn ring_plan(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, caller: String, plan: Plan, mut agent_note: AgentInvite) {
    let numbers = member_numbers(&core, &plan, &caller);
    let members: Vec<Vec<Binding>> = numbers.iter().map(|m| devices(&core, m)).collect();
    let reachable: Vec<bool> = members.iter().map(|m| !m.is_empty()).collect();
    let callee = plan.callee.clone();
    if !reachable.contains(&true) {
        // A forward to a number outside goes there at once (see `outside`).
        if let Some(target) = plan.on_timeout.as_deref()
            && let Some(out) = outside(&core, &callee, target).await
        {
            tracing::info!(%caller, %callee, fallback = %target, trunk = %out.trunk, "nobody to ring is registered: calling the forward outside");
            let (bindings, trunk, failover) = (vec![out.binding], Some(out.presented), out.failover);
            return call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff: None, agent_note, group: None, trunk, auto_answer: false, failover }).await;
        }
        let fallback = plan.on_timeout.as_deref().map(|f| (f, devices(&core, f))).filter(|(_, d)| !d.is_empty());
        let Some((target, bindings)) = fallback else {
            tracing::info!(%caller, %callee, "nobody to ring is registered");
            let mut resp = core.endpoint.make_response(&tx.original, StatusCode::TemporarilyUnavailable, None);
            crate::sip::auth::request::ensure_to_tag(&mut resp);
            let _ = tx.respond(resp).await;
            return;
        };
        tracing::info!(%caller, %callee, fallback = %target, "nobody to ring is registered: ringing the fallback");
        if target == AGENT_MEMBER || core.is_agent(target) {
            agent_note.message_for = Some(callee.clone());
        }
        return call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff: None, agent_note, group: None, trunk: None, auto_answer: false, failover: None }).await;
    }
    let ringer = GroupRinger::new(plan.strategy, reachable, plan.ring);
    let bindings: Vec<Binding> = members.iter().flatten().cloned().collect();
    tracing::info!(%caller, %callee, strategy = ?plan.strategy, "ringing in turn or together, with a fallback");
    let setup = GroupSetup { ringer, members, numbers, on_timeout: plan.on_timeout, on_refused: plan.on_refused, ring: plan.ring };
    call::run(CallSetup { core, tx, source, caller, callee, bindings, handoff: None, agent_note, group: Some(setup), trunk: None, auto_answer: false, failover: None }).await;
}

impl Call {
    /// The group's first members ring; refusals are reported, not final.
    pub(super) async fn start_group(&mut self) {
        self.step(Input::Expecting { more: true }).await;
        let steps = self.group.as_mut().map(|g| g.setup.ringer.start()).unwrap_or_default();
        self.group_steps(steps).await;
    }

    /// When the group's strategy has something to do next.
    pub(super) fn group_deadline(&self) -> Option<Instant> {
        let g = self.group.as_ref()?;
        g.setup.ringer.next_deadline().map(|d| g.started + d)
    }

    /// The deadline came; true when the fallback started ringing.
    pub(super) async fn group_time(&mut self) -> bool {
        let Some(g) = self.group.as_mut() else { return false };
        let steps = g.setup.ringer.on_time(g.started.elapsed());
        self.group_steps(steps).await
    }

    /// Every device rung so far refused; true when the fallback started.
    pub(super) async fn group_refused(&mut self) -> bool {
        let Some(g) = self.group.as_mut() else { return false };
        let steps = g.setup.ringer.on_all_failed(g.started.elapsed());
        self.group_steps(steps).await
    }

    async fn group_steps(&mut self, steps: Vec<Step>) -> bool {
        let offer = self.offer_b.clone().unwrap_or_default();
        let mut fell_back = false;
        for step in steps {
            match step {
                Step::Ring(m) => {
                    let Some(bindings) = self.group.as_ref().and_then(|g| g.setup.members.get(m).cloned()) else { continue };
                    let first = self.forks.len();
                    for b in &bindings {
                        self.start_fork(b, &offer).await;
                    }
                    let number = self.group.as_ref().and_then(|g| g.setup.numbers.get(m).cloned());
                    for id in first..self.forks.len() {
                        if let Some(slot) = self.forks.get_mut(id) {
                            slot.member = number.clone();
                        }
                    }
                    if let Some(g) = self.group.as_mut() {
                        g.member_forks[m] = (first..self.forks.len()).collect();
                    }
                    tracing::info!(call_id = %self.call_id, group = %self.callee_ext, member = m, devices = bindings.len(), "group member ringing");
                    self.step(Input::Offered { forks: bindings.len() }).await;
                }
                Step::Stop(m) => {
                    let forks = self.group.as_ref().map(|g| g.member_forks[m].clone()).unwrap_or_default();
                    for fork in forks {
                        self.step(Input::StopFork { fork }).await;
                    }
                }
                Step::Exhausted { timed_out } => {
                    let fallback = self.group.take().and_then(|g| if timed_out { g.setup.on_timeout } else { g.setup.on_refused });
                    fell_back = self.ring_fallback(fallback).await;
                    if !fell_back {
                        let give_up = if timed_out || self.machine.fork_count() == 0 { Input::RingTimeout } else { Input::Expecting { more: false } };
                        self.step(give_up).await;
                    }
                }
            }
        }
        fell_back
    }

    /// Nobody in the group answered: the agent takes a message for the
    /// group, or the fallback extension rings. False when it cannot.
    async fn ring_fallback(&mut self, fallback: Option<String>) -> bool {
        let Some(target) = fallback else { return false };
        if !self.machine.is_ringing() {
            return false;
        }
        let offer = self.offer_b.clone().unwrap_or_default();
        if target == AGENT_MEMBER || self.core.is_agent(&target) {
            return self.hand_to_agent(&offer).await;
        }
        if let Some(out) = outside(&self.core, &self.callee_ext, &target).await {
            return self.fall_back_outside(&target, out).await;
        }
        // The fallback's browsers can only be rung with the WebRTC offer the
        // group's browsers got, or one of the preview fan-out's (each is made
        // as it is rung); a group of browsers only hands over a plain offer.
        let plain = self.media.is_browser(self.fork_leg());
        let fan_out = self.preview == Some(super::preview::Mode::FanOut);
        let mut bindings = devices(&self.core, &target);
        if plain || (self.offer_browsers.is_none() && !fan_out) {
            bindings.retain(|b| !is_browser(b));
        }
        if bindings.is_empty() {
            tracing::info!(call_id = %self.call_id, %target, "group fallback not registered");
            return false;
        }
        let offer = if plain {
            match self.media.callee_plain_offer(self.caller_leg).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, error = %e, "group fallback failed: no plain offer");
                    return false;
                }
            }
        } else {
            offer
        };
        tracing::info!(call_id = %self.call_id, group = %self.callee_ext, %target, "nobody in the group answered: ringing the fallback");
        self.step(Input::HandOff { forks: bindings.len() }).await;
        let first = self.forks.len();
        for b in &bindings {
            self.start_fork(b, &offer).await;
        }
        // An extension as the fallback: it is who answers (a group's member is not known).
        if self.core.extension_exists(&target) {
            for id in first..self.forks.len() {
                if let Some(slot) = self.forks.get_mut(id) {
                    slot.member = Some(target.clone());
                }
            }
        }
        self.offer_b = Some(offer);
        true
    }

    /// The fallback is a number outside: it rings over its trunk (the
    /// offer made for that trunk, SRTP included), and the route's next
    /// trunks take over when the provider does not take the call.
    async fn fall_back_outside(&mut self, target: &str, out: OutLeg) -> bool {
        let offer = match self.toward_trunk(out.presented).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, %target, trunk = %out.trunk, error = %e, "group fallback outside failed: no offer for the trunk");
                return false;
            }
        };
        tracing::info!(call_id = %self.call_id, group = %self.callee_ext, %target, trunk = %out.trunk, "nobody in the group answered: calling the fallback outside");
        self.step(Input::HandOff { forks: 1 }).await;
        self.failover = out.failover;
        if self.failover.is_some() {
            // a failure at the provider is not the end: the next trunk may take it
            self.step(Input::Expecting { more: true }).await;
        }
        self.start_fork(&out.binding, &offer).await;
        true
    }
}
