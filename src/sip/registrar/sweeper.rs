//! Expired bindings are removed from memory and disk, and announced.
use crate::events::PbxEvent;
use crate::sip::core::{now_unix, SipCoreRef};
use crate::storage::BindingOp;
use std::time::Duration;

pub async fn run(core: SipCoreRef) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now = now_unix();
        let gone = core.location.lock().map(|mut l| l.sweep(now)).unwrap_or_default();
        for (ext, b) in gone {
            tracing::info!(extension = %ext, contact = %b.contact_uri, "registration expired");
            core.binding_writer.send(BindingOp::Delete { extension: ext.clone(), contact_uri: b.contact_uri.clone() });
            core.bus.publish(PbxEvent::Unregistered { extension: ext, contact: b.contact_uri, reason: "expired".into() });
        }
        if let Ok(mut bans) = core.bans.lock() {
            bans.sweep(std::time::Instant::now());
        }
        let ended = core.flood.lock().map(|mut f| f.sweep(std::time::Instant::now())).unwrap_or_default();
        for (source, dropped) in ended {
            tracing::info!(%source, dropped, "SIP flood ban over");
        }
        if let Ok(mut bans) = core.api_bans.lock() {
            bans.sweep(std::time::Instant::now());
        }
        if let Ok(mut nonces) = core.nonces.lock() {
            nonces.sweep(now as u64);
        }
    }
}
