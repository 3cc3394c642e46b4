//! Panel sessions (sans-IO): who a session cookie stands for, until when;
//! the one-time administrator link; the sign-in password check. Time and the
//! new session ids come in as arguments, so every decision is unit-tested
//! without clocks or randomness.
use crate::sip::auth::nonces::constant_time_eq;
use crate::storage::credentials::{ha1, Algorithm};
use crate::storage::ExtensionRow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a session lasts without being used.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past it the one closest to expiry goes.
pub const MAX_SESSIONS: usize = 1000;

/// What a session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The administrator (the one-time link, or `http.api_token`).
    Admin,
    /// An extension signed in with its SIP password: its own things only.
    Extension(String),
    /// An administrator who also has a phone: a Home Assistant administrator
    /// through ingress, with the extension the add-on gave them.
    AdminPhone(String),
}

impl Role {
    pub fn is_admin(&self) -> bool {
        matches!(self, Role::Admin | Role::AdminPhone(_))
    }

    /// The extension whose phone this is, if any.
    pub fn extension(&self) -> Option<&str> {
        match self {
            Role::Admin => None,
            Role::Extension(e) | Role::AdminPhone(e) => Some(e),
        }
    }
}

#[derive(Debug)]
struct Session {
    role: Role,
    expires_at: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
    /// The one-time administrator link's token, until it is used.
    login_token: Option<String>,
    ttl: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(login_token: Option<String>, ttl: Duration, max: usize) -> Sessions {
        Sessions { by_id: HashMap::new(), login_token, ttl, max: max.max(1) }
    }

    /// The one-time link: the right token opens an administrator session
    /// `new_id` and is gone; any other (or a second use) opens nothing.
    pub fn redeem_login(&mut self, given: &str, now: Instant, new_id: String) -> Option<String> {
        let token = self.login_token.as_deref()?;
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return None;
        }
        self.login_token = None;
        Some(self.open(Role::Admin, now, new_id))
    }

    /// A new session `id` for `role`.
    pub fn open(&mut self, role: Role, now: Instant, id: String) -> String {
        self.by_id.retain(|_, s| s.expires_at > now);
        while self.by_id.len() >= self.max {
            let Some(oldest) = self.by_id.iter().min_by_key(|(_, s)| s.expires_at).map(|(k, _)| k.clone()) else { break };
            self.by_id.remove(&oldest);
        }
        self.by_id.insert(id.clone(), Session { role, expires_at: now + self.ttl });
        id
    }

    /// The role of session `id` when it is live (its lifetime starts again);
    /// an expired one is removed.
    pub fn role(&mut self, id: &str, now: Instant) -> Option<Role> {
        let live = self.by_id.get(id).is_some_and(|s| s.expires_at > now);
        if !live {
            self.by_id.remove(id);
            return None;
        }
        let s = self.by_id.get_mut(id)?;
        s.expires_at = now + self.ttl;
        Some(s.role.clone())
    }

    pub fn close(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Drop every session of an extension (it was removed or got a new password).
    pub fn close_extension(&mut self, extension: &str) {
        self.by_id.retain(|_, s| s.role != Role::Extension(extension.to_string()));
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Whether `password` is extension `row`'s SIP password, checked against the
/// HA1 the digest auth uses (constant time). No row, or no credential for
/// `realm`: false.
pub fn password_matches(row: Option<&ExtensionRow>, realm: &str, password: &str) -> bool {
    let Some(row) = row else { return false };
    let Some(stored) = row.ha1(realm) else { return false };
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        if let Some(h) = stored.get(alg) {
            return constant_time_eq(ha1(alg, &row.extension, realm, password).as_bytes(), h.as_bytes());
        }
    }
    false
}

/// The session id in a `Cookie` header value, if any.
pub fn cookie_session(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == COOKIE).map(|(_, v)| v).filter(|v| !v.is_empty())
}

/// Whether a request's `Origin` is the site its `Host` names (scheme not
/// compared: ingress and TLS terminate in front of us). No Origin: false.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    let (Some(origin), Some(host)) = (origin, host) else { return false };
    let Some((_, rest)) = origin.split_once("://") else { return false };
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

/// The session cookie's name.
pub const COOKIE: &str = "ha_pbx_session";

/// `Set-Cookie` for session `id`: HttpOnly, SameSite=Strict, the whole site.
pub fn set_cookie(id: &str, ttl: Duration) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", ttl.as_secs())
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
