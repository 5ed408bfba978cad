//! Approval requests in Slack: posted to each bound workspace's approval channel with Approve /
//! Reject buttons, edited in place (by stored channel and `ts`) as decisions arrive, the outcome
//! posted in the message's thread, and the requester told by direct message.
//!
//! The core's notification port is synchronous; [`SlackNotifier`] hands notifications to a
//! worker task that talks to Slack, so a slow Slack never slows an operation.

use crate::{Slack, blocks};
use tenantops_chat::render;
use tenantops_core::chat::{Platform, PostedMessage, rendered_key};
use tenantops_core::ids::TenantId;
use tenantops_core::notify::{Notification, Notifier};
use tokio::sync::mpsc;

/// The notifier to register with the core; its receiver feeds [`spawn_worker`].
pub struct SlackNotifier(mpsc::UnboundedSender<Notification>);

impl Notifier for SlackNotifier {
    fn notify(&self, notification: &Notification) {
        let _ = self.0.send(notification.clone());
    }
}

/// A notifier and the queue it fills.
pub fn notifier() -> (SlackNotifier, mpsc::UnboundedReceiver<Notification>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (SlackNotifier(tx), rx)
}

fn request_of(n: &Notification) -> Option<(&TenantId, &str)> {
    match n {
        Notification::Requested {
            tenant, request_id, ..
        }
        | Notification::Decided {
            tenant, request_id, ..
        }
        | Notification::Escalated {
            tenant, request_id, ..
        }
        | Notification::Expired { tenant, request_id }
        | Notification::Cancelled {
            tenant, request_id, ..
        }
        | Notification::BreakGlass {
            tenant, request_id, ..
        }
        | Notification::Executed {
            tenant, request_id, ..
        }
        | Notification::Failed {
            tenant, request_id, ..
        } => Some((tenant, request_id)),
        _ => None,
    }
}

/// Keeps approval messages in Slack in step with their requests until the queue closes: at once
/// for the core's notifications in this process, and every `every` for changes made by other
/// processes sharing the database (a decision in the CLI, an agent's request over MCP stdio).
pub fn spawn_worker(
    slack: Slack,
    mut rx: mpsc::UnboundedReceiver<Notification>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv() => {
                    let Some(n) = n else { return };
                    if let Some((tenant, request_id)) = request_of(&n)
                        && let Err(e) = sync(&slack, tenant, request_id).await
                    {
                        tracing::warn!(error = %e, "Slack approval message not updated");
                    }
                }
                _ = tick.tick() => {
                    let due = match slack.core.chat_unsynced(Platform::Slack, 50).await {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot list approval messages to update");
                            continue;
                        }
                    };
                    for (tenant, request_id) in due {
                        if let Err(e) = sync(&slack, &tenant, &request_id).await {
                            tracing::warn!(error = %e, "Slack approval message not updated");
                        }
                    }
                }
            }
        }
    })
}

fn is_final(state: &str) -> bool {
    matches!(
        state,
        "succeeded" | "failed" | "rejected" | "expired" | "cancelled"
    )
}

/// Brings one request's Slack messages up to date: posts it where it is missing (while
/// pending), edits it in place where it shows an older state, says what happened in its thread,
/// and tells the requester directly once it is final.
async fn sync(slack: &Slack, tenant: &TenantId, request_id: &str) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let view = slack
        .core
        .request_view(tenant, request_id)
        .await
        .map_err(|e| err(&e))?;
    let key = rendered_key(&view);
    let view_json = serde_json::to_value(&view).map_err(|e| err(&e))?;
    let content = blocks::content(&render::approval_request(&view_json));
    let line = render::approval_status(&view_json);
    let posted = slack
        .core
        .chat_messages(tenant, request_id)
        .await
        .map_err(|e| err(&e))?;
    let workspaces = slack
        .core
        .chat_workspaces_of(tenant, Platform::Slack)
        .await
        .map_err(|e| err(&e))?;
    let mut became_final = false;
    for ws in workspaces {
        let Some(channel) = ws.approval_channel.as_deref() else {
            continue;
        };
        let api = slack.api_for(&ws.workspace_id).await;
        match posted
            .iter()
            .find(|m| m.platform == "slack" && m.workspace_id == ws.workspace_id)
        {
            None if view.state == "pending" => {
                let ts = api
                    .post(channel, content.clone(), None)
                    .await
                    .map_err(|e| err(&e))?;
                let m = PostedMessage {
                    platform: "slack".into(),
                    workspace_id: ws.workspace_id.clone(),
                    channel: channel.to_owned(),
                    message_id: ts,
                    rendered: Some(key.clone()),
                };
                slack
                    .core
                    .record_chat_message(tenant, request_id, &m)
                    .await
                    .map_err(|e| err(&e))?;
            }
            None => {}
            Some(m) if m.rendered.as_deref() == Some(key.as_str()) => {}
            Some(m) => {
                api.update(&m.channel, &m.message_id, content.clone())
                    .await
                    .map_err(|e| err(&e))?;
                api.post(&m.channel, blocks::text(&line), Some(&m.message_id))
                    .await
                    .map_err(|e| err(&e))?;
                slack
                    .core
                    .chat_mark_rendered(tenant, request_id, m, &key)
                    .await
                    .map_err(|e| err(&e))?;
                if is_final(&view.state)
                    && !m
                        .rendered
                        .as_deref()
                        .is_some_and(|r| is_final(r.split(':').next().unwrap_or_default()))
                {
                    became_final = true;
                }
            }
        }
    }
    if became_final {
        let links = slack
            .core
            .chat_links_of(tenant, &view.requester_id)
            .await
            .map_err(|e| err(&e))?;
        for (platform, workspace, user) in links.into_iter().filter(|l| l.0 == "slack") {
            let _ = platform;
            let text = format!("Your request `{}` ({}): {line}", view.id, view.summary);
            slack
                .api_for(&workspace)
                .await
                .dm(&user, blocks::text(&text))
                .await
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}
