//! The scheduled billing digest, the same way on every platform: each bound workspace with a
//! `digest_channel` gets the summary and the spend chart every `digest_every` (weekly by
//! default), posted as the persona who bound it; once per period, whichever process posts it:
//! with several replicas, the one holding the platform's digest duty ([`tenantops_core::Core::hold`]).

use crate::approvals::ApprovalChannel;
use crate::render::Message;
use std::future::Future;
use std::time::Duration;
use tenantops_core::Principal;

/// A platform that can post the finance summary.
pub trait DigestChannel: ApprovalChannel {
    /// Posts the billing summary and chart to `channel` of `workspace` as `principal`.
    fn post_summary(
        &self,
        workspace: &str,
        principal: &Principal,
        channel: &str,
    ) -> impl Future<Output = Result<(), Message>> + Send;
}

/// Posts each workspace's digest when it is due, checking every `every`.
pub fn spawn_scheduler<C: DigestChannel>(chat: C, every: Duration) -> tokio::task::JoinHandle<()> {
    let platform = C::PLATFORM;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let core = chat.core();
            let duty = format!("{}-digest", platform.as_str());
            match core.hold(&duty, tenantops_core::duty_ttl(every)).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(platform = platform.as_str(), error = %e, "digest scheduler: cannot claim the duty");
                    continue;
                }
            }
            let due = match core.chat_digest_workspaces(platform).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(platform = platform.as_str(), error = %e, "digest scheduler: cannot list workspaces");
                    continue;
                }
            };
            let now = chrono::Utc::now().timestamp_millis();
            for (ws, last) in due {
                let (Some(channel), Some(period)) = (&ws.digest_channel, ws.digest_every_ms) else {
                    continue;
                };
                if last.is_some_and(|l| now - l < period) {
                    continue;
                }
                let principal = match core.digest_principal(platform, &ws.workspace_id).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(platform = platform.as_str(), error = %e, "digest scheduler: no principal");
                        continue;
                    }
                };
                match chat
                    .post_summary(&ws.workspace_id, &principal, channel)
                    .await
                {
                    Ok(()) => {
                        let _ = core
                            .chat_digest_posted(platform, &ws.workspace_id, now)
                            .await;
                    }
                    Err(m) => {
                        tracing::warn!(platform = platform.as_str(), title = %m.title, "digest not posted")
                    }
                }
            }
        }
    })
}
