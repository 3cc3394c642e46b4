//! The location service: which contacts each extension is reachable at (sans-IO).
//!
//! Time comes in as unix seconds so that bindings survive a restart unchanged.
use rsipstack::sip::Transport;
use std::collections::HashMap;

/// One registered contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub contact_uri: String,
    /// Where the REGISTER really came from (ip:port): requests go there, which
    /// is what makes devices behind NAT reachable.
    pub source: String,
    /// Requests go back over the same transport (UDP, TCP, TLS, WS, WSS).
    pub transport: Transport,
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    pub registered_at: i64,
}

/// One Contact of a REGISTER, already parsed.
#[derive(Debug, Clone)]
pub struct ContactRequest {
    pub uri: String,
    /// `;expires=` on the Contact, which wins over the Expires header.
    pub expires: Option<u32>,
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct RegisterRequest {
    pub contacts: Vec<ContactRequest>,
    /// `Contact: *` (must come with Expires: 0).
    pub wildcard: bool,
    pub expires_header: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    pub source: String,
    pub transport: Transport,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
}

/// A change to persist and announce.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added(Binding),
    Refreshed(Binding),
    Removed { contact_uri: String, reason: &'static str },
}

#[derive(Debug, PartialEq)]
pub enum RegisterError {
    /// 423 Interval Too Brief, with the Min-Expires to send back.
    IntervalTooBrief(u32),
    /// 400: `*` with other contacts or with Expires other than 0.
    BadWildcard,
    /// 500 / out of order: a CSeq not above the last one of the same Call-ID.
    OutOfOrder,
}

#[derive(Default, Debug)]
pub struct BindingTable {
    by_extension: HashMap<String, Vec<Binding>>,
}

impl BindingTable {
    pub fn restore(&mut self, extension: &str, binding: Binding) {
        self.by_extension.entry(extension.to_string()).or_default().push(binding);
    }

    /// Current unexpired bindings of an extension.
    pub fn lookup(&self, extension: &str, now: i64) -> Vec<Binding> {
        self.by_extension
            .get(extension)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    pub fn is_registered(&self, extension: &str, now: i64) -> bool {
        self.by_extension.get(extension).is_some_and(|v| v.iter().any(|b| b.expires_at > now))
    }

    pub fn registered_extensions(&self, now: i64) -> usize {
        self.by_extension.values().filter(|v| v.iter().any(|b| b.expires_at > now)).count()
    }

    pub fn binding_count(&self) -> usize {
        self.by_extension.values().map(Vec::len).sum()
    }

    /// Apply a REGISTER (RFC 3261 §10.3 steps 6-8). Returns the changes made.
    pub fn register(&mut self, extension: &str, req: &RegisterRequest, limits: &Limits, now: i64) -> Result<Vec<Change>, RegisterError> {
        if req.wildcard {
            if !req.contacts.is_empty() || req.expires_header != Some(0) {
                return Err(RegisterError::BadWildcard);
            }
            let removed = self.by_extension.remove(extension).unwrap_or_default();
            return Ok(removed
                .into_iter()
                .map(|b| Change::Removed { contact_uri: b.contact_uri, reason: "unregistered" })
                .collect());
        }
        // Validate every contact before changing anything: a REGISTER is all or nothing.
        let mut wanted = Vec::with_capacity(req.contacts.len());
        for c in &req.contacts {
            let asked = c.expires.or(req.expires_header).unwrap_or(limits.default_expires);
            if asked != 0 && asked < limits.min_expires {
                return Err(RegisterError::IntervalTooBrief(limits.min_expires));
            }
            wanted.push((c, asked.min(limits.max_expires)));
        }
        let list = self.by_extension.entry(extension.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        for (c, _) in &wanted {
            if let Some(b) = list.iter().find(|b| same_contact(b, c))
                && b.call_id == req.call_id && req.cseq <= b.cseq {
                    return Err(RegisterError::OutOfOrder);
                }
        }
        let mut changes = Vec::new();
        for (c, expires) in wanted {
            let pos = list.iter().position(|b| same_contact(b, c));
            if expires == 0 {
                if let Some(i) = pos {
                    let b = list.remove(i);
                    changes.push(Change::Removed { contact_uri: b.contact_uri, reason: "unregistered" });
                }
                continue;
            }
            let binding = Binding {
                contact_uri: c.uri.clone(),
                source: req.source.clone(),
                transport: req.transport,
                expires_at: now + i64::from(expires),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                user_agent: req.user_agent.clone(),
                instance_id: c.instance_id.clone(),
                reg_id: c.reg_id,
                registered_at: pos.map(|i| list[i].registered_at).unwrap_or(now),
            };
            match pos {
                Some(i) => {
                    // A device that re-registers with a new Contact URI but the
                    // same instance replaces its old binding (RFC 5626).
                    if list[i].contact_uri != binding.contact_uri {
                        changes.push(Change::Removed { contact_uri: list[i].contact_uri.clone(), reason: "replaced" });
                        list[i] = binding.clone();
                        changes.push(Change::Added(binding));
                    } else {
                        list[i] = binding.clone();
                        changes.push(Change::Refreshed(binding));
                    }
                }
                None => {
                    if list.len() >= limits.max_contacts {
                        // Keep the newest: the oldest binding is most likely a dead device.
                        let oldest = (0..list.len()).min_by_key(|&i| list[i].registered_at).unwrap_or(0);
                        let b = list.remove(oldest);
                        changes.push(Change::Removed { contact_uri: b.contact_uri, reason: "replaced" });
                    }
                    list.push(binding.clone());
                    changes.push(Change::Added(binding));
                }
            }
        }
        if list.is_empty() {
            self.by_extension.remove(extension);
        }
        Ok(changes)
    }

    /// Drop every binding of an extension (it was removed from the config).
    pub fn remove_extension(&mut self, extension: &str) -> Vec<Binding> {
        self.by_extension.remove(extension).unwrap_or_default()
    }

    /// Transport and source of every binding: the connections (TCP, TLS, WS)
    /// that must stay open because a device is reached over them.
    pub fn flows(&self) -> std::collections::HashSet<(Transport, String)> {
        self.by_extension.values().flatten().map(|b| (b.transport, b.source.clone())).collect()
    }

    /// Whether a binding is reached over this connection.
    pub fn has_flow(&self, transport: Transport, source: &str) -> bool {
        self.by_extension.values().flatten().any(|b| b.transport == transport && b.source == source)
    }

    /// A connection-bound flow ended (a browser's WebSocket closed): its
    /// bindings can never be reached again, so they go now rather than at expiry.
    pub fn remove_flow(&mut self, transport: Transport, source: &str) -> Vec<(String, Binding)> {
        let mut gone = Vec::new();
        self.by_extension.retain(|ext, list| {
            list.retain(|b| {
                let keep = !(b.transport == transport && b.source == source);
                if !keep {
                    gone.push((ext.clone(), b.clone()));
                }
                keep
            });
            !list.is_empty()
        });
        gone
    }

    /// Remove expired bindings, returning (extension, binding) for each.
    pub fn sweep(&mut self, now: i64) -> Vec<(String, Binding)> {
        let mut gone = Vec::new();
        self.by_extension.retain(|ext, list| {
            list.retain(|b| {
                let keep = b.expires_at > now;
                if !keep {
                    gone.push((ext.clone(), b.clone()));
                }
                keep
            });
            !list.is_empty()
        });
        gone
    }
}

impl Binding {
    /// A browser's registration (the SIP Core card or the panel, over WebSocket).
    pub fn is_browser(&self) -> bool {
        matches!(self.transport, Transport::Ws | Transport::Wss)
    }

    /// The host the device registered from (its NAT's public address).
    pub fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.source.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
    }

    /// Where requests to this binding are sent (ip:port).
    ///
    /// Over TCP/TLS/WS the device's own connection is the only way in. Over
    /// UDP the Contact is trusted when it names the address the REGISTER came
    /// from (a device on the LAN, perhaps registering from another socket);
    /// a Contact with another (private) address or a host name is a device
    /// behind NAT, reachable only at the source.
    pub fn delivery_address(&self) -> String {
        if self.transport != Transport::Udp {
            return self.source.clone();
        }
        let Ok(source) = self.source.parse::<std::net::SocketAddr>() else {
            return self.source.clone();
        };
        match contact_socket(&self.contact_uri) {
            Some(contact) if contact.ip() == source.ip() => contact.to_string(),
            _ => self.source.clone(),
        }
    }
}

/// `sip:user@1.2.3.4:5062;params` -> 1.2.3.4:5062 (5060 when no port).
fn contact_socket(uri: &str) -> Option<std::net::SocketAddr> {
    let rest = uri.split_once(':')?.1;
    let host_port = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host_port = host_port.split([';', '?', '>']).next()?;
    if let Ok(sa) = host_port.parse::<std::net::SocketAddr>() {
        return Some(sa);
    }
    let ip = host_port.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok()?;
    Some(std::net::SocketAddr::new(ip, 5060))
}

fn same_contact(b: &Binding, c: &ContactRequest) -> bool {
    match (&b.instance_id, &c.instance_id) {
        (Some(a), Some(x)) => a == x && b.reg_id == c.reg_id,
        _ => b.contact_uri == c.uri,
    }
}

#[cfg(test)]
#[path = "bindings_tests.rs"]
mod tests;
