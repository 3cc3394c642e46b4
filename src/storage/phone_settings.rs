//! DND and forwards changed from Home Assistant (see `crate::phone_settings`).
use super::Store;

impl Store {
    /// Every stored (extension, field, value).
    pub async fn phone_settings(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT extension, field, value FROM phone_settings ORDER BY extension, field").fetch_all(&self.pool).await?)
    }

    pub async fn set_phone_setting(&self, extension: &str, field: &str, value: &str, at_ms: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO phone_settings (extension, field, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (extension, field) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(extension)
        .bind(field)
        .bind(value)
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_are_kept_and_overwritten_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).await.unwrap();
            store.set_phone_setting("102", "dnd", "on", 1).await.unwrap();
            store.set_phone_setting("102", "forward_busy", "103", 2).await.unwrap();
            store.set_phone_setting("102", "dnd", "off", 3).await.unwrap();
        }
        let store = Store::open(dir.path()).await.unwrap();
        let rows = store.phone_settings().await.unwrap();
        let want = vec![("102".to_string(), "dnd".to_string(), "off".to_string()), ("102".into(), "forward_busy".into(), "103".into())];
        assert_eq!(rows, want);
    }

    #[tokio::test]
    async fn settings_go_with_their_extension() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        for ext in ["102", "103"] {
            sqlx::query("INSERT INTO extensions (extension, password, source) VALUES (?, '', 'config')").bind(ext).execute(store.pool()).await.unwrap();
            store.set_phone_setting(ext, "dnd", "on", 1).await.unwrap();
        }
        sqlx::query("DELETE FROM extensions WHERE extension = '102'").execute(store.pool()).await.unwrap();
        let rows = store.phone_settings().await.unwrap();
        assert_eq!(rows, vec![("103".to_string(), "dnd".to_string(), "on".to_string())]);
    }
}
