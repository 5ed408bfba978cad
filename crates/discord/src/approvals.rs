//! Approval requests in Discord: posted to each bound server's approval channel with Approve /
//! Reject buttons, edited in place by the stored channel and message id as decisions arrive,
//! what happened said in a reply under it, and the requester told by direct message. The
//! keeping in step is `tenantops_chat::approvals`, shared with Slack; this is Discord's half.

use crate::Discord;
use tenantops_chat::approvals::ApprovalChannel;
use tenantops_chat::render::Message;
use tenantops_core::Core;
use tenantops_core::chat::Platform;
use tenantops_core::notify::Notification;
use tokio::sync::mpsc;

pub use tenantops_chat::approvals::notifier;

impl ApprovalChannel for Discord {
    const PLATFORM: Platform = Platform::Discord;

    fn core(&self) -> &Core {
        &self.core
    }

    async fn post(&self, guild: &str, channel: &str, message: &Message) -> Result<String, String> {
        self.api
            .post(guild, channel, message)
            .await
            .map_err(|e| e.to_string())
    }

    async fn edit(
        &self,
        _guild: &str,
        channel: &str,
        message_id: &str,
        message: &Message,
    ) -> Result<(), String> {
        self.api
            .edit(channel, message_id, message)
            .await
            .map_err(|e| e.to_string())
    }

    async fn reply(
        &self,
        _guild: &str,
        channel: &str,
        message_id: &str,
        line: &str,
    ) -> Result<(), String> {
        self.api
            .reply(channel, message_id, line)
            .await
            .map_err(|e| e.to_string())
    }

    async fn dm(&self, _guild: &str, user: &str, line: &str) -> Result<(), String> {
        self.api
            .dm(user, &Message::note("Your approval request", line))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Keeps approval messages in Discord in step with their requests (see
/// [`tenantops_chat::approvals::spawn_worker`]).
pub fn spawn_worker(
    discord: Discord,
    rx: mpsc::UnboundedReceiver<Notification>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tenantops_chat::approvals::spawn_worker(discord, rx, every)
}
