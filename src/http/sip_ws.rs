//! `/ws`: SIP over WebSocket for the SIP Core card (JsSIP). The `sip`
//! subprotocol must be echoed in the handshake or JsSIP drops the socket.
//! Frames are moved both ways; what they mean is `crate::sip::websocket`'s job.
use crate::sip::core::SipCoreRef;
use crate::sip::websocket::{outgoing_text, WsSession};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::Extension;
use crate::addon::HaUserDirectory;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::net::SocketAddr;

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(core): State<SipCoreRef>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    secure: Option<Extension<super::wss::Secure>>,
    users: Option<Extension<Arc<HaUserDirectory>>>,
    headers: HeaderMap,
) -> Response {
    let secure = secure.is_some();
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
    ws.protocols(["sip"]).max_message_size(64 * 1024).on_upgrade(move |socket| serve(socket, core, remote, secure))
}

async fn serve(mut socket: WebSocket, core: SipCoreRef, remote: SocketAddr, secure: bool) {
    let mut session = match WsSession::open(&core, remote, secure).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%remote, error = %e, "websocket not attached to the SIP core");
            return;
        }
    };
    tracing::info!(%remote, "SIP websocket connected");
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(t))) => {
                    if !session.on_frame(t.as_bytes()) { break; }
                }
                Some(Ok(Message::Binary(b))) => {
                    if !session.on_frame(&b) { break; }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
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
        }
    }
    drop(session);
    crate::sip::registrar::handler::flow_closed(&core, if secure { "wss" } else { "ws" }, remote);
    tracing::info!(%remote, "SIP websocket closed");
}
