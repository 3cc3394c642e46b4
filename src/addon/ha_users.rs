//! Automatic extensions for Home Assistant users (option
//! `ha_user_extensions`): each user gets the lowest free number from
//! `ha_user_extension_start` (100, 101, ...) and a generated password, kept
//! across restarts; a user who disappears loses their extension.
//!
//! Storage only: the list of users comes from Home Assistant and the
//! credentials reach the SIP Core card through the WebSocket API, both still
//! to be built. The table is created here (`CREATE TABLE IF NOT EXISTS`)
//! so that this module needs nothing from migrations/ yet.
//!
//! The decision (`plan`) is sans-IO; `sync` applies it in one transaction.
use crate::storage::Store;
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};

/// `extensions.source` of the rows this module owns.
pub const SOURCE_HA_USER: &str = "ha_user";
/// Length of generated SIP passwords (62 symbols: ~119 bits).
pub const PASSWORD_LEN: usize = 20;
/// Numbers tried past the start before giving up.
const MAX_SCAN: u32 = 100_000;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS addon_ha_users (
    user_id   TEXT PRIMARY KEY NOT NULL,
    extension TEXT NOT NULL UNIQUE REFERENCES extensions(extension) ON DELETE CASCADE
)";

/// A Home Assistant user as the PBX needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaUser {
    pub id: String,
    pub name: String,
}

/// A user's extension, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaUserExtension {
    pub user_id: String,
    pub extension: String,
    pub password: String,
    pub name: String,
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

/// Decide, from the current assignments (user id → (extension, name)), the
/// users Home Assistant has now, every extension number in use (any source)
/// and the first number to hand out.
pub fn plan(current: &HashMap<String, (String, String)>, users: &[HaUser], taken: &HashSet<String>, start: u32) -> Result<Plan> {
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
    let mut next = start;
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
                let limit = start.saturating_add(MAX_SCAN);
                while used.contains(&next.to_string()) {
                    next += 1;
                    if next >= limit {
                        bail!("no free extension number between {start} and {limit}");
                    }
                }
                let ext = next.to_string();
                used.insert(ext.clone());
                p.add.push((u.clone(), ext));
            }
        }
    }
    Ok(p)
}

/// A random password of `PASSWORD_LEN` letters and digits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(PASSWORD_LEN);
    while out.len() < PASSWORD_LEN {
        // 248 = 4 * 62: reject the rest so every symbol is equally likely
        let b = rand::random::<u8>();
        if b < 248 {
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    out
}

/// Bring the stored extensions in line with `users`; returns every user's
/// extension after the change, ordered by extension number.
pub async fn sync(store: &Store, users: &[HaUser], start: u32) -> Result<Vec<HaUserExtension>> {
    let pool = store.pool();
    sqlx::query(CREATE_TABLE).execute(pool).await?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.user_id, u.extension, e.name FROM addon_ha_users u JOIN extensions e ON e.extension = u.extension",
    )
    .fetch_all(&mut *tx)
    .await?;
    let current: HashMap<String, (String, String)> =
        rows.into_iter().map(|(id, ext, name)| (id, (ext, name.unwrap_or_default()))).collect();
    let taken: HashSet<String> = sqlx::query_scalar("SELECT extension FROM extensions").fetch_all(&mut *tx).await?.into_iter().collect();
    let p = plan(&current, users, &taken, start)?;

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
        sqlx::query("INSERT INTO extensions (extension, password, name, source) VALUES (?, ?, ?, ?)")
            .bind(ext)
            .bind(generate_password())
            .bind(&user.name)
            .bind(SOURCE_HA_USER)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO addon_ha_users (user_id, extension) VALUES (?, ?)").bind(&user.id).bind(ext).execute(&mut *tx).await?;
        tracing::info!(extension = %ext, user = %user.name, "extension created for a Home Assistant user");
    }
    tx.commit().await?;
    list(store).await
}

/// Every Home Assistant user's extension, ordered by number.
pub async fn list(store: &Store) -> Result<Vec<HaUserExtension>> {
    let pool = store.pool();
    sqlx::query(CREATE_TABLE).execute(pool).await?;
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.user_id, u.extension, e.password, e.name FROM addon_ha_users u
         JOIN extensions e ON e.extension = u.extension ORDER BY CAST(u.extension AS INTEGER), u.extension",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, extension, password, name)| HaUserExtension { user_id, extension, password, name: name.unwrap_or_default() })
        .collect())
}

#[cfg(test)]
#[path = "ha_users_tests.rs"]
mod tests;
