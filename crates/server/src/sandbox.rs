//! `tenantops chat`: the offline Slack sandbox. It opens the core on the database, runs the real
//! Slack adapter against an in-process fake Slack (`tenantops_slack::sandbox`), and lets a
//! person type slash commands as a linked persona, read the answers as text and press buttons.
//!
//! Who is played: the sandbox workspace (`TSANDBOX`) belongs to one tenant of the database. The
//! first run binds it with a credential (`TENANTOPS_API_KEY`, e.g. the admin key `tenant create`
//! printed); afterwards no credential is needed on a demo tenant. The person is `--as HANDLE`,
//! else the credential's persona, else `admin` (the first admin `tenant create` makes). On a demo
//! tenant (`tenantops demo`) the sandbox plays anyone; on any other tenant it plays only the
//! person whose own key is given, and its decisions there never count (the core refuses them).

mod session;

use crate::config::{DbArgs, core_config};
use crate::exit;
use std::sync::Arc;
use std::time::Duration;
use tenantops_core::chat::Platform;
use tenantops_core::{Core, Error, Outcome, Principal, Surface};
use tenantops_slack::sandbox::{self, Sandbox, TEAM};

/// The options of `tenantops chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChatArgs {
    /// The persona to play (a human's handle); default: the credential's persona, else `admin`.
    #[arg(long = "as", value_name = "HANDLE")]
    pub handle: Option<String>,
    /// A credential to connect the sandbox workspace and link people with (needed on the first
    /// run against a database, e.g. the admin key `tenant create` printed).
    #[arg(long, env = "TENANTOPS_API_KEY", hide_env_values = true)]
    pub api_key: Option<crate::config::SecretArg>,
    /// How often the approvals worker escalates, expires and resumes requests.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub approval_tick: Duration,
}

/// A refusal to start, with its exit code.
struct Refusal(u8, String);

/// Runs the sandbox until `quit` or the end of input.
pub async fn run(db: &DbArgs, args: ChatArgs) -> u8 {
    let mut config = match core_config(db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    config.create_db = false;
    let (notifier, queue) = tenantops_slack::approvals::notifier();
    config.notifiers.push(Arc::new(notifier));
    let core = match Core::open(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: cannot open database {}: {e}\nhint: create one with `tenantops tenant \
                 create`, or run `tenantops demo` for one with a seeded tenant",
                db
            );
            return exit::FAILURE;
        }
    };
    let worker = crate::serve::spawn_worker(
        core.clone(),
        crate::metrics::Metrics::new(),
        args.approval_tick,
    );
    let code = match setup(&core, &args).await {
        Ok((issuer, handle)) => match Sandbox::start(core.clone(), queue).await {
            Ok((sb, deliveries)) => {
                session::Session::new(sb, deliveries, core.clone(), issuer, handle)
                    .run()
                    .await
            }
            Err(e) => {
                eprintln!("error: cannot start the sandbox: {e}");
                exit::FAILURE
            }
        },
        Err(Refusal(code, message)) => {
            eprintln!("error: {message}");
            code
        }
    };
    worker.abort();
    core.store().close().await;
    code
}

/// Binds the sandbox workspace if needed and links the person to play; returns the
/// credential's principal (if any) and the handle played.
async fn setup(core: &Core, args: &ChatArgs) -> Result<(Option<Principal>, String), Refusal> {
    let issuer = match args.api_key.as_ref().map(|k| k.expose().trim()) {
        Some(key) if !key.is_empty() => match core.authenticate(key, Surface::Cli).await {
            Ok(p) => Some(p),
            Err(Error::Unauthenticated(reason)) => {
                return Err(Refusal(
                    exit::DENIED,
                    format!("TENANTOPS_API_KEY refused: {reason}"),
                ));
            }
            Err(e) => return Err(Refusal(exit::FAILURE, e.to_string())),
        },
        _ => None,
    };
    let bound = core
        .chat_workspace(Platform::Slack, TEAM)
        .await
        .map_err(|e| Refusal(exit::FAILURE, e.to_string()))?;
    match (&bound, &issuer) {
        (None, None) => {
            return Err(Refusal(
                exit::DENIED,
                "the chat sandbox is not set up in this database yet: run `tenantops chat` once \
                 with TENANTOPS_API_KEY set to a tenant admin's key (the api_key `tenant create` \
                 printed) to connect it to that tenant — or try `tenantops demo`, whose database \
                 comes ready"
                    .into(),
            ));
        }
        (None, Some(p)) => sandbox::bind(core, p).await.map_err(|reason| {
            Refusal(
                exit::DENIED,
                format!(
                    "cannot connect the sandbox workspace: {reason}\nhint: binding needs \
                     connectors:write; use a tenant admin's key (the one `tenant create` printed)"
                ),
            )
        })?,
        (Some(ws), Some(p)) if ws.tenant_id != *p.tenant() => {
            return Err(Refusal(
                exit::DENIED,
                format!(
                    "this database's sandbox workspace belongs to tenant {}, not to the key's \
                     tenant {}: a database has one sandbox; use a key of that tenant or another \
                     --db",
                    ws.tenant_id,
                    p.tenant()
                ),
            ));
        }
        (Some(_), _) => {}
    }
    let handle = match (&args.handle, &issuer) {
        (Some(h), _) => session::check_handle(h).map_err(|m| Refusal(exit::BAD_INPUT, m))?,
        (None, Some(p)) => human_handle(core, p).await?,
        (None, None) => "admin".to_owned(),
    };
    sandbox::link(core, issuer.as_ref(), &handle)
        .await
        .map_err(|why| Refusal(exit::DENIED, cannot_play(&handle, &why)))?;
    Ok((issuer, handle))
}

/// The handle of the credential's persona, which must be a person.
async fn human_handle(core: &Core, p: &Principal) -> Result<String, Refusal> {
    let who = match core.call(p, "whoami", serde_json::json!({})).await {
        Ok(Outcome::Done { output }) => output,
        Ok(Outcome::Denied { reason }) => return Err(Refusal(exit::DENIED, reason)),
        Ok(Outcome::PendingApproval { .. }) => {
            return Err(Refusal(exit::FAILURE, "whoami waits for approval?".into()));
        }
        Err(e) => return Err(Refusal(exit::FAILURE, e.to_string())),
    };
    let handle = who["handle"].as_str().unwrap_or_default().to_owned();
    if who["kind"] != "human" {
        return Err(Refusal(
            exit::BAD_INPUT,
            format!(
                "the key's persona `{handle}` is not a person, and the sandbox plays a person: \
                 pass --as HANDLE of a human persona"
            ),
        ));
    }
    Ok(handle)
}

/// Why `handle` cannot be played, and what to do.
fn cannot_play(handle: &str, why: &str) -> String {
    format!(
        "cannot play `{handle}`: {why}\nhint: outside a demo tenant the sandbox plays only the \
         person whose own key TENANTOPS_API_KEY is, and its decisions never count there: decide \
         in Slack, Discord, the console or the CLI"
    )
}
