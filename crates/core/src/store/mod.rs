//! The store: one handle over the database engine, transactions that work the same on every
//! engine, and the repositories (one module per kind of data) that own every SQL statement.
//!
//! Everything above this module speaks in typed functions (`store::personas::status(tx, …)`)
//! and [`Tx`]; no operation writes SQL or names an engine type. A repository's statement is
//! written once, in SQL that SQLite and PostgreSQL both accept (`$1` placeholders, `ON CONFLICT`,
//! `CAST(… AS BIGINT)`, `IS DISTINCT FROM`), and compiled against both engines by [`on!`]: the
//! compiler checks that every bound and decoded type exists on both. What differs between the
//! engines — connecting, pragmas, taking the write lock, schema introspection — lives in one
//! module per engine.

pub(crate) mod approvals;
pub(crate) mod billing;
pub(crate) mod chat;
pub mod copy;
pub mod export;
mod handle;
pub(crate) mod keys;
pub(crate) mod leases;
pub(crate) mod ledger;
pub mod location;
mod migrations;
pub(crate) mod personas;
pub(crate) mod postgres;
pub(crate) mod refs;
pub mod schema;
pub(crate) mod sqlite;
pub(crate) mod tenants;
pub(crate) mod vault;
pub mod writer;

use crate::error::Result;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Sqlite, Transaction};

/// The database engines tenantops runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// One SQLite file (WAL): the embedded default.
    Sqlite,
    /// PostgreSQL 15 or newer: several replicas on one database.
    Postgres,
}

/// A transaction on whichever engine the store runs: the only handle repositories take.
pub struct Tx {
    pub(crate) inner: TxInner,
}

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    /// A connection outside any transaction ([`Store::read`]): each statement is its own
    /// snapshot. For lookups of one statement, which need no `BEGIN` and no `ROLLBACK`.
    SqliteConn(PoolConnection<Sqlite>),
    PostgresConn(PoolConnection<Postgres>),
}

/// Runs `body` with `$c` bound to the transaction's connection, compiled once per engine:
/// `on!(tx, c => sqlx::query("…").bind(x).execute(c).await.map(|r| r.rows_affected()))`. The
/// body must type-check for both `SqliteConnection` and `PgConnection`, and evaluate to the same
/// type on both (so map engine-specific results, like a query result, to plain values).
#[macro_export]
#[doc(hidden)]
macro_rules! on {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut **t;
                $body
            }
            $crate::store::TxInner::SqliteConn(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            $crate::store::TxInner::PostgresConn(t) => {
                let $c: &mut sqlx::PgConnection = &mut **t;
                $body
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on;

impl Tx {
    /// The engine this transaction runs on.
    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) | TxInner::SqliteConn(_) => Engine::Sqlite,
            TxInner::Postgres(_) | TxInner::PostgresConn(_) => Engine::Postgres,
        }
    }

    /// Commits (a [`Store::read`] handle has nothing to commit).
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
            TxInner::SqliteConn(_) | TxInner::PostgresConn(_) => {}
        }
        Ok(())
    }

    /// Rolls back (a [`Store::read`] handle returns its connection to the pool).
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::Postgres(t) => t.rollback().await?,
            TxInner::SqliteConn(_) | TxInner::PostgresConn(_) => {}
        }
        Ok(())
    }

    /// Ends a read transaction without waiting for it: the engine rolls it back in the
    /// background before the connection's next use (a read has nothing to lose, and its caller
    /// saves a round trip to the database thread).
    pub fn end_read(self) {
        drop(self);
    }

    /// Marks a point the transaction can return to ([`Tx::rollback_to`]) without losing what
    /// came before it; `name` is a fixed identifier.
    pub async fn savepoint(&mut self, name: &'static str) -> Result<()> {
        self.run(Savepoint::Set, name).await
    }

    /// Forgets a savepoint, keeping what was done since.
    pub async fn release(&mut self, name: &'static str) -> Result<()> {
        self.run(Savepoint::Release, name).await
    }

    /// Runs savepoint commands (`SAVEPOINT x; RELEASE SAVEPOINT y`, fixed identifiers only)
    /// in one round trip: the writer's.
    pub(in crate::store) async fn savepoints(&mut self, sql: &str) -> Result<()> {
        debug_assert!(
            sql.split("; ")
                .all(|c| c.starts_with("SAVEPOINT ") || c.starts_with("RELEASE SAVEPOINT "))
        );
        let sql = sql.to_owned();
        on!(self, c => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Undoes everything since the savepoint (which stays set).
    pub async fn rollback_to(&mut self, name: &'static str) -> Result<()> {
        self.run(Savepoint::RollbackTo, name).await
    }

    async fn run(&mut self, what: Savepoint, name: &'static str) -> Result<()> {
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let sql = match what {
            Savepoint::Set => format!("SAVEPOINT {name}"),
            Savepoint::Release => format!("RELEASE SAVEPOINT {name}"),
            Savepoint::RollbackTo => format!("ROLLBACK TO SAVEPOINT {name}"),
        };
        on!(self, c => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}

enum Savepoint {
    Set,
    Release,
    RollbackTo,
}

pub use handle::Store;
pub use location::Location;
