//! The SIP side of trunks: each registering trunk's REGISTER task
//! (`register`), its OPTIONS keep-alive (`keepalive`), calls from a
//! provider (`inbound`) and calls out to one (`outbound`), and the DNS
//! questions that find the provider's servers (`dns`, RFC 3263), and a
//! `transport: tls` trunk's verified connection (`tls`). The
//! decisions are `crate::trunk`'s; this only moves bytes.
pub mod dns;
pub mod inbound;
mod keepalive;
pub mod outbound;
mod register;
pub mod tls;

use crate::config::TrunkConfig;
use crate::config::trunks::split_server_port;
use crate::sip::core::SipCoreRef;
use crate::trunk::server::{Plan, plan};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The trunks' tasks, stopped before the SIP endpoint so that a
/// registration can still be taken back (`unregister_all`).
#[derive(Debug)]
pub struct Tasks {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// `stop` also ends with the PBX's own token (a child of it).
    pub fn new(stop: CancellationToken) -> Self {
        Tasks { stop, tracker: TaskTracker::new() }
    }

    /// Stop every trunk task; each registered trunk un-REGISTERs. Waits for
    /// them, at most `within`.
    pub async fn unregister_all(&self, within: Duration) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait()).await.is_err() {
            tracing::warn!("trunks still unregistering at shutdown; left behind");
        }
    }
}

/// A trunk's state changed: into the table (`/health`) and onto the bus,
/// so Home Assistant's trunk device shows it at once.
pub(crate) fn update(core: &super::core::SipCore, name: &str, f: impl FnOnce(&mut crate::trunk::TrunkState)) {
    core.trunks.update(name, f);
    core.bus.publish(crate::events::PbxEvent::TrunkChanged { trunk: name.to_string() });
}

/// One task per trunk with `register: true`; IP trunks only get their
/// state entry (and their provider's address, when it is an address; a
/// name is looked up at its first use).
pub fn start(core: &SipCoreRef) {
    let (cancel, tasks) = (&core.trunk_tasks.stop, &core.trunk_tasks.tracker);
    for t in &core.config.trunks {
        // The keep-alive seeing the provider back after it was down asks the
        // registration to register again at once (the network changed, or
        // the provider restarted and forgot us).
        let back_up = std::sync::Arc::new(tokio::sync::Notify::new());
        if t.keepalive_secs > 0 {
            tasks.spawn(keepalive::run(core.clone(), t.clone(), back_up.clone(), cancel.child_token()));
        }
        if t.register {
            tasks.spawn(register::run(core.clone(), t.clone(), back_up, cancel.child_token()));
        } else {
            if let Ok(Plan::Literal(addr)) = plan(&t.server, t.transport) {
                update(core, &t.name, |s| s.server = Some(addr));
            }
            tracing::info!(trunk = %t.name, inbound_hosts = ?t.inbound_hosts, "IP trunk ready (no registration)");
        }
    }
}

/// `sip:[user@]host[:port][;transport=tcp]`, host as configured (the
/// provider's domain goes into the Request-URI, To and From); the port only
/// when `server` names one (a bare name is the provider's SRV domain).
pub fn provider_uri(t: &TrunkConfig, user: Option<&str>) -> Result<rsipstack::sip::Uri, String> {
    let (host, port) = split_server_port(&t.server)?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    let transport = match t.transport {
        crate::config::Transport::Udp => "",
        crate::config::Transport::Tcp => ";transport=tcp",
        crate::config::Transport::Tls => ";transport=tls",
    };
    rsipstack::sip::Uri::try_from(format!("sip:{user}{host}{port}{transport}").as_str())
        .map_err(|e| format!("server `{}`: {e}", t.server))
}

/// The credential rsipstack answers the provider's 401/407 with.
pub fn credential(t: &TrunkConfig) -> Option<rsipstack::dialog::authenticate::Credential> {
    Some(rsipstack::dialog::authenticate::Credential {
        username: t.username.clone()?,
        password: t.password.clone()?,
        realm: None,
        auth_username: t.auth_username.clone(),
    })
}


