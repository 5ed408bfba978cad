//! API keys and the secrets each answers to (only their keyed digests).

use super::{Tx, on};
use crate::error::Result;
use crate::ids::{KeyId, PersonaId, TenantId};
use crate::principal::Proof;
use crate::principal::{PersonaKind, PersonaStatus};
use crate::scope::{ScopeSet, scopes_from_json, scopes_to_json};

/// A key as stored, with its persona's handle. Never its secret.
pub(crate) struct Key {
    pub id: KeyId,
    pub name: String,
    pub hint: String,
    pub persona_id: PersonaId,
    pub persona: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    hint: String,
    persona_id: String,
    persona: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<KeyRow> for Key {
    fn from(r: KeyRow) -> Self {
        Key {
            id: KeyId::from_db(r.id),
            name: r.name,
            hint: r.hint,
            persona_id: PersonaId::from_db(r.persona_id),
            persona: r.persona,
            scopes: scopes_from_json(&r.scopes),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            rotated_at: r.rotated_at,
            revoked_at: r.revoked_at,
        }
    }
}

macro_rules! key_select {
    () => {
        "SELECT k.id, k.name, k.hint, k.persona_id, p.handle AS persona, k.scopes, k.created_at, \
                k.expires_at, k.last_used_at, k.rotated_at, k.revoked_at \
         FROM api_keys k JOIN personas p ON p.tenant_id = k.tenant_id AND p.id = k.persona_id \
         WHERE k.tenant_id = $1"
    };
}

/// The tenant's keys (only `persona`'s when given), by name.
pub(crate) async fn list(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: Option<&PersonaId>,
) -> Result<Vec<Key>> {
    let mut rows: Vec<KeyRow> = on!(tx, c => sqlx::query_as(concat!(
        key_select!(),
        " AND (CAST($2 AS TEXT) IS NULL OR k.persona_id = $2)",
    ))
    .bind(tenant.as_str())
    .bind(persona.map(PersonaId::as_str))
    .fetch_all(c)
    .await)?;
    // Byte order, the same on every engine (PostgreSQL's ORDER BY follows its collation).
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows.into_iter().map(Key::from).collect())
}

/// The key with this id or name.
pub(crate) async fn find(tx: &mut Tx, tenant: &TenantId, reference: &str) -> Result<Option<Key>> {
    let row: Option<KeyRow> = on!(tx, c => sqlx::query_as(
        concat!(key_select!(), " AND (k.id = $2 OR k.name = $2)"),
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(Key::from))
}

/// The id of the tenant's key that answers to the secret with this digest.
pub(crate) async fn id_by_digest(
    tx: &mut Tx,
    tenant: &TenantId,
    digest: &[u8],
) -> Result<Option<KeyId>> {
    let id: Option<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT key_id FROM api_key_secrets WHERE digest = $1 AND tenant_id = $2",
    )
    .bind(digest)
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(id.map(KeyId::from_db))
}

/// A new key's row.
pub(crate) struct NewKey<'a> {
    pub id: &'a KeyId,
    pub persona: &'a PersonaId,
    pub name: &'a str,
    pub scopes: &'a ScopeSet,
    pub hint: &'a str,
    pub created_at: i64,
    pub created_by: &'a PersonaId,
    pub expires_at: Option<i64>,
    pub proof: Proof,
}

/// Inserts a key; `false` when its name is taken in the tenant (nothing inserted).
pub(crate) async fn insert(tx: &mut Tx, tenant: &TenantId, k: &NewKey<'_>) -> Result<bool> {
    let scopes = scopes_to_json(k.scopes);
    let inserted = on!(tx, c => sqlx::query(
        "INSERT INTO api_keys \
           (tenant_id, id, persona_id, name, scopes, hint, created_at, created_by, expires_at, proof) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(k.id.as_str())
    .bind(k.persona.as_str())
    .bind(k.name)
    .bind(&scopes)
    .bind(k.hint)
    .bind(k.created_at)
    .bind(k.created_by.as_str())
    .bind(k.expires_at)
    .bind(k.proof.as_str())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Stores the digest of a secret the key now answers to.
pub(crate) async fn insert_secret(
    tx: &mut Tx,
    tenant: &TenantId,
    key: &KeyId,
    digest: &[u8],
    at: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO api_key_secrets (digest, tenant_id, key_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest)
    .bind(tenant.as_str())
    .bind(key.as_str())
    .bind(at)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Gives the key's secrets that have no end yet the end `until`; secrets already winding
/// down keep their earlier end.
pub(crate) async fn end_open_secrets(
    tx: &mut Tx,
    tenant: &TenantId,
    key: &KeyId,
    until: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE api_key_secrets SET not_after = $1 \
         WHERE tenant_id = $2 AND key_id = $3 AND not_after IS NULL",
    )
    .bind(until)
    .bind(tenant.as_str())
    .bind(key.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Records a rotation: when, the new secret's hint, and the proof its holder has.
pub(crate) async fn record_rotation(
    tx: &mut Tx,
    tenant: &TenantId,
    key: &KeyId,
    at: i64,
    hint: &str,
    proof: Proof,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE api_keys SET rotated_at = $1, hint = $2, proof = $3 WHERE tenant_id = $4 AND id = $5",
    )
    .bind(at)
    .bind(hint)
    .bind(proof.as_str())
    .bind(tenant.as_str())
    .bind(key.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Marks a key revoked at `at`.
pub(crate) async fn revoke(tx: &mut Tx, tenant: &TenantId, key: &KeyId, at: i64) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(at)
        .bind(tenant.as_str())
        .bind(key.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Marks every unrevoked key of a persona revoked at `at`; returns their ids, sorted.
pub(crate) async fn revoke_all_of(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    at: i64,
) -> Result<Vec<String>> {
    let mut ids: Vec<String> = on!(tx, c => sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = $1 \
         WHERE tenant_id = $2 AND persona_id = $3 AND revoked_at IS NULL RETURNING id",
    )
    .bind(at)
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_all(c)
    .await)?;
    ids.sort();
    Ok(ids)
}

/// The ids of the unrevoked keys `issuer` issued to other personas, by key name.
pub(crate) async fn unrevoked_issued_to_others(
    tx: &mut Tx,
    tenant: &TenantId,
    issuer: &PersonaId,
) -> Result<Vec<String>> {
    let mut rows: Vec<(String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT id, name FROM api_keys \
         WHERE tenant_id = $1 AND created_by = $2 AND persona_id <> $2 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(issuer.as_str())
    .fetch_all(c)
    .await)?;
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

/// Deletes every key of a persona and their secrets; returns the keys' ids, sorted.
pub(crate) async fn delete_all_of(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
) -> Result<Vec<String>> {
    let mut ids: Vec<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT id FROM api_keys WHERE tenant_id = $1 AND persona_id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_all(c)
    .await)?;
    ids.sort();
    on!(tx, c => sqlx::query(
        "DELETE FROM api_key_secrets WHERE tenant_id = $1 AND key_id IN \
           (SELECT id FROM api_keys WHERE tenant_id = $1 AND persona_id = $2)",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    on!(tx, c => sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1 AND persona_id = $2")
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(ids)
}

/// The proof a key's holder has of being its persona; `None` when the key does not exist.
pub(crate) async fn proof(tx: &mut Tx, tenant: &TenantId, key: &KeyId) -> Result<Option<Proof>> {
    let proof: Option<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT proof FROM api_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .fetch_optional(c)
    .await)?;
    proof.as_deref().map(Proof::parse).transpose()
}

/// Records a successful authentication with the key at `at`.
pub(crate) async fn touch(tx: &mut Tx, tenant: &TenantId, key: &KeyId, at: i64) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(at)
        .bind(tenant.as_str())
        .bind(key.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Everything authenticating a secret needs: the secret's key, its persona and their state.
pub(crate) struct Credential {
    /// The stored digest (equal to the one looked up).
    pub digest: Vec<u8>,
    pub tenant: TenantId,
    pub key: KeyId,
    /// When this secret stops working after a rotation.
    pub not_after: Option<i64>,
    pub persona: PersonaId,
    pub scopes: ScopeSet,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the key was last used (recorded at most once a minute).
    pub last_used_at: Option<i64>,
    pub kind: PersonaKind,
    pub status: PersonaStatus,
    /// The persona's roles now.
    pub roles: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    digest: Vec<u8>,
    tenant_id: String,
    key_id: String,
    not_after: Option<i64>,
    persona_id: String,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    kind: String,
    status: String,
    role: Option<String>,
}

/// The credential a secret digest belongs to, in whichever tenant holds it, with its persona's
/// roles — one statement, a row per role: the one lookup not scoped by a tenant, because the
/// secret is what names the tenant (digests are unique).
pub(crate) async fn credential(tx: &mut Tx, digest: &[u8]) -> Result<Option<Credential>> {
    let rows: Vec<CredentialRow> = on!(tx, c => sqlx::query_as(
        "SELECT s.digest, s.tenant_id, s.key_id, s.not_after, k.persona_id, k.scopes, \
                k.expires_at, k.revoked_at, k.last_used_at, p.kind, p.status, r.role \
         FROM api_key_secrets s \
         JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.key_id \
         JOIN personas p ON p.tenant_id = k.tenant_id AND p.id = k.persona_id \
         LEFT JOIN role_assignments r ON r.tenant_id = p.tenant_id AND r.persona_id = p.id \
         WHERE s.digest = $1",
    )
    .bind(digest)
    .fetch_all(c)
    .await)?;
    let mut roles: Vec<String> = rows.iter().filter_map(|r| r.role.clone()).collect();
    roles.sort();
    rows.into_iter()
        .next()
        .map(|r| {
            Ok(Credential {
                digest: r.digest,
                tenant: TenantId::from_db(r.tenant_id),
                key: KeyId::from_db(r.key_id),
                not_after: r.not_after,
                persona: PersonaId::from_db(r.persona_id),
                scopes: scopes_from_json(&r.scopes),
                expires_at: r.expires_at,
                revoked_at: r.revoked_at,
                last_used_at: r.last_used_at,
                kind: PersonaKind::from_stored(&r.kind)?,
                status: PersonaStatus::from_stored(&r.status)?,
                roles,
            })
        })
        .transpose()
}
