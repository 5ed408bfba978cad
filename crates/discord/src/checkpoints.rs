//! Signed audit checkpoints in Discord: posted as a plain message (the signed note in a code
//! block) to each bound server's approval channel, and read back from the channel's messages
//! (`GET /channels/{id}/messages`) — only the bot's own, not replies, a bounded number of
//! pages; a channel of another server is refused both ways. Discord's half of
//! `tenantops_core::ledger::publish`.

use crate::api::DiscordApi;
use tenantops_core::ledger::publish::{BoxFuture, CheckpointSink, Destination, PostedText};

impl CheckpointSink for DiscordApi {
    fn kind(&self) -> &'static str {
        "discord"
    }

    fn post<'a>(
        &'a self,
        destination: &'a Destination,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.post_text(&destination.workspace, &destination.channel, text)
                .await
                .map_err(|e| with_hint(e.to_string()))
        })
    }

    fn read_back<'a>(
        &'a self,
        destination: &'a Destination,
        max_messages: usize,
    ) -> BoxFuture<'a, Result<Vec<PostedText>, String>> {
        Box::pin(async move {
            let messages = self
                .own_messages(&destination.workspace, &destination.channel, max_messages)
                .await
                .map_err(|e| with_hint(e.to_string()))?;
            Ok(messages
                .into_iter()
                .map(|(id, text)| PostedText { id, text })
                .collect())
        })
    }
}

/// Says what to do about the refusals a bot without the right permissions gets.
fn with_hint(message: String) -> String {
    if message.contains("Missing Access") || message.contains("Missing Permissions") {
        format!(
            "{message}; give the bot View Channel, Send Messages and Read Message History in \
             that channel"
        )
    } else if message.contains("Unknown Channel") {
        format!("{message}; the channel was deleted or the bot was removed from the server")
    } else {
        message
    }
}
