//! Members (guide §2): personas, their roles and business units — how they are shown, and the
//! rules every operation touching them follows: no escalation through role assignment, no
//! managing a persona that holds more than you, and never losing the last human admin.

use crate::clock::{ms_to_rfc3339, to_millis};
use crate::error::{Error, Result};
use crate::ids::{PersonaId, TenantId};
use crate::principal::{PersonaKind, PersonaStatus, Principal};
use crate::roles;
use crate::scope::ScopeSet;
use crate::store::vault::{PERSONA_EMAIL, PERSONA_NAME};
use crate::store::{Tx, personas};
use crate::vault::keys::{Place, TenantKeys};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// The role the tenant may never be left without (held by an active human).
pub(crate) const ADMIN_ROLE: &str = "tenant-admin";

/// Checks an email address.
pub fn validate_email(field: &str, value: &str) -> Result<()> {
    if value.len() <= 254 && email_address::EmailAddress::is_valid(value) {
        Ok(())
    } else {
        Err(Error::bad_input(
            field,
            format!("`{value}` is not a valid email address"),
        ))
    }
}

/// A persona as shown to callers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonaView {
    /// Persona id.
    pub id: PersonaId,
    /// Unique handle within the tenant, e.g. `ci-bot`.
    pub handle: String,
    /// human, service or agent.
    pub kind: PersonaKind,
    /// Display name.
    pub display_name: Option<String>,
    /// Email (humans).
    pub email: Option<String>,
    /// `invited` until a human accepts; absent for service and agent personas.
    pub invite_state: Option<String>,
    /// `active` or `revoked`.
    pub status: PersonaStatus,
    /// Assigned roles.
    pub roles: Vec<String>,
    /// Business unit id, if any.
    pub bu_id: Option<String>,
    /// Business unit name, if any.
    pub bu: Option<String>,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Revoked at (RFC 3339).
    pub revoked_at: Option<String>,
}

impl PersonaView {
    /// The view of a stored persona, its personal data opened with the tenant's `keys` — or
    /// left out (`None`) without them, for checks that read only its kind, status and roles.
    pub(crate) fn open(p: personas::Persona, keys: Option<&TenantKeys>) -> Result<Self> {
        let record = p.id.as_str().to_owned();
        let (display_name, email) = match keys {
            None => (None, None),
            Some(keys) => (
                match p.display_name_sealed.as_deref() {
                    Some(s) => Some(keys.open_text(Place::new(&PERSONA_NAME, &record), s)?),
                    None => p.display_name,
                },
                match p.email_sealed.as_deref() {
                    Some(s) => Some(keys.open_text(Place::new(&PERSONA_EMAIL, &record), s)?),
                    None => p.email,
                },
            ),
        };
        Ok(PersonaView {
            id: p.id,
            handle: p.handle,
            kind: p.kind,
            display_name,
            email,
            invite_state: p.invite_state,
            status: p.status,
            roles: p.roles,
            bu_id: p.bu_id,
            bu: p.bu,
            created_at: ms_to_rfc3339(p.created_at),
            revoked_at: p.revoked_at.map(ms_to_rfc3339),
        })
    }
}

/// Looks a persona up by id or handle within the tenant; `field` names the reference in the
/// error a person reads. Its personal data is left out: see [`find_persona_view`].
pub(crate) async fn find_persona(
    tx: &mut Tx,
    tenant: &TenantId,
    field: &str,
    reference: &str,
) -> Result<PersonaView> {
    find(tx, None, tenant, field, reference).await
}

/// [`find_persona`] with the persona's personal data opened, for showing it.
pub(crate) async fn find_persona_view(
    keys: &TenantKeys,
    tx: &mut Tx,
    tenant: &TenantId,
    field: &str,
    reference: &str,
) -> Result<PersonaView> {
    find(tx, Some(keys), tenant, field, reference).await
}

async fn find(
    tx: &mut Tx,
    keys: Option<&TenantKeys>,
    tenant: &TenantId,
    field: &str,
    reference: &str,
) -> Result<PersonaView> {
    match personas::find(tx, tenant, reference).await? {
        Some(p) => PersonaView::open(p, keys),
        None => Err(Error::NotFound(format!(
            "{field}: no persona `{reference}` in this tenant; list them with members.list_personas"
        ))),
    }
}

/// The tenant's personas by handle, optionally one kind or one business unit (its id); revoked
/// ones only with `include_revoked`.
pub(crate) async fn list_personas(
    keys: &TenantKeys,
    tx: &mut Tx,
    tenant: &TenantId,
    kind: Option<PersonaKind>,
    bu: Option<&str>,
    include_revoked: bool,
) -> Result<Vec<PersonaView>> {
    personas::list(tx, tenant, kind, bu, include_revoked)
        .await?
        .into_iter()
        .map(|p| PersonaView::open(p, Some(keys)))
        .collect()
}

/// What a new persona is made of.
pub(crate) struct NewPersona {
    pub handle: String,
    pub kind: PersonaKind,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Its business unit's id.
    pub bu: Option<String>,
    pub roles: Vec<String>,
}

/// Inserts a persona and its role assignments (already validated). A human starts `invited`.
pub(crate) async fn insert_persona(
    tx: &mut Tx,
    keys: &TenantKeys,
    tenant: &TenantId,
    now: DateTime<Utc>,
    p: NewPersona,
) -> Result<PersonaId> {
    let id = PersonaId::generate();
    let display_name = p
        .display_name
        .as_deref()
        .map(|n| keys.seal(Place::new(&PERSONA_NAME, id.as_str()), n.as_bytes()));
    let email = p
        .email
        .as_deref()
        .map(|e| keys.seal(Place::new(&PERSONA_EMAIL, id.as_str()), e.as_bytes()));
    let email_index = p.email.as_deref().map(|e| keys.blind_index(e));
    let inserted = personas::insert(
        tx,
        tenant,
        &personas::NewPersona {
            id: &id,
            handle: &p.handle,
            kind: p.kind,
            display_name: display_name.as_deref(),
            email: email.as_deref(),
            email_index: email_index.as_deref(),
            invite_state: (p.kind == PersonaKind::Human).then_some("invited"),
            bu_id: p.bu.as_deref(),
            created_at: to_millis(now),
        },
    )
    .await?;
    if !inserted {
        return Err(Error::Conflict(format!(
            "a persona with handle `{}` already exists in this tenant; pick another handle",
            p.handle
        )));
    }
    set_roles(tx, tenant, &id, &p.roles, now).await?;
    Ok(id)
}

/// Replaces a persona's roles (already checked).
pub(crate) async fn set_roles(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &PersonaId,
    roles: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    personas::replace_roles(tx, tenant, persona, roles, to_millis(now)).await
}

/// Checks role names and that the caller holds every scope they grant (no escalation through
/// role assignment). Returns the names sorted and deduplicated.
pub(crate) fn check_roles(
    caller: &Principal,
    field: &str,
    names: &[String],
) -> Result<Vec<String>> {
    if names.is_empty() {
        return Err(Error::bad_input(
            field,
            "give at least one role; see roles.list_templates",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if roles::template(name).is_none() {
            let all: Vec<&str> = roles::templates().iter().map(|t| t.name).collect();
            return Err(Error::bad_input(
                format!("{field}[{i}]"),
                format!("unknown role `{name}`; roles are: {}", all.join(", ")),
            ));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    check_grantable(caller, &out)?;
    out.sort();
    Ok(out)
}

/// Refuses granting or removing roles that carry scopes the caller does not hold.
pub(crate) fn check_grantable(caller: &Principal, role_names: &[String]) -> Result<()> {
    let granted: ScopeSet = roles::scopes_of(role_names.iter().map(String::as_str));
    let missing: Vec<&str> = granted
        .difference(&caller.scopes)
        .map(|s| s.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::denied(format!(
            "you cannot grant or remove roles carrying scopes you do not hold yourself: {}",
            missing.join(", ")
        )))
    }
}

/// You may act on a persona's standing or credentials (revoke it, delete it, issue, rotate or
/// revoke its keys) only if it is you or you hold every scope its roles grant: otherwise a
/// lesser admin could take over, or lock out, a greater one.
pub(crate) fn check_authority(caller: &Principal, persona: &PersonaView) -> Result<()> {
    if caller.persona == persona.id {
        return Ok(());
    }
    let granted = roles::scopes_of(persona.roles.iter().map(String::as_str));
    let missing: Vec<&str> = granted
        .difference(&caller.scopes)
        .map(|s| s.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::denied(format!(
            "`{}` holds scopes you do not ({}); only someone holding all of them may manage its \
             standing or credentials",
            persona.handle,
            missing.join(", ")
        )))
    }
}

/// Refuses a change that would leave the tenant without an active human tenant-admin.
pub(crate) async fn keep_an_admin(
    tx: &mut Tx,
    tenant: &TenantId,
    losing: &PersonaId,
) -> Result<()> {
    if personas::active_humans_with_role(tx, tenant, ADMIN_ROLE, losing).await? == 0 {
        Err(Error::Conflict(
            "this is the tenant's last active human tenant-admin; give another human the \
             tenant-admin role first"
                .into(),
        ))
    } else {
        Ok(())
    }
}

/// A business unit looked up by id or name within a tenant: its id.
pub(crate) async fn resolve_bu(
    tx: &mut Tx,
    tenant: &TenantId,
    field: &str,
    reference: &str,
) -> Result<String> {
    match crate::store::refs::bu(tx, tenant, reference).await? {
        Some((id, _)) => Ok(id),
        None => Err(Error::NotFound(format!(
            "{field}: no business unit `{reference}` in this tenant; list them with members.list_bus"
        ))),
    }
}

/// A business unit as shown to callers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BuView {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Kind, e.g. cost-center or region.
    pub kind: String,
    /// Parent id (absent for top-level units).
    pub parent_id: Option<String>,
    /// Parent name.
    pub parent: Option<String>,
    /// Active personas directly in this unit.
    pub personas: i64,
}

impl From<personas::Bu> for BuView {
    fn from(b: personas::Bu) -> Self {
        BuView {
            id: b.id,
            name: b.name,
            kind: b.kind,
            parent_id: b.parent_id,
            parent: b.parent,
            personas: b.personas,
        }
    }
}

/// Every business unit of the tenant, by name.
pub(crate) async fn list_bus(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<BuView>> {
    Ok(personas::list_bus(tx, tenant)
        .await?
        .into_iter()
        .map(BuView::from)
        .collect())
}

/// One business unit, by id.
pub(crate) async fn find_bu(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<BuView> {
    let mut all = list_bus(tx, tenant).await?;
    let pos = all
        .iter()
        .position(|b| b.id == id)
        .ok_or_else(|| Error::NotFound(format!("no business unit `{id}`")))?;
    Ok(all.swap_remove(pos))
}
