//! Messages the AI agent took from callers.
use super::Store;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct MessageRecord {
    pub id: i64,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub transcript: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl Store {
    pub async fn add_message(&self, call_id: &str, caller: &str, callee: &str, transcript: &str, at_ms: i64) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO messages (call_id, caller, callee, transcript, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(call_id)
            .bind(caller)
            .bind(callee)
            .bind(transcript)
            .bind(at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Newest first.
    pub async fn messages(&self, limit: i64) -> anyhow::Result<Vec<MessageRecord>> {
        Ok(sqlx::query_as("SELECT id, call_id, caller, callee, transcript, created_at AS at FROM messages ORDER BY created_at DESC, id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_come_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_message("c1", "101", "100", "first", 1).await.unwrap();
        store.add_message("c2", "102", "100", "second; with \"quotes\"", 2).await.unwrap();
        let all = store.messages(10).await.unwrap();
        assert_eq!(all.iter().map(|m| m.transcript.as_str()).collect::<Vec<_>>(), vec!["second; with \"quotes\"", "first"]);
        assert_eq!((all[1].caller.as_str(), all[1].callee.as_str(), all[1].at), ("101", "100", 1));
        assert_eq!(store.messages(1).await.unwrap().len(), 1);
    }
}
