//! What the bridge needs from the PBX, as two small traits: reading the
//! directory and registrations (`PbxView`) and acting on calls
//! (`CallControl`). The bridge is generic over them so its tests run on fakes.
use crate::sip::control::{self, ControlError};
use crate::phone_settings::{Change, Settings};
use crate::sip::core::SipCoreRef;
use async_trait::async_trait;

/// An extension as the directory knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionInfo {
    pub extension: String,
    pub name: Option<String>,
    /// `kind: doorbell` in the config.
    pub doorbell: bool,
    /// DTMF digits of its "Open door" button.
    pub door_open: Option<String>,
}

/// A live call as the call registry knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveCall {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub answered: bool,
    /// The ring group's member (or fallback, or picker) that answered, when
    /// not the callee.
    pub answered_by: Option<String>,
    /// The extensions besides the callee that the call rings now (a ring
    /// group's members); empty once answered.
    pub ringing: Vec<String>,
}

/// A SIP trunk as Home Assistant sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkInfo {
    pub name: String,
    /// `registered`, `registering` or `failed`; `None`: an IP trunk (no REGISTER).
    pub registration: Option<String>,
    pub last_error: Option<String>,
    /// From the OPTIONS keep-alive (`Unknown` before its first answer);
    /// `None`: no keep-alive.
    pub reachable: Option<crate::trunk::Reach>,
    pub last_caller: Option<String>,
    /// The provider's address as last resolved.
    pub server: Option<String>,
}

pub trait PbxView: Send + Sync + 'static {
    fn extensions(&self) -> Vec<ExtensionInfo>;
    /// The configured trunks and their state, by name.
    fn trunks(&self) -> Vec<TrunkInfo> {
        vec![]
    }
    /// Registered contacts (devices) of an extension.
    fn contacts(&self, extension: &str) -> usize;
    fn live_calls(&self) -> Vec<LiveCall>;
    /// Whether the AI agent runs (its entities are only offered then).
    fn has_agent(&self) -> bool;
}

#[async_trait]
pub trait CallControl: Send + Sync + 'static {
    /// Calls of an extension, as caller or callee.
    fn calls_of(&self, extension: &str) -> Vec<LiveCall>;
    async fn hang_up(&self, call_id: &str) -> Result<(), ControlError>;
    /// Remote answer of the devices ringing for `extension` in call `call_id`.
    async fn answer(&self, call_id: &str, extension: &str) -> Result<(), ControlError>;
    /// Returns the new call's id.
    async fn dial(&self, from: &str, to: &str) -> Result<String, ControlError>;
    /// Send `digits` to extension `to`'s device in call `call_id`.
    async fn send_dtmf(&self, call_id: &str, to: &str, digits: &str) -> Result<(), ControlError>;
    /// Extension `leaving` hangs up; the other party is connected to `to`.
    async fn transfer(&self, call_id: &str, leaving: &str, to: &str) -> Result<(), ControlError>;
    /// The AI agent takes the ringing call `call_id` (a message for the callee).
    async fn answer_with_agent(&self, call_id: &str) -> Result<(), ControlError>;
    /// The AI agent calls `extension` and speaks `text`. Returns the call's id.
    async fn announce(&self, extension: &str, text: &str) -> Result<String, ControlError>;
}

/// Do-not-disturb and forwards, read and changed from Home Assistant.
#[async_trait]
pub trait SettingsControl: Send + Sync + 'static {
    /// None: not an extension.
    fn settings(&self, extension: &str) -> Option<Settings>;
    /// Checks, stores and applies `change`; the error names the field.
    async fn change_setting(&self, extension: &str, change: Change) -> Result<Settings, String>;
}

#[async_trait]
impl SettingsControl for SipCoreRef {
    fn settings(&self, extension: &str) -> Option<Settings> {
        self.phone_settings_of(extension)
    }
    async fn change_setting(&self, extension: &str, change: Change) -> Result<Settings, String> {
        crate::sip::settings::change(self, extension, change).await
    }
}

fn live(c: crate::sip::b2bua::registry::CallInfo) -> LiveCall {
    LiveCall { call_id: c.call_id, caller: c.caller, callee: c.callee, answered: c.answered, answered_by: c.answered_by, ringing: c.ringing }
}

impl PbxView for SipCoreRef {
    fn extensions(&self) -> Vec<ExtensionInfo> {
        let dir = self.extension_rows();
        dir.into_iter()
            .map(|r| {
                let cfg = self.config.extension(&r.extension);
                let doorbell = cfg.is_some_and(|c| c.kind == crate::config::ExtensionKind::Doorbell);
                let door_open = cfg.and_then(|c| c.door_open.clone());
                ExtensionInfo { extension: r.extension, name: r.name, doorbell, door_open }
            })
            .collect()
    }
    fn contacts(&self, extension: &str) -> usize {
        self.registered_contacts(extension).len()
    }
    fn live_calls(&self) -> Vec<LiveCall> {
        control::active_calls(self).into_iter().map(live).collect()
    }
    fn has_agent(&self) -> bool {
        self.agent().is_some()
    }
    fn trunks(&self) -> Vec<TrunkInfo> {
        let states = self.trunk_states();
        self.config
            .trunks
            .iter()
            .map(|t| {
                let s = states.get(&t.name).cloned().unwrap_or_default();
                TrunkInfo {
                    name: t.name.clone(),
                    // a registering trunk before its first attempt is `registering`
                    registration: t.register.then(|| s.registration.as_ref().map_or("registering", |r| r.state).to_string()),
                    last_error: s.registration.and_then(|r| r.last_error),
                    reachable: (t.keepalive_secs > 0).then(|| s.reachable.unwrap_or(crate::trunk::Reach::Unknown)),
                    last_caller: s.last_caller,
                    server: s.server.map(|a| a.to_string()),
                }
            })
            .collect()
    }
}

#[async_trait]
impl CallControl for SipCoreRef {
    fn calls_of(&self, extension: &str) -> Vec<LiveCall> {
        control::calls_of(self, extension).into_iter().map(live).collect()
    }
    async fn hang_up(&self, call_id: &str) -> Result<(), ControlError> {
        control::hang_up(self, call_id)
    }
    async fn answer(&self, call_id: &str, extension: &str) -> Result<(), ControlError> {
        control::answer(self, call_id, Some(extension))
    }
    async fn dial(&self, from: &str, to: &str) -> Result<String, ControlError> {
        control::dial(self, from, to).await
    }
    async fn send_dtmf(&self, call_id: &str, to: &str, digits: &str) -> Result<(), ControlError> {
        control::send_dtmf(self, call_id, to, digits)
    }
    async fn transfer(&self, call_id: &str, leaving: &str, to: &str) -> Result<(), ControlError> {
        control::transfer(self, call_id, leaving, to)
    }
    async fn answer_with_agent(&self, call_id: &str) -> Result<(), ControlError> {
        control::answer_with_agent(self, call_id)
    }
    async fn announce(&self, extension: &str, text: &str) -> Result<String, ControlError> {
        control::announce(self, extension, text).await
    }
}
