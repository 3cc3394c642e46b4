//! Per-extension call forwarding (`forward:`) beside `dnd:`.
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Every call goes here; the extension does not ring.
    #[serde(default)]
    pub always: Option<String>,
    /// When every device refuses (busy), and every call while `dnd` is on.
    #[serde(default)]
    pub busy: Option<String>,
    /// When nobody answers within `no_answer_secs`, or no device is registered.
    #[serde(default)]
    pub no_answer: Option<String>,
    #[serde(default = "default_no_answer_secs")]
    pub no_answer_secs: u64,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig { always: None, busy: None, no_answer: None, no_answer_secs: default_no_answer_secs() }
    }
}

impl ForwardConfig {
    pub fn is_empty(&self) -> bool {
        self.always.is_none() && self.busy.is_none() && self.no_answer.is_none()
    }

    /// Each target with the name of its field.
    pub fn targets(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [("always", &self.always), ("busy", &self.busy), ("no_answer", &self.no_answer)].into_iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

/// What `no_answer_secs` may be, wherever it is set (file, add-on options,
/// Home Assistant): a second to an hour.
pub const NO_ANSWER_SECS: std::ops::RangeInclusive<u64> = 1..=3600;

fn default_no_answer_secs() -> u64 {
    20
}
