//! tenantops Slack surface (slack-morphism): every catalogue operation as a slash command,
//! approval requests with Approve / Reject buttons edited in place, `/billing` for finance with
//! its chart and a scheduled digest, and on-call revoke with one confirm tap.
//!
//! Like every surface it only authenticates (a bound workspace plus a linked user, by immutable
//! ids), parses (`tenantops-chat`), calls [`tenantops_core::Core::call`] and renders (Block Kit).

pub mod api;
pub mod approvals;
pub mod blocks;
pub mod checkpoints;
pub mod commands;
pub mod digest;
pub mod inbound;
pub mod interactions;
pub mod oauth;
pub mod sandbox;
pub mod socket;
pub mod verify;

/// Registers how Slack uses one-time codes, so the core can tell people without knowing Slack:
/// the OAuth install path, `/tenant bind CODE` (a workspace admin) and `/tenant link CODE`.
pub fn register_hints(hints: &mut tenantops_core::hints::Hints) {
    use tenantops_core::chat::Platform::Slack;
    use tenantops_core::hints::Use;
    hints.register(Slack, Use::InstallPath, oauth::INSTALL_PATH_TEMPLATE);
    hints.register(Slack, Use::BindCommand, "/tenant bind {code}");
    hints.register(Slack, Use::LinkCommand, "/tenant link {code}");
}

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use std::sync::Arc;
use tenantops_core::Core;

/// How to reach Slack and check its requests.
#[derive(Clone)]
pub struct SlackConfig {
    /// The app's signing secret (`TENANTOPS_SLACK_SIGNING_SECRET`): needed for the HTTP
    /// endpoints; Socket Mode alone does without.
    pub signing_secret: Option<String>,
    /// The app-level token for Socket Mode (`TENANTOPS_SLACK_APP_TOKEN`, `xapp-…`).
    pub app_token: Option<String>,
    /// The bot token (`TENANTOPS_SLACK_BOT_TOKEN`, `xoxb-…`).
    pub bot_token: Option<String>,
    /// The Web API base (`TENANTOPS_SLACK_API_URL`, default `https://slack.com/api/`).
    pub api_url: String,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("app_token", &self.app_token.as_ref().map(|_| "<redacted>"))
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Slack's OAuth v2 install flow, when configured (`TENANTOPS_SLACK_CLIENT_ID`,
/// `TENANTOPS_SLACK_CLIENT_SECRET`, `TENANTOPS_PUBLIC_URL`).
#[derive(Clone)]
pub struct OAuthConfig {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// This server's public base URL (the redirect URI is `{public_url}/slack/oauth/callback`).
    pub public_url: String,
    /// Slack's authorize page (`https://slack.com/oauth/v2/authorize`).
    pub authorize_url: String,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The Slack surface's shared state.
#[derive(Clone)]
pub struct Slack {
    /// The core.
    pub core: Core,
    /// The Web API client.
    pub api: api::SlackApi,
    verifier: Option<Arc<SlackEventSignatureVerifier>>,
    oauth: Option<Arc<OAuthConfig>>,
}

impl Slack {
    /// The surface for `config`.
    pub fn new(core: Core, config: &SlackConfig) -> std::io::Result<Self> {
        Ok(Self {
            core,
            api: api::SlackApi::new(&config.api_url, config.bot_token.clone())?,
            verifier: config
                .signing_secret
                .as_deref()
                .map(|s| Arc::new(verify::verifier(s))),
            oauth: None,
        })
    }

    /// Enables the OAuth install flow (`/slack/install`, `/slack/oauth/callback`).
    pub fn with_oauth(mut self, oauth: OAuthConfig) -> Self {
        self.oauth = Some(Arc::new(oauth));
        self
    }

    /// The Web API client for a workspace: its own bot token when it was installed through
    /// OAuth, else the configured one.
    pub async fn api_for(&self, workspace_id: &str) -> api::SlackApi {
        match self
            .core
            .chat_bot_token(tenantops_core::chat::Platform::Slack, workspace_id)
            .await
        {
            Ok(Some(token)) => self.api.with_token(&token),
            Ok(None) => self.api.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a workspace's bot token; using the configured one");
                self.api.clone()
            }
        }
    }
}

/// `POST /slack/commands`, `/slack/interactions`, `/slack/events`.
pub fn router(slack: Slack) -> Router {
    Router::new()
        .route("/slack/commands", post(inbound::slash_command))
        .route("/slack/interactions", post(inbound::interaction))
        .route("/slack/events", post(inbound::events))
        .route("/slack/install", axum::routing::get(oauth::install))
        .route("/slack/oauth/callback", axum::routing::get(oauth::callback))
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(slack)
}
