//! How the B2BUA reaches the agent: what the SIP core keeps once the agent's
//! user agent is up (its own file, so the core does not depend on the agent
//! leg's driver).
use crate::agent::Agent;
use crate::sip::registrar::bindings::Binding;
use std::sync::Arc;

/// How the B2BUA reaches the agent.
#[derive(Clone)]
pub struct AgentRoute {
    pub extension: String,
    pub binding: Binding,
    pub service: Arc<Agent>,
}
