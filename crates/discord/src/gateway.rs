//! The gateway: the same interactions over Discord's WebSocket instead of the HTTP endpoint (no
//! public URL needed). serenity keeps the connection (heartbeats, resumes); each interaction is
//! handled like an HTTP one and its response sent through the interaction callback.

use crate::{Discord, interactions};
use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, Interaction, Ready, ShardManager,
};
use serenity::async_trait;
use std::sync::Arc;

struct Handler {
    discord: Discord,
    /// Told once, when the first READY arrives.
    ready: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let discord = self.discord.clone();
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
        if let Some(tx) = self.ready.lock().ok().and_then(|mut r| r.take()) {
            let _ = tx.send(());
        }
    }
}

/// A running gateway connection.
pub struct Gateway {
    manager: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

/// Why the gateway could not be joined.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(String);

/// How long [`Gateway::start`] waits for Discord's READY before going on without it.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

impl Gateway {
    /// Connects to the gateway (interactions need no privileged intents) and waits for READY,
    /// so a refused token fails here, at start, rather than in a log line later. If READY is
    /// slow the connection keeps trying in the background.
    pub async fn start(discord: Discord) -> Result<Self, GatewayError> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let handler = Handler {
            discord: discord.clone(),
            ready: std::sync::Mutex::new(Some(ready_tx)),
        };
        let mut client =
            ClientBuilder::new_with_http(discord.api.new_http(), GatewayIntents::empty())
                .event_handler(handler)
                .await
                .map_err(|e| GatewayError(e.to_string()))?;
        let manager = client.shard_manager.clone();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let result = client.start().await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "Discord gateway stopped");
            }
            let _ = stopped_tx.send(result.map_err(|e| e.to_string()));
        });
        tokio::select! {
            _ = ready_rx => {}
            stopped = stopped_rx => {
                task.abort();
                return Err(GatewayError(match stopped {
                    Ok(Err(e)) => e,
                    _ => "the connection closed before Discord said it was ready".into(),
                }));
            }
            _ = tokio::time::sleep(READY_WITHIN) => {
                tracing::warn!("Discord gateway not ready yet; still connecting in the background");
            }
        }
        Ok(Self { manager, task })
    }

    /// Closes the connection.
    pub async fn shutdown(self) {
        self.manager.shutdown_all().await;
        self.task.abort();
    }
}
