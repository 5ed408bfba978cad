//! The PostgreSQL engine: one database shared by every replica, migrations embedded in the
//! binary, and write transactions that take one transaction-scoped advisory lock first, so that
//! the write transactions of every replica run one after another exactly as SQLite's
//! `BEGIN IMMEDIATE` makes them — every invariant the core keeps on SQLite (an approval executes
//! once, a tenant's ledger is one chain, a delivery is handled once) holds across replicas with
//! no other coordination. Group commit keeps the lock's cost to one hand-over per batch.

use super::location::Location;
use super::{Tx, TxInner};
use crate::error::{Error, Result};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The advisory lock every write transaction holds (`tenantops` in ASCII, as a bigint).
pub(crate) const WRITE_LOCK: i64 = 0x7465_6e61_6e74_6f70;

/// Connects to the database at `url` and applies pending migrations (under the migrator's own
/// advisory lock: replicas starting together apply each migration once).
pub(super) async fn open(url: &str, location: &Location) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        Error::Config(format!(
            "{location} is not a PostgreSQL URL tenantops understands ({e}): write \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ))
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        // Each use is one statement or one transaction whose failure is reported to its caller;
        // a ping before every use would double the round trips of a call.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot connect to PostgreSQL at {location}: {e}; check the URL, that the \
                 server runs and that the database exists"
            ))
        })?;
    sqlx::migrate!("./migrations-postgres")
        .run(&pool)
        .await
        .map_err(super::migrations::error)?;
    Ok(pool)
}

/// Starts a write transaction holding the write lock from its first statement (`BEGIN` and the
/// lock go in one round trip).
pub(super) async fn begin_write(pool: &PgPool) -> Result<Tx> {
    let tx = pool
        .begin_with(sqlx::AssertSqlSafe(format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
        )))
        .await?;
    Ok(Tx {
        inner: TxInner::Postgres(tx),
    })
}

/// The PostgreSQL connection of `tx`, for statements only PostgreSQL understands.
pub(super) fn conn(tx: &mut Tx) -> Result<&mut sqlx::PgConnection> {
    match &mut tx.inner {
        TxInner::Postgres(t) => Ok(t),
        TxInner::PostgresConn(c) => Ok(c),
        TxInner::Sqlite(_) | TxInner::SqliteConn(_) => {
            Err(Error::Internal("not a PostgreSQL transaction".into()))
        }
    }
}

/// The tables of the schema, without the migrator's own.
pub(crate) async fn tables(tx: &mut Tx) -> Result<Vec<String>> {
    let conn = conn(tx)?;
    Ok(sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name",
    )
    .fetch_all(conn)
    .await?)
}

/// A table's columns in schema order, with their primary-key positions and types.
pub(crate) async fn columns(tx: &mut Tx, table: &str) -> Result<Vec<super::schema::Column>> {
    let conn = conn(tx)?;
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT CAST(c.column_name AS TEXT), \
                CAST(COALESCE(k.ordinal_position, 0) AS BIGINT), \
                CAST(c.data_type AS TEXT) \
         FROM information_schema.columns c \
         LEFT JOIN information_schema.table_constraints t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
          AND t.constraint_type = 'PRIMARY KEY' \
         LEFT JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = t.constraint_schema AND k.constraint_name = t.constraint_name \
          AND k.table_name = c.table_name AND k.column_name = c.column_name \
         WHERE c.table_schema = current_schema() AND c.table_name = $1 \
         ORDER BY c.ordinal_position",
    )
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
        .map(|c| {
            if table.binary.contains(c) {
                format!("COALESCE(octet_length({}), 0)", ident(c))
            } else {
                format!("COALESCE(octet_length(CAST({} AS TEXT)), 0)", ident(c))
            }
        })
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM({sum}), 0) AS BIGINT) FROM {} WHERE {filter}",
        ident(&table.name)
    )
}

/// Each row of a planned table as a compact JSON object in column order (bytes as uppercase
/// hex, as on SQLite), in its total order.
pub(crate) fn json_rows_sql(table: &super::schema::Planned, filter: &str) -> String {
    use super::schema::ident;
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let col = ident(c);
            if table.binary.contains(c) {
                format!("upper(encode({col}, 'hex')) AS {col}")
            } else {
                col
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let order = table
        .order
        .iter()
        .map(|c| format!("r.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT CAST(row_to_json(r) AS TEXT) FROM (SELECT {fields} FROM {} WHERE {filter}) r \
         ORDER BY {order}",
        ident(&table.name)
    )
}

/// Says `payload` on `channel` when `tx` commits (nothing if it rolls back).
pub(crate) async fn notify(tx: &mut Tx, channel: &str, payload: &str) -> Result<()> {
    let conn = conn(tx)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}
