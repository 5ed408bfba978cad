//! `tenantops chat` (the offline Slack sandbox, driven by a script on stdin) and `tenantops demo`
//! (seed, print how to try it, serve), through the real binary.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `tenantops` command with the environment every run gets (no `TENANTOPS_*` but `env`).
fn command(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(sb.dir());
    for (name, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("TENANTOPS_") || k == "RUST_LOG")
    {
        cmd.env_remove(name);
    }
    cmd.env("NO_COLOR", "1");
    cmd.envs(sb.db_env());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `tenantops --db <sandbox db> chat ARGS` with `script` on stdin; returns (exit code,
/// stdout, stderr). Fails after two minutes.
fn chat(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], script: &str) -> (i32, String, String) {
    let db = sb.db();
    let mut full = vec!["--db", db.as_str(), "chat"];
    full.extend_from_slice(args);
    let mut child = command(sb, &full, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenantops chat");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tenantops chat did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, out.join().unwrap(), err.join().unwrap())
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The part of `transcript` after the line echoing `command`.
#[track_caller]
fn after<'a>(transcript: &'a str, command: &str) -> &'a str {
    let at = transcript
        .find(&format!("> {command}\n"))
        .unwrap_or_else(|| panic!("`{command}` not in the transcript:\n{transcript}"));
    &transcript[at..]
}

#[test]
fn chat_sandbox_plays_a_person_and_revokes_a_bot_with_one_tap() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let bot = sb.service_key(&t.api_key, "somebot", &["developer"], &["keys:read"]);
    sb.call_ok(&bot, "whoami", json!({}));

    // Without a credential, a database whose sandbox is not set up says what to do.
    let (code, _, err) = chat(&sb, &[], &[], "/tenant whoami\n");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("TENANTOPS_API_KEY") && err.contains("tenantops demo"),
        "{err}"
    );

    let script = "/tenant whoami\n/billing\n/members revoke somebot\npress 1\nquit\n";
    let (code, out, err) = chat(&sb, &[], &[("TENANTOPS_API_KEY", &t.api_key)], script);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        after(&out, "/tenant whoami").contains("handle: admin"),
        "{out}"
    );
    assert!(
        after(&out, "/billing").contains("/billing summary"),
        "{out}"
    );
    let preview = after(&out, "/members revoke somebot");
    assert!(preview.contains("Revoke somebot?"), "{out}");
    assert!(preview.contains("[1] Revoke now  [2] Cancel"), "{out}");
    let pressed = after(&out, "press 1");
    assert!(
        pressed.contains("replacing the message with the buttons"),
        "{out}"
    );
    assert!(pressed.to_lowercase().contains("revoked"), "{out}");
    assert_eq!(
        sb.call(&bot, "whoami", json!({})).code,
        3,
        "the bot's key is refused now"
    );

    // Nothing secret printed: the sandbox's own signing secret and bot token never show, and
    // no link code does either.
    assert!(!out.contains("xoxb-") && !out.contains("LINK-"), "{out}");
    // The second run needs no credential: the workspace is bound and admin linked.
    let (code, out, _) = chat(&sb, &[], &[], "/tenant whoami\n");
    assert_eq!(code, 0);
    assert!(out.contains("handle: admin"), "{out}");
}

#[test]
fn chat_sandbox_on_a_demo_tenant_a_second_person_approves_and_rejects_with_a_comment() {
    let sb = Sandbox::new();
    if sb.on_postgres() {
        // `demo` always runs on its own SQLite file: the SQLite pass covers this test.
        return;
    }
    let demo = Demo::start(&sb);
    let admin = demo.word("admin key:", "tops_");
    let seeded = demo.word("pending:", "apr_");
    drop(demo);
    // The seeded request is withdrawn first, so the buttons below are numbered from 1.
    sb.call_ok(&admin, "approvals.withdraw", json!({"request_id": seeded}));
    let script = "\
/tenant export_all reason=\"annual DSAR\"
as sam
press 1
as admin
/tenant export_all reason=\"second DSAR\"
as sam
press 4
not during the freeze
as nobody
";
    let (code, out, err) = chat(&sb, &[], &[], script);
    assert_eq!(code, 0, "{out}\n{err}");
    // The request is posted to #approvals with its buttons, approved by the second person and
    // executed once.
    let first = after(&out, "/tenant export_all reason=\"annual DSAR\"");
    assert!(
        first.contains("── #approvals ──") && first.contains("[1] Approve  [2] Reject"),
        "{out}"
    );
    assert!(
        after(&out, "press 1").contains("Approved by sam · executed"),
        "{out}"
    );
    let exports = std::fs::read_dir(sb.dir().join("exports")).unwrap().count();
    assert_eq!(exports, 1, "executed exactly once");
    // Rejecting opens a modal; the comment typed on the terminal reaches the requester.
    let second = after(&out, "press 4");
    assert!(second.contains("── modal for @sam ──"), "{out}");
    assert!(
        second.contains("Rejected by sam: not during the freeze"),
        "{out}"
    );
    assert!(second.contains("── DM to @admin ──"), "{out}");
    assert!(
        after(&out, "as nobody").contains("Cannot play `nobody`"),
        "{out}"
    );
}

#[test]
fn chat_sandbox_outside_a_demo_plays_only_the_person_whose_key_it_is_and_never_decides() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let alice = sb.person(&t.api_key, &t.tenant_id, "alice", &["security-admin"]);
    let alice_key = sb.own_key(
        &alice,
        &["approvals:decide", "approvals:read", "members:read"],
    );
    // The admin asks, then tries to play alice with the admin's own key: refused.
    let script = "/tenant export_all reason=\"annual DSAR\"\nas alice\n";
    let (code, out, err) = chat(&sb, &[], &[("TENANTOPS_API_KEY", &t.api_key)], script);
    assert_eq!(code, 0, "{out}\n{err}");
    let refused = after(&out, "as alice");
    assert!(
        refused.contains("Cannot play `alice`") && refused.contains("own credential"),
        "{out}"
    );
    let (code, _, err) = chat(
        &sb,
        &["--as", "alice"],
        &[("TENANTOPS_API_KEY", &t.api_key)],
        "/tenant whoami\n",
    );
    assert_eq!(code, 3, "{err}");
    // With her own key alice is played, sees the request — and her tap does not count here.
    let (code, out, err) = chat(
        &sb,
        &["--as", "alice"],
        &[("TENANTOPS_API_KEY", &alice_key)],
        "/approvals pending\npress 1\n",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        after(&out, "press 1").contains("only on demo tenants"),
        "{out}"
    );
    assert!(
        !sb.dir().join("exports").exists(),
        "nothing ran on one person's word"
    );
}

/// A running `tenantops demo`: its process, everything it printed before listening, its address.
struct Demo {
    child: Child,
    banner: String,
    addr: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(sb: &Sandbox) -> Self {
        let db = sb.db();
        let child = command(
            sb,
            &["demo", "--db", db.as_str(), "--listen", "127.0.0.1:0"],
            &[],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tenantops demo");
        // Owned by the guard from here on: killed even when a check below fails.
        let mut demo = Self {
            child,
            banner: String::new(),
            addr: String::new(),
        };
        let stdout = demo.child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("demo ended before listening:\n{}", demo.banner))
                .unwrap();
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(addr) = v["listening"].as_str()
            {
                demo.addr = addr.to_owned();
                return demo;
            }
            demo.banner.push_str(&line);
            demo.banner.push('\n');
        }
    }

    /// The word starting with `prefix` on the line holding `label`.
    #[track_caller]
    fn word(&self, label: &str, prefix: &str) -> String {
        self.banner
            .lines()
            .filter(|l| l.contains(label))
            .flat_map(|l| l.split(|c: char| c.is_whitespace() || "()\"".contains(c)))
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}… on a `{label}` line:\n{}", self.banner))
            .to_owned()
    }
}

#[test]
fn demo_seeds_a_realistic_tenant_prints_how_to_try_it_and_serves() {
    let sb = Sandbox::new();
    if sb.on_postgres() {
        // `demo` always runs on its own SQLite file: the SQLite pass covers this test.
        return;
    }
    let started = Instant::now();
    let demo = Demo::start(&sb);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "seeding and starting took {:?}",
        started.elapsed()
    );
    let agent = demo.word("agent key:", "tops_");
    let admin = demo.word("admin key:", "tops_");
    let tenant = demo.word("Tenant", "tn_");
    let request = demo.word("pending:", "apr_");
    assert_key_shape(&agent);
    assert!(demo.banner.contains(" chat --as sam"), "{}", demo.banner);
    assert!(demo.banner.contains("mcp\",\"--stdio\""), "{}", demo.banner);
    let (status, _) = crate::approvals::http_get(&demo.addr, "/healthz");
    assert_eq!(status, 200);

    // What the agent sees: one finalized invoice, personas of every kind.
    let invoices = sb.call_ok(&agent, "billing.invoices", json!({}));
    assert_eq!(
        invoices["invoices"].as_array().unwrap().len(),
        1,
        "{invoices}"
    );
    let personas = sb.call_ok(&agent, "members.list_personas", json!({}));
    let kinds: std::collections::BTreeSet<&str> = personas["personas"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["agent", "human", "service"]
    );
    let summary = sb.call_ok(&agent, "billing.summary", json!({}));
    assert!(
        summary["text"].as_str().unwrap().contains("USD"),
        "{summary}"
    );
    // The agent is read-only.
    sb.call(&agent, "keys.revoke", json!({"key": "ci-deploy"}))
        .denied();
    // The pending request: the admin's, waiting for a second person.
    let mine = sb.call_ok(&admin, "approvals.mine", json!({}));
    assert_eq!(mine["requests"][0]["id"], request.as_str(), "{mine}");
    assert_eq!(mine["requests"][0]["state"], "pending", "{mine}");
    let routes = sb.call_ok(&admin, "approvals.routes_list", json!({}));
    assert!(routes.to_string().contains("keys.revoke"), "{routes}");
    sb.run(&["audit", "verify", "--tenant", &tenant]).code(0);

    // The chat sandbox works at once, without a credential.
    let (code, out, err) = chat(&sb, &["--as", "fiona"], &[], "/tenant whoami\n/billing\n");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("handle: fiona") && out.contains("USD"),
        "{out}"
    );

    // A second run serves the same database as it is, with the same keys.
    drop(demo);
    let again = Demo::start(&sb);
    assert!(
        again.banner.contains("existing demo database"),
        "{}",
        again.banner
    );
    assert_eq!(again.word("agent key:", "tops_"), agent);
    let personas_after = sb.call_ok(&agent, "members.list_personas", json!({}));
    assert_eq!(
        personas_after["personas"], personas["personas"],
        "nothing seeded twice"
    );
}

#[test]
fn demo_refuses_a_database_it_did_not_seed() {
    let sb = Sandbox::new();
    if sb.on_postgres() {
        // `demo` always runs on its own SQLite file: the SQLite pass covers this test.
        return;
    }
    sb.create_tenant("acme");
    let run = sb.run(&["demo", "--listen", "127.0.0.1:0"]);
    run.code(1);
    assert!(run.stderr.contains("not a demo database"), "{}", run.stderr);
}
