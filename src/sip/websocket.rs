//! SIP over WebSocket (RFC 7118) for browsers: each socket becomes one
//! rsipstack channel connection, so REGISTER reaches the registrar like any
//! other transport, and requests to the browser go back over its own socket
//! (the registrar records the connection's address with transport `ws`).
//!
//! The HTTP side (`crate::http::sip_ws`) only moves frames; what a frame
//! means is decided here by [`classify`].
use super::core::SipCore;
use rsipstack::sip::{SipMessage, Transport};
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::stream::RawVerdict;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// What one WebSocket frame carries.
#[derive(Debug)]
pub enum Frame {
    /// Whitespace only: JsSIP-based cards send "\r\n\r\n" as a keep-alive.
    KeepAlive,
    Message(Box<SipMessage>),
    /// Not SIP; logged and dropped, the socket stays open.
    Garbage(String),
}

pub fn classify(data: &[u8]) -> Frame {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Frame::KeepAlive;
    }
    match SipMessage::try_from(data) {
        Ok(m) => Frame::Message(Box::new(m)),
        Err(e) => Frame::Garbage(e.to_string()),
    }
}

/// One browser's socket, seen from the SIP core.
pub struct WsSession {
    conn: SipConnection,
    /// To answer a frame refused before parsing ([`super::guard::raw_verdict`]).
    to_browser: mpsc::UnboundedSender<TransportEvent>,
    bans: std::sync::Arc<std::sync::Mutex<super::auth::ban::BanList>>,
    flood: std::sync::Arc<std::sync::Mutex<super::auth::flood::FloodLimiter>>,
    addr: SipAddr,
    remote: SocketAddr,
    to_core: mpsc::UnboundedSender<TransportEvent>,
    /// Messages the core sends to this browser, as text to put in frames.
    pub from_core: mpsc::UnboundedReceiver<TransportEvent>,
}

impl WsSession {
    /// Registers the connection with the endpoint's transport layer. Dropping
    /// the session closes the channel, which retires the connection.
    pub async fn open(core: &SipCore, remote: SocketAddr, secure: bool) -> anyhow::Result<WsSession> {
        let (to_core, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_core) = mpsc::unbounded_channel();
        let kind = if secure { Transport::Wss } else { Transport::Ws };
        let addr = SipAddr { r#type: Some(kind), addr: remote.into() };
        let channel = ChannelConnection::create_connection(incoming, outgoing.clone(), addr.clone(), None)
            .await
            .map_err(|e| anyhow::anyhow!("websocket channel: {e}"))?;
        let conn = SipConnection::Channel(channel);
        core.endpoint.transport_layer.add_connection(conn.clone());
        Ok(WsSession { conn, to_browser: outgoing, bans: core.bans.clone(), flood: core.flood.clone(), addr, remote, to_core, from_core })
    }

    /// Hands one received frame to the core. Returns false once the core is gone.
    pub fn on_frame(&self, data: &[u8]) -> bool {
        if !data.iter().all(u8::is_ascii_whitespace) {
            match super::guard::raw_verdict(data, self.remote, &self.bans, &self.flood, "ws") {
                RawVerdict::Pass => {}
                RawVerdict::Drop => return true,
                RawVerdict::Reply(bytes) => {
                    // built by `stateless::reply_to_raw`, so it parses
                    if let Ok(reply) = SipMessage::try_from(&bytes[..]) {
                        let _ = self.to_browser.send(TransportEvent::Incoming(reply, self.conn.clone(), self.addr.clone()));
                    }
                    return true;
                }
            }
        }
        match classify(data) {
            Frame::KeepAlive => true,
            Frame::Garbage(why) => {
                tracing::info!(remote = %self.remote, "websocket frame is not SIP, dropped: {why}");
                true
            }
            Frame::Message(msg) => {
                let kind = self.addr.r#type.unwrap_or(Transport::Ws);
                let msg = match SipConnection::update_msg_received(*msg, self.remote, kind) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::info!(remote = %self.remote, "SIP over websocket without a usable Via, dropped: {e}");
                        return true;
                    }
                };
                self.to_core.send(TransportEvent::Incoming(msg, self.conn.clone(), self.addr.clone())).is_ok()
            }
        }
    }
}

/// The text of a message the core wants sent to the browser.
pub fn outgoing_text(event: TransportEvent) -> Option<String> {
    match event {
        TransportEvent::Incoming(msg, _, _) => Some(msg.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_frames_are_keep_alives() {
        assert!(matches!(classify(b"\r\n\r\n"), Frame::KeepAlive));
        assert!(matches!(classify(b""), Frame::KeepAlive));
        assert!(matches!(classify(b" \n"), Frame::KeepAlive));
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert!(matches!(classify(b"\x00\xff not sip"), Frame::Garbage(_)));
        assert!(matches!(classify(b"GET / HTTP/1.1\r\n\r\n"), Frame::Garbage(_)));
    }

    #[test]
    fn jssip_register_parses() {
        let reg = "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/WS 4fk2a1s0pq7j.invalid;branch=z9hG4bK9313186\r\n\
Max-Forwards: 69\r\n\
To: <sip:2001@127.0.0.1>\r\n\
From: <sip:2001@127.0.0.1>;tag=bfp0jhqbqb\r\n\
Call-ID: 3tmpm6ijr0fmo6m7ddv8g1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:d0a7f9bb@4fk2a1s0pq7j.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:9b2a>\";expires=600\r\n\
Expires: 600\r\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
Supported: path,gruu,outbound\r\n\
User-Agent: JsSIP 3.10.6\r\n\
Content-Length: 0\r\n\r\n";
        match classify(reg.as_bytes()) {
            Frame::Message(m) => assert!(matches!(*m, SipMessage::Request(_))),
            other => panic!("expected a message, got {other:?}"),
        }
    }
}
