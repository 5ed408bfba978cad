//! The two-person rule through the real binary: a destructive call waits, a second human's
//! decision runs it once, and a crash between approval and execution is resumed by `serve`.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A sandbox whose binary accepts console (SSO) JWTs (every sandbox does now).
pub fn jwt_sandbox() -> Sandbox {
    Sandbox::new()
}

/// A tenant with a requester (`ops`, tenant-admin, using an API key) and an approver (`alice`,
/// security-admin, signed in with her console token), both human, and a persona to delete.
fn team(sb: &Sandbox) -> (Tenant, String, String) {
    let t = sb.create_tenant("acme");
    let ops = sb.person(&t.api_key, &t.tenant_id, "ops", &["tenant-admin"]);
    let alice = sb.person(&t.api_key, &t.tenant_id, "alice", &["security-admin"]);
    // ops works with a key she issued herself; alice decides with her console sign-in.
    let ops_key = sb.own_key(
        &ops,
        &[
            "members:write",
            "members:read",
            "approvals:read",
            "tenant:export",
            "audit:read",
            "keys:read",
            "keys:write",
            "webhooks:read",
            "webhooks:write",
            "connectors:read",
            "ai:read",
        ],
    );
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({"handle": "old-bot", "kind": "service", "roles": ["developer"]}),
    );
    (t, ops_key, alice.token)
}

fn deletions(sb: &Sandbox, admin: &str) -> usize {
    let log = sb.call_ok(
        admin,
        "audit.list",
        json!({"op": "members.delete_persona", "limit": 50}),
    );
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "done")
        .count()
}

fn raise(sb: &Sandbox, ops: &str) -> String {
    let run = sb.call(ops, "members.delete_persona", json!({"persona": "old-bot"}));
    run.code(0);
    assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
    let v = run.json();
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);
    assert!(v["summary"].as_str().unwrap().contains("old-bot"));
    v["request_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_second_human_approves_a_destructive_call_from_the_shell_and_it_runs_once() {
    let sb = jwt_sandbox();
    let (t, ops, alice) = team(&sb);
    let id = raise(&sb, &ops);
    assert_eq!(deletions(&sb, &t.api_key), 0);
    // The requester cannot approve their own request.
    let run = sb.call(
        &ops,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve"}),
    );
    assert!(run.status() == "denied" || run.code == 3, "{}", run.stdout);
    let out = sb.call_ok(
        &alice,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve", "comment": "ok"}),
    );
    assert_eq!(out["request"]["state"], "succeeded", "{out}");
    // Deciding again changes nothing.
    sb.call(
        &alice,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve"}),
    )
    .code(1);
    assert_eq!(deletions(&sb, &t.api_key), 1);
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);
}

/// `tenantops serve` on a free port; returns the child and its address.
pub fn serve(sb: &Sandbox) -> (Child, String) {
    serve_with(sb, &[])
}

/// `tenantops serve` on a free port with extra environment variables.
pub fn serve_with(sb: &Sandbox, env: &[(&str, &str)]) -> (Child, String) {
    let db = sb.db();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--db",
        db.as_str(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--approval-tick",
        "200ms",
    ])
    .current_dir(sb.dir())
    .envs(sb.db_env())
    .env_remove("TENANTOPS_FAULT")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    // TENANTOPS_TEST_SERVER_LOG=debug shows the server's log while debugging a test.
    .stderr(if std::env::var_os("TENANTOPS_TEST_SERVER_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    if let Ok(level) = std::env::var("TENANTOPS_TEST_SERVER_LOG") {
        cmd.env("TENANTOPS_LOG", level);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tenantops serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("serve prints its address");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("serve printed {line:?}"));
    (child, v["listening"].as_str().unwrap().to_owned())
}

/// A plain HTTP/1.1 GET (status and body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, text) = crate::support::http(addr, "GET", path, &[], "");
    (status, crate::support::body_of(&text).to_owned())
}

#[test]
fn a_crash_between_approval_and_execution_is_resumed_exactly_once_on_restart() {
    let sb = jwt_sandbox();
    let (t, ops, alice) = team(&sb);
    let id = raise(&sb, &ops);
    // The approver's process dies right after the approval commits, before the deletion runs.
    let crashed = sb.run_env(
        &[
            "call",
            "approvals.decide",
            "--input",
            &json!({"request_id": id, "decision": "approve"}).to_string(),
        ],
        &[
            ("TENANTOPS_API_KEY", &alice),
            ("TENANTOPS_FAULT", "after-approval"),
        ],
    );
    assert_ne!(
        crashed.code, 0,
        "the process was meant to die: {}",
        crashed.stdout
    );
    let view = sb.call_ok(&t.api_key, "approvals.get", json!({"request_id": id}));
    assert_eq!(view["state"], "approved", "{view}");
    assert_eq!(deletions(&sb, &t.api_key), 0);

    // Restart: the server's worker resumes the approved request.
    let (mut child, addr) = serve(&sb);
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let view = sb.call_ok(&t.api_key, "approvals.get", json!({"request_id": id}));
        if view["state"] != "approved" && view["state"] != "executing" || Instant::now() > deadline
        {
            break view["state"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, health) = http_get(&addr, "/healthz");
    let (_, metrics) = http_get(&addr, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(state, "succeeded");
    assert_eq!(status, 200, "{health}");
    assert!(
        metrics.contains("tenantops_approvals_resumed_total 1"),
        "{metrics}"
    );
    assert_eq!(deletions(&sb, &t.api_key), 1);

    // Another restart finds nothing left to do.
    let (mut child, _) = serve(&sb);
    std::thread::sleep(Duration::from_millis(600));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(deletions(&sb, &t.api_key), 1);
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);
}

#[test]
fn export_all_waits_for_a_second_person_then_writes_one_archive() {
    let sb = jwt_sandbox();
    let (t, ops, alice) = team(&sb);
    let run = sb.call(&ops, "tenant.export_all", json!({"reason": "annual DSAR"}));
    assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
    let id = run.json()["request_id"].as_str().unwrap().to_owned();
    assert!(
        !sb.dir().join("exports").exists(),
        "nothing is exported before approval"
    );
    let out = sb.call_ok(
        &alice,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve"}),
    );
    let result = &out["request"]["result"];
    // Where it was written, relative to the run's working directory when the export directory
    // is (on PostgreSQL the default is ./exports; on SQLite, exports/ beside the file).
    let archive = sb.dir().join(result["archive"].as_str().unwrap());
    assert!(archive.is_file(), "{out}");
    assert!(
        archive.to_string_lossy().contains(&id),
        "named after its request: {archive:?}"
    );
    assert!(
        result["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "personas")
    );
    let bytes = std::fs::read(&archive).unwrap();
    assert!(!contains_bytes(&bytes, t.api_key.as_bytes()));
    assert_eq!(
        std::fs::read_dir(sb.dir().join("exports")).unwrap().count(),
        1
    );
    // Sealed at rest; the operator opens it with the tenant's keys to hand it over.
    assert!(bytes.starts_with(b"TOPSARC1"), "sealed at rest");
    let opened = sb.dir().join("opened.tar.gz");
    let (a, o) = (archive.to_str().unwrap(), opened.to_str().unwrap());
    let run = sb.run(&["tenant", "export-open", a, "--out", o]);
    assert_eq!(run.code(0).json()["tenant_id"], t.tenant_id.as_str());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&opened).unwrap(),
    ));
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"manifest.json".to_owned()), "{names:?}");
    assert!(names.contains(&"personas.jsonl".to_owned()), "{names:?}");
    // Never over an existing file.
    sb.run(&["tenant", "export-open", a, "--out", o]).code(2);
}

#[test]
fn only_a_key_the_approver_issued_themselves_decides_unless_sign_in_is_required_or_weakened() {
    // (REQUIRE_SIGN_IN, BY_ANY_KEY): default, strict, weakened on purpose.
    for (strict, any_key) in [(false, false), (true, false), (false, true)] {
        let mut sb = Sandbox::new();
        if strict {
            sb = sb.with_var("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN", "true");
        }
        if any_key {
            sb = sb.with_var(
                "TENANTOPS_DECISIONS_BY_ANY_KEY",
                "i-accept-that-one-person-can-approve",
            );
        }
        let t = sb.create_tenant("acme");
        let alice = sb.person(&t.api_key, &t.tenant_id, "alice", &["security-admin"]);
        let minted = api_key_of(&sb.call_ok(
            &t.api_key,
            "keys.issue",
            json!({"persona": "alice", "scopes": ["approvals:decide", "approvals:read"]}),
        ));
        let own = sb.own_key(&alice, &["approvals:decide", "approvals:read"]);
        sb.call_ok(
            &t.api_key,
            "members.create_persona",
            json!({"handle": "old-bot", "kind": "service", "roles": ["developer"]}),
        );
        let run = sb.call(
            &t.api_key,
            "members.delete_persona",
            json!({"persona": "old-bot"}),
        );
        assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
        let id = run.json()["request_id"].as_str().unwrap().to_owned();
        let decide = |key: &str| {
            sb.call(
                key,
                "approvals.decide",
                json!({"request_id": id, "decision": "approve"}),
            )
        };
        // The key the admin minted "for" alice decides only when the rule is weakened.
        let run = decide(&minted);
        if any_key {
            assert_eq!(
                run.done()["request"]["state"],
                "succeeded",
                "{}",
                run.stdout
            );
            continue;
        }
        assert!(run.denied().contains("issued") || run.denied().contains("sign-in"));
        let run = decide(&own);
        if strict {
            assert!(run.denied().contains("own sign-in"), "{}", run.stdout);
            let run = decide(&alice.token);
            assert_eq!(
                run.done()["request"]["state"],
                "succeeded",
                "{}",
                run.stdout
            );
        } else {
            assert_eq!(
                run.done()["request"]["state"],
                "succeeded",
                "{}",
                run.stdout
            );
        }
    }
    // The weakening switch is spelled out or refused, and contradicting the strict one is refused.
    let sb = Sandbox::new().with_var("TENANTOPS_DECISIONS_BY_ANY_KEY", "true");
    let run = sb.run(&["tenant", "create", "--name", "x"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("i-accept-that-one-person-can-approve"),
        "{}",
        run.stderr
    );
}

#[test]
fn one_insider_cannot_be_two_people_from_the_shell() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let fin = sb.person(&t.api_key, &t.tenant_id, "fin", &["finance-approver"]);
    let fin2 = sb.person(&t.api_key, &t.tenant_id, "fin2", &["finance-approver"]);
    // A link code for a colleague: refused, for a peer and for an admin alike.
    for (who, whom) in [(&fin.token, "fin2"), (&t.api_key, "fin")] {
        let run = sb.call(who, "members.chat_link_code", json!({"persona": whom}));
        assert!(
            run.denied().contains("only its own person"),
            "{}",
            run.stdout
        );
    }
    let _ = fin2;
    // A sock puppet given decide rights by one admin waits for a second person.
    let run = sb.call(
        &t.api_key,
        "members.create_persona",
        json!({"handle": "sock", "kind": "human", "email": "me+sock@acme.example",
               "roles": ["security-admin"]}),
    );
    assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
    let id = run.json()["request_id"].as_str().unwrap().to_owned();
    let run = sb.call(
        &t.api_key,
        "approvals.decide",
        json!({"request_id": id, "decision": "approve"}),
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
    // A route on a persona holds whether the caller names it by handle or by id.
    let bot = sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({"handle": "ci-bot", "kind": "service", "roles": ["developer"]}),
    );
    sb.call_approved(
        &t.api_key,
        &t.tenant_id,
        "approvals.routes_add",
        json!({"name": "bots", "operation": "members.revoke",
               "condition": [{"path": "input.persona", "op": "in", "value": ["ci-bot"]}],
               "approvers": {"roles": ["finance-approver"]}}),
    );
    let run = sb.call(&t.api_key, "members.revoke", json!({"persona": bot["id"]}));
    assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);
}
