//! The Assist brain: Home Assistant's `conversation/process` over its
//! WebSocket API. HA runs its own intents and tools; the conversation id is
//! carried from turn to turn. One connection per turn (HA answers in ms).
use super::rest::{HaClient, SERVICE};
use super::ws_msg::{auth_message, auth_step, process_message, process_result, AuthStep};
use crate::agent::backends::http::{chain, tls_config};
use crate::agent::backends::{BackendError, Brain, Conversation, ToolHost};
use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const CONNECT_TIMEOUT: std::time::Duration = crate::agent::backends::http::CONNECT_TIMEOUT;

pub struct AssistBrain {
    ha: Arc<HaClient>,
    agent_id: Option<String>,
    language: String,
}

impl AssistBrain {
    pub fn new(ha: Arc<HaClient>, agent_id: Option<&str>, language: &str) -> AssistBrain {
        AssistBrain { ha, agent_id: agent_id.filter(|a| !a.is_empty()).map(str::to_string), language: language.to_string() }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn unreachable(detail: String) -> BackendError {
    BackendError::Unreachable { service: SERVICE, detail }
}

fn protocol(detail: String) -> BackendError {
    BackendError::Protocol { service: SERVICE, detail }
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

async fn recv_json(ws: &mut WebSocketStream<Box<dyn Io>>) -> Result<Value, BackendError> {
    loop {
        let msg = ws.next().await.ok_or_else(|| protocol("connection closed".into()))?.map_err(|e| unreachable(chain(&e)))?;
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).map_err(|e| protocol(format!("not JSON: {e}"))),
            Message::Close(_) => return Err(protocol("connection closed".into())),
            _ => {} // pings are answered by tungstenite
        }
    }
}

async fn send_json(ws: &mut WebSocketStream<Box<dyn Io>>, v: &Value) -> Result<(), BackendError> {
    ws.send(Message::text(v.to_string())).await.map_err(|e| unreachable(chain(&e)))
}

/// Connected and authenticated.
async fn open(ha: &HaClient) -> Result<WebSocketStream<Box<dyn Io>>, BackendError> {
    let mut ws = connect(&ha.urls().websocket).await?;
    loop {
        match auth_step(&recv_json(&mut ws).await?) {
            AuthStep::Required => send_json(&mut ws, &auth_message(ha.token())).await?,
            AuthStep::Ok => return Ok(ws),
            AuthStep::Invalid(m) => return Err(BackendError::Status { service: SERVICE, status: 401, detail: format!("WebSocket auth: {m}") }),
            AuthStep::Other(t) => return Err(protocol(format!("`{t}` during auth"))),
        }
    }
}

#[async_trait]
impl Brain for AssistBrain {
    async fn reply(&self, said: &str, conversation: &mut Conversation, _tools: &dyn ToolHost, out: mpsc::Sender<String>) -> Result<(), BackendError> {
        let mut ws = open(&self.ha).await?;
        let msg = process_message(1, said, &self.language, conversation.assist_id.as_deref(), self.agent_id.as_deref());
        send_json(&mut ws, &msg).await?;
        let processed = loop {
            if let Some(p) = process_result(&recv_json(&mut ws).await?, 1).map_err(|e| BackendError::Status { service: SERVICE, status: 400, detail: format!("conversation/process: {e}") })? {
                break p;
            }
        };
        let _ = ws.close(None).await;
        if processed.conversation_id.is_some() {
            conversation.assist_id = processed.conversation_id;
        }
        if !processed.speech.is_empty() {
            let _ = out.send(processed.speech).await;
        }
        Ok(())
    }
}
