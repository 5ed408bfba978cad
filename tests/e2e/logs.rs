//! No log level prints a secret: `serve`, `mcp --stdio` and the CLI run with
//! `TENANTOPS_LOG=trace` while keys are issued and rotated over MCP (HTTP, both protocols, and
//! stdio), the CLI, Slack and Discord, chat accounts are linked and a Discord server is bound —
//! and nothing handed out (key secrets, link and install codes) or configured (bot tokens,
//! signing secrets) appears anywhere in what they wrote to stderr.

use crate::fake_discord::{self, FakeDiscord};
use crate::fake_slack::{self, FakeSlack};
use crate::mcp::{client, url};
use crate::support::{BIN, Sandbox, api_key_of, api_keys_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const TEAM: &str = "T0ACME";
const ALICE_SLACK: &str = "U0ALICE";
const ALICE_DISCORD: &str = "1000000000000000011";
const OWNER_DISCORD: &str = "1000000000000000001";
const APPROVALS_DISCORD: &str = "1260000000000000001";

/// `tenantops serve` at `trace` with Slack and Discord, its stderr going to `log`.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_logged(sb: &Sandbox, log: &Path, env: &[(&str, &str)]) -> Server {
    let db = sb.db();
    let mut cmd = Command::new(BIN);
    cmd.args(["--db", db.as_str(), "serve", "--listen", "127.0.0.1:0"])
        .current_dir(sb.dir())
        .envs(sb.db_env())
        .env_remove("TENANTOPS_FAULT")
        .env("NO_COLOR", "1")
        .env("TENANTOPS_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tenantops serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("serve prints its address");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("serve printed {line:?}"));
    Server {
        child,
        addr: v["listening"].as_str().unwrap().to_owned(),
    }
}

/// Every `tops_` key (43 characters) in `text`.
fn keys_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("tops_") {
        let candidate: String = rest[i..]
            .chars()
            .take(43)
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if candidate.len() == 43 {
            out.push(candidate);
        }
        rest = &rest[i + 5..];
    }
    out
}

fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", content_type)];
    all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (status, text) = crate::support::http(addr, "POST", path, &all, body);
    (status, crate::support::body_of(&text).to_owned())
}

fn slack(addr: &str, fake: &FakeSlack, n: u32, command: &str, text: &str) -> String {
    let body = serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", TEAM),
        ("team_domain", "acme"),
        ("channel_id", "C0GENERAL"),
        ("channel_name", "general"),
        ("user_id", ALICE_SLACK),
        ("user_name", "alice"),
        ("command", command),
        ("text", text),
        ("api_app_id", "A0APP"),
        ("response_url", &fake.response_url(&format!("logs{n}"))),
        ("trigger_id", &format!("logs.trigger.{n}")),
    ])
    .unwrap();
    let ts = chrono::Utc::now().timestamp();
    let (status, answer) = post(
        addr,
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &fake_slack::sign(&body, ts, fake_slack::SIGNING_SECRET),
        &body,
    );
    assert_eq!(status, 200, "{command} {text}: {answer}");
    answer
}

fn discord(addr: &str, id: u64, user: &str, name: &str, sub: &str, options: Value) -> String {
    let id = id.to_string();
    let mut interaction = fake_discord::command(
        &id,
        user,
        name,
        json!([{"type": 1, "name": sub, "options": options}]),
    );
    // Manage Server, for `/tenant bind`.
    interaction["member"]["permissions"] = json!("32");
    let body = interaction.to_string();
    let ts = chrono::Utc::now().timestamp();
    let (status, answer) = post(
        addr,
        "/discord/interactions",
        "application/json",
        &fake_discord::sign(&body, ts),
        &body,
    );
    assert_eq!(status, 200, "/{name} {sub}: {answer}");
    answer
}

/// `mcp --stdio` at `trace`, spoken to in raw JSON-RPC lines (2025-11-25): initialize, then
/// `calls`; returns the results and everything the process wrote to stderr.
fn stdio(sb: &Sandbox, key: &str, calls: &[(&str, Value)]) -> (Vec<Value>, String) {
    let db = sb.db();
    let mut child = Command::new(BIN)
        .args(["--db", db.as_str(), "mcp", "--stdio"])
        .current_dir(sb.dir())
        .envs(sb.db_env())
        .env_remove("TENANTOPS_FAULT")
        .env("NO_COLOR", "1")
        .env("TENANTOPS_LOG", "trace")
        .env("TENANTOPS_API_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mcp --stdio");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "tenantops-e2e", "version": "1"}}}),
    );
    let init: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(init["result"].is_object(), "{init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut results = Vec::new();
    for (i, (tool, arguments)) in calls.iter().enumerate() {
        send(
            json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}),
        );
        let answer: Value = loop {
            let line = lines.next().expect("an answer").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(i + 1) {
                break v;
            }
        };
        let result = &answer["result"];
        assert_eq!(result["isError"], json!(false), "{tool}: {answer}");
        results.push(result["structuredContent"].clone());
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (results, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn no_secret_reaches_any_log_at_trace_on_any_surface() {
    let sb = Sandbox::new().with_var("TENANTOPS_LOG", "trace");
    let t = sb.create_tenant("acme");
    let admin = t.api_key.clone();
    let alice = sb.person(&admin, &t.tenant_id, "alice", &["tenant-admin"]);
    sb.call_ok(
        &admin,
        "members.create_persona",
        json!({"handle": "ci-bot", "kind": "service", "roles": ["developer"]}),
    );

    // The CLI: issue and rotate.
    let mut handed_out: Vec<String> = Vec::new();
    let cli_key = api_key_of(&sb.call_ok(
        &admin,
        "keys.issue",
        json!({"persona": "ci-bot", "scopes": ["keys:read"], "name": "cli", "expires_in": "1d"}),
    ));
    sb.call_ok(&cli_key, "whoami", json!({}));
    sb.call_ok(&admin, "keys.rotate", json!({"key": "cli", "grace": "1m"}));

    let fake_slack = FakeSlack::start();
    let fake_discord = FakeDiscord::start();
    let slack_api = fake_slack.api_url();
    let discord_api = fake_discord.api_url();
    let log = sb.dir().join("serve.log");
    let server = serve_logged(
        &sb,
        &log,
        &[
            ("TENANTOPS_SLACK_SIGNING_SECRET", fake_slack::SIGNING_SECRET),
            ("TENANTOPS_SLACK_BOT_TOKEN", fake_slack::BOT_TOKEN),
            ("TENANTOPS_SLACK_API_URL", &slack_api),
            ("TENANTOPS_DISCORD_PUBLIC_KEY", fake_discord::PUBLIC_KEY_HEX),
            (
                "TENANTOPS_DISCORD_APPLICATION_ID",
                fake_discord::APPLICATION_ID,
            ),
            ("TENANTOPS_DISCORD_BOT_TOKEN", fake_discord::BOT_TOKEN),
            ("TENANTOPS_DISCORD_API_URL", &discord_api),
        ],
    );
    let addr = server.addr.clone();

    // Discord: bind the server with a one-time install code, link alice, issue and rotate.
    let install = sb.call_ok(
        &admin,
        "tenant.chat_install_link",
        json!({"platform": "discord", "approval_channel": APPROVALS_DISCORD}),
    );
    let install_code = install["state"].as_str().unwrap().to_owned();
    let bound = discord(
        &addr,
        1_400_000_000_000_000_001,
        OWNER_DISCORD,
        "tenant",
        "bind",
        json!([{"type": 3, "name": "code", "value": install_code}]),
    );
    assert!(bound.contains("Connected"), "{bound}");
    // alice asks for her own link codes, signed in as herself.
    let link_code = || {
        sb.call_ok(&alice.token, "members.chat_link_code", json!({}))["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let discord_link = link_code();
    let linked = discord(
        &addr,
        1_400_000_000_000_000_002,
        ALICE_DISCORD,
        "tenant",
        "link",
        json!([{"type": 3, "name": "code", "value": discord_link}]),
    );
    assert!(linked.contains("alice"), "{linked}");
    let issued = discord(
        &addr,
        1_400_000_000_000_000_003,
        ALICE_DISCORD,
        "keys",
        "issue",
        json!([{"type": 3, "name": "persona", "value": "ci-bot"},
               {"type": 3, "name": "scopes", "value": "keys:read"},
               {"type": 3, "name": "name", "value": "from-discord"},
               {"type": 3, "name": "expires_in", "value": "1d"}]),
    );
    let rotated = discord(
        &addr,
        1_400_000_000_000_000_004,
        ALICE_DISCORD,
        "keys",
        "rotate",
        json!([{"type": 3, "name": "key", "value": "from-discord"}]),
    );
    let from_discord = [keys_in(&issued), keys_in(&rotated)].concat();
    assert_eq!(from_discord.len(), 2, "{issued}\n{rotated}");

    // Slack: alice (an admin of the workspace) binds it with an install code, links herself,
    // issues and rotates.
    fake_slack.user(ALICE_SLACK, TEAM, true);
    let slack_install = sb.call_ok(
        &admin,
        "tenant.chat_install_link",
        json!({"platform": "slack", "approval_channel": "C0APPROVE"}),
    )["state"]
        .as_str()
        .unwrap()
        .to_owned();
    let bound = slack(
        &addr,
        &fake_slack,
        0,
        "/tenant",
        &format!("bind {slack_install}"),
    );
    assert!(bound.contains("Connected"), "{bound}");
    let slack_link = link_code();
    let linked = slack(
        &addr,
        &fake_slack,
        1,
        "/tenant",
        &format!("link {slack_link}"),
    );
    assert!(linked.contains("alice"), "{linked}");
    let issued = slack(
        &addr,
        &fake_slack,
        2,
        "/keys",
        "issue persona=ci-bot scopes=keys:read name=from-slack expires_in=1d",
    );
    let rotated = slack(
        &addr,
        &fake_slack,
        3,
        "/keys",
        "rotate key=from-slack grace=1m",
    );
    let from_slack = [keys_in(&issued), keys_in(&rotated)].concat();
    assert_eq!(from_slack.len(), 2, "{issued}\n{rotated}");

    // MCP over HTTP, in both protocols: issue, rotate, and use the new key.
    let mut from_mcp = Vec::new();
    for mode in ["auto", "legacy"] {
        let name = format!("mcp-{mode}");
        let issued = client(&[
            "call", "--key", &admin, "--url", &url(&addr), "--mode", mode,
            "--tool", "keys.issue", "--arguments",
            &json!({"persona": "ci-bot", "scopes": ["keys:read"], "name": name, "expires_in": "1d"}).to_string(),
        ]);
        let rotated = client(&[
            "call",
            "--key",
            &admin,
            "--url",
            &url(&addr),
            "--mode",
            mode,
            "--tool",
            "keys.rotate",
            "--arguments",
            &json!({"key": name}).to_string(),
        ]);
        let new = api_key_of(&rotated[0]["structured"]);
        client(&[
            "call",
            "--key",
            &new,
            "--url",
            &url(&addr),
            "--mode",
            mode,
            "--tool",
            "whoami",
        ]);
        from_mcp.push(api_key_of(&issued[0]["structured"]));
        from_mcp.push(new);
    }

    // MCP over stdio: issue and rotate.
    let (results, stdio_log) = stdio(
        &sb,
        &admin,
        &[
            (
                "keys.issue",
                json!({"persona": "ci-bot", "scopes": ["keys:read"], "name": "stdio", "expires_in": "1d"}),
            ),
            ("keys.rotate", json!({"key": "stdio"})),
        ],
    );
    let from_stdio: Vec<String> = results.iter().map(api_key_of).collect();
    drop(server);

    // Everything handed out and configured.
    for run in sb.transcript() {
        if let Some(v) = &run.json {
            api_keys_in(v, &mut handed_out);
        }
    }
    assert_eq!(
        handed_out.len(),
        3,
        "tenant create, keys.issue and keys.rotate on the CLI"
    );
    handed_out.extend(from_discord);
    handed_out.extend(from_slack);
    handed_out.extend(from_mcp);
    handed_out.extend(from_stdio);
    let mut needles: Vec<String> = Vec::new();
    for key in &handed_out {
        needles.push(key.clone());
        // The random part alone, in case a prefix were stripped or the key split.
        needles.push(key[5..37].to_owned());
    }
    needles.extend([
        install_code,
        slack_install,
        discord_link.clone(),
        discord_link[5..].to_owned(),
        slack_link.clone(),
        slack_link[5..].to_owned(),
        fake_slack::SIGNING_SECRET.to_owned(),
        fake_slack::BOT_TOKEN.to_owned(),
        fake_discord::BOT_TOKEN.to_owned(),
    ]);

    let serve_log = std::fs::read_to_string(&log).unwrap();
    let mut logs = vec![
        ("serve".to_owned(), serve_log.clone()),
        ("mcp --stdio".to_owned(), stdio_log.clone()),
    ];
    for run in sb.transcript() {
        logs.push((run.cmdline.clone(), run.stderr.clone()));
    }
    // The level took effect (or this proves nothing), on every kind of process.
    for (name, text) in [("serve", &serve_log), ("mcp --stdio", &stdio_log)] {
        assert!(
            text.contains("DEBUG") || text.contains("TRACE"),
            "{name} logged nothing below info at TENANTOPS_LOG=trace:\n{text}"
        );
    }
    let mut leaks = Vec::new();
    for (name, text) in &logs {
        for needle in &needles {
            if text.contains(needle.as_str()) {
                let at = text.find(needle.as_str()).unwrap();
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                let line: String = text[line_start..line_end].chars().take(400).collect();
                leaks.push(format!("`{needle}` in the stderr of {name}: {line}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} secrets leaked:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
