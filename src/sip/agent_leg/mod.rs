//! The AI agent's place in the control plane: a SIP user agent of its own
//! inside the process, on a loopback UDP port, reachable as the agent's
//! extension. The B2BUA calls it like any registered phone (so forks,
//! relays, history, MQTT and transfers work unchanged); it answers and
//! hands the media to `agent::runner`.
mod answer;
mod header;
pub mod route;

pub use header::{AgentInvite, HEADER};
pub use route::AgentRoute;

use crate::agent::Agent;
use crate::config::Transport;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use anyhow::{anyhow, Context};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{HeadersExt, Method, StatusCode};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Bind the agent's SIP port and make its extension callable.
pub async fn start(core: SipCoreRef, agent: Arc<Agent>, cancel: CancellationToken) -> anyhow::Result<()> {
    let Some(&(_, main_udp)) = core.listeners.iter().find(|(t, _)| *t == Transport::Udp) else {
        return Err(anyhow!("agent: needs a udp:// address in sip.listen (the PBX reaches its agent over UDP on this host)"));
    };
    // Same address as the PBX's own UDP listener, so every packet stays on this host.
    let ip = if main_udp.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { main_udp.ip() };
    let layer = TransportLayer::new(cancel.child_token());
    let conn = UdpConnection::create_connection(SocketAddr::new(ip, 0), None, Some(cancel.child_token())).await.map_err(|e| anyhow!("agent SIP port: {e}"))?;
    let local = conn.get_addr().get_socketaddr().context("agent SIP port address")?;
    layer.add_transport(conn.into());
    let endpoint = EndpointBuilder::new()
        .with_user_agent(concat!("ha-pbx-agent/", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(layer)
        .with_cancel_token(cancel.child_token())
        .build();
    let mut incoming = endpoint.incoming_transactions().map_err(|e| anyhow!("{e}"))?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    tokio::spawn(async move { endpoint.serve().await });

    let extension = agent.config.extension.clone();
    let binding = Binding {
        contact_uri: format!("sip:{extension}@{local}"),
        source: local.to_string(),
        transport: rsipstack::sip::Transport::Udp,
        expires_at: i64::MAX,
        call_id: "ha-pbx-agent".into(),
        cseq: 1,
        user_agent: Some("ha-pbx agent".into()),
        instance_id: None,
        reg_id: None,
        registered_at: crate::sip::core::now_unix(),
    };
    core.agent.set(AgentRoute { extension: extension.clone(), binding, service: agent.clone() }).map_err(|_| anyhow!("agent started twice"))?;
    tracing::info!(%extension, sip = %local, "AI agent reachable");

    tokio::spawn(async move {
        while let Some(mut tx) = incoming.recv().await {
            let in_dialog = tx.original.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
            match tx.original.method {
                Method::Invite if !in_dialog => {
                    tokio::spawn(answer::answer(core.clone(), agent.clone(), dialogs.clone(), tx));
                }
                Method::Ack => {}
                _ if in_dialog => match dialogs.match_dialog(&tx) {
                    Some(mut dialog) => {
                        tokio::spawn(async move {
                            let _ = dialog.handle(&mut tx).await;
                        });
                    }
                    None => {
                        let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                    }
                },
                _ => {
                    let _ = tx.reply(StatusCode::MethodNotAllowed).await;
                }
            }
        }
    });
    Ok(())
}
