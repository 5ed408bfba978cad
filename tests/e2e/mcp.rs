//! MCP end to end with a real client: the official MCP Python SDK (tests/mcp/client.py) drives the
//! built binary over streamable HTTP (`serve`, `/mcp`) and stdio (`mcp --stdio`), in the
//! 2026-07-28 protocol and the 2025-11-25 one with its sessions.
//!
//! The interpreter is `TENANTOPS_TEST_PYTHON` (set by `.ci/run` to its virtualenv) or `python3`;
//! it must have the `mcp` package — the tests fail, never skip, when it does not.

use crate::approvals::serve;
use crate::support::root;
use crate::support::{BIN, Sandbox, api_key_of};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The repository root.
/// `TENANTOPS_TEST_PYTHON`, else the virtualenv `.ci/test-deps` makes, else `python3`.
fn python() -> String {
    std::env::var("TENANTOPS_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = root().join(".ci/.venv/bin/python");
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    })
}

/// `TENANTOPS_TEST_INSPECTOR`, else the MCP Inspector `.ci/test-deps` installs.
fn inspector() -> String {
    std::env::var("TENANTOPS_TEST_INSPECTOR").unwrap_or_else(|_| {
        root()
            .join(".ci/.npm/node_modules/.bin/mcp-inspector")
            .to_string_lossy()
            .into_owned()
    })
}

fn script() -> String {
    root()
        .join("tests/mcp/client.py")
        .to_string_lossy()
        .into_owned()
}

pub(crate) fn command(args: &[&str]) -> Command {
    command_env(args, &[])
}

/// [`command`] with environment variables the client hands the `mcp --stdio` server it starts
/// (the client forwards `TENANTOPS_MASTER_KEY_FILE`: a sandbox's [`Sandbox::db_env`]).
pub(crate) fn command_env(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TENANTOPS_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs one client scenario to its end; returns the JSON lines it printed.
#[track_caller]
pub(crate) fn client(args: &[&str]) -> Vec<Value> {
    client_env(args, &[])
}

/// [`client`] with environment variables for the stdio server ([`command_env`]).
#[track_caller]
pub(crate) fn client_env(args: &[&str], env: &[(&str, String)]) -> Vec<Value> {
    let out = command_env(args, env).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (run .ci/test-deps, or set TENANTOPS_TEST_PYTHON to a Python with `pip install mcp`): {e}",
            python()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'mcp'"),
        "{} lacks the MCP SDK: run .ci/test-deps, or `pip install mcp` and set TENANTOPS_TEST_PYTHON",
        python()
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success() && !lines.is_empty(),
        "client {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    lines
}

/// A running client scenario, read line by line while the test acts in between.
pub(crate) struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_env(args, &[])
    }

    /// [`Running::start`] with environment variables for the stdio server ([`command_env`]).
    pub(crate) fn start_env(args: &[&str], env: &[(&str, String)]) -> Self {
        let mut child = command_env(args, env)
            .spawn()
            .expect("start the MCP client");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    #[track_caller]
    pub(crate) fn next(&mut self) -> Value {
        let line = self
            .lines
            .next()
            .unwrap_or_else(|| {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                panic!("the client ended early:\n{err}")
            })
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("client: {line}"));
        assert_ne!(v["step"], "exception", "client failed: {v}");
        v
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tenant with an admin, a read-only AI agent and a metering service.
pub(crate) struct Team {
    pub(crate) sb: Sandbox,
    pub(crate) admin: String,
    pub(crate) agent: String,
    meter: String,
}

pub(crate) fn team() -> Team {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let admin = t.api_key;
    sb.call_ok(
        &admin,
        "members.create_persona",
        json!({"handle": "claude", "kind": "agent", "roles": ["ai-agent"]}),
    );
    let agent = api_key_of(&sb.call_ok(
        &admin,
        "keys.issue",
        json!({"persona": "claude", "name": "claude-desktop", "expires_in": "1d",
               "scopes": ["billing:read", "members:read", "approvals:read", "audit:read"]}),
    ));
    let meter = sb.service_key(&admin, "meter", &["metering-service"], &["usage:write"]);
    Team {
        sb,
        admin,
        agent,
        meter,
    }
}

pub(crate) fn url(addr: &str) -> String {
    format!("http://{addr}/mcp")
}

fn names(v: &Value) -> Vec<String> {
    v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_caller_sees_only_its_tools_on_both_transports_and_both_protocols() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let db = tm.sb.db();
    let db = db.as_str();
    let db_env = tm.sb.db_env();
    let url = url(&addr);
    let mut seen = Vec::new();
    for mode in ["auto", "legacy"] {
        for key in [&tm.agent, &tm.meter] {
            let http = client(&["tools", "--key", key, "--url", &url, "--mode", mode]);
            let stdio = client_env(
                &[
                    "tools", "--key", key, "--bin", BIN, "--db", db, "--mode", mode,
                ],
                &db_env,
            );
            let expected = if mode == "auto" {
                "2026-07-28"
            } else {
                "2025-11-25"
            };
            assert_eq!(http[0]["protocol"], expected);
            assert_eq!(stdio[0]["protocol"], expected);
            assert_eq!(names(&http[0]), names(&stdio[0]), "the transports agree");
            assert_eq!(http[0]["has_output_schema"], true);
            seen.push((key.clone(), http[0].clone()));
        }
    }
    let agent = names(&seen[0].1);
    let meter = names(&seen[1].1);
    for t in [
        "billing.live_meter",
        "billing.summary",
        "members.list_personas",
        "audit.checkpoint",
        "whoami",
    ] {
        assert!(agent.iter().any(|n| n == t), "agent lacks {t}: {agent:?}");
    }
    for t in [
        "keys.issue",
        "members.revoke",
        "billing.ingest",
        "tenant.export_all",
        "approvals.decide",
    ] {
        assert!(!agent.iter().any(|n| n == t), "agent must not see {t}");
    }
    assert!(meter.iter().any(|n| n == "billing.ingest"));
    assert!(!meter.iter().any(|n| n == "billing.live_meter"));
    assert_ne!(agent, meter);
    let ann = &seen[0].1["annotations"];
    assert_eq!(ann["billing.live_meter"]["readOnlyHint"], true);
    assert_eq!(ann["billing.live_meter"]["destructiveHint"], false);
    let _ = server.kill();
}

#[test]
fn a_read_tool_answers_structured_and_an_out_of_scope_call_names_the_scope() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let url = url(&addr);
    let r = client(&[
        "call",
        "--key",
        &tm.agent,
        "--url",
        &url,
        "--tool",
        "billing.live_meter",
    ]);
    assert_eq!(r[0]["is_error"], false, "{}", r[0]);
    assert_eq!(r[0]["structured"]["currency"], "USD");
    assert!(r[0]["structured"]["period"].is_string());

    let r = client(&[
        "call",
        "--key",
        &tm.agent,
        "--url",
        &url,
        "--tool",
        "keys.issue",
        "--arguments",
        r#"{"persona":"claude","scopes":["keys:write"]}"#,
    ]);
    assert_eq!(r[0]["is_error"], true);
    assert!(
        r[0]["text"].as_str().unwrap().contains("keys:write"),
        "{}",
        r[0]
    );

    let r = client(&[
        "call",
        "--key",
        &tm.agent,
        "--url",
        &url,
        "--tool",
        "billing.summary",
        "--arguments",
        r#"{"period":"last year"}"#,
    ]);
    assert_eq!(r[0]["is_error"], true);
    assert!(
        r[0]["text"].as_str().unwrap().contains("period"),
        "{}",
        r[0]
    );

    // The tenant comes from the credential: no tool takes one, and the agent sees its own.
    let who = client(&[
        "call", "--key", &tm.agent, "--url", &url, "--tool", "whoami",
    ]);
    assert_eq!(who[0]["structured"]["handle"], "claude");
    assert_eq!(who[0]["structured"]["surface"], "mcp");
    let _ = server.kill();
}

/// An agent allowed to export (the risky kind of agent a tenant might run).
fn exporter(tm: &Team) -> String {
    tm.sb.call_ok(
        &tm.admin,
        "members.create_persona",
        json!({"handle": "exporter", "kind": "agent", "roles": ["tenant-admin"]}),
    );
    api_key_of(&tm.sb.call_ok(
        &tm.admin,
        "keys.issue",
        json!({"persona": "exporter", "expires_in": "1d", "scopes": ["tenant:export", "approvals:read"]}),
    ))
}

#[test]
fn a_destructive_call_waits_for_a_human_then_completes_once_over_http_and_stdio() {
    let tm = team();
    let key = exporter(&tm);
    let (mut server, addr) = serve(&tm.sb);
    let db = tm.sb.db();
    let url = url(&addr);
    for (transport, mode) in [("http", "auto"), ("stdio", "legacy")] {
        let mut args = vec![
            "approval",
            "--key",
            &key,
            "--tool",
            "tenant.export_all",
            "--mode",
            mode,
        ];
        if transport == "http" {
            args.extend(["--url", &url]);
        } else {
            args.extend(["--bin", BIN, "--db", &db]);
        }
        let mut c = Running::start_env(&args, &tm.sb.db_env());
        let pending = c.next();
        assert_eq!(pending["step"], "pending");
        assert_eq!(pending["is_error"], false);
        let p = &pending["result"];
        assert_eq!(p["status"], "pending_approval", "{pending}");
        assert_eq!(p["digest"].as_str().unwrap().len(), 64);
        assert!(p["expires_at"].is_string() && p["summary"].as_str().unwrap().contains("Export"));
        let id = p["request_id"].as_str().unwrap().to_owned();
        // Nothing ran yet; the human approves from the shell (as chat will).
        let view = tm
            .sb
            .call_ok(&tm.admin, "approvals.get", json!({"request_id": id}));
        assert_eq!(view["state"], "pending");
        tm.sb.call_ok(
            &tm.admin,
            "approvals.decide",
            json!({"request_id": id, "decision": "approve", "comment": "ok for the audit"}),
        );
        let fin = c.next();
        assert_eq!(fin["step"], "final", "{fin}");
        assert_eq!(fin["request"]["state"], "succeeded", "{fin}");
        assert!(fin["request"]["result"].is_object(), "{fin}");
    }
    // Each approval ran its export exactly once.
    let exports = std::fs::read_dir(tm.sb.dir().join("exports"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(exports, 2, "one archive per approved request");
    let _ = server.kill();
}

#[test]
fn with_the_tasks_extension_a_destructive_call_is_a_task_followed_to_its_result() {
    let tm = team();
    let key = exporter(&tm);
    let (mut server, addr) = serve(&tm.sb);
    let url = url(&addr);
    let mut c = Running::start(&[
        "tasks",
        "--key",
        &key,
        "--url",
        &url,
        "--tool",
        "tenant.export_all",
    ]);
    let created = c.next();
    let task = &created["response"]["result"];
    assert_eq!(task["resultType"], "task", "{created}");
    assert_eq!(task["status"], "working");
    let id = task["taskId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apr_"));
    tm.sb.call_ok(
        &tm.admin,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve"}),
    );
    let fin = c.next();
    let result = &fin["response"]["result"];
    assert_eq!(fin["step"], "final", "{fin}");
    assert_eq!(result["status"], "completed", "{fin}");
    assert_eq!(result["result"]["isError"], false, "{fin}");
    assert!(result["result"]["structuredContent"].is_object(), "{fin}");

    // A client without the capability gets the structured pending answer instead.
    let plain = client(&[
        "no-tasks",
        "--key",
        &key,
        "--url",
        &url,
        "--tool",
        "tenant.export_all",
    ]);
    let r = &plain[0]["response"]["result"];
    assert_eq!(
        r["structuredContent"]["status"], "pending_approval",
        "{}",
        plain[0]
    );

    // tasks/cancel withdraws the (new) request.
    let cancelled = client(&[
        "tasks",
        "--key",
        &key,
        "--url",
        &url,
        "--tool",
        "tenant.export_all",
        "--cancel",
    ]);
    let fin = cancelled.last().unwrap();
    assert_eq!(
        fin["response"]["result"]["status"], "cancelled",
        "{cancelled:?}"
    );
    let _ = server.kill();
}

#[test]
fn prompts_and_resources_are_served_including_invoice_documents() {
    let tm = team();
    // A closed period with usage, so an invoice exists.
    tm.sb.call_ok(
        &tm.admin,
        "billing.set_prices",
        json!({"currency": "USD", "prices": [{"sku": "api.requests", "description": "API requests", "unit": "request", "unit_price": "0.0004"}]}),
    );
    let last = (chrono::Utc::now() - chrono::Duration::days(40))
        .format("%Y-%m")
        .to_string();
    tm.sb.call_ok(
        &tm.meter,
        "billing.ingest",
        json!({"events": [{"id": "e1", "source": "sdk-meter", "sku": "api.requests", "quantity": 1000,
                           "time": format!("{last}-15T12:00:00Z")}]}),
    );
    let inv = tm
        .sb
        .call_ok(&tm.admin, "billing.close_period", json!({"period": last}));
    let number = inv["number"].as_str().unwrap();
    let (mut server, addr) = serve(&tm.sb);
    let pdf = format!("tenantops://billing/invoices/{number}.pdf");
    let csv = format!("tenantops://billing/invoices/{number}.csv");
    let reads = json!(["tenantops://audit/checkpoint", pdf, csv]).to_string();
    let s = client(&[
        "surface",
        "--key",
        &tm.agent,
        "--url",
        &url(&addr),
        "--read",
        &reads,
    ]);
    let s = &s[0];
    for p in [
        "monthly-close",
        "overage-investigation",
        "day1-onboarding",
        "dsar-export",
        "webhook-failures",
        "key-compliance-review",
        "on-call-revoke",
    ] {
        assert!(
            s["prompts"].as_array().unwrap().iter().any(|x| x == p),
            "{p} missing"
        );
    }
    assert!(
        s["monthly_close_text"]
            .as_str()
            .unwrap()
            .contains("2026-10")
    );
    let resources: Vec<&str> = s["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(resources.contains(&"tenantops://audit/checkpoint"));
    assert!(
        resources.contains(&pdf.as_str()) && resources.contains(&csv.as_str()),
        "{resources:?}"
    );
    assert!(
        s["templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().ends_with("{invoice}.pdf"))
    );
    let reads = &s["reads"];
    assert!(
        reads["tenantops://audit/checkpoint"]["text"]
            .as_str()
            .unwrap()
            .starts_with("tenantops/audit/")
    );
    assert_eq!(reads[&pdf]["mime"], "application/pdf");
    assert!(
        reads[&pdf]["blob_prefix"]
            .as_str()
            .unwrap()
            .starts_with("JVBER"),
        "a PDF: {}",
        reads[&pdf]
    );
    assert!(reads[&csv]["text"].as_str().unwrap().contains("BilledCost"));

    // The metering service holds neither scope: it sees no resources.
    let m = client(&["surface", "--key", &tm.meter, "--url", &url(&addr)]);
    assert_eq!(m[0]["resources"], json!([]));
    let _ = server.kill();
}

#[test]
fn revoking_a_key_closes_its_open_stream_and_its_next_request_gets_401() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let mut c = Running::start(&["stream", "--key", &tm.agent, "--url", &url(&addr)]);
    let open = c.next();
    assert_eq!(open["status"], 200, "{open}");
    assert_eq!(open["session"], true);
    // Revoked from another process (the CLI): the server notices within its re-check interval.
    tm.sb
        .call_ok(&tm.admin, "keys.revoke", json!({"key": "claude-desktop"}));
    let ended = c.next();
    assert_eq!(ended["step"], "ended", "{ended}");
    assert!(ended["after_s"].as_f64().unwrap() < 30.0);
    let after = c.next();
    assert_eq!(after["session_status"], 401, "{after}");
    assert_eq!(after["new_status"], 401, "{after}");
    assert!(
        after["www_authenticate"]
            .as_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // Over stdio, the server stops as soon as its key is revoked.
    let db = tm.sb.db();
    let meter_key = tm.sb.call_ok(
        &tm.admin,
        "keys.issue",
        json!({"persona": "meter", "name": "meter-2", "expires_in": "1d", "scopes": ["usage:write"]}),
    );
    let key = api_key_of(&meter_key);
    let mut stdio = Command::new(BIN)
        .args(["--db", db.as_str(), "mcp", "--stdio"])
        .envs(tm.sb.db_env())
        .env("TENANTOPS_API_KEY", &key)
        .env("TENANTOPS_MCP_REVOCATION_CHECK", "200ms")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tm.sb
        .call_ok(&tm.admin, "keys.revoke", json!({"key": "meter-2"}));
    let out = wait_with_timeout(&mut stdio, 20);
    assert_eq!(out, Some(3), "mcp --stdio exits 3 once its key is revoked");
    let _ = server.kill();
}

fn wait_with_timeout(child: &mut Child, secs: u64) -> Option<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A raw HTTP/1.1 POST to `/mcp` (status, headers and body).
fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    crate::support::http(addr, "POST", "/mcp", &all, body)
}

#[test]
fn bad_credentials_get_401_with_a_challenge_and_sessions_belong_to_their_credential() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, text) = post(&addr, &[], init);
    assert_eq!(status, 401);
    assert!(
        text.to_lowercase()
            .contains("www-authenticate: bearer realm=\"tenantops\"\r\n"),
        "{text}"
    );
    let bad = "Bearer tops_0000000000000000000000000000000000000";
    let (status, text) = post(&addr, &[("Authorization", bad)], init);
    assert_eq!(status, 401);
    assert!(text.contains("invalid_token"), "{text}");
    assert!(
        !text.contains("tops_0000"),
        "a refused credential is never echoed"
    );

    let agent = format!("Bearer {}", tm.agent);
    let (status, text) = post(&addr, &[("Authorization", &agent)], init);
    assert_eq!(status, 200, "{text}");
    let sid = text
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("mcp-session-id: ")
                .map(|_| l[16..].trim().to_owned())
        })
        .expect("a session id");
    // Another credential cannot use that session.
    let meter = format!("Bearer {}", tm.meter);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
    let (status, _) = post(
        &addr,
        &[
            ("Authorization", &meter),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        list,
    );
    assert_eq!(status, 404);
    // An oversized body is refused before it is parsed.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, _) = post(&addr, &[("Authorization", &agent)], &huge);
    assert_eq!(status, 413);
    let _ = server.kill();
}

#[test]
fn the_rate_limit_answers_with_a_clear_error() {
    let tm = team();
    let db = tm.sb.db();
    let mut child = Command::new(BIN)
        .args([
            "--db",
            db.as_str(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mcp-rate-limit",
            "2",
        ])
        .current_dir(tm.sb.dir())
        .envs(tm.sb.db_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = serde_json::from_str::<Value>(&line).unwrap()["listening"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = url(&addr);
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(
            client(&[
                "call", "--key", &tm.agent, "--url", &url, "--tool", "whoami",
            ])
            .remove(0),
        );
    }
    assert_eq!(results[0]["is_error"], false);
    let limited = results
        .iter()
        .find(|r| r["is_error"] == true)
        .expect("the third call is limited");
    let text = limited["text"].as_str().unwrap();
    assert!(
        text.contains("rate limit") && text.contains("retry in"),
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the MCP Inspector CLI; returns its stdout as JSON.
#[track_caller]
fn inspect(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(inspector());
    cmd.arg("--cli").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run the MCP Inspector {} (run .ci/test-deps): {e}",
            inspector()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inspector {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("inspector printed {stdout}"))
}

#[test]
fn the_official_mcp_inspector_lists_and_calls_over_both_transports() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let auth = format!("Authorization: Bearer {}", tm.agent);
    let http = |method: &[&str]| {
        let mut args = vec![url(&addr)];
        args.extend(["--transport", "http", "--header", &auth].map(String::from));
        args.extend(method.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        inspect(&args, &[])
    };
    let listed = http(&["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"billing.live_meter") && !names.contains(&"keys.issue"),
        "{names:?}"
    );
    let called = http(&[
        "--method",
        "tools/call",
        "--tool-name",
        "billing.live_meter",
    ]);
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(called["structuredContent"]["currency"], "USD");
    let prompts = http(&["--method", "prompts/list"]);
    assert!(prompts["prompts"].as_array().unwrap().len() >= 7);

    let db = tm.sb.db();
    let env = format!("TENANTOPS_API_KEY={}", tm.agent);
    let mut args = vec![
        "--method".to_owned(),
        "tools/call".into(),
        "--tool-name".into(),
        "whoami".into(),
        "-e".into(),
        env,
    ];
    for (k, v) in tm.sb.db_env() {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    args.extend(["--", BIN, "--db", &db, "mcp", "--stdio"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdio = inspect(&args, &[]);
    assert_eq!(stdio["structuredContent"]["handle"], "claude", "{stdio}");
    let _ = server.kill();
}

/// The client configuration files in deploy/mcp work as written against the real binary (with
/// the binary path, database, key and port filled in the way a user would).
#[test]
fn the_client_config_snippets_in_deploy_work_with_the_real_binary() {
    let tm = team();
    let (mut server, addr) = serve(&tm.sb);
    let db = tm.sb.db();
    let db = db.as_str();
    let db_env = tm.sb.db_env();
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/mcp").join(f)).unwrap())
            .unwrap_or_else(|e| panic!("{f} is not JSON: {e}"))
    };
    let fill = |s: &str| {
        s.replace("/usr/local/bin/tenantops", BIN)
            .replace("/var/lib/tenantops/tenantops.db", db)
            .replace("${workspaceFolder}/tenantops.db", db)
            .replace("tops_REPLACE_WITH_THE_AGENT_PERSONAS_KEY", &tm.agent)
            .replace("${env:TENANTOPS_API_KEY}", &tm.agent)
            .replace("${input:tenantops-key}", &tm.agent)
            .replace("127.0.0.1:3300", &addr)
    };
    let stdio_entry = |entry: &Value| {
        let command = fill(entry["command"].as_str().unwrap());
        let command = if command == "tenantops" {
            BIN.to_owned()
        } else {
            command
        };
        let args: Vec<String> = entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| fill(a.as_str().unwrap()))
            .collect();
        let mut cli: Vec<String> = ["--method", "tools/list"].map(String::from).to_vec();
        for (k, v) in entry["env"].as_object().unwrap() {
            cli.extend(["-e".into(), format!("{k}={}", fill(v.as_str().unwrap()))]);
        }
        // On PostgreSQL the snippet's database needs its master key named too.
        for (k, v) in &db_env {
            cli.extend(["-e".into(), format!("{k}={v}")]);
        }
        cli.push("--".into());
        cli.push(command);
        cli.extend(args);
        let cli: Vec<&str> = cli.iter().map(String::as_str).collect();
        inspect(&cli, &[])
    };
    let http_entry = |entry: &Value| {
        let url = fill(entry["url"].as_str().unwrap());
        let auth = format!(
            "Authorization: {}",
            fill(entry["headers"]["Authorization"].as_str().unwrap())
        );
        inspect(
            &[
                &url,
                "--transport",
                "http",
                "--header",
                &auth,
                "--method",
                "tools/list",
            ],
            &[],
        )
    };
    let has_meter = |v: &Value| {
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "billing.live_meter")
    };
    let claude = read("claude_desktop_config.json");
    assert!(has_meter(&stdio_entry(&claude["mcpServers"]["tenantops"])));
    let cursor = read("cursor-mcp.json");
    assert!(has_meter(&http_entry(&cursor["mcpServers"]["tenantops"])));
    let vscode = read("vscode-mcp.json");
    assert!(has_meter(&http_entry(&vscode["servers"]["tenantops"])));
    assert!(has_meter(&stdio_entry(
        &vscode["servers"]["tenantops-local"]
    )));
    let _ = server.kill();
}
