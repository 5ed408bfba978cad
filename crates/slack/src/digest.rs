//! The finance view: the billing summary with its chart, posted to a channel on demand
//! (`/billing post #finance`) and on each workspace's schedule (`tenant.chat_bind` with
//! `digest_channel` and `digest_every`, weekly by default).

use crate::api::Upload;
use crate::{Slack, blocks};
use std::time::Duration;
use tenantops_chat::render::Message;
use tenantops_core::Principal;

/// Posts the summary and the chart to `channel` of `workspace_id` as `principal`.
pub async fn post_summary(
    slack: &Slack,
    workspace_id: &str,
    principal: &Principal,
    channel: &str,
) -> Result<(), Message> {
    let api = slack.api_for(workspace_id).await;
    let summary = tenantops_chat::views::finance_summary(&slack.core, principal).await?;
    api.post(channel, blocks::content(&summary), None)
        .await
        .map_err(|e| Message::note("Could not post", e.to_string()))?;
    if let Some(file) = &summary.attachment {
        let upload = Upload {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            bytes: file.bytes.clone(),
            title: "Spend by SKU this period".into(),
        };
        api.upload(channel, upload)
            .await
            .map_err(|e| Message::note("Posted the summary, but not the chart", e.to_string()))?;
    }
    Ok(())
}

impl tenantops_chat::digest::DigestChannel for Slack {
    async fn post_summary(
        &self,
        workspace: &str,
        principal: &Principal,
        channel: &str,
    ) -> Result<(), Message> {
        post_summary(self, workspace, principal, channel).await
    }
}

/// Posts each workspace's digest when it is due, checking every `every` (see
/// [`tenantops_chat::digest::spawn_scheduler`]).
pub fn spawn_scheduler(slack: Slack, every: Duration) -> tokio::task::JoinHandle<()> {
    tenantops_chat::digest::spawn_scheduler(slack, every)
}
