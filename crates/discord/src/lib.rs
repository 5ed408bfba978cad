//! tenantops Discord surface (serenity): every catalogue operation as an application command
//! with typed options and autocomplete, answers as embeds (secrets only ephemeral), approval
//! requests with Approve / Reject buttons edited in place, `/billing` for finance, and on-call
//! revoke with one confirm tap — over the HTTP interactions endpoint or the gateway.
//!
//! Like every surface it only authenticates (a bound guild plus a linked user, by immutable
//! ids), parses (`tenantops-chat`), calls [`tenantops_core::Core::call`] and renders (embeds).
//!
//! Module map:
//! - [`verify`] — Ed25519 signature and timestamp window, on the raw body, before parsing.
//! - [`inbound`] — `POST /discord/interactions`; [`gateway`] — the same handler over the gateway.
//! - [`interactions`] — one interaction in, one response out within Discord's 3 seconds
//!   (deferred, then edited, when the work is slower).
//! - [`commands`] — command definitions from the catalogue and registration;
//!   [`options`] — a command's options back into an operation's input; [`autocomplete`].
//! - [`embeds`] — the neutral `tenantops-chat` messages as embeds and buttons.
//! - [`approvals`] — approval messages posted, edited in place and kept in step; [`api`] — REST.
//! - [`checkpoints`] — signed audit checkpoints posted and read back.

pub mod api;
pub mod approvals;
pub mod autocomplete;
pub mod checkpoints;
pub mod commands;
pub mod embeds;
pub mod finance;
pub mod gateway;
pub mod inbound;
pub mod interactions;
pub mod options;
pub mod verify;

/// Registers how Discord uses one-time codes, so the core can tell people without knowing
/// Discord: `/tenant bind code:CODE` (someone with Manage Server) and `/tenant link code:CODE`.
pub fn register_hints(hints: &mut tenantops_core::hints::Hints) {
    use tenantops_core::chat::Platform::Discord;
    use tenantops_core::hints::Use;
    hints.register(Discord, Use::BindCommand, "/tenant bind code:{code}");
    hints.register(Discord, Use::LinkCommand, "/tenant link code:{code}");
}

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use std::sync::Arc;
use tenantops_core::Core;

/// How to reach Discord and check its requests.
#[derive(Clone, Default)]
pub struct DiscordConfig {
    /// The application's public key, hex (`TENANTOPS_DISCORD_PUBLIC_KEY`): needed for the HTTP
    /// interactions endpoint; the gateway alone does without.
    pub public_key: Option<String>,
    /// The application id (`TENANTOPS_DISCORD_APPLICATION_ID`).
    pub application_id: u64,
    /// The bot token (`TENANTOPS_DISCORD_BOT_TOKEN`).
    pub bot_token: String,
    /// The REST base (`TENANTOPS_DISCORD_API_URL`, default `https://discord.com`): tests point
    /// it at a fake.
    pub api_url: Option<String>,
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("public_key", &self.public_key)
            .field("application_id", &self.application_id)
            .field("bot_token", &"<redacted>")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Why the Discord surface cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The public key is not 64 hex digits of a valid Ed25519 key.
    #[error(
        "TENANTOPS_DISCORD_PUBLIC_KEY must be the application's public key: 64 hex digits (Developer Portal → General Information)"
    )]
    PublicKey,
    /// No application id.
    #[error("TENANTOPS_DISCORD_APPLICATION_ID must be the application's id (a number)")]
    ApplicationId,
    /// No bot token.
    #[error("TENANTOPS_DISCORD_BOT_TOKEN is required (Developer Portal → Bot → Reset Token)")]
    BotToken,
}

/// The Discord surface's shared state.
#[derive(Clone)]
pub struct Discord {
    /// The core.
    pub core: Core,
    /// REST.
    pub api: api::DiscordApi,
    verifier: Option<Arc<verify::Verifier>>,
    answer_within: std::time::Duration,
}

impl Discord {
    /// The surface for `config`.
    pub fn new(core: Core, config: &DiscordConfig) -> Result<Self, ConfigError> {
        if config.application_id == 0 {
            return Err(ConfigError::ApplicationId);
        }
        if config.bot_token.trim().is_empty() {
            return Err(ConfigError::BotToken);
        }
        let verifier = match config.public_key.as_deref() {
            Some(k) => Some(Arc::new(
                verify::Verifier::new(k).ok_or(ConfigError::PublicKey)?,
            )),
            None => None,
        };
        Ok(Self {
            core,
            api: api::DiscordApi::new(config),
            verifier,
            answer_within: interactions::ANSWER_WITHIN,
        })
    }

    /// How long work may run before its answer is deferred and edited in later (default
    /// [`interactions::ANSWER_WITHIN`]; at most 2.8 s, as Discord allows 3 s in all).
    pub fn with_answer_within(mut self, within: std::time::Duration) -> Self {
        self.answer_within = within.min(std::time::Duration::from_millis(2_800));
        self
    }
}

/// `POST /discord/interactions`.
pub fn router(discord: Discord) -> Router {
    Router::new()
        .route("/discord/interactions", post(inbound::interactions))
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(discord)
}
