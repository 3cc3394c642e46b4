//! One trunk's OPTIONS keep-alive: asks its `KeepAlive` when to probe,
//! sends an OPTIONS with rsipstack's client transaction, reports whether
//! anything answered, and publishes `up`/`down` (log line, `/health`).
use super::update;
use crate::config::TrunkConfig;
use crate::sip::core::SipCoreRef;
use crate::trunk::{KeepAlive, Reach};
use rsipstack::sip::{Method, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `back_up` is told when the provider answers again after being down.
pub async fn run(core: SipCoreRef, t: TrunkConfig, back_up: std::sync::Arc<tokio::sync::Notify>, cancel: CancellationToken) {
    let epoch = Instant::now();
    let now_ms = || epoch.elapsed().as_millis() as u64;
    let mut k = KeepAlive::new(u64::from(t.keepalive_secs) * 1000, now_ms());
    update(&core, &t.name, |s| s.reachable = Some(Reach::Unknown));
    loop {
        if k.poll(now_ms()) {
            let limit = Duration::from_millis(k.probe_timeout_ms());
            let answered = tokio::select! {
                a = probe(&core, &t, limit, &back_up) => a,
                _ = cancel.cancelled() => return,
            };
            let was = k.reach();
            if let Some(reach) = k.on_outcome(now_ms(), answered) {
                match reach {
                    Reach::Up => tracing::info!(trunk = %t.name, "trunk up: the provider answers OPTIONS"),
                    _ => tracing::warn!(trunk = %t.name, "trunk down: the provider does not answer OPTIONS"),
                }
                if reach == Reach::Up && was == Reach::Down {
                    back_up.notify_one();
                }
                update(&core, &t.name, |s| s.reachable = Some(reach));
            }
        }
        let wake = k.next_wake().map_or(Instant::now() + Duration::from_secs(1), |at| epoch + Duration::from_millis(at));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// One OPTIONS to the provider's current target; true when any response
/// came within `limit`. No answer: the next target is tried next time.
/// A TLS trunk's connection dialled again (the provider closed the old one):
/// `back_up` has the registration name the new one at once.
async fn probe(core: &SipCoreRef, t: &TrunkConfig, limit: Duration, back_up: &tokio::sync::Notify) -> bool {
    let Ok(target) = core.trunk_dns.target(core, t).await else {
        return false;
    };
    match core.trunk_tls.ensure(&core.endpoint.transport_layer, t, target.addr).await {
        Ok(super::tls::Conn::Replaced) if t.register => {
            tracing::info!(trunk = %t.name, "trunk TLS connection dialled again: registering over it now");
            back_up.notify_one();
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(trunk = %t.name, error = %e, "no OPTIONS: the TLS connection failed");
            core.trunk_dns.failed(core, t, target.addr, &e);
            return false;
        }
    }
    let answered = send_options(core, t, target.addr, limit).await;
    if !answered {
        core.trunk_dns
            .failed(core, t, target.addr, "no answer to OPTIONS");
    }
    answered
}

async fn send_options(
    core: &SipCoreRef,
    t: &TrunkConfig,
    server: std::net::SocketAddr,
    limit: Duration,
) -> bool {
    let result = tokio::time::timeout(limit, async {
        let uri = super::provider_uri(t, None).ok()?;
        let transport = t.transport.sip();
        let dest = SipAddr { r#type: Some(transport), addr: server.into() };
        let via = match core.endpoint.transport_layer.lookup(&dest, None).await {
            Ok((conn, _)) => core.endpoint.get_via(Some(conn.get_addr().clone()), None),
            Err(_) => core.endpoint.get_via(None, None),
        }
        .ok()?;
        let mut from_uri = super::provider_uri(t, Some(t.username.as_deref().unwrap_or("ha-pbx"))).ok()?;
        from_uri.params.clear();
        let from = rsipstack::sip::typed::From { display_name: None, uri: from_uri, params: vec![] }.with_tag(rsipstack::transaction::make_tag());
        let to = rsipstack::sip::typed::To { display_name: None, uri: uri.clone(), params: vec![] };
        let req = core.endpoint.make_request(Method::Options, uri, via, from, to, 1, None);
        let key = TransactionKey::from_request(&req, TransactionRole::Client).ok()?;
        let mut tx = Transaction::new_client(key, req, core.endpoint.clone(), None);
        tx.destination = Some(dest);
        tx.send().await.ok()?;
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(_) = msg {
                return Some(());
            }
        }
        None
    })
    .await;
    matches!(result, Ok(Some(())))
}
