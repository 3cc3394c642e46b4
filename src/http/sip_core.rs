//! SIP Core's settings (the sip-hass-card integration), shared by the
//! add-on's ingress panel (Home Assistant users) and the standalone panel's
//! Diagnostics page (the extensions of the directory).
use serde::Serialize;

/// SIP Core's settings (sip-hass-card's `SIPCoreConfig`); only the keys
/// the PBX knows. The card builds its WebSocket URL from the
/// `text.asterisk_addon_ingress_entry` state, which the add-on keeps set;
/// `custom_wss_url` is its fallback when that state is missing.
#[derive(Debug, Serialize, PartialEq)]
pub struct SipCoreConfig {
    pub custom_wss_url: String,
    pub users: Vec<SipCoreUser>,
}

/// One of SIP Core's `users`: the card picks the one whose `ha_username`
/// equals the logged-in user's `hass.user.name`, the display name.
#[derive(Debug, Serialize, PartialEq)]
pub struct SipCoreUser {
    pub ha_username: String,
    pub display_name: String,
    pub extension: String,
    pub password: String,
}
