//! `tenantops demo`: seeds a realistic demo tenant into a fresh database — people of each kind, a
//! business-unit tree, API keys, a month and a half of usage, a finalized invoice, an approval
//! route and one pending request, and the chat sandbox bound — then prints how to try it and
//! serves exactly as `tenantops serve` does.
//!
//! Seeding goes through catalogue operations (`Core::call`), so it is validated and audited like
//! anything a person does. It happens once: an existing demo database is served as it is, its
//! keys read back from `<db>.demo.json` (mode 0600; demo credentials only).

mod usage;

use crate::config::{DbArgs, DiscordArgs, McpArgs, SlackArgs, core_config};
use crate::exit;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tenantops_core::{Core, Outcome, Principal, Surface};

/// The default database of `tenantops demo`.
pub const DEMO_DB: &str = "./tenantops-demo.db";

/// What the demo prints on every run, kept beside the database.
#[derive(Serialize, Deserialize)]
struct Demo {
    tenant_id: String,
    tenant_name: String,
    admin_key: String,
    agent_key: String,
    pending_request: String,
}

/// The people the sandbox can play, with what they are for.
const PEOPLE: &[(&str, &str)] = &[
    ("admin", "tenant admin"),
    ("fiona", "finance approver"),
    ("sam", "security admin"),
    ("omar", "on-call engineer"),
];

/// Seeds (once) and serves.
pub async fn run(
    db: &DbArgs,
    listen: SocketAddr,
    tick: Duration,
    mcp: McpArgs,
    slack: SlackArgs,
    discord: DiscordArgs,
) -> u8 {
    let path = match db.sqlite_file("demo") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::BAD_INPUT;
        }
    };
    let saved = saved_path(&path);
    let demo = if path.exists() {
        match load(&saved, &path) {
            Ok(d) => {
                println!(
                    "tenantops demo: serving the existing demo database {}",
                    path.display()
                );
                d
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return exit::FAILURE;
            }
        }
    } else {
        // Keys of a demo database that no longer exists are worthless: start over.
        let _ = std::fs::remove_file(&saved);
        let started = Instant::now();
        match seed_fresh(db, &path).await {
            Ok(d) => {
                if let Err(e) = save(&saved, &d) {
                    eprintln!("error: {e:#}");
                    return exit::FAILURE;
                }
                println!(
                    "tenantops demo: seeded {} in {:.1} s",
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
                d
            }
            Err(e) => {
                eprintln!("error: seeding the demo failed: {e:#}");
                return exit::FAILURE;
            }
        }
    };
    print_how_to(&path, listen, &demo);
    crate::cli::serve(db, listen, tick, mcp, slack, discord).await
}

/// `<db>.demo.json`.
fn saved_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".demo.json");
    PathBuf::from(p)
}

fn load(saved: &Path, db: &Path) -> Result<Demo> {
    let text = std::fs::read_to_string(saved).map_err(|_| {
        anyhow!(
            "{} exists but is not a demo database (no {}): pick another --db, or remove it to \
             seed a new demo",
            db.display(),
            saved.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", saved.display()))
}

fn save(saved: &Path, demo: &Demo) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(saved)
        .with_context(|| format!("cannot write {}", saved.display()))?;
    file.write_all(serde_json::to_string_pretty(demo)?.as_bytes())?;
    Ok(())
}

/// Creates the database and seeds it; on failure removes what it created, so a rerun starts
/// clean.
async fn seed_fresh(db: &DbArgs, path: &Path) -> Result<Demo> {
    let mut config = core_config(db)?;
    config.create_db = true;
    let key_file = match &config.master_key {
        tenantops_core::MasterKeySource::File(p) if !p.exists() => Some(p.clone()),
        _ => None,
    };
    let core = Core::open(config)
        .await
        .with_context(|| format!("cannot create database {}", path.display()))?;
    let seeded = seed(&core).await;
    core.store().close().await;
    if seeded.is_err() {
        let mut leftovers = vec![path.to_owned()];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            leftovers.push(p.into());
        }
        leftovers.extend(key_file);
        for p in leftovers {
            let _ = std::fs::remove_file(p);
        }
    }
    seeded
}

/// Runs one operation as `who`; anything but `done` is an error naming the operation.
async fn call(core: &Core, who: &Principal, op: &str, input: Value) -> Result<Value> {
    match core.call(who, op, input).await {
        Ok(Outcome::Done { output }) => Ok(output),
        Ok(Outcome::Denied { reason }) => bail!("{op}: denied: {reason}"),
        Ok(Outcome::PendingApproval { request_id, .. }) => {
            bail!("{op}: unexpectedly waits for approval ({request_id})")
        }
        Err(e) => bail!("{op}: {e}"),
    }
}

/// Runs one operation as `who`; when it waits for a second person (growing the set of people who
/// may decide), `second` approves it. Returns the output.
async fn approved(
    core: &Core,
    who: &Principal,
    second: Option<&Principal>,
    op: &str,
    input: Value,
) -> Result<Value> {
    match core.call(who, op, input).await {
        Ok(Outcome::PendingApproval { request_id, .. }) => {
            let Some(second) = second else {
                bail!("{op}: waits for a second person ({request_id}) and none is seeded yet");
            };
            let decided = call(
                core,
                second,
                "approvals.decide",
                json!({ "request_id": request_id, "decision": "approve",
                        "comment": "demo seeding: the second person" }),
            )
            .await?;
            let request = &decided["request"];
            if request["state"] != "succeeded" {
                bail!(
                    "{op}: approved but {}: {}",
                    request["state"],
                    request["error"]
                );
            }
            Ok(request["result"].clone())
        }
        Ok(Outcome::Done { output }) => Ok(output),
        Ok(Outcome::Denied { reason }) => bail!("{op}: denied: {reason}"),
        Err(e) => bail!("{op}: {e}"),
    }
}

async fn seed(core: &Core) -> Result<Demo> {
    let tenant_name = "Acme Robotics";
    let created = core
        .create_tenant_with(tenant_name, Some("it@acme-robotics.example"), true)
        .await?;
    let admin = core.authenticate(&created.api_key, Surface::Cli).await?;
    let c = |op: &'static str, input: Value| call(core, &admin, op, input);

    for (name, kind, parent) in [
        ("acme", "company", None),
        ("engineering", "department", Some("acme")),
        ("finance", "department", Some("acme")),
        ("platform", "team", Some("engineering")),
        ("data", "team", Some("engineering")),
        ("security", "team", Some("engineering")),
        ("fpa", "team", Some("finance")),
    ] {
        c(
            "members.create_bu",
            json!({ "name": name, "kind": kind, "parent": parent }),
        )
        .await?;
    }
    c(
        "members.move_persona",
        json!({ "persona": "admin", "bu": "acme" }),
    )
    .await?;
    // The sandbox plays anyone on a demo tenant: the second person the two-person rule asks for
    // while seeding is Fiona, played there.
    tenantops_slack::sandbox::bind(core, &admin)
        .await
        .map_err(|e| anyhow!("binding the chat sandbox: {e}"))?;
    let mut second: Option<Principal> = None;
    for (handle, name, roles, bu) in [
        ("fiona", "Fiona Marsh", &["finance-approver"][..], "fpa"),
        ("sam", "Sam Okafor", &["security-admin"][..], "security"),
        (
            "omar",
            "Omar Haddad",
            &["developer", "security-admin"][..],
            "platform",
        ),
    ] {
        approved(
            core,
            &admin,
            second.as_ref(),
            "members.create_persona",
            json!({ "handle": handle, "kind": "human", "display_name": name, "roles": roles,
                    "bu": bu, "email": format!("{handle}@acme-robotics.example") }),
        )
        .await?;
        if second.is_none() {
            let user = tenantops_slack::sandbox::link(core, None, handle)
                .await
                .map_err(|e| anyhow!("linking {handle} to the chat sandbox: {e}"))?;
            second = Some(
                core.authenticate_chat(
                    tenantops_core::chat::Platform::Slack,
                    tenantops_slack::sandbox::TEAM,
                    &user,
                )
                .await?,
            );
        }
    }
    for (handle, kind, name, roles, bu) in [
        (
            "ci-bot",
            "service",
            "CI/CD pipeline",
            &["developer", "metering-service"][..],
            "platform",
        ),
        (
            "etl",
            "service",
            "Nightly data pipeline",
            &["developer"][..],
            "data",
        ),
        (
            "claude",
            "agent",
            "Claude (AI assistant)",
            &["ai-agent"][..],
            "platform",
        ),
    ] {
        c(
            "members.create_persona",
            json!({ "handle": handle, "kind": kind, "display_name": name, "roles": roles, "bu": bu }),
        )
        .await?;
    }
    let mut issued = Vec::new();
    for (persona, name, scopes, expires) in [
        ("ci-bot", "ci-deploy", &["keys:read"][..], Some("90d")),
        ("ci-bot", "ci-meter", &["usage:write"][..], Some("90d")),
        // No expiry: the compliance review flags it.
        ("etl", "etl-prod", &["members:read"][..], None),
        (
            "claude",
            "claude-mcp",
            &[
                "billing:read",
                "members:read",
                "keys:read",
                "approvals:read",
                "audit:read",
            ][..],
            Some("90d"),
        ),
    ] {
        let out = c(
            "keys.issue",
            json!({ "persona": persona, "name": name, "scopes": scopes, "expires_in": expires }),
        )
        .await?;
        let id = out["key_id"].as_str().unwrap_or_default().to_owned();
        let secret = out["api_key"].as_str().unwrap_or_default().to_owned();
        issued.push((id, secret));
    }
    let [(deploy, _), (_, meter), (etl, _), (agent_id, agent_key)] =
        <[_; 4]>::try_from(issued).map_err(|_| anyhow!("keys.issue: expected four keys"))?;

    c(
        "billing.set_prices",
        json!({ "currency": "USD", "prices": [
            {"sku": "api.requests", "unit_price": "0.0004", "unit": "request", "description": "API requests"},
            {"sku": "compute.vcpu_hours", "unit_price": "0.045", "unit": "vCPU-hour", "description": "Build and job compute"},
            {"sku": "storage.gb_days", "unit_price": "0.0023", "unit": "GB-day", "description": "Object storage"},
            {"sku": "ai.tokens", "unit_price": "0.002", "unit": "1K tokens", "description": "AI assistant tokens"}
        ]}),
    )
    .await?;
    c(
        "billing.set_cap",
        json!({ "sku": "api.requests", "cap": "1800000" }),
    )
    .await?;

    // The metering service reports usage, as it would over POST /api/usage.
    let meter = core.authenticate(&meter, Surface::Http).await?;
    let now = chrono::Utc::now();
    let (from, period) = usage::last_month(now);
    let events = usage::events(from, now, &[deploy, etl, agent_id]);
    for batch in events.chunks(500) {
        let report = call(core, &meter, "billing.ingest", json!({ "events": batch })).await?;
        if let Some(first) = report["rejected"].as_array().and_then(|r| r.first()) {
            bail!("billing.ingest rejected demo usage: {first}");
        }
    }
    c("billing.close_period", json!({ "period": period })).await?;

    approved(
        core,
        &admin,
        second.as_ref(),
        "approvals.routes_add",
        json!({ "name": "key-revocations", "operation": "keys.revoke",
                "approvers": {"roles": ["security-admin"]}, "quorum": 1, "sla": "4h",
                "escalation_persona": "admin" }),
    )
    .await?;
    let pending_request = match core
        .call(
            &admin,
            "tenant.export_all",
            json!({ "reason": "DSAR #4411: a customer asked for all their data" }),
        )
        .await?
    {
        Outcome::PendingApproval { request_id, .. } => request_id,
        other => bail!("tenant.export_all should wait for approval, got {other:?}"),
    };

    for (handle, _) in PEOPLE {
        tenantops_slack::sandbox::link(core, None, handle)
            .await
            .map_err(|e| anyhow!("linking {handle} to the chat sandbox: {e}"))?;
    }
    Ok(Demo {
        tenant_id: created.tenant_id.to_string(),
        tenant_name: tenant_name.into(),
        admin_key: created.api_key,
        agent_key,
        pending_request,
    })
}

/// The "how to try it" block.
fn print_how_to(db: &Path, listen: SocketAddr, d: &Demo) {
    let bin = std::env::args()
        .next()
        .unwrap_or_else(|| "tenantops".into());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| bin.clone());
    let db_shown = db.display();
    let db_abs = std::path::absolute(db)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| db_shown.to_string());
    let (addr, note) = if listen.port() == 0 {
        (
            "ADDR".to_owned(),
            "  (ADDR: the address on the \"listening\" line below)\n",
        )
    } else {
        (listen.to_string(), "")
    };
    let people: Vec<String> = PEOPLE
        .iter()
        .map(|(h, what)| format!("{h} ({what})"))
        .collect();
    let stdio = json!({
        "command": exe,
        "args": ["--db", db_abs, "mcp", "--stdio"],
        "env": { "TENANTOPS_API_KEY": d.agent_key },
    });
    println!(
        "
Tenant \"{name}\" ({tenant}) in {db_shown}
  people: {people}
  services: ci-bot (CI and usage metering), etl (data pipeline); agent: claude (read-only)
  pending: {req} (admin asked to export all tenant data; waits for a second person)

Try the Slack bot without Slack (the chat sandbox; `as HANDLE` switches person):
  {bin} --db {db_shown} chat --as sam
    /approvals get {req}   then `press 1`: sam approves, the export runs
    as fiona, then /billing                the finance summary
    as omar, then /members revoke etl      on-call revoke, after one confirm tap

MCP for agents (as claude, read-only):
  endpoint:  http://{addr}/mcp   (Authorization: Bearer <agent key>)
{note}  agent key: {agent}
  Claude Code: claude mcp add --transport http tenantops http://{addr}/mcp --header \"Authorization: Bearer {agent}\"
  stdio (Claude Desktop, Cursor, VS Code): {stdio}

The shell, as the admin:
  admin key: {admin}
  TENANTOPS_API_KEY={admin} {bin} --db {db_shown} call billing.summary

Keys are also in {saved} (demo credentials; mode 0600).
Serving health, metrics, /api/usage and /mcp until Ctrl-C:",
        name = d.tenant_name,
        tenant = d.tenant_id,
        people = people.join(", "),
        req = d.pending_request,
        agent = d.agent_key,
        admin = d.admin_key,
        saved = saved_path(db).display(),
    );
}
