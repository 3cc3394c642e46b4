//! The extensions table: who may register, with which password.
use super::Store;
use crate::config::ExtensionConfig;
use std::collections::HashSet;

/// Rows written from the YAML config carry this source.
pub const SOURCE_CONFIG: &str = "config";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExtensionRow {
    pub extension: String,
    pub password: String,
    pub name: Option<String>,
    /// Owner of the row: `config`, or e.g. `ha_user` for ones made elsewhere.
    pub source: String,
}

impl Store {
    /// Make the config-sourced extensions match `exts`; rows of other sources
    /// are never touched, and an extension owned by another source wins.
    pub async fn sync_config_extensions(&self, exts: &[ExtensionConfig]) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        for ext in exts {
            let written = sqlx::query(
                "INSERT INTO extensions (extension, password, name, source) VALUES (?, ?, ?, ?)
                 ON CONFLICT (extension) DO UPDATE
                 SET password = excluded.password, name = excluded.name
                 WHERE extensions.source = excluded.source",
            )
            .bind(&ext.extension)
            .bind(&ext.password)
            .bind(&ext.name)
            .bind(SOURCE_CONFIG)
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
            "SELECT extension, password, name, source FROM extensions ORDER BY extension",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Insert or fully overwrite one extension, source included.
    pub async fn upsert_extension(&self, row: &ExtensionRow) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO extensions (extension, password, name, source) VALUES (?, ?, ?, ?)
             ON CONFLICT (extension) DO UPDATE
             SET password = excluded.password, name = excluded.name, source = excluded.source",
        )
        .bind(&row.extension)
        .bind(&row.password)
        .bind(&row.name)
        .bind(&row.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
