//! Which Home Assistant users are administrators, for the panel through
//! ingress (the ingress headers name the user but say nothing of their
//! rights). Home Assistant's WebSocket command `config/auth/list` (through
//! the Supervisor's proxy, which talks to HA as an administrator) lists every
//! user with `group_ids`; an administrator is an active user in
//! `system-admin`. Deny by default: a user not in the list, an inactive one,
//! and everyone while the list cannot be had, is not an administrator.
//!
//! The list is kept [`FRESH_FOR`] and asked again after that; after a failed
//! ask, again after [`RETRY_AFTER`] (so a broken Supervisor is not asked on
//! every request). The decisions ([`admin_ids`], [`AdminCache`]) are sans-IO.
use super::supervisor::Supervisor;
use anyhow::{bail, Result};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Home Assistant's administrators' group (`homeassistant/auth/const.py`).
pub const ADMIN_GROUP: &str = "system-admin";
pub const FRESH_FOR: Duration = Duration::from_secs(30);
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Users kept from one answer (a home has a handful).
pub const MAX_USERS: usize = 1000;

/// The ids of the active administrators in a `config/auth/list` result.
pub fn admin_ids(result: &Value) -> Result<HashSet<String>> {
    let Some(users) = result.as_array() else {
        bail!("config/auth/list: the result is not a list of users");
    };
    Ok(users
        .iter()
        .take(MAX_USERS)
        .filter(|u| u["is_active"] == true)
        .filter(|u| u["group_ids"].as_array().is_some_and(|g| g.iter().any(|g| g == ADMIN_GROUP)))
        .filter_map(|u| u["id"].as_str().filter(|id| !id.is_empty() && id.len() <= 256).map(str::to_string))
        .collect())
}

/// The last list and when it was had (or last failed).
#[derive(Debug, Default)]
pub struct AdminCache {
    ids: HashSet<String>,
    fetched_at: Option<Instant>,
    failed_at: Option<Instant>,
}

impl AdminCache {
    /// Whether to ask Home Assistant again before answering at `now`.
    pub fn stale(&self, now: Instant) -> bool {
        if self.failed_at.is_some_and(|f| now.duration_since(f) < RETRY_AFTER) {
            return false;
        }
        self.fetched_at.is_none_or(|f| now.duration_since(f) >= FRESH_FOR)
    }

    pub fn fetched(&mut self, ids: HashSet<String>, now: Instant) {
        self.ids = ids;
        self.fetched_at = Some(now);
        self.failed_at = None;
    }

    /// The ask failed: nobody is an administrator until one succeeds.
    pub fn failed(&mut self, now: Instant) {
        self.ids.clear();
        self.fetched_at = None;
        self.failed_at = Some(now);
    }

    pub fn is_admin(&self, user_id: &str) -> bool {
        self.ids.contains(user_id)
    }
}

pub struct HaAdmins {
    supervisor: Option<Supervisor>,
    cache: Mutex<AdminCache>,
}

impl HaAdmins {
    pub fn new(supervisor: Option<Supervisor>) -> HaAdmins {
        HaAdmins { supervisor, cache: Mutex::new(AdminCache::default()) }
    }

    /// Whether Home Assistant user `user_id` is an administrator. Without a
    /// Supervisor nobody is.
    pub async fn is_admin(&self, user_id: &str) -> bool {
        let Some(sup) = &self.supervisor else { return false };
        let mut cache = self.cache.lock().await;
        if cache.stale(Instant::now()) {
            match sup.core_ws_command("config/auth/list").await.map_err(anyhow::Error::from).and_then(|r| admin_ids(&r)) {
                Ok(ids) => cache.fetched(ids, Instant::now()),
                Err(e) => {
                    tracing::warn!("cannot list Home Assistant's administrators (nobody gets the panel's administration until it works): {e:#}");
                    cache.failed(Instant::now());
                }
            }
        }
        cache.is_admin(user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn administrators_are_active_users_in_the_admin_group() {
        let list = json!([
            {"id": "owner1", "name": "Owner", "is_owner": true, "is_active": true, "group_ids": ["system-admin"]},
            {"id": "kid2", "name": "Kid", "is_owner": false, "is_active": true, "group_ids": ["system-users"]},
            {"id": "gone3", "name": "Old admin", "is_active": false, "group_ids": ["system-admin"]},
            {"id": "ro4", "is_active": true, "group_ids": ["system-read-only"]},
            {"id": "", "is_active": true, "group_ids": ["system-admin"]},
            {"name": "no id", "is_active": true, "group_ids": ["system-admin"]},
            {"id": "str5", "is_active": "true", "group_ids": ["system-admin"]},
            {"id": "weird6", "is_active": true, "group_ids": "system-admin"},
        ]);
        assert_eq!(admin_ids(&list).unwrap(), HashSet::from(["owner1".to_string()]));
        assert!(admin_ids(&json!({"users": []})).is_err());
        assert!(admin_ids(&json!([])).unwrap().is_empty());
    }

    #[test]
    fn the_list_is_asked_again_when_old_and_a_failure_denies_everyone() {
        let t0 = Instant::now();
        let mut c = AdminCache::default();
        assert!(c.stale(t0), "never asked");
        assert!(!c.is_admin("owner1"));
        c.fetched(HashSet::from(["owner1".to_string()]), t0);
        assert!(!c.stale(t0 + FRESH_FOR - Duration::from_millis(1)));
        assert!(c.is_admin("owner1") && !c.is_admin("kid2"));
        assert!(c.stale(t0 + FRESH_FOR));
        let t1 = t0 + FRESH_FOR;
        c.failed(t1);
        assert!(!c.is_admin("owner1"), "denied while the list cannot be had");
        assert!(!c.stale(t1 + RETRY_AFTER - Duration::from_millis(1)), "not asked on every request after a failure");
        assert!(c.stale(t1 + RETRY_AFTER));
        c.fetched(HashSet::from(["owner1".to_string()]), t1 + RETRY_AFTER);
        assert!(c.is_admin("owner1"));
    }

    #[tokio::test]
    async fn without_a_supervisor_nobody_is_an_administrator() {
        assert!(!HaAdmins::new(None).is_admin("owner1").await);
    }
}
