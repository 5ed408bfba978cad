//! Signed checkpoints published where the tenant keeps them: `audit.publish_checkpoint` through
//! `serve` into the approval channel of a Slack workspace (installed through OAuth) and a
//! Discord server (bound from inside it), and `audit verify --published` reading them back from
//! the fake platforms — which catches a rollback of the database file that `audit verify` alone
//! calls intact.

use crate::approvals::serve_with;
use crate::fake_discord::{self, FakeDiscord};
use crate::fake_slack::{self, FakeSlack};
use crate::support::{Run, Sandbox, Tenant};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const APPROVALS: &str = "C0APPROVE";
/// The workspace the fake's OAuth exchange installs into.
const TEAM: &str = "T0NEWCO";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tenant whose Slack workspace is installed through OAuth, with `serve` running.
struct SlackWorld {
    sb: Sandbox,
    t: Tenant,
    fake: FakeSlack,
    server: Option<Server>,
}

fn slack_env(fake: &FakeSlack) -> Vec<(&'static str, String)> {
    vec![
        (
            "TENANTOPS_SLACK_SIGNING_SECRET",
            fake_slack::SIGNING_SECRET.into(),
        ),
        ("TENANTOPS_SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN.into()),
        ("TENANTOPS_SLACK_API_URL", fake.api_url()),
        ("TENANTOPS_SLACK_CLIENT_ID", "123.456".into()),
        ("TENANTOPS_SLACK_CLIENT_SECRET", "client-secret".into()),
        (
            "TENANTOPS_PUBLIC_URL",
            "https://tenantops.example.com".into(),
        ),
        // Two on-demand publications within a minute go out at once here.
        ("TENANTOPS_CHECKPOINT_PUBLISH_GAP", "0s".into()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl SlackWorld {
    fn start() -> Self {
        let sb = Sandbox::new();
        let t = sb.create_tenant("acme");
        let link = sb.call_ok(
            &t.api_key,
            "tenant.chat_install_link",
            json!({"platform": "slack", "approval_channel": APPROVALS}),
        );
        let fake = FakeSlack::start();
        let (server, addr) = serve_with(&sb, &as_refs(&slack_env(&fake)));
        let server = Server(server);
        let state = link["state"].as_str().unwrap();
        let (status, page) = crate::support::http(
            &addr,
            "GET",
            &format!("/slack/oauth/callback?code=good-code&state={state}"),
            &[],
            "",
        );
        assert_eq!(status, 200, "{page}");
        Self {
            sb,
            t,
            fake,
            server: Some(server),
        }
    }

    fn call_ok(&self, op: &str, input: Value) -> Value {
        self.sb.call_ok(&self.t.api_key, op, input)
    }

    /// `audit verify --tenant T [--published]` with the chat settings `serve` has.
    fn verify(&self, published: bool) -> Run {
        let mut args = vec!["audit", "verify", "--tenant", &self.t.tenant_id];
        if published {
            args.push("--published");
        }
        self.sb.run_env(&args, &as_refs(&slack_env(&self.fake)))
    }

    /// Publishes on demand and waits for the `n`th checkpoint message in the approval channel
    /// and for its audit entry (written once the message is posted).
    fn publish(&self, n: usize) -> fake_slack::Stored {
        let out = self.call_ok("audit.publish_checkpoint", json!({}));
        assert_eq!(
            out["destinations"],
            json!([{"kind": "slack", "workspace": TEAM, "channel": APPROVALS}]),
            "{out}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let posted: Vec<_> = self
                .fake
                .messages(APPROVALS)
                .into_iter()
                .filter(|m| m.text.starts_with("Signed audit checkpoint"))
                .collect();
            if posted.len() >= n {
                let entries = self.call_ok(
                    "audit.list",
                    json!({"op": "audit.checkpoint_published", "limit": 50}),
                );
                if entries["entries"].as_array().unwrap().len() >= n {
                    return posted[n - 1].clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "checkpoint {n} never posted; calls: {:#?}",
                self.fake.calls()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn work(&self, names: &[&str]) {
        for name in names {
            self.call_ok(
                "members.create_bu",
                json!({"name": name, "kind": "cost-center"}),
            );
        }
    }
}

/// A consistent copy of the live database, as a backup tool would take it: SQLite's
/// `VACUUM INTO`, or `pg_dump` on PostgreSQL.
fn backup(sb: &Sandbox, to: &Path) {
    if sb.on_postgres() {
        let out = std::process::Command::new("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(to)
            .arg(sb.db())
            .output()
            .expect("run pg_dump (PostgreSQL's client tools)");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    sb.exec("VACUUM INTO $1", &[to.to_str().unwrap().into()]);
}

/// Puts a backup back in place of the database (the server stopped): the file copied back, or
/// `pg_restore --clean` on PostgreSQL.
fn restore(backup: &Path, sb: &Sandbox) {
    if sb.on_postgres() {
        let out = std::process::Command::new("pg_restore")
            .args(["--clean", "--if-exists", "--single-transaction", "--dbname"])
            .arg(sb.db())
            .arg(backup)
            .output()
            .expect("run pg_restore (PostgreSQL's client tools)");
        assert!(
            out.status.success(),
            "pg_restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let db = sb.db_file();
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::copy(backup, db).unwrap();
}

#[track_caller]
fn intact(run: &Run) -> &Value {
    run.code(0);
    let v = run.json();
    assert_eq!(v["ok"], true, "{v}");
    v
}

#[test]
fn a_rolled_back_database_verifies_alone_but_not_against_the_checkpoints_published_to_slack() {
    let mut w = SlackWorld::start();
    w.work(&["engineering", "sales"]);
    // On demand: the signed note, verbatim in a code block, in the approval channel, posted
    // with the workspace's own (installed) token.
    let first = w.publish(1);
    let (origin, size) = {
        let block = first.text.split("```").nth(1).unwrap();
        let mut lines = block.trim_start_matches('\n').lines();
        (
            lines.next().unwrap().to_owned(),
            lines.next().unwrap().to_owned(),
        )
    };
    assert_eq!(origin, format!("tenantops/audit/{}", w.t.tenant_id));
    assert!(
        first.text.contains(&format!("{size} entries")),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("\n\n\u{2014} tenantops/audit/"),
        "{}",
        first.text
    );
    let post = w
        .fake
        .of("chat.postMessage")
        .into_iter()
        .find(|c| {
            c.body["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Signed audit")
        })
        .unwrap();
    assert_eq!(post.body["_token"], fake_slack::INSTALLED_TOKEN);
    // The publication is in the ledger, with where it went.
    let published = w.call_ok(
        "audit.list",
        json!({"op": "audit.checkpoint_published", "limit": 5}),
    );
    let entry = &published["entries"][0];
    assert_eq!(entry["detail"]["size"].to_string(), size, "{entry}");
    assert_eq!(
        entry["detail"]["posted"][0]["message_id"],
        first.ts.as_str()
    );
    assert_eq!(entry["detail"]["reason"], "on_demand");

    // A backup taken now...
    let saved = w.sb.dir().join("backup.db");
    backup(&w.sb, &saved);
    let at_backup = intact(&w.verify(false))["report"]["entries"]
        .as_u64()
        .unwrap();
    // ...then more work, published again.
    w.work(&["marketing", "support", "legal"]);
    w.publish(2);
    // Someone else's message in the channel, however it looks, is not the bot's: never read.
    w.fake.post_as_person(
        APPROVALS,
        "U0MALLORY",
        &format!(
            "Signed audit checkpoint of tenant {}: 1 entries.\n```\nnot a note\n```",
            w.t.tenant_id
        ),
    );
    let happy = w.verify(true);
    let v = intact(&happy);
    assert_eq!(v["published"]["checked"], 2, "{v}");
    assert_eq!(v["published"]["read"][0]["workspace"], TEAM, "{v}");
    assert_eq!(v["published"]["read"][0]["checkpoints"], 2, "{v}");

    // The database is rolled back to the backup: the newest entries are gone, and the older
    // head is validly signed.
    w.server.take();
    restore(&saved, &w.sb);
    let alone = w.verify(false);
    let v = intact(&alone);
    assert_eq!(
        v["report"]["entries"], at_backup,
        "the rollback looks intact: {v}"
    );
    // Against what was published to Slack, it is not.
    let caught = w.verify(true);
    caught.code(4);
    let v = caught.json();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_seq"], at_backup, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("deleted"), "{error}");
    assert!(error.contains("published"), "{error}");
    assert_eq!(v["published"]["checked"], 2, "{v}");
    assert!(caught.stderr.contains("NOT intact"), "{}", caught.stderr);
}

#[test]
fn an_altered_published_checkpoint_is_refused_and_an_unreadable_channel_is_one_clear_error() {
    let w = SlackWorld::start();
    let posted = w.publish(1);
    intact(&w.verify(true));
    // `--published` without a tenant is a usage error.
    w.sb.run(&["audit", "verify", "--dir", ".", "--published"])
        .code(2);

    // One character of the signed root hash changed in Slack.
    w.fake.edit_text(APPROVALS, &posted.ts, |text| {
        let root = text.split("```").nth(1).unwrap().lines().nth(3).unwrap();
        let mut forged = root.as_bytes().to_vec();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        text.replace(root, std::str::from_utf8(&forged).unwrap())
    });
    let run = w.verify(true);
    run.code(4);
    let v = run.json();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["first_bad_seq"].is_null(), "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("altered"), "{error}");
    assert!(error.contains(&posted.ts), "{error}");

    // The bot was removed from the channel: exit 1, one line saying what to do.
    w.fake.remove_bot_from(APPROVALS);
    let run = w.verify(true);
    run.code(1);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("not_in_channel"), "{}", run.stderr);
    assert!(run.stderr.contains("/invite"), "{}", run.stderr);

    // Slack cannot be reached at all: exit 1, one line.
    let mut env = slack_env(&w.fake);
    env.retain(|(k, _)| *k != "TENANTOPS_SLACK_API_URL");
    env.push(("TENANTOPS_SLACK_API_URL", "http://127.0.0.1:9/api/".into()));
    let run = w.sb.run_env(
        &["audit", "verify", "--tenant", &w.t.tenant_id, "--published"],
        &as_refs(&env),
    );
    run.code(1);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot read the checkpoints published to slack"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot reach Slack") && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn checkpoints_are_published_to_discord_and_read_back_from_it() {
    const CHANNEL: &str = "1260000000000000001";
    const OWNER: &str = "1000000000000000001";
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let fake = FakeDiscord::start();
    let env = [
        (
            "TENANTOPS_DISCORD_PUBLIC_KEY",
            fake_discord::PUBLIC_KEY_HEX.to_owned(),
        ),
        (
            "TENANTOPS_DISCORD_APPLICATION_ID",
            fake_discord::APPLICATION_ID.to_owned(),
        ),
        (
            "TENANTOPS_DISCORD_BOT_TOKEN",
            fake_discord::BOT_TOKEN.to_owned(),
        ),
        ("TENANTOPS_DISCORD_API_URL", fake.api_url()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (server, addr) = serve_with(&sb, &env);
    let _server = Server(server);
    // Bound from inside the server by someone who can manage it.
    let link = sb.call_ok(
        &t.api_key,
        "tenant.chat_install_link",
        json!({"platform": "discord", "approval_channel": CHANNEL}),
    );
    let mut bind = fake_discord::command(
        "1400000000000000001",
        OWNER,
        "tenant",
        json!([{"type": 1, "name": "bind", "options": [
            {"type": 3, "name": "code", "value": link["state"]}]}]),
    );
    bind["member"]["permissions"] = json!("32");
    let body = bind.to_string();
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    headers.extend(fake_discord::sign(&body, chrono::Utc::now().timestamp()));
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _) = crate::support::http(&addr, "POST", "/discord/interactions", &headers, &body);
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sb.call_ok(&t.api_key, "tenant.chat_list", json!({}))["workspaces"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the server was never bound");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = sb.call_ok(&t.api_key, "audit.publish_checkpoint", json!({}));
    assert_eq!(out["destinations"][0]["kind"], "discord", "{out}");
    let posted = fake.wait_for("the checkpoint message", |c| {
        c.iter().any(|x| {
            x.method == "POST"
                && x.path == format!("/channels/{CHANNEL}/messages")
                && x.body["content"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Signed audit checkpoint"))
        })
    });
    let post = posted
        .iter()
        .find(|x| {
            x.body["content"]
                .as_str()
                .is_some_and(|s| s.starts_with("Signed"))
        })
        .unwrap();
    // Plain content (the note copyable as text), nobody pinged.
    assert_eq!(
        post.body["allowed_mentions"]["parse"],
        json!([]),
        "{}",
        post.body
    );
    assert!(post.body.get("embeds").is_none_or(|e| e == &json!([])));
    // A person's message and a reply under the publication are not publications.
    fake.post_as_person(
        CHANNEL,
        "1000000000000000099",
        "Signed audit checkpoint of nothing",
    );
    let discord = |published: bool| {
        let mut args = vec!["audit", "verify", "--tenant", &t.tenant_id];
        if published {
            args.push("--published");
        }
        sb.run_env(&args, &env)
    };
    let run = discord(true);
    let v = intact(&run);
    assert_eq!(v["published"]["checked"], 1, "{v}");
    assert_eq!(v["published"]["read"][0]["kind"], "discord", "{v}");
    assert_eq!(v["published"]["read"][0]["messages"], 1, "{v}");
    // Someone edits the bot's message content (as anyone with the bot token could).
    let id = fake
        .messages(CHANNEL)
        .iter()
        .find(|m| m["content"].as_str().unwrap().starts_with("Signed"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.edit_content(CHANNEL, &id, |c| {
        c.replace("\n\n\u{2014} ", "\n\n\u{2014}  ")
    });
    let run = discord(true);
    run.code(4);
    assert!(
        run.json()["error"].as_str().unwrap().contains("altered"),
        "{}",
        run.stdout
    );
    // Without Read Message History: exit 1, what to grant.
    fake.deny_history(CHANNEL);
    let run = discord(true);
    run.code(1);
    assert!(
        run.stderr.contains("Read Message History"),
        "{}",
        run.stderr
    );
    // Without a Discord token the published checkpoints cannot be read: said so.
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id, "--published"]);
    run.code(1);
    assert!(
        run.stderr.contains("set TENANTOPS_DISCORD_BOT_TOKEN"),
        "{}",
        run.stderr
    );
    // The ledger alone is fine throughout.
    intact(&discord(false));
}
