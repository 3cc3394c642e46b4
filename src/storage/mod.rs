//! Storage: SQLite (WAL) through sqlx, with embedded migrations.
//!
//! `Store` is the synchronous-looking API; the registrar never calls it on
//! its hot path but goes through [`BindingWriter`], which batches writes in a
//! background task. [`spawn_call_history`] turns bus events into call rows.
mod binding_writer;
mod bindings;
mod call_history;
mod calls;
pub mod credentials;
mod extensions;
mod messages;
mod phone_settings;

pub use binding_writer::{BindingWriter, spawn_binding_writer};
pub use bindings::{BindingOp, BindingRow};
pub use call_history::{disposition, spawn_call_history};
pub use calls::{CallFilter, CallRecord, PageKey, DISPOSITIONS};
pub use extensions::{ExtensionRow, SOURCE_CONFIG, SOURCE_HA_USER, SOURCE_PANEL};
pub use messages::MessageRecord;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "ha-pbx.sqlite";

/// Long enough to ride out a checkpoint or a concurrent writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Handle to the database; cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Create `data_dir` if needed (mode 0700), open `data_dir/ha-pbx.sqlite`
    /// (mode 0600, and so its -wal and -shm, which SQLite creates with the
    /// database's mode) and migrate it.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Store> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        make_private_file(&path)?;
        for suffix in ["-wal", "-shm"] {
            let side = data_dir.join(format!("{DB_FILE}{suffix}"));
            if side.exists() {
                make_private_file(&side)?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // Deleted and overwritten content is zeroed, not left in free pages.
            .pragma("secure_delete", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across app crashes in WAL mode; only power loss
            // can drop the last commits, which re-REGISTERs repair.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {}", path.display()))?;
        Self::migrated(pool).await
    }

    /// In-memory store for unit tests.
    pub async fn open_in_memory() -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Each connection would get its own empty database, so keep exactly
        // one and never let the pool retire it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .context("cannot open in-memory database")?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> anyhow::Result<Store> {
        MIGRATOR
            .run(&pool)
            .await
            .context("database migration failed")?;
        Ok(Store { pool })
    }

    /// Rewrite the database so no free page or WAL frame keeps old content.
    async fn scrub(&self) -> anyhow::Result<()> {
        sqlx::query("VACUUM").execute(&self.pool).await.context("VACUUM")?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await.context("checkpoint")?;
        Ok(())
    }

    /// The underlying pool, for queries this module does not wrap.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that takes the write lock up front, so two writers
    /// wait on busy_timeout instead of failing on a read-to-write upgrade.
    async fn begin_write(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Create `dir` and its missing parents; `dir` itself, when made here, with
/// mode 0700 (an existing one keeps its mode).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("cannot create data dir {}", dir.display()))
}

/// Create `path` if missing, and make it readable and writable by its owner only.
fn make_private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
