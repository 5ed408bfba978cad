//! The SQLite store: one file in WAL mode, migrations embedded in the binary, and write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE`) so that concurrent writers
//! — in this process or another — queue on the busy timeout instead of failing mid-transaction.

use crate::error::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A write transaction.
pub type Tx = Transaction<'static, Sqlite>;

/// The database handle shared by every part of the core.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens the database at `path` (creating it when `create` is set) and applies pending
    /// migrations.
    pub async fn open(path: &Path, create: bool) -> Result<Self> {
        if !create && !path.exists() {
            return Err(Error::Config(format!(
                "no database at {}: create a tenant first (`tenantops tenant create`), or point \
                 --db / TENANTOPS_DB at the right file",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed audit entry survives power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        // Several processes may open a new database at once; one applies a migration while the
        // others fail on its half-applied state. Retrying sees it applied.
        let migrator = sqlx::migrate!("./migrations");
        let mut attempt = 0;
        loop {
            match migrator.run(&pool).await {
                Ok(()) => break,
                // Only a statement failing on another process's half-applied migration is
                // retried; a checksum mismatch or an unknown version is reported at once.
                Err(e @ sqlx::migrate::MigrateError::Execute(_))
                | Err(e @ sqlx::migrate::MigrateError::ExecuteMigration(..))
                    if attempt < 5 =>
                {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self { pool })
    }

    /// The connection pool, for reads.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction holding SQLite's write lock from its first statement.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Starts a read transaction: a consistent snapshot that does not take the write lock.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Whether any tenant exists yet (used to decide whether a missing key file is an error).
    pub async fn is_empty(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&self.pool)
            .await?;
        Ok(n == 0)
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
