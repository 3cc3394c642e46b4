//! Entry point of the media plane: owns the port range and creates relays.
//! Cheap to clone; every clone shares the same ports.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use super::Relay;
use crate::media::ports::PortAllocator;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address the RTP sockets bind to.
    pub bind: IpAddr,
    /// Address written into SDP (differs from `bind` behind NAT or in Docker).
    pub advertise: IpAddr,
    /// Inclusive; each relay takes two even/odd pairs (one per leg).
    pub port_range: (u16, u16),
    /// Silence in both directions after which [`Relay::timed_out`] resolves.
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct MediaEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MediaConfig,
    ports: PortAllocator,
    active: Arc<AtomicUsize>,
}

impl MediaEngine {
    /// Binds one pair as a probe so a wrong address or a fully taken range
    /// shows up at start-up rather than on the first call.
    pub fn new(config: MediaConfig) -> anyhow::Result<Self> {
        if config.timeout.is_zero() {
            bail!("media timeout must be more than zero");
        }
        let ports = PortAllocator::new(config.bind, config.port_range)?;
        drop(ports.allocate().context("probing the RTP port range")?);
        let inner = Inner { config, ports, active: Arc::new(AtomicUsize::new(0)) };
        Ok(MediaEngine { inner: Arc::new(inner) })
    }

    /// Binds two port pairs and starts the relay's task. Needs a tokio runtime.
    pub async fn create_relay(&self) -> anyhow::Result<Relay> {
        let a = self.inner.ports.allocate()?;
        let b = self.inner.ports.allocate()?;
        let active = ActiveGuard::new(&self.inner.active);
        Ok(Relay::spawn([a, b], self.inner.config.timeout, active)?)
    }

    /// Binds two port pairs (browser side, device side) and starts a WebRTC
    /// bridge task. Counted with the relays: it holds ports the same way.
    pub async fn create_webrtc_bridge(&self) -> anyhow::Result<crate::media::webrtc::WebRtcBridge> {
        let browser = self.inner.ports.allocate()?;
        let plain = self.inner.ports.allocate()?;
        let video = self.inner.ports.allocate()?;
        let active = ActiveGuard::new(&self.inner.active);
        let config = &self.inner.config;
        Ok(crate::media::webrtc::WebRtcBridge::spawn([browser, plain, video], config.advertise, config.timeout, active)?)
    }

    /// One RTP/RTCP pair from the range for an endpoint of our own (the AI
    /// agent's end of a call).
    pub fn allocate_ports(&self) -> anyhow::Result<crate::media::ports::PortPair> {
        Ok(self.inner.ports.allocate()?)
    }

    /// Counts a media task of another shape (a page's fan-out) with the
    /// relays while the guard lives.
    pub(crate) fn count_active(&self) -> ActiveGuard {
        ActiveGuard::new(&self.inner.active)
    }

    /// Relays whose task still runs (ports still held).
    pub fn active_relays(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    pub fn advertise(&self) -> IpAddr {
        self.inner.config.advertise
    }

    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }
}

/// Counts a relay task from creation until its task ends.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(Arc::clone(count))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
