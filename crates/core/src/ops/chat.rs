//! Chat connections (guide: connectors): binding a Slack workspace or Discord guild to the tenant,
//! and linking a person's chat account to their persona with a one-time code.

use super::ms_to_rfc3339;
use crate::chat::{self, LINK_CODE_TTL, Platform, Workspace};
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::hints::{Hints, Use};
use crate::members::{check_authority, find_persona};
use crate::notify::Notification;
use crate::operation::{OpCtx, Operation, Risk};
use crate::principal::PersonaKind;
use crate::proof::Proof;
use crate::refs::PersonaRef;
use crate::scope::Scope;
use crate::store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Input of `tenant.chat_bind`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindInput {
    /// `slack` or `discord`.
    pub platform: Platform,
    /// The Slack team id (T…) or Discord guild id.
    pub workspace_id: String,
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The channel id approval requests are posted to (e.g. C0123ABCD).
    #[serde(default)]
    pub approval_channel: Option<String>,
    /// The channel id the scheduled billing digest is posted to.
    #[serde(default)]
    pub digest_channel: Option<String>,
    /// How often the digest is posted (default 7d).
    #[serde(default)]
    pub digest_every: Option<String>,
}

fn check_id(field: &str, v: &str) -> Result<()> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::bad_input(
            field,
            "use the platform's id (letters and digits, e.g. T0123ABCD or C0123ABCD)",
        ));
    }
    Ok(())
}

/// `tenant.chat_bind`.
pub struct ChatBind;

impl Operation for ChatBind {
    const NAME: &'static str = "tenant.chat_bind";
    const SUMMARY: &'static str = "Connect a Slack workspace or Discord server to this tenant";
    const HELP: &'static str = "Sets where approval requests and the billing digest are posted in a Slack \
        workspace or Discord server already connected to this tenant. Connecting one needs proof that it is \
        yours: tenant.chat_install_link, then the platform's OAuth install or its bind command typed inside \
        the workspace by someone the platform says manages it. People then link their own chat accounts with a code from members.chat_link_code.";
    const SCOPE: Option<Scope> = Some(Scope::CONNECTORS_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"platform":"slack","workspace_id":"T0123ABCD","name":"Acme","approval_channel":"C0APPROVE","digest_channel":"C0FINANCE","digest_every":"7d"}"#,
    ];
    type Input = BindInput;
    type Output = Workspace;

    async fn execute(ctx: &mut OpCtx, input: BindInput) -> Result<Workspace> {
        check_id("workspace_id", &input.workspace_id)?;
        for (field, v) in [
            ("approval_channel", &input.approval_channel),
            ("digest_channel", &input.digest_channel),
        ] {
            if let Some(v) = v {
                check_id(field, v)?;
            }
        }
        let every = match &input.digest_every {
            Some(text) => {
                let d = humantime::parse_duration(text).map_err(|e| {
                    Error::bad_input("digest_every", format!("{e}; e.g. 7d or 24h"))
                })?;
                if d < std::time::Duration::from_secs(3600) {
                    return Err(Error::bad_input("digest_every", "at least 1h"));
                }
                Some(d.as_millis() as i64)
            }
            None if input.digest_channel.is_some() => Some(7 * 86_400_000),
            None => None,
        };
        let tenant = ctx.tenant().clone();
        let owner = store::chat::owner(&mut ctx.tx, input.platform, &input.workspace_id).await?;
        if owner.as_ref().is_some_and(|o| *o != tenant) {
            return Err(Error::Conflict(
                "this workspace is bound to another tenant; it must be unbound there first".into(),
            ));
        }
        // A workspace is bound only with proof of control — Slack's OAuth install, or a code
        // typed inside it by one of its admins; a Discord server from inside it by someone who
        // can manage it. Naming a team or guild id proves nothing, so this only updates a
        // workspace already bound here.
        if owner.is_none() {
            return Err(Error::bad_input(
                "workspace_id",
                "a workspace is connected only with proof that it is yours: get a one-time code \
                 with tenant.chat_install_link and use the `path` or `command` it returns (the \
                 platform's OAuth install, or a command typed inside the workspace by someone who \
                 manages it); then this updates its channels",
            ));
        }
        store::chat::update_settings(
            &mut ctx.tx,
            &tenant,
            input.platform,
            &input.workspace_id,
            &store::chat::Settings {
                name: input.name.as_deref(),
                approval_channel: input.approval_channel.as_deref(),
                digest_channel: input.digest_channel.as_deref(),
                digest_every_ms: every,
                bound_by: ctx.principal.persona().as_str(),
            },
        )
        .await?;
        Ok(Workspace {
            platform: input.platform,
            workspace_id: input.workspace_id,
            tenant_id: tenant,
            name: input.name,
            approval_channel: input.approval_channel,
            digest_channel: input.digest_channel,
            digest_every_ms: every,
        })
    }
}

/// Input naming a workspace.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRef {
    /// `slack` or `discord`.
    pub platform: Platform,
    /// The Slack team id or Discord guild id.
    pub workspace_id: String,
}

/// Output of `tenant.chat_unbind`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Unbound {
    /// The workspace.
    pub workspace_id: String,
    /// Chat accounts unlinked with it.
    pub unlinked: u64,
}

/// `tenant.chat_unbind`.
pub struct ChatUnbind;

impl Operation for ChatUnbind {
    const NAME: &'static str = "tenant.chat_unbind";
    const SUMMARY: &'static str = "Disconnect a Slack workspace or Discord server";
    const HELP: &'static str = "Unbinds a workspace from this tenant and unlinks every chat account in it: its \
        commands and buttons stop working at once.";
    const SCOPE: Option<Scope> = Some(Scope::CONNECTORS_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] =
        &[r#"{"platform":"slack","workspace_id":"T0123ABCD"}"#];
    type Input = WorkspaceRef;
    type Output = Unbound;

    async fn execute(ctx: &mut OpCtx, input: WorkspaceRef) -> Result<Unbound> {
        let tenant = ctx.tenant().clone();
        let removed = store::chat::delete_workspace(
            &mut ctx.tx,
            &tenant,
            input.platform,
            &input.workspace_id,
        )
        .await?;
        if !removed {
            return Err(Error::NotFound(format!(
                "workspace_id: `{}` is not bound to this tenant",
                input.workspace_id
            )));
        }
        let unlinked = store::chat::delete_workspace_links(
            &mut ctx.tx,
            &tenant,
            input.platform,
            &input.workspace_id,
        )
        .await?;
        Ok(Unbound {
            workspace_id: input.workspace_id,
            unlinked,
        })
    }
}

/// A linked chat account.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LinkView {
    /// The platform.
    pub platform: String,
    /// The workspace.
    pub workspace_id: String,
    /// The immutable platform user id.
    pub user_id: String,
    /// The persona.
    pub persona: String,
    /// Linked at.
    pub linked_at: String,
}

/// Output of `tenant.chat_list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChatList {
    /// Bound workspaces.
    pub workspaces: Vec<Workspace>,
    /// Linked chat accounts.
    pub links: Vec<LinkView>,
}

/// Input without fields.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `tenant.chat_list`.
pub struct ChatListOp;

impl Operation for ChatListOp {
    const NAME: &'static str = "tenant.chat_list";
    const SUMMARY: &'static str = "Connected chat workspaces and linked chat accounts";
    const HELP: &'static str = "Lists the Slack workspaces and Discord servers bound to this tenant and which chat \
        accounts act as which persona.";
    const SCOPE: Option<Scope> = Some(Scope::CONNECTORS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = ChatList;

    async fn execute(ctx: &mut OpCtx, _input: NoInput) -> Result<ChatList> {
        let tenant = ctx.tenant().clone();
        let workspaces = chat::workspaces_on(&mut ctx.tx, &tenant).await?;
        let links = store::chat::listed_links(&mut ctx.tx, &tenant)
            .await?
            .into_iter()
            .map(|l| LinkView {
                platform: l.platform.as_str().to_owned(),
                workspace_id: l.workspace_id,
                user_id: l.user_id,
                persona: l.handle,
                linked_at: ms_to_rfc3339(l.linked_at),
            })
            .collect();
        Ok(ChatList { workspaces, links })
    }
}

/// Input of `members.chat_link_code`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkCodeInput {
    /// Must be yourself when given (handle or id): a code reaches only its own person.
    #[serde(default)]
    pub persona: Option<PersonaRef>,
}

/// Output of `members.chat_link_code`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LinkCode {
    /// The persona the code links to.
    pub persona: String,
    /// The one-time code; shown once.
    pub code: String,
    /// When it stops working.
    pub expires_at: String,
    /// Whether a chat account linked with it counts for approval decisions (`own`: you asked
    /// from your own sign-in or a key you issued yourself) or only acts (`delegated`).
    pub proof: String,
    /// What to do with it.
    pub how: String,
}

/// `members.chat_link_code`.
pub struct ChatLinkCode;

impl Operation for ChatLinkCode {
    const NAME: &'static str = "members.chat_link_code";
    const SUMMARY: &'static str = "A one-time code that links your chat account to your persona";
    const HELP: &'static str = "Issues a code (valid 15 minutes, usable once) that you type in Slack or \
        Discord with its link command (the output's `how`); from then on that chat account (by its immutable user id, never its \
        name) acts as you. Only for yourself: a chat account acts as a person only on that person's own \
        proof, so nobody can ask for a colleague's code. A link counts for approval decisions when the code \
        was asked for from your own sign-in (a console token, or a key you issued yourself) and once it is \
        older than the tenant's minimum link age (default 24 h).";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    const SECRET_OUTPUT: bool = true;
    type Input = LinkCodeInput;
    type Output = LinkCode;

    async fn execute(ctx: &mut OpCtx, input: LinkCodeInput) -> Result<LinkCode> {
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona().clone();
        if let Some(p) = &input.persona
            && p.as_str() != me.as_str()
        {
            return Err(Error::denied(
                "a link code reaches only its own person: they ask for it themselves, signed in \
                 (members.chat_link_code), or find it on their invite page; nobody can link a \
                 chat account for someone else",
            ));
        }
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", me.as_str()).await?;
        if persona.kind != PersonaKind::Human
            || persona.status != crate::principal::PersonaStatus::Active
        {
            return Err(Error::bad_input(
                "persona",
                "only an active human persona can be linked to a chat account",
            ));
        }
        let proof = match crate::proof::of(&mut ctx.tx, &ctx.principal).await? {
            Proof::Own => Proof::Own,
            _ => Proof::Delegated,
        };
        let code = chat::new_code();
        let expires = ctx.now + LINK_CODE_TTL;
        store::chat::insert_link_code(
            &mut ctx.tx,
            &tenant,
            &chat::code_digest(ctx.env.pepper(), &code),
            persona.id.as_str(),
            to_millis(expires),
            proof,
        )
        .await?;
        ctx.audit("persona", persona.id.as_str());
        ctx.audit("proof", proof.as_str());
        Ok(LinkCode {
            persona: persona.handle,
            how: link_how(&ctx.env.hints, &code),
            code,
            expires_at: ms_to_rfc3339(to_millis(expires)),
            proof: proof.as_str().into(),
        })
    }
}

/// Input of `members.chat_unlink`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkInput {
    /// Whose chat accounts to unlink (handle or id); default: yourself. Unlinking someone else
    /// needs members:write and authority over them, and they are told.
    #[serde(default)]
    pub persona: Option<PersonaRef>,
    /// Only accounts on this platform.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Only this chat user id (e.g. U0123ABCD).
    #[serde(default)]
    pub user_id: Option<String>,
}

/// One unlinked chat account.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UnlinkedAccount {
    /// The platform.
    pub platform: String,
    /// The workspace.
    pub workspace_id: String,
    /// The platform user id.
    pub user_id: String,
}

/// Output of `members.chat_unlink`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Unlinked {
    /// The persona.
    pub persona: String,
    /// The accounts that no longer act as it.
    pub unlinked: Vec<UnlinkedAccount>,
}

/// `members.chat_unlink`.
pub struct ChatUnlink;

impl Operation for ChatUnlink {
    const NAME: &'static str = "members.chat_unlink";
    const SUMMARY: &'static str = "Unlink chat accounts from a persona";
    const HELP: &'static str = "Unlinks chat accounts from a persona: yours (no scope needed), or — with \
        members:write and authority over them — someone else's, who is told in chat. A link is never \
        re-pointed to another persona: unlink it, and its person links again with their own code.";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{}"#,
        r#"{"persona":"jane","platform":"slack","user_id":"U0123ABCD"}"#,
    ];
    type Input = UnlinkInput;
    type Output = Unlinked;

    async fn execute(ctx: &mut OpCtx, input: UnlinkInput) -> Result<Unlinked> {
        let tenant = ctx.tenant().clone();
        let me = ctx.principal.persona().clone();
        let target = input
            .persona
            .as_ref()
            .map_or(me.as_str(), PersonaRef::as_str)
            .to_owned();
        let persona = find_persona(&mut ctx.tx, &tenant, "persona", &target).await?;
        let someone_else = persona.id != me;
        if someone_else {
            if !ctx.principal.has(Scope::MEMBERS_WRITE) {
                return Err(Error::denied(
                    "unlinking someone else's chat accounts needs members:write",
                ));
            }
            check_authority(&ctx.principal, &persona)?;
        }
        let unlinked: Vec<UnlinkedAccount> = store::chat::delete_links(
            &mut ctx.tx,
            &tenant,
            persona.id.as_str(),
            input.platform,
            input.user_id.as_deref(),
        )
        .await?
        .into_iter()
        .map(|(platform, workspace_id, user_id)| UnlinkedAccount {
            platform: platform.as_str().to_owned(),
            workspace_id,
            user_id,
        })
        .collect();
        ctx.audit("persona", persona.id.as_str());
        ctx.audit(
            "unlinked",
            unlinked
                .iter()
                .map(|u| format!("{}:{}:{}", u.platform, u.workspace_id, u.user_id))
                .collect::<Vec<_>>(),
        );
        if someone_else {
            let by = find_persona(&mut ctx.tx, &tenant, "persona", me.as_str()).await?;
            for u in &unlinked {
                ctx.notify(Notification::ChatUnlinked {
                    tenant: tenant.clone(),
                    persona: persona.id.to_string(),
                    handle: persona.handle.clone(),
                    platform: u.platform.clone(),
                    workspace_id: u.workspace_id.clone(),
                    user_id: u.user_id.clone(),
                    by: me.to_string(),
                    by_handle: by.handle.clone(),
                });
            }
        }
        Ok(Unlinked {
            persona: persona.handle,
            unlinked,
        })
    }
}

/// Input of `tenant.chat_install_link`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallInput {
    /// `slack` (an OAuth install link) or `discord` (a code to type in the server).
    pub platform: Platform,
    /// The channel id approval requests will be posted to once installed.
    #[serde(default)]
    pub approval_channel: Option<String>,
}

/// Output of `tenant.chat_install_link`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InstallLink {
    /// The one-time install state; shown once.
    pub state: String,
    /// Where the platform has an install flow: the path to open on the tenantops server (prefix
    /// it with its public URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The command to type inside the workspace, by someone who manages it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When it stops working.
    pub expires_at: String,
}

/// How long an install link works.
pub const INSTALL_TTL: chrono::Duration = chrono::Duration::minutes(30);

/// `tenant.chat_install_link`.
pub struct ChatInstallLink;

impl Operation for ChatInstallLink {
    const NAME: &'static str = "tenant.chat_install_link";
    const SUMMARY: &'static str =
        "A one-time link that connects a Slack workspace or Discord server to this tenant";
    const HELP: &'static str = "Issues a one-time install state (valid 30 minutes) that binds a workspace to this \
        tenant only with proof that it is the tenant's: the returned `path` (Slack) walks a workspace admin \
        through the platform's OAuth consent, after which the bot token is stored encrypted; the returned \
        `command` is typed inside the workspace by someone the platform says manages it (a Slack workspace \
        admin, a Discord member with Manage Server).";
    const SCOPE: Option<Scope> = Some(Scope::CONNECTORS_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"platform":"slack","approval_channel":"C0APPROVE"}"#,
        r#"{"platform":"discord","approval_channel":"1260000000000000001"}"#,
    ];
    const SECRET_OUTPUT: bool = true;
    type Input = InstallInput;
    type Output = InstallLink;

    async fn execute(ctx: &mut OpCtx, input: InstallInput) -> Result<InstallLink> {
        if let Some(c) = &input.approval_channel {
            check_id("approval_channel", c)?;
        }
        let state = chat::new_install_state();
        let expires = ctx.now + INSTALL_TTL;
        let tenant = ctx.tenant().clone();
        store::chat::insert_install_state(
            &mut ctx.tx,
            &store::chat::NewInstallState {
                digest: &chat::code_digest(ctx.env.pepper(), &state),
                tenant: &tenant,
                persona: ctx.principal.persona().as_str(),
                platform: input.platform,
                approval_channel: input.approval_channel.as_deref(),
                expires_at: to_millis(expires),
            },
        )
        .await?;
        // The surfaces registered how their code is used; the core only knows the code.
        let path = ctx
            .env
            .hints
            .render(input.platform, Use::InstallPath, &state);
        let command = ctx
            .env
            .hints
            .render(input.platform, Use::BindCommand, &state);
        Ok(InstallLink {
            path,
            command,
            state,
            expires_at: ms_to_rfc3339(to_millis(expires)),
        })
    }
}

/// What a person does with a link code, per surface this binary serves.
fn link_how(hints: &Hints, code: &str) -> String {
    let ways: Vec<String> = hints
        .all(Use::LinkCommand, code)
        .into_iter()
        .map(|(p, cmd)| format!("in {}: {cmd}", p.display_name()))
        .collect();
    if ways.is_empty() {
        format!("Type the code {code} where your chat surface asks for a link code")
    } else {
        format!("Type it {}", ways.join("; or "))
    }
}
