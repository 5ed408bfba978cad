//! Resolving a reference to an object of the tenant: each lookup takes what a caller typed (an
//! id or a name) and returns the object's `(id, name)`, or `None` when nothing in the tenant
//! answers to it. Deciding what a reference may be is `crate::refs`'s job.

use super::{Tx, on};
use crate::error::Result;
use crate::ids::TenantId;

/// A persona by id or handle: `(id, handle)`.
pub(crate) async fn persona(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, handle FROM personas WHERE tenant_id = $1 AND (id = $2 OR handle = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// An API key by id or name: `(id, name)`.
pub(crate) async fn key(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name FROM api_keys WHERE tenant_id = $1 AND (id = $2 OR name = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// The API key that answers to the secret with this digest: `(id, name)`.
pub(crate) async fn key_by_digest(
    tx: &mut Tx,
    tenant: &TenantId,
    digest: &[u8],
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT k.id, k.name FROM api_key_secrets s \
         JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.key_id \
         WHERE s.digest = $1 AND s.tenant_id = $2",
    )
    .bind(digest)
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// A business unit by id or name: `(id, name)`.
pub(crate) async fn bu(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name FROM business_units WHERE tenant_id = $1 AND (id = $2 OR name = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// An approval route by id or name: `(id, name)`.
pub(crate) async fn route(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name FROM approval_routes WHERE tenant_id = $1 AND (id = $2 OR name = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// An approval request by id: `(id, operation)`.
pub(crate) async fn request(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, operation FROM approval_requests WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// An invoice by id or number: `(id, number)`.
pub(crate) async fn invoice(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, number FROM invoices WHERE tenant_id = $1 AND (id = $2 OR number = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}
