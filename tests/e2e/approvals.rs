//! The two-person rule through the real binary: a destructive call waits, a second human's
//! decision runs it once, and a crash between approval and execution is resumed by `serve`.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JWT_SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123456789";

/// A sandbox whose binary accepts console (SSO) JWTs, the credential decisions require.
pub fn jwt_sandbox() -> Sandbox {
    Sandbox::new()
        .with_var("TENANTOPS_JWT_ALGORITHM", "HS256")
        .with_var("TENANTOPS_JWT_SECRET", JWT_SECRET)
        .with_var("TENANTOPS_JWT_ISSUER", "https://console.projex.test")
        .with_var("TENANTOPS_JWT_AUDIENCE", "tenantops")
}

/// A console token for a persona, as the identity provider would mint it.
pub fn console_token(tenant: &str, persona: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = json!({
        "sub": persona, "tenant_id": tenant, "exp": exp,
        "iss": "https://console.projex.test", "aud": "tenantops",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A tenant with a requester (`ops`, tenant-admin, using an API key) and an approver (`alice`,
/// security-admin, signed in with her console token), both human, and a persona to delete.
fn team(sb: &Sandbox) -> (Tenant, String, String) {
    let t = sb.create_tenant("acme");
    let mut keys = Vec::new();
    for (handle, role) in [("ops", "tenant-admin"), ("alice", "security-admin")] {
        let persona = sb.call_ok(
            &t.api_key,
            "members.create_persona",
            json!({"handle": handle, "kind": "human", "email": format!("{handle}@acme.example"), "roles": [role]}),
        );
        if role == "security-admin" {
            keys.push(console_token(&t.tenant_id, persona["id"].as_str().unwrap()));
            continue;
        }
        let scopes: Vec<&str> = if role == "tenant-admin" {
            vec![
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
            ]
        } else {
            vec!["approvals:decide", "approvals:read", "members:read"]
        };
        let key = sb.call_ok(
            &t.api_key,
            "keys.issue",
            json!({"persona": handle, "scopes": scopes}),
        );
        keys.push(api_key_of(&key));
    }
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({"handle": "old-bot", "kind": "service", "roles": ["developer"]}),
    );
    (t, keys[0].clone(), keys[1].clone())
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
        db.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--approval-tick",
        "200ms",
    ])
    .current_dir(sb.dir())
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
    let archive = std::path::PathBuf::from(result["archive"].as_str().unwrap());
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
}

#[test]
fn an_approver_can_decide_from_the_shell_with_an_api_key_unless_sign_in_is_required() {
    for strict in [false, true] {
        let sb = if strict {
            Sandbox::new().with_var("TENANTOPS_DECISIONS_REQUIRE_SIGN_IN", "true")
        } else {
            Sandbox::new()
        };
        let t = sb.create_tenant("acme");
        sb.call_ok(&t.api_key, "members.create_persona",
            json!({"handle": "alice", "kind": "human", "email": "alice@acme.example", "roles": ["security-admin"]}));
        let alice = api_key_of(&sb.call_ok(
            &t.api_key,
            "keys.issue",
            json!({"persona": "alice", "scopes": ["approvals:decide", "approvals:read"]}),
        ));
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
        let run = sb.call(
            &alice,
            "approvals.decide",
            json!({"request_id": id, "decision": "approve"}),
        );
        if strict {
            assert!(run.denied().contains("own sign-in"));
        } else {
            assert_eq!(
                run.done()["request"]["state"],
                "succeeded",
                "{}",
                run.stdout
            );
        }
    }
}
