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

/// Opens the database file at `path` (creating it when `create` is set) and applies pending
/// migrations.
pub(super) async fn open(path: &Path, create: bool) -> Result<SqlitePool> {
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
        .await
        .map_err(|e| not_sqlite(path, e))?;
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
                if attempt < 5 && !is_not_a_database(&e) =>
            {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(sqlx::migrate::MigrateError::Execute(e)) => return Err(not_sqlite(path, e)),
            Err(e) => return Err(super::migrations::error(e)),
        }
    }
    Ok(pool)
}

fn is_not_a_database(e: &sqlx::migrate::MigrateError) -> bool {
    e.to_string().contains("file is not a database")
}

/// A file that is not SQLite's (a PostgreSQL dump, anything else) is named as such.
fn not_sqlite(path: &Path, e: sqlx::Error) -> Error {
    if e.to_string().contains("file is not a database") {
        Error::Config(format!(
            "{} is not a SQLite database: point --db / TENANTOPS_DB at a tenantops SQLite file, \
             or at a PostgreSQL database with a postgres:// URL",
            path.display()
        ))
    } else {
        e.into()
    }
}

/// Starts a write transaction holding SQLite's write lock from its first statement.
pub(super) async fn begin_write(pool: &SqlitePool) -> Result<Tx> {
    Ok(Tx {
        inner: TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
    })
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
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT name, pk, lower(type) FROM pragma_table_info($1) ORDER BY cid")
            .bind(table)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, pk, ty)| super::schema::Column { name, pk, ty })
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
    use crate::error::Error;
    use crate::store::Store;

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.db");
        std::fs::write(&path, vec![b'P'; 8192]).unwrap();
        match Store::open(&path.clone().into(), false).await {
            Err(Error::Config(m)) => {
                assert!(m.contains("is not a SQLite database"), "{m}");
                assert!(!m.contains('\n'), "{m}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path.clone().into(), true).await.unwrap();
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
        let store = Store::open(&path.clone().into(), true).await.unwrap();
        assert!(store.is_empty().await.unwrap());
        store.close().await;
        let missing = Store::open(&dir.path().join("absent.db").into(), false).await;
        assert!(missing.is_err());
        assert!(!dir.path().join("absent.db").exists());
    }
}
