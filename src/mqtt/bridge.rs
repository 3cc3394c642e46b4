//! The bridge task: bus events, connection reports, directory changes and a
//! slow timer go into the model; what it answers goes out through the outbox.
//! The task never waits on the broker (publishing is `try_publish` within
//! the outbox's window), so a slow or dead broker cannot hold it up, and the
//! SIP side only ever touches the in-process bus.
use super::commands;
use super::connection::{self, ConnEvent, WINDOW};
use super::pbx::{CallControl, PbxView, SettingsControl};
use super::model::Model;
use super::outbox::{Msg, Outbox};
use super::topics::Topics;
use crate::config::MqttConfig;
use crate::events::PbxEvent;
use crate::phone_settings::Change;
use crate::sip::core::now_unix;
use rumqttc::{AsyncClient, QoS};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Events kept while the broker is away.
pub const MAX_QUEUED_EVENTS: usize = 1000;
/// Safety net for directory changes nobody announced, expired registrations
/// and calls whose end we missed.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

pub struct Bridge<P> {
    pbx: P,
    model: Model,
    outbox: Outbox,
    client: AsyncClient,
    broker: String,
    failures: u64,
    /// Extensions whose setting command finished (applied or refused):
    /// their settings are published again.
    settings_done: mpsc::UnboundedSender<String>,
    settings_rx: Option<mpsc::UnboundedReceiver<String>>,
}

pub async fn run<P>(pbx: P, cfg: MqttConfig, mut events: broadcast::Receiver<PbxEvent>)
where
    P: PbxView + CallControl + SettingsControl + Clone,
{
    let topics = Topics::new(&cfg.base_topic, &cfg.discovery_prefix);
    let (client, mut conn, el_task) = connection::spawn(connection::options(&cfg, &topics));
    // The event loop lives exactly as long as this task.
    let _el_guard = AbortOnDrop(el_task);
    let mut b = Bridge::new(pbx, topics, client, format!("{}:{}", cfg.host, cfg.port));
    b.resync(true);
    let mut settings_done = b.settings_rx.take().unwrap_or_else(|| mpsc::unbounded_channel().1);
    let mut tick = tokio::time::interval(RESYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => b.on_bus(&ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "MQTT bridge fell behind the event bus; resynchronising states");
                    b.resync(true);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            c = conn.recv() => match c {
                Some(c) => b.on_conn(c),
                None => break,
            },
            Some(ext) = settings_done.recv() => b.settings_changed(&ext),
            _ = tick.tick() => b.resync(false),
        }
        b.pump();
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<P: PbxView + CallControl + SettingsControl + Clone> Bridge<P> {
    pub fn new(pbx: P, topics: Topics, client: AsyncClient, broker: String) -> Self {
        let (settings_done, rx) = mpsc::unbounded_channel();
        Bridge {
            pbx,
            model: Model::new(topics),
            outbox: Outbox::new(MAX_QUEUED_EVENTS, WINDOW),
            client,
            broker,
            failures: 0,
            settings_done,
            settings_rx: Some(rx),
        }
    }

    fn push(&mut self, msgs: Vec<Msg>) {
        self.outbox.extend(msgs);
    }

    /// Re-read directory, registrations and live calls. `add_missing` also
    /// adopts calls we never heard of (at start and after the bus lagged).
    pub fn resync(&mut self, add_missing: bool) {
        let msgs = self.model.set_agent(self.pbx.has_agent());
        self.push(msgs);
        let msgs = self.model.set_extensions(self.pbx.extensions());
        self.push(msgs);
        for ext in self.model.extensions() {
            let msgs = self.model.set_contacts(&ext, self.pbx.contacts(&ext));
            self.push(msgs);
            let msgs = self.model.set_settings(&ext, self.pbx.settings(&ext).as_ref(), false);
            self.push(msgs.into_iter().collect());
        }
        let msgs = self.model.reconcile(&self.pbx.live_calls(), add_missing);
        self.push(msgs);
        let msgs = self.model.set_trunks(&self.pbx.trunks());
        self.push(msgs);
    }

    pub fn on_bus(&mut self, ev: &PbxEvent) {
        match ev {
            PbxEvent::DirectoryChanged { .. } => return self.resync(false), // a device appears or goes at once
            PbxEvent::TrunkChanged { .. } => {
                let msgs = self.model.set_trunks(&self.pbx.trunks());
                return self.push(msgs);
            }
            _ => {}
        }
        let msgs = self.model.on_event(ev, now_unix());
        self.push(msgs);
        if let PbxEvent::Registered { extension, .. } | PbxEvent::Unregistered { extension, .. } = ev {
            if !self.model.extensions().contains(extension) {
                self.resync(false); // added to the directory without telling us
            }
            let msgs = self.model.set_contacts(extension, self.pbx.contacts(extension));
            self.push(msgs);
        }
    }

    pub fn on_conn(&mut self, c: ConnEvent) {
        match c {
            ConnEvent::Connected => self.connected(),
            ConnEvent::Lost { reason, resume } => {
                self.failures += 1;
                if self.outbox.is_connected() {
                    tracing::warn!(broker = %self.broker, %reason, "MQTT connection lost; reconnecting");
                } else if self.failures == 1 || self.failures.is_multiple_of(20) {
                    tracing::warn!(broker = %self.broker, %reason, attempts = self.failures, "MQTT broker unreachable; retrying");
                } else {
                    tracing::debug!(broker = %self.broker, %reason, "MQTT connect failed");
                }
                self.outbox.disconnected();
                let _ = resume.send(());
            }
            ConnEvent::Written(pkid) => self.outbox.written(pkid),
            ConnEvent::Acked(pkid) => self.outbox.acked(pkid),
            ConnEvent::Message { topic, payload } => self.on_message(&topic, &payload),
        }
    }

    fn connected(&mut self) {
        self.failures = 0;
        let t = self.model.topics().clone();
        for filter in [t.ha_status(), t.command_filter(), t.pbx_command_filter(), t.devices()] {
            if let Err(e) = self.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                tracing::error!(%filter, "MQTT subscribe failed: {e}");
            }
        }
        let mut first = vec![Msg::state(t.status(), "online".into())];
        first.extend(self.model.discovery_all());
        let then = self.model.states_all();
        let queued = self.outbox.queued();
        let dropped = self.outbox.connected(first, then);
        tracing::info!(broker = %self.broker, queued_events = queued, "MQTT connected");
        if dropped > 0 {
            tracing::warn!(dropped, "MQTT: events dropped while the broker was away (queue of {MAX_QUEUED_EVENTS} full)");
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let t = self.model.topics().clone();
        if topic == t.ha_status() {
            // Home Assistant's birth message: it may have lost our discovery.
            if payload == b"online" {
                tracing::info!("Home Assistant is online: republishing discovery and states");
                let mut msgs = self.model.discovery_all();
                msgs.extend(self.model.states_all());
                self.push(msgs);
            }
        } else if topic == t.devices() {
            match serde_json::from_slice::<Vec<String>>(payload) {
                Ok(ids) => {
                    let msgs = self.model.stale_devices(&ids);
                    self.push(msgs);
                }
                Err(e) if !payload.is_empty() => tracing::warn!(%topic, "MQTT: unreadable device list: {e}"),
                Err(_) => {}
            }
        } else if let Some((id, verb)) = t.parse_command(topic) {
            self.command(topic, id, verb, payload);
        } else if let Some(verb) = t.parse_pbx_command(topic) {
            let shown = excerpt(payload);
            match commands::parse_pbx(verb, payload) {
                Ok(action) => {
                    tracing::info!(%topic, payload = %shown, "MQTT command");
                    self.run(topic, vec![action]);
                }
                Err(why) => tracing::warn!(%topic, payload = %shown, "MQTT command ignored: {why}"),
            }
        }
    }

    fn command(&mut self, topic: &str, id: &str, verb: &str, payload: &[u8]) {
        let shown = excerpt(payload);
        let Some(ext) = self.model.ext_of_id(id) else {
            tracing::warn!(%topic, payload = %shown, "MQTT command ignored: no extension `{id}`");
            return;
        };
        if Change::is_field(verb) {
            return self.setting(topic, ext, verb, payload, shown);
        }
        let plan = commands::parse(verb, payload)
            .and_then(|v| commands::plan(&ext, v, &self.model.oldest_first(self.pbx.calls_of(&ext))));
        let actions = match plan {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(%topic, payload = %shown, "MQTT command ignored: {why}");
                return;
            }
        };
        tracing::info!(%topic, payload = %shown, "MQTT command");
        self.run(topic, actions);
    }

    /// Off the bridge task: a command may take a while (dial waits for SIP).
    fn run(&self, topic: &str, actions: Vec<commands::Action>) {
        let pbx = self.pbx.clone();
        let topic = topic.to_string();
        tokio::spawn(async move {
            for a in actions {
                if let Err(e) = commands::execute(&pbx, &a).await {
                    tracing::warn!(%topic, action = ?a, "MQTT command failed: {e}");
                }
            }
        });
    }

    /// DND or a forward from Home Assistant. Whether it is refused here
    /// (payload) or by the PBX (unknown target, storage), the settings are
    /// published again, so Home Assistant shows what holds.
    fn setting(&mut self, topic: &str, ext: String, field: &str, payload: &[u8], shown: String) {
        let change = match Change::parse(field, payload) {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(%topic, payload = %shown, extension = %ext, field, "MQTT setting rejected: {why}");
                return self.settings_changed(&ext);
            }
        };
        tracing::info!(%topic, payload = %shown, "MQTT command");
        let pbx = self.pbx.clone();
        let done = self.settings_done.clone();
        let (topic, field) = (topic.to_string(), field.to_string());
        tokio::spawn(async move {
            if let Err(why) = pbx.change_setting(&ext, change).await {
                tracing::warn!(%topic, payload = %shown, extension = %ext, %field, "MQTT setting rejected: {why}");
            }
            let _ = done.send(ext);
        });
    }

    /// Publish an extension's settings as they are now, even unchanged.
    pub fn settings_changed(&mut self, ext: &str) {
        let msgs = self.model.set_settings(ext, self.pbx.settings(ext).as_ref(), true);
        self.push(msgs.into_iter().collect());
    }

    /// Hand queued messages to the client, as many as the window allows.
    pub fn pump(&mut self) {
        while let Some(m) = self.outbox.take_next() {
            if let Err(e) = self.client.try_publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload.into_bytes()) {
                tracing::debug!("MQTT client queue full, retrying later: {e}");
                self.outbox.give_back();
                break;
            }
        }
    }
}

/// The start of a command's payload, for the log (at most 64 bytes, lossy).
fn excerpt(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(64)]).into_owned()
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
