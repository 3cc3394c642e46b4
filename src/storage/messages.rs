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
    /// When it was marked read (unix milliseconds); `None`: new.
    pub read_at: Option<i64>,
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

    /// Messages for any of `mailboxes` (extension and group numbers): how
    /// many are new (not read) and old.
    pub async fn message_counts(&self, mailboxes: &[String]) -> anyhow::Result<(u32, u32)> {
        let mut new = 0u32;
        let mut old = 0u32;
        for m in mailboxes {
            let (n, o): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(read_at IS NULL), 0), COALESCE(SUM(read_at IS NOT NULL), 0) FROM messages WHERE callee = ?",
            )
            .bind(m)
            .fetch_one(&self.pool)
            .await?;
            new += n as u32;
            old += o as u32;
        }
        Ok((new, old))
    }

    /// Marks message `id` read; its mailbox (callee) when it exists.
    pub async fn mark_message_read(&self, id: i64, at_ms: i64) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("UPDATE messages SET read_at = COALESCE(read_at, ?) WHERE id = ? RETURNING callee")
            .bind(at_ms)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// The new (unread) messages for any of `mailboxes`, oldest first, at
    /// most `limit`; and how many new ones there are in all.
    pub async fn new_messages(&self, mailboxes: &[String], limit: usize) -> anyhow::Result<(Vec<MessageRecord>, usize)> {
        let mut all: Vec<MessageRecord> = Vec::new();
        for m in mailboxes {
            let rows: Vec<MessageRecord> = sqlx::query_as(
                "SELECT id, call_id, caller, callee, transcript, created_at AS at, read_at FROM messages \
                 WHERE callee = ? AND read_at IS NULL ORDER BY created_at, id",
            )
            .bind(m)
            .fetch_all(&self.pool)
            .await?;
            all.extend(rows);
        }
        all.sort_by_key(|m| (m.at, m.id));
        all.dedup_by_key(|m| m.id);
        let total = all.len();
        all.truncate(limit);
        Ok((all, total))
    }

    /// The messages for one extension (`callee`), newest first, at most `limit`.
    pub async fn messages_for(&self, callee: &str, limit: i64) -> anyhow::Result<Vec<MessageRecord>> {
        Ok(sqlx::query_as("SELECT id, call_id, caller, callee, transcript, created_at AS at, read_at FROM messages WHERE callee = ? ORDER BY created_at DESC, id DESC LIMIT ?")
            .bind(callee)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Whose message `id` is (its callee), if there is one.
    pub async fn message_callee(&self, id: i64) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT callee FROM messages WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.0))
    }

    /// Newest first.
    pub async fn messages(&self, limit: i64) -> anyhow::Result<Vec<MessageRecord>> {
        Ok(sqlx::query_as("SELECT id, call_id, caller, callee, transcript, created_at AS at, read_at FROM messages ORDER BY created_at DESC, id DESC LIMIT ?")
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
        // one extension's own: only those for it
        store.add_message("c3", "100", "101", "for 101", 3).await.unwrap();
        let mine = store.messages_for("100", 10).await.unwrap();
        assert_eq!(mine.iter().map(|m| m.call_id.as_str()).collect::<Vec<_>>(), vec!["c2", "c1"]);
        assert!(store.messages_for("10", 10).await.unwrap().is_empty(), "an exact number, not a prefix");
        let theirs = store.messages_for("101", 10).await.unwrap();
        assert_eq!(store.message_callee(theirs[0].id).await.unwrap().as_deref(), Some("101"));
        assert_eq!(store.message_callee(9999).await.unwrap(), None);
    }

    #[tokio::test]
    async fn counts_are_per_mailbox_and_reading_makes_a_message_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.message_counts(&["102".into()]).await.unwrap(), (0, 0));
        store.add_message("c1", "101", "102", "a", 1).await.unwrap();
        store.add_message("c2", "101", "102", "b", 2).await.unwrap();
        store.add_message("c3", "101", "600", "for the group", 3).await.unwrap();
        assert_eq!(store.message_counts(&["102".into()]).await.unwrap(), (2, 0));
        assert_eq!(store.message_counts(&["102".into(), "600".into()]).await.unwrap(), (3, 0));
        let first = store.messages(10).await.unwrap().into_iter().find(|m| m.call_id == "c1").unwrap();
        assert_eq!(first.read_at, None);
        assert_eq!(store.mark_message_read(first.id, 9).await.unwrap().as_deref(), Some("102"));
        assert_eq!(store.mark_message_read(first.id, 10).await.unwrap().as_deref(), Some("102"), "read twice: still read");
        assert_eq!(store.message_counts(&["102".into()]).await.unwrap(), (1, 1));
        assert_eq!(store.messages(10).await.unwrap().into_iter().find(|m| m.id == first.id).unwrap().read_at, Some(9));
        assert_eq!(store.mark_message_read(999, 9).await.unwrap(), None);
        let (new, total) = store.new_messages(&["600".into(), "102".into()], 1).await.unwrap();
        assert_eq!((new.iter().map(|m| m.call_id.as_str()).collect::<Vec<_>>(), total), (vec!["c2"], 2), "oldest new first, capped");
        let (new, _) = store.new_messages(&["600".into(), "102".into()], 10).await.unwrap();
        assert_eq!(new.iter().map(|m| m.call_id.as_str()).collect::<Vec<_>>(), vec!["c2", "c3"]);
    }
}
