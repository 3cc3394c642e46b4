//! The MQTT connection: rumqttc's event loop in a task of its own, reporting
//! to the bridge over a channel and reconnecting with capped backoff.
//!
//! After a lost connection the loop waits for the bridge to acknowledge it
//! before reconnecting, and then throws away whatever the client still had
//! queued: the bridge's outbox resends what matters, so nothing is sent
//! twice or ahead of the reconnect announcements.
use super::topics::Topics;
use crate::config::MqttConfig;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Requests the client may hold; the outbox keeps far fewer in flight.
pub const CLIENT_CAPACITY: usize = 256;
/// Messages given to the client and not yet acknowledged.
pub const WINDOW: usize = 64;
/// Largest discovery config we send is a few kB; leave room.
const MAX_PACKET: usize = 256 * 1024;

#[derive(Debug)]
pub enum ConnEvent {
    Connected,
    /// The connection failed or dropped; reply on `resume` once nothing
    /// more will be given to the client until the next `Connected`.
    Lost { reason: String, resume: oneshot::Sender<()> },
    /// The oldest publish handed to the client went out with this packet id.
    Written(u16),
    Acked(u16),
    Message { topic: String, payload: Vec<u8> },
}

pub fn options(cfg: &MqttConfig, topics: &Topics) -> MqttOptions {
    // A random suffix: two ha-pbx instances must not kick each other off.
    let id = format!("ha-pbx-{}-{:08x}", topics.node(), rand::random::<u32>());
    let mut o = MqttOptions::new(id, cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(15))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(100)
        .set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    o
}

/// Start the event loop task.
pub fn spawn(options: MqttOptions) -> (AsyncClient, mpsc::UnboundedReceiver<ConnEvent>, JoinHandle<()>) {
    let (client, eventloop) = AsyncClient::new(options, CLIENT_CAPACITY);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(eventloop, tx));
    (client, rx, task)
}

async fn run(mut el: EventLoop, tx: mpsc::UnboundedSender<ConnEvent>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let report = match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                ConnEvent::Connected
            }
            Ok(Event::Incoming(Packet::PubAck(a))) => ConnEvent::Acked(a.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => ConnEvent::Written(pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => ConnEvent::Message { topic: p.topic, payload: p.payload.to_vec() },
            Ok(_) => continue,
            Err(e) => {
                let (resume, resumed) = oneshot::channel();
                if tx.send(ConnEvent::Lost { reason: e.to_string(), resume }).is_err() || resumed.await.is_err() {
                    return; // the bridge is gone
                }
                // The bridge resends what was not acknowledged.
                el.clean();
                el.pending.clear();
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if tx.send(report).is_err() {
            return;
        }
    }
}

/// Exponential backoff with jitter, capped.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max, next: min }
    }
    pub fn reset(&mut self) {
        self.next = self.min;
    }
    /// The delay before the next attempt; each call doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // Up to +10%: many clients restarted together spread out.
        let jitter = base.mul_f64(f64::from(rand::random::<u8>()) / 2550.0);
        (base + jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let d: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(500) && d[0] <= Duration::from_millis(550));
        assert!(d[1] >= Duration::from_secs(1) && d[1] <= Duration::from_millis(1100));
        assert!(d.windows(2).all(|w| w[1] >= w[0].mul_f64(0.9)), "{d:?}");
        assert!(d.iter().all(|x| *x <= Duration::from_secs(30)));
        assert_eq!(d[9], Duration::from_secs(30));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(550));
    }

    #[test]
    fn options_carry_will_and_credentials() {
        let cfg = MqttConfig {
            host: "127.0.0.1".into(),
            port: 1884,
            username: Some("u".into()),
            password: Some("p".into()),
            discovery_prefix: "homeassistant".into(),
            base_topic: "ha_pbx".into(),
        };
        let o = options(&cfg, &Topics::new("ha_pbx", "homeassistant"));
        let will = o.last_will().unwrap();
        assert_eq!((will.topic.as_str(), &will.message[..], will.retain), ("ha_pbx/status", &b"offline"[..], true));
        assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 1884));
        assert_eq!(o.credentials().map(|l| l.username), Some("u".to_string()));
        assert!(o.client_id().starts_with("ha-pbx-ha_pbx-"));
    }
}
