//! Chat identities: workspaces (Slack teams, Discord guilds) bound to one tenant each, chat users
//! linked to human personas by immutable platform ids through one-time codes, where approval
//! requests were posted, and deliveries already handled.
//!
//! A chat user is never trusted by name or email: a principal is made only from a bound
//! workspace plus a link row, and only for an active human persona.

use crate::Core;
use crate::approvals::{self, RequestView};
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::{PersonaId, TenantId};
use crate::ledger::{self, Draft};
use crate::principal::{PersonaKind, Principal, Surface, Via};
use crate::proof::Proof;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

/// A chat platform.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Slack (workspace = team id).
    Slack,
    /// Discord (workspace = guild id).
    Discord,
}

impl Platform {
    /// `slack` or `discord`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }

    /// The platform's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Slack => "Slack",
            Platform::Discord => "Discord",
        }
    }

    /// The surface its calls come from.
    pub fn surface(self) -> Surface {
        match self {
            Platform::Slack => Surface::Slack,
            Platform::Discord => Surface::Discord,
        }
    }
}

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
    pub platform: String,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: String,
    /// Slack `ts` or Discord message id.
    pub message_id: String,
    /// What it last showed ([`rendered_key`]); `None` until first rendered.
    pub rendered: Option<String>,
}

/// What an approval message shows, as compared by [`Core::chat_unsynced`]: the request's state
/// and how many decisions it has.
pub fn rendered_key(view: &RequestView) -> String {
    format!("{}:{}", view.state, view.decisions.len())
}

/// How long a link code is valid.
pub const LINK_CODE_TTL: chrono::Duration = chrono::Duration::minutes(15);

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

const WORKSPACE_SELECT: &str = "SELECT platform, workspace_id, tenant_id, name, approval_channel, \
    digest_channel, digest_every_ms, digest_last_ms FROM chat_workspaces";

fn workspace(r: WorkspaceRow) -> Workspace {
    Workspace {
        platform: if r.platform == "discord" {
            Platform::Discord
        } else {
            Platform::Slack
        },
        workspace_id: r.workspace_id,
        tenant_id: TenantId::from_db(r.tenant_id),
        name: r.name,
        approval_channel: r.approval_channel,
        digest_channel: r.digest_channel,
        digest_every_ms: r.digest_every_ms,
    }
}

/// Every workspace bound to `tenant`, on the caller's connection (the `tenant.chat_list` read).
pub(crate) async fn workspaces_on(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
) -> Result<Vec<Workspace>> {
    let sql = format!("{WORKSPACE_SELECT} WHERE tenant_id = ? ORDER BY platform, workspace_id");
    let rows: Vec<WorkspaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(workspace).collect())
}

/// The keyed digest a link code is stored as.
pub(crate) fn code_digest(pepper: &[u8; 32], code: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper).expect("any key length");
    mac.update(b"tenantops chat link code\0");
    mac.update(code.trim().to_ascii_uppercase().as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A new one-time link code: `LINK-` and 10 characters of Crockford base32 (50 bits).
pub(crate) fn new_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("LINK-{}-{}", &body[..5], &body[5..])
}

/// A new one-time install state (base62, 32 characters).
pub(crate) fn new_install_state() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What a completed install bound.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The workspace, now bound.
    pub workspace: Workspace,
    /// Whether it was bound before (a re-install refreshes its token).
    pub reinstalled: bool,
}

impl Core {
    /// Completes an install — a platform's OAuth consent, or a bind command typed in a
    /// server by someone allowed to manage it: consumes the one-time `state` (issued by
    /// `tenant.chat_install_link`), binds `workspace_id` to the state's tenant (refusing a
    /// workspace bound to another tenant) and stores the bot token (Slack) envelope-encrypted,
    /// with an audit entry as the admin who issued the link — all in one transaction. The adapter
    /// proves control of the workspace before calling this.
    pub async fn complete_chat_install(
        &self,
        platform: Platform,
        state: &str,
        workspace_id: &str,
        name: Option<&str>,
        bot_token: Option<&str>,
    ) -> Result<Installed> {
        let env = self.env();
        let now = env.clock.now();
        let mut tx = env.store.begin_write().await?;
        let claimed: Option<(String, String, Option<String>)> = sqlx::query_as(
            "UPDATE chat_install_states SET used_at = ? WHERE digest = ? AND platform = ? \
             AND used_at IS NULL AND expires_at > ? RETURNING tenant_id, persona_id, approval_channel",
        )
        .bind(to_millis(now))
        .bind(code_digest(env.pepper(), state))
        .bind(platform.as_str())
        .bind(to_millis(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant, persona, approval_channel)) = claimed else {
            return Err(Error::bad_input(
                "state",
                "this install link is unknown, used or expired; ask a tenant admin for a new one \
                 (tenant.chat_install_link)",
            ));
        };
        let tenant = TenantId::from_db(tenant);
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM chat_workspaces WHERE platform = ? AND workspace_id = ?",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        if owner.as_deref().is_some_and(|o| o != tenant.as_str()) {
            return Err(Error::Conflict(
                "this workspace is bound to another tenant; it must be unbound there first".into(),
            ));
        }
        let purpose = format!("{}:{workspace_id}", platform.as_str());
        let sealed = bot_token.map(|t| env.master.seal(&tenant, &purpose, t.as_bytes()));
        sqlx::query(
            "INSERT INTO chat_workspaces (platform, workspace_id, tenant_id, name, approval_channel, \
             bound_at, bound_by, bot_token_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (platform, workspace_id) DO UPDATE SET name = excluded.name, \
             approval_channel = COALESCE(excluded.approval_channel, chat_workspaces.approval_channel), \
             bot_token_sealed = COALESCE(excluded.bot_token_sealed, chat_workspaces.bot_token_sealed)",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .bind(tenant.as_str())
        .bind(name)
        .bind(&approval_channel)
        .bind(to_millis(now))
        .bind(&persona)
        .bind(&sealed)
        .execute(&mut *tx)
        .await?;
        let signer = ledger::signer(&env.master, &tenant)?;
        let draft = Draft {
            actor: ledger::Actor {
                persona: Some(persona.clone()),
                kind: Some("human".into()),
                via: match (platform, bot_token.is_some()) {
                    (Platform::Slack, true) => "slack:oauth-install".into(),
                    (Platform::Slack, false) => "slack:bind-in-workspace".into(),
                    (Platform::Discord, _) => "discord:bind-in-server".into(),
                },
                surface: platform.as_str().into(),
            },
            op: "tenant.chat_install".into(),
            outcome: "done".into(),
            detail: json!({ "platform": platform.as_str(), "workspace_id": workspace_id,
                            "reinstalled": owner.is_some() }),
        };
        ledger::record(&mut tx, &tenant, &signer, now, vec![draft]).await?;
        tx.commit().await?;
        let workspace = self
            .chat_workspace(platform, workspace_id)
            .await?
            .ok_or_else(|| Error::Internal("installed workspace vanished".into()))?;
        Ok(Installed {
            workspace,
            reinstalled: owner.is_some(),
        })
    }

    /// The bot token an OAuth install stored for a workspace, if any (decrypted for the call).
    pub async fn chat_bot_token(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> Result<Option<zeroize::Zeroizing<String>>> {
        let row: Option<(String, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT tenant_id, bot_token_sealed FROM chat_workspaces WHERE platform = ? AND workspace_id = ?",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .fetch_optional(self.store().pool())
        .await?;
        let Some((tenant, Some(sealed))) = row else {
            return Ok(None);
        };
        let tenant = TenantId::from_db(tenant);
        let purpose = format!("{}:{workspace_id}", platform.as_str());
        let plain = self.env().master.open(&tenant, &purpose, &sealed)?;
        let token = String::from_utf8(plain.to_vec())
            .map_err(|_| Error::Internal("a stored bot token is not text".into()))?;
        Ok(Some(zeroize::Zeroizing::new(token)))
    }

    /// The binding of a workspace, if any.
    pub async fn chat_workspace(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> Result<Option<Workspace>> {
        let sql = format!("{WORKSPACE_SELECT} WHERE platform = ? AND workspace_id = ?");
        let row: Option<WorkspaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(platform.as_str())
            .bind(workspace_id)
            .fetch_optional(self.store().pool())
            .await?;
        Ok(row.map(workspace))
    }

    /// Every workspace of a platform bound to `tenant`.
    pub async fn chat_workspaces_of(
        &self,
        tenant: &TenantId,
        platform: Platform,
    ) -> Result<Vec<Workspace>> {
        let sql = format!("{WORKSPACE_SELECT} WHERE tenant_id = ? AND platform = ?");
        let rows: Vec<WorkspaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(platform.as_str())
            .fetch_all(self.store().pool())
            .await?;
        Ok(rows.into_iter().map(workspace).collect())
    }

    /// Every workspace of a platform that has a digest channel (for the digest scheduler).
    pub async fn chat_digest_workspaces(
        &self,
        platform: Platform,
    ) -> Result<Vec<(Workspace, Option<i64>)>> {
        let sql = format!(
            "{WORKSPACE_SELECT} WHERE platform = ? AND digest_channel IS NOT NULL \
             AND digest_every_ms IS NOT NULL"
        );
        let rows: Vec<WorkspaceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(platform.as_str())
            .fetch_all(self.store().pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let last = r.digest_last_ms;
                (workspace(r), last)
            })
            .collect())
    }

    /// Records that a workspace's digest was posted at `at_ms`.
    pub async fn chat_digest_posted(
        &self,
        platform: Platform,
        workspace_id: &str,
        at_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE chat_workspaces SET digest_last_ms = ? WHERE platform = ? AND workspace_id = ?",
        )
        .bind(at_ms)
        .bind(platform.as_str())
        .bind(workspace_id)
        .execute(self.store().pool())
        .await?;
        Ok(())
    }

    /// The principal a workspace's scheduled digest runs as: the persona who bound the workspace,
    /// acting through the schedule (its ledger entries say `slack:scheduled-digest`).
    pub async fn digest_principal(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> Result<Principal> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT w.tenant_id, w.bound_by, p.kind FROM chat_workspaces w \
             JOIN personas p ON p.tenant_id = w.tenant_id AND p.id = w.bound_by \
             WHERE w.platform = ? AND w.workspace_id = ?",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .fetch_optional(self.store().pool())
        .await?;
        let Some((tenant, persona, kind)) = row else {
            return Err(Error::NotFound(
                "workspace not bound, or its binder is gone".into(),
            ));
        };
        let kind = PersonaKind::parse(&kind).unwrap_or(PersonaKind::Service);
        let tenant = TenantId::from_db(tenant);
        let persona = PersonaId::from_db(persona);
        let scopes = self.role_scopes(&tenant, &persona).await?;
        let principal = Principal {
            tenant,
            persona,
            kind,
            scopes,
            via: Via::Chat {
                platform: platform.as_str().to_owned(),
                workspace: workspace_id.to_owned(),
                user: "scheduled-digest".into(),
            },
            surface: platform.surface(),
            valid_until: None,
            secret_digest: None,
        };
        // Re-checked like any principal: a revoked or demoted persona's digest stops.
        self.refresh(&principal).await
    }

    /// Authenticates a chat user: the workspace must be bound and the user linked to an active
    /// human persona of that tenant. Scopes are the persona's role scopes.
    pub async fn authenticate_chat(
        &self,
        platform: Platform,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Principal> {
        let Some(ws) = self.chat_workspace(platform, workspace_id).await? else {
            return Err(Error::Unauthenticated(format!(
                "this {} workspace is not connected to a tenant yet",
                platform.as_str()
            )));
        };
        let link: Option<(String, String, String)> = sqlx::query_as(
            "SELECT l.persona_id, p.kind, p.status FROM chat_links l \
             JOIN personas p ON p.tenant_id = l.tenant_id AND p.id = l.persona_id \
             WHERE l.platform = ? AND l.workspace_id = ? AND l.user_id = ? AND l.tenant_id = ?",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .bind(ws.tenant_id.as_str())
        .fetch_optional(self.store().pool())
        .await?;
        let Some((persona, kind, status)) = link else {
            return Err(Error::Unauthenticated(
                "your chat account is not linked to a persona: ask for a link code \
                 (members.chat_link_code) and link with it here"
                    .into(),
            ));
        };
        if status != "active" || PersonaKind::parse(&kind) != Some(PersonaKind::Human) {
            return Err(Error::Unauthenticated(
                "the persona linked to your chat account is no longer active".into(),
            ));
        }
        let persona = PersonaId::from_db(persona);
        let scopes = self.role_scopes(&ws.tenant_id, &persona).await?;
        Ok(Principal {
            tenant: ws.tenant_id,
            persona,
            kind: PersonaKind::Human,
            scopes,
            via: Via::Chat {
                platform: platform.as_str().to_owned(),
                workspace: workspace_id.to_owned(),
                user: user_id.to_owned(),
            },
            surface: platform.surface(),
            valid_until: None,
            secret_digest: None,
        })
    }

    /// Links a chat user to the human persona a one-time code was issued for. The code must be
    /// unused, unexpired and of the workspace's tenant; it is consumed in the same transaction
    /// as the link and its audit entry, and the link carries the proof of the credential that
    /// asked for the code. A link is never re-pointed to another persona: it must be unlinked
    /// first. Returns the persona's handle.
    pub async fn link_chat(
        &self,
        platform: Platform,
        workspace_id: &str,
        user_id: &str,
        code: &str,
    ) -> Result<String> {
        let Some(ws) = self.chat_workspace(platform, workspace_id).await? else {
            return Err(Error::Unauthenticated(format!(
                "this {} workspace is not connected to a tenant yet",
                platform.as_str()
            )));
        };
        let env = self.env();
        let now = env.clock.now();
        let digest = code_digest(env.pepper(), code);
        let mut tx = env.store.begin_write().await?;
        let claimed: Option<(String, String)> = sqlx::query_as(
            "UPDATE chat_link_codes SET used_at = ? WHERE digest = ? AND tenant_id = ? \
             AND used_at IS NULL AND expires_at > ? RETURNING persona_id, proof",
        )
        .bind(to_millis(now))
        .bind(&digest)
        .bind(ws.tenant_id.as_str())
        .bind(to_millis(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((persona, proof)) = claimed else {
            return Err(Error::bad_input(
                "code",
                "this link code is unknown, used or expired; ask for a new one \
                 (members.chat_link_code, valid 15 minutes)",
            ));
        };
        let proof = Proof::parse(&proof)?;
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT handle, kind, status FROM personas WHERE tenant_id = ? AND id = ?",
        )
        .bind(ws.tenant_id.as_str())
        .bind(&persona)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((handle, kind, status)) = row else {
            return Err(Error::NotFound(
                "the persona of this code no longer exists".into(),
            ));
        };
        if status != "active" || kind != "human" {
            return Err(Error::denied(
                "only an active human persona can be linked to a chat account",
            ));
        }
        self.write_link(
            &mut tx,
            &ws.tenant_id,
            platform,
            workspace_id,
            user_id,
            &persona,
            proof,
        )
        .await?;
        tx.commit().await?;
        Ok(handle)
    }

    /// Stores a link (refusing to re-point one) with its audit entry, in `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn write_link(
        &self,
        tx: &mut crate::store::Tx,
        tenant: &TenantId,
        platform: Platform,
        workspace_id: &str,
        user_id: &str,
        persona: &str,
        proof: Proof,
    ) -> Result<()> {
        let env = self.env();
        let now = env.clock.now();
        let existing: Option<(String, String, String)> = sqlx::query_as(
            "SELECT l.persona_id, COALESCE(p.handle, l.persona_id), l.proof FROM chat_links l \
             LEFT JOIN personas p ON p.tenant_id = l.tenant_id AND p.id = l.persona_id \
             WHERE l.platform = ? AND l.workspace_id = ? AND l.user_id = ?",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
        let relinked = match &existing {
            Some((other, other_handle, _)) if other != persona => {
                return Err(Error::Conflict(format!(
                    "this chat account already acts as `{other_handle}`; a link is never \
                     re-pointed: unlink it first (members.chat_unlink, by that person or an admin \
                     with authority over them)"
                )));
            }
            Some((_, _, old)) => {
                // Linking again with a better proof restarts the link's age under that proof;
                // the same or a weaker one changes nothing.
                let old = Proof::parse(old)?;
                if old == Proof::Own || proof != Proof::Own {
                    tx_audit_link(
                        tx,
                        env,
                        tenant,
                        platform,
                        workspace_id,
                        user_id,
                        persona,
                        old,
                        true,
                    )
                    .await?;
                    return Ok(());
                }
                true
            }
            None => false,
        };
        sqlx::query(
            "INSERT INTO chat_links (platform, workspace_id, user_id, tenant_id, persona_id, linked_at, proof) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace_id, user_id) DO UPDATE \
             SET linked_at = excluded.linked_at, proof = excluded.proof",
        )
        .bind(platform.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .bind(tenant.as_str())
        .bind(persona)
        .bind(to_millis(now))
        .bind(proof.as_str())
        .execute(&mut **tx)
        .await?;
        tx_audit_link(
            tx,
            env,
            tenant,
            platform,
            workspace_id,
            user_id,
            persona,
            proof,
            relinked,
        )
        .await
    }

    /// Binds the offline sandbox's workspace (`tenantops chat`) to `principal`'s tenant, marked
    /// as the sandbox so that its decisions count only on demo tenants. Needs `connectors:write`.
    pub async fn bind_sandbox(
        &self,
        principal: &Principal,
        workspace_id: &str,
        approval_channel: &str,
    ) -> Result<()> {
        let principal = self.refresh(principal).await?;
        if !principal.has(crate::Scope::CONNECTORS_WRITE) {
            return Err(Error::denied(
                "binding the sandbox needs connectors:write; run it once with a tenant admin's key",
            ));
        }
        let env = self.env();
        let now = env.clock.now();
        let tenant = principal.tenant().clone();
        let mut tx = env.store.begin_write().await?;
        let owner: Option<(String, i64)> = sqlx::query_as(
            "SELECT tenant_id, sandbox FROM chat_workspaces WHERE platform = 'slack' AND workspace_id = ?",
        )
        .bind(workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        match owner {
            Some((t, _)) if t != tenant.as_str() => {
                return Err(Error::Conflict(
                    "the sandbox workspace is bound to another tenant of this database".into(),
                ));
            }
            Some((_, 0)) => {
                return Err(Error::Conflict(
                    "a real Slack workspace has the sandbox's id; the sandbox cannot use it".into(),
                ));
            }
            Some(_) => return Ok(()),
            None => {}
        }
        sqlx::query(
            "INSERT INTO chat_workspaces (platform, workspace_id, tenant_id, name, approval_channel, \
             bound_at, bound_by, sandbox) VALUES ('slack', ?, ?, 'tenantops sandbox', ?, ?, ?, 1)",
        )
        .bind(workspace_id)
        .bind(tenant.as_str())
        .bind(approval_channel)
        .bind(to_millis(now))
        .bind(principal.persona().as_str())
        .execute(&mut *tx)
        .await?;
        let signer = ledger::signer(&env.master, &tenant)?;
        let draft = Draft {
            actor: crate::service::actor_of(&principal),
            op: "tenant.chat_bind".into(),
            outcome: "done".into(),
            detail: json!({ "platform": "slack", "workspace_id": workspace_id, "sandbox": true }),
        };
        ledger::record(&mut tx, &tenant, &signer, now, vec![draft]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Links a sandbox user to the persona `handle` on a demo tenant, where the sandbox may play
    /// anyone. On any other tenant a person is played only with their own credential (a code
    /// from `members.chat_link_code` asked for by themselves).
    pub async fn link_sandbox_demo(
        &self,
        workspace_id: &str,
        user_id: &str,
        handle: &str,
    ) -> Result<String> {
        let Some(ws) = self.chat_workspace(Platform::Slack, workspace_id).await? else {
            return Err(Error::NotFound("the sandbox workspace is not bound".into()));
        };
        let env = self.env();
        let mut tx = env.store.begin_write().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT t.demo, w.sandbox FROM tenants t JOIN chat_workspaces w ON w.tenant_id = t.id \
             WHERE t.id = ? AND w.platform = 'slack' AND w.workspace_id = ?",
        )
        .bind(ws.tenant_id.as_str())
        .bind(workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        if row != Some((1, 1)) {
            return Err(Error::denied(
                "the sandbox plays anyone only on a demo tenant; on this tenant a person is played \
                 with their own credential (TENANTOPS_API_KEY of that person)",
            ));
        }
        let persona: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, kind, status FROM personas WHERE tenant_id = ? AND handle = ?",
        )
        .bind(ws.tenant_id.as_str())
        .bind(handle)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((persona, kind, status)) = persona else {
            return Err(Error::NotFound(format!(
                "no persona `{handle}` in the demo tenant"
            )));
        };
        if status != "active" || kind != "human" {
            return Err(Error::denied(
                "only an active human persona can be linked to a chat account",
            ));
        }
        self.write_link(
            &mut tx,
            &ws.tenant_id,
            Platform::Slack,
            workspace_id,
            user_id,
            &persona,
            Proof::Own,
        )
        .await?;
        tx.commit().await?;
        Ok(handle.to_owned())
    }

    /// The chat accounts linked to a persona: (platform, workspace, user).
    pub async fn chat_links_of(
        &self,
        tenant: &TenantId,
        persona: &str,
    ) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT platform, workspace_id, user_id FROM chat_links WHERE tenant_id = ? AND persona_id = ?",
        )
        .bind(tenant.as_str())
        .bind(persona)
        .fetch_all(self.store().pool())
        .await?)
    }

    /// An approval request as approvers see it, for posting and updating chat messages (a
    /// delivery of the core's own notification, not a caller's read: no audit entry).
    pub async fn request_view(&self, tenant: &TenantId, request_id: &str) -> Result<RequestView> {
        let mut tx = self.store().begin_read().await?;
        let view = approvals::view(&mut tx, tenant, request_id).await?;
        tx.rollback().await?;
        Ok(view)
    }

    /// Remembers where an approval request was posted.
    pub async fn record_chat_message(
        &self,
        tenant: &TenantId,
        request_id: &str,
        m: &PostedMessage,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_messages (tenant_id, request_id, platform, workspace_id, channel, \
             message_id, rendered) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(request_id)
        .bind(&m.platform)
        .bind(&m.workspace_id)
        .bind(&m.channel)
        .bind(&m.message_id)
        .bind(&m.rendered)
        .execute(self.store().pool())
        .await?;
        Ok(())
    }

    /// Where an approval request was posted.
    pub async fn chat_messages(
        &self,
        tenant: &TenantId,
        request_id: &str,
    ) -> Result<Vec<PostedMessage>> {
        let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT platform, workspace_id, channel, message_id, rendered FROM chat_messages \
             WHERE tenant_id = ? AND request_id = ?",
        )
        .bind(tenant.as_str())
        .bind(request_id)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(platform, workspace_id, channel, message_id, rendered)| PostedMessage {
                    platform,
                    workspace_id,
                    channel,
                    message_id,
                    rendered,
                },
            )
            .collect())
    }

    /// Approval requests whose chat messages on `platform` are missing (still pending, in a
    /// tenant with an approval channel there) or show an older state than the request has —
    /// changes made by any process sharing the database. At most `limit`.
    pub async fn chat_unsynced(
        &self,
        platform: Platform,
        limit: u32,
    ) -> Result<Vec<(TenantId, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT r.tenant_id, r.id FROM approval_requests r \
             JOIN chat_workspaces w ON w.tenant_id = r.tenant_id AND w.platform = ?1 \
               AND w.approval_channel IS NOT NULL \
             LEFT JOIN chat_messages m ON m.tenant_id = r.tenant_id AND m.request_id = r.id \
               AND m.platform = w.platform AND m.workspace_id = w.workspace_id \
             WHERE (m.request_id IS NULL AND r.state = 'pending') \
                OR (m.request_id IS NOT NULL AND m.rendered IS NOT (r.state || ':' || \
                    (SELECT COUNT(*) FROM approval_decisions d \
                     WHERE d.tenant_id = r.tenant_id AND d.request_id = r.id))) \
             ORDER BY r.created_at DESC LIMIT ?2",
        )
        .bind(platform.as_str())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(t, id)| (TenantId::from_db(t), id))
            .collect())
    }

    /// Records what a posted approval message now shows (see [`rendered_key`]).
    pub async fn chat_mark_rendered(
        &self,
        tenant: &TenantId,
        request_id: &str,
        m: &PostedMessage,
        rendered: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE chat_messages SET rendered = ? WHERE tenant_id = ? AND request_id = ? \
             AND platform = ? AND workspace_id = ?",
        )
        .bind(rendered)
        .bind(tenant.as_str())
        .bind(request_id)
        .bind(&m.platform)
        .bind(&m.workspace_id)
        .execute(self.store().pool())
        .await?;
        Ok(())
    }

    /// `true` the first time a delivery id is seen (a retried or redelivered request is
    /// answered without acting twice). Deliveries older than a day are forgotten.
    pub async fn first_delivery(&self, platform: Platform, delivery_id: &str) -> Result<bool> {
        let now = to_millis(self.env().clock.now());
        let inserted = sqlx::query(
            "INSERT INTO chat_deliveries (platform, delivery_id, received_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(platform.as_str())
        .bind(delivery_id)
        .bind(now)
        .execute(self.store().pool())
        .await?
        .rows_affected();
        // Pruning is a write of its own: do it now and then, not on every delivery.
        if inserted == 1 && rand::random::<u8>() == 0 {
            sqlx::query("DELETE FROM chat_deliveries WHERE received_at < ?")
                .bind(now - 86_400_000)
                .execute(self.store().pool())
                .await?;
        }
        Ok(inserted == 1)
    }
}

/// The audit entry of a link, in the link's transaction (as the linked person, through the
/// chat account).
#[allow(clippy::too_many_arguments)]
async fn tx_audit_link(
    tx: &mut crate::store::Tx,
    env: &crate::Env,
    tenant: &TenantId,
    platform: Platform,
    workspace_id: &str,
    user_id: &str,
    persona: &str,
    proof: Proof,
    relinked: bool,
) -> Result<()> {
    let signer = ledger::signer(&env.master, tenant)?;
    let actor = ledger::Actor {
        persona: Some(persona.to_owned()),
        kind: Some("human".into()),
        via: format!("{}:{user_id}", platform.as_str()),
        surface: platform.as_str().into(),
    };
    let draft = Draft {
        actor,
        op: "members.chat_link".into(),
        outcome: "done".into(),
        detail: json!({ "platform": platform.as_str(), "workspace_id": workspace_id,
                        "user_id": user_id, "proof": proof.as_str(), "relinked": relinked }),
    };
    ledger::record(tx, tenant, &signer, env.clock.now(), vec![draft]).await?;
    Ok(())
}
