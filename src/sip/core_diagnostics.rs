//! The panel's Diagnostics as the SIP core serves them: recording an
//! exchange where a handler decided it, each device's recent exchanges, and
//! the bans in force (digest failures, floods, wrong API tokens) with the
//! administrator's unban.
use super::auth::request::unix_of;
use super::core::{SipCore, now_unix_ms, transport_name};
use super::diagnostics::{Exchange, Key, Reason, Record};
use rsipstack::sip::{Request, StatusCode};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// What a ban in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BanKind {
    /// `security.ban_after_failures` wrong SIP credentials from the address.
    SipAuth,
    /// As many for one extension from the address (the address may go on).
    SipAuthExtension,
    /// Over `security.flood_rate` requests a second.
    Flood,
    /// Wrong API tokens or panel sign-ins.
    Http,
}

impl BanKind {
    pub fn words(self) -> &'static str {
        match self {
            BanKind::SipAuth => "too many failed SIP authentications from this address",
            BanKind::SipAuthExtension => {
                "too many failed SIP authentications for this extension from this address"
            }
            BanKind::Flood => "SIP request flood (over security.flood_rate)",
            BanKind::Http => "too many wrong API tokens or panel sign-ins",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    pub address: IpAddr,
    /// For a ban of one extension (user name) from the address.
    pub extension: Option<String>,
    pub until_unix: i64,
    pub kind: BanKind,
}

impl SipCore {
    /// Record one request and the answer decided for it. `user`: the
    /// extension it authenticated as or claimed; a name the directory does
    /// not hold goes under the source address instead.
    pub(in crate::sip) fn note_exchange(
        &self,
        req: &Request,
        remote: SocketAddr,
        transport: Option<rsipstack::sip::Transport>,
        user: Option<&str>,
        status: StatusCode,
        reason: Reason,
    ) {
        let known = user.filter(|u| self.extension_exists(u));
        let key = match known {
            Some(u) => Key::Extension(u.to_string()),
            None => Key::Source(remote.ip()),
        };
        let (method, uri) = (req.method.to_string(), req.uri.to_string());
        let record = Record {
            key,
            method: &method,
            request_uri: &uri,
            source: remote,
            transport: transport.map_or("udp", transport_name),
            status: status.code(),
            reason,
            user: if known.is_some() { None } else { user },
        };
        if let Ok(mut log) = self.diagnostics.lock() {
            log.record(record, now_unix_ms());
        }
    }

    /// Every device's (extension's, or unknown source's) recent exchanges,
    /// newest first.
    pub fn diagnostics(&self) -> Vec<(Key, Vec<Exchange>)> {
        self.diagnostics
            .lock()
            .map(|l| l.snapshot())
            .unwrap_or_default()
    }

    /// Every ban in force now.
    pub fn ban_list(&self) -> Vec<BanInfo> {
        let now = Instant::now();
        let mut out = Vec::new();
        if let Ok(b) = self.bans.lock() {
            for (address, extension, until) in b.bans(now) {
                let kind = if extension.is_some() {
                    BanKind::SipAuthExtension
                } else {
                    BanKind::SipAuth
                };
                out.push(BanInfo {
                    address,
                    extension,
                    until_unix: unix_of(until),
                    kind,
                });
            }
        }
        if let Ok(f) = self.flood.lock() {
            out.extend(f.bans(now).into_iter().map(|(address, until)| BanInfo {
                address,
                extension: None,
                until_unix: unix_of(until),
                kind: BanKind::Flood,
            }));
        }
        if let Ok(b) = self.api_bans.lock() {
            out.extend(b.bans(now).into_iter().filter(|(_, e, _)| e.is_none()).map(
                |(address, _, until)| BanInfo {
                    address,
                    extension: None,
                    until_unix: unix_of(until),
                    kind: BanKind::Http,
                },
            ));
        }
        out
    }

    /// An administrator lifts every ban of `ip` (SIP digest, flood, API);
    /// false when it had none.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let sip = self
            .bans
            .lock()
            .map(|mut b| b.unban(ip, now))
            .unwrap_or(false);
        let flood = self
            .flood
            .lock()
            .map(|mut f| f.unban(ip, now))
            .unwrap_or(false);
        let api = self
            .api_bans
            .lock()
            .map(|mut b| b.unban(ip, now))
            .unwrap_or(false);
        sip || flood || api
    }
}
