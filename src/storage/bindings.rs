//! Registrar bindings: one row per (extension, contact).
use super::Store;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BindingRow {
    pub extension: String,
    pub contact_uri: String,
    /// `ip:port` the REGISTER came from.
    pub source_addr: String,
    /// `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub transport: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    /// Unix seconds.
    pub registered_at: i64,
}

#[derive(Debug, Clone)]
pub enum BindingOp {
    Upsert(BindingRow),
    Delete {
        extension: String,
        contact_uri: String,
    },
    DeleteAll {
        extension: String,
    },
}

impl Store {
    /// Bindings still valid at `now_unix`.
    pub async fn load_bindings(&self, now_unix: i64) -> anyhow::Result<Vec<BindingRow>> {
        let rows = sqlx::query_as(
            "SELECT extension, contact_uri, source_addr, transport, expires_at, call_id, cseq,
                    user_agent, instance_id, reg_id, registered_at
             FROM bindings WHERE expires_at > ? ORDER BY extension, registered_at",
        )
        .bind(now_unix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Delete bindings expired at `now_unix`; returns how many went.
    pub async fn sweep_expired_bindings(&self, now_unix: i64) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM bindings WHERE expires_at <= ?")
            .bind(now_unix)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Apply `ops` in order, all in one transaction.
    ///
    /// Ops on the same binding are coalesced (the last wins) and upserts go
    /// out as multi-row statements: a statement costs a round trip to
    /// SQLite's worker thread, which dominated at thousands of REGISTERs/s.
    pub async fn apply_binding_ops(&self, ops: &[BindingOp]) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        for segment in ops.split_inclusive(|op| matches!(op, BindingOp::DeleteAll { .. })) {
            let (body, delete_all) = match segment.split_last() {
                Some((BindingOp::DeleteAll { extension }, rest)) => (rest, Some(extension)),
                _ => (segment, None),
            };
            let mut last: HashMap<(&str, &str), &BindingOp> = HashMap::new();
            let mut order = Vec::new();
            for op in body {
                let key = match op {
                    BindingOp::Upsert(b) => (b.extension.as_str(), b.contact_uri.as_str()),
                    BindingOp::Delete { extension, contact_uri } => (extension.as_str(), contact_uri.as_str()),
                    BindingOp::DeleteAll { .. } => unreachable!("segments end at DeleteAll"),
                };
                if last.insert(key, op).is_none() {
                    order.push(key);
                }
            }
            let mut upserts = Vec::new();
            for key in order {
                match last[&key] {
                    BindingOp::Upsert(b) => upserts.push(b),
                    op => apply_delete(&mut tx, op).await?,
                }
            }
            for chunk in upserts.chunks(500) {
                upsert_many(&mut tx, chunk).await?;
            }
            if let Some(extension) = delete_all {
                sqlx::query("DELETE FROM bindings WHERE extension = ?").bind(extension).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Rows for extensions that are gone are skipped, not failed: a REGISTER that
/// raced a config reload must not poison the writer's whole batch, and the
/// binding would have been cascaded away anyway.
async fn upsert_many(conn: &mut SqliteConnection, rows: &[&BindingRow]) -> anyhow::Result<()> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO bindings (extension, contact_uri, source_addr, transport, expires_at,
                               call_id, cseq, user_agent, instance_id, reg_id, registered_at)
         SELECT * FROM (",
    );
    q.push_values(rows, |mut v, b| {
        v.push_bind(&b.extension)
            .push_bind(&b.contact_uri)
            .push_bind(&b.source_addr)
            .push_bind(&b.transport)
            .push_bind(b.expires_at)
            .push_bind(&b.call_id)
            .push_bind(b.cseq)
            .push_bind(&b.user_agent)
            .push_bind(&b.instance_id)
            .push_bind(b.reg_id)
            .push_bind(b.registered_at);
    });
    q.push(
        ") AS v WHERE v.column1 IN (SELECT extension FROM extensions)
         ON CONFLICT (extension, contact_uri) DO UPDATE SET
            source_addr = excluded.source_addr, transport = excluded.transport,
            expires_at = excluded.expires_at, call_id = excluded.call_id,
            cseq = excluded.cseq, user_agent = excluded.user_agent,
            instance_id = excluded.instance_id, reg_id = excluded.reg_id,
            registered_at = excluded.registered_at",
    );
    let written = q.build().execute(&mut *conn).await?.rows_affected();
    if written < rows.len() as u64 {
        tracing::debug!(skipped = rows.len() as u64 - written, "bindings for unknown extensions skipped");
    }
    Ok(())
}

async fn apply_delete(conn: &mut SqliteConnection, op: &BindingOp) -> anyhow::Result<()> {
    if let BindingOp::Delete { extension, contact_uri } = op {
        sqlx::query("DELETE FROM bindings WHERE extension = ? AND contact_uri = ?")
            .bind(extension)
            .bind(contact_uri)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
