//! Tenants: their identity, their audit verifier key, and their tenant-wide settings.

use super::{Tx, on};
use crate::error::Result;
use crate::ids::TenantId;

/// A new tenant's row.
pub(crate) struct NewTenant<'a> {
    pub id: &'a TenantId,
    pub name: &'a str,
    pub created_at: i64,
    pub audit_verifier: &'a str,
    pub demo: bool,
    pub chat_link_min_age_secs: i64,
}

/// Inserts a tenant.
pub(crate) async fn insert(tx: &mut Tx, t: &NewTenant<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO tenants (id, name, created_at, audit_verifier, demo, chat_link_min_age_secs) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.id.as_str())
    .bind(t.name)
    .bind(t.created_at)
    .bind(t.audit_verifier)
    .bind(t.demo)
    .bind(t.chat_link_min_age_secs)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Whether no tenant exists yet.
pub(crate) async fn none_yet(tx: &mut Tx) -> Result<bool> {
    let n: i64 =
        on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(c).await)?;
    Ok(n == 0)
}

/// A tenant's name; `None` when there is no such tenant.
pub(crate) async fn name(tx: &mut Tx, tenant: &TenantId) -> Result<Option<String>> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_optional(c)
        .await)?,
    )
}

/// How long a new chat link waits before it counts for decisions, in seconds.
pub(crate) async fn link_min_age_secs(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT chat_link_min_age_secs FROM tenants WHERE id = $1",
    )
    .bind(tenant.as_str())
    .fetch_one(c)
    .await)?)
}

/// Sets how long a new chat link waits before it counts for decisions.
pub(crate) async fn set_link_min_age_secs(tx: &mut Tx, tenant: &TenantId, secs: i64) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE tenants SET chat_link_min_age_secs = $1 WHERE id = $2")
        .bind(secs)
        .bind(tenant.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A tenant's name and creation time.
pub(crate) async fn name_and_created(tx: &mut Tx, tenant: &TenantId) -> Result<(String, i64)> {
    let row: Option<(String, i64)> = on!(tx, c => sqlx::query_as(
        "SELECT name, created_at FROM tenants WHERE id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?;
    row.ok_or_else(|| crate::error::Error::Internal(format!("tenant {tenant} vanished")))
}
