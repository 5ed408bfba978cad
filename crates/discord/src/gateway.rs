//! The gateway: the same interactions over Discord's WebSocket instead of the HTTP endpoint (no
//! public URL needed). serenity keeps the connection (heartbeats, resumes); each interaction is
//! handled like an HTTP one and its response sent through the interaction callback.

use crate::{Discord, interactions};
use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, Interaction, Ready, ShardManager,
};
use serenity::async_trait;
use std::sync::Arc;

struct Handler(Discord);

#[async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let discord = self.0.clone();
        // The answer still has to travel back over REST: leave it room in Discord's 3 s.
        let deadline = std::time::Instant::now()
            + discord
                .answer_within
                .saturating_sub(std::time::Duration::from_millis(500));
        // Handled on its own task so a slow interaction never holds up the next event.
        tokio::spawn(async move {
            let (id, token) = match &interaction {
                Interaction::Ping(p) => (p.id, p.token.clone()),
                Interaction::Command(c) | Interaction::Autocomplete(c) => (c.id, c.token.clone()),
                Interaction::Component(c) => (c.id, c.token.clone()),
                Interaction::Modal(m) => (m.id, m.token.clone()),
                _ => return,
            };
            // Seen before (a resumed session replays events): already answered once.
            let Some(response) =
                interactions::handle_once(discord.clone(), interaction, deadline).await
            else {
                return;
            };
            if let Err(e) = discord.api.respond(id, &token, response).await {
                tracing::warn!(error = %e, "could not answer a Discord interaction");
            }
        });
    }

    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "Discord gateway ready");
    }
}

/// A running gateway connection.
pub struct Gateway {
    manager: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Connects to the gateway (interactions need no privileged intents).
    pub async fn start(discord: Discord) -> Result<Self, serenity::Error> {
        let mut client =
            ClientBuilder::new_with_http(discord.api.new_http(), GatewayIntents::empty())
                .event_handler(Handler(discord))
                .await?;
        let manager = client.shard_manager.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = client.start().await {
                tracing::error!(error = %e, "Discord gateway stopped");
            }
        });
        Ok(Self { manager, task })
    }

    /// Closes the connection.
    pub async fn shutdown(self) {
        self.manager.shutdown_all().await;
        self.task.abort();
    }
}
