//! The SQLite engine: one file in WAL mode, migrations embedded in the binary, and write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE`) so that concurrent writers
//! — in this process or another — queue on the busy timeout instead of failing mid-transaction.

use super::{Tx, TxInner};
use crate::error::{Error, Result};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Creates an empty database file readable and writable by its owner only, unless one exists:
/// it holds every tenant's data. SQLite gives the `-wal` and `-shm` files it creates beside it
/// the database file's own permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        // Exactly owner-only, whatever the umask.
        #[cfg(unix)]
        Ok(file) => {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| cannot_create(path, e))
        }
        #[cfg(not(unix))]
        Ok(_) => Ok(()),
        // Another process got there first, or an existing database is opened.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot_create(path, e)),
    }
}

fn cannot_create(path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!(
        "cannot create the database {}: {e}; check that its directory exists and is writable",
        path.display()
    ))
}

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
        if create {
            create_private(path)?;
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
            // A local file has no network to fail: a ping before each use would only cost a
            // round trip to the connection's thread on every call.
            .test_before_acquire(false)
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

    /// Starts a write transaction holding SQLite's write lock from its first statement. Only
    /// the writer starts one ([`super::writer::Writer`]): every write of the process goes
    /// through it.
    pub(in crate::store) async fn begin_write(&self) -> Result<Tx> {
        Ok(Tx {
            inner: TxInner::Sqlite(self.pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Starts a read transaction: a consistent snapshot that does not take the write lock.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(Tx {
            inner: TxInner::Sqlite(self.pool.begin().await?),
        })
    }

    /// A connection for one-statement lookups, outside any transaction (no `BEGIN`, no
    /// `ROLLBACK`: two fewer round trips to the database thread). Several statements that must
    /// agree need [`Store::begin_read`].
    pub async fn read(&self) -> Result<Tx> {
        Ok(Tx {
            inner: TxInner::SqliteConn(self.pool.acquire().await?),
        })
    }

    /// Whether any tenant exists yet (used to decide whether a missing key file is an error).
    pub async fn is_empty(&self) -> Result<bool> {
        let mut tx = self.begin_read().await?;
        let empty = super::tenants::none_yet(&mut tx).await?;
        tx.rollback().await?;
        Ok(empty)
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The SQLite connection of `tx`, for statements only SQLite understands.
fn sqlite_conn(tx: &mut Tx) -> Result<&mut sqlx::SqliteConnection> {
    match &mut tx.inner {
        TxInner::Sqlite(t) => Ok(t),
        TxInner::SqliteConn(c) => Ok(c),
        TxInner::Postgres(_) | TxInner::PostgresConn(_) => {
            Err(Error::Internal("not a SQLite transaction".into()))
        }
    }
}

/// The tables of the schema, without SQLite's and the migrator's own.
pub(crate) async fn tables(tx: &mut Tx) -> Result<Vec<String>> {
    let conn = sqlite_conn(tx)?;
    Ok(sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT GLOB 'sqlite_*' AND name NOT GLOB '_sqlx*' ORDER BY name",
    )
    .fetch_all(conn)
    .await?)
}

/// A table's columns in schema order, with their primary-key positions.
pub(crate) async fn columns(tx: &mut Tx, table: &str) -> Result<Vec<super::schema::Column>> {
    let conn = sqlite_conn(tx)?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, pk FROM pragma_table_info($1) ORDER BY cid")
            .bind(table)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, pk)| super::schema::Column { name, pk })
        .collect())
}

/// Rows and summed value lengths of a planned table (`filter` binds the tenant as `$1`).
pub(crate) fn estimate_sql(table: &super::schema::Planned, filter: &str) -> String {
    use super::schema::ident;
    let sum = table
        .columns
        .iter()
        .map(|c| format!("COALESCE(length(CAST({} AS BLOB)), 0)", ident(c)))
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM({sum}), 0) AS BIGINT) FROM {} WHERE {filter}",
        ident(&table.name)
    )
}

/// Each row of a planned table as a JSON object (BLOBs as hex), in its total order.
pub(crate) fn json_rows_sql(table: &super::schema::Planned, filter: &str) -> String {
    use super::schema::ident;
    let literal = |name: &str| format!("'{}'", name.replace('\'', "''"));
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let col = ident(c);
            format!(
                "{}, CASE WHEN typeof({col}) = 'blob' THEN hex({col}) ELSE {col} END",
                literal(c)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let order = table
        .order
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT json_object({fields}) FROM {} WHERE {filter} ORDER BY {order}",
        ident(&table.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path, true).await.unwrap();
        // A committed write: the WAL and its index exist while the store is open.
        let mut tx = store.begin_write().await.unwrap();
        crate::store::on!(tx, c => sqlx::query("CREATE TABLE probe (x INTEGER)").execute(c).await.map(|_| ()))
            .unwrap();
        tx.commit().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("t.db{suffix}"));
            let mode = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        store.close().await;
        // Opening it again (even with `create`) leaves an existing database as it is.
        let store = Store::open(&path, true).await.unwrap();
        assert!(store.is_empty().await.unwrap());
        store.close().await;
        let missing = Store::open(&dir.path().join("absent.db"), false).await;
        assert!(missing.is_err());
        assert!(!dir.path().join("absent.db").exists());
    }
}
