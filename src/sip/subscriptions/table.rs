//! The subscription table (RFC 6665), sans-IO: SUBSCRIBEs, time and NOTIFY
//! outcomes go in; what to answer and which NOTIFYs to send come out. No
//! sockets and no clock: `now` is seconds on any monotonic scale.
use std::collections::HashMap;

/// The event packages served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Package {
    /// RFC 4235 dialog state: BLF keys.
    Dialog,
    /// RFC 3842 message summary: the message-waiting lamp.
    MessageSummary,
}

/// What a `489 Bad Event` names in `Allow-Events`.
pub const ALLOW_EVENTS: &str = "dialog, message-summary";

impl Package {
    /// The package of an `Event` header value (`dialog;id=1`); `None` for any other.
    pub fn parse(event: &str) -> Option<Package> {
        let name = event.split(';').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("dialog") {
            Some(Package::Dialog)
        } else if name.eq_ignore_ascii_case("message-summary") {
            Some(Package::MessageSummary)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Package::Dialog => "dialog",
            Package::MessageSummary => "message-summary",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Package::Dialog => "application/dialog-info+xml",
            Package::MessageSummary => "application/simple-message-summary",
        }
    }
}

/// `sip.subscriptions`: lifetimes and caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_per_extension: usize,
    pub max_total: usize,
}

/// Where a subscription's NOTIFYs go, as its SUBSCRIBE set the dialog up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The subscriber's Contact: the NOTIFY's Request-URI.
    pub remote_target: String,
    /// The SUBSCRIBE's Record-Route values, in order: the NOTIFY's Route.
    pub route_set: Vec<String>,
    /// Source address of the SUBSCRIBE (`ip:port`): the flow NOTIFYs take.
    pub destination: String,
    /// `udp`, `tcp`, `tls`, `ws`, `wss`.
    pub transport: String,
}

/// The dialog identifiers: ours (the To tag we gave) and the subscriber's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogIds {
    pub call_id: String,
    /// The subscriber's From tag.
    pub remote_tag: String,
    /// Our To tag.
    pub local_tag: String,
}

/// One SUBSCRIBE from an authenticated extension.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// The authenticated extension that sent it.
    pub owner: String,
    pub package: Package,
    /// The `id` parameter of its Event header, echoed in NOTIFYs.
    pub event_id: Option<String>,
    /// The Request-URI's user: the extension or group watched.
    pub target: String,
    /// Whether `target` is an extension or group of the PBX.
    pub target_known: bool,
    /// The Expires header, if any.
    pub expires: Option<u32>,
    pub call_id: String,
    pub remote_tag: String,
    /// The To tag: `Some` for a refresh within an existing subscription.
    pub to_tag: Option<String>,
    /// The subscriber's From (name-addr) and To URI, for the NOTIFY's To and From.
    pub remote_uri: String,
    pub local_uri: String,
    pub peer: Peer,
}

/// Why a SUBSCRIBE is refused; each maps to one SIP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 404: the target is no extension or group.
    UnknownTarget,
    /// 403: message-summary for another extension than one's own, or a
    /// refresh by another extension than the subscription's owner.
    NotYours,
    /// 423 with Min-Expires.
    IntervalTooBrief(u32),
    /// 403: this extension holds `max_per_extension` subscriptions already.
    ExtensionFull,
    /// 503: the PBX holds `max_total` subscriptions already.
    TableFull,
    /// 481: a refresh of a subscription we do not have.
    NoSuchSubscription,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::UnknownTarget => 404,
            Refusal::NotYours | Refusal::ExtensionFull => 403,
            Refusal::IntervalTooBrief(_) => 423,
            Refusal::TableFull => 503,
            Refusal::NoSuchSubscription => 481,
        }
    }
}

/// The `Subscription-State` a NOTIFY carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Active { expires: u32 },
    Terminated { reason: &'static str },
}

impl SubState {
    pub fn header(&self) -> String {
        match self {
            SubState::Active { expires } => format!("active;expires={expires}"),
            SubState::Terminated { reason } => format!("terminated;reason={reason}"),
        }
    }
}

/// Everything a NOTIFY needs but its body: the glue builds the body for
/// `package` and `target` and sends it within the dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    pub id: u64,
    pub owner: String,
    pub package: Package,
    pub event_id: Option<String>,
    pub target: String,
    pub ids: DialogIds,
    pub remote_uri: String,
    pub local_uri: String,
    pub peer: Peer,
    /// Our CSeq in this dialog: one more than the last NOTIFY's.
    pub cseq: u32,
    /// The dialog-info `version`: 0 for the first body, then one more each time.
    pub version: u32,
    pub state: SubState,
}

/// A SUBSCRIBE's answer: 200 OK (with `expires` and our `local_tag` as To
/// tag), then `notify` at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub expires: u32,
    pub local_tag: String,
    pub notify: Notify,
}

#[derive(Debug, Clone)]
struct Subscription {
    owner: String,
    package: Package,
    event_id: Option<String>,
    target: String,
    ids: DialogIds,
    remote_uri: String,
    local_uri: String,
    peer: Peer,
    expires_at: u64,
    /// The last CSeq we sent (0: none yet).
    cseq: u32,
    /// The next body's version.
    version: u32,
}

impl Subscription {
    fn notify(&mut self, id: u64, state: SubState) -> Notify {
        self.cseq += 1;
        let version = self.version;
        self.version += 1;
        Notify {
            id,
            owner: self.owner.clone(),
            package: self.package,
            event_id: self.event_id.clone(),
            target: self.target.clone(),
            ids: self.ids.clone(),
            remote_uri: self.remote_uri.clone(),
            local_uri: self.local_uri.clone(),
            peer: self.peer.clone(),
            cseq: self.cseq,
            version,
            state,
        }
    }
}

pub struct Table {
    limits: Limits,
    subs: HashMap<u64, Subscription>,
    by_dialog: HashMap<DialogIds, u64>,
    next_id: u64,
}

impl Table {
    pub fn new(limits: Limits) -> Table {
        Table { limits, subs: HashMap::new(), by_dialog: HashMap::new(), next_id: 1 }
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Subscriptions `owner` holds.
    pub fn count_of(&self, owner: &str) -> usize {
        self.subs.values().filter(|s| s.owner == owner).count()
    }

    /// A SUBSCRIBE (new, refresh or `Expires: 0`). `new_tag` is our To tag
    /// should this make a new subscription.
    pub fn subscribe(&mut self, req: Subscribe, new_tag: String, now: u64) -> Result<Accepted, Refusal> {
        if let Some(tag) = &req.to_tag {
            return self.refresh(req.clone(), tag, now);
        }
        if !req.target_known {
            return Err(Refusal::UnknownTarget);
        }
        if req.package == Package::MessageSummary && req.target != req.owner {
            return Err(Refusal::NotYours);
        }
        let expires = self.lifetime(req.expires)?;
        let ids = DialogIds { call_id: req.call_id.clone(), remote_tag: req.remote_tag.clone(), local_tag: new_tag.clone() };
        let mut sub = Subscription {
            owner: req.owner.clone(),
            package: req.package,
            event_id: req.event_id.clone(),
            target: req.target.clone(),
            ids: ids.clone(),
            remote_uri: req.remote_uri,
            local_uri: req.local_uri,
            peer: req.peer,
            expires_at: now + u64::from(expires),
            cseq: 0,
            version: 0,
        };
        let id = self.next_id;
        self.next_id += 1;
        if expires == 0 {
            // A fetch (RFC 6665 4.4.3): the state once, nothing kept.
            let notify = sub.notify(id, SubState::Terminated { reason: "timeout" });
            return Ok(Accepted { expires: 0, local_tag: new_tag, notify });
        }
        if self.count_of(&req.owner) >= self.limits.max_per_extension {
            return Err(Refusal::ExtensionFull);
        }
        if self.subs.len() >= self.limits.max_total {
            return Err(Refusal::TableFull);
        }
        let notify = sub.notify(id, SubState::Active { expires });
        self.by_dialog.insert(ids, id);
        self.subs.insert(id, sub);
        Ok(Accepted { expires, local_tag: new_tag, notify })
    }

    fn refresh(&mut self, req: Subscribe, tag: &str, now: u64) -> Result<Accepted, Refusal> {
        let ids = DialogIds { call_id: req.call_id.clone(), remote_tag: req.remote_tag.clone(), local_tag: tag.to_string() };
        let Some(&id) = self.by_dialog.get(&ids) else {
            return Err(Refusal::NoSuchSubscription);
        };
        let sub = self.subs.get_mut(&id).expect("indexed");
        if sub.owner != req.owner {
            return Err(Refusal::NotYours);
        }
        if sub.package != req.package {
            return Err(Refusal::NoSuchSubscription);
        }
        let expires = lifetime(&self.limits, req.expires)?;
        if expires == 0 {
            let notify = sub.notify(id, SubState::Terminated { reason: "timeout" });
            self.drop_sub(id);
            return Ok(Accepted { expires: 0, local_tag: tag.to_string(), notify });
        }
        sub.expires_at = now + u64::from(expires);
        // A refreshed route: the device may have moved to another flow.
        sub.peer = req.peer;
        let notify = sub.notify(id, SubState::Active { expires });
        Ok(Accepted { expires, local_tag: tag.to_string(), notify })
    }

    fn lifetime(&self, asked: Option<u32>) -> Result<u32, Refusal> {
        lifetime(&self.limits, asked)
    }

    /// NOTIFYs for every subscription to `package` watching one of `targets`
    /// (their state changed).
    pub fn changed(&mut self, package: Package, targets: &[String], now: u64) -> Vec<Notify> {
        let mut ids: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.package == package && targets.contains(&s.target) && s.expires_at > now)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let s = self.subs.get_mut(&id).expect("listed");
                let left = (s.expires_at - now) as u32;
                s.notify(id, SubState::Active { expires: left })
            })
            .collect()
    }

    /// Subscriptions past their time: removed, each with its final NOTIFY.
    pub fn expire(&mut self, now: u64) -> Vec<Notify> {
        let mut gone: Vec<u64> = self.subs.iter().filter(|(_, s)| s.expires_at <= now).map(|(id, _)| *id).collect();
        gone.sort_unstable();
        self.terminate(gone, "timeout")
    }

    /// When the next subscription runs out.
    pub fn next_deadline(&self) -> Option<u64> {
        self.subs.values().map(|s| s.expires_at).min()
    }

    /// A NOTIFY was refused (481, 408, any failure): the subscription goes,
    /// with no further NOTIFY.
    pub fn notify_failed(&mut self, id: u64) -> bool {
        self.drop_sub(id)
    }

    /// An extension left the PBX: its own subscriptions go (`rejected`: it
    /// may no longer watch) and so do those watching it (`noresource`).
    pub fn extension_removed(&mut self, ext: &str) -> Vec<Notify> {
        let mut owned: Vec<u64> = self.subs.iter().filter(|(_, s)| s.owner == ext).map(|(id, _)| *id).collect();
        owned.sort_unstable();
        let mut out = self.terminate(owned, "rejected");
        let mut watched: Vec<u64> = self.subs.iter().filter(|(_, s)| s.target == ext).map(|(id, _)| *id).collect();
        watched.sort_unstable();
        out.extend(self.terminate(watched, "noresource"));
        out
    }

    fn terminate(&mut self, ids: Vec<u64>, reason: &'static str) -> Vec<Notify> {
        ids.into_iter()
            .filter_map(|id| {
                let n = self.subs.get_mut(&id)?.notify(id, SubState::Terminated { reason });
                self.drop_sub(id);
                Some(n)
            })
            .collect()
    }

    fn drop_sub(&mut self, id: u64) -> bool {
        match self.subs.remove(&id) {
            Some(s) => {
                self.by_dialog.remove(&s.ids);
                true
            }
            None => false,
        }
    }
}

/// The granted lifetime: the asked one (or the default) bounded by the
/// maximum; below the minimum (but not 0) refused with 423.
fn lifetime(limits: &Limits, asked: Option<u32>) -> Result<u32, Refusal> {
    match asked {
        Some(0) => Ok(0),
        Some(e) if e < limits.min_expires => Err(Refusal::IntervalTooBrief(limits.min_expires)),
        Some(e) => Ok(e.min(limits.max_expires)),
        None => Ok(limits.default_expires.clamp(limits.min_expires, limits.max_expires)),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
