//! `/ws`: SIP over WebSocket for the SIP Core card (JsSIP). The `sip`
//! subprotocol must be echoed in the handshake or JsSIP drops the socket.
//! Frames are moved both ways; what they mean is `crate::sip::websocket`'s job.
use crate::sip::core::SipCoreRef;
use crate::sip::websocket::{outgoing_text, WsSession};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::Extension;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use crate::sip::conn_limit::ConnPermit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A browser's user as the embedding knows it (add-on mode: the Home
/// Assistant user the ingress proxy names, with the extension made for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserUser {
    pub extension: String,
    pub name: String,
}

/// Finds (or makes) the extension of the user a request's headers name. The
/// router carries it as `Extension<Arc<dyn BrowserUsers>>` when there is one.
#[async_trait::async_trait]
pub trait BrowserUsers: Send + Sync {
    /// `Ok(None)`: the headers name no user; `Err`: they name one wrongly.
    async fn extension_for_headers(&self, headers: &HeaderMap) -> anyhow::Result<Option<BrowserUser>>;
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(core): State<SipCoreRef>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    users: Option<Extension<Arc<dyn BrowserUsers>>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    uri: axum::http::Uri,
) -> Response {
    // the layers' `Extension`s: WSS (`wss.rs`) and the panel, where there are
    let secure = extensions.get::<super::wss::Secure>().is_some();
    let panel = extensions.get::<Arc<super::panel::Panel>>();
    // Standalone panel: a live extension session's browser registers as
    // that extension without its password; anything else digests as before.
    // Through ingress, the panel's Phone page (`ws?panel`) registers as the
    // Home Assistant user's extension; the SIP Core card's socket (no
    // `?panel`) digests exactly as before.
    let vouched = extensions.get::<super::panel::Vouched>().is_some();
    let session_ext = panel.and_then(|p| p.phone_extension(&headers, &extensions)).filter(|_| !vouched || uri.query() == Some("panel"));
    if let Some(ext) = &session_ext {
        tracing::info!(%remote, extension = %ext, "SIP websocket of a panel session: bound to its extension");
    }
    // Add-on mode: the ingress proxy says which Home Assistant user this
    // browser belongs to; that user gets (or already has) an extension, so
    // the card can register with it at once.
    if let Some(Extension(users)) = users {
        match users.extension_for_headers(&headers).await {
            Ok(Some(ext)) => {
                tracing::info!(%remote, user = %ext.name, extension = %ext.extension, "SIP websocket of a Home Assistant user")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(%remote, "SIP websocket refused: {e:#}");
                return (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response();
            }
        }
    }
    let permit = match core.open_websocket(remote.ip()) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(%remote, "SIP websocket refused: {}", why.describe("security.max_websockets", "security.max_websockets_per_ip"));
            return (StatusCode::SERVICE_UNAVAILABLE, "too many websockets\n").into_response();
        }
    };
    // A frame or message over the limit closes the socket as soon as its
    // header announces the length, before the payload is buffered.
    ws.protocols(["sip"])
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| serve(socket, core, remote, secure, permit, session_ext))
}

/// The largest SIP message a browser may send over `/ws`.
const MAX_WS_MESSAGE: usize = 64 * 1024;

/// Whether to close a socket now: nothing at all (not even a pong) for
/// `idle`, or no SIP for `idle` and no registration over it.
fn idle_verdict(since_any: Duration, since_sip: Duration, idle: Duration, bound: impl FnOnce() -> bool) -> Option<&'static str> {
    if since_any >= idle {
        Some("no frame, not even a pong")
    } else if since_sip >= idle && !bound() {
        Some("no SIP message and no registration")
    } else {
        None
    }
}

async fn serve(mut socket: WebSocket, core: SipCoreRef, remote: SocketAddr, secure: bool, permit: ConnPermit, session_ext: Option<String>) {
    let transport = if secure { rsipstack::sip::Transport::Wss } else { rsipstack::sip::Transport::Ws };
    let idle = Duration::from_secs(core.config.security.idle_connection_secs);
    let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_millis(500), Duration::from_secs(30)));
    tick.tick().await;
    let (mut last_any, mut last_sip) = (Instant::now(), Instant::now());
    let mut session = match WsSession::open(&core, remote, secure).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%remote, error = %e, "websocket not attached to the SIP core");
            return;
        }
    };
    // Bound only once the session exists: every way out below unbinds it.
    if let Some(ext) = &session_ext {
        core.bind_flow(transport, remote, ext);
    }
    tracing::info!(%remote, "SIP websocket connected");
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(t))) => {
                    (last_any, last_sip) = (Instant::now(), Instant::now());
                    if !session.on_frame(t.as_bytes()) { break; }
                }
                Some(Ok(Message::Binary(b))) => {
                    (last_any, last_sip) = (Instant::now(), Instant::now());
                    if !session.on_frame(&b) { break; }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => last_any = Instant::now(),
                Some(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "websocket read failed");
                    break;
                }
            },
            out = session.from_core.recv() => match out.and_then(outgoing_text) {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() { break; }
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let bound = || core.has_flow(transport, &remote.to_string());
                if let Some(why) = idle_verdict(now - last_any, now - last_sip, idle, bound) {
                    tracing::info!(%remote, idle_secs = idle.as_secs(), "idle SIP websocket closed: {why}");
                    break;
                }
                // A browser answers by itself; the pong shows the peer is alive.
                if socket.send(Message::Ping(Default::default())).await.is_err() { break; }
            }
        }
    }
    if session_ext.is_some() {
        core.unbind_flow(transport, remote);
    }
    drop(permit);
    drop(session);
    crate::sip::registrar::handler::flow_closed(&core, transport, remote);
    tracing::info!(%remote, "SIP websocket closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_verdicts() {
        let s = Duration::from_secs;
        let idle = s(60);
        assert_eq!(idle_verdict(s(10), s(10), idle, || false), None);
        assert_eq!(idle_verdict(s(60), s(60), idle, || true), Some("no frame, not even a pong"));
        assert_eq!(idle_verdict(s(10), s(60), idle, || false), Some("no SIP message and no registration"));
        // A registered browser that answers pings stays however long it is quiet.
        assert_eq!(idle_verdict(s(10), s(3600), idle, || true), None);
    }
}
