//! Signed audit checkpoints in Slack: posted as a plain message (the signed note in a code
//! block) to each bound workspace's approval channel, and read back with
//! `conversations.history` — only the bot's own top-level messages (`auth.test` says who the
//! bot is in that workspace), a bounded number of pages. Slack's half of
//! `tenantops_core::ledger::publish`.

use crate::Slack;
use slack_morphism::prelude::*;
use tenantops_core::ledger::publish::{BoxFuture, CheckpointSink, Destination, PostedText};

impl CheckpointSink for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn post<'a>(
        &'a self,
        destination: &'a Destination,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            // Plain text, no blocks: the message's `text` is then exactly what was posted, and
            // what conversations.history gives back.
            let content = SlackMessageContent::new().with_text(text.to_owned());
            self.api_for(&destination.workspace)
                .await
                .post(&destination.channel, content, None)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn read_back<'a>(
        &'a self,
        destination: &'a Destination,
        max_messages: usize,
    ) -> BoxFuture<'a, Result<Vec<PostedText>, String>> {
        Box::pin(async move {
            let api = self.api_for(&destination.workspace).await;
            let me = api.identity().await.map_err(|e| e.to_string())?;
            let history = api
                .history(&destination.channel, max_messages)
                .await
                .map_err(|e| e.to_string())?;
            Ok(history
                .into_iter()
                .filter(|m| {
                    let ours = m.bot_id.is_some() && m.bot_id == me.bot_id
                        || m.user.as_deref() == Some(me.user_id.as_str());
                    // A reply broadcast to the channel is not a publication.
                    let top_level = m.thread_ts.as_ref().is_none_or(|t| *t == m.ts)
                        && m.subtype.as_deref().is_none_or(|s| s == "bot_message");
                    ours && top_level
                })
                .map(|m| PostedText {
                    id: m.ts,
                    text: m.text.unwrap_or_default(),
                })
                .collect())
        })
    }
}
