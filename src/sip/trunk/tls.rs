//! A `transport: tls` trunk's connection to its provider. ha-pbx dials it
//! itself (TCP, then the handshake: the trust and the name to verify are
//! `crate::trunk::tls`'s) and hands it to rsipstack's transport layer, which
//! then sends the trunk's requests over it (REGISTER, OPTIONS, calls out)
//! and reads the provider's requests from it: they come from the address
//! the trunk registered at, so they are the trunk's (its calls in).
//!
//! Every request to the provider first asks `ensure`: a trunk whose own
//! verified connection to that address is open sends over it; otherwise it
//! is dialled now, and a certificate that does not verify fails the
//! request (nothing is sent). rsipstack's own TLS dial is never used for a
//! trunk (it has no trust store here, so it could not verify either).
use crate::config::{Transport, TrunkConfig};
use crate::trunk::tls::{client_config, describe, parse_ca, verify_name};
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// TCP connect and the handshake, each at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One entry per TLS trunk (the table holds only configured trunks' names).
#[derive(Default)]
pub struct TrunkTls {
    open: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Open>>>>>,
}

impl std::fmt::Debug for TrunkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkTls").finish_non_exhaustive()
    }
}

/// A trunk's connection: to `addr`; `closed` is cancelled when it ends
/// (rsipstack cancels a connection's token when it retires it).
struct Open {
    addr: SocketAddr,
    conn: SipConnection,
    closed: CancellationToken,
}

/// What `ensure` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// The trunk's connection was open (or the trunk is not tls).
    Kept,
    /// Dialled for the first time.
    First,
    /// Dialled again: the one before closed or went to another server, so
    /// the provider's registration names a connection that is gone (the
    /// caller registers again).
    Replaced,
}

impl TrunkTls {
    /// A verified TLS connection of trunk `t` to `server` is open (dialled
    /// now if needed). Trunks over udp or tcp: nothing to do.
    pub async fn ensure(&self, layer: &TransportLayer, t: &TrunkConfig, server: SocketAddr) -> Result<Conn, String> {
        if t.transport != Transport::Tls {
            return Ok(Conn::Kept);
        }
        let slot = match self.open.lock() {
            Ok(mut m) => m.entry(t.name.clone()).or_default().clone(),
            Err(_) => return Err("TLS: internal lock poisoned".into()),
        };
        // one dial per trunk at a time: the registration and the keep-alive share it
        let mut open = slot.lock().await;
        if let Some(o) = open.as_ref()
            && o.addr == server
            && !o.closed.is_cancelled()
        {
            return Ok(Conn::Kept);
        }
        let had = open.take().map(|old| {
            // the trunk moved to another server (or the connection ended)
            layer.remove_connection(&old.conn);
        });
        let closed = CancellationToken::new();
        let conn = SipConnection::Tls(dial(t, server, closed.clone()).await?);
        layer.add_connection(conn.clone());
        tracing::info!(trunk = %t.name, %server, name = %t.server, "trunk TLS connection up (certificate verified)");
        *open = Some(Open { addr: server, conn, closed });
        Ok(if had.is_some() { Conn::Replaced } else { Conn::First })
    }
}

impl TrunkTls {
    /// Trunk `name`'s open connection (for our Contact: `SipCore::contact_over`).
    pub async fn connection(&self, name: &str) -> Option<SipConnection> {
        let slot = self.open.lock().ok()?.get(name)?.clone();
        let open = slot.lock().await;
        open.as_ref().filter(|o| !o.closed.is_cancelled()).map(|o| o.conn.clone())
    }
}

async fn dial(t: &TrunkConfig, server: SocketAddr, closed: CancellationToken) -> Result<TlsConnection, String> {
    let name = verify_name(&t.server)?;
    let shown = name.to_str().into_owned();
    let extra = match &t.tls_ca {
        // read at each dial: a renewed CA file is taken without a restart
        Some(path) => std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| parse_ca(&pem))
            .map_err(|e| format!("tls_ca {}: {e}", path.display()))?,
        None => Vec::new(),
    };
    let config = client_config(&extra)?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(server))
        .await
        .map_err(|_| format!("no TCP connection to {server} within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| format!("no TLS handshake with `{shown}` at {server} within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{} (at {server})", describe(&shown, &e)))?;
    let remote = SipAddr { r#type: Some(t.transport.sip()), addr: server.into() };
    TlsConnection::from_client_stream(stream, remote, Some(closed))
        .await
        .map_err(|e| format!("TLS connection to {server}: {e}"))
}
