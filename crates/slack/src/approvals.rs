//! Approval requests in Slack: posted to each bound workspace's approval channel with Approve /
//! Reject buttons, edited in place (by stored channel and `ts`) as decisions arrive, the outcome
//! posted in the message's thread, and the requester told by direct message. The keeping in
//! step is `tenantops_chat::approvals`, shared with Discord; this is Slack's half of it.

use crate::{Slack, blocks};
use tenantops_chat::approvals::ApprovalChannel;
use tenantops_chat::render::Message;
use tenantops_core::Core;
use tenantops_core::chat::Platform;
use tenantops_core::notify::Notification;
use tokio::sync::mpsc;

pub use tenantops_chat::approvals::notifier;

impl ApprovalChannel for Slack {
    const PLATFORM: Platform = Platform::Slack;

    fn core(&self) -> &Core {
        &self.core
    }

    async fn post(
        &self,
        workspace: &str,
        channel: &str,
        message: &Message,
    ) -> Result<String, String> {
        self.api_for(workspace)
            .await
            .post(channel, blocks::content(message), None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn edit(
        &self,
        workspace: &str,
        channel: &str,
        message_id: &str,
        message: &Message,
    ) -> Result<(), String> {
        self.api_for(workspace)
            .await
            .update(channel, message_id, blocks::content(message))
            .await
            .map_err(|e| e.to_string())
    }

    async fn reply(
        &self,
        workspace: &str,
        channel: &str,
        message_id: &str,
        line: &str,
    ) -> Result<(), String> {
        self.api_for(workspace)
            .await
            .post(channel, blocks::text(line), Some(message_id))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn dm(&self, workspace: &str, user: &str, line: &str) -> Result<(), String> {
        self.api_for(workspace)
            .await
            .dm(user, blocks::text(line))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Keeps approval messages in Slack in step with their requests (see
/// [`tenantops_chat::approvals::spawn_worker`]).
pub fn spawn_worker(
    slack: Slack,
    rx: mpsc::UnboundedReceiver<Notification>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tenantops_chat::approvals::spawn_worker(slack, rx, every)
}
