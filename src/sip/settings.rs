//! The PBX's side of run-time DND and forwards ([`crate::phone_settings`]):
//! the config file's values as defaults, which numbers a forward may go to,
//! and a change stored first, then applied.
use crate::config::{ForwardConfig, AGENT_MEMBER};
use crate::phone_settings::{self, Change, Settings};
use crate::sip::core::{now_unix_ms, SipCore};

impl SipCore {
    /// The config file's DND and forwards of `ext`; an extension of the
    /// directory alone (a Home Assistant user's) has none. None: no extension.
    fn setting_defaults(&self, ext: &str) -> Option<Settings> {
        if let Some(e) = self.config.extension(ext) {
            return Some(Settings { dnd: e.dnd, forward: e.forward.clone() });
        }
        self.directory.read().ok()?.contains_key(ext).then(Settings::default)
    }

    /// What `ext` does with its calls now (None: not an extension).
    pub fn phone_settings_of(&self, ext: &str) -> Option<Settings> {
        let defaults = self.setting_defaults(ext)?;
        Some(self.phone_settings.effective(ext, defaults))
    }

    /// Forwards and DND of `number` for [`super::b2bua::forward::resolve`].
    /// A forward set earlier to a number that is gone since (an extension
    /// removed) is not followed: the extension rings as without it.
    pub fn route_settings(&self, number: &str) -> Option<(ForwardConfig, bool)> {
        let mut s = self.phone_settings_of(number)?;
        for (field, slot) in [("forward_always", &mut s.forward.always), ("forward_busy", &mut s.forward.busy), ("forward_no_answer", &mut s.forward.no_answer)] {
            if let Some(t) = slot.as_deref()
                && !self.is_forward_target(number, t)
            {
                tracing::warn!(extension = %number, field, target = %t, "forward to a number that no longer exists ignored");
                *slot = None;
            }
        }
        Some((s.forward, s.dnd))
    }

    /// What `ext`'s forward may name: an extension, a group, the agent, or a
    /// number outside that an outbound route lets `ext` call.
    pub fn is_forward_target(&self, ext: &str, number: &str) -> bool {
        self.is_house_number(number) || crate::trunk::routes::allows(&self.config.outbound_routes, ext, number)
    }

    /// One of the house's own numbers: an extension (configured or stored),
    /// a group, or the agent (its extension or the `agent` member name).
    pub fn is_house_number(&self, number: &str) -> bool {
        let agent = self.config.agent.as_ref().is_some_and(|a| number == AGENT_MEMBER || number == a.extension);
        agent || self.extension_exists(number) || self.config.extension(number).is_some() || self.config.group(number).is_some()
    }
}

/// Checks `change` for extension `ext`, stores it, then applies it; the
/// settings after it. The error names the field and says why.
pub async fn change(core: &SipCore, ext: &str, change: Change) -> Result<Settings, String> {
    if core.setting_defaults(ext).is_none() {
        return Err(format!("{}: there is no extension {ext}", change.field()));
    }
    phone_settings::check(ext, &change, |n| core.is_forward_target(ext, n))?;
    // One change at a time: stored, then applied, in the same order.
    let _writing = core.phone_settings.writing.lock().await;
    let (field, value) = change.to_row();
    core.store.set_phone_setting(ext, field, &value, now_unix_ms()).await.map_err(|e| format!("{field}: not stored ({e:#}), nothing changed"))?;
    core.phone_settings.apply(ext, change);
    tracing::info!(extension = %ext, field, value = %value, "phone setting changed");
    Ok(core.phone_settings_of(ext).unwrap_or_default())
}
