//! Leases: a named duty held by one replica at a time until it expires or is released.

use super::{Tx, on};
use crate::error::Result;

/// Takes the lease `name` for `holder` until `until_ms`, or renews it if `holder` has it; fails
/// (returns `false`) while another holder's lease runs.
pub(crate) async fn acquire(
    tx: &mut Tx,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
         WHERE leases.holder = excluded.holder OR leases.until_ms <= $4",
    )
    .bind(name)
    .bind(holder)
    .bind(until_ms)
    .bind(now_ms)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Gives up `holder`'s lease `name` (no-op if it is not theirs).
pub(crate) async fn release(tx: &mut Tx, name: &str, holder: &str) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The unexpired leases `holder` has, by name.
pub(crate) async fn held(tx: &mut Tx, holder: &str, now_ms: i64) -> Result<Vec<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT name FROM leases WHERE holder = $1 AND until_ms > $2 ORDER BY name",
    )
    .bind(holder)
    .bind(now_ms)
    .fetch_all(c)
    .await)?)
}

/// Forgets leases that expired before `before_ms` (their holders are gone).
pub(crate) async fn forget_expired(tx: &mut Tx, before_ms: i64) -> Result<u64> {
    Ok(
        on!(tx, c => sqlx::query("DELETE FROM leases WHERE until_ms < $1")
        .bind(before_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?,
    )
}
