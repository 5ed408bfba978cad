//! The finance view in Discord: the billing summary with its spend chart as the embed's image,
//! posted to a channel for everyone (`/billing post channel:#finance`) and on each server's
//! schedule (`tenant.chat_bind` with `digest_channel` and `digest_every`; the scheduler is
//! `tenantops_chat::digest`, shared with Slack).

use crate::Discord;
use tenantops_chat::render::Message;
use tenantops_core::Principal;

/// Posts the summary and the chart to `channel` of `guild` as `principal`.
pub async fn post_summary(
    discord: &Discord,
    guild: &str,
    principal: &Principal,
    channel: &str,
) -> Result<(), Message> {
    let summary = tenantops_chat::views::finance_summary(&discord.core, principal).await?;
    discord
        .api
        .post(guild, channel, &summary)
        .await
        .map(|_| ())
        .map_err(|e| Message::note("Could not post", e.to_string()))
}

impl tenantops_chat::digest::DigestChannel for Discord {
    async fn post_summary(
        &self,
        guild: &str,
        principal: &Principal,
        channel: &str,
    ) -> Result<(), Message> {
        post_summary(self, guild, principal, channel).await
    }
}

/// Posts each server's digest when it is due, checking every `every`.
pub fn spawn_scheduler(
    discord: Discord,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tenantops_chat::digest::spawn_scheduler(discord, every)
}
