//! The finance view in Discord: the billing summary with its spend chart as the embed's image,
//! posted to a channel for everyone (`/billing post channel:#finance`) and on each server's
//! schedule (`tenant.chat_bind` with `digest_channel` and `digest_every`; the scheduler is
//! `tenantops_chat::digest`, shared with Slack).

use crate::Discord;
use serde_json::json;
use tenantops_chat::render::{self, Message};
use tenantops_core::{Outcome, Principal, catalogue};

/// Posts the summary and the chart to `channel` as `principal`.
pub async fn post_summary(
    discord: &Discord,
    principal: &Principal,
    channel: &str,
) -> Result<(), Message> {
    let summary_spec = catalogue::find("billing.summary").expect("exists");
    let mut summary = match discord
        .core
        .call(principal, "billing.summary", json!({}))
        .await
    {
        Ok(o @ Outcome::Done { .. }) => render::outcome(summary_spec, &o),
        Ok(other) => return Err(render::outcome(summary_spec, &other)),
        Err(e) => return Err(render::error(&e)),
    };
    let chart_spec = catalogue::find("billing.chart").expect("exists");
    if let Ok(o @ Outcome::Done { .. }) = discord
        .core
        .call(principal, "billing.chart", json!({}))
        .await
    {
        summary.attachment = render::outcome(chart_spec, &o).attachment;
    }
    summary.visibility = tenantops_chat::Visibility::Channel;
    discord
        .api
        .post(channel, &summary)
        .await
        .map(|_| ())
        .map_err(|e| Message::note("Could not post", e.to_string()))
}

impl tenantops_chat::digest::DigestChannel for Discord {
    async fn post_summary(
        &self,
        _guild: &str,
        principal: &Principal,
        channel: &str,
    ) -> Result<(), Message> {
        post_summary(self, principal, channel).await
    }
}

/// Posts each server's digest when it is due, checking every `every`.
pub fn spawn_scheduler(
    discord: Discord,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tenantops_chat::digest::spawn_scheduler(discord, every)
}
