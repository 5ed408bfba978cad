//! Chat identities as the engine serves them: binding workspaces (install, sandbox), linking
//! people, authenticating chat users, and where approval messages were posted.

use crate::approvals::{self, RequestView};
use crate::chat::{Installed, Platform, PostedMessage, Workspace, code_digest};
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::ledger::{self, AuditOutcome, Draft};
use crate::principal::{PersonaKind, Principal, Via};
use crate::proof::Proof;
use crate::{Core, store};
use serde_json::json;

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
        let (state, ws_id, name) = (
            state.to_owned(),
            workspace_id.to_owned(),
            name.map(str::to_owned),
        );
        let bot_token = bot_token.map(|t| zeroize::Zeroizing::new(t.to_owned()));
        // The token is sealed with the tenant's keys, loaded before the transaction: the state
        // names the tenant (checked again when it is claimed).
        let keys = match bot_token {
            None => None,
            Some(_) => {
                let digest = code_digest(env.pepper(), &state);
                let mut read = env.store.read().await?;
                match store::chat::install_state_tenant(&mut read, &digest, platform).await? {
                    Some(t) => Some(env.keys(&t).await?),
                    None => None,
                }
            }
        };
        let env2 = env.clone();
        let reinstalled = env
        .write(move |tx| {
            Box::pin(async move {
                let (env, state, workspace_id) = (env2, state.as_str(), ws_id.as_str());
                let (name, bot_token) = (name.as_deref(), bot_token.as_deref().map(String::as_str));
                let claimed = store::chat::claim_install_state(
                    tx,
                    &code_digest(env.pepper(), state),
                    platform,
                    to_millis(now),
                )
                .await?;
                let Some((tenant, persona, approval_channel)) = claimed else {
                    return Err(Error::bad_input(
                        "state",
                        "this install link is unknown, used or expired; ask a tenant admin for a new one \
                         (tenant.chat_install_link)",
                    ));
                };
                let owner = store::chat::owner(tx, platform, workspace_id).await?;
                if owner.as_ref().is_some_and(|o| *o != tenant) {
                    return Err(Error::Conflict(
                        "this workspace is bound to another tenant; it must be unbound there first".into(),
                    ));
                }
                let record = format!("{}:{workspace_id}", platform.as_str());
                let sealed = match (bot_token, &keys) {
                    (None, _) => None,
                    (Some(t), Some(keys)) if keys.tenant() == &tenant => {
                        crate::vault::rewrap::check_newest(tx, keys).await?;
                        Some(keys.seal(
                            crate::vault::keys::Place::new(&store::vault::BOT_TOKEN, &record),
                            t.as_bytes(),
                        ))
                    }
                    (Some(_), _) => {
                        return Err(Error::Conflict(
                            "this install link changed while it was being used; ask for a new one"
                                .into(),
                        ));
                    }
                };
                store::chat::upsert_installed(
                    tx,
                    &store::chat::Installed {
                        platform,
                        workspace_id,
                        tenant: &tenant,
                        name,
                        approval_channel: approval_channel.as_deref(),
                        bound_at: to_millis(now),
                        bound_by: &persona,
                        bot_token_sealed: sealed.as_deref(),
                    },
                )
                .await?;
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
                    outcome: AuditOutcome::Done,
                    detail: json!({ "platform": platform.as_str(), "workspace_id": workspace_id,
                                    "reinstalled": owner.is_some() }),
                };
                env.record(tx, &tenant, now, draft).await?;
                Ok(owner.is_some())
            })
        })
        .await?;
        let workspace = self
            .chat_workspace(platform, workspace_id)
            .await?
            .ok_or_else(|| Error::Internal("installed workspace vanished".into()))?;
        Ok(Installed {
            workspace,
            reinstalled,
        })
    }

    /// The bot token an OAuth install stored for a workspace, if any (decrypted for the call).
    pub async fn chat_bot_token(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> Result<Option<zeroize::Zeroizing<String>>> {
        let mut tx = self.store().begin_read().await?;
        let row = store::chat::sealed_bot_token(&mut tx, platform, workspace_id).await?;
        tx.rollback().await?;
        let Some((tenant, Some(sealed))) = row else {
            return Ok(None);
        };
        let record = format!("{}:{workspace_id}", platform.as_str());
        let keys = self.env().keys(&tenant).await?;
        let plain = keys.open(
            crate::vault::keys::Place::new(&store::vault::BOT_TOKEN, &record),
            &sealed,
        )?;
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
        let mut read = self.store().read().await?;
        let workspace = store::chat::workspace(&mut read, platform, workspace_id).await?;
        Ok(workspace)
    }

    /// Every workspace of a platform bound to `tenant`.
    pub async fn chat_workspaces_of(
        &self,
        tenant: &TenantId,
        platform: Platform,
    ) -> Result<Vec<Workspace>> {
        let mut tx = self.store().begin_read().await?;
        let workspaces = store::chat::workspaces_on(&mut tx, tenant, platform).await?;
        tx.rollback().await?;
        Ok(workspaces)
    }

    /// Every workspace of a platform that has a digest channel (for the digest scheduler).
    pub async fn chat_digest_workspaces(
        &self,
        platform: Platform,
    ) -> Result<Vec<(Workspace, Option<i64>)>> {
        let mut tx = self.store().begin_read().await?;
        let due = store::chat::digest_workspaces(&mut tx, platform).await?;
        tx.rollback().await?;
        Ok(due)
    }

    /// Records that a workspace's digest was posted at `at_ms`.
    pub async fn chat_digest_posted(
        &self,
        platform: Platform,
        workspace_id: &str,
        at_ms: i64,
    ) -> Result<()> {
        let workspace_id = workspace_id.to_owned();
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    store::chat::set_digest_posted(tx, platform, &workspace_id, at_ms).await
                })
            })
            .await
    }

    /// The principal a workspace's scheduled digest runs as: the persona who bound the workspace,
    /// acting through the schedule (its ledger entries say `slack:scheduled-digest`).
    pub async fn digest_principal(
        &self,
        platform: Platform,
        workspace_id: &str,
    ) -> Result<Principal> {
        let mut tx = self.store().begin_read().await?;
        let Some((tenant, persona, kind)) =
            store::chat::binder(&mut tx, platform, workspace_id).await?
        else {
            return Err(Error::NotFound(
                "workspace not bound, or its binder is gone".into(),
            ));
        };
        let kind = PersonaKind::parse(&kind).ok_or_else(|| {
            Error::Internal(format!("unknown persona kind `{kind}` in the store"))
        })?;
        let scopes = crate::roles::role_scopes_on(&mut tx, &tenant, &persona).await?;
        tx.rollback().await?;
        let principal = Principal {
            tenant,
            persona,
            kind,
            scopes,
            via: Via::Chat {
                platform,
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
        let mut read = self.store().read().await?;
        let link =
            store::chat::linked_persona(&mut read, &ws.tenant_id, platform, workspace_id, user_id)
                .await?;
        drop(read);
        let Some(store::chat::LinkedPersona {
            persona,
            kind,
            status,
            roles,
        }) = link
        else {
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
        let scopes = crate::roles::scopes_of(roles.iter().map(String::as_str));
        Ok(Principal {
            tenant: ws.tenant_id,
            persona,
            kind: PersonaKind::Human,
            scopes,
            via: Via::Chat {
                platform,
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
        let core = self.clone();
        let (ws_id, user_id) = (workspace_id.to_owned(), user_id.to_owned());
        env.write(move |tx| {
            Box::pin(async move {
                let (workspace_id, user_id) = (ws_id.as_str(), user_id.as_str());
                let claimed =
                    store::chat::claim_link_code(tx, &ws.tenant_id, &digest, to_millis(now))
                        .await?;
                let Some((persona, proof)) = claimed else {
                    return Err(Error::bad_input(
                        "code",
                        "this link code is unknown, used or expired; ask for a new one \
                         (members.chat_link_code, valid 15 minutes)",
                    ));
                };
                let row = store::chat::persona_by_id(tx, &ws.tenant_id, &persona).await?;
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
                core.write_link(
                    tx,
                    &ws.tenant_id,
                    platform,
                    workspace_id,
                    user_id,
                    &persona,
                    proof,
                )
                .await?;
                Ok(handle)
            })
        })
        .await
    }

    /// Stores a link (refusing to re-point one) with its audit entry, in `tx`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_link(
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
        let existing = store::chat::existing_link(tx, platform, workspace_id, user_id).await?;
        let relinked = match existing {
            Some(other) if other.persona != persona => {
                return Err(Error::Conflict(format!(
                    "this chat account already acts as `{}`; a link is never \
                     re-pointed: unlink it first (members.chat_unlink, by that person or an admin \
                     with authority over them)",
                    other.handle
                )));
            }
            Some(same) => {
                // Linking again with a better proof restarts the link's age under that proof;
                // the same or a weaker one changes nothing.
                let old = same.proof;
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
        store::chat::upsert_link(
            tx,
            &store::chat::NewLink {
                tenant,
                platform,
                workspace_id,
                user_id,
                persona,
                linked_at: to_millis(now),
                proof,
            },
        )
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
        let (ws_id, approval_channel) = (workspace_id.to_owned(), approval_channel.to_owned());
        let env2 = env.clone();
        env
            .write(move |tx| {
                Box::pin(async move {
                    let (env, workspace_id, approval_channel) =
                        (env2, ws_id.as_str(), approval_channel.as_str());
                    match store::chat::sandbox_owner(tx, workspace_id).await? {
                    Some((t, _)) if t != tenant => {
                        return Err(Error::Conflict(
                            "the sandbox workspace is bound to another tenant of this database".into(),
                        ));
                    }
                    Some((_, false)) => {
                        return Err(Error::Conflict(
                            "a real Slack workspace has the sandbox's id; the sandbox cannot use it".into(),
                        ));
                    }
                    Some(_) => return Ok(()),
                    None => {}
                }
                store::chat::insert_sandbox(
                    tx,
                    &tenant,
                    workspace_id,
                    approval_channel,
                    to_millis(now),
                    principal.persona().as_str(),
                )
                .await?;
                let draft = Draft {
                    actor: crate::engine::actor_of(&principal),
                    op: "tenant.chat_bind".into(),
                    outcome: AuditOutcome::Done,
                    detail: json!({ "platform": "slack", "workspace_id": workspace_id, "sandbox": true }),
                };
                env.record(tx, &tenant, now, draft).await?;
                    Ok(())
                })
            })
            .await
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
        let core = self.clone();
        let (ws_id, user_id, handle) = (
            workspace_id.to_owned(),
            user_id.to_owned(),
            handle.to_owned(),
        );
        env
            .write(move |tx| {
                Box::pin(async move {
                    let (workspace_id, user_id, handle) =
                        (ws_id.as_str(), user_id.as_str(), handle.as_str());
                    let row = store::chat::demo_and_sandbox(tx, &ws.tenant_id, workspace_id).await?;
                if row != Some((true, true)) {
                    return Err(Error::denied(
                        "the sandbox plays anyone only on a demo tenant; on this tenant a person is played \
                         with their own credential (TENANTOPS_API_KEY of that person)",
                    ));
                }
                let persona = store::chat::persona_by_handle(tx, &ws.tenant_id, handle).await?;
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
                core.write_link(
                    tx,
                    &ws.tenant_id,
                    Platform::Slack,
                    workspace_id,
                    user_id,
                    &persona,
                    Proof::Own,
                )
                .await?;
                    Ok(handle.to_owned())
                })
            })
            .await
    }

    /// The chat accounts linked to a persona: (platform, workspace, user).
    pub async fn chat_links_of(
        &self,
        tenant: &TenantId,
        persona: &str,
    ) -> Result<Vec<(Platform, String, String)>> {
        let mut tx = self.store().begin_read().await?;
        let links = store::chat::links_of(&mut tx, tenant, persona).await?;
        tx.rollback().await?;
        Ok(links)
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
        let (tenant, request_id, m) = (tenant.clone(), request_id.to_owned(), m.clone());
        self.env
            .write(move |tx| {
                Box::pin(
                    async move { store::chat::insert_message(tx, &tenant, &request_id, &m).await },
                )
            })
            .await
    }

    /// Where an approval request was posted.
    pub async fn chat_messages(
        &self,
        tenant: &TenantId,
        request_id: &str,
    ) -> Result<Vec<PostedMessage>> {
        let mut tx = self.store().begin_read().await?;
        let messages = store::chat::messages(&mut tx, tenant, request_id).await?;
        tx.rollback().await?;
        Ok(messages)
    }

    /// Approval requests whose chat messages on `platform` are missing (still pending, in a
    /// tenant with an approval channel there) or show an older state than the request has —
    /// changes made by any process sharing the database. At most `limit`.
    pub async fn chat_unsynced(
        &self,
        platform: Platform,
        limit: u32,
    ) -> Result<Vec<(TenantId, String)>> {
        let mut tx = self.store().begin_read().await?;
        let due = store::chat::unsynced(&mut tx, platform, i64::from(limit)).await?;
        tx.rollback().await?;
        Ok(due)
    }

    /// Records what a posted approval message now shows (see [`rendered_key`]).
    pub async fn chat_mark_rendered(
        &self,
        tenant: &TenantId,
        request_id: &str,
        m: &PostedMessage,
        rendered: &str,
    ) -> Result<()> {
        let (tenant, request_id) = (tenant.clone(), request_id.to_owned());
        let (platform, workspace_id, rendered) =
            (m.platform, m.workspace_id.clone(), rendered.to_owned());
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    store::chat::mark_rendered(
                        tx,
                        &tenant,
                        &request_id,
                        platform,
                        &workspace_id,
                        &rendered,
                    )
                    .await
                })
            })
            .await
    }

    /// `true` the first time a delivery id is seen (a retried or redelivered request is
    /// answered without acting twice), whichever replica it reaches: the id is recorded in the
    /// shared database. The worker forgets deliveries older than a day.
    pub async fn first_delivery(&self, platform: Platform, delivery_id: &str) -> Result<bool> {
        let now = to_millis(self.env().clock.now());
        let delivery_id = delivery_id.to_owned();
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    store::chat::insert_delivery(tx, platform, &delivery_id, now).await
                })
            })
            .await
    }

    /// Whether a delivery id was recorded ([`Core::first_delivery`]): for deliveries handled
    /// first and recorded after, so that a process dying in between leaves the redelivery to
    /// be handled (their effect must be idempotent in the core, as a decision is).
    pub async fn delivery_seen(&self, platform: Platform, delivery_id: &str) -> Result<bool> {
        let mut tx = self.store().read().await?;
        let seen = store::chat::delivery_seen(&mut tx, platform, delivery_id).await;
        tx.end_read();
        seen
    }

    /// Forgets chat deliveries older than a day (platforms retry within minutes): a duty of
    /// the worker, so one replica does it.
    pub async fn forget_old_deliveries(&self) -> Result<()> {
        let now = to_millis(self.env().clock.now());
        self.env
            .write(move |tx| {
                Box::pin(async move { store::chat::forget_deliveries(tx, now - 86_400_000).await })
            })
            .await
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
    let actor = ledger::Actor {
        persona: Some(persona.to_owned()),
        kind: Some("human".into()),
        via: format!("{}:{user_id}", platform.as_str()),
        surface: platform.as_str().into(),
    };
    let draft = Draft {
        actor,
        op: "members.chat_link".into(),
        outcome: AuditOutcome::Done,
        detail: json!({ "platform": platform.as_str(), "workspace_id": workspace_id,
                        "user_id": user_id, "proof": proof.as_str(), "relinked": relinked }),
    };
    env.record(tx, tenant, env.clock.now(), draft).await?;
    Ok(())
}
