//! NOTIFYs on the wire: built from a [`Notify`] and its body, sent within
//! the subscription's dialog over the flow its SUBSCRIBE came by, through
//! rsipstack's client transaction. Bus events and time go to the table here.
use super::bodies::{self, Counts};
use super::table::{Notify, Package, SubState};
use super::{Queued, Subscriptions, QUEUE};
use crate::events::PbxEvent;
use crate::sip::core::{transport_from_name, SipCore, SipCoreRef};
use rsipstack::sip::{Header, Method, SipMessage, StatusCodeKind};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How long a subscriber may take to answer a NOTIFY (Timer F is 32 s; a
/// phone that does not answer within this is gone).
const ANSWER_WITHIN: Duration = Duration::from_secs(16);

impl Subscriptions {
    /// Queues `n` behind the subscription's earlier NOTIFYs; `body`: fixed
    /// now, else built from the state when it is sent. A subscriber whose
    /// queue is full loses its subscription.
    pub fn send(&self, core: &SipCoreRef, n: Notify, body: Option<String>) {
        let id = n.id;
        let final_one = matches!(n.state, SubState::Terminated { .. });
        let Ok(mut queues) = self.queues.lock() else { return };
        let q = queues.entry(id).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(drain(core.clone(), id, rx));
            tx
        });
        if q.try_send((n, body)).is_err() {
            tracing::warn!(subscription = id, "subscriber does not keep up with its NOTIFYs: subscription dropped");
            queues.remove(&id);
            drop(queues);
            if let Ok(mut t) = self.table.lock() {
                t.notify_failed(id);
            }
            return;
        }
        if final_one {
            // the task sends what is queued, then ends with the sender gone
            queues.remove(&id);
        }
    }

    /// Sends each of `notifies` (their bodies built now).
    fn send_all(&self, core: &SipCoreRef, notifies: Vec<Notify>) {
        for n in notifies {
            self.send(core, n, None);
        }
    }

    /// An extension left the directory: its subscriptions and its watchers' end.
    pub fn extension_removed(&self, core: &SipCoreRef, ext: &str) {
        let gone = self.table.lock().map(|mut t| t.extension_removed(ext)).unwrap_or_default();
        if gone.is_empty() {
            return;
        }
        tracing::info!(extension = %ext, subscriptions = gone.len(), "extension removed: its subscriptions end");
        self.send_all(core, gone);
    }
}

/// One subscription's NOTIFYs, one at a time; a failure ends the subscription.
async fn drain(core: SipCoreRef, id: u64, mut rx: mpsc::Receiver<Queued>) {
    while let Some((n, fixed)) = rx.recv().await {
        let body = match fixed {
            Some(b) => b,
            None => body_of(&core, &n).await,
        };
        let last = matches!(n.state, SubState::Terminated { .. });
        match send_notify(&core, &n, body).await {
            Ok(()) => {}
            Err(why) => {
                tracing::info!(subscription = id, owner = %n.owner, target = %n.target, "NOTIFY failed ({why}): subscription removed");
                if let Ok(mut t) = core.subscriptions.table.lock() {
                    t.notify_failed(id);
                }
                if let Ok(mut q) = core.subscriptions.queues.lock() {
                    q.remove(&id);
                }
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// The host our URIs in bodies name.
fn domain(core: &SipCore) -> String {
    core.sip_host()
}

async fn body_of(core: &SipCoreRef, n: &Notify) -> String {
    match n.package {
        Package::Dialog => {
            let dialogs = core.subscriptions.blf.lock().map(|b| b.dialogs(&n.target)).unwrap_or_default();
            bodies::dialog_info(&n.target, &domain(core), n.version, &dialogs, &|num| display_name(core, num))
        }
        Package::MessageSummary => bodies::message_summary(&n.target, &domain(core), counts(core, &n.target).await),
    }
}

/// The name a BLF key shows for a number: an extension's, or a ring group's.
fn display_name(core: &SipCoreRef, number: &str) -> Option<String> {
    core.extension(number).and_then(|e| e.name).or_else(|| core.config.group(number).and_then(|g| g.name.clone()))
}

/// A dialog NOTIFY for a state change carries the changed list (an ended
/// call shown once as terminated), not the tracker's current one.
fn send_dialog_change(core: &SipCoreRef, ext: &str, dialogs: &[super::blf::Dialog]) {
    let now = core.subscriptions.now();
    let notifies = core.subscriptions.table.lock().map(|mut t| t.changed(Package::Dialog, &[ext.to_string()], now)).unwrap_or_default();
    for n in notifies {
        let body = bodies::dialog_info(&n.target, &domain(core), n.version, dialogs, &|num| display_name(core, num));
        core.subscriptions.send(core, n, Some(body));
    }
}

/// Mailboxes of `ext`: its own and those of the groups it is a member of.
pub fn mailboxes(core: &SipCore, ext: &str) -> Vec<String> {
    let mut boxes = vec![ext.to_string()];
    for g in &core.config.groups {
        if g.members.iter().any(|m| m == ext) || (g.everyone && is_ha_user(core, ext)) {
            boxes.push(g.extension.clone());
        }
    }
    boxes
}

fn is_ha_user(core: &SipCore, ext: &str) -> bool {
    core.extension(ext).is_some_and(|e| e.source == crate::storage::SOURCE_HA_USER)
}

/// Extensions a message for `mailbox` is shown to: the extension itself, or a group's members.
fn shown_to(core: &SipCore, mailbox: &str) -> Vec<String> {
    match core.config.group(mailbox) {
        Some(_) => group_members(core, mailbox),
        None => vec![mailbox.to_string()],
    }
}

/// A group's member extensions (listed, then every HA user's for `everyone`).
fn group_members(core: &SipCore, group: &str) -> Vec<String> {
    let Some(g) = core.config.group(group) else { return Vec::new() };
    let mut m: Vec<String> = g.members.iter().filter(|m| *m != crate::config::AGENT_MEMBER).cloned().collect();
    if g.everyone {
        let mut users: Vec<String> = core.extension_rows().into_iter().filter(|e| e.source == crate::storage::SOURCE_HA_USER).map(|e| e.extension).collect();
        users.sort();
        m.extend(users);
    }
    m.dedup();
    m
}

async fn counts(core: &SipCoreRef, ext: &str) -> Counts {
    match core.store.message_counts(&mailboxes(core, ext)).await {
        Ok((new, old)) => Counts { new, old },
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), extension = %ext, "message counts could not be read");
            Counts::default()
        }
    }
}

/// One NOTIFY and its final response; `Err` says why it failed.
async fn send_notify(core: &SipCoreRef, n: &Notify, body: String) -> Result<(), String> {
    let uri = rsipstack::sip::Uri::try_from(n.peer.remote_target.as_str()).map_err(|e| format!("bad contact: {e}"))?;
    let transport = transport_from_name(&n.peer.transport);
    let addr: std::net::SocketAddr = n.peer.destination.parse().map_err(|_| "bad destination".to_string())?;
    let dest = SipAddr { r#type: Some(transport), addr: addr.into() };
    let via = match core.endpoint.transport_layer.lookup(&dest, None).await {
        Ok((conn, _)) => core.endpoint.get_via(Some(conn.get_addr().clone()), None),
        Err(e) => return Err(format!("no flow to the subscriber: {e}")),
    }
    .map_err(|e| e.to_string())?;
    let local = rsipstack::sip::Uri::try_from(n.local_uri.as_str()).map_err(|e| e.to_string())?;
    let remote = rsipstack::sip::Uri::try_from(n.remote_uri.as_str()).map_err(|e| e.to_string())?;
    let from = rsipstack::sip::typed::From { display_name: None, uri: local, params: vec![] }.with_tag(n.ids.local_tag.clone().into());
    let to = rsipstack::sip::typed::To { display_name: None, uri: remote, params: vec![] }.with_tag(n.ids.remote_tag.clone().into());
    let call_id = rsipstack::sip::headers::CallId::new(n.ids.call_id.clone());
    let mut req = core.endpoint.make_request(Method::Notify, uri, via, from, to, n.cseq, Some(call_id));
    for r in &n.peer.route_set {
        req.headers.push(Header::Route(format!("<{r}>").into()));
    }
    let event = match &n.event_id {
        Some(id) => format!("{};id={id}", n.package.name()),
        None => n.package.name().to_string(),
    };
    req.headers.push(Header::Event(event.into()));
    req.headers.push(Header::SubscriptionState(n.state.header().into()));
    req.headers.push(Header::Contact(format!("<{}>", core.contact_uri(None, crate::sip::core::listener_transport(transport))).into()));
    req.headers.push(Header::ContentType(n.package.content_type().into()));
    req.headers.push(Header::ContentLength((body.len() as u32).into()));
    req.body = body.into_bytes();
    let key = TransactionKey::from_request(&req, TransactionRole::Client).map_err(|e| e.to_string())?;
    let mut tx = Transaction::new_client(key, req, core.endpoint.clone(), None);
    tx.destination = Some(dest);
    tx.send().await.map_err(|e| format!("not sent: {e}"))?;
    let outcome = tokio::time::timeout(ANSWER_WITHIN, async {
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(r) = msg {
                match r.status_code.kind() {
                    StatusCodeKind::Provisional => continue,
                    StatusCodeKind::Successful => return Ok(()),
                    _ => return Err(format!("answered {}", r.status_code)),
                }
            }
        }
        Err("no answer".to_string())
    })
    .await;
    outcome.unwrap_or_else(|_| Err("no answer in time".into()))
}

/// Feeds call and message events to the BLF tracker and the table, and
/// time (once a second) for expiry.
pub async fn run(core: SipCoreRef) {
    let mut events = core.bus.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Ok(e) => on_event(&core, &e).await,
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "subscriptions missed events: BLF state may be stale until the next call"),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let now = core.subscriptions.now();
                let gone = core.subscriptions.table.lock().map(|mut t| t.expire(now)).unwrap_or_default();
                if !gone.is_empty() {
                    tracing::debug!(count = gone.len(), "subscriptions expired");
                }
                core.subscriptions.send_all(&core, gone);
            }
        }
    }
}

async fn on_event(core: &SipCoreRef, e: &PbxEvent) {
    match e {
        PbxEvent::Ringing { callee, .. } | PbxEvent::Answered { callee, .. } | PbxEvent::Ended { callee, .. } | PbxEvent::Missed { callee, .. } => {
            let members = group_members(core, callee);
            let changed = core.subscriptions.blf.lock().map(|mut b| b.on_event(e, &members)).unwrap_or_default();
            for (ext, dialogs) in changed {
                send_dialog_change(core, &ext, &dialogs);
            }
        }
        PbxEvent::Message { callee, .. } | PbxEvent::MessageRead { callee, .. } => {
            let now = core.subscriptions.now();
            let exts = shown_to(core, callee);
            let notifies = core.subscriptions.table.lock().map(|mut t| t.changed(Package::MessageSummary, &exts, now)).unwrap_or_default();
            core.subscriptions.send_all(core, notifies);
        }
        _ => {}
    }
}
