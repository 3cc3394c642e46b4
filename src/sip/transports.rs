//! SIP listeners (UDP, TCP, TLS) from `sip.listen`, with clear errors.
use super::auth::ban::BanList;
use super::auth::flood::FloodLimiter;
use super::tls_cert;
use super::shed::{Shedder, WATERMARKS};
use super::udp_socket::WholeDatagrams;
use crate::config::{Config, ListenAddr, Transport};
use anyhow::{anyhow, Context};
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::tls::{TlsConfig, TlsListenerConnection};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipConnection, TransportLayer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub async fn build(
    config: &Config,
    bans: &Arc<Mutex<BanList>>,
    flood: &Arc<Mutex<FloodLimiter>>,
    cancel: &CancellationToken,
) -> anyhow::Result<(TransportLayer, Vec<(Transport, SocketAddr)>, Arc<Shedder>)> {
    let layer = TransportLayer::new(cancel.child_token());
    let shed = Arc::new(Shedder::new(layer.incoming_backlog(), WATERMARKS));
    let mut bound = Vec::new();
    let advertised = config.sip.advertised_ip(&config.rtp);
    for (i, l) in config.sip.listen.iter().enumerate() {
        // Via/Contact must name a reachable address, not 0.0.0.0.
        let external = l.addr.ip().is_unspecified().then(|| SocketAddr::new(advertised, l.addr.port()));
        let conn = open(config, l, external, bans, flood, &shed, cancel).await.with_context(|| format!("sip.listen[{i}]: cannot listen on {l}"))?;
        layer.add_transport(conn);
        tracing::info!("SIP listening on {l}");
        bound.push((l.transport, l.addr));
    }
    Ok((layer, bound, shed))
}

async fn open(
    config: &Config,
    l: &ListenAddr,
    external: Option<SocketAddr>,
    bans: &Arc<Mutex<BanList>>,
    flood: &Arc<Mutex<FloodLimiter>>,
    shed: &Arc<Shedder>,
    cancel: &CancellationToken,
) -> anyhow::Result<SipConnection> {
    match l.transport {
        Transport::Udp => {
            let socket = super::udp_socket::bind(l.addr)?;
            let whole = WholeDatagrams::new(socket, config.security.max_message_bytes, bans.clone(), flood.clone(), shed.clone());
            let c = UdpConnection::from_socket(Arc::new(whole), external, Some(cancel.child_token())).await.map_err(|e| anyhow!("{e}"))?;
            Ok(c.into())
        }
        Transport::Tcp => {
            probe_tcp(l.addr)?;
            let c = TcpListenerConnection::new(l.addr, external).await.map_err(|e| anyhow!("{e}"))?;
            Ok(SipConnection::TcpListener(c))
        }
        Transport::Tls => {
            probe_tcp(l.addr)?;
            let (cert, key) = tls_cert::load_or_create(config)?;
            let tls = TlsConfig { cert: Some(cert), key: Some(key), ..Default::default() };
            let c = TlsListenerConnection::new(l.addr, external, tls).await.map_err(|e| anyhow!("{e}"))?;
            Ok(SipConnection::TlsListener(c))
        }
    }
}

/// rsipstack binds stream listeners later and only logs a failure; bind once
/// here so a port in use stops start-up with a message instead.
fn probe_tcp(addr: SocketAddr) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|e| anyhow!("{e}"))
}
