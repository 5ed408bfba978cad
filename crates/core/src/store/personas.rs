//! Members: personas, their role assignments, and the business units they sit in.

use super::{Tx, on};
use crate::error::Result;
use crate::ids::{PersonaId, TenantId};
use crate::principal::{PersonaKind, PersonaStatus};
use std::collections::HashMap;

/// A persona as stored, with its business unit's name and its roles (sorted).
pub(crate) struct Persona {
    pub id: PersonaId,
    pub handle: String,
    pub kind: PersonaKind,
    /// Plaintext written by a version before the vault (until the upgrade pass seals it).
    pub display_name: Option<String>,
    /// Plaintext written by a version before the vault (until the upgrade pass seals it).
    pub email: Option<String>,
    pub display_name_sealed: Option<Vec<u8>>,
    pub email_sealed: Option<Vec<u8>>,
    pub invite_state: Option<String>,
    pub status: PersonaStatus,
    pub bu_id: Option<String>,
    pub bu: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub roles: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct PersonaRow {
    id: String,
    handle: String,
    kind: String,
    display_name: Option<String>,
    email: Option<String>,
    display_name_sealed: Option<Vec<u8>>,
    email_sealed: Option<Vec<u8>>,
    invite_state: Option<String>,
    status: String,
    bu_id: Option<String>,
    bu: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

/// A persona's row with one of its roles (`None` when it has none).
#[derive(sqlx::FromRow)]
struct PersonaRoleRow {
    #[sqlx(flatten)]
    persona: PersonaRow,
    role: Option<String>,
}

impl PersonaRow {
    fn into_persona(self, roles: Vec<String>) -> Result<Persona> {
        Ok(Persona {
            id: PersonaId::from_db(self.id),
            handle: self.handle,
            kind: PersonaKind::from_stored(&self.kind)?,
            display_name: self.display_name,
            email: self.email,
            display_name_sealed: self.display_name_sealed,
            email_sealed: self.email_sealed,
            invite_state: self.invite_state,
            status: PersonaStatus::from_stored(&self.status)?,
            bu_id: self.bu_id,
            bu: self.bu,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            roles,
        })
    }
}

macro_rules! persona_select {
    () => {
        "SELECT p.id, p.handle, p.kind, p.display_name, p.email, p.display_name_sealed, \
                p.email_sealed, p.invite_state, p.status, \
                p.bu_id, b.name AS bu, p.created_at, p.revoked_at \
         FROM personas p \
         LEFT JOIN business_units b ON b.tenant_id = p.tenant_id AND b.id = p.bu_id \
         WHERE p.tenant_id = $1"
    };
}

/// The persona with this id or handle.
pub(crate) async fn find(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<Persona>> {
    // With its roles, a row per role: one round trip.
    let rows: Vec<PersonaRoleRow> = on!(tx, c => sqlx::query_as(concat!(
        "SELECT q.*, r.role FROM (",
        persona_select!(),
        " AND (p.id = $2 OR p.handle = $2) ORDER BY p.id LIMIT 1) AS q \
         LEFT JOIN role_assignments r ON r.tenant_id = $1 AND r.persona_id = q.id",
    ))
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_all(c)
    .await)?;
    let mut roles: Vec<String> = rows.iter().filter_map(|r| r.role.clone()).collect();
    roles.sort();
    rows.into_iter()
        .next()
        .map(|r| r.persona.into_persona(roles))
        .transpose()
}

/// The tenant's personas, by handle: only of `kind` and in business unit `bu` when given, and
/// only active ones unless `include_revoked`.
pub(crate) async fn list(
    tx: &mut Tx,
    tenant: &TenantId,
    kind: Option<PersonaKind>,
    bu: Option<&str>,
    include_revoked: bool,
) -> Result<Vec<Persona>> {
    let mut rows: Vec<PersonaRow> = on!(tx, c => sqlx::query_as(concat!(
        persona_select!(),
        " AND (CAST($2 AS TEXT) IS NULL OR p.kind = $2) \
          AND (CAST($3 AS TEXT) IS NULL OR p.bu_id = $3) \
          AND ($4 OR p.status = 'active')",
    ))
    .bind(tenant.as_str())
    .bind(kind.map(PersonaKind::as_str))
    .bind(bu)
    .bind(include_revoked)
    .fetch_all(c)
    .await)?;
    // Byte order, the same on every engine (PostgreSQL's ORDER BY follows its collation).
    rows.sort_by(|a, b| a.handle.cmp(&b.handle));
    let assignments: Vec<(String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT persona_id, role FROM role_assignments WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    let mut by_persona: HashMap<String, Vec<String>> = HashMap::new();
    for (persona, role) in assignments {
        by_persona.entry(persona).or_default().push(role);
    }
    rows.into_iter()
        .map(|row| {
            let mut roles = by_persona.remove(&row.id).unwrap_or_default();
            roles.sort();
            row.into_persona(roles)
        })
        .collect()
}

/// A persona's roles, sorted.
pub(crate) async fn roles(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
) -> Result<Vec<String>> {
    let mut roles: Vec<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT role FROM role_assignments WHERE tenant_id = $1 AND persona_id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_all(c)
    .await)?;
    roles.sort();
    Ok(roles)
}

/// What re-checking a caller reads, in one statement: the persona's status, its secret's end
/// after a rotation, its key's revocation, and how many approval routes name `operation`.
pub(crate) struct Standing {
    /// `None` when the persona does not exist in the tenant.
    pub status: Option<PersonaStatus>,
    /// `None` when no secret was asked about or it no longer exists; `Some(None)` while it has
    /// no end.
    pub secret_not_after: Option<Option<i64>>,
    /// `None` when no key was asked about or it no longer exists; `Some(None)` while it is not
    /// revoked.
    pub key_revoked_at: Option<Option<i64>>,
    /// Approval routes of the tenant that name `operation`.
    pub routes: i64,
    /// The persona's roles now.
    pub roles: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct StandingRow {
    status: Option<String>,
    secret_exists: Option<i64>,
    not_after: Option<i64>,
    key_exists: Option<i64>,
    revoked_at: Option<i64>,
    routes: i64,
    role: Option<String>,
}

/// Reads a caller's [`Standing`]; `digest` and `key` are the secret and key it presented, if
/// any.
pub(crate) async fn standing(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    digest: Option<&[u8]>,
    key: Option<&str>,
    operation: &str,
) -> Result<Standing> {
    // The scalars once per role (one row without a role): a single round trip.
    let rows: Vec<StandingRow> = on!(tx, c => sqlx::query_as(
        "SELECT \
           (SELECT status FROM personas WHERE tenant_id = $1 AND id = $2) AS status, \
           (SELECT CAST(1 AS BIGINT) FROM api_key_secrets \
             WHERE digest = $3 AND tenant_id = $1) AS secret_exists, \
           (SELECT not_after FROM api_key_secrets \
             WHERE digest = $3 AND tenant_id = $1) AS not_after, \
           (SELECT CAST(1 AS BIGINT) FROM api_keys WHERE tenant_id = $1 AND id = $4) AS key_exists, \
           (SELECT revoked_at FROM api_keys WHERE tenant_id = $1 AND id = $4) AS revoked_at, \
           (SELECT COUNT(*) FROM approval_routes \
             WHERE tenant_id = $1 AND operation = $5) AS routes, \
           r.role \
         FROM (SELECT 1 AS one) AS one \
         LEFT JOIN role_assignments r ON r.tenant_id = $1 AND r.persona_id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .bind(digest)
    .bind(key)
    .bind(operation)
    .fetch_all(c)
    .await)?;
    let mut roles: Vec<String> = rows.iter().filter_map(|r| r.role.clone()).collect();
    roles.sort();
    let row = rows.into_iter().next().ok_or_else(|| {
        crate::error::Error::Internal("the standing query returned no row".into())
    })?;
    Ok(Standing {
        status: row
            .status
            .as_deref()
            .map(PersonaStatus::from_stored)
            .transpose()?,
        secret_not_after: row.secret_exists.map(|_| row.not_after),
        key_revoked_at: row.key_exists.map(|_| row.revoked_at),
        routes: row.routes,
        roles,
    })
}

/// A persona's status; `None` when it does not exist in the tenant.
pub(crate) async fn status(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
) -> Result<Option<PersonaStatus>> {
    let status: Option<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT status FROM personas WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_optional(c)
    .await)?;
    status
        .as_deref()
        .map(PersonaStatus::from_stored)
        .transpose()
}

/// A persona's kind and status; `None` when it does not exist in the tenant.
pub(crate) async fn kind_and_status(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
) -> Result<Option<(PersonaKind, PersonaStatus)>> {
    let row: Option<(String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT kind, status FROM personas WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .fetch_optional(c)
    .await)?;
    row.map(|(kind, status)| {
        Ok((
            PersonaKind::from_stored(&kind)?,
            PersonaStatus::from_stored(&status)?,
        ))
    })
    .transpose()
}

/// A new persona's row; it starts active.
pub(crate) struct NewPersona<'a> {
    pub id: &'a PersonaId,
    pub handle: &'a str,
    pub kind: PersonaKind,
    /// Sealed ([`crate::store::vault::PERSONA_NAME`]).
    pub display_name: Option<&'a [u8]>,
    /// Sealed ([`crate::store::vault::PERSONA_EMAIL`]).
    pub email: Option<&'a [u8]>,
    /// The email's blind index.
    pub email_index: Option<&'a [u8]>,
    pub invite_state: Option<&'a str>,
    pub bu_id: Option<&'a str>,
    pub created_at: i64,
}

/// Inserts a persona; `false` when its handle is taken in the tenant (nothing inserted).
pub(crate) async fn insert(tx: &mut Tx, tenant: &TenantId, p: &NewPersona<'_>) -> Result<bool> {
    let inserted = on!(tx, c => sqlx::query(
        "INSERT INTO personas \
           (tenant_id, id, handle, kind, display_name_sealed, email_sealed, email_index, \
            invite_state, status, bu_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant_id, handle) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(p.id.as_str())
    .bind(p.handle)
    .bind(p.kind.as_str())
    .bind(p.display_name)
    .bind(p.email)
    .bind(p.email_index)
    .bind(p.invite_state)
    .bind(PersonaStatus::Active.as_str())
    .bind(p.bu_id)
    .bind(p.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Replaces a persona's role assignments with `roles`.
pub(crate) async fn replace_roles(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    roles: &[String],
    at: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM role_assignments WHERE tenant_id = $1 AND persona_id = $2")
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    for role in roles {
        on!(tx, c => sqlx::query(
            "INSERT INTO role_assignments (tenant_id, persona_id, role, assigned_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .bind(role)
        .bind(at)
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

/// How many active human personas other than `except` hold `role`.
pub(crate) async fn active_humans_with_role(
    tx: &mut Tx,
    tenant: &TenantId,
    role: &str,
    except: &PersonaId,
) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM personas p \
         JOIN role_assignments r ON r.tenant_id = p.tenant_id AND r.persona_id = p.id \
         WHERE p.tenant_id = $1 AND p.id <> $2 AND p.status = $3 AND p.kind = $4 AND r.role = $5",
    )
    .bind(tenant.as_str())
    .bind(except.as_str())
    .bind(PersonaStatus::Active.as_str())
    .bind(PersonaKind::Human.as_str())
    .bind(role)
    .fetch_one(c)
    .await)?)
}

/// Marks a persona revoked at `at`.
pub(crate) async fn revoke(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    at: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE personas SET status = $1, revoked_at = $2 WHERE tenant_id = $3 AND id = $4",
    )
    .bind(PersonaStatus::Revoked.as_str())
    .bind(at)
    .bind(tenant.as_str())
    .bind(persona.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Deletes a persona and its role assignments (its keys go first: `store::keys::delete_all_of`).
pub(crate) async fn delete(tx: &mut Tx, tenant: &TenantId, persona: &PersonaId) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM role_assignments WHERE tenant_id = $1 AND persona_id = $2")
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    on!(tx, c => sqlx::query("DELETE FROM personas WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Puts a persona in business unit `bu`, or in none.
pub(crate) async fn set_bu(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    bu: Option<&str>,
) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE personas SET bu_id = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(bu)
        .bind(tenant.as_str())
        .bind(persona.as_str())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A business unit with its parent's name and its count of active personas.
#[derive(sqlx::FromRow)]
pub(crate) struct Bu {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub parent: Option<String>,
    pub personas: i64,
}

/// The tenant's business units, by name.
pub(crate) async fn list_bus(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Bu>> {
    let mut units: Vec<Bu> = on!(tx, c => sqlx::query_as(
        "SELECT b.id, b.name, b.kind, b.parent_id, p.name AS parent, \
           (SELECT COUNT(*) FROM personas x \
            WHERE x.tenant_id = b.tenant_id AND x.bu_id = b.id AND x.status = 'active') AS personas \
         FROM business_units b \
         LEFT JOIN business_units p ON p.tenant_id = b.tenant_id AND p.id = b.parent_id \
         WHERE b.tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    // Byte order, the same on every engine.
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

/// A new business unit's row.
pub(crate) struct NewBu<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub parent_id: Option<&'a str>,
    pub created_at: i64,
}

/// Inserts a business unit; `false` when its name is taken in the tenant (nothing inserted).
pub(crate) async fn insert_bu(tx: &mut Tx, tenant: &TenantId, b: &NewBu<'_>) -> Result<bool> {
    let inserted = on!(tx, c => sqlx::query(
        "INSERT INTO business_units (tenant_id, id, name, kind, parent_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(b.id)
    .bind(b.name)
    .bind(b.kind)
    .bind(b.parent_id)
    .bind(b.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Renames a business unit; `false` when another unit of the tenant has that name. A
/// concurrent rename to the same name surfaces as `false` too, after which the transaction
/// must end (PostgreSQL aborts it on the violated constraint).
pub(crate) async fn rename_bu(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    name: &str,
) -> Result<bool> {
    let taken: i64 = on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM business_units WHERE tenant_id = $1 AND name = $2 AND id <> $3",
    )
    .bind(tenant.as_str())
    .bind(name)
    .bind(id)
    .fetch_one(c)
    .await)?;
    if taken > 0 {
        return Ok(false);
    }
    let res = on!(tx, c => sqlx::query("UPDATE business_units SET name = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(name)
        .bind(tenant.as_str())
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()));
    match res {
        Ok(()) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets a business unit's kind.
pub(crate) async fn set_bu_kind(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    kind: &str,
) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE business_units SET kind = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(kind)
        .bind(tenant.as_str())
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Sets a business unit's parent, or makes it top-level.
pub(crate) async fn set_bu_parent(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    parent: Option<&str>,
) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE business_units SET parent_id = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(parent)
        .bind(tenant.as_str())
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Whether `unit` is `other` or one of its ancestors: walking up from `other` meets `unit`.
pub(crate) async fn is_self_or_ancestor(
    tx: &mut Tx,
    tenant: &TenantId,
    unit: &str,
    other: &str,
) -> Result<bool> {
    let n: i64 = on!(tx, c => sqlx::query_scalar(
        "WITH RECURSIVE up(id) AS ( \
           SELECT CAST($1 AS TEXT) \
           UNION \
           SELECT b.parent_id FROM business_units b JOIN up ON b.id = up.id \
           WHERE b.tenant_id = $2 AND b.parent_id IS NOT NULL) \
         SELECT COUNT(*) FROM up WHERE id = $3",
    )
    .bind(other)
    .bind(tenant.as_str())
    .bind(unit)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}
