//! The command line: parsing (clap) and the commands. Each command prints one JSON document on
//! stdout and human-readable errors on stderr, and returns an exit code from [`crate::exit`].

use crate::config::{DbArgs, DiscordArgs, McpArgs, SecretArg, SlackArgs, core_config};
use crate::exit;
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use tenantops_core::ids::TenantId;
use tenantops_core::{Core, Error, Outcome, Surface, catalogue};

/// tenantops — every ProjexCloud tenant-admin operation from the shell, chat and MCP.
#[derive(Parser, Debug)]
#[command(name = "tenantops", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the operation catalogue.
    Ops {
        /// Print the catalogue as JSON (name, summary, help, scope, risk, input/output schemas).
        #[arg(long)]
        json: bool,
    },
    /// Tenant provisioning (platform operator).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Call any catalogue operation, e.g. `tenantops call keys.list --input '{}'`.
    Call {
        /// The operation name, e.g. `members.create_persona`.
        operation: String,
        /// The input as a JSON object (default `{}`).
        #[arg(long, default_value = "{}")]
        input: String,
        /// The credential: an API key (tops_…) or a tenant-scoped JWT.
        #[arg(long, env = "TENANTOPS_API_KEY", hide_env_values = true)]
        api_key: Option<SecretArg>,
    },
    /// Serve HTTP (health, metrics) and run the approvals worker.
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
        #[arg(long, env = "TENANTOPS_LISTEN", default_value = "127.0.0.1:3300")]
        listen: std::net::SocketAddr,
        /// How often the approvals worker escalates, expires and resumes requests.
        #[arg(long, env = "TENANTOPS_APPROVAL_TICK", default_value = "5s", value_parser = humantime::parse_duration)]
        approval_tick: std::time::Duration,
        #[command(flatten)]
        mcp: McpArgs,
        #[command(flatten)]
        slack: SlackArgs,
        #[command(flatten)]
        discord: DiscordArgs,
    },
    /// Serve MCP over stdio for desktop clients (Claude Desktop, Claude Code, Cursor, VS Code),
    /// as the API key in TENANTOPS_API_KEY.
    Mcp {
        /// Speak MCP on stdin/stdout (the only local transport; HTTP is served by `serve`).
        #[arg(long, required = true)]
        stdio: bool,
        /// The credential: an API key (tops_…) or a tenant-scoped JWT.
        #[arg(long, env = "TENANTOPS_API_KEY", hide_env_values = true)]
        api_key: Option<SecretArg>,
        #[command(flatten)]
        mcp: McpArgs,
    },
    /// Discord: register the application commands (every operation, from the catalogue).
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// The audit ledger: verify and export.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The database: apply migrations, or copy a whole installation to another database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Try the Slack bot without Slack: type slash commands as a linked person, read the answers
    /// and press buttons — the real Slack adapter against an offline fake Slack.
    Chat {
        #[command(flatten)]
        args: crate::sandbox::ChatArgs,
    },
    /// Seed a demo tenant into a new database (default ./tenantops-demo.db), print how to try
    /// it, and serve as `serve` does; an existing demo database is served as it is.
    Demo {
        /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
        #[arg(long, env = "TENANTOPS_LISTEN", default_value = "127.0.0.1:3300")]
        listen: std::net::SocketAddr,
        /// How often the approvals worker escalates, expires and resumes requests.
        #[arg(long, env = "TENANTOPS_APPROVAL_TICK", default_value = "5s", value_parser = humantime::parse_duration)]
        approval_tick: std::time::Duration,
        #[command(flatten)]
        mcp: McpArgs,
        #[command(flatten)]
        slack: SlackArgs,
        #[command(flatten)]
        discord: DiscordArgs,
    },
}

impl Cli {
    /// Parses the command line; `demo` uses its own database unless `--db` or `TENANTOPS_DB`
    /// names one.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if matches!(cli.command, Command::Demo { .. })
            && matches.value_source("db") == Some(clap::parser::ValueSource::DefaultValue)
        {
            cli.db.db = crate::demo::DEMO_DB.to_owned();
        }
        cli
    }
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Applies pending schema migrations to --db and prints its engine and schema version
    /// (for deploy pipelines; `serve` also migrates at start).
    Migrate,
    /// Copies every tenant of one database into a new, empty one — e.g. from SQLite to
    /// PostgreSQL — then checks the row counts and verifies every tenant's ledger on the target.
    /// The target uses the same master key: TENANTOPS_MASTER_KEY(_FILE), or the source's key
    /// file beside a SQLite source.
    Copy {
        /// The database to copy from (a SQLite path, sqlite://PATH or postgres://…).
        #[arg(long)]
        from: String,
        /// The empty database to copy into.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant with its first admin persona and API key (printed once).
    Create {
        /// The tenant's name.
        #[arg(long)]
        name: String,
        /// The first admin's email.
        #[arg(long)]
        admin_email: Option<String>,
    },
    /// Open an export archive sealed at rest (`tenant.export_all` writes `.tar.gz.sealed`) into
    /// the `.tar.gz` inside, with its tenant's keys (BYOK included): for handing it over.
    ExportOpen {
        /// The sealed archive.
        archive: PathBuf,
        /// Where to write the `.tar.gz` (created owner-only; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DiscordCommand {
    /// Register (replace) the application commands: in one server with `--guild` (at once), or
    /// globally (Discord may take up to an hour to show them everywhere).
    Register {
        /// The server (guild) id; omit to register globally.
        #[arg(long)]
        guild: Option<u64>,
        #[command(flatten)]
        discord: DiscordArgs,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify a ledger: hash chain, Merkle tree and checkpoint signatures. Exit 4 names the first
    /// bad entry. With --published, also against the signed checkpoints tenantops posted to the
    /// tenant's chat channels, read back from Slack and Discord (catches a rollback).
    Verify {
        /// Verify this tenant's ledger in the database.
        #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
        tenant: Option<String>,
        /// Verify an export directory offline (no database).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// With --dir: the trusted verifier key (default: the export's own verifier-key.txt).
        #[arg(long, requires = "dir")]
        key: Option<String>,
        /// A checkpoint kept from earlier (a file holding the signed note from
        /// `call audit.checkpoint`, e.g. saved with `jq -r .output.checkpoint`); repeatable. The ledger must be consistent with each: this
        /// catches a rollback to an older, validly signed state.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        #[command(flatten)]
        published: crate::config::PublishedArgs,
    },
    /// Export a tenant's ledger (entries, checkpoints, verifier key) for offline verification.
    Export {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the parsed command and returns its exit code.
pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Ops { json } => ops(json),
        Command::Serve {
            listen,
            approval_tick,
            mcp,
            slack,
            discord,
        } => serve(&cli.db, listen, approval_tick, mcp, slack, discord).await,
        Command::Discord {
            command: DiscordCommand::Register { guild, discord },
        } => discord_register(guild, discord).await,
        Command::Chat { args } => crate::sandbox::run(&cli.db, args).await,
        Command::Db {
            command: DbCommand::Migrate,
        } => crate::db::migrate(&cli.db).await,
        Command::Db {
            command: DbCommand::Copy { from, to },
        } => crate::db::copy(&from, &to).await,
        Command::Demo {
            listen,
            approval_tick,
            mcp,
            slack,
            discord,
        } => crate::demo::run(&cli.db, listen, approval_tick, mcp, slack, discord).await,
        Command::Mcp {
            stdio: _,
            api_key,
            mcp,
        } => mcp_stdio(&cli.db, api_key.map(SecretArg::into_inner), mcp).await,
        Command::Tenant {
            command: TenantCommand::Create { name, admin_email },
        } => {
            with_core(&cli.db, true, |core| async move {
                let created = core.create_tenant(&name, admin_email.as_deref()).await;
                match created {
                    Ok(c) => {
                        print_json(&json!(c));
                        exit::OK
                    }
                    Err(e) => report_error(&e),
                }
            })
            .await
        }
        Command::Tenant {
            command: TenantCommand::ExportOpen { archive, out },
        } => {
            with_core(&cli.db, false, |core| async move {
                let file = {
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create_new(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        options.mode(0o600);
                    }
                    options.open(&out)
                };
                let mut file = match file {
                    Ok(f) => std::io::BufWriter::new(f),
                    Err(e) => {
                        eprintln!(
                            "error: cannot create {}: {e} (pick a new path)",
                            out.display()
                        );
                        return exit::BAD_INPUT;
                    }
                };
                let opened = core.open_export(&archive, &mut file).await;
                let flushed = std::io::Write::flush(&mut file);
                match (opened, flushed) {
                    (Ok((tenant, bytes)), Ok(())) => {
                        print_json(&json!({ "tenant_id": tenant, "out": out, "bytes": bytes }));
                        exit::OK
                    }
                    (Err(e), _) => {
                        drop(file);
                        let _ = std::fs::remove_file(&out);
                        report_error(&e)
                    }
                    (_, Err(e)) => {
                        eprintln!("error: writing {}: {e}", out.display());
                        exit::FAILURE
                    }
                }
            })
            .await
        }
        Command::Call {
            operation,
            input,
            api_key,
        } => {
            call(
                &cli.db,
                operation,
                input,
                api_key.map(SecretArg::into_inner),
            )
            .await
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    tenant,
                    dir,
                    key,
                    checkpoints,
                    published,
                },
        } => {
            let mut trusted = Vec::new();
            for path in &checkpoints {
                match std::fs::read_to_string(path) {
                    // As `jq -r` saves it, with a newline after the note's own last one.
                    Ok(text) => trusted
                        .push(tenantops_core::ledger::checkpoint::note_from_file(&text).to_owned()),
                    Err(e) => {
                        eprintln!("error: --checkpoint {}: {e}", path.display());
                        return exit::BAD_INPUT;
                    }
                }
            }
            match (tenant, dir) {
                (_, Some(dir)) => {
                    if let Some(k) = &key
                        && let Err(e) =
                            tenantops_core::ledger::checkpoint::CheckpointVerifier::new(k)
                    {
                        eprintln!("error: --key: {e}");
                        return exit::BAD_INPUT;
                    }
                    if key.is_none() {
                        eprintln!(
                            "note: trusting the verifier key inside the export; pass --key with a key \
                         obtained independently to rule out a substituted export"
                        );
                    }
                    verdict(tenantops_core::ledger::verify_dir(
                        &dir,
                        key.as_deref(),
                        &trusted,
                    ))
                }
                (Some(tenant), None) => {
                    let Some(tenant) = TenantId::parse(&tenant) else {
                        eprintln!("error: --tenant: `{tenant}` is not a tenant id (tn_…)");
                        return exit::BAD_INPUT;
                    };
                    if published.published {
                        return verify_published(&cli.db, tenant, &trusted, published).await;
                    }
                    with_core(&cli.db, false, |core| async move {
                        verdict(core.verify_audit_against(&tenant, &trusted).await)
                    })
                    .await
                }
                (None, None) => exit::BAD_INPUT,
            }
        }
        Command::Audit {
            command: AuditCommand::Export { tenant, out },
        } => {
            let Some(tenant) = TenantId::parse(&tenant) else {
                eprintln!("error: --tenant: `{tenant}` is not a tenant id (tn_…)");
                return exit::BAD_INPUT;
            };
            with_core(&cli.db, false, |core| async move {
                match core.export_audit(&tenant, &out).await {
                    Ok(n) => {
                        print_json(&json!({ "tenant": tenant, "entries": n, "dir": out }));
                        exit::OK
                    }
                    Err(e) => report_error(&e),
                }
            })
            .await
        }
    }
}

/// `discord register [--guild ID]`: replaces the application's commands with the catalogue's.
async fn discord_register(guild: Option<u64>, discord: DiscordArgs) -> u8 {
    let config = match discord.config() {
        Ok(Some(c)) => c,
        Ok(None) => {
            eprintln!(
                "error: set TENANTOPS_DISCORD_APPLICATION_ID and TENANTOPS_DISCORD_BOT_TOKEN to register commands"
            );
            return exit::BAD_INPUT;
        }
        Err(e) => {
            // Registering needs no public key: the endpoint is not served here.
            if discord.public_key.is_none() && !discord.gateway {
                let mut with_gateway = discord.clone();
                with_gateway.gateway = true;
                if let Ok(Some(c)) = with_gateway.config() {
                    return register_with(guild, c).await;
                }
            }
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    register_with(guild, config).await
}

async fn register_with(guild: Option<u64>, config: tenantops_discord::DiscordConfig) -> u8 {
    let api = tenantops_discord::api::DiscordApi::new(&config);
    let commands = tenantops_discord::commands::all();
    let names: Vec<String> = tenantops_chat::groups::groups()
        .iter()
        .map(|g| g.name.to_owned())
        .collect();
    match api.register(guild, commands).await {
        Ok(n) => {
            println!(
                "{}",
                json!({
                    "registered": n,
                    "commands": names,
                    "scope": if guild.is_some() { "guild" } else { "global" },
                    "guild": guild.map(|g| g.to_string()),
                })
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: cannot register the Discord commands: {e}");
            exit::FAILURE
        }
    }
}

/// `serve` (also what `demo` runs once seeded).
pub(crate) async fn serve(
    db: &DbArgs,
    listen: std::net::SocketAddr,
    tick: std::time::Duration,
    mcp: McpArgs,
    slack: SlackArgs,
    discord: DiscordArgs,
) -> u8 {
    let metrics = crate::metrics::Metrics::new();
    let mut config = match core_config(db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    config.create_db = false;
    if config.key_decisions == tenantops_core::proof::KeyDecisions::AnyKey {
        eprintln!(
            "warning: {}={} weakens the two-person rule: any API key decides approvals, even \
             one issued for a colleague, so one person can approve their own request",
            crate::config::WEAKEN_VAR,
            crate::config::WEAKEN_PHRASE
        );
        tracing::warn!("the two-person rule is weakened: any API key decides approvals");
    }
    let publish = match crate::config::publish_settings() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    config
        .notifiers
        .push(std::sync::Arc::new(crate::metrics::MetricsNotifier(
            metrics.clone(),
        )));
    let slack_config = match slack.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    // Slack hears about approvals through the core's notification port, registered before the
    // core opens; its worker starts once the core is there.
    let slack_queue = slack_config.as_ref().map(|_| {
        let (notifier, rx) = tenantops_chat::approvals::notifier();
        config.notifiers.push(std::sync::Arc::new(notifier));
        rx
    });
    let discord_config = match discord.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    let discord_queue = discord_config.as_ref().map(|_| {
        let (notifier, rx) = tenantops_chat::approvals::notifier();
        config.notifiers.push(std::sync::Arc::new(notifier));
        rx
    });
    let core = match Core::open(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot open database {}: {e}", db);
            return exit::FAILURE;
        }
    };
    let slack_surface = match (slack_config, slack_queue) {
        (Some(cfg), Some(rx)) => match slack.surface(core.clone(), &cfg) {
            Ok(surface) => Some(crate::serve::SlackSurface {
                surface,
                queue: rx,
                digest_check: slack.digest_check,
                app_token: cfg.app_token.clone(),
            }),
            Err(e) => {
                eprintln!("error: Slack: {e:#}");
                return exit::FAILURE;
            }
        },
        _ => None,
    };
    let discord_surface = match (discord_config, discord_queue) {
        (Some(cfg), Some(rx)) => match tenantops_discord::Discord::new(core.clone(), &cfg) {
            Ok(surface) => Some(crate::serve::DiscordSurface {
                surface: surface.with_answer_within(discord.answer_within),
                queue: rx,
                gateway: discord.gateway,
                digest_check: discord.digest_check,
            }),
            Err(e) => {
                eprintln!("error: Discord: {e}");
                return exit::BAD_INPUT;
            }
        },
        _ => None,
    };
    match crate::serve::run(
        core.clone(),
        metrics,
        listen,
        tick,
        mcp.http(),
        crate::serve::ChatSurfaces {
            slack: slack_surface,
            discord: discord_surface,
            publish,
        },
    )
    .await
    {
        Ok(()) => {
            core.store().close().await;
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

/// `mcp --stdio`: MCP on stdin/stdout as one credential; stdout carries only protocol messages,
/// so every diagnostic goes to stderr. Exit 3 when the credential is refused or revoked.
async fn mcp_stdio(db: &DbArgs, credential: Option<String>, mcp: McpArgs) -> u8 {
    let Some(credential) = credential else {
        eprintln!(
            "error: no credential: set TENANTOPS_API_KEY to an API key of the persona the agent \
             acts as (see README, \"Connect an MCP client\")"
        );
        return exit::DENIED;
    };
    with_core(db, false, |core| async move {
        let principal = match core.authenticate(credential.trim(), Surface::Mcp).await {
            Ok(p) => p,
            Err(Error::Unauthenticated(reason)) => {
                eprintln!("error: TENANTOPS_API_KEY refused: {reason}");
                return exit::DENIED;
            }
            Err(e) => return report_error(&e),
        };
        match tenantops_mcp::stdio::serve(core, principal, mcp.limits(), mcp.revocation_check).await
        {
            Ok(()) => exit::OK,
            Err(e @ tenantops_mcp::stdio::StdioError::Revoked(_)) => {
                eprintln!("error: {e}; the MCP server stopped");
                exit::DENIED
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAILURE
            }
        }
    })
    .await
}

fn ops(as_json: bool) -> u8 {
    let all = catalogue();
    if as_json {
        print_json(&serde_json::to_value(all).unwrap_or(Value::Null));
    } else {
        for op in all {
            let scope = op.scope.map(|s| s.as_str()).unwrap_or("-");
            out(&format!(
                "{:<26} {:<12} {:<22} {}",
                op.name,
                format!("{:?}", op.risk).to_lowercase(),
                scope,
                op.summary
            ));
        }
    }
    exit::OK
}

async fn with_core<F, Fut>(db: &DbArgs, create: bool, f: F) -> u8
where
    F: FnOnce(Core) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let core = match open_core(db, create).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let code = f(core.clone()).await;
    core.store().close().await;
    code
}

async fn open_core(db: &DbArgs, create: bool) -> anyhow::Result<Core> {
    let mut config = core_config(db)?;
    config.create_db = create;
    Core::open(config)
        .await
        .with_context(|| format!("cannot open database {}", db))
}

async fn call(db: &DbArgs, operation: String, input: String, credential: Option<String>) -> u8 {
    let input: Value = match serde_json::from_str(&input) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_input("input", "the input must be a JSON object, e.g. '{}'"),
        Err(e) => return bad_input("input", &format!("not valid JSON: {e}")),
    };
    let Some(credential) = credential else {
        let reason = "no credential: set TENANTOPS_API_KEY or pass --api-key";
        print_json(&json!({ "status": "denied", "reason": reason }));
        eprintln!("denied: {reason}");
        return exit::DENIED;
    };
    with_core(db, false, |core| async move {
        let principal = match core.authenticate(&credential, Surface::Cli).await {
            Ok(p) => p,
            Err(Error::Unauthenticated(reason)) => {
                print_json(&json!({ "status": "denied", "reason": reason }));
                eprintln!("denied: {reason}");
                return exit::DENIED;
            }
            Err(e) => return report_error(&e),
        };
        match core.call(&principal, &operation, input).await {
            Ok(outcome) => {
                print_json(&json!(outcome));
                match outcome {
                    Outcome::Done { .. } | Outcome::PendingApproval { .. } => exit::OK,
                    Outcome::Denied { reason } => {
                        eprintln!("denied: {reason}");
                        exit::DENIED
                    }
                }
            }
            Err(e) => report_error(&e),
        }
    })
    .await
}

fn bad_input(field: &str, message: &str) -> u8 {
    print_json(
        &json!({ "status": "error", "kind": "bad_input", "field": field, "message": message }),
    );
    eprintln!("error: invalid input at `{field}`: {message}");
    exit::BAD_INPUT
}

/// Prints an error as JSON on stdout and one line on stderr; returns its exit code.
fn report_error(e: &Error) -> u8 {
    match e {
        Error::BadInput { field, message } => bad_input(field, message),
        Error::Denied { reason } | Error::Unauthenticated(reason) => {
            print_json(&json!({ "status": "denied", "reason": reason }));
            eprintln!("denied: {reason}");
            exit::DENIED
        }
        Error::UnknownOperation(_) => {
            print_json(&json!({ "status": "error", "kind": e.kind(), "message": e.to_string() }));
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
        _ => {
            print_json(&json!({ "status": "error", "kind": e.kind(), "message": e.to_string() }));
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn verdict(
    result: tenantops_core::Result<
        Result<tenantops_core::ledger::verify::Report, tenantops_core::ledger::verify::Failure>,
    >,
) -> u8 {
    match result {
        Ok(Ok(report)) => {
            print_json(&json!({ "ok": true, "report": report }));
            exit::OK
        }
        Ok(Err(failure)) => {
            print_json(&json!({
                "ok": false,
                "first_bad_seq": failure.seq,
                "error": failure.to_string(),
            }));
            eprintln!("audit ledger NOT intact: {failure}");
            exit::LEDGER_BROKEN
        }
        Err(e) => report_error(&e),
    }
}

/// `audit verify --tenant ID --published`: the ledger checked against the checkpoints read back
/// from the chat platforms they were published to (and any kept with `--checkpoint`).
async fn verify_published(
    db: &DbArgs,
    tenant: TenantId,
    kept: &[String],
    args: crate::config::PublishedArgs,
) -> u8 {
    with_core(db, false, |core| async move {
        let sinks = match args.sinks(&core) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return exit::BAD_INPUT;
            }
        };
        let limit = args.published_limit as usize;
        match core
            .verify_audit_published(&tenant, &sinks, limit, kept)
            .await
        {
            Ok((Ok(report), published)) => {
                print_json(&json!({ "ok": true, "report": report, "published": published }));
                exit::OK
            }
            Ok((Err(failure), published)) => {
                print_json(&json!({
                    "ok": false,
                    "first_bad_seq": failure.seq,
                    "error": failure.to_string(),
                    "published": published,
                }));
                eprintln!("audit ledger NOT intact: {failure}");
                exit::LEDGER_BROKEN
            }
            // Nothing to read, or a platform that cannot be read: the check could not be made.
            Err(e @ (Error::Config(_) | Error::NotFound(_))) => {
                let message = match &e {
                    Error::Config(m) | Error::NotFound(m) => m.as_str(),
                    _ => "",
                };
                print_json(&json!({ "status": "error", "kind": e.kind(), "message": message }));
                eprintln!("error: {message}");
                exit::FAILURE
            }
            Err(e) => report_error(&e),
        }
    })
    .await
}

fn print_json(v: &Value) {
    out(&serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into()));
}

/// Writes a line to stdout; a closed pipe (`| head`) ends output quietly instead of panicking.
fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}
