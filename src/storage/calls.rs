//! Call history rows (CDR). Times are unix milliseconds.
use super::Store;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CallRecord {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub disposition: Option<String>,
    pub end_reason: Option<String>,
    /// The row's place in the table (its rowid): with `started_at`, the key a
    /// history page continues from ([`PageKey`]); 0 where not read.
    #[sqlx(default)]
    pub seq: i64,
}

/// Where a history page continues: after the row started at `started_at`
/// with `seq`, newest first. Rows that share a start millisecond are told
/// apart by `seq`, so a page boundary between them neither skips nor repeats
/// one. `seq: i64::MIN` means "everything started before `started_at`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    pub started_at: i64,
    pub seq: i64,
}

impl PageKey {
    /// The key after `row`.
    pub fn after(row: &CallRecord) -> PageKey {
        PageKey { started_at: row.started_at, seq: row.seq }
    }

    /// `MS.SEQ` (or `MS` alone: before that millisecond), as the API carries it.
    pub fn parse(s: &str) -> Option<PageKey> {
        let (ms, seq) = match s.split_once('.') {
            Some((ms, seq)) => (ms, seq.parse::<i64>().ok().filter(|q| *q > 0)?),
            None => (s, i64::MIN),
        };
        let started_at = ms.parse::<i64>().ok().filter(|m| *m > 0)?;
        Some(PageKey { started_at, seq })
    }
}

impl std::fmt::Display for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.seq == i64::MIN {
            write!(f, "{}", self.started_at)
        } else {
            write!(f, "{}.{}", self.started_at, self.seq)
        }
    }
}

impl Store {
    /// Idempotent: a call may ring several times (forking, retries); the
    /// first start time is kept.
    pub async fn call_started(
        &self,
        call_id: &str,
        caller: &str,
        callee: &str,
        at_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO calls (call_id, caller, callee, started_at) VALUES (?, ?, ?, ?)",
        )
        .bind(call_id)
        .bind(caller)
        .bind(callee)
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The first answer time wins.
    pub async fn call_answered(&self, call_id: &str, at_ms: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE calls SET answered_at = COALESCE(answered_at, ?) WHERE call_id = ?")
            .bind(at_ms)
            .bind(call_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Only the first end is recorded, so a late duplicate cannot rewrite
    /// it; except that a call that went on after a transfer or a park
    /// (`transferred`) gets its final end (an answered call stays `answered`).
    pub async fn call_ended(
        &self,
        call_id: &str,
        at_ms: i64,
        disposition: &str,
        reason: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE calls SET ended_at = ?,
                 disposition = CASE WHEN ended_at IS NOT NULL AND answered_at IS NOT NULL THEN 'answered' ELSE ? END,
                 end_reason = ?
             WHERE call_id = ? AND (ended_at IS NULL OR end_reason = 'transferred')",
        )
        .bind(at_ms)
        .bind(disposition)
        .bind(reason)
        .bind(call_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rows a previous run left open (it ended without hanging its calls
    /// up: killed, crashed, power lost) are closed at `at_ms` with reason
    /// `pbx_stopped`. Returns how many. Run at start-up, before any call.
    pub async fn close_open_calls(&self, at_ms: i64) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "UPDATE calls SET ended_at = ?,
                 disposition = CASE WHEN answered_at IS NULL THEN 'failed' ELSE 'answered' END,
                 end_reason = 'pbx_stopped'
             WHERE ended_at IS NULL",
        )
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Newest first.
    pub async fn recent_calls(&self, limit: i64) -> anyhow::Result<Vec<CallRecord>> {
        let rows = sqlx::query_as(
            "SELECT call_id, caller, callee, started_at, answered_at, ended_at, disposition,
                    end_reason
             FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// One page of history, newest first: calls started before `before_ms`
    /// (all when `None`), at most `limit`.
    pub async fn calls_before(&self, before_ms: Option<i64>, limit: i64) -> anyhow::Result<Vec<CallRecord>> {
        self.calls_page(&CallFilter::default(), before_ms.map(|ms| PageKey { started_at: ms, seq: i64::MIN }), limit).await
    }

    /// One page of the calls `filter` lets through, newest first (by start,
    /// then by row): those after `after` (all when `None`), at most `limit`.
    pub async fn calls_page(&self, filter: &CallFilter, after: Option<PageKey>, limit: i64) -> anyhow::Result<Vec<CallRecord>> {
        let after = after.unwrap_or(PageKey { started_at: i64::MAX, seq: i64::MIN });
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT rowid AS seq, call_id, caller, callee, started_at, answered_at, ended_at, disposition, end_reason FROM calls WHERE (started_at < ",
        );
        q.push_bind(after.started_at).push(" OR (started_at = ").push_bind(after.started_at).push(" AND rowid < ").push_bind(after.seq).push("))");
        if let Some(n) = &filter.number {
            q.push(" AND (caller = ").push_bind(n.as_str()).push(" OR callee = ").push_bind(n.as_str()).push(")");
        }
        if let Some(d) = &filter.disposition {
            q.push(" AND disposition = ").push_bind(d.as_str());
        }
        q.push(" ORDER BY started_at DESC, rowid DESC LIMIT ").push_bind(limit.max(0));
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }
}

/// Which calls a history page or export holds; `None`: any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// The caller or the callee is this number.
    pub number: Option<String>,
    /// How it ended (`answered`, `missed`, ...: [`DISPOSITIONS`]).
    pub disposition: Option<String>,
}

/// Every `disposition` a finished call is stored with (see `call_history::disposition`).
pub const DISPOSITIONS: [&str; 6] = ["answered", "missed", "busy", "rejected", "cancelled", "failed"];
