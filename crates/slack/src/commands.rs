//! Slash commands: `/billing`, `/members`, `/keys`, `/approvals`, `/tenant` (and any later group),
//! parsed against the catalogue by `tenantops-chat` and run as the linked persona. Answers come
//! back within Slack's 3 seconds; what takes longer answers through `response_url`.

use crate::Slack;
use crate::api::Upload;
use crate::blocks;
use serde_json::Value;
use slack_morphism::prelude::*;
use std::time::Duration;
use tenantops_chat::args::{self, Parsed};
use tenantops_chat::render::{self, Message};
use tenantops_core::chat::Platform;
use tenantops_core::{Error, OpSpec, Principal};
use tokio::sync::oneshot;

/// How long a command may take before it is acknowledged and answered later.
const ANSWER_WITHIN: Duration = Duration::from_millis(2_300);

/// The immediate answer to a command.
pub struct Reply {
    /// What to show.
    pub message: Message,
    /// Whether the channel sees it (default: only the person who typed the command).
    pub in_channel: bool,
}

impl Reply {
    fn private(message: Message) -> Self {
        Self {
            message,
            in_channel: false,
        }
    }

    fn text(title: &str, text: impl Into<String>) -> Self {
        Self::private(Message::note(title, text))
    }
}

/// What an unbound workspace is told.
fn how_to_bind() -> Reply {
    Reply::text(
        "This workspace isn't connected to tenantops yet",
        "A tenant admin gets a one-time code with `tenantops call tenant.chat_install_link --input \
         '{\"platform\":\"slack\",\"approval_channel\":\"C…\"}'` and then either opens its install \
         link (Slack's OAuth consent) or has an admin of this workspace type `/tenant bind CODE` here. \
         Then each person links their own account with `/tenant link CODE`.",
    )
}

/// `/tenant bind CODE`: binds this workspace to the tenant whose admin issued the code, typed by
/// one of the workspace's own admins — Slack says so (`users.info`), which proves the workspace
/// is theirs. Naming a team id never binds it.
async fn bind(slack: &Slack, team: &str, user: &str, code: &str) -> Reply {
    if code.is_empty() {
        return Reply::text(
            "Connect this workspace",
            "Usage: `/tenant bind CODE` — a tenant admin gets the code with \
             `tenant.chat_install_link {\"platform\":\"slack\"}`; an admin of this workspace types it.",
        );
    }
    match slack.api.is_workspace_admin(user, team).await {
        Ok(true) => {}
        Ok(false) => {
            return Reply::text(
                "Only a workspace admin can connect it",
                "Slack says you are not an admin or owner of this workspace: ask one of them to \
                 type `/tenant bind CODE`.",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the binder's Slack role");
            return Reply::text(
                "Cannot check your Slack role",
                "tenantops could not ask Slack whether you administer this workspace; try again, \
                 or use the install link instead.",
            );
        }
    }
    match slack
        .core
        .complete_chat_install(Platform::Slack, code, team, None, None)
        .await
    {
        Ok(installed) => Reply::text(
            "Connected",
            format!(
                "This workspace is now connected to tenantops{}. Each person links their own \
                 account with `/tenant link CODE`.",
                installed
                    .workspace
                    .approval_channel
                    .as_deref()
                    .map(|c| format!("; approval requests go to <#{c}>"))
                    .unwrap_or_default()
            ),
        ),
        Err(e) => Reply::private(render::error(&e)),
    }
}

/// Handles one command.
pub async fn handle(slack: Slack, cmd: SlackCommandEvent) -> Reply {
    let group = cmd.command.to_string().trim_start_matches('/').to_owned();
    // Slack sends `&`, `<` and `>` typed by the user as HTML entities.
    let text = cmd
        .text
        .clone()
        .unwrap_or_default()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let team = cmd.team_id.to_string();
    let user = cmd.user_id.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    if group == "tenant" && first == "bind" {
        let code = words.next().unwrap_or_default();
        return bind(&slack, &team, &user, code).await;
    }
    match slack.core.chat_workspace(Platform::Slack, &team).await {
        Ok(Some(_)) => {}
        Ok(None) => return how_to_bind(),
        Err(e) => return internal(&e),
    }
    if group == "tenant" && first == "link" {
        let code = words.next().unwrap_or_default();
        if code.is_empty() {
            return Reply::text(
                "Link your account",
                "Usage: `/tenant link CODE` — ask for your own code with `members.chat_link_code`, \
                 signed in as yourself (console or CLI).",
            );
        }
        return match slack
            .core
            .link_chat(Platform::Slack, &team, &user, code)
            .await
        {
            Ok(handle) => Reply::text(
                "Linked",
                format!("This Slack account now acts as *{handle}*. Try `/tenant whoami`."),
            ),
            Err(e) => Reply::private(render::error(&e)),
        };
    }
    let principal = match slack
        .core
        .authenticate_chat(Platform::Slack, &team, &user)
        .await
    {
        Ok(p) => p,
        Err(Error::Unauthenticated(reason)) => {
            return Reply::text(
                "Not linked",
                format!("{reason}\nTo link this account: `/tenant link CODE`."),
            );
        }
        Err(e) => return internal(&e),
    };
    if group == "billing" && first == "post" {
        let channel = words.next().unwrap_or_default().to_owned();
        return post_billing(slack, principal, cmd, channel).await;
    }
    match args::parse(&group, &text) {
        Err(e) => Reply::text("Check the command", e.to_string()),
        Ok(Parsed::Help { group, op }) => Reply::private(match op {
            Some(op) => tenantops_chat::help::operation(op),
            None => tenantops_chat::help::group(&group),
        }),
        Ok(Parsed::Call { op, input }) if op.name == "members.revoke" => {
            revoke_preview(&slack, &principal, input).await
        }
        Ok(Parsed::Call { op, input }) => {
            run(slack, principal, op, input, team, cmd.response_url).await
        }
    }
}

fn internal(e: &Error) -> Reply {
    tracing::error!(error = %e, "Slack command failed");
    Reply::private(render::error(e))
}

/// Runs `op`; answers directly when it is quick, else acknowledges and answers later.
async fn run(
    slack: Slack,
    principal: Principal,
    op: &'static OpSpec,
    input: Value,
    team: String,
    response_url: SlackResponseUrl,
) -> Reply {
    let (tx, rx) = oneshot::channel();
    let worker = slack.clone();
    tokio::spawn(async move {
        let outcome = worker.core.call(&principal, op.name, input).await;
        let message = match &outcome {
            Ok(o) => render::outcome(op, o),
            Err(e) => render::error(e),
        };
        deliver_attachment(&worker, &team, &principal, &message).await;
        if let Err(Reply { message, .. }) = tx.send(Reply {
            message,
            in_channel: false,
        }) {
            let content = blocks::content(&message);
            if let Err(e) = worker.api.respond(&response_url, content, false).await {
                tracing::warn!(error = %e, "could not answer a slow Slack command");
            }
        }
    });
    match tokio::time::timeout(ANSWER_WITHIN, rx).await {
        Ok(Ok(reply)) => reply,
        _ => Reply::text(
            "Working on it…",
            format!("`{}` is running; the answer follows here.", op.name),
        ),
    }
}

/// Sends a rendered file (chart, invoice) to the person, in a direct message.
async fn deliver_attachment(slack: &Slack, team: &str, principal: &Principal, message: &Message) {
    let api = slack.api_for(team).await;
    let Some(file) = &message.attachment else {
        return;
    };
    let tenantops_core::Via::Chat { user, .. } = principal.via() else {
        return;
    };
    let channel = match api.dm_channel(user).await {
        Ok(c) => c,
        Err(e) => return tracing::warn!(error = %e, "could not open a DM for a file"),
    };
    let upload = Upload {
        filename: file.filename.clone(),
        content_type: file.content_type.clone(),
        bytes: file.bytes.clone(),
        title: message.title.clone(),
    };
    if let Err(e) = api.upload(&channel, upload).await {
        tracing::warn!(error = %e, "could not upload a file to Slack");
    }
}

/// `/members revoke <persona>`: what will be cut off, with one confirm button.
async fn revoke_preview(slack: &Slack, principal: &Principal, input: Value) -> Reply {
    let persona = input["persona"].as_str().unwrap_or_default();
    Reply::private(tenantops_chat::views::revoke_preview(&slack.core, principal, persona).await)
}

/// `/billing post <#channel>`: the summary and the chart, posted for everyone in the channel.
async fn post_billing(
    slack: Slack,
    principal: Principal,
    cmd: SlackCommandEvent,
    channel: String,
) -> Reply {
    let Some(channel) =
        channel_id(&channel).or_else(|| (channel.is_empty()).then(|| cmd.channel_id.to_string()))
    else {
        return Reply::text(
            "Which channel?",
            "Pick it with # so Slack sends its id, e.g. `/billing post #finance`.",
        );
    };
    let (tx, rx) = oneshot::channel();
    let worker = slack.clone();
    let target = channel.clone();
    tokio::spawn(async move {
        let team = cmd.team_id.to_string();
        let result = crate::digest::post_summary(&worker, &team, &principal, &target).await;
        let reply = match result {
            Ok(()) => Reply::text("Posted", format!("The billing summary is in <#{target}>.")),
            Err(message) => Reply::private(message),
        };
        if let Err(Reply { message, .. }) = tx.send(reply) {
            let _ = worker
                .api
                .respond(&cmd.response_url, blocks::content(&message), false)
                .await;
        }
    });
    match tokio::time::timeout(ANSWER_WITHIN, rx).await {
        Ok(Ok(reply)) => reply,
        _ => Reply::text(
            "Posting…",
            format!("The summary is on its way to <#{channel}>."),
        ),
    }
}

/// A channel id from `<#C123|name>`, `#C123` or `C123`.
pub fn channel_id(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix("<#")
        .map(|r| r.split(['|', '>']).next().unwrap_or_default())
        .unwrap_or(t);
    let t = t.trim_start_matches('#');
    (!t.is_empty()
        && t.len() <= 24
        && (t.starts_with('C') || t.starts_with('G') || t.starts_with('D'))
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    .then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_from_escaped_mentions() {
        assert_eq!(
            channel_id("<#C0123ABC|finance>").as_deref(),
            Some("C0123ABC")
        );
        assert_eq!(channel_id("C0123ABC").as_deref(), Some("C0123ABC"));
        assert_eq!(channel_id("#finance"), None);
        assert_eq!(channel_id("<@U123>"), None);
    }
}
