//! One stable o= per leg. A B2BUA is one SDP session towards each device, so
//! the device must see the same session id throughout, and a version that
//! grows only when what we send changes (RFC 3264 §8): a re-INVITE that
//! refreshes an unchanged session must not look like a new offer.

use std::net::IpAddr;

use super::Sdp;

#[derive(Debug, Clone)]
pub struct OriginKeeper {
    username: String,
    sess_id: u64,
    version: u64,
    /// What we last sent, rendered with `version`, to detect changes.
    last_sent: Option<String>,
}

impl OriginKeeper {
    pub fn new(username: &str, sess_id: u64) -> Self {
        OriginKeeper { username: username.to_string(), sess_id, version: 1, last_sent: None }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Stamps our o= on `sdp` (call after [`Sdp::rewrite_for_relay`]).
    pub fn apply(&mut self, sdp: &mut Sdp, addr: IpAddr) {
        sdp.set_origin(&self.username, self.sess_id, self.version, addr);
        let mut text = sdp.to_string();
        if self.last_sent.as_ref().is_some_and(|last| *last != text) {
            self.version += 1;
            sdp.set_origin(&self.username, self.sess_id, self.version, addr);
            text = sdp.to_string();
        }
        self.last_sent = Some(text);
    }
}
