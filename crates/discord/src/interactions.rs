//! One interaction in, one response out, within Discord's 3 seconds: commands, autocomplete,
//! button clicks and the reject modal. Work that takes longer is answered with a deferral and
//! finished by editing the original response. Buttons carry only an opaque action id; who may
//! do what is decided by the core for the linked persona of the person who clicked, never by
//! Discord's command permissions or by who could see the button.

use crate::Discord;
use crate::embeds;
use crate::options::{self, Asked};
use serde_json::{Value, json};
use serenity::all::{
    ActionRowComponent, CommandInteraction, ComponentInteraction, CreateAutocompleteResponse,
    CreateInteractionResponse, CreateInteractionResponseMessage, GuildId, Interaction,
    ModalInteraction, User,
};
use std::future::Future;
use std::time::{Duration, Instant};
use tenantops_chat::render::{self, ButtonAction, Message};
use tenantops_core::chat::Platform;
use tenantops_core::{Error, Principal, catalogue};
use tokio::sync::oneshot;

/// How long work may take before the answer is deferred (Discord allows 3 s in all).
pub const ANSWER_WITHIN: Duration = Duration::from_millis(2_300);

/// Handles one verified interaction from the HTTP endpoint, answering by `deadline`; a replay is
/// told it was already handled.
pub async fn handle(
    discord: Discord,
    interaction: Interaction,
    deadline: Instant,
) -> CreateInteractionResponse {
    handle_once(discord, interaction, deadline)
        .await
        .unwrap_or_else(|| {
            private(&Message::note(
                "Already handled",
                "This interaction was already handled; nothing was done again.",
            ))
        })
}

/// Handles one verified interaction (HTTP endpoint or gateway); returns the response to send by
/// `deadline` (work still running then is deferred), or `None` when this interaction was
/// handled before.
pub async fn handle_once(
    discord: Discord,
    interaction: Interaction,
    deadline: Instant,
) -> Option<CreateInteractionResponse> {
    let id = match interaction {
        Interaction::Ping(_) => return Some(CreateInteractionResponse::Pong),
        // Suggestions change nothing: no delivery bookkeeping (a write) per keystroke.
        Interaction::Autocomplete(c) => return Some(autocomplete(discord, c, deadline).await),
        Interaction::Command(ref c) => c.id,
        Interaction::Component(ref c) => c.id,
        Interaction::Modal(ref m) => m.id,
        _ => {
            return Some(private(&Message::note(
                "Not supported",
                "tenantops does not handle this.",
            )));
        }
    };
    // Each interaction has its own id: a replay of a signed request (or a gateway event seen
    // again after a resume) is answered without acting again. Double clicks are separate
    // interactions; the core makes the second decision a no-op.
    match discord
        .core
        .first_delivery(Platform::Discord, &format!("interaction:{id}"))
        .await
    {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => return Some(private(&internal(&e))),
    }
    Some(match interaction {
        Interaction::Command(c) => command(discord, c, deadline).await,
        Interaction::Component(c) => component(discord, c, deadline).await,
        Interaction::Modal(m) => modal(discord, m, deadline).await,
        _ => CreateInteractionResponse::Pong,
    })
}

/// An ephemeral answer: only the person who asked sees it.
fn private(m: &Message) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(embeds::response(m, true))
}

fn internal(e: &Error) -> Message {
    tracing::error!(error = %e, "Discord interaction failed");
    render::error(e)
}

/// How a slow answer is delivered.
#[derive(Clone, Copy)]
enum Answer {
    /// A new ephemeral message.
    Private,
    /// Replaces the message the clicked button is on.
    Update,
}

/// Runs `work`; answers with its message when it is done by `deadline` and carries no file,
/// else defers and edits the original response once it is (with a note if the work failed).
async fn within_deadline(
    discord: &Discord,
    deadline: Instant,
    token: String,
    answer: Answer,
    work: impl Future<Output = Message> + Send + 'static,
) -> CreateInteractionResponse {
    let (tx, mut rx) = oneshot::channel::<Message>();
    tokio::spawn(async move {
        let _ = tx.send(work.await);
    });
    let deferred = match answer {
        Answer::Private => CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(true),
        ),
        Answer::Update => CreateInteractionResponse::Acknowledge,
    };
    let failed = || {
        Message::note(
            "Something went wrong",
            "The work stopped before it could answer; check `/approvals mine` or the audit log before retrying.",
        )
    };
    let later = match tokio::time::timeout_at(deadline.into(), &mut rx).await {
        Ok(Ok(message)) if message.attachment.is_none() => {
            return match answer {
                Answer::Private => private(&message),
                Answer::Update => {
                    CreateInteractionResponse::UpdateMessage(embeds::response(&message, true))
                }
            };
        }
        // A file cannot travel in the response itself: defer, then edit with the file.
        Ok(Ok(message)) => Some(message),
        Ok(Err(_)) => return private(&failed()),
        // Still running: whatever it sends from now on is edited in (the receiver is kept, so
        // nothing it sends can be lost between the timeout and this hand-over).
        Err(_) => None,
    };
    let api = discord.api.clone();
    tokio::spawn(async move {
        let message = match later {
            Some(m) => m,
            None => rx.await.unwrap_or_else(|_| failed()),
        };
        if let Err(e) = api.edit_original(&token, &message).await {
            tracing::warn!(error = %e, "could not finish a deferred Discord answer");
        }
    });
    deferred
}

/// The linked persona of `user` in `guild`, or what to tell them.
async fn caller(
    discord: &Discord,
    guild: Option<GuildId>,
    user: &User,
) -> Result<Principal, Message> {
    let Some(guild) = guild else {
        return Err(Message::note(
            "Use tenantops in your server",
            "Direct messages have no tenant: run the command in the Discord server your tenant is connected to.",
        ));
    };
    let guild = guild.to_string();
    match discord.core.chat_workspace(Platform::Discord, &guild).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(how_to_bind(&guild)),
        Err(e) => return Err(internal(&e)),
    }
    discord
        .core
        .authenticate_chat(Platform::Discord, &guild, &user.id.to_string())
        .await
        .map_err(|e| match e {
            Error::Unauthenticated(reason) => Message::note(
                "Not linked",
                format!("{reason}\nTo link this account: `/tenant link code:CODE`."),
            ),
            other => internal(&other),
        })
}

/// What an unbound server is told.
fn how_to_bind(guild: &str) -> Message {
    Message::note(
        "This server isn't connected to tenantops yet",
        format!(
            "A tenant admin gets a code:\n`tenantops call tenant.chat_install_link --input \
             '{{\"platform\":\"discord\",\"approval_channel\":\"CHANNEL_ID\"}}'`\n\
             and someone who can manage this server (id {guild}) runs `/tenant bind code:CODE` \
             here. Then each person links their account with `/tenant link code:CODE`."
        ),
    )
}

/// One operation to run for a person.
struct Call {
    principal: Principal,
    op: &'static str,
    input: Value,
}

/// Runs `call` and answers with its outcome by `deadline`, or defers and edits it in later.
async fn run_within(
    discord: &Discord,
    deadline: Instant,
    token: &str,
    answer: Answer,
    call: Call,
) -> CreateInteractionResponse {
    let d = discord.clone();
    let work = async move { run(&d, &call.principal, call.op, call.input).await };
    within_deadline(discord, deadline, token.to_owned(), answer, work).await
}

/// Runs one operation as `principal` and renders its outcome.
async fn run(discord: &Discord, principal: &Principal, op: &str, input: Value) -> Message {
    let Some(spec) = catalogue::find(op) else {
        return Message::note("Unknown operation", op.to_owned());
    };
    match discord.core.call(principal, op, input).await {
        Ok(outcome) => render::outcome(spec, &outcome),
        Err(e) => render::error(&e),
    }
}

async fn command(
    discord: Discord,
    c: CommandInteraction,
    deadline: Instant,
) -> CreateInteractionResponse {
    let asked = options::parse(&c.data);
    match &asked {
        Ok(Asked::Link(code)) => return link(&discord, &c, code, deadline).await,
        Ok(Asked::Bind(code)) => return bind(&discord, &c, code, deadline).await,
        _ => {}
    }
    let principal = match caller(&discord, c.guild_id, &c.user).await {
        Ok(p) => p,
        Err(m) => return private(&m),
    };
    match asked {
        Err(e) => private(&render::args_error(&e)),
        Ok(Asked::Link(code)) => link(&discord, &c, &code, deadline).await,
        Ok(Asked::Bind(code)) => bind(&discord, &c, &code, deadline).await,
        Ok(Asked::Help { group, sub }) => private(&match sub
            .as_deref()
            .and_then(|s| tenantops_chat::groups::resolve(&group, s))
        {
            Some(op) => tenantops_chat::help::operation(op),
            None => tenantops_chat::help::group(&group),
        }),
        Ok(Asked::PostBilling(channel)) => {
            // The bot posts for the person: only where Discord says they may post themselves
            // (the member's permissions in the chosen channel come signed with the interaction).
            if let Some(chosen) = &channel {
                let may_send = c
                    .data
                    .resolved
                    .channels
                    .iter()
                    .find(|(id, _)| id.to_string() == *chosen)
                    .and_then(|(_, ch)| ch.permissions)
                    .is_some_and(|p| p.send_messages());
                if !may_send {
                    return private(&Message::note(
                        "Not there",
                        format!(
                            "You cannot send messages in <#{chosen}>; pick a channel you can post in."
                        ),
                    ));
                }
            }
            let channel = channel.unwrap_or_else(|| c.channel_id.to_string());
            // `caller` refused interactions without a server.
            let guild = c.guild_id.map(|g| g.to_string()).unwrap_or_default();
            let d = discord.clone();
            within_deadline(
                &discord,
                deadline,
                c.token.clone(),
                Answer::Private,
                async move {
                    match crate::finance::post_summary(&d, &guild, &principal, &channel).await {
                        Ok(()) => Message::note(
                            "Posted",
                            format!("The billing summary is in <#{channel}>."),
                        ),
                        Err(m) => m,
                    }
                },
            )
            .await
        }
        Ok(Asked::Call(op, input)) if op.name == "members.revoke" => {
            let d = discord.clone();
            within_deadline(
                &discord,
                deadline,
                c.token.clone(),
                Answer::Private,
                async move {
                    let persona = input["persona"].as_str().unwrap_or_default();
                    tenantops_chat::views::revoke_preview(&d.core, &principal, persona).await
                },
            )
            .await
        }
        Ok(Asked::Call(op, input)) => {
            let call = Call {
                principal,
                op: op.name,
                input,
            };
            run_within(&discord, deadline, &c.token, Answer::Private, call).await
        }
    }
}

/// The server a `/tenant <sub>` command came from, or the answer that it must come from one.
#[allow(clippy::result_large_err)] // the refusal is the response itself
fn in_server(
    c: &CommandInteraction,
    sub: &str,
    which: &str,
) -> Result<GuildId, CreateInteractionResponse> {
    c.guild_id.ok_or_else(|| {
        let mut title = format!("{sub} in your server");
        title[..1].make_ascii_uppercase();
        private(&Message::note(
            &title,
            format!("Run `/tenant {sub}` in the Discord server {which}."),
        ))
    })
}

/// `/tenant bind code:…`: connects this server to the tenant that issued the code. The bot is
/// shared by every tenant, so the server is bound only from inside it, by someone Discord says
/// can manage it (the member's permissions in the signed interaction).
async fn bind(
    discord: &Discord,
    c: &CommandInteraction,
    code: &str,
    deadline: Instant,
) -> CreateInteractionResponse {
    let guild = match in_server(c, "bind", "you are connecting") {
        Ok(g) => g,
        Err(r) => return r,
    };
    let manages = c
        .member
        .as_ref()
        .and_then(|m| m.permissions)
        .is_some_and(|p| p.manage_guild() || p.administrator());
    if !manages {
        return private(&Message::note(
            "Not allowed",
            "Connecting this server needs Discord's Manage Server permission; ask someone who has it.",
        ));
    }
    let (d, code) = (discord.clone(), code.trim().to_owned());
    within_deadline(discord, deadline, c.token.clone(), Answer::Private, async move {
        let guild = guild.to_string();
        match d
            .core
            .complete_chat_install(Platform::Discord, &code, &guild, None, None)
            .await
        {
            Ok(installed) => Message::note(
                "Connected",
                match &installed.workspace.approval_channel {
                    Some(ch) => format!(
                        "This server is connected to tenantops; approval requests go to <#{ch}>. \
                         Each person links their account with `/tenant link code:CODE`."
                    ),
                    None => "This server is connected to tenantops. Each person links their \
                             account with `/tenant link code:CODE`."
                        .to_owned(),
                },
            ),
            Err(e) => render::error(&e),
        }
    })
    .await
}

/// `/tenant link code:…`: links the caller's Discord account to the persona the code was made
/// for (by immutable user id).
async fn link(
    discord: &Discord,
    c: &CommandInteraction,
    code: &str,
    deadline: Instant,
) -> CreateInteractionResponse {
    let guild = match in_server(c, "link", "your tenant is connected to") {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (d, user, code) = (discord.clone(), c.user.id.to_string(), code.to_owned());
    within_deadline(
        discord,
        deadline,
        c.token.clone(),
        Answer::Private,
        async move {
            match d
                .core
                .link_chat(Platform::Discord, &guild.to_string(), &user, &code)
                .await
            {
                Ok(handle) => Message::note(
                    "Linked",
                    format!("This Discord account now acts as **{handle}**. Try `/tenant whoami`."),
                ),
                Err(e) => render::error(&e),
            }
        },
    )
    .await
}

/// Autocomplete cannot be deferred: past the deadline it offers nothing rather than fail.
async fn autocomplete(
    discord: Discord,
    c: CommandInteraction,
    deadline: Instant,
) -> CreateInteractionResponse {
    let empty = CreateInteractionResponse::Autocomplete(CreateAutocompleteResponse::new());
    let Some((option, typed)) = crate::autocomplete::focused(&c.data) else {
        return empty;
    };
    let Ok(principal) = caller(&discord, c.guild_id, &c.user).await else {
        return empty;
    };
    let Ok(choices) = tokio::time::timeout_at(
        deadline.into(),
        crate::autocomplete::choices(&discord.core, &principal, &option, &typed),
    )
    .await
    else {
        return empty;
    };
    CreateInteractionResponse::Autocomplete(CreateAutocompleteResponse::new().set_choices(choices))
}

async fn component(
    discord: Discord,
    c: ComponentInteraction,
    deadline: Instant,
) -> CreateInteractionResponse {
    let Some(action) = ButtonAction::decode(&c.data.custom_id) else {
        return private(&Message::note(
            "Unknown button",
            "This button is no longer in use.",
        ));
    };
    let principal = match caller(&discord, c.guild_id, &c.user).await {
        Ok(p) => p,
        Err(m) => return private(&Message::note("Not allowed", m.plain_text())),
    };
    match action {
        ButtonAction::Approve { request_id } => {
            let input = json!({ "request_id": request_id, "decision": "approve" });
            let call = Call {
                principal,
                op: "approvals.decide",
                input,
            };
            run_within(&discord, deadline, &c.token, Answer::Private, call).await
        }
        ButtonAction::Reject { request_id } => {
            let summary = discord
                .core
                .request_view(principal.tenant(), &request_id)
                .await
                .map(|v| v.summary)
                .unwrap_or_else(|_| request_id.clone());
            CreateInteractionResponse::Modal(embeds::reject_modal(&c.data.custom_id, &summary))
        }
        ButtonAction::ConfirmRevoke { persona } => {
            let input = json!({ "persona": persona });
            let call = Call {
                principal,
                op: "members.revoke",
                input,
            };
            run_within(&discord, deadline, &c.token, Answer::Update, call).await
        }
        ButtonAction::Cancel => CreateInteractionResponse::UpdateMessage(embeds::response(
            &Message::note("Cancelled", "Nothing was done."),
            true,
        )),
    }
}

/// The reject modal's submission: the comment is the rejection's reason.
async fn modal(
    discord: Discord,
    m: ModalInteraction,
    deadline: Instant,
) -> CreateInteractionResponse {
    let Some(ButtonAction::Reject { request_id }) = ButtonAction::decode(&m.data.custom_id) else {
        return private(&Message::note(
            "Unknown form",
            "This form is no longer in use.",
        ));
    };
    let comment = m
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|c| match c {
            ActionRowComponent::InputText(t) if t.custom_id == embeds::COMMENT_FIELD => {
                t.value.clone()
            }
            _ => None,
        })
        .unwrap_or_default();
    if comment.trim().is_empty() {
        return private(&Message::note(
            "Say why",
            "A rejection needs a comment, so the requester knows what to change.",
        ));
    }
    let principal = match caller(&discord, m.guild_id, &m.user).await {
        Ok(p) => p,
        Err(msg) => return private(&msg),
    };
    let input = json!({ "request_id": request_id, "decision": "reject", "comment": comment });
    let call = Call {
        principal,
        op: "approvals.decide",
        input,
    };
    run_within(&discord, deadline, &m.token, Answer::Private, call).await
}
