//! The re-wrap's work inside a transaction: progress, re-sealing every value under the newest
//! epoch, and the check that keys are still the newest. The background pass that drives it is
//! the engine's (`engine/rewrap.rs`).

use super::keys::{Place, TenantKeys};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::vault::{self as db, SEALED};
use crate::store::{self, Tx};
use serde::Serialize;

/// Values moved per write.
pub(crate) const BATCH: i64 = 256;

/// What one pass of the re-wrap did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RewrapReport {
    /// Values moved to their tenant's newest epoch.
    pub rewrapped: u64,
    /// Rotations finished (old data keys dropped).
    pub finished: u32,
    /// Tenants whose keys could not be used this pass.
    pub failed: u32,
}

/// How far a tenant's values are under its newest key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Progress {
    /// Sealed values the tenant holds.
    pub sealed_values: u64,
    /// Of those, sealed under the newest key.
    pub under_newest_key: u64,
    /// `under_newest_key` in percent of `sealed_values` (100 when there are none).
    pub percent: u32,
}

/// Counts the tenant's sealed values and those under the epoch `newest`.
pub(crate) async fn progress(tx: &mut Tx, tenant: &TenantId, newest: u32) -> Result<Progress> {
    let header = super::keys::header(newest);
    let mut p = Progress::default();
    for col in SEALED {
        let (total, current) = db::count(tx, tenant, col, &header).await?;
        p.sealed_values += total as u64;
        p.under_newest_key += current as u64;
    }
    p.percent = match p.sealed_values {
        0 => 100,
        n => ((p.under_newest_key * 100) / n) as u32,
    };
    Ok(p)
}

/// Re-seals every value of the tenant in `tx` under `keys`' newest epoch; returns how many
/// moved. For work that already holds the writer (`byok.disable`).
pub(crate) async fn rewrap_all(tx: &mut Tx, keys: &TenantKeys) -> Result<u64> {
    let header = keys.current_header();
    let mut moved = 0u64;
    for col in SEALED {
        let mut after: Option<Vec<String>> = None;
        loop {
            let found = db::stale(tx, keys.tenant(), col, &header, after.as_deref(), BATCH).await?;
            let Some(last) = found.last() else {
                break;
            };
            after = Some(last.key.clone());
            for v in &found {
                let record = v.record();
                let place = Place::new(col, &record);
                let fresh = keys.seal(place, &keys.open(place, &v.value)?);
                if db::replace(tx, keys.tenant(), col, v, &fresh).await? {
                    moved += 1;
                }
            }
        }
    }
    Ok(moved)
}

/// Checks, inside the transaction that is about to store values sealed under `keys`, that
/// their epoch is still the tenant's newest: a rotation committed since they were loaded would
/// otherwise strand the values under a data key the re-wrap is about to drop.
pub(crate) async fn check_newest(tx: &mut Tx, keys: &TenantKeys) -> Result<()> {
    match store::vault::newest_epoch(tx, keys.tenant()).await? {
        Some(e) if e == i64::from(keys.current_epoch()) => Ok(()),
        _ => Err(Error::Conflict(
            "the tenant's encryption key changed during this call (a BYOK rotation); nothing \
             was changed — run it again"
                .into(),
        )),
    }
}
