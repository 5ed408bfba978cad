//! Guide §2 — Members: personas, role assignments and business units.

use super::validate_handle;
use crate::error::{Error, Result};
use crate::ids::BuId;
use crate::members::{
    ADMIN_ROLE, BuView, NewPersona, PersonaView, check_authority, check_grantable, check_roles,
    find_bu, find_persona, find_persona_view, insert_persona, keep_an_admin, list_bus,
    list_personas, resolve_bu, set_roles, validate_email,
};
use crate::operation::{OpCtx, Operation, Risk};
use crate::principal::{PersonaKind, PersonaStatus};
use crate::refs::{BuRef, PersonaRef};
use crate::scope::Scope;
use crate::store::{keys, personas};
use crate::{Event, clock::to_millis, roles};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Input of `members.create_persona`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePersonaInput {
    /// Unique handle, e.g. `ci-bot` or `jane`: 1-64 of a-z 0-9 . _ -
    pub handle: String,
    /// human (invited by email), service (pair with an API key) or agent (AI, via MCP).
    pub kind: PersonaKind,
    /// Email address; required for humans, who receive the sign-in invite there.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// One or more role templates, e.g. ["developer"]; see roles.list_templates.
    pub roles: Vec<String>,
    /// Business unit (id or name) to place the persona in.
    #[serde(default)]
    pub bu: Option<BuRef>,
}

/// Checks a new persona's fields and that the caller may grant its roles; returns the roles,
/// sorted. Run before a second person is asked, so they are never asked about a call that
/// could not run.
fn check_new_persona(ctx: &OpCtx, input: &CreatePersonaInput) -> Result<Vec<String>> {
    validate_handle("handle", &input.handle)?;
    match (&input.kind, &input.email) {
        (PersonaKind::Human, None) => {
            return Err(Error::bad_input(
                "email",
                "a human persona needs an email address for the invite",
            ));
        }
        (_, Some(e)) => validate_email("email", e)?,
        _ => {}
    }
    if let Some(name) = &input.display_name
        && name.chars().count() > 200
    {
        return Err(Error::bad_input(
            "display_name",
            "keep it under 200 characters",
        ));
    }
    check_roles(&ctx.principal, "roles", &input.roles)
}

/// `members.create_persona`.
pub struct CreatePersona;

impl Operation for CreatePersona {
    const NAME: &'static str = "members.create_persona";
    const SUMMARY: &'static str = "Add a persona (human, service or agent) with roles";
    const HELP: &'static str = "Creates a persona in your tenant with one or more roles from the role-template \
        catalogue and, optionally, a business unit. Humans need an email and start as `invited` with no \
        active sessions; service personas are paired with an API key (keys.issue). You can only grant \
        roles whose scopes you hold yourself.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"handle":"ci-bot","kind":"service","roles":["developer"],"bu":"engineering"}"#,
        r#"{"handle":"jane","kind":"human","email":"jane@example.com","roles":["billing-viewer"]}"#,
    ];
    type Input = CreatePersonaInput;
    type Output = PersonaView;
    const GUARDED: bool = true;
    const KEYS: bool = true;
    const PERSONAL: &'static [&'static str] = &["email", "display_name"];

    /// A new human who may decide (or break the glass) grows the set of deciders.
    async fn second_person(ctx: &mut OpCtx, input: &CreatePersonaInput) -> Result<Option<String>> {
        check_new_persona(ctx, input)?;
        let (decide, break_glass) =
            crate::approvals::grants_deciding(input.roles.iter().map(String::as_str));
        if input.kind != PersonaKind::Human || !(decide || break_glass) {
            return Ok(None);
        }
        let tenant = ctx.tenant().clone();
        crate::approvals::deciders_guard(
            &mut ctx.tx,
            &tenant,
            ctx.now,
            &format!("a new human `{}` who may decide approvals", input.handle),
        )
        .await
    }

    async fn execute(ctx: &mut OpCtx, input: CreatePersonaInput) -> Result<PersonaView> {
        let roles = check_new_persona(ctx, &input)?;
        let tenant = ctx.tenant().clone();
        let bu = match &input.bu {
            Some(b) => Some(resolve_bu(&mut ctx.tx, &tenant, "bu", b.as_str()).await?),
            None => None,
        };
        let keys = ctx.sealing_keys().await?;
        let id = insert_persona(
            &mut ctx.tx,
            &keys,
            &tenant,
            ctx.now,
            NewPersona {
                handle: input.handle,
                kind: input.kind,
                display_name: input.display_name,
                email: input.email,
                bu,
                roles,
            },
        )
        .await?;
        ctx.audit("persona", &id);
        find_persona_view(&keys, &mut ctx.tx, &tenant, "persona", id.as_str()).await
    }
}

/// Input of `members.list_personas`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListPersonasInput {
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<PersonaKind>,
    /// Only personas in this business unit (id or name).
    #[serde(default)]
    pub bu: Option<BuRef>,
    /// Include revoked personas (default false).
    #[serde(default)]
    pub include_revoked: bool,
}

/// Output of `members.list_personas`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonaList {
    /// The personas, by handle.
    pub personas: Vec<PersonaView>,
}

/// `members.list_personas`.
pub struct ListPersonas;

impl Operation for ListPersonas {
    const NAME: &'static str = "members.list_personas";
    const SUMMARY: &'static str = "List personas with their roles and business units";
    const HELP: &'static str = "Lists the personas of your tenant, optionally only one kind or one business \
        unit. Revoked personas are hidden unless include_revoked is set.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{}"#, r#"{"kind":"service","bu":"engineering"}"#];
    type Input = ListPersonasInput;
    type Output = PersonaList;
    const KEYS: bool = true;

    async fn execute(ctx: &mut OpCtx, input: ListPersonasInput) -> Result<PersonaList> {
        let tenant = ctx.tenant().clone();
        let bu = match &input.bu {
            Some(b) => Some(resolve_bu(&mut ctx.tx, &tenant, "bu", b.as_str()).await?),
            None => None,
        };
        Ok(PersonaList {
            personas: list_personas(
                &*ctx.keys()?,
                &mut ctx.tx,
                &tenant,
                input.kind,
                bu.as_deref(),
                input.include_revoked,
            )
            .await?,
        })
    }
}

/// Input naming one persona.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnePersona {
    /// Persona id or handle.
    pub persona: PersonaRef,
}

/// Output of `members.get_persona`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PersonaDetail {
    /// The persona.
    pub persona: PersonaView,
    /// Its effective scopes (union of its roles).
    pub scopes: Vec<Scope>,
    /// Its API keys that still work.
    pub active_keys: Vec<crate::keys::KeyView>,
}

/// `members.get_persona`.
pub struct GetPersona;

impl Operation for GetPersona {
    const NAME: &'static str = "members.get_persona";
    const SUMMARY: &'static str = "Show one persona, its scopes and its working API keys";
    const HELP: &'static str = "Shows a persona with its roles, effective scopes and the API keys that still \
        work — what revoking it would cut off.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"persona":"ci-bot"}"#];
    type Input = OnePersona;
    type Output = PersonaDetail;
    const KEYS: bool = true;

    async fn execute(ctx: &mut OpCtx, input: OnePersona) -> Result<PersonaDetail> {
        let tenant = ctx.tenant().clone();
        let persona = find_persona_view(
            &*ctx.keys()?,
            &mut ctx.tx,
            &tenant,
            "persona",
            input.persona.as_str(),
        )
        .await?;
        let scopes = roles::scopes_of(persona.roles.iter().map(String::as_str))
            .into_iter()
            .collect();
        let now = to_millis(ctx.now);
        let active_keys =
            crate::keys::list_keys(&mut ctx.tx, &tenant, Some(&persona.id), false, now).await?;
        Ok(PersonaDetail {
            persona,
            scopes,
            active_keys,
        })
    }
}

/// Input of `members.assign_roles`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRolesInput {
    /// Persona id or handle.
    pub persona: PersonaRef,
    /// The persona's complete new set of roles (at least one).
    pub roles: Vec<String>,
}

/// Checks a role assignment: known roles the caller may grant, a persona still active whose
/// current roles the caller may remove, and a tenant that keeps an admin. Returns the persona
/// and the new roles, sorted.
async fn check_assignment(
    ctx: &mut OpCtx,
    input: &AssignRolesInput,
) -> Result<(PersonaView, Vec<String>)> {
    let roles = check_roles(&ctx.principal, "roles", &input.roles)?;
    let tenant = ctx.tenant().clone();
    let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
    if persona.status != PersonaStatus::Active {
        return Err(Error::Conflict(format!(
            "persona `{}` is revoked",
            persona.handle
        )));
    }
    check_grantable(&ctx.principal, &persona.roles)?;
    if persona.roles.iter().any(|r| r == ADMIN_ROLE)
        && !roles.iter().any(|r| r == ADMIN_ROLE)
        && persona.kind == PersonaKind::Human
    {
        keep_an_admin(&mut ctx.tx, &tenant, &persona.id).await?;
    }
    Ok((persona, roles))
}

/// `members.assign_roles`.
pub struct AssignRoles;

impl Operation for AssignRoles {
    const NAME: &'static str = "members.assign_roles";
    const SUMMARY: &'static str = "Set a persona's roles";
    const HELP: &'static str = "Replaces a persona's roles with the given set (one or more). Takes effect on \
        the persona's very next request: its keys act with (key scopes ∩ role scopes). You can only grant \
        or remove roles whose scopes you hold yourself, and the last human tenant-admin keeps that role.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"persona":"ci-bot","roles":["developer","billing-viewer"]}"#];
    type Input = AssignRolesInput;
    type Output = PersonaView;
    const KEYS: bool = true;
    const GUARDED: bool = true;

    /// Giving or taking away `approvals:decide` or `approvals:break_glass` changes who decides.
    async fn second_person(ctx: &mut OpCtx, input: &AssignRolesInput) -> Result<Option<String>> {
        let (persona, _) = check_assignment(ctx, input).await?;
        let tenant = ctx.tenant().clone();
        if persona.kind != PersonaKind::Human {
            return Ok(None);
        }
        let before = crate::approvals::grants_deciding(persona.roles.iter().map(String::as_str));
        let after = crate::approvals::grants_deciding(input.roles.iter().map(String::as_str));
        if before == after {
            return Ok(None);
        }
        crate::approvals::deciders_guard(
            &mut ctx.tx,
            &tenant,
            ctx.now,
            &format!("changing whether `{}` may decide approvals", persona.handle),
        )
        .await
    }

    async fn execute(ctx: &mut OpCtx, input: AssignRolesInput) -> Result<PersonaView> {
        let (persona, roles) = check_assignment(ctx, &input).await?;
        let tenant = ctx.tenant().clone();
        set_roles(&mut ctx.tx, &tenant, &persona.id, &roles, ctx.now).await?;
        ctx.audit("persona", &persona.id);
        ctx.audit("previous_roles", &persona.roles);
        find_persona_view(
            &*ctx.keys()?,
            &mut ctx.tx,
            &tenant,
            "persona",
            persona.id.as_str(),
        )
        .await
    }
}

/// Input of `members.revoke`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// Persona id or handle.
    pub persona: PersonaRef,
    /// Why (kept in the audit ledger).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Output of `members.revoke`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RevokeOutput {
    /// The persona, now revoked.
    pub persona: PersonaView,
    /// The ids of the API keys revoked with it.
    pub revoked_keys: Vec<String>,
    /// Its pending approval requests, now cancelled.
    pub cancelled_requests: Vec<String>,
    /// Keys it issued to other personas, still working: review them (keys.revoke).
    pub keys_issued_to_others: Vec<String>,
}

/// Cancels the pending requests a persona raised, queuing a notification for each.
async fn cancel_requests_of(
    ctx: &mut OpCtx,
    persona: &PersonaView,
    reason: &str,
) -> Result<Vec<String>> {
    let tenant = ctx.tenant().clone();
    let ids =
        crate::approvals::cancel_raised_by(&mut ctx.tx, &tenant, &persona.id, ctx.now, reason)
            .await?;
    for id in &ids {
        ctx.notify(crate::notify::Notification::Cancelled {
            tenant: tenant.clone(),
            request_id: id.clone(),
            reason: reason.to_owned(),
        });
        ctx.emit(Event::RequestFinished {
            tenant: tenant.clone(),
            request_id: id.clone(),
        });
    }
    Ok(ids)
}

/// Output of `members.delete_persona`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutput {
    /// The deleted persona's id.
    pub id: String,
    /// Its handle.
    pub handle: String,
    /// API keys deleted with it.
    pub deleted_keys: Vec<String>,
    /// Its pending approval requests, now cancelled.
    pub cancelled_requests: Vec<String>,
}

/// `members.delete_persona`.
pub struct DeletePersona;

impl Operation for DeletePersona {
    const NAME: &'static str = "members.delete_persona";
    const SUMMARY: &'static str = "Delete a persona and its keys (audit history is kept)";
    const HELP: &'static str = "Deletes a persona, its role assignments and API keys — an audit-relevant \
        record, so it always needs a second person's approval. Its pending requests are cancelled. The \
        audit ledger keeps every entry that names it. To stop access at once, revoke first \
        (members.revoke): that needs no approval.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Destructive;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"persona":"ci-bot","reason":"service decommissioned"}"#];
    type Input = RevokeInput;
    type Output = DeleteOutput;

    /// Checked before a request is raised, so approvers never see a deletion that could not run.
    async fn facts(
        ctx: &mut OpCtx,
        input: &RevokeInput,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let tenant = ctx.tenant().clone();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
        check_authority(&ctx.principal, &persona)?;
        let mut facts = serde_json::Map::new();
        facts.insert("persona_id".into(), serde_json::json!(persona.id));
        facts.insert("kind".into(), serde_json::json!(persona.kind));
        facts.insert("roles".into(), serde_json::json!(persona.roles));
        Ok(facts)
    }

    fn describe(input: &RevokeInput, facts: &serde_json::Map<String, serde_json::Value>) -> String {
        let who = super::named(facts, "persona", input.persona.as_str());
        match &input.reason {
            Some(r) => format!("Delete persona `{who}` and all its API keys ({r})"),
            None => format!("Delete persona `{who}` and all its API keys"),
        }
    }

    async fn execute(ctx: &mut OpCtx, input: RevokeInput) -> Result<DeleteOutput> {
        let tenant = ctx.tenant().clone();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
        check_authority(&ctx.principal, &persona)?;
        if persona.status == PersonaStatus::Active
            && persona.kind == PersonaKind::Human
            && persona.roles.iter().any(|r| r == ADMIN_ROLE)
        {
            keep_an_admin(&mut ctx.tx, &tenant, &persona.id).await?;
        }
        let cancelled = cancel_requests_of(ctx, &persona, "the requester was deleted").await?;
        let keys = keys::delete_all_of(&mut ctx.tx, &tenant, &persona.id).await?;
        personas::delete(&mut ctx.tx, &tenant, &persona.id).await?;
        ctx.audit("persona", &persona.id);
        ctx.audit("handle", &persona.handle);
        ctx.audit("deleted_keys", &keys);
        ctx.emit(Event::PersonaRevoked {
            tenant: tenant.clone(),
            persona: persona.id.clone(),
        });
        Ok(DeleteOutput {
            id: persona.id.to_string(),
            handle: persona.handle,
            deleted_keys: keys,
            cancelled_requests: cancelled,
        })
    }
}

/// `members.revoke`.
pub struct Revoke;

impl Operation for Revoke {
    const NAME: &'static str = "members.revoke";
    const SUMMARY: &'static str = "Revoke a persona: every key, token and session stops at once";
    const HELP: &'static str = "Revokes a persona. Every credential it holds — API keys, JWTs, linked chat \
        identities — fails on its very next request, its open connections close, and its keys are \
        marked revoked. Cannot be undone; create a new persona instead. The tenant's last active human \
        tenant-admin cannot be revoked.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{"persona":"ci-bot","reason":"laptop stolen"}"#];
    type Input = RevokeInput;
    type Output = RevokeOutput;
    const KEYS: bool = true;

    async fn execute(ctx: &mut OpCtx, input: RevokeInput) -> Result<RevokeOutput> {
        let tenant = ctx.tenant().clone();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
        if persona.status != PersonaStatus::Active {
            return Err(Error::Conflict(format!(
                "persona `{}` was already revoked at {}",
                persona.handle,
                persona.revoked_at.as_deref().unwrap_or("an earlier time")
            )));
        }
        check_authority(&ctx.principal, &persona)?;
        if persona.kind == PersonaKind::Human && persona.roles.iter().any(|r| r == ADMIN_ROLE) {
            keep_an_admin(&mut ctx.tx, &tenant, &persona.id).await?;
        }
        let now = to_millis(ctx.now);
        let cancelled = cancel_requests_of(ctx, &persona, "the requester was revoked").await?;
        let issued_to_others =
            keys::unrevoked_issued_to_others(&mut ctx.tx, &tenant, &persona.id).await?;
        personas::revoke(&mut ctx.tx, &tenant, &persona.id, now).await?;
        let keys = keys::revoke_all_of(&mut ctx.tx, &tenant, &persona.id, now).await?;
        ctx.audit("persona", &persona.id);
        ctx.audit("revoked_keys", &keys);
        ctx.emit(Event::PersonaRevoked {
            tenant: tenant.clone(),
            persona: persona.id.clone(),
        });
        let persona = find_persona_view(
            &*ctx.keys()?,
            &mut ctx.tx,
            &tenant,
            "persona",
            persona.id.as_str(),
        )
        .await?;
        Ok(RevokeOutput {
            persona,
            revoked_keys: keys,
            cancelled_requests: cancelled,
            keys_issued_to_others: issued_to_others,
        })
    }
}

fn validate_bu_kind(kind: &str) -> Result<()> {
    validate_handle("kind", kind)
}

/// Input of `members.create_bu`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBuInput {
    /// Unique name, e.g. `emea-sales`: 1-64 of a-z 0-9 . _ -
    pub name: String,
    /// Kind, e.g. `cost-center` or `region`.
    pub kind: String,
    /// Parent unit (id or name); omit for a top-level unit.
    #[serde(default)]
    pub parent: Option<BuRef>,
}

/// `members.create_bu`.
pub struct CreateBu;

impl Operation for CreateBu {
    const NAME: &'static str = "members.create_bu";
    const SUMMARY: &'static str = "Add a business unit, optionally under a parent";
    const HELP: &'static str = "Creates a business unit (BU) for grouping personas for billing showback and \
        approvals. Give a parent to nest it (e.g. a cost-center under a region) or none for a top-level unit.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"name":"engineering","kind":"cost-center"}"#,
        r#"{"name":"emea","kind":"region","parent":"engineering"}"#,
    ];
    type Input = CreateBuInput;
    type Output = BuView;

    async fn execute(ctx: &mut OpCtx, input: CreateBuInput) -> Result<BuView> {
        validate_handle("name", &input.name)?;
        validate_bu_kind(&input.kind)?;
        let tenant = ctx.tenant().clone();
        let parent = match &input.parent {
            Some(p) => Some(resolve_bu(&mut ctx.tx, &tenant, "parent", p.as_str()).await?),
            None => None,
        };
        let id = BuId::generate();
        let inserted = personas::insert_bu(
            &mut ctx.tx,
            &tenant,
            &personas::NewBu {
                id: id.as_str(),
                name: &input.name,
                kind: &input.kind,
                parent_id: parent.as_deref(),
                created_at: to_millis(ctx.now),
            },
        )
        .await?;
        if !inserted {
            return Err(Error::Conflict(format!(
                "a business unit named `{}` already exists; pick another name",
                input.name
            )));
        }
        ctx.audit("bu", &id);
        find_bu(&mut ctx.tx, &tenant, id.as_str()).await
    }
}

/// Output of `members.list_bus`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BuList {
    /// Every business unit, by name.
    pub units: Vec<BuView>,
}

/// Empty input.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `members.list_bus`.
pub struct ListBus;

impl Operation for ListBus {
    const NAME: &'static str = "members.list_bus";
    const SUMMARY: &'static str = "List business units with parents and head counts";
    const HELP: &'static str = "Lists every business unit of the tenant with its parent and the number of \
        active personas directly in it.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = BuList;

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<BuList> {
        let tenant = ctx.tenant().clone();
        Ok(BuList {
            units: list_bus(&mut ctx.tx, &tenant).await?,
        })
    }
}

/// Input of `members.update_bu`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBuInput {
    /// The unit (id or name).
    pub bu: BuRef,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// New parent (id or name). A unit cannot be moved under itself or its descendants.
    #[serde(default)]
    pub parent: Option<BuRef>,
    /// Make the unit top-level (no parent).
    #[serde(default)]
    pub top_level: bool,
}

/// `members.update_bu`.
pub struct UpdateBu;

impl Operation for UpdateBu {
    const NAME: &'static str = "members.update_bu";
    const SUMMARY: &'static str = "Rename, re-kind or re-parent a business unit";
    const HELP: &'static str = "Changes a business unit's name, kind or parent. Moving a unit under itself \
        or one of its descendants is refused: the BU tree never has cycles.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"bu":"emea","parent":"engineering"}"#];
    type Input = UpdateBuInput;
    type Output = BuView;

    async fn execute(ctx: &mut OpCtx, input: UpdateBuInput) -> Result<BuView> {
        let tenant = ctx.tenant().clone();
        let id = resolve_bu(&mut ctx.tx, &tenant, "bu", input.bu.as_str()).await?;
        if input.top_level && input.parent.is_some() {
            return Err(Error::bad_input(
                "top_level",
                "give either a parent or top_level, not both",
            ));
        }
        if let Some(name) = &input.name {
            validate_handle("name", name)?;
            if !personas::rename_bu(&mut ctx.tx, &tenant, &id, name).await? {
                return Err(Error::Conflict(format!(
                    "a business unit named `{name}` already exists"
                )));
            }
        }
        if let Some(kind) = &input.kind {
            validate_bu_kind(kind)?;
            personas::set_bu_kind(&mut ctx.tx, &tenant, &id, kind).await?;
        }
        if let Some(parent) = &input.parent {
            let parent = resolve_bu(&mut ctx.tx, &tenant, "parent", parent.as_str()).await?;
            // Walk up from the new parent; meeting the unit itself would close a cycle.
            if personas::is_self_or_ancestor(&mut ctx.tx, &tenant, &id, &parent).await? {
                return Err(Error::Conflict(
                    "that parent is the unit itself or one of its descendants: the move would make a cycle".into(),
                ));
            }
            personas::set_bu_parent(&mut ctx.tx, &tenant, &id, Some(&parent)).await?;
        } else if input.top_level {
            personas::set_bu_parent(&mut ctx.tx, &tenant, &id, None).await?;
        }
        ctx.audit("bu", &id);
        find_bu(&mut ctx.tx, &tenant, &id).await
    }
}

/// Input of `members.move_persona`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MovePersonaInput {
    /// Persona id or handle.
    pub persona: PersonaRef,
    /// Target business unit (id or name); omit or null to take the persona out of any unit.
    #[serde(default)]
    pub bu: Option<BuRef>,
}

/// `members.move_persona`.
pub struct MovePersona;

impl Operation for MovePersona {
    const NAME: &'static str = "members.move_persona";
    const SUMMARY: &'static str = "Move a persona into a business unit (or out of any)";
    const HELP: &'static str = "Moves a persona into the given business unit, or out of any unit when bu is \
        omitted. Usage already recorded keeps its original unit.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"persona":"ci-bot","bu":"emea"}"#];
    type Input = MovePersonaInput;
    type Output = PersonaView;
    const KEYS: bool = true;

    async fn execute(ctx: &mut OpCtx, input: MovePersonaInput) -> Result<PersonaView> {
        let tenant = ctx.tenant().clone();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", input.persona.as_str()).await?;
        // Where a persona sits decides whose budget and approvals it falls under: moving it is
        // managing it.
        check_authority(&ctx.principal, &persona)?;
        let bu = match &input.bu {
            Some(b) => Some(resolve_bu(&mut ctx.tx, &tenant, "bu", b.as_str()).await?),
            None => None,
        };
        personas::set_bu(&mut ctx.tx, &tenant, &persona.id, bu.as_deref()).await?;
        ctx.audit("persona", &persona.id);
        ctx.audit("from_bu", &persona.bu_id);
        find_persona_view(
            &*ctx.keys()?,
            &mut ctx.tx,
            &tenant,
            "persona",
            persona.id.as_str(),
        )
        .await
    }
}
