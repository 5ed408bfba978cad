//! Configuration from flags and `TENANTOPS_*` environment variables, turned into the core's
//! [`Config`] once, at the edge.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use tenantops_core::jwt::JwtConfig;
use tenantops_core::ledger::publish::{BoxFuture, CheckpointSink, Destination, PostedText};
use tenantops_core::proof::KeyDecisions;
use tenantops_core::secrets::MasterKey;
use tenantops_core::store::Location;
use tenantops_core::{Config, MasterKeySource};

/// A secret given as a flag or in the environment (an API key, a JWT): `Debug` never shows it.
#[derive(Clone)]
pub struct SecretArg(String);

impl SecretArg {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret itself, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for SecretArg {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Options every command that opens the database shares.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// The database: a SQLite file (a path or sqlite://PATH) or PostgreSQL
    /// (postgres://USER:PASSWORD@HOST:PORT/DB).
    #[arg(
        long,
        global = true,
        env = "TENANTOPS_DB",
        default_value = "./tenantops.db",
        hide_env_values = true
    )]
    pub db: String,
}

impl DbArgs {
    /// The database `--db` names.
    pub fn location(&self) -> Result<Location> {
        Ok(Location::parse(&self.db)?)
    }

    /// The SQLite file of a command that only runs on one (`demo`, `chat`).
    pub fn sqlite_file(&self, command: &str) -> Result<PathBuf> {
        match self.location()? {
            Location::Sqlite(path) => Ok(path),
            Location::Postgres(_) => bail!(
                "`tenantops {command}` runs on its own SQLite file: give --db a file path (or \
                 leave it out)"
            ),
        }
    }
}

impl std::fmt::Display for DbArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Location::parse(&self.db) {
            Ok(l) => write!(f, "{l}"),
            Err(_) => f.write_str("<invalid --db>"),
        }
    }
}

impl std::fmt::Debug for DbArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Location::parse(&self.db) {
            Ok(l) => write!(f, "DbArgs({l})"),
            Err(_) => f.write_str("DbArgs(<invalid>)"),
        }
    }
}

/// Builds the core configuration for `db`, reading the environment for the rest:
/// `TENANTOPS_MASTER_KEY` (64 hex digits) or `TENANTOPS_MASTER_KEY_FILE` (default on SQLite:
/// the file `<db>.master-key`; on PostgreSQL one of them is required), or
/// `TENANTOPS_MASTER_KEY_URI` (`aws:ARN`, `gcp:NAME`, `azure:URI`: the master key wrapped by a
/// KMS key, kept in `TENANTOPS_MASTER_KEY_FILE` or `<db>.master-key.kms`),
/// `TENANTOPS_KEY_ROTATION_GRACE` (e.g. `10m`), `TENANTOPS_EXECUTION_LEASE` (how long a dead
/// replica's execution blocks a resume; default 1m), `TENANTOPS_KEY_CACHE_TTL` (how long
/// unwrapped tenant keys stay cached; default 5m), the KMS platform credentials
/// ([`tenantops_core::kms::KmsConfig::from_env`]), `TENANTOPS_EXPORT_DIR` (where export-all
/// archives go; default `exports/` beside the database), and JWT verification —
/// `TENANTOPS_JWT_ALGORITHM`, `TENANTOPS_JWT_SECRET` or `TENANTOPS_JWT_PUBLIC_KEY_FILE`,
/// `TENANTOPS_JWT_ISSUER`, `TENANTOPS_JWT_AUDIENCE`.
pub fn core_config(db: &DbArgs) -> Result<Config> {
    let mut config = Config::at(db.location()?);
    match (
        env("TENANTOPS_MASTER_KEY"),
        env("TENANTOPS_MASTER_KEY_FILE"),
    ) {
        (Some(hex), None) => {
            config.master_key = MasterKeySource::Key(
                MasterKey::from_hex(&hex)
                    .context("TENANTOPS_MASTER_KEY must be 64 hexadecimal digits")?,
            );
        }
        (None, Some(path)) => config.master_key = MasterKeySource::File(PathBuf::from(path)),
        (Some(_), Some(_)) => {
            bail!("TENANTOPS_MASTER_KEY and TENANTOPS_MASTER_KEY_FILE are both set: unset one")
        }
        (None, None) => {}
    }
    if let Some(uri) = env("TENANTOPS_MASTER_KEY_URI") {
        if env("TENANTOPS_MASTER_KEY").is_some() {
            bail!("TENANTOPS_MASTER_KEY and TENANTOPS_MASTER_KEY_URI are both set: unset one");
        }
        let kms = tenantops_core::kms::KmsConfig::from_env();
        let (provider, id) = uri.split_once(':').with_context(|| {
            format!("TENANTOPS_MASTER_KEY_URI=`{uri}` must be PROVIDER:KEY, like aws:arn:aws:kms:…")
        })?;
        let provider: tenantops_core::kms::Provider = provider
            .parse()
            .with_context(|| format!("TENANTOPS_MASTER_KEY_URI=`{uri}`: unknown provider"))?;
        let key = tenantops_core::kms::KeyRef::parse(provider, id, kms.allow_loopback())
            .with_context(|| format!("TENANTOPS_MASTER_KEY_URI=`{uri}`"))?;
        let file = match (env("TENANTOPS_MASTER_KEY_FILE"), &config.db) {
            (Some(path), _) => PathBuf::from(path),
            (None, tenantops_core::store::Location::Sqlite(db)) => {
                let mut p = db.clone().into_os_string();
                p.push(".master-key.kms");
                PathBuf::from(p)
            }
            (None, _) => bail!(
                "TENANTOPS_MASTER_KEY_URI on PostgreSQL needs TENANTOPS_MASTER_KEY_FILE: where \
                 every replica reads the wrapped master key"
            ),
        };
        config.master_key = MasterKeySource::Kms { key, file };
    }
    if let Some(grace) = env("TENANTOPS_KEY_ROTATION_GRACE") {
        let d = humantime_duration(&grace).with_context(|| {
            format!("TENANTOPS_KEY_ROTATION_GRACE=`{grace}` is not a duration like 10m")
        })?;
        config.key_rotation_grace = d;
    }
    if let Some(ttl) = env("TENANTOPS_KEY_CACHE_TTL") {
        let d = humantime_duration(&ttl).with_context(|| {
            format!("TENANTOPS_KEY_CACHE_TTL=`{ttl}` is not a duration like 5m")
        })?;
        config.key_cache_ttl = d
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
            .context("TENANTOPS_KEY_CACHE_TTL must be positive, like 5m")?;
    }
    config.kms = tenantops_core::kms::KmsConfig::from_env();
    if let Some(lease) = env("TENANTOPS_EXECUTION_LEASE") {
        config.execution_lease = humantime_duration(&lease).with_context(|| {
            format!("TENANTOPS_EXECUTION_LEASE=`{lease}` is not a duration like 1m")
        })?;
    }
    config.key_decisions = key_decisions(
        env("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN").as_deref(),
        env(WEAKEN_VAR).as_deref(),
    )?;
    if let Some(dir) = env("TENANTOPS_EXPORT_DIR") {
        config.export_dir = PathBuf::from(dir);
    }
    config.jwt = jwt_config()?;
    // The surfaces of this binary say how their codes are used; the core only knows the codes.
    tenantops_slack::register_hints(&mut config.hints);
    tenantops_discord::register_hints(&mut config.hints);
    Ok(config)
}

/// The variable that weakens the two-person rule for a single operator scripting alone.
pub const WEAKEN_VAR: &str = "TENANTOPS_DECISIONS_BY_ANY_KEY";
/// The only value [`WEAKEN_VAR`] accepts: set on purpose, never by a stray `true`.
pub const WEAKEN_PHRASE: &str = "i-accept-that-one-person-can-approve";

/// How API keys weigh in approval decisions: by default only a key its person issued for
/// themselves counts; `TENANTOPS_DECISIONS_REQUIRE_SIGN_IN=true` counts no key; the weakening
/// opt-out counts any key, and must be spelled out.
fn key_decisions(require_sign_in: Option<&str>, any_key: Option<&str>) -> Result<KeyDecisions> {
    let sign_in = match require_sign_in {
        None => false,
        Some("1" | "true" | "yes") => true,
        Some("0" | "false" | "no") => false,
        Some(other) => bail!("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN=`{other}`: use true or false"),
    };
    match any_key {
        None => Ok(if sign_in {
            KeyDecisions::SignInOnly
        } else {
            KeyDecisions::OwnKeysOnly
        }),
        Some(_) if sign_in => bail!(
            "{WEAKEN_VAR} and TENANTOPS_DECISIONS_REQUIRE_SIGN_IN=true contradict each other: unset one"
        ),
        Some(WEAKEN_PHRASE) => Ok(KeyDecisions::AnyKey),
        Some(_) => bail!(
            "{WEAKEN_VAR} weakens the two-person rule (any API key decides, even one issued for a \
             colleague, so one person can approve their own request): to mean it, set it to \
             `{WEAKEN_PHRASE}`; otherwise unset it"
        ),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn humantime_duration(text: &str) -> Result<chrono::Duration> {
    Ok(chrono::Duration::from_std(humantime::parse_duration(
        text.trim(),
    )?)?)
}

fn jwt_config() -> Result<Option<JwtConfig>> {
    let Some(algorithm) = env("TENANTOPS_JWT_ALGORITHM") else {
        return Ok(None);
    };
    let key = match (
        env("TENANTOPS_JWT_SECRET"),
        env("TENANTOPS_JWT_PUBLIC_KEY_FILE"),
    ) {
        (Some(secret), None) => secret.into_bytes(),
        (None, Some(path)) => std::fs::read(&path)
            .with_context(|| format!("cannot read TENANTOPS_JWT_PUBLIC_KEY_FILE {path}"))?,
        _ => bail!(
            "TENANTOPS_JWT_ALGORITHM is set: set exactly one of TENANTOPS_JWT_SECRET (HS*) or \
             TENANTOPS_JWT_PUBLIC_KEY_FILE (a PEM public key)"
        ),
    };
    let issuer =
        env("TENANTOPS_JWT_ISSUER").context("set TENANTOPS_JWT_ISSUER (the expected `iss`)")?;
    let audience =
        env("TENANTOPS_JWT_AUDIENCE").context("set TENANTOPS_JWT_AUDIENCE (the expected `aud`)")?;
    Ok(Some(JwtConfig::new(&algorithm, &key, &issuer, &audience)?))
}

/// MCP limits and HTTP options, shared by `serve` (streamable HTTP at `/mcp`) and `mcp --stdio`.
#[derive(Args, Debug, Clone)]
pub struct McpArgs {
    /// Tool calls per minute per credential.
    #[arg(long = "mcp-rate-limit", env = "TENANTOPS_MCP_RATE_LIMIT", default_value_t = std::num::NonZeroU32::new(600).expect("non-zero"))]
    pub rate_limit: std::num::NonZeroU32,
    /// The longest one tool call may run.
    #[arg(long = "mcp-call-timeout", env = "TENANTOPS_MCP_CALL_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub call_timeout: std::time::Duration,
    /// The largest MCP HTTP request body, in bytes.
    #[arg(long = "mcp-max-body", env = "TENANTOPS_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body: usize,
    /// `Host` header values `/mcp` accepts (DNS-rebinding protection), comma-separated; `*`
    /// accepts any (only behind a proxy that checks it).
    #[arg(
        long = "mcp-allowed-hosts",
        env = "TENANTOPS_MCP_ALLOWED_HOSTS",
        default_value = "localhost,127.0.0.1,::1",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// How often open MCP connections' credentials are re-checked for revocations made by
    /// another process (revocations in this process close them at once).
    #[arg(long = "mcp-revocation-check", env = "TENANTOPS_MCP_REVOCATION_CHECK", default_value = "2s", value_parser = humantime::parse_duration)]
    pub revocation_check: std::time::Duration,
}

impl McpArgs {
    /// The per-caller limits.
    pub fn limits(&self) -> tenantops_mcp::Limits {
        tenantops_mcp::Limits {
            calls_per_minute: self.rate_limit,
            call_timeout: self.call_timeout,
            max_body_bytes: self.max_body,
        }
    }

    /// The `/mcp` options.
    pub fn http(&self) -> tenantops_mcp::HttpOptions {
        let hosts: Vec<String> = self
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        tenantops_mcp::HttpOptions {
            limits: self.limits(),
            allowed_hosts: if hosts.iter().any(|h| h == "*") {
                vec![]
            } else {
                hosts
            },
            sweep_every: self.revocation_check,
        }
    }
}

/// Slack: signing secret, bot token and where its Web API is. Slack is served when the signing
/// secret is set.
#[derive(Args, Clone)]
pub struct SlackArgs {
    /// The Slack app's signing secret (verifies every request from Slack).
    #[arg(
        long = "slack-signing-secret",
        env = "TENANTOPS_SLACK_SIGNING_SECRET",
        hide_env_values = true
    )]
    pub signing_secret: Option<String>,
    /// The bot token (`xoxb-…`) used to post, edit and upload.
    #[arg(
        long = "slack-bot-token",
        env = "TENANTOPS_SLACK_BOT_TOKEN",
        hide_env_values = true
    )]
    pub bot_token: Option<String>,
    /// The app-level token (`xapp-…`) for Socket Mode (no public URL needed).
    #[arg(
        long = "slack-app-token",
        env = "TENANTOPS_SLACK_APP_TOKEN",
        hide_env_values = true
    )]
    pub app_token: Option<String>,
    /// The Slack Web API base URL (tests point it at a fake).
    #[arg(
        long = "slack-api-url",
        env = "TENANTOPS_SLACK_API_URL",
        default_value = "https://slack.com/api/"
    )]
    pub api_url: String,
    /// The Slack app's client id (enables the OAuth install flow with the client secret).
    #[arg(long = "slack-client-id", env = "TENANTOPS_SLACK_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The Slack app's client secret.
    #[arg(
        long = "slack-client-secret",
        env = "TENANTOPS_SLACK_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// This server's public base URL, e.g. `https://tenantops.example.com` (OAuth redirect URI).
    #[arg(long = "public-url", env = "TENANTOPS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Slack's OAuth authorize page.
    #[arg(
        long = "slack-authorize-url",
        env = "TENANTOPS_SLACK_AUTHORIZE_URL",
        default_value = "https://slack.com/oauth/v2/authorize"
    )]
    pub authorize_url: String,
    /// How often scheduled billing digests are checked for being due.
    #[arg(long = "slack-digest-check", env = "TENANTOPS_SLACK_DIGEST_CHECK", default_value = "1m", value_parser = humantime::parse_duration)]
    pub digest_check: std::time::Duration,
}

impl SlackArgs {
    /// The Slack surface for `config`, with the OAuth install flow when its settings are given.
    pub fn surface(
        &self,
        core: tenantops_core::Core,
        config: &tenantops_slack::SlackConfig,
    ) -> Result<tenantops_slack::Slack> {
        let surface = tenantops_slack::Slack::new(core, config)
            .context("cannot set up the Slack Web API client")?;
        match (&self.client_id, &self.client_secret, &self.public_url) {
            (None, None, _) => Ok(surface),
            (Some(id), Some(secret), Some(url)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    bail!("TENANTOPS_PUBLIC_URL must be this server's http(s) base URL");
                }
                Ok(surface.with_oauth(tenantops_slack::OAuthConfig {
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    public_url: url.clone(),
                    authorize_url: self.authorize_url.clone(),
                }))
            }
            _ => bail!(
                "the Slack install flow needs TENANTOPS_SLACK_CLIENT_ID, TENANTOPS_SLACK_CLIENT_SECRET \
                 and TENANTOPS_PUBLIC_URL together"
            ),
        }
    }

    /// The Slack configuration, when Slack is enabled (a signing secret for HTTP mode, an app
    /// token for Socket Mode, or both).
    pub fn config(&self) -> Result<Option<tenantops_slack::SlackConfig>> {
        let secret = self.signing_secret.clone().filter(|s| !s.trim().is_empty());
        let app_token = self.app_token.clone().filter(|s| !s.trim().is_empty());
        if secret.is_none() && app_token.is_none() {
            if self.bot_token.is_some() {
                bail!(
                    "TENANTOPS_SLACK_BOT_TOKEN is set but neither TENANTOPS_SLACK_SIGNING_SECRET \
                     (HTTP mode: the app's signing secret) nor TENANTOPS_SLACK_APP_TOKEN (Socket \
                     Mode: an xapp- token) is"
                );
            }
            return Ok(None);
        }
        if self.bot_token.is_none() {
            bail!("Slack is enabled but TENANTOPS_SLACK_BOT_TOKEN (xoxb-…) is not set");
        }
        if let Some(t) = &self.bot_token
            && !t.starts_with("xoxb-")
        {
            bail!("TENANTOPS_SLACK_BOT_TOKEN must be a bot token (xoxb-…)");
        }
        if let Some(t) = &app_token
            && !t.starts_with("xapp-")
        {
            bail!("TENANTOPS_SLACK_APP_TOKEN must be an app-level token (xapp-…)");
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            bail!("TENANTOPS_SLACK_API_URL must be an http(s) URL");
        }
        Ok(Some(tenantops_slack::SlackConfig {
            signing_secret: secret,
            app_token,
            bot_token: self.bot_token.clone(),
            api_url: self.api_url.clone(),
        }))
    }
}

/// Discord: the application's public key, id and bot token, and where its REST API is. Discord
/// is served when the application id and bot token are set; interactions arrive at
/// `POST /discord/interactions` (needs the public key) or over the gateway (`--discord-gateway`).
#[derive(Args, Clone)]
pub struct DiscordArgs {
    /// The application's public key, hex (verifies every interaction Discord sends).
    #[arg(
        id = "discord_public_key",
        value_name = "HEX",
        long = "discord-public-key",
        env = "TENANTOPS_DISCORD_PUBLIC_KEY"
    )]
    pub public_key: Option<String>,
    /// The application id.
    #[arg(
        id = "discord_application_id",
        value_name = "ID",
        long = "discord-application-id",
        env = "TENANTOPS_DISCORD_APPLICATION_ID"
    )]
    pub application_id: Option<String>,
    /// The bot token used to post, edit and answer.
    #[arg(
        id = "discord_bot_token",
        value_name = "TOKEN",
        long = "discord-bot-token",
        env = "TENANTOPS_DISCORD_BOT_TOKEN",
        hide_env_values = true
    )]
    pub bot_token: Option<String>,
    /// The Discord REST base URL (tests point it at a fake).
    #[arg(
        id = "discord_api_url",
        value_name = "URL",
        long = "discord-api-url",
        env = "TENANTOPS_DISCORD_API_URL",
        default_value = "https://discord.com"
    )]
    pub api_url: String,
    /// Receive interactions over the gateway (no public URL needed) instead of, or as well as,
    /// the HTTP endpoint.
    #[arg(
        id = "discord_gateway",
        long = "discord-gateway",
        env = "TENANTOPS_DISCORD_GATEWAY"
    )]
    pub gateway: bool,
    /// How often scheduled billing digests are checked for being due.
    #[arg(
        id = "discord_digest_check",
        value_name = "DURATION",
        long = "discord-digest-check",
        env = "TENANTOPS_DISCORD_DIGEST_CHECK",
        default_value = "1m",
        value_parser = humantime::parse_duration
    )]
    pub digest_check: std::time::Duration,
    /// How long an interaction's work may run before its answer is deferred and edited in later
    /// (at most 2.8 s: Discord allows 3 s in all).
    #[arg(
        id = "discord_answer_within",
        value_name = "DURATION",
        long = "discord-answer-within",
        env = "TENANTOPS_DISCORD_ANSWER_WITHIN",
        default_value = "2300ms",
        value_parser = humantime::parse_duration
    )]
    pub answer_within: std::time::Duration,
}

impl DiscordArgs {
    /// The Discord configuration, when Discord is enabled.
    pub fn config(&self) -> Result<Option<tenantops_discord::DiscordConfig>> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !set(&self.application_id) && !set(&self.bot_token) && !set(&self.public_key) {
            if self.gateway {
                bail!(
                    "--discord-gateway needs TENANTOPS_DISCORD_APPLICATION_ID and TENANTOPS_DISCORD_BOT_TOKEN"
                );
            }
            return Ok(None);
        }
        let Some(application_id) = self
            .application_id
            .as_deref()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| *n != 0)
        else {
            bail!(
                "Discord is enabled but TENANTOPS_DISCORD_APPLICATION_ID is not the application's id \
                 (a number, Developer Portal → General Information)"
            );
        };
        let Some(bot_token) = self.bot_token.clone().filter(|t| !t.trim().is_empty()) else {
            bail!(
                "Discord is enabled but TENANTOPS_DISCORD_BOT_TOKEN is not set (Developer Portal → Bot)"
            );
        };
        let public_key = self.public_key.clone().filter(|k| !k.trim().is_empty());
        if public_key.is_none() && !self.gateway {
            bail!(
                "Discord needs TENANTOPS_DISCORD_PUBLIC_KEY (HTTP interactions endpoint) or \
                 TENANTOPS_DISCORD_GATEWAY=true (gateway)"
            );
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            bail!("TENANTOPS_DISCORD_API_URL must be an http(s) URL");
        }
        Ok(Some(tenantops_discord::DiscordConfig {
            public_key,
            application_id,
            bot_token,
            api_url: Some(self.api_url.trim_end_matches('/').to_owned()),
        }))
    }
}

/// When `serve` publishes signed audit checkpoints on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishSettings {
    /// How often a tenant's checkpoint is published when its ledger grew
    /// (`TENANTOPS_CHECKPOINT_PUBLISH_EVERY`, default 24h; `0` turns the schedule off).
    pub every: std::time::Duration,
    /// The least time between two posts for one tenant
    /// (`TENANTOPS_CHECKPOINT_PUBLISH_GAP`, default 1m): on-demand requests wait for it.
    pub gap: std::time::Duration,
}

/// Reads [`PublishSettings`] from the environment.
pub fn publish_settings() -> Result<PublishSettings> {
    let read = |name: &str, default: std::time::Duration| -> Result<std::time::Duration> {
        match env(name) {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text.trim())
                .or_else(|e| {
                    if text.trim() == "0" {
                        Ok(std::time::Duration::ZERO)
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("{name}=`{text}` is not a duration like 24h or 1m")),
        }
    };
    Ok(PublishSettings {
        every: read(
            "TENANTOPS_CHECKPOINT_PUBLISH_EVERY",
            std::time::Duration::from_secs(24 * 3600),
        )?,
        gap: read(
            "TENANTOPS_CHECKPOINT_PUBLISH_GAP",
            std::time::Duration::from_secs(60),
        )?,
    })
}

/// `audit verify --published`: reading back the signed checkpoints tenantops published, with
/// the same chat settings `serve` uses.
#[derive(Args, Clone)]
pub struct PublishedArgs {
    /// Read back the signed checkpoints tenantops published to the tenant's Slack and Discord
    /// approval channels and check the ledger against them: catches a rollback of the database
    /// that the ledger alone cannot show.
    #[arg(long, requires = "tenant", conflicts_with = "dir")]
    pub published: bool,
    /// With --published: how many of each channel's newest messages to read.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub published_limit: u32,
    /// The Slack bot token (`xoxb-…`) to read with; workspaces installed through OAuth use
    /// their own.
    #[arg(
        id = "read_slack_bot_token",
        value_name = "TOKEN",
        long = "slack-bot-token",
        env = "TENANTOPS_SLACK_BOT_TOKEN",
        hide_env_values = true
    )]
    pub slack_bot_token: Option<String>,
    /// The Slack Web API base URL.
    #[arg(
        id = "read_slack_api_url",
        value_name = "URL",
        long = "slack-api-url",
        env = "TENANTOPS_SLACK_API_URL",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_url: String,
    /// The Discord bot token to read with.
    #[arg(
        id = "read_discord_bot_token",
        value_name = "TOKEN",
        long = "discord-bot-token",
        env = "TENANTOPS_DISCORD_BOT_TOKEN",
        hide_env_values = true
    )]
    pub discord_bot_token: Option<String>,
    /// The Discord REST base URL.
    #[arg(
        id = "read_discord_api_url",
        value_name = "URL",
        long = "discord-api-url",
        env = "TENANTOPS_DISCORD_API_URL",
        default_value = "https://discord.com"
    )]
    pub discord_api_url: String,
}

impl PublishedArgs {
    /// The platforms to read from: Slack always (an OAuth-installed workspace carries its own
    /// token), Discord when its bot token is set.
    pub fn sinks(
        &self,
        core: &tenantops_core::Core,
    ) -> Result<Vec<std::sync::Arc<dyn CheckpointSink>>> {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        for (name, url) in [
            ("TENANTOPS_SLACK_API_URL", &self.slack_api_url),
            ("TENANTOPS_DISCORD_API_URL", &self.discord_api_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("{name} must be an http(s) URL");
            }
        }
        let slack_token = set(&self.slack_bot_token);
        if let Some(t) = &slack_token
            && !t.starts_with("xoxb-")
        {
            bail!("TENANTOPS_SLACK_BOT_TOKEN must be a bot token (xoxb-…)");
        }
        let slack = tenantops_slack::Slack::new(
            core.clone(),
            &tenantops_slack::SlackConfig {
                signing_secret: None,
                app_token: None,
                bot_token: slack_token,
                api_url: self.slack_api_url.clone(),
            },
        )
        .context("cannot set up the Slack Web API client")?;
        let mut sinks: Vec<std::sync::Arc<dyn CheckpointSink>> = vec![std::sync::Arc::new(slack)];
        match set(&self.discord_bot_token) {
            Some(token) => sinks.push(std::sync::Arc::new(
                tenantops_discord::api::DiscordApi::new(&tenantops_discord::DiscordConfig {
                    public_key: None,
                    application_id: 0,
                    bot_token: token,
                    api_url: Some(self.discord_api_url.trim_end_matches('/').to_owned()),
                }),
            )),
            None => sinks.push(std::sync::Arc::new(NoToken {
                kind: "discord",
                variable: "TENANTOPS_DISCORD_BOT_TOKEN",
            })),
        }
        Ok(sinks)
    }
}

/// A platform `audit verify --published` has no token for: reading from it says what to set.
struct NoToken {
    kind: &'static str,
    variable: &'static str,
}

impl NoToken {
    fn missing(&self) -> String {
        format!(
            "no {} bot token: set {} (the one `tenantops serve` uses)",
            self.kind, self.variable
        )
    }
}

impl CheckpointSink for NoToken {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn post<'a>(
        &'a self,
        _: &'a Destination,
        _: &'a str,
    ) -> BoxFuture<'a, std::result::Result<String, String>> {
        Box::pin(async move { Err(self.missing()) })
    }

    fn read_back<'a>(
        &'a self,
        _: &'a Destination,
        _: usize,
    ) -> BoxFuture<'a, std::result::Result<Vec<PostedText>, String>> {
        Box::pin(async move { Err(self.missing()) })
    }
}

/// Secrets never reach a log through `Debug`.
impl std::fmt::Debug for PublishedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("PublishedArgs")
            .field("published", &self.published)
            .field("published_limit", &self.published_limit)
            .field("slack_bot_token", &set(&self.slack_bot_token))
            .field("slack_api_url", &self.slack_api_url)
            .field("discord_bot_token", &set(&self.discord_bot_token))
            .field("discord_api_url", &self.discord_api_url)
            .finish()
    }
}

/// Secrets never reach a log through `Debug`.
impl std::fmt::Debug for SlackArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("SlackArgs")
            .field("signing_secret", &set(&self.signing_secret))
            .field("bot_token", &set(&self.bot_token))
            .field("app_token", &set(&self.app_token))
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &set(&self.client_secret))
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Secrets never reach a log through `Debug`.
impl std::fmt::Debug for DiscordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordArgs")
            .field("public_key", &self.public_key)
            .field("application_id", &self.application_id)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Both {
        #[command(flatten)]
        slack: SlackArgs,
        #[command(flatten)]
        discord: DiscordArgs,
    }

    #[test]
    fn chat_secrets_are_redacted_in_debug_output() {
        let both = Both::parse_from([
            "t",
            "--slack-signing-secret",
            "s3cret-signing",
            "--slack-bot-token",
            "xoxb-s3cret",
            "--discord-bot-token",
            "d1scord-s3cret",
        ]);
        let shown = format!("{both:?}");
        for secret in ["s3cret-signing", "xoxb-s3cret", "d1scord-s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("<redacted>"));
    }
}
