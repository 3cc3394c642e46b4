//! A client of Home Assistant's WebSocket API: connect (`ws://` or
//! `wss://`), authenticate with a token, then requests, each answered by the
//! `result` message with its id. What the messages say is read by
//! [`super::ws_msg`] (sans-IO). Used by the Assist brain and by the add-on's
//! Supervisor client (`/core/websocket`).
use super::rest::SERVICE;
use super::ws_msg::{auth_message, auth_step, result_for, AuthStep};
use crate::agent::backends::http::{chain, tls_config};
use crate::agent::backends::BackendError;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const CONNECT_TIMEOUT: std::time::Duration = crate::agent::backends::http::CONNECT_TIMEOUT;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn unreachable(detail: String) -> BackendError {
    BackendError::Unreachable { service: SERVICE, detail }
}

fn protocol(detail: String) -> BackendError {
    BackendError::Protocol { service: SERVICE, detail }
}

/// An authenticated connection; request ids count up from 1.
pub struct HaSocket {
    ws: WebSocketStream<Box<dyn Io>>,
    last_id: u64,
}

impl HaSocket {
    /// Connected to `url` and authenticated with `token`.
    pub async fn open(url: &str, token: &str) -> Result<HaSocket, BackendError> {
        let mut s = HaSocket { ws: connect(url).await?, last_id: 0 };
        loop {
            match auth_step(&s.recv_json().await?) {
                AuthStep::Required => s.send_json(&auth_message(token)).await?,
                AuthStep::Ok => return Ok(s),
                AuthStep::Invalid(m) => return Err(BackendError::Status { service: SERVICE, status: 401, detail: format!("WebSocket auth: {m}") }),
                AuthStep::Other(t) => return Err(protocol(format!("`{t}` during auth"))),
            }
        }
    }

    /// `msg` (`{"type": ..., ...}`) sent with the next id; the `result` of
    /// its answer, HA's error as a 400 naming the command. Other messages
    /// in between (events) are passed over.
    pub async fn request(&mut self, mut msg: Value) -> Result<Value, BackendError> {
        self.last_id += 1;
        let id = self.last_id;
        msg["id"] = json!(id);
        self.send_json(&msg).await?;
        loop {
            if let Some(r) = result_for(&self.recv_json().await?, id) {
                return r.map_err(|e| BackendError::Status { service: SERVICE, status: 400, detail: format!("{}: {e}", msg["type"].as_str().unwrap_or("request")) });
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    async fn recv_json(&mut self) -> Result<Value, BackendError> {
        loop {
            let msg = self.ws.next().await.ok_or_else(|| protocol("connection closed".into()))?.map_err(|e| unreachable(chain(&e)))?;
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).map_err(|e| protocol(format!("not JSON: {e}"))),
                Message::Close(_) => return Err(protocol("connection closed".into())),
                _ => {} // pings are answered by tungstenite
            }
        }
    }

    async fn send_json(&mut self, v: &Value) -> Result<(), BackendError> {
        self.ws.send(Message::text(v.to_string())).await.map_err(|e| unreachable(chain(&e)))
    }
}

/// TCP (and TLS for wss://), then the WebSocket upgrade.
async fn connect(url: &str) -> Result<WebSocketStream<Box<dyn Io>>, BackendError> {
    let uri: hyper::http::Uri = url.parse().map_err(|e| protocol(format!("`{url}`: {e}")))?;
    let tls = uri.scheme_str() == Some("wss");
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| unreachable(format!("{url}: no connection within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| unreachable(format!("{url}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| protocol(format!("`{host}`: {e}")))?;
        let s = tokio::time::timeout(CONNECT_TIMEOUT, tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp))
            .await
            .map_err(|_| unreachable(format!("{url}: no TLS handshake within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(format!("{url}: TLS: {}", chain(&e))))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(url, io).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => BackendError::Status { service: SERVICE, status: r.status().as_u16(), detail: format!("{url}: WebSocket upgrade refused") },
        e => unreachable(format!("{url}: {}", chain(&e))),
    })?;
    Ok(ws)
}
