//! Ring groups: one number that rings several extensions (and the agent).
use serde::Deserialize;

/// How a group rings its members.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupStrategy {
    /// Every member at once; the first answer wins.
    #[default]
    Ringall,
    /// One member after the other, in the listed order: each rings
    /// `ring_secs / n` (the last until `ring_secs` is up); a member that is
    /// busy, refuses or has no device registered is passed over at once.
    Hunt,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The number dialled to ring the group (not an extension's number).
    pub extension: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Extensions, or `agent` for the AI agent.
    #[serde(default)]
    pub members: Vec<String>,
    /// Also every Home Assistant user's extension (add-on mode), in the
    /// order of their numbers, after the listed members.
    #[serde(default)]
    pub everyone: bool,
    #[serde(default)]
    pub strategy: GroupStrategy,
    /// How long the group rings before the fallback (or 480 for the caller).
    #[serde(default = "default_group_ring")]
    pub ring_secs: u64,
    /// Who gets the call when nobody answered or everyone was busy: `agent`
    /// (it takes a message for the group) or an extension. None: the caller
    /// gets 480 (486 when every member was busy).
    #[serde(default)]
    pub fallback: Option<String>,
    /// Paging: every member's SIP devices are rung at once with the
    /// auto-answer headers, and the caller's audio reaches each that
    /// answered, one way (see `sip::b2bua::page`). `strategy` and
    /// `fallback` do not apply; `ring_secs` is how long devices may take to answer.
    #[serde(default)]
    pub page: bool,
}

/// The member (and fallback) name that stands for the AI agent.
pub const AGENT_MEMBER: &str = "agent";

fn default_group_ring() -> u64 {
    30
}
