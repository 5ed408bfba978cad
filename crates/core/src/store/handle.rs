//! [`Store`]: the database handle shared by every part of the core, over either engine.

use super::location::Location;
use super::{Engine, Tx, TxInner};
use crate::error::Result;
use sqlx::{PgPool, SqlitePool};

/// The database handle shared by every part of the core.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens the database (creating a SQLite file when `create` is set) and applies pending
    /// migrations. A schema newer than this build is refused.
    pub async fn open(location: &Location, create: bool) -> Result<Self> {
        let pool = match location {
            Location::Sqlite(path) => Pool::Sqlite(super::sqlite::open(path, create).await?),
            Location::Postgres(url) => Pool::Postgres(super::postgres::open(url, location).await?),
        };
        Ok(Self { pool })
    }

    /// The engine the store runs on.
    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite pool, when the store runs on SQLite (tests and engine-specific tools).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, when the store runs on PostgreSQL (notifications, leases, tests).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// Starts a write transaction that holds the engine's write lock from its first statement:
    /// write transactions of every process on the database run one after another. Only the
    /// writer starts one ([`super::writer::Writer`]): every write of the process goes through it.
    pub(in crate::store) async fn begin_write(&self) -> Result<Tx> {
        match &self.pool {
            Pool::Sqlite(p) => super::sqlite::begin_write(p).await,
            Pool::Postgres(p) => super::postgres::begin_write(p).await,
        }
    }

    /// Starts a read transaction: a consistent snapshot that does not take the write lock.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(Tx {
            inner: match &self.pool {
                Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
                Pool::Postgres(p) => TxInner::Postgres(
                    p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
                        .await?,
                ),
            },
        })
    }

    /// A connection for one-statement lookups, outside any transaction (no `BEGIN`, no
    /// `ROLLBACK`: two fewer round trips). Several statements that must agree need
    /// [`Store::begin_read`].
    pub async fn read(&self) -> Result<Tx> {
        Ok(Tx {
            inner: match &self.pool {
                Pool::Sqlite(p) => TxInner::SqliteConn(p.acquire().await?),
                Pool::Postgres(p) => TxInner::PostgresConn(p.acquire().await?),
            },
        })
    }

    /// Whether any tenant exists yet (used to decide whether a missing key file is an error).
    pub async fn is_empty(&self) -> Result<bool> {
        let mut tx = self.read().await?;
        let empty = super::tenants::none_yet(&mut tx).await?;
        tx.rollback().await?;
        Ok(empty)
    }

    /// The newest schema migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        let mut tx = self.read().await?;
        let v: Option<i64> = super::on!(tx, c => sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
        )
        .fetch_one(c)
        .await)?;
        tx.end_read();
        Ok(v.unwrap_or(0))
    }

    /// Closes every connection (on SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}
