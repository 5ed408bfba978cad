//! Chat identities' rows: workspaces bound to tenants, chat users linked to personas, one-time
//! link codes and install states, where approval requests were posted, and deliveries seen.
//!
//! A workspace is found by the platform's own key (platform and team or guild id), which is
//! global: those lookups name no tenant because the tenant is what they find. Every other query
//! of a tenant's rows names the tenant.

use super::{Tx, on};
use crate::error::Result;
use crate::ids::{PersonaId, TenantId};
use crate::principal::{Platform, Proof};
use serde::Serialize;

/// A workspace bound to a tenant.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Workspace {
    /// The platform.
    pub platform: Platform,
    /// Slack team id or Discord guild id.
    pub workspace_id: String,
    /// The tenant it belongs to.
    #[schemars(with = "String")]
    pub tenant_id: TenantId,
    /// A display name.
    pub name: Option<String>,
    /// Where approval requests are posted.
    pub approval_channel: Option<String>,
    /// Where the scheduled billing digest goes.
    pub digest_channel: Option<String>,
    /// How often the digest is posted, in milliseconds.
    pub digest_every_ms: Option<i64>,
}

/// Where an approval request was posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedMessage {
    /// The platform.
    pub platform: Platform,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: String,
    /// Slack `ts` or Discord message id.
    pub message_id: String,
    /// What it last showed ([`crate::chat::rendered_key`]); `None` until first rendered.
    pub rendered: Option<String>,
}

// ---- workspaces ------------------------------------------------------------------------------

macro_rules! workspace_select {
    () => {
        "SELECT platform, workspace_id, tenant_id, name, approval_channel, digest_channel, \
         digest_every_ms, digest_last_ms FROM chat_workspaces"
    };
}

#[derive(sqlx::FromRow)]
struct WorkspaceRow {
    platform: String,
    workspace_id: String,
    tenant_id: String,
    name: Option<String>,
    approval_channel: Option<String>,
    digest_channel: Option<String>,
    digest_every_ms: Option<i64>,
    digest_last_ms: Option<i64>,
}

/// A workspace and when its digest was last posted.
fn workspace_of(r: WorkspaceRow) -> Result<(Workspace, Option<i64>)> {
    Ok((
        Workspace {
            platform: Platform::parse(&r.platform)?,
            workspace_id: r.workspace_id,
            tenant_id: TenantId::from_db(r.tenant_id),
            name: r.name,
            approval_channel: r.approval_channel,
            digest_channel: r.digest_channel,
            digest_every_ms: r.digest_every_ms,
        },
        r.digest_last_ms,
    ))
}

fn workspaces_of(rows: Vec<WorkspaceRow>) -> Result<Vec<Workspace>> {
    rows.into_iter()
        .map(|r| workspace_of(r).map(|(w, _)| w))
        .collect()
}

/// The binding of a workspace, if any.
pub(crate) async fn workspace(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
) -> Result<Option<Workspace>> {
    let row: Option<WorkspaceRow> = on!(tx, c => sqlx::query_as(concat!(
        workspace_select!(),
        " WHERE platform = $1 AND workspace_id = $2"
    ))
    .bind(platform.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    row.map(|r| workspace_of(r).map(|(w, _)| w)).transpose()
}

/// Every workspace bound to the tenant, by platform and id.
pub(crate) async fn workspaces(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Workspace>> {
    let rows: Vec<WorkspaceRow> = on!(tx, c => sqlx::query_as(concat!(
        workspace_select!(),
        " WHERE tenant_id = $1 ORDER BY platform, workspace_id"
    ))
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    workspaces_of(rows)
}

/// Every workspace of one platform bound to the tenant, by id.
pub(crate) async fn workspaces_on(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
) -> Result<Vec<Workspace>> {
    let rows: Vec<WorkspaceRow> = on!(tx, c => sqlx::query_as(concat!(
        workspace_select!(),
        " WHERE tenant_id = $1 AND platform = $2 ORDER BY workspace_id"
    ))
    .bind(tenant.as_str())
    .bind(platform.as_str())
    .fetch_all(c)
    .await)?;
    workspaces_of(rows)
}

/// Every workspace of a platform, across tenants, with a digest channel and period, and when
/// its digest was last posted.
pub(crate) async fn digest_workspaces(
    tx: &mut Tx,
    platform: Platform,
) -> Result<Vec<(Workspace, Option<i64>)>> {
    let rows: Vec<WorkspaceRow> = on!(tx, c => sqlx::query_as(concat!(
        workspace_select!(),
        " WHERE platform = $1 AND digest_channel IS NOT NULL AND digest_every_ms IS NOT NULL \
         ORDER BY workspace_id"
    ))
    .bind(platform.as_str())
    .fetch_all(c)
    .await)?;
    rows.into_iter().map(workspace_of).collect()
}

/// Records when a workspace's digest was posted.
pub(crate) async fn set_digest_posted(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
    at_ms: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE chat_workspaces SET digest_last_ms = $1 WHERE platform = $2 AND workspace_id = $3",
    )
    .bind(at_ms)
    .bind(platform.as_str())
    .bind(workspace_id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The tenant a workspace is bound to, if any.
pub(crate) async fn owner(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
) -> Result<Option<TenantId>> {
    let owner: Option<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT tenant_id FROM chat_workspaces WHERE platform = $1 AND workspace_id = $2",
    )
    .bind(platform.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    Ok(owner.map(TenantId::from_db))
}

/// A workspace bound by an install.
pub(crate) struct Installed<'a> {
    pub platform: Platform,
    pub workspace_id: &'a str,
    pub tenant: &'a TenantId,
    pub name: Option<&'a str>,
    pub approval_channel: Option<&'a str>,
    pub bound_at: i64,
    pub bound_by: &'a str,
    /// The bot token, sealed.
    pub bot_token_sealed: Option<&'a [u8]>,
}

/// Binds a workspace, or refreshes a binding: its name, and its approval channel and bot token
/// when given (kept otherwise).
pub(crate) async fn upsert_installed(tx: &mut Tx, w: &Installed<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_workspaces (platform, workspace_id, tenant_id, name, approval_channel, \
         bound_at, bound_by, bot_token_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (platform, workspace_id) DO UPDATE SET name = excluded.name, \
         approval_channel = COALESCE(excluded.approval_channel, chat_workspaces.approval_channel), \
         bot_token_sealed = COALESCE(excluded.bot_token_sealed, chat_workspaces.bot_token_sealed)",
    )
    .bind(w.platform.as_str())
    .bind(w.workspace_id)
    .bind(w.tenant.as_str())
    .bind(w.name)
    .bind(w.approval_channel)
    .bind(w.bound_at)
    .bind(w.bound_by)
    .bind(w.bot_token_sealed)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Where a bound workspace posts, as `tenant.chat_bind` sets it.
pub(crate) struct Settings<'a> {
    /// A new display name (kept when `None`).
    pub name: Option<&'a str>,
    pub approval_channel: Option<&'a str>,
    pub digest_channel: Option<&'a str>,
    pub digest_every_ms: Option<i64>,
    /// The persona the digest runs as.
    pub bound_by: &'a str,
}

/// Sets where a workspace of the tenant posts.
pub(crate) async fn update_settings(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
    s: &Settings<'_>,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE chat_workspaces SET name = COALESCE($1, name), approval_channel = $2, \
         digest_channel = $3, digest_every_ms = $4, bound_by = $5 \
         WHERE tenant_id = $6 AND platform = $7 AND workspace_id = $8",
    )
    .bind(s.name)
    .bind(s.approval_channel)
    .bind(s.digest_channel)
    .bind(s.digest_every_ms)
    .bind(s.bound_by)
    .bind(tenant.as_str())
    .bind(platform.as_str())
    .bind(workspace_id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Unbinds a workspace of the tenant; returns whether it was bound.
pub(crate) async fn delete_workspace(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "DELETE FROM chat_workspaces WHERE tenant_id = $1 AND platform = $2 AND workspace_id = $3",
    )
    .bind(tenant.as_str())
    .bind(platform.as_str())
    .bind(workspace_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// A workspace's tenant and sealed bot token, if it is bound.
pub(crate) async fn sealed_bot_token(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
) -> Result<Option<(TenantId, Option<Vec<u8>>)>> {
    let row: Option<(String, Option<Vec<u8>>)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, bot_token_sealed FROM chat_workspaces \
         WHERE platform = $1 AND workspace_id = $2",
    )
    .bind(platform.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(t, sealed)| (TenantId::from_db(t), sealed)))
}

/// The persona who bound a workspace (and its kind), if both still exist.
pub(crate) async fn binder(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
) -> Result<Option<(TenantId, PersonaId, String)>> {
    let row: Option<(String, String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT w.tenant_id, w.bound_by, p.kind FROM chat_workspaces w \
         JOIN personas p ON p.tenant_id = w.tenant_id AND p.id = w.bound_by \
         WHERE w.platform = $1 AND w.workspace_id = $2",
    )
    .bind(platform.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(t, p, kind)| (TenantId::from_db(t), PersonaId::from_db(p), kind)))
}

/// The tenant of a Slack workspace id and whether that binding is the offline sandbox's.
pub(crate) async fn sandbox_owner(
    tx: &mut Tx,
    workspace_id: &str,
) -> Result<Option<(TenantId, bool)>> {
    let row: Option<(String, bool)> = on!(tx, c => sqlx::query_as(
        "SELECT tenant_id, sandbox FROM chat_workspaces WHERE platform = $1 AND workspace_id = $2",
    )
    .bind(Platform::Slack.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(t, sandbox)| (TenantId::from_db(t), sandbox)))
}

/// Binds the offline sandbox's (Slack) workspace to the tenant.
pub(crate) async fn insert_sandbox(
    tx: &mut Tx,
    tenant: &TenantId,
    workspace_id: &str,
    approval_channel: &str,
    bound_at: i64,
    bound_by: &str,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_workspaces (platform, workspace_id, tenant_id, name, approval_channel, \
         bound_at, bound_by, sandbox) VALUES ($1, $2, $3, 'tenantops sandbox', $4, $5, $6, $7)",
    )
    .bind(Platform::Slack.as_str())
    .bind(workspace_id)
    .bind(tenant.as_str())
    .bind(approval_channel)
    .bind(bound_at)
    .bind(bound_by)
    .bind(true)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Whether the tenant is a demo and whether its Slack workspace `workspace_id` is the sandbox,
/// when that workspace is bound to it.
pub(crate) async fn demo_and_sandbox(
    tx: &mut Tx,
    tenant: &TenantId,
    workspace_id: &str,
) -> Result<Option<(bool, bool)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT t.demo, w.sandbox FROM tenants t JOIN chat_workspaces w ON w.tenant_id = t.id \
         WHERE t.id = $1 AND w.platform = $2 AND w.workspace_id = $3",
    )
    .bind(tenant.as_str())
    .bind(Platform::Slack.as_str())
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?)
}

/// Where the tenant's checkpoints are published: every bound workspace that is not the
/// sandbox and has an approval channel (platform, workspace, channel), in order.
pub(crate) async fn publication_channels(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<Vec<(Platform, String, String)>> {
    let rows: Vec<(String, String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT platform, workspace_id, approval_channel FROM chat_workspaces \
         WHERE tenant_id = $1 AND approval_channel IS NOT NULL AND NOT sandbox \
         ORDER BY platform, workspace_id",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    rows.into_iter()
        .map(|(p, w, ch)| Ok((Platform::parse(&p)?, w, ch)))
        .collect()
}

/// Every tenant with a publication channel on one of `platforms`, with when the first of
/// them was bound.
pub(crate) async fn publishing_tenants(
    tx: &mut Tx,
    platforms: &[&str],
) -> Result<Vec<(TenantId, i64)>> {
    if platforms.is_empty() {
        return Ok(Vec::new());
    }
    // The platform list is the one dynamic part: `IN ($1, $2, …)`, one parameter each.
    let list = (1..=platforms.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT tenant_id, MIN(bound_at) FROM chat_workspaces WHERE approval_channel IS NOT NULL \
         AND NOT sandbox AND platform IN ({list}) GROUP BY tenant_id ORDER BY tenant_id"
    );
    let rows: Vec<(String, i64)> = on!(tx, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for p in platforms {
            q = q.bind(*p);
        }
        q.fetch_all(c).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(t, first)| (TenantId::from_db(t), first))
        .collect())
}

// ---- install states and link codes -----------------------------------------------------------

/// A one-time install state, stored as its keyed digest.
pub(crate) struct NewInstallState<'a> {
    pub digest: &'a [u8],
    pub tenant: &'a TenantId,
    pub persona: &'a str,
    pub platform: Platform,
    pub approval_channel: Option<&'a str>,
    pub expires_at: i64,
}

/// Stores an install state.
pub(crate) async fn insert_install_state(tx: &mut Tx, s: &NewInstallState<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_install_states (digest, tenant_id, persona_id, platform, \
         approval_channel, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.digest)
    .bind(s.tenant.as_str())
    .bind(s.persona)
    .bind(s.platform.as_str())
    .bind(s.approval_channel)
    .bind(s.expires_at)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Consumes an unused, unexpired install state of `platform` by its digest: its tenant, the
/// persona who issued it and the approval channel it names.
pub(crate) async fn claim_install_state(
    tx: &mut Tx,
    digest: &[u8],
    platform: Platform,
    now: i64,
) -> Result<Option<(TenantId, String, Option<String>)>> {
    let row: Option<(String, String, Option<String>)> = on!(tx, c => sqlx::query_as(
        "UPDATE chat_install_states SET used_at = $1 WHERE digest = $2 AND platform = $3 \
         AND used_at IS NULL AND expires_at > $1 RETURNING tenant_id, persona_id, approval_channel",
    )
    .bind(now)
    .bind(digest)
    .bind(platform.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(t, p, ch)| (TenantId::from_db(t), p, ch)))
}

/// The tenant an unused install state belongs to, without claiming it.
pub(crate) async fn install_state_tenant(
    tx: &mut Tx,
    digest: &[u8],
    platform: Platform,
) -> Result<Option<TenantId>> {
    let row: Option<String> = on!(tx, c => sqlx::query_scalar(
        "SELECT tenant_id FROM chat_install_states WHERE digest = $1 AND platform = $2 \
         AND used_at IS NULL",
    )
    .bind(digest)
    .bind(platform.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map(TenantId::from_db))
}

/// Stores a link code (its keyed digest) for a persona of the tenant.
pub(crate) async fn insert_link_code(
    tx: &mut Tx,
    tenant: &TenantId,
    digest: &[u8],
    persona: &str,
    expires_at: i64,
    proof: Proof,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_link_codes (digest, tenant_id, persona_id, expires_at, proof) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest)
    .bind(tenant.as_str())
    .bind(persona)
    .bind(expires_at)
    .bind(proof.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Consumes an unused, unexpired link code of the tenant by its digest: the persona it was
/// issued for and the proof it carries.
pub(crate) async fn claim_link_code(
    tx: &mut Tx,
    tenant: &TenantId,
    digest: &[u8],
    now: i64,
) -> Result<Option<(String, Proof)>> {
    let row: Option<(String, String)> = on!(tx, c => sqlx::query_as(
        "UPDATE chat_link_codes SET used_at = $1 WHERE digest = $2 AND tenant_id = $3 \
         AND used_at IS NULL AND expires_at > $1 RETURNING persona_id, proof",
    )
    .bind(now)
    .bind(digest)
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?;
    row.map(|(p, proof)| Ok((p, Proof::parse(&proof)?)))
        .transpose()
}

// ---- personas, as linking sees them ----------------------------------------------------------

/// A persona of the tenant by id: (handle, kind, status).
pub(crate) async fn persona_by_id(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &str,
) -> Result<Option<(String, String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT handle, kind, status FROM personas WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .fetch_optional(c)
    .await)?)
}

/// A persona of the tenant by handle: (id, kind, status).
pub(crate) async fn persona_by_handle(
    tx: &mut Tx,
    tenant: &TenantId,
    handle: &str,
) -> Result<Option<(String, String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, kind, status FROM personas WHERE tenant_id = $1 AND handle = $2",
    )
    .bind(tenant.as_str())
    .bind(handle)
    .fetch_optional(c)
    .await)?)
}

// ---- links -----------------------------------------------------------------------------------

/// The persona a chat user of the tenant is linked to: (persona, kind, status).
pub(crate) async fn linked_persona(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<LinkedPersona>> {
    // With the persona's roles, a row per role: one round trip.
    let rows: Vec<(String, String, String, Option<String>)> = on!(tx, c => sqlx::query_as(
        "SELECT l.persona_id, p.kind, p.status, r.role FROM chat_links l \
         JOIN personas p ON p.tenant_id = l.tenant_id AND p.id = l.persona_id \
         LEFT JOIN role_assignments r ON r.tenant_id = l.tenant_id AND r.persona_id = l.persona_id \
         WHERE l.platform = $1 AND l.workspace_id = $2 AND l.user_id = $3 AND l.tenant_id = $4",
    )
    .bind(platform.as_str())
    .bind(workspace_id)
    .bind(user_id)
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    let mut roles: Vec<String> = rows.iter().filter_map(|r| r.3.clone()).collect();
    roles.sort();
    Ok(rows
        .into_iter()
        .next()
        .map(|(p, kind, status, _)| LinkedPersona {
            persona: PersonaId::from_db(p),
            kind,
            status,
            roles,
        }))
}

/// The persona a chat user is linked to, as stored.
pub(crate) struct LinkedPersona {
    pub persona: PersonaId,
    pub kind: String,
    pub status: String,
    /// Its roles now.
    pub roles: Vec<String>,
}

/// An existing link of a chat user.
pub(crate) struct ExistingLink {
    /// The persona it acts as.
    pub persona: String,
    /// Its handle (the id when the persona is gone).
    pub handle: String,
    /// The proof it was made with.
    pub proof: Proof,
}

/// The link of a chat user, by the platform's key (whichever tenant holds it: a link is never
/// re-pointed, so the caller must see any link of that user).
pub(crate) async fn existing_link(
    tx: &mut Tx,
    platform: Platform,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<ExistingLink>> {
    let row: Option<(String, String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT l.persona_id, COALESCE(p.handle, l.persona_id), l.proof FROM chat_links l \
         LEFT JOIN personas p ON p.tenant_id = l.tenant_id AND p.id = l.persona_id \
         WHERE l.platform = $1 AND l.workspace_id = $2 AND l.user_id = $3",
    )
    .bind(platform.as_str())
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(c)
    .await)?;
    row.map(|(persona, handle, proof)| {
        Ok(ExistingLink {
            persona,
            handle,
            proof: Proof::parse(&proof)?,
        })
    })
    .transpose()
}

/// A link to store.
pub(crate) struct NewLink<'a> {
    pub tenant: &'a TenantId,
    pub platform: Platform,
    pub workspace_id: &'a str,
    pub user_id: &'a str,
    pub persona: &'a str,
    pub linked_at: i64,
    pub proof: Proof,
}

/// Stores a link, or restarts an existing one under a new proof.
pub(crate) async fn upsert_link(tx: &mut Tx, l: &NewLink<'_>) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_links (platform, workspace_id, user_id, tenant_id, persona_id, \
         linked_at, proof) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (platform, workspace_id, user_id) DO UPDATE \
         SET linked_at = excluded.linked_at, proof = excluded.proof",
    )
    .bind(l.platform.as_str())
    .bind(l.workspace_id)
    .bind(l.user_id)
    .bind(l.tenant.as_str())
    .bind(l.persona)
    .bind(l.linked_at)
    .bind(l.proof.as_str())
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Deletes every link of a workspace of the tenant; returns how many.
pub(crate) async fn delete_workspace_links(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
) -> Result<u64> {
    Ok(on!(tx, c => sqlx::query(
        "DELETE FROM chat_links WHERE tenant_id = $1 AND platform = $2 AND workspace_id = $3",
    )
    .bind(tenant.as_str())
    .bind(platform.as_str())
    .bind(workspace_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// A chat account: platform, workspace, user.
pub(crate) type Account = (Platform, String, String);

fn accounts(rows: Vec<(String, String, String)>) -> Result<Vec<Account>> {
    rows.into_iter()
        .map(|(p, w, u)| Ok((Platform::parse(&p)?, w, u)))
        .collect()
}

/// Deletes the links of a persona of the tenant, only on `platform` and only of `user_id`
/// when given; returns the accounts unlinked.
pub(crate) async fn delete_links(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &str,
    platform: Option<Platform>,
    user_id: Option<&str>,
) -> Result<Vec<Account>> {
    let rows: Vec<(String, String, String)> = on!(tx, c => sqlx::query_as(
        "DELETE FROM chat_links WHERE tenant_id = $1 AND persona_id = $2 \
         AND (CAST($3 AS TEXT) IS NULL OR platform = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR user_id = $4) \
         RETURNING platform, workspace_id, user_id",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .bind(platform.map(Platform::as_str))
    .bind(user_id)
    .fetch_all(c)
    .await)?;
    accounts(rows)
}

/// The chat accounts linked to a persona of the tenant.
pub(crate) async fn links_of(
    tx: &mut Tx,
    tenant: &TenantId,
    persona: &str,
) -> Result<Vec<Account>> {
    let rows: Vec<(String, String, String)> = on!(tx, c => sqlx::query_as(
        "SELECT platform, workspace_id, user_id FROM chat_links \
         WHERE tenant_id = $1 AND persona_id = $2 ORDER BY platform, workspace_id, user_id",
    )
    .bind(tenant.as_str())
    .bind(persona)
    .fetch_all(c)
    .await)?;
    accounts(rows)
}

/// A link as listed, with its persona's handle.
pub(crate) struct ListedLink {
    pub platform: Platform,
    pub workspace_id: String,
    pub user_id: String,
    pub handle: String,
    pub linked_at: i64,
}

/// Every link of the tenant (to an existing persona), by handle.
pub(crate) async fn listed_links(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<ListedLink>> {
    let rows: Vec<(String, String, String, String, i64)> = on!(tx, c => sqlx::query_as(
        "SELECT l.platform, l.workspace_id, l.user_id, p.handle, l.linked_at FROM chat_links l \
         JOIN personas p ON p.tenant_id = l.tenant_id AND p.id = l.persona_id \
         WHERE l.tenant_id = $1 ORDER BY p.handle, l.platform, l.workspace_id, l.user_id",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?;
    rows.into_iter()
        .map(|(platform, workspace_id, user_id, handle, linked_at)| {
            Ok(ListedLink {
                platform: Platform::parse(&platform)?,
                workspace_id,
                user_id,
                handle,
                linked_at,
            })
        })
        .collect()
}

/// A chat link's standing as a proof of identity, with what it is weighed against.
pub(crate) struct LinkStanding {
    pub proof: Proof,
    pub linked_at: i64,
    /// The tenant's minimum link age.
    pub min_age_secs: i64,
    /// Whether the link is in the offline sandbox's workspace.
    pub sandbox: bool,
    /// Whether the tenant is a demo.
    pub demo: bool,
}

/// The standing of a chat user's link in the tenant (in a workspace bound to it).
pub(crate) async fn link_standing(
    tx: &mut Tx,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<LinkStanding>> {
    let row: Option<(String, i64, i64, bool, bool)> = on!(tx, c => sqlx::query_as(
        "SELECT l.proof, l.linked_at, t.chat_link_min_age_secs, w.sandbox, t.demo \
         FROM chat_links l \
         JOIN tenants t ON t.id = l.tenant_id \
         JOIN chat_workspaces w ON w.platform = l.platform AND w.workspace_id = l.workspace_id \
           AND w.tenant_id = l.tenant_id \
         WHERE l.tenant_id = $1 AND l.platform = $2 AND l.workspace_id = $3 AND l.user_id = $4",
    )
    .bind(tenant.as_str())
    .bind(platform.as_str())
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(c)
    .await)?;
    row.map(|(proof, linked_at, min_age_secs, sandbox, demo)| {
        Ok(LinkStanding {
            proof: Proof::parse(&proof)?,
            linked_at,
            min_age_secs,
            sandbox,
            demo,
        })
    })
    .transpose()
}

// ---- approval messages -----------------------------------------------------------------------

/// Remembers where an approval request of the tenant was posted (once per workspace).
pub(crate) async fn insert_message(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
    m: &PostedMessage,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO chat_messages (tenant_id, request_id, platform, workspace_id, channel, \
         message_id, rendered) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(request_id)
    .bind(m.platform.as_str())
    .bind(&m.workspace_id)
    .bind(&m.channel)
    .bind(&m.message_id)
    .bind(&m.rendered)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Where an approval request of the tenant was posted.
pub(crate) async fn messages(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
) -> Result<Vec<PostedMessage>> {
    let rows: Vec<(String, String, String, String, Option<String>)> = on!(tx, c => sqlx::query_as(
        "SELECT platform, workspace_id, channel, message_id, rendered FROM chat_messages \
         WHERE tenant_id = $1 AND request_id = $2 ORDER BY platform, workspace_id",
    )
    .bind(tenant.as_str())
    .bind(request_id)
    .fetch_all(c)
    .await)?;
    rows.into_iter()
        .map(|(platform, workspace_id, channel, message_id, rendered)| {
            Ok(PostedMessage {
                platform: Platform::parse(&platform)?,
                workspace_id,
                channel,
                message_id,
                rendered,
            })
        })
        .collect()
}

/// Records what a posted approval message now shows.
pub(crate) async fn mark_rendered(
    tx: &mut Tx,
    tenant: &TenantId,
    request_id: &str,
    platform: Platform,
    workspace_id: &str,
    rendered: &str,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "UPDATE chat_messages SET rendered = $1 WHERE tenant_id = $2 AND request_id = $3 \
         AND platform = $4 AND workspace_id = $5",
    )
    .bind(rendered)
    .bind(tenant.as_str())
    .bind(request_id)
    .bind(platform.as_str())
    .bind(workspace_id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Approval requests, across tenants, whose messages on `platform` are missing (still pending,
/// in a tenant with an approval channel there) or show something other than the request's
/// `state:decisions` now: (tenant, request), newest first, at most `limit`.
pub(crate) async fn unsynced(
    tx: &mut Tx,
    platform: Platform,
    limit: i64,
) -> Result<Vec<(TenantId, String)>> {
    // `created_at` is selected because PostgreSQL orders a DISTINCT only by selected columns.
    let rows: Vec<(String, String, i64)> = on!(tx, c => sqlx::query_as(
        "SELECT DISTINCT r.tenant_id, r.id, r.created_at FROM approval_requests r \
         JOIN chat_workspaces w ON w.tenant_id = r.tenant_id AND w.platform = $1 \
           AND w.approval_channel IS NOT NULL \
         LEFT JOIN chat_messages m ON m.tenant_id = r.tenant_id AND m.request_id = r.id \
           AND m.platform = w.platform AND m.workspace_id = w.workspace_id \
         WHERE (m.request_id IS NULL AND r.state = 'pending') \
            OR (m.request_id IS NOT NULL AND m.rendered IS DISTINCT FROM (r.state || ':' || \
                CAST((SELECT COUNT(*) FROM approval_decisions d \
                      WHERE d.tenant_id = r.tenant_id AND d.request_id = r.id) AS TEXT))) \
         ORDER BY r.created_at DESC, r.tenant_id, r.id LIMIT $2",
    )
    .bind(platform.as_str())
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(t, id, _)| (TenantId::from_db(t), id))
        .collect())
}

// ---- deliveries ------------------------------------------------------------------------------

/// Remembers a delivery id; `false` when it was seen before.
/// Whether a delivery id was recorded.
pub(crate) async fn delivery_seen(
    tx: &mut Tx,
    platform: Platform,
    delivery_id: &str,
) -> Result<bool> {
    let n: i64 = on!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM chat_deliveries WHERE platform = $1 AND delivery_id = $2",
    )
    .bind(platform.as_str())
    .bind(delivery_id)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

pub(crate) async fn insert_delivery(
    tx: &mut Tx,
    platform: Platform,
    delivery_id: &str,
    at_ms: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO chat_deliveries (platform, delivery_id, received_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(platform.as_str())
    .bind(delivery_id)
    .bind(at_ms)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Forgets deliveries received before `before_ms`.
pub(crate) async fn forget_deliveries(tx: &mut Tx, before_ms: i64) -> Result<()> {
    on!(tx, c => sqlx::query("DELETE FROM chat_deliveries WHERE received_at < $1")
        .bind(before_ms)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}
