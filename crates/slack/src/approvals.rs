//! Approval requests in Slack: posted to each bound workspace's approval channel with Approve /
//! Reject buttons, edited in place (by stored channel and `ts`) as decisions arrive, the outcome
//! posted in the message's thread, and the requester told by direct message.
//!
//! The core's notification port is synchronous; [`SlackNotifier`] hands notifications to a
//! worker task that talks to Slack, so a slow Slack never slows an operation.

use crate::{Slack, blocks};
use tenantops_chat::render;
use tenantops_core::chat::{Platform, PostedMessage};
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

/// Delivers approval notifications to Slack until the queue closes.
pub fn spawn_worker(
    slack: Slack,
    mut rx: mpsc::UnboundedReceiver<Notification>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            if let Err(e) = deliver(&slack, &n).await {
                tracing::warn!(error = %e, "Slack approval notification not delivered");
            }
        }
    })
}

async fn deliver(slack: &Slack, n: &Notification) -> Result<(), String> {
    let Some((tenant, request_id)) = request_of(n) else {
        return Ok(());
    };
    let view = slack
        .core
        .request_view(tenant, request_id)
        .await
        .map_err(|e| e.to_string())?;
    let view_json = serde_json::to_value(&view).map_err(|e| e.to_string())?;
    let message = render::approval_request(&view_json);
    let content = blocks::content(&message);
    if let Notification::Requested { .. } = n {
        let workspaces = slack
            .core
            .chat_workspaces_of(tenant, Platform::Slack)
            .await
            .map_err(|e| e.to_string())?;
        for ws in workspaces {
            let Some(channel) = ws.approval_channel.as_deref() else {
                continue;
            };
            let ts = slack
                .api
                .post(channel, content.clone(), None)
                .await
                .map_err(|e| e.to_string())?;
            let posted = PostedMessage {
                platform: "slack".into(),
                workspace_id: ws.workspace_id.clone(),
                channel: channel.to_owned(),
                message_id: ts,
            };
            slack
                .core
                .record_chat_message(tenant, request_id, &posted)
                .await
                .map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let posted = slack
        .core
        .chat_messages(tenant, request_id)
        .await
        .map_err(|e| e.to_string())?;
    let line = Some(render::approval_status(&view_json));
    for m in posted.iter().filter(|m| m.platform == "slack") {
        slack
            .api
            .update(&m.channel, &m.message_id, content.clone())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(line) = &line {
            slack
                .api
                .post(&m.channel, blocks::text(line), Some(&m.message_id))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    // The requester hears the final outcome directly.
    let is_final = matches!(
        n,
        Notification::Executed { .. }
            | Notification::Failed { .. }
            | Notification::Expired { .. }
            | Notification::Cancelled { .. }
    ) || matches!(n, Notification::Decided { state, .. } if state == "rejected");
    if is_final && let Some(line) = &line {
        let links = slack
            .core
            .chat_links_of(tenant, &view.requester_id)
            .await
            .map_err(|e| e.to_string())?;
        for (platform, _workspace, user) in links {
            if platform != "slack" {
                continue;
            }
            let text = format!("Your request `{}` ({}): {line}", view.id, view.summary);
            slack
                .api
                .dm(&user, blocks::text(&text))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
