//! What the layers above SIP (HTTP, the add-on, MQTT) may ask of or change
//! in the SIP core: methods, so the core's tables stay the SIP layer's own.
use super::agent_leg::route::AgentRoute;
use super::conn_limit::{ConnPermit, Refused};
use super::core::{now_unix, SipCore};
use crate::storage::ExtensionRow;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Figures for `/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    pub registered_extensions: usize,
    pub bindings: usize,
    pub active_calls: usize,
    pub media_relays: usize,
    /// rsipstack's own tables: a steady rise under constant load is a leak.
    pub sip_dialogs: usize,
    pub sip_transactions: usize,
    pub sip_finished_transactions: usize,
    /// Finished transactions pushed out early by their bound (rsipstack patch 7).
    pub sip_finished_evicted: u64,
    pub sip_waiting_ack: usize,
    /// SUBSCRIBE dialogs held (BLF and MWI).
    pub subscriptions: usize,
    /// Received messages waiting for the SIP stack, and new requests refused
    /// (503) or dropped under overload since the start (`sip::shed`).
    pub sip_backlog: usize,
    pub sip_shed_refused: u64,
    pub sip_shed_dropped: u64,
}

impl SipCore {
    /// Put an extension into the directory REGISTER and INVITE are checked
    /// against (made or changed at run time: a Home Assistant user's).
    /// False when the directory's lock is poisoned.
    pub fn put_extension(&self, row: ExtensionRow) -> bool {
        let extension = row.extension.clone();
        let changed = match self.directory.write() {
            Ok(mut dir) => dir.insert(extension.clone(), row.clone()).as_ref() != Some(&row),
            Err(_) => return false,
        };
        if changed {
            self.bus.publish(crate::events::PbxEvent::DirectoryChanged { extension });
        }
        true
    }

    /// Before the SIP endpoint stops: registered trunks un-REGISTER (at
    /// most `within`).
    pub async fn unregister_trunks(&self, within: std::time::Duration) {
        self.trunk_tasks.unregister_all(within).await;
    }

    /// Take extensions out of the directory (their devices can no longer
    /// register or be called; existing bindings expire; their subscriptions,
    /// and those watching them, end at once). Their DND and forwards set
    /// from Home Assistant go too (the database drops its rows with the
    /// extension's, migration 0008).
    pub fn forget_extensions<'a>(self: &std::sync::Arc<Self>, extensions: impl IntoIterator<Item = &'a str>) {
        let gone: Vec<&str> = extensions.into_iter().collect();
        if let Ok(mut dir) = self.directory.write() {
            for e in &gone {
                dir.remove(*e);
                self.phone_settings.forget(e);
            }
        }
        if let Ok(mut log) = self.diagnostics.lock() {
            for e in &gone {
                log.forget_extension(e);
            }
        }
        for e in gone {
            self.subscriptions.extension_removed(self, e);
            self.bus.publish(crate::events::PbxEvent::DirectoryChanged { extension: e.to_string() });
        }
    }

    /// Take an extension out of the directory and drop its registrations at
    /// once (an administrator removed it): its devices can neither register,
    /// call nor be called from now on. The stored bindings go with the
    /// extension's row (ON DELETE CASCADE).
    pub fn remove_extension_now(self: &std::sync::Arc<Self>, extension: &str) -> usize {
        self.forget_extensions([extension]);
        self.location.lock().map(|mut l| l.remove_extension(extension).len()).unwrap_or(0)
    }

    /// Every current registration (extension, binding), for the panel.
    pub fn registrations(&self) -> Vec<(String, super::registrar::bindings::Binding)> {
        let now = now_unix();
        let Ok(l) = self.location.lock() else { return Vec::new() };
        let exts: Vec<String> = self.directory.read().map(|d| d.keys().cloned().collect()).unwrap_or_default();
        exts.into_iter().flat_map(|e| l.lookup(&e, now).into_iter().map(move |b| (e.clone(), b))).collect()
    }

    /// Every extension in the directory.
    pub fn extension_rows(&self) -> Vec<ExtensionRow> {
        self.directory.read().map(|d| d.values().cloned().collect()).unwrap_or_default()
    }

    /// The AI agent's route, once it is up.
    pub fn agent(&self) -> Option<&AgentRoute> {
        self.agent.get()
    }

    /// How devices reach us: the advertised address and the port of the
    /// listener a phone is pointed at ([`crate::config::phone_listener`]:
    /// the one the settings and the QR code name), `host:port` with IPv6 in
    /// brackets.
    pub fn sip_server(&self) -> String {
        let (_, port) = crate::config::phone_listener(&self.sip_transports());
        format!("{}:{port}", self.sip_host())
    }

    /// The advertised address as a URI's host (IPv6 in brackets).
    pub fn sip_host(&self) -> String {
        match self.advertised_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    }

    /// Each SIP listener's transport and port, in the configuration's order.
    pub fn sip_transports(&self) -> Vec<(crate::config::Transport, u16)> {
        let mut all: Vec<_> = self.listeners.iter().map(|(t, a)| (*t, a.port())).collect();
        all.dedup();
        all
    }

    /// A browser's `/ws` asks for a place (`security.max_websockets`, `_per_ip`).
    pub fn open_websocket(&self, ip: IpAddr) -> Result<ConnPermit, Refused> {
        self.websockets.try_open(ip)
    }

    /// Whether a registration is reached over this connection.
    pub fn has_flow(&self, transport: rsipstack::sip::Transport, source: &str) -> bool {
        self.location.lock().map(|l| l.has_flow(transport, source)).unwrap_or(true)
    }

    /// A panel session's `/ws` socket: requests on it are `extension`'s.
    pub fn bind_flow(&self, transport: rsipstack::sip::Transport, remote: SocketAddr, extension: &str) -> bool {
        self.flows.lock().map(|mut f| f.bind(transport, remote, extension)).unwrap_or(false)
    }

    pub fn unbind_flow(&self, transport: rsipstack::sip::Transport, remote: SocketAddr) {
        if let Ok(mut f) = self.flows.lock() {
            f.unbind(transport, remote);
        }
    }

    /// Whether API requests from `ip` are refused for wrong tokens.
    pub fn api_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.api_bans.lock().map(|b| b.is_banned(ip, now)).unwrap_or(false)
    }

    /// A wrong API token from `ip`; true when that starts the address's ban.
    pub fn api_token_failed(&self, ip: IpAddr, now: Instant) -> bool {
        self.api_bans.lock().map(|mut b| b.record_failure(ip, "", now)).is_ok_and(|s| s == super::auth::ban::BanStart::Source)
    }

    /// Each trunk's registration state, last error, provider address and last caller.
    pub fn trunk_states(&self) -> std::collections::BTreeMap<String, crate::trunk::TrunkState> {
        self.trunks.snapshot()
    }

    /// Marks message `id` read and tells MWI subscribers; its mailbox, or
    /// `None` when there is no such message.
    pub async fn mark_message_read(&self, id: i64) -> anyhow::Result<Option<String>> {
        let callee = self.store.mark_message_read(id, super::core::now_unix_ms()).await?;
        if let Some(c) = &callee {
            self.bus.publish(crate::events::PbxEvent::MessageRead { id, callee: c.clone() });
        }
        Ok(callee)
    }

    pub fn stats(&self) -> CoreStats {
        let tx = self.endpoint.get_stats();
        let (sip_backlog, sip_shed_refused, sip_shed_dropped) = self.shed.figures();
        let (registered_extensions, bindings) = self.location.lock().map(|l| (l.registered_extensions(now_unix()), l.binding_count())).unwrap_or((0, 0));
        CoreStats {
            registered_extensions,
            bindings,
            active_calls: self.calls.len(),
            media_relays: self.media.active_relays(),
            sip_dialogs: self.dialogs.len(),
            sip_transactions: tx.running_transactions,
            sip_finished_transactions: tx.finished_transactions,
            sip_finished_evicted: tx.finished_evicted,
            sip_waiting_ack: tx.waiting_ack,
            subscriptions: self.subscriptions.len(),
            sip_backlog,
            sip_shed_refused,
            sip_shed_dropped,
        }
    }
}
