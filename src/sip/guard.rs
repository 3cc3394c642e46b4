//! First look at every message, before a transaction exists: drop what comes
//! from banned sources and what is larger than `security.max_message_bytes`.
use super::auth::ban::BanList;
use rsipstack::sip::SipMessage;
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::TransportEvent;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Guard {
    pub bans: Arc<Mutex<BanList>>,
    pub max_body: usize,
}

#[async_trait::async_trait]
impl TransportEventInspector for Guard {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Incoming(msg, _, from) = &event {
            if let Ok(addr) = from.get_socketaddr()
                && self.bans.lock().map(|b| b.is_banned(addr.ip(), Instant::now())).unwrap_or(false) {
                    tracing::trace!(%addr, "message from banned source dropped");
                    return None;
                }
            let (body, headers) = match msg {
                SipMessage::Request(r) => (r.body.len(), r.headers.len()),
                SipMessage::Response(r) => (r.body.len(), r.headers.len()),
            };
            if body > self.max_body || headers > 200 {
                tracing::info!(%from, body, headers, "oversized SIP message dropped");
                return None;
            }
        }
        Some(event)
    }
}
