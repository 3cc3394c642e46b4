//! MQTT bridge to Home Assistant: device discovery, call state and events
//! out; hang up, answer, dial, DTMF and transfer in; DND and forwards both ways. Topics: docs/mqtt.md.
//!
//! ```text
//!  EventBus ──► bridge (task) ──► model (sans-IO: call_state, payloads, discovery)
//!                  │    ▲                 │ messages
//!                  │    └── commands ◄────┼──── broker (cmd topics)
//!                  ▼                      ▼
//!             CallControl            outbox (sans-IO: order, bound, acks)
//!             (sip::control)              │
//!                                   connection (rumqttc event loop task, backoff)
//! ```
//!
//! The SIP side only publishes on the in-process bus; everything that can
//! wait on the network happens here, in tasks of the bridge's own.
mod bridge;
mod call_state;
pub mod commands;
mod connection;
pub mod pbx;
mod discovery;
mod model;
mod outbox;
mod payloads;
mod settings;
mod topics;
mod trunks;

pub use pbx::{CallControl, ExtensionInfo, LiveCall, PbxView, SettingsControl};

use crate::config::MqttConfig;
use crate::events::PbxEvent;
use crate::sip::core::SipCoreRef;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Handle on the running bridge; dropping it stops the bridge.
pub struct MqttBridge {
    task: JoinHandle<()>,
}

impl MqttBridge {
    /// Start the bridge on the PBX's event bus.
    pub fn start(config: MqttConfig, core: SipCoreRef) -> anyhow::Result<Self> {
        let events = core.bus.subscribe();
        Self::start_with(config, core, events)
    }

    /// Start on any PBX (tests use fakes).
    pub fn start_with<P>(config: MqttConfig, pbx: P, events: broadcast::Receiver<PbxEvent>) -> anyhow::Result<Self>
    where
        P: PbxView + CallControl + SettingsControl + Clone,
    {
        check_topic("mqtt.base_topic", &config.base_topic)?;
        check_topic("mqtt.discovery_prefix", &config.discovery_prefix)?;
        tracing::info!(broker = %format!("{}:{}", config.host, config.port), base = %config.base_topic, "MQTT bridge starting");
        let task = tokio::spawn(bridge::run(pbx, config, events));
        Ok(MqttBridge { task })
    }

}

impl Drop for MqttBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Wildcards or an empty level would make every publish invalid.
fn check_topic(field: &str, t: &str) -> anyhow::Result<()> {
    let t = t.trim_matches('/');
    if t.is_empty() || t.contains(['+', '#', '\0']) || t.split('/').any(str::is_empty) {
        anyhow::bail!("{field}: `{t}` is not a usable MQTT topic (no `+`, `#` or empty levels)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_topic;

    #[test]
    fn topics_with_wildcards_are_refused() {
        assert!(check_topic("x", "ha_pbx").is_ok());
        assert!(check_topic("x", "home/pbx").is_ok());
        for bad in ["", "a/+/b", "a#", "a//b"] {
            assert!(check_topic("x", bad).is_err(), "{bad}");
        }
    }
}
