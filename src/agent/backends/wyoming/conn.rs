//! One Wyoming TCP connection: events out, events in.
use super::addr::TcpAddr;
use super::frame::{encode, Decoder, Event};
use crate::agent::backends::BackendError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Only the connect is limited here; the pipeline bounds the whole request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Conn {
    stream: TcpStream,
    dec: Decoder,
    buf: Vec<u8>,
    service: &'static str,
}

impl Conn {
    pub async fn connect(addr: &TcpAddr, service: &'static str) -> Result<Conn, BackendError> {
        let unreachable = |detail: String| BackendError::Unreachable { service, detail };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((addr.host.as_str(), addr.port)))
            .await
            .map_err(|_| unreachable(format!("{addr}: no connection within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(format!("{addr}: {e}")))?;
        // small audio chunks must not wait for Nagle
        let _ = stream.set_nodelay(true);
        Ok(Conn { stream, dec: Decoder::new(), buf: vec![0; 16 * 1024], service })
    }

    /// Writes the events in one go.
    pub async fn send(&mut self, events: &[Event]) -> Result<(), BackendError> {
        let bytes: Vec<u8> = events.iter().flat_map(encode).collect();
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| BackendError::Unreachable { service: self.service, detail: format!("sending: {e}") })
    }

    /// The next event; `None` when the server closed between events.
    pub async fn recv(&mut self) -> Result<Option<Event>, BackendError> {
        loop {
            if let Some(ev) = self.dec.next_event().map_err(|e| self.protocol(e.0))? {
                return Ok(Some(ev));
            }
            let n = self
                .stream
                .read(&mut self.buf)
                .await
                .map_err(|e| BackendError::Unreachable { service: self.service, detail: format!("reading: {e}") })?;
            if n == 0 {
                if self.dec.in_event() {
                    return Err(self.protocol("connection closed inside an event".into()));
                }
                return Ok(None);
            }
            self.dec.push(&self.buf[..n]);
        }
    }

    pub fn protocol(&self, detail: String) -> BackendError {
        BackendError::Protocol { service: self.service, detail }
    }

    /// A Wyoming `error` event as an error; other events pass.
    pub fn check(&self, ev: &Event) -> Result<(), BackendError> {
        if ev.kind == "error" {
            let text = ev.str("text").unwrap_or("(no text)");
            return Err(self.protocol(format!("server error: {text}")));
        }
        Ok(())
    }
}

/// Little-endian s16 bytes, as Wyoming carries PCM.
pub fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}
