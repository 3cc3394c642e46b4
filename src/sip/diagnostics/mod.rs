//! The panel's Diagnostics: the last SIP exchanges of each device, as the
//! registrar, the digest check, the ban list and INVITE routing decided them
//! (sans-IO: the time is an input; nothing here sends or sleeps).
//!
//! Bounded: at most `PER_KEY` exchanges per key; keys are either an
//! extension of the directory (a set the administrator made) or, for
//! requests naming no extension here, the source address. A scanner cycling
//! user names therefore fills one address's list; one cycling addresses
//! fills at most `MAX_SOURCES` lists, the least recently written going first,
//! and never pushes out an extension's. Extensions are capped too
//! (`MAX_EXTENSIONS`), in case a directory is larger than any household's.
//! No password, digest response or nonce is ever recorded: the request line
//! is method and Request-URI with any URI password dropped (`reason.rs`).
pub mod reason;

pub use reason::Reason;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// Exchanges kept per extension or source address.
pub const PER_KEY: usize = 20;
/// Source addresses (requests for no known extension) remembered at most.
pub const MAX_SOURCES: usize = 64;
/// Extensions remembered at most.
pub const MAX_EXTENSIONS: usize = 1024;

/// Whose list an exchange goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Extension(String),
    /// A request that named no extension of the directory.
    Source(IpAddr),
}

/// One request and what the PBX answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    pub at_unix_ms: i64,
    /// `METHOD Request-URI`, sanitised.
    pub request: String,
    pub source: String,
    pub transport: &'static str,
    pub status: u16,
    pub reason: Reason,
    /// The name an unknown extension's request claimed (printable, bounded).
    pub user: Option<String>,
}

#[derive(Debug, Default)]
struct List {
    entries: VecDeque<Exchange>,
    last_ms: i64,
}

#[derive(Debug, Default)]
pub struct DiagnosticsLog {
    extensions: HashMap<String, List>,
    sources: HashMap<IpAddr, List>,
}

/// What the caller knows of one exchange; `record` stamps and bounds it.
pub struct Record<'a> {
    pub key: Key,
    pub method: &'a str,
    pub request_uri: &'a str,
    pub source: SocketAddr,
    pub transport: &'static str,
    pub status: u16,
    pub reason: Reason,
    pub user: Option<&'a str>,
}

impl DiagnosticsLog {
    pub fn record(&mut self, r: Record<'_>, now_unix_ms: i64) {
        let exchange = Exchange {
            at_unix_ms: now_unix_ms,
            request: reason::request_line(r.method, r.request_uri),
            source: r.source.to_string(),
            transport: r.transport,
            status: r.status,
            reason: r.reason,
            user: r.user.map(|u| reason::printable(u, reason::MAX_USER)),
        };
        let list = match r.key {
            Key::Extension(ext) => {
                if !self.extensions.contains_key(&ext) && self.extensions.len() >= MAX_EXTENSIONS {
                    evict_oldest(&mut self.extensions);
                }
                self.extensions.entry(ext).or_default()
            }
            Key::Source(ip) => {
                if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
                    evict_oldest(&mut self.sources);
                }
                self.sources.entry(ip).or_default()
            }
        };
        if list.entries.len() >= PER_KEY {
            list.entries.pop_front();
        }
        list.last_ms = now_unix_ms;
        list.entries.push_back(exchange);
    }

    /// An extension left the directory: its list goes with it.
    pub fn forget_extension(&mut self, ext: &str) {
        self.extensions.remove(ext);
    }

    /// Every list, extensions first (by number), then addresses; newest
    /// exchange first in each.
    pub fn snapshot(&self) -> Vec<(Key, Vec<Exchange>)> {
        let mut out: Vec<(Key, Vec<Exchange>)> = self
            .extensions
            .iter()
            .map(|(e, l)| {
                (
                    Key::Extension(e.clone()),
                    l.entries.iter().rev().cloned().collect(),
                )
            })
            .chain(
                self.sources
                    .iter()
                    .map(|(ip, l)| (Key::Source(*ip), l.entries.iter().rev().cloned().collect())),
            )
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Keys held (for tests and metrics).
    pub fn keys(&self) -> usize {
        self.extensions.len() + self.sources.len()
    }
}

fn evict_oldest<K: Clone + Eq + std::hash::Hash>(map: &mut HashMap<K, List>) {
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, l)| l.last_ms)
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests;
