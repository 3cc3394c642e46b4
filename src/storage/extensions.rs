//! The extensions table: who may register, with which credentials.
//!
//! A row keeps HA1 = H(extension:realm:password) for MD5 and SHA-256, not the
//! password (`password` is empty). The exception is an extension made for a
//! Home Assistant user (source `ha_user`) or by an administrator in the
//! standalone panel (source `panel`): the PBX generated its password and a
//! panel shows it on request (to that user for the SIP Core card, to the
//! administrator for the phone's settings), so it must be kept; its HA1 is
//! computed from it when needed. The database file is
//! readable by its owner only (see `Store::open`).
use super::Store;
use crate::config::ExtensionConfig;
use super::credentials::Ha1;
use std::collections::HashSet;

/// Rows written from the YAML config carry this source.
pub const SOURCE_CONFIG: &str = "config";
/// Rows the add-on made for Home Assistant users (`addon/ha_users.rs`).
pub const SOURCE_HA_USER: &str = "ha_user";
/// Rows an administrator made in the standalone panel (`http/panel`).
pub const SOURCE_PANEL: &str = "panel";
/// The sources whose rows keep their password (a panel shows it).
pub const SOURCES_KEEPING_PASSWORD: [&str; 2] = [SOURCE_HA_USER, SOURCE_PANEL];

#[derive(Debug, Clone, PartialEq, Default, sqlx::FromRow)]
pub struct ExtensionRow {
    pub extension: String,
    /// Empty unless the row must show its password (source `ha_user`).
    pub password: String,
    pub name: Option<String>,
    /// Owner of the row: `config`, or e.g. `ha_user` for ones made elsewhere.
    pub source: String,
    /// The realm `ha1_md5` and `ha1_sha256` were made for.
    pub ha1_realm: Option<String>,
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
}

impl ExtensionRow {
    /// The HA1s to check digests for `realm` against: the stored ones when
    /// made for `realm`, else computed from a kept password; `None` when
    /// neither (the realm changed since a row without password was stored).
    pub fn ha1(&self, realm: &str) -> Option<Ha1> {
        if self.ha1_realm.as_deref() == Some(realm) && (self.ha1_md5.is_some() || self.ha1_sha256.is_some()) {
            return Some(Ha1 { md5: self.ha1_md5.clone(), sha256: self.ha1_sha256.clone() });
        }
        (!self.password.is_empty()).then(|| Ha1::from_password(&self.extension, realm, &self.password))
    }
}

impl Store {
    /// Make the config-sourced extensions match `exts`; rows of other sources
    /// are never touched, and an extension owned by another source wins.
    /// Their passwords are stored as HA1 for `realm`.
    pub async fn sync_config_extensions(&self, exts: &[ExtensionConfig], realm: &str) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        for ext in exts {
            let ha1 = Ha1::from_password(&ext.extension, realm, &ext.password);
            let written = sqlx::query(
                "INSERT INTO extensions (extension, password, name, source, ha1_realm, ha1_md5, ha1_sha256)
                 VALUES (?, '', ?, ?, ?, ?, ?)
                 ON CONFLICT (extension) DO UPDATE
                 SET password = '', name = excluded.name, ha1_realm = excluded.ha1_realm,
                     ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256
                 WHERE extensions.source = excluded.source",
            )
            .bind(&ext.extension)
            .bind(&ext.name)
            .bind(SOURCE_CONFIG)
            .bind(realm)
            .bind(&ha1.md5)
            .bind(&ha1.sha256)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written == 0 {
                tracing::warn!(
                    extension = %ext.extension,
                    "config extension ignored: it is owned by another source"
                );
            }
        }

        let wanted: HashSet<&str> = exts.iter().map(|e| e.extension.as_str()).collect();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT extension FROM extensions WHERE source = ?")
                .bind(SOURCE_CONFIG)
                .fetch_all(&mut *tx)
                .await?;
        for gone in existing.iter().filter(|e| !wanted.contains(e.as_str())) {
            // Bindings go with it through ON DELETE CASCADE.
            sqlx::query("DELETE FROM extensions WHERE extension = ? AND source = ?")
                .bind(gone)
                .bind(SOURCE_CONFIG)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn extensions(&self) -> anyhow::Result<Vec<ExtensionRow>> {
        let rows = sqlx::query_as(
            "SELECT extension, password, name, source, ha1_realm, ha1_md5, ha1_sha256 FROM extensions ORDER BY extension",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Insert or fully overwrite one extension, source included.
    pub async fn upsert_extension(&self, row: &ExtensionRow) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO extensions (extension, password, name, source, ha1_realm, ha1_md5, ha1_sha256)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (extension) DO UPDATE
             SET password = excluded.password, name = excluded.name, source = excluded.source,
                 ha1_realm = excluded.ha1_realm, ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256",
        )
        .bind(&row.extension)
        .bind(&row.password)
        .bind(&row.name)
        .bind(&row.source)
        .bind(&row.ha1_realm)
        .bind(&row.ha1_md5)
        .bind(&row.ha1_sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delete `extension` when `source` owns it (its bindings go through ON
    /// DELETE CASCADE); false when there was no such row.
    pub async fn delete_extension(&self, extension: &str, source: &str) -> anyhow::Result<bool> {
        let n = sqlx::query("DELETE FROM extensions WHERE extension = ? AND source = ?")
            .bind(extension)
            .bind(source)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// At start-up: hash any password still stored (a database from before
    /// HA1 storage; config rows included, so the file is rewritten whenever
    /// one held a password), then make the config rows match `exts`.
    /// Returns how many rows had a password hashed.
    pub async fn load_config_extensions(&self, exts: &[ExtensionConfig], realm: &str) -> anyhow::Result<usize> {
        let hashed = self.hash_stored_passwords(realm).await?;
        self.sync_config_extensions(exts, realm).await?;
        Ok(hashed)
    }

    /// Migration of databases from before HA1 storage: every row that still
    /// holds a password (other than those that must keep it) gets its HA1s
    /// for `realm` and loses the password; then the file is rewritten so no
    /// old page keeps it. Returns how many rows were hashed.
    pub async fn hash_stored_passwords(&self, realm: &str) -> anyhow::Result<usize> {
        let mut tx = self.begin_write().await?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT extension, password FROM extensions WHERE password <> '' AND source NOT IN (?, ?)")
                .bind(SOURCES_KEEPING_PASSWORD[0])
                .bind(SOURCES_KEEPING_PASSWORD[1])
                .fetch_all(&mut *tx)
                .await?;
        for (extension, password) in &rows {
            let ha1 = Ha1::from_password(extension, realm, password);
            sqlx::query("UPDATE extensions SET password = '', ha1_realm = ?, ha1_md5 = ?, ha1_sha256 = ? WHERE extension = ?")
                .bind(realm)
                .bind(&ha1.md5)
                .bind(&ha1.sha256)
                .bind(extension)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            self.scrub().await?;
        }
        Ok(rows.len())
    }
}
