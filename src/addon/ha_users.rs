//! Automatic extensions for Home Assistant users (option
//! `ha_user_extensions`): each user gets the lowest free number from
//! `ha_user_extension_start` (100, 101, ...) and a generated password, kept
//! across restarts. Users are known from the headers the Supervisor's
//! ingress proxy adds ([`HaUser::from_headers`]); [`ensure`] creates a
//! user's extension the first time, [`sync`] removes the ones of users no
//! longer wanted. The table is `addon_ha_users` (migrations/0004).
//!
//! The decisions (`plan`, `next_free`) are sans-IO; the writes run in one
//! `BEGIN IMMEDIATE` transaction each, so two tabs opening the panel at once
//! cannot hand out the same number.
use crate::storage::Store;
use anyhow::{bail, Result};
use axum::http::HeaderMap;
use std::collections::{HashMap, HashSet};

/// `extensions.source` of the rows this module owns.
pub use crate::storage::SOURCE_HA_USER;
/// Length of generated SIP passwords (62 symbols: ~119 bits).
pub const PASSWORD_LEN: usize = 20;
/// Numbers tried past the start before giving up.
const MAX_SCAN: u32 = 100_000;
/// Longest header value taken as a user id or name.
pub(crate) const MAX_HEADER: usize = 256;

pub const HEADER_USER_ID: &str = "x-remote-user-id";
pub const HEADER_USER_NAME: &str = "x-remote-user-name";
pub const HEADER_DISPLAY_NAME: &str = "x-remote-user-display-name";

/// A Home Assistant user as the PBX needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaUser {
    pub id: String,
    /// Login name (`X-Remote-User-Name`), when HA sent one.
    pub username: Option<String>,
    /// Display name: what the frontend has as `hass.user.name`, which the
    /// SIP Core card matches `ha_username` against.
    pub name: String,
}

impl HaUser {
    /// The user the Supervisor's ingress proxy names in the request headers:
    /// `None` without `X-Remote-User-Id`; an error naming the header when a
    /// value is unusable. The display name falls back to the login name,
    /// then to the id.
    pub fn from_headers(h: &HeaderMap) -> Result<Option<HaUser>> {
        let Some(id) = header_text(h, HEADER_USER_ID)? else {
            return Ok(None);
        };
        let username = header_text(h, HEADER_USER_NAME)?;
        let name = header_text(h, HEADER_DISPLAY_NAME)?.or_else(|| username.clone()).unwrap_or_else(|| id.clone());
        Ok(Some(HaUser { id, username, name }))
    }
}

/// A header's trimmed text; `None` when absent or empty.
fn header_text(h: &HeaderMap, name: &str) -> Result<Option<String>> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    // HTTP headers carry Latin-1 at best; HA sends UTF-8 names as raw bytes.
    let Ok(text) = std::str::from_utf8(v.as_bytes()) else {
        bail!("{name}: not UTF-8 text");
    };
    let text = text.trim();
    if text.len() > MAX_HEADER {
        bail!("{name}: longer than {MAX_HEADER} bytes");
    }
    if text.chars().any(char::is_control) {
        bail!("{name}: contains control characters");
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// A template listing Home Assistant's users through their person entities
/// (HA makes one for every user it creates): `[{"id": ..., "name": ...}]`.
/// The REST API has no user list, and all of `/api/states` can be megabytes.
pub const PERSONS_TEMPLATE: &str = "{% set ns = namespace(users=[]) %}\
{% for p in states.person if p.attributes.user_id %}\
{% set ns.users = ns.users + [{'id': p.attributes.user_id, 'name': p.name}] %}\
{% endfor %}{{ ns.users | tojson }}";

/// The users in [`PERSONS_TEMPLATE`]'s answer; entries without an id are skipped.
pub fn users_from_persons(rendered: &str) -> Result<Vec<HaUser>> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(rendered.trim()).map_err(|e| anyhow::anyhow!("person list from Home Assistant is not a JSON list: {e}"))?;
    Ok(list
        .iter()
        .filter_map(|p| {
            let id = p.get("id")?.as_str()?.trim();
            let name = p.get("name").and_then(|n| n.as_str()).map(str::trim).filter(|n| !n.is_empty()).unwrap_or(id);
            (!id.is_empty() && id.len() <= MAX_HEADER).then(|| HaUser { id: id.to_string(), username: None, name: name.to_string() })
        })
        .collect())
}

/// A user's extension, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaUserExtension {
    pub user_id: String,
    pub username: Option<String>,
    pub extension: String,
    pub password: String,
    /// The user's display name (also the extension's name).
    pub name: String,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Renamed,
    Unchanged,
}

/// What `sync` will do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// (user, new extension number)
    pub add: Vec<(HaUser, String)>,
    /// (user id, extension) of users no longer there
    pub remove: Vec<(String, String)>,
    /// (extension, new name) of kept users whose name changed
    pub rename: Vec<(String, String)>,
}

/// Numbers no Home Assistant user is given although no extension row holds
/// them: the AI agent's, every ring group's, and any a feature code catches
/// (a numeric code, or a number under a prefix code): a call to such a
/// number would never reach the user.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    numbers: HashSet<String>,
    codes: Option<crate::config::FeatureCodes>,
}

impl Reserved {
    pub fn from_config(config: &crate::config::Config) -> Reserved {
        let mut numbers: HashSet<String> = config.groups.iter().map(|g| g.extension.clone()).collect();
        numbers.extend(config.agent.as_ref().map(|a| a.extension.clone()));
        numbers.extend(config.park.iter().flat_map(|p| p.slot_numbers().unwrap_or_default()));
        Reserved { numbers, codes: Some(config.feature_codes.clone()) }
    }

    /// Just these numbers (no feature codes).
    pub fn numbers<'a>(numbers: impl IntoIterator<Item = &'a str>) -> Reserved {
        Reserved { numbers: numbers.into_iter().map(str::to_string).collect(), codes: None }
    }

    /// Why `n` is not a user's to have, if it is not.
    pub fn why(&self, n: &str) -> Option<String> {
        if self.numbers.contains(n) {
            return Some(format!("{n} is the AI agent's, a ring group's or a park slot's number"));
        }
        let codes = self.codes.as_ref()?;
        codes.validate(std::iter::once(n)).err().map(|e| e.to_string())
    }

    pub fn holds(&self, n: &str) -> bool {
        self.why(n).is_some()
    }
}

/// Decide, from the current assignments (user id → (extension, name)), the
/// users Home Assistant has now, every extension number in use (any source),
/// the numbers reserved otherwise and the first number to hand out.
pub fn plan(current: &HashMap<String, (String, String)>, users: &[HaUser], taken: &HashSet<String>, reserved: &Reserved, start: u32) -> Result<Plan> {
    let mut p = Plan::default();
    let wanted: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let mut remove: Vec<(String, String)> = current
        .iter()
        .filter(|(id, _)| !wanted.contains(id.as_str()))
        .map(|(id, (ext, _))| (id.clone(), ext.clone()))
        .collect();
    remove.sort();
    p.remove = remove;

    let mut used: HashSet<String> = taken.clone();
    let mut seen = HashSet::new();
    for u in users {
        if !seen.insert(u.id.as_str()) {
            continue; // a user listed twice gets one extension
        }
        match current.get(&u.id) {
            Some((ext, name)) => {
                if name != &u.name {
                    p.rename.push((ext.clone(), u.name.clone()));
                }
            }
            None => {
                let ext = next_free(&used, reserved, start)?;
                used.insert(ext.clone());
                p.add.push((u.clone(), ext));
            }
        }
    }
    Ok(p)
}

/// The lowest number from `start` that is not in `used`.
pub fn next_free(used: &HashSet<String>, reserved: &Reserved, start: u32) -> Result<String> {
    let limit = start.saturating_add(MAX_SCAN);
    (start..limit)
        .map(|n| n.to_string())
        .find(|n| !used.contains(n) && !reserved.holds(n))
        .ok_or_else(|| anyhow::anyhow!("no free extension number between {start} and {limit}"))
}

/// A random password of `PASSWORD_LEN` letters and digits.
pub fn generate_password() -> String {
    crate::storage::credentials::random_secret(PASSWORD_LEN)
}

/// Bring the stored extensions in line with `users`; returns every user's
/// extension after the change, ordered by extension number.
pub async fn sync(store: &Store, users: &[HaUser], start: u32, reserved: &Reserved) -> Result<Vec<HaUserExtension>> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.user_id, u.extension, e.name FROM addon_ha_users u JOIN extensions e ON e.extension = u.extension",
    )
    .fetch_all(&mut *tx)
    .await?;
    let current: HashMap<String, (String, String)> =
        rows.into_iter().map(|(id, ext, name)| (id, (ext, name.unwrap_or_default()))).collect();
    let taken = taken(&mut tx).await?;
    let p = plan(&current, users, &taken, reserved, start)?;

    for (user_id, ext) in &p.remove {
        // The mapping row goes with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM extensions WHERE extension = ? AND source = ?").bind(ext).bind(SOURCE_HA_USER).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM addon_ha_users WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        tracing::info!(extension = %ext, user = %user_id, "Home Assistant user gone: extension removed");
    }
    for (ext, name) in &p.rename {
        sqlx::query("UPDATE extensions SET name = ? WHERE extension = ? AND source = ?").bind(name).bind(ext).bind(SOURCE_HA_USER).execute(&mut *tx).await?;
    }
    for (user, ext) in &p.add {
        insert(&mut tx, user, ext).await?;
    }
    tx.commit().await?;
    list(store).await
}

/// Every number a stored extension has (any source).
async fn taken(tx: &mut sqlx::SqliteConnection) -> Result<HashSet<String>> {
    Ok(sqlx::query_scalar("SELECT extension FROM extensions").fetch_all(&mut *tx).await?.into_iter().collect())
}

async fn insert(tx: &mut sqlx::SqliteConnection, user: &HaUser, ext: &str) -> Result<()> {
    sqlx::query("INSERT INTO extensions (extension, password, name, source) VALUES (?, ?, ?, ?)")
        .bind(ext)
        .bind(generate_password())
        .bind(&user.name)
        .bind(SOURCE_HA_USER)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO addon_ha_users (user_id, extension, username) VALUES (?, ?, ?)")
        .bind(&user.id)
        .bind(ext)
        .bind(&user.username)
        .execute(&mut *tx)
        .await?;
    tracing::info!(extension = %ext, user = %user.name, "extension created for a Home Assistant user");
    Ok(())
}

/// The user's extension, created (lowest free number from `start`, new
/// password) the first time; a changed display or login name is stored.
pub async fn ensure(store: &Store, user: &HaUser, start: u32, reserved: &Reserved) -> Result<(HaUserExtension, Change)> {
    ensure_with(store, user, start, reserved, true).await
}

/// Like [`ensure`], but an existing user's names are left alone: a person's
/// name in HA may differ from the user's own (which the headers carry).
pub async fn ensure_exists(store: &Store, user: &HaUser, start: u32, reserved: &Reserved) -> Result<(HaUserExtension, Change)> {
    ensure_with(store, user, start, reserved, false).await
}

/// Whether a stored (login name, display name) is what `user` says now.
fn same_names(update_names: bool, user: &HaUser, username: &Option<String>, name: Option<&str>) -> bool {
    !update_names || (*username == user.username && name == Some(user.name.as_str()))
}

async fn ensure_with(store: &Store, user: &HaUser, start: u32, reserved: &Reserved, update_names: bool) -> Result<(HaUserExtension, Change)> {
    // Every ingress API request comes here: a user whose extension exists with
    // the same names is answered from a plain read, without taking the write lock.
    let known: Option<(String, Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT u.extension, u.username, e.password, e.name FROM addon_ha_users u JOIN extensions e ON e.extension = u.extension WHERE u.user_id = ?",
    )
    .bind(&user.id)
    .fetch_optional(store.pool())
    .await?;
    if let Some((extension, username, password, name)) = known
        && same_names(update_names, user, &username, name.as_deref())
    {
        return Ok((HaUserExtension { user_id: user.id.clone(), username, extension, password, name: name.unwrap_or_default() }, Change::Unchanged));
    }
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT u.extension, u.username, e.name FROM addon_ha_users u JOIN extensions e ON e.extension = u.extension WHERE u.user_id = ?",
    )
    .bind(&user.id)
    .fetch_optional(&mut *tx)
    .await?;
    let change = match row {
        Some((_, username, name)) if same_names(update_names, user, &username, name.as_deref()) => Change::Unchanged,
        Some((ext, _, _)) => {
            sqlx::query("UPDATE extensions SET name = ? WHERE extension = ? AND source = ?").bind(&user.name).bind(&ext).bind(SOURCE_HA_USER).execute(&mut *tx).await?;
            sqlx::query("UPDATE addon_ha_users SET username = ? WHERE user_id = ?").bind(&user.username).bind(&user.id).execute(&mut *tx).await?;
            Change::Renamed
        }
        None => {
            let ext = next_free(&taken(&mut tx).await?, reserved, start)?;
            insert(&mut tx, user, &ext).await?;
            Change::Created
        }
    };
    tx.commit().await?;
    let stored = list(store).await?.into_iter().find(|e| e.user_id == user.id);
    match stored {
        Some(e) => Ok((e, change)),
        None => bail!("extension of Home Assistant user {} vanished while it was written", user.id),
    }
}

/// (user_id, username, extension, password, name) as `list` reads them.
type ListRow = (String, Option<String>, String, String, Option<String>);

/// Every Home Assistant user's extension, ordered by number.
pub async fn list(store: &Store) -> Result<Vec<HaUserExtension>> {
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT u.user_id, u.username, u.extension, e.password, e.name FROM addon_ha_users u
         JOIN extensions e ON e.extension = u.extension ORDER BY CAST(u.extension AS INTEGER), u.extension",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, username, extension, password, name)| HaUserExtension { user_id, username, extension, password, name: name.unwrap_or_default() })
        .collect())
}

#[cfg(test)]
#[path = "ha_users_tests.rs"]
mod tests;
