//! State shared by every SIP handler: directory, location service, auth, media.
use super::auth::ban::BanList;
use super::auth::nonces::NonceTable;
use super::registrar::bindings::{BindingTable, Limits};
use crate::config::{Config, Transport};
use crate::events::EventBus;
use crate::media::MediaEngine;
use crate::storage::{BindingWriter, ExtensionRow, Store};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct SipCore {
    pub config: Arc<Config>,
    pub(in crate::sip) endpoint: EndpointInnerRef,
    pub(in crate::sip) dialogs: Arc<DialogLayer>,
    pub(in crate::sip) directory: RwLock<HashMap<String, ExtensionRow>>,
    pub(in crate::sip) location: Mutex<BindingTable>,
    pub(in crate::sip) nonces: Mutex<NonceTable>,
    pub(in crate::sip) bans: Arc<Mutex<BanList>>,
    /// Per-source request rate limit (floods).
    pub(in crate::sip) flood: Arc<Mutex<crate::sip::auth::flood::FloodLimiter>>,
    /// Wrong API tokens, per client address (same policy as SIP bans).
    pub(in crate::sip) api_bans: Mutex<BanList>,
    pub store: Store,
    pub(in crate::sip) binding_writer: BindingWriter,
    pub bus: EventBus,
    pub(in crate::sip) media: MediaEngine,
    pub(in crate::sip) calls: super::b2bua::registry::CallRegistry,
    /// Parked calls by slot (`park.slots`: bounded by their number).
    pub(in crate::sip) parking: Mutex<super::b2bua::park::Lot>,
    pub(in crate::sip) limits: Limits,
    /// The address we name ourselves by in Contact.
    pub(in crate::sip) advertised_ip: IpAddr,
    /// Listen address per transport, first one wins.
    pub(in crate::sip) listeners: Vec<(Transport, SocketAddr)>,
    /// The AI agent's extension and SIP port, once it is up.
    pub(in crate::sip) agent: std::sync::OnceLock<super::agent_leg::route::AgentRoute>,
    /// `security.max_websockets` / `_per_ip`: one permit per open `/ws`.
    pub(in crate::sip) websockets: super::conn_limit::ConnGate,
    /// `security.max_calls_per_extension`: one permit per call an extension places.
    pub(in crate::sip) call_slots: super::conn_limit::ConnGate<String>,
    /// DND and forwards changed from Home Assistant (over the config's).
    pub(in crate::sip) phone_settings: crate::phone_settings::Shared,
    /// Each trunk's registration, provider address and last caller.
    pub(in crate::sip) trunks: crate::trunk::TrunkTable,
    pub(in crate::sip) trunk_tasks: super::trunk::Tasks,
    /// Each trunk's servers as DNS gave them (RFC 3263) and the one in use.
    pub(in crate::sip) trunk_dns: super::trunk::dns::TrunkDns,
    /// Each `transport: tls` trunk's own verified connection.
    pub(in crate::sip) trunk_tls: super::trunk::tls::TrunkTls,
    /// SUBSCRIBE dialogs: BLF and MWI.
    pub(in crate::sip) subscriptions: super::subscriptions::Subscriptions,
    /// `/ws` sockets opened with a panel session: their extension.
    pub(in crate::sip) flows: Mutex<super::auth::flows::FlowIdentities>,
    /// Each device's last SIP exchanges, for the panel's Diagnostics.
    pub(in crate::sip) diagnostics: Mutex<super::diagnostics::DiagnosticsLog>,
    /// Overload shedding before parsing: the SIP stack's queue and what was shed.
    pub(in crate::sip) shed: Arc<super::shed::Shedder>,
}

pub type SipCoreRef = Arc<SipCore>;

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl SipCore {
    pub fn extension(&self, ext: &str) -> Option<ExtensionRow> {
        self.directory.read().ok()?.get(ext).cloned()
    }

    pub fn extension_exists(&self, ext: &str) -> bool {
        self.is_agent(ext) || self.directory.read().map(|d| d.contains_key(ext)).unwrap_or(false)
    }

    /// Whether `ext` is the AI agent's extension.
    pub fn is_agent(&self, ext: &str) -> bool {
        self.agent.get().is_some_and(|a| a.extension == ext)
    }

    /// The binding that reaches the agent, when it runs.
    pub fn agent_binding(&self) -> Option<super::registrar::bindings::Binding> {
        self.agent.get().map(|a| a.binding.clone())
    }

    /// Our Contact over a TLS connection ha-pbx opened itself (a `transport:
    /// tls` trunk's, see `trunk::tls`): its own local address, so the peer
    /// sends its requests back over that connection (nothing listens on that
    /// port otherwise). A connection accepted on a listener, or none: `contact_uri`.
    pub fn contact_over(&self, user: Option<&str>, transport: Transport, conn: Option<&rsipstack::transport::SipConnection>) -> rsipstack::sip::Uri {
        let local = conn
            .filter(|c| matches!(c, rsipstack::transport::SipConnection::Tls(_)))
            .and_then(|c| c.get_addr().get_socketaddr().ok())
            .filter(|a| !self.listeners.iter().any(|(_, l)| l.port() == a.port()));
        let Some(local) = local else {
            return self.contact_uri(user, transport);
        };
        let user_part = user.map(|u| format!("{u}@")).unwrap_or_default();
        rsipstack::sip::Uri::try_from(format!("sip:{user_part}{local};transport=tls").as_str())
            .unwrap_or_else(|_| self.contact_uri(user, transport))
    }

    /// Our Contact URI for requests sent over `transport` (falls back to UDP).
    pub fn contact_uri(&self, user: Option<&str>, transport: Transport) -> rsipstack::sip::Uri {
        let port = self
            .listeners
            .iter()
            .find(|(t, _)| *t == transport)
            .or_else(|| self.listeners.first())
            .map(|(_, a)| a.port())
            .unwrap_or(5060);
        let user_part = user.map(|u| format!("{u}@")).unwrap_or_default();
        let host = match self.advertised_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let params = match transport {
            Transport::Udp => String::new(),
            Transport::Tcp => ";transport=tcp".into(),
            Transport::Tls => ";transport=tls".into(),
        };
        rsipstack::sip::Uri::try_from(format!("sip:{user_part}{host}:{port}{params}").as_str())
            .expect("contact uri from parts we built")
    }

    pub fn registered_contacts(&self, ext: &str) -> Vec<super::registrar::bindings::Binding> {
        if let Some(a) = self.agent.get().filter(|a| a.extension == ext) {
            return vec![a.binding.clone()];
        }
        self.location.lock().map(|l| l.lookup(ext, now_unix())).unwrap_or_default()
    }
}

/// Map an rsipstack transport to our lowercase name.
pub fn transport_name(t: rsipstack::sip::Transport) -> &'static str {
    use rsipstack::sip::Transport as T;
    match t {
        T::Udp => "udp",
        T::Tcp => "tcp",
        T::Tls => "tls",
        T::Ws => "ws",
        T::Wss => "wss",
        _ => "udp",
    }
}

/// A stored transport name back (`udp` for anything unknown, as SIP's default).
pub fn transport_from_name(name: &str) -> rsipstack::sip::Transport {
    name.parse().unwrap_or(rsipstack::sip::Transport::Udp)
}

/// Which of our listeners serves a transport: TCP and TLS their own, every
/// other (UDP, and WebSockets, which reach us through HTTP) the UDP one.
pub fn listener_transport(t: rsipstack::sip::Transport) -> crate::config::Transport {
    match t {
        rsipstack::sip::Transport::Tcp => crate::config::Transport::Tcp,
        rsipstack::sip::Transport::Tls => crate::config::Transport::Tls,
        _ => crate::config::Transport::Udp,
    }
}

/// The transport a connection carries. A browser's WebSocket is bridged in as
/// a channel connection (see `sip::websocket`), which rsipstack reports as UDP;
/// its address keeps the real type, so requests go back over the socket.
pub fn connection_transport(c: &rsipstack::transport::SipConnection) -> rsipstack::sip::Transport {
    match c {
        rsipstack::transport::SipConnection::Channel(ch) => ch.get_addr().r#type.unwrap_or(rsipstack::sip::Transport::Udp),
        other => other.transport(),
    }
}
