//! Why a command on calls (from MQTT, the HTTP API or the agent) failed.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    NoSuchCall(String),
    NoSuchExtension(String),
    NotRegistered(String),
    BadArgument(String),
    /// Valid, but the devices involved cannot do it.
    NotPossible(String),
    /// Not allowed (a number outside that no outbound route lets this extension call).
    Forbidden(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NoSuchCall(id) => write!(f, "no live call with id `{id}`"),
            ControlError::NoSuchExtension(e) => write!(f, "`{e}` is not an extension"),
            ControlError::NotRegistered(e) => write!(f, "extension {e} has no registered device"),
            ControlError::BadArgument(why) => write!(f, "{why}"),
            ControlError::NotPossible(why) | ControlError::Forbidden(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ControlError {}
