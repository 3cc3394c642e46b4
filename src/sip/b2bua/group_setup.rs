//! A ring group as the call driver holds it: the members' devices, the
//! sans-IO `GroupRinger`, and which forks each member's devices are. Built
//! by `group_call::ring_plan`; driven by the `impl Call` in `group_call.rs`.
use super::group::GroupRinger;
use super::machine::ForkId;
use crate::sip::registrar::bindings::Binding;
use std::time::Duration;
use tokio::time::Instant;

/// What the call driver needs of a group.
pub struct GroupSetup {
    pub ringer: GroupRinger,
    /// Each member's devices, in the group's order.
    pub members: Vec<Vec<Binding>>,
    /// Each member's number, in the same order.
    pub numbers: Vec<String>,
    /// Rung when the time is up.
    pub on_timeout: Option<String>,
    /// Rung when every member refused.
    pub on_refused: Option<String>,
    pub ring: Duration,
}

pub(super) struct GroupRun {
    pub(super) setup: GroupSetup,
    pub(super) member_forks: Vec<Vec<ForkId>>,
    pub(super) started: Instant,
}

impl GroupRun {
    pub(super) fn new(setup: GroupSetup) -> Self {
        let member_forks = vec![Vec::new(); setup.members.len()];
        GroupRun { setup, member_forks, started: Instant::now() }
    }

    pub(super) fn ring(&self) -> Duration {
        self.setup.ring
    }

    /// Keep only the devices the call can ring (`run` may drop browsers).
    pub(super) fn retain(&mut self, keep: impl Fn(&Binding) -> bool) {
        for m in &mut self.setup.members {
            m.retain(&keep);
        }
    }
}
