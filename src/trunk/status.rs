//! Each trunk's state as others see it: registration, the provider's
//! address, the last caller. Written by the trunk tasks, read by `/health`,
//! the router (which addresses are a trunk's) and Home Assistant.
use super::registration::RegStatus;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TrunkState {
    /// `None` for an IP-authenticated trunk (no REGISTER).
    pub registration: Option<RegStatus>,
    /// The provider's address in use (the SRV target or A/AAAA answer
    /// chosen, RFC 3263).
    pub server: Option<SocketAddr>,
    /// How `server` was found (`SRV _sip._udp.example.net priority 10 ...`).
    pub server_via: Option<String>,
    /// Every address the trunk's `server` resolved to (at most
    /// `server::MAX_CANDIDATES`): requests from these are the trunk's.
    pub resolved: Vec<SocketAddr>,
    pub last_caller: Option<String>,
    /// OPTIONS keep-alive: `up`, `down`, or `unknown` before the first answer;
    /// `None` with `keepalive_secs: 0`.
    pub reachable: Option<super::Reach>,
}

#[derive(Debug, Default)]
pub struct TrunkTable {
    inner: Mutex<BTreeMap<String, TrunkState>>,
}

impl TrunkTable {
    pub fn update(&self, name: &str, f: impl FnOnce(&mut TrunkState)) {
        if let Ok(mut m) = self.inner.lock() {
            f(m.entry(name.to_string()).or_default());
        }
    }

    pub fn server(&self, name: &str) -> Option<SocketAddr> {
        self.inner.lock().ok()?.get(name)?.server
    }

    /// Every address `name`'s server resolved to (empty before the first answer).
    pub fn resolved(&self, name: &str) -> Vec<SocketAddr> {
        self.inner
            .lock()
            .ok()
            .and_then(|m| m.get(name).map(|s| s.resolved.clone()))
            .unwrap_or_default()
    }

    pub fn snapshot(&self) -> BTreeMap<String, TrunkState> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
