//! WebSocket flows whose user is known before any SIP is sent (sans-IO): a
//! panel session's browser opens `/ws` with its session cookie, and the HTTP
//! layer binds that socket to the session's extension. Requests on a bound
//! flow are that extension without a digest; a request on it that claims any
//! other extension is refused. Unbound flows (every other socket, UDP, TCP,
//! TLS) are authenticated by digest as before.
use rsipstack::sip::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Bound flows: (transport, browser's address) → extension.
#[derive(Debug, Default)]
pub struct FlowIdentities {
    by_flow: HashMap<(Transport, SocketAddr), String>,
}

/// What a request on a flow gets, before any digest is looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum FlowVerdict {
    /// Not a bound flow: digest as usual.
    Digest,
    /// The flow's extension, no challenge.
    Extension(String),
    /// The request claims `claimed` on a flow bound to another extension: 403.
    Refuse { bound: String, claimed: Option<String> },
}

impl FlowIdentities {
    /// Binds a WebSocket flow to `extension`. Other transports cannot be
    /// bound (their source address is not a connection the HTTP layer saw).
    pub fn bind(&mut self, transport: Transport, remote: SocketAddr, extension: &str) -> bool {
        if !matches!(transport, Transport::Ws | Transport::Wss) {
            return false;
        }
        self.by_flow.insert((transport, remote), extension.to_string());
        true
    }

    pub fn unbind(&mut self, transport: Transport, remote: SocketAddr) {
        self.by_flow.remove(&(transport, remote));
    }

    /// The verdict for a request from `remote` over `transport` whose
    /// identity header (To for REGISTER, From otherwise) names `claimed`.
    pub fn verdict(&self, transport: Option<Transport>, remote: SocketAddr, claimed: Option<&str>) -> FlowVerdict {
        let Some(bound) = transport.and_then(|t| self.by_flow.get(&(t, remote))) else {
            return FlowVerdict::Digest;
        };
        if claimed == Some(bound.as_str()) {
            FlowVerdict::Extension(bound.clone())
        } else {
            FlowVerdict::Refuse { bound: bound.clone(), claimed: claimed.map(str::to_string) }
        }
    }

    pub fn len(&self) -> usize {
        self.by_flow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_flow.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn unbound_flows_use_digest() {
        let t = FlowIdentities::default();
        assert_eq!(t.verdict(Some(Transport::Ws), addr(1), Some("110")), FlowVerdict::Digest);
        assert_eq!(t.verdict(None, addr(1), Some("110")), FlowVerdict::Digest);
    }

    #[test]
    fn a_bound_flow_is_its_extension_and_no_other() {
        let mut t = FlowIdentities::default();
        assert!(t.bind(Transport::Ws, addr(1), "110"));
        assert_eq!(t.verdict(Some(Transport::Ws), addr(1), Some("110")), FlowVerdict::Extension("110".into()));
        assert_eq!(t.verdict(Some(Transport::Ws), addr(1), Some("111")), FlowVerdict::Refuse { bound: "110".into(), claimed: Some("111".into()) });
        assert_eq!(t.verdict(Some(Transport::Ws), addr(1), None), FlowVerdict::Refuse { bound: "110".into(), claimed: None });
        // Same address over another transport, or another port: not bound.
        assert_eq!(t.verdict(Some(Transport::Udp), addr(1), Some("110")), FlowVerdict::Digest);
        assert_eq!(t.verdict(Some(Transport::Wss), addr(1), Some("110")), FlowVerdict::Digest);
        assert_eq!(t.verdict(Some(Transport::Ws), addr(2), Some("110")), FlowVerdict::Digest);
        t.unbind(Transport::Ws, addr(1));
        assert_eq!(t.verdict(Some(Transport::Ws), addr(1), Some("110")), FlowVerdict::Digest);
        assert!(t.is_empty());
    }

    #[test]
    fn only_websocket_flows_bind() {
        let mut t = FlowIdentities::default();
        for tr in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            assert!(!t.bind(tr, addr(1), "110"));
        }
        assert_eq!(t.len(), 0);
    }
}
