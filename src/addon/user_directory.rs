//! Home Assistant users → their extensions, live: what the panel and the
//! `/ws` route call with the ingress request's headers. A new extension is
//! stored ([`ha_users::ensure`]) and put into the registrar's directory at
//! once, so it can REGISTER straight away.
//!
//! In add-on mode the HTTP router carries it as an
//! `Extension<Arc<dyn http::BrowserUsers>>` (the HTTP layer's own trait, so
//! `http` does not depend on the add-on); `/ws` takes it with `Option<…>`
//! (absent outside add-on mode).
use super::ha_users::{self, Change, HaUser, HaUserExtension, Reserved, SOURCE_HA_USER};
use super::supervisor::Supervisor;
use crate::sip::core::SipCoreRef;
use crate::storage::ExtensionRow;
use anyhow::Result;
use axum::http::HeaderMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Home Assistant's users are listed again after this, when nothing new asked sooner.
pub const LIST_EVERY: Duration = Duration::from_secs(600);
/// After a failed listing, again after this at the earliest.
pub const LIST_RETRY: Duration = Duration::from_secs(30);
/// Visitors remembered (a home has a handful); past it only [`LIST_EVERY`] applies.
pub const MAX_VISITORS: usize = 1000;

/// When [`HaUserDirectory::add_known_users`] lists Home Assistant's users
/// (sans-IO): on the first visit, on the first visit of each user (someone
/// new may have been added in Home Assistant), and otherwise at most every
/// [`LIST_EVERY`]; after a failure, [`LIST_RETRY`] later.
#[derive(Debug, Default)]
pub struct ListPace {
    next_at: Option<Instant>,
    visitors: HashSet<String>,
}

impl ListPace {
    /// Whether to list at `now` for `visitor` (the HA user id, if the request
    /// named one); when it is, the next listing is [`LIST_EVERY`] away.
    pub fn due(&mut self, visitor: Option<&str>, now: Instant) -> bool {
        let new_visitor = match visitor {
            Some(v) if !self.visitors.contains(v) && self.visitors.len() < MAX_VISITORS => self.visitors.insert(v.to_string()),
            _ => false,
        };
        let due = new_visitor || self.next_at.is_none_or(|n| now >= n);
        if due {
            self.next_at = Some(now + LIST_EVERY);
        }
        due
    }

    /// The listing begun at `now` failed.
    pub fn failed(&mut self, now: Instant) {
        self.next_at = Some(now + LIST_RETRY);
    }
}

pub struct HaUserDirectory {
    core: SipCoreRef,
    /// To list Home Assistant's users (absent without a Supervisor).
    supervisor: Option<Supervisor>,
    enabled: bool,
    start: u32,
    /// Numbers never handed to a user (the agent's, groups', feature codes').
    reserved: Reserved,
    pace: Mutex<ListPace>,
}

impl HaUserDirectory {
    /// With `enabled` off (option `ha_user_extensions: false`) no extension is
    /// made, and those made before are removed: nobody can keep registering
    /// with credentials the add-on no longer shows.
    pub async fn start(core: SipCoreRef, supervisor: Option<Supervisor>, enabled: bool, start: u32) -> Result<Arc<HaUserDirectory>> {
        let reserved = Reserved::from_config(&core.config);
        if !enabled {
            let before = ha_users::list(&core.store).await?;
            ha_users::sync(&core.store, &[], start, &reserved).await?;
            core.forget_extensions(before.iter().map(|e| e.extension.as_str()));
            if !before.is_empty() {
                tracing::info!(removed = before.len(), "ha_user_extensions is off: Home Assistant users' extensions removed");
            }
        }
        for e in ha_users::list(&core.store).await? {
            // made before the agent, the group or the code was configured:
            // calls to the number reach that, not the user
            if let Some(why) = reserved.why(&e.extension) {
                tracing::warn!(extension = %e.extension, user = %e.name, "a Home Assistant user's extension cannot be called: {why}; change the configuration");
            }
        }
        Ok(Arc::new(HaUserDirectory { core, supervisor, enabled, start, reserved, pace: Mutex::new(ListPace::default()) }))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The extension of the HA user the ingress headers name, created on the
    /// first call. `Ok(None)`: no `X-Remote-User-Id` header, or automatic
    /// extensions are off. `Err`: a header is unusable (the message names
    /// it) or the database failed.
    pub async fn extension_for_headers(&self, headers: &HeaderMap) -> Result<Option<HaUserExtension>> {
        match HaUser::from_headers(headers)? {
            Some(user) => self.extension_for(&user).await,
            None => Ok(None),
        }
    }

    pub async fn extension_for(&self, user: &HaUser) -> Result<Option<HaUserExtension>> {
        if !self.enabled {
            return Ok(None);
        }
        let (ext, change) = ha_users::ensure(&self.core.store, user, self.start, &self.reserved).await?;
        if change != Change::Unchanged {
            self.publish(&ext);
        }
        Ok(Some(ext))
    }

    /// Give every user Home Assistant has (through their person entities)
    /// an extension, so the panel's SIP Core configuration is complete before
    /// each user has visited. Best effort: a failure is logged and the panel
    /// shows the users it knows. Not on every visit: when [`ListPace`] says
    /// (`visitor`: the visiting HA user's id).
    pub async fn add_known_users(&self, visitor: Option<&str>) {
        let (true, Some(sup)) = (self.enabled, &self.supervisor) else {
            return;
        };
        if !self.pace.lock().await.due(visitor, Instant::now()) {
            return;
        }
        let users = match sup.core_template(ha_users::PERSONS_TEMPLATE).await {
            Ok(text) => ha_users::users_from_persons(&text),
            Err(e) => Err(anyhow::anyhow!("POST /core/api/template: {e}")),
        };
        let users = match users {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("cannot list Home Assistant's users (the panel shows those who opened it): {e:#}");
                self.pace.lock().await.failed(Instant::now());
                return;
            }
        };
        for user in &users {
            match ha_users::ensure_exists(&self.core.store, user, self.start, &self.reserved).await {
                Ok((ext, Change::Created)) => self.publish(&ext),
                Ok(_) => {}
                Err(e) => tracing::warn!(user = %user.id, "cannot make an extension for a Home Assistant user: {e:#}"),
            }
        }
    }

    /// Every HA user's extension, by number.
    pub async fn all(&self) -> Result<Vec<HaUserExtension>> {
        ha_users::list(&self.core.store).await
    }

    /// Into the registrar's in-memory directory (what REGISTER and INVITE
    /// are checked against); the core's `DirectoryChanged` brings its device
    /// into Home Assistant over MQTT.
    fn publish(&self, e: &HaUserExtension) {
        let row = ExtensionRow { extension: e.extension.clone(), password: e.password.clone(), name: Some(e.name.clone()), source: SOURCE_HA_USER.into(), ..Default::default() };
        if !self.core.put_extension(row) {
            tracing::error!(extension = %e.extension, "extension directory lock poisoned: the new extension works after a restart");
        }
    }
}

#[async_trait::async_trait]
impl crate::http::BrowserUsers for HaUserDirectory {
    async fn extension_for_headers(&self, headers: &HeaderMap) -> Result<Option<crate::http::BrowserUser>> {
        let ext = HaUserDirectory::extension_for_headers(self, headers).await?;
        Ok(ext.map(|e| crate::http::BrowserUser { extension: e.extension, name: e.name }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_listed_once_per_visitor_and_then_every_ten_minutes() {
        let t0 = Instant::now();
        let mut p = ListPace::default();
        assert!(p.due(None, t0), "the first visit lists");
        assert!(!p.due(None, t0 + Duration::from_secs(1)) && !p.due(None, t0 + LIST_EVERY - Duration::from_secs(1)));
        assert!(p.due(Some("owner"), t0 + Duration::from_secs(2)), "a user's first visit lists");
        assert!(!p.due(Some("owner"), t0 + Duration::from_secs(3)), "their next one does not");
        assert!(p.due(Some("kid"), t0 + Duration::from_secs(4)));
        let later = t0 + Duration::from_secs(4) + LIST_EVERY;
        assert!(p.due(Some("owner"), later) && !p.due(Some("kid"), later), "then every LIST_EVERY, whoever visits");
        p.failed(later);
        assert!(!p.due(None, later + LIST_RETRY - Duration::from_secs(1)) && p.due(None, later + LIST_RETRY), "a failure is retried soon");
    }

    #[test]
    fn remembered_visitors_are_bounded() {
        let t0 = Instant::now();
        let mut p = ListPace::default();
        for i in 0..MAX_VISITORS + 50 {
            p.due(Some(&format!("user{i}")), t0);
        }
        assert_eq!(p.visitors.len(), MAX_VISITORS);
        assert!(!p.due(Some("one-too-many"), t0 + Duration::from_secs(1)), "past the bound a new visitor lists nothing");
        assert!(p.due(Some("one-too-many"), t0 + LIST_EVERY));
    }
}
