//! Discord's REST API through serenity's `Http`: channel messages posted and edited by id,
//! direct messages, interaction follow-ups, and command registration. The base URL is
//! configurable (`TENANTOPS_DISCORD_API_URL`) so tests can point it at a fake.

use crate::DiscordConfig;
use crate::embeds;
use serenity::all::{
    ChannelId, Command, CreateAllowedMentions, CreateCommand, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateMessage, EditMessage, GuildId, Http, HttpBuilder,
    InteractionId, MessageId, MessagePagination, MessageReference, MessageType, UserId,
};
use serenity::builder::Builder;
use std::sync::Arc;
use std::time::Duration;
use tenantops_chat::render::Message;

/// The most characters a message's content may hold.
const CONTENT_MAX: usize = 2_000;

/// A REST failure, with Discord's own message.
#[derive(Debug, thiserror::Error)]
#[error("Discord API: {0}")]
pub struct ApiError(String);

impl From<serenity::Error> for ApiError {
    fn from(e: serenity::Error) -> Self {
        ApiError(e.to_string())
    }
}

/// A Discord REST client for one application.
#[derive(Clone)]
pub struct DiscordApi {
    http: Arc<Http>,
    config: Arc<DiscordConfig>,
}

fn id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| ApiError(format!("`{raw}` is not a Discord id")))
}

impl DiscordApi {
    /// A client for `config` (rate limiting left to serenity unless a base URL is set: its
    /// proxy setting is ignored while its rate limiter is on).
    pub fn new(config: &DiscordConfig) -> Self {
        Self {
            http: Arc::new(Self::build(config)),
            config: Arc::new(config.clone()),
        }
    }

    fn build(config: &DiscordConfig) -> Http {
        let mut builder =
            HttpBuilder::new(&config.bot_token).application_id(config.application_id.max(1).into());
        if let Some(url) = config
            .api_url
            .as_deref()
            .filter(|u| !u.is_empty() && *u != "https://discord.com")
        {
            builder = builder.proxy(url).ratelimiter_disabled(true);
        }
        builder.build()
    }

    /// A new serenity client with the same settings (the gateway client owns its own).
    pub fn new_http(&self) -> Http {
        Self::build(&self.config)
    }

    /// Posts `message` to a channel of `guild`; returns the new message's id. The bot is shared
    /// by every tenant, so a channel in any other server is refused, whatever a binding says.
    pub async fn post(
        &self,
        guild: &str,
        channel: &str,
        message: &Message,
    ) -> Result<String, ApiError> {
        let channel_id = self.channel_of(guild, channel).await?;
        let sent = channel_id
            .send_message(&self.http, embeds::create_message(message))
            .await?;
        Ok(sent.id.to_string())
    }

    /// `channel` when it is a channel of `guild`; refused otherwise.
    async fn channel_of(&self, guild: &str, channel: &str) -> Result<ChannelId, ApiError> {
        let channel_id = ChannelId::new(id(channel)?);
        let in_guild = channel_id
            .to_channel(&self.http)
            .await?
            .guild()
            .map(|c| c.guild_id.to_string());
        if in_guild.as_deref() != Some(guild) {
            return Err(ApiError(format!(
                "channel {channel} is not a channel of server {guild}"
            )));
        }
        Ok(channel_id)
    }

    /// Posts plain `text` (no embed, no mentions) to a channel of `guild`; returns the new
    /// message's id. The text is the message's `content`, exactly as read back later.
    pub async fn post_text(
        &self,
        guild: &str,
        channel: &str,
        text: &str,
    ) -> Result<String, ApiError> {
        if text.chars().count() > CONTENT_MAX {
            return Err(ApiError(format!(
                "a message holds at most {CONTENT_MAX} characters"
            )));
        }
        let channel_id = self.channel_of(guild, channel).await?;
        let sent = channel_id
            .send_message(
                &self.http,
                CreateMessage::new()
                    .content(text)
                    .allowed_mentions(CreateAllowedMentions::new()),
            )
            .await?;
        Ok(sent.id.to_string())
    }

    /// The bot's own plain messages (not replies) in a channel of `guild`, newest first, as
    /// (message id, content), reading at most `max` messages of the channel in pages of 100.
    pub async fn own_messages(
        &self,
        guild: &str,
        channel: &str,
        max: usize,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let channel_id = self.channel_of(guild, channel).await?;
        let me = self.http.get_current_user().await?.id;
        let mut out = Vec::new();
        let mut read = 0;
        let mut before: Option<MessageId> = None;
        while read < max {
            let limit = (max - read).min(100) as u8;
            let page = self
                .http
                .get_messages(
                    channel_id,
                    before.map(MessagePagination::Before),
                    Some(limit),
                )
                .await?;
            read += page.len();
            before = page.last().map(|m| m.id);
            let full = page.len() == usize::from(limit);
            out.extend(
                page.into_iter()
                    .filter(|m| m.author.id == me && m.kind == MessageType::Regular)
                    .map(|m| (m.id.to_string(), m.content)),
            );
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Replaces a posted message's embeds and buttons.
    pub async fn edit(
        &self,
        channel: &str,
        message_id: &str,
        message: &Message,
    ) -> Result<(), ApiError> {
        let (embed, rows) = embeds::parts(message);
        ChannelId::new(id(channel)?)
            .edit_message(
                &self.http,
                MessageId::new(id(message_id)?),
                EditMessage::new().embed(embed).components(rows),
            )
            .await?;
        Ok(())
    }

    /// Says one line as a reply to a posted message.
    pub async fn reply(&self, channel: &str, message_id: &str, line: &str) -> Result<(), ApiError> {
        let channel = ChannelId::new(id(channel)?);
        channel
            .send_message(
                &self.http,
                CreateMessage::new()
                    .content(tenantops_chat::views::clip(line, CONTENT_MAX))
                    .reference_message(
                        MessageReference::from((channel, MessageId::new(id(message_id)?)))
                            .fail_if_not_exists(false),
                    )
                    .allowed_mentions(CreateAllowedMentions::new()),
            )
            .await?;
        Ok(())
    }

    /// Sends `message` to a user in a direct message.
    pub async fn dm(&self, user: &str, message: &Message) -> Result<(), ApiError> {
        let channel = UserId::new(id(user)?).create_dm_channel(&self.http).await?;
        channel
            .id
            .send_message(&self.http, embeds::create_message(message))
            .await?;
        Ok(())
    }

    /// Answers an interaction received over the gateway.
    pub async fn respond(
        &self,
        interaction_id: InteractionId,
        token: &str,
        response: CreateInteractionResponse,
    ) -> Result<(), ApiError> {
        response
            .execute(&self.http, (interaction_id, token))
            .await?;
        Ok(())
    }

    /// Replaces the original response of a deferred interaction. The deferral may still be on
    /// its way to Discord when the work finishes, so a refusal is retried briefly.
    pub async fn edit_original(&self, token: &str, message: &Message) -> Result<(), ApiError> {
        let mut last = None;
        for attempt in 0..4u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
            }
            match embeds::edit_response(message)
                .execute(&self.http, token)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .map(ApiError::from)
            .unwrap_or(ApiError("no attempt".into())))
    }

    /// Sends a follow-up to an interaction, visible only to the person who asked.
    pub async fn follow_up(&self, token: &str, message: &Message) -> Result<(), ApiError> {
        let followup: CreateInteractionResponseFollowup = embeds::followup(message);
        followup.execute(&self.http, (None, token)).await?;
        Ok(())
    }

    /// Replaces the application's commands, in one guild or globally.
    pub async fn register(
        &self,
        guild: Option<u64>,
        commands: Vec<CreateCommand>,
    ) -> Result<usize, ApiError> {
        let set = match guild {
            Some(g) => GuildId::new(g).set_commands(&self.http, commands).await?,
            None => Command::set_global_commands(&self.http, commands).await?,
        };
        Ok(set.len())
    }
}
