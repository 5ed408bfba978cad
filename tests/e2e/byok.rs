//! BYOK (guide §9) end to end through the built binary: the tenant's own KMS key — AWS KMS on a
//! real `moto_server`, GCP Cloud KMS and Azure Key Vault on the in-process fakes of
//! `tenantops_core::kms::testing` — configured and verified from the shell, the background
//! re-wrap of `serve` followed to 100 %, rotation and revocation decided by a second human, the
//! crypto-shredding check on the database files, MCP agents that can read BYOK but never decide,
//! and `/byok status` in Slack. All traffic stays on 127.0.0.1.
//!
//! The fakes run on a runtime of the test's own (worker threads), so they keep answering while
//! the test blocks on a run of the binary.

use crate::approvals::serve_with;
use crate::mcp::{client, url};
use crate::support::*;
use serde_json::{Value, json};
use std::process::Child;
use std::time::{Duration, Instant};
use tenantops_core::kms::testing::{AzureFake, GcpFake, Moto};

/// How long the background re-wrap (every `--approval-tick`, 200 ms) may take to reach a state.
const REWRAP_DEADLINE: Duration = Duration::from_secs(60);

/// A GCP Cloud KMS key resource name on the fake.
const GCP_KEY: &str = "projects/acme/locations/europe-west1/keyRings/tenantops/cryptoKeys/data";

/// A runtime whose worker threads serve the KMS fakes while the test thread blocks.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime for the KMS fakes")
}

/// `tenantops serve`, killed when dropped (also when the test fails).
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

/// `serve` on the sandbox's database with the KMS variables and a 1 s key cache.
fn serve(sb: &Sandbox, kms: &[(&'static str, String)]) -> Server {
    let mut env: Vec<(&str, &str)> = kms.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("TENANTOPS_KEY_CACHE_TTL", "1s"));
    let (child, addr) = serve_with(sb, &env);
    Server { child, addr }
}

/// A sandbox whose every run gets the KMS variables `kms` and a 1 s key cache.
fn sandbox(kms: &[(&'static str, String)]) -> Sandbox {
    with_kms(Sandbox::new(), kms)
}

fn with_kms(sb: Sandbox, kms: &[(&'static str, String)]) -> Sandbox {
    kms.iter()
        .fold(sb, |sb, (k, v)| sb.with_var(k, v))
        .with_var("TENANTOPS_KEY_CACHE_TTL", "1s")
}

/// `call OP` with `key` and extra variables (for sandboxes made elsewhere, e.g. Slack's world).
fn call_env(
    sb: &Sandbox,
    kms: &[(&'static str, String)],
    key: &str,
    op: &str,
    input: Value,
) -> Run {
    let input = input.to_string();
    let mut env: Vec<(&str, &str)> = vec![("TENANTOPS_API_KEY", key)];
    env.extend(kms.iter().map(|(k, v)| (*k, v.as_str())));
    sb.run_env(&["call", op, "--input", &input], &env)
}

/// Polls `byok.status` (as `key`) until `done` holds; panics with the last status after
/// [`REWRAP_DEADLINE`].
#[track_caller]
fn status_until(
    what: &str,
    mut status: impl FnMut() -> Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + REWRAP_DEADLINE;
    loop {
        let s = status();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "byok.status never showed {what} within {REWRAP_DEADLINE:?}; last: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Active on `key` with everything under the newest data key.
fn active_on(key: &str) -> impl Fn(&Value) -> bool + '_ {
    move |s: &Value| s["state"] == "active" && s["rewrap"]["percent"] == 100 && s["key"] == key
}

/// `call` that must wait for a second person; returns the request id.
#[track_caller]
fn pending(run: &Run) -> String {
    run.code(0);
    assert_eq!(run.status(), "pending_approval", "{}", run.stdout);
    run.json()["request_id"].as_str().unwrap().to_owned()
}

/// `approvals.decide` approve as `decider`; returns the executed request.
#[track_caller]
fn approve(sb: &Sandbox, decider: &str, request: &str) -> Value {
    let out = sb.call_ok(
        decider,
        "approvals.decide",
        json!({"request_id": request, "decision": "approve", "comment": "second person"}),
    );
    assert_eq!(out["request"]["state"], "succeeded", "{out}");
    out["request"].clone()
}

fn emails(personas: &Value) -> Vec<String> {
    personas["personas"]
        .as_array()
        .unwrap_or_else(|| panic!("no personas in {personas}"))
        .iter()
        .filter_map(|p| p["email"].as_str().map(str::to_owned))
        .collect()
}

/// The failed checks of a verification, by name.
fn failed(verify: &Value) -> Vec<&Value> {
    verify["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {verify}"))
        .iter()
        .filter(|c| c["ok"] == false)
        .collect()
}

/// A tenant (its creator's key) and a second human admin who decides with her own sign-in.
fn tenant_with_two_admins(sb: &Sandbox) -> (Tenant, Person) {
    let t = sb.create_tenant("acme");
    let ops = sb.person(&t.api_key, &t.tenant_id, "ops", &["tenant-admin"]);
    (t, ops)
}

/// Configures `key` on moto and verifies it green, then waits until the server's re-wrap has
/// moved everything under it.
#[track_caller]
fn bring_aws_key(sb: &Sandbox, admin: &str, tenant: &str, key: &str) -> Value {
    let configured = sb.call_ok(
        admin,
        "byok.configure",
        json!({"provider": "aws", "key": key}),
    );
    assert_eq!(configured["state"], "pending_verify", "{configured}");
    assert!(
        !configured["grant_steps"].as_array().unwrap().is_empty(),
        "{configured}"
    );
    // With two people who may decide, handing the tenant's data to a key takes both.
    let green = sb.call_approved(admin, tenant, "byok.verify", json!({}));
    assert_eq!(green["ok"], true, "{green}");
    assert!(failed(&green).is_empty(), "{green}");
    status_until(
        "active at 100 %",
        || sb.call_ok(admin, "byok.status", json!({})),
        active_on(key),
    )
}

#[test]
fn byok_on_moto_through_the_binary_rotation_and_revocation_need_a_second_admin() {
    let rt = runtime();
    let moto = rt.block_on(Moto::start());
    let kms = moto.env();
    let sb = sandbox(&kms);
    let (t, ops) = tenant_with_two_admins(&sb);
    let admin = t.api_key.clone();
    sb.call_ok(
        &admin,
        "members.create_persona",
        json!({"handle": "ada", "kind": "human", "email": "ada@acme.example",
               "display_name": "Ada Lovelace", "roles": ["billing-viewer"]}),
    );
    let _server = serve(&sb, &kms);
    assert_eq!(sb.call_ok(&admin, "byok.status", json!({}))["state"], "off");

    // Configure + verify green from the shell; the server's re-wrap moves everything.
    let key1 = rt.block_on(moto.create_key()).id;
    let s = bring_aws_key(&sb, &admin, &t.tenant_id, &key1);
    assert_eq!(s["healthy"], true, "{s}");
    assert_eq!(s["provider"], "aws", "{s}");
    assert!(
        s["data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["wrapped_by"].as_str().unwrap().ends_with(&key1)),
        "{s}"
    );
    assert!(
        emails(&sb.call_ok(&admin, "members.list_personas", json!({})))
            .contains(&"ada@acme.example".to_owned())
    );

    // Rotation to a second key waits for a second person; nothing changes meanwhile.
    let key2 = rt.block_on(moto.create_key()).id;
    let run = sb.call(&admin, "byok.rotate", json!({"key": key2}));
    let request = pending(&run);
    assert!(
        run.json()["summary"]
            .as_str()
            .unwrap()
            .contains("re-wrapped"),
        "{}",
        run.stdout
    );
    assert_eq!(
        sb.call_ok(&admin, "byok.status", json!({}))["key"],
        key1.as_str()
    );
    // The requester cannot approve their own rotation.
    let own = sb.call(
        &admin,
        "approvals.decide",
        json!({"request_id": request, "decision": "approve"}),
    );
    assert_ne!(own.code, 0, "{}", own.stdout);
    let rotated = approve(&sb, &ops.token, &request);
    assert_eq!(rotated["result"]["key"], key2.as_str(), "{rotated}");
    let s = status_until(
        "active on the new key at 100 %",
        || sb.call_ok(&admin, "byok.status", json!({})),
        active_on(&key2),
    );
    assert!(
        s["data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["wrapped_by"].as_str().unwrap().ends_with(&key2)),
        "the old data key is dropped once everything is re-wrapped: {s}"
    );
    assert!(
        emails(&sb.call_ok(&admin, "members.list_personas", json!({})))
            .contains(&"ada@acme.example".to_owned())
    );

    // Revocation, approved by the second admin: the tenant goes dark, naming BYOK.
    let request = pending(&sb.call(&admin, "byok.revoke", json!({"reason": "e2e drill"})));
    let revoked = approve(&sb, &ops.token, &request);
    assert_eq!(revoked["result"]["state"], "revoked", "{revoked}");
    let dark = sb.call(&admin, "members.list_personas", json!({}));
    assert_ne!(dark.code, 0, "{}", dark.stdout);
    let err = dark.json();
    assert_eq!(err["status"], "error", "{err}");
    assert_eq!(err["kind"], "keys_unavailable", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("BYOK"),
        "the error names BYOK: {err}"
    );
    assert!(!dark.stdout.contains("ada@acme.example"), "{}", dark.stdout);
    let s = sb.call_ok(&admin, "byok.status", json!({}));
    assert_eq!(s["state"], "revoked", "{s}");
    assert_eq!(s["healthy"], false, "{s}");
    // Operations that need no sealed value still work.
    assert_eq!(sb.call_ok(&admin, "whoami", json!({}))["handle"], "admin");

    // Nothing personal is in plaintext at rest: the database file and its -wal (or, on
    // PostgreSQL, every row and bytea value).
    let at_rest = sb.db_contents();
    assert!(!at_rest.is_empty(), "no database files found");
    if !sb.on_postgres() {
        assert!(
            at_rest.iter().any(|(p, _)| p.ends_with("-wal")),
            "the database runs in WAL mode: {:?}",
            at_rest.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
    for (file, bytes) in &at_rest {
        for secret in ["ada@acme.example", "Ada Lovelace"] {
            assert!(
                !contains_bytes(bytes, secret.as_bytes()),
                "`{secret}` is in plaintext in {file}"
            );
        }
    }

    // The grant restored: verify brings the tenant back, readable.
    let back = sb.call_approved(&admin, &t.tenant_id, "byok.verify", json!({}));
    assert_eq!(back["ok"], true, "{back}");
    status_until(
        "active again",
        || sb.call_ok(&admin, "byok.status", json!({})),
        active_on(&key2),
    );
    assert!(
        emails(&sb.call_ok(&admin, "members.list_personas", json!({})))
            .contains(&"ada@acme.example".to_owned())
    );
}

#[test]
fn over_mcp_an_agent_reads_byok_but_a_rotation_only_raises_an_approval_it_cannot_decide() {
    let rt = runtime();
    let moto = rt.block_on(Moto::start());
    let kms = moto.env();
    let sb = sandbox(&kms);
    let (t, ops) = tenant_with_two_admins(&sb);
    let admin = t.api_key.clone();
    let server = serve(&sb, &kms);
    let key1 = rt.block_on(moto.create_key()).id;
    bring_aws_key(&sb, &admin, &t.tenant_id, &key1);

    sb.call_approved(
        &admin,
        &t.tenant_id,
        "members.create_persona",
        json!({"handle": "claude", "kind": "agent", "roles": ["security-admin"]}),
    );
    let reader = api_key_of(&sb.call_ok(
        &admin,
        "keys.issue",
        json!({"persona": "claude", "name": "byok-reader", "expires_in": "1d",
               "scopes": ["byok:read"]}),
    ));
    let writer = api_key_of(&sb.call_ok(
        &admin,
        "keys.issue",
        json!({"persona": "claude", "name": "byok-writer", "expires_in": "1d",
               "scopes": ["byok:write", "approvals:read"]}),
    ));
    let mcp = url(&server.addr);
    // Even a key that carries approvals:decide (its persona's role has it) does not decide.
    let decider = api_key_of(&sb.call_ok(
        &admin,
        "keys.issue",
        json!({"persona": "claude", "name": "would-be-decider", "expires_in": "1d",
               "scopes": ["approvals:read", "approvals:decide"]}),
    ));

    // byok:read: byok.status is listed and answers; deciding is not there.
    let listed = client(&["tools", "--key", &reader, "--url", &mcp]);
    let tools: Vec<&str> = listed[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"byok.status"), "{tools:?}");
    assert!(!tools.contains(&"approvals.decide"), "{tools:?}");
    assert!(!tools.contains(&"byok.rotate"), "{tools:?}");
    assert_eq!(
        listed[0]["annotations"]["byok.status"]["readOnlyHint"], true,
        "{}",
        listed[0]
    );
    let status = client(&[
        "call",
        "--key",
        &reader,
        "--url",
        &mcp,
        "--tool",
        "byok.status",
    ]);
    assert_eq!(status[0]["is_error"], false, "{}", status[0]);
    assert_eq!(status[0]["structured"]["state"], "active", "{}", status[0]);
    assert_eq!(
        status[0]["structured"]["key"],
        key1.as_str(),
        "{}",
        status[0]
    );

    // Decisions are never offered over MCP, whatever the key carries.
    let listed = client(&["tools", "--key", &decider, "--url", &mcp]);
    let tools = listed[0]["tools"].to_string();
    assert!(tools.contains("\"approvals.pending\""), "{tools}");
    assert!(!tools.contains("\"approvals.decide\""), "{tools}");

    // byok:write: a rotation is only an approval request, never run.
    let listed = client(&["tools", "--key", &writer, "--url", &mcp]);
    let tools = listed[0]["tools"].to_string();
    assert!(tools.contains("\"byok.rotate\""), "{tools}");
    assert!(!tools.contains("\"approvals.decide\""), "{tools}");
    assert_eq!(
        listed[0]["annotations"]["byok.rotate"]["destructiveHint"], true,
        "{}",
        listed[0]
    );
    let key2 = rt.block_on(moto.create_key()).id;
    let args = json!({"key": key2}).to_string();
    let rotate = client(&[
        "call",
        "--key",
        &writer,
        "--url",
        &mcp,
        "--tool",
        "byok.rotate",
        "--arguments",
        &args,
    ]);
    let answer = &rotate[0]["structured"];
    assert_eq!(rotate[0]["is_error"], false, "{}", rotate[0]);
    assert_eq!(answer["status"], "pending_approval", "{}", rotate[0]);
    let request = answer["request_id"].as_str().unwrap().to_owned();

    // With the tasks extension such a call is a task (working), withdrawn here. (Another key:
    // the same input would be the same request, the one a human decides below.)
    let key3 = rt.block_on(moto.create_key()).id;
    let other = json!({"key": key3}).to_string();
    let tasked = client(&[
        "tasks",
        "--key",
        &writer,
        "--url",
        &mcp,
        "--tool",
        "byok.rotate",
        "--arguments",
        &other,
        "--cancel",
    ]);
    assert_eq!(
        tasked[0]["response"]["result"]["status"], "working",
        "{tasked:?}"
    );
    assert_eq!(
        tasked.last().unwrap()["response"]["result"]["status"],
        "cancelled",
        "{tasked:?}"
    );

    // The agent cannot approve it, not even by naming the tool; nothing ran.
    let decide = json!({"request_id": request, "decision": "approve"}).to_string();
    for key in [&reader, &writer, &decider] {
        let tried = client(&[
            "call",
            "--key",
            key,
            "--url",
            &mcp,
            "--tool",
            "approvals.decide",
            "--arguments",
            &decide,
        ]);
        assert_eq!(tried[0]["is_error"], true, "{}", tried[0]);
        assert_eq!(tried[0]["structured"]["error"], "denied", "{}", tried[0]);
        if key == &decider {
            let why = tried[0]["text"].as_str().unwrap();
            assert!(why.contains("agent") && why.contains("human"), "{why}");
        }
    }
    let view = sb.call_ok(&admin, "approvals.get", json!({"request_id": request}));
    assert_eq!(view["state"], "pending", "{view}");
    // Nothing ran: the key is still the first one.
    let s = sb.call_ok(&admin, "byok.status", json!({}));
    assert_eq!(s["key"], key1.as_str(), "{s}");
    assert_eq!(s["state"], "active", "{s}");

    // A second human approves: only then does the rotation run.
    let done = approve(&sb, &ops.token, &request);
    assert_eq!(done["result"]["key"], key2.as_str(), "{done}");
    status_until(
        "active on the agent's proposed key",
        || sb.call_ok(&admin, "byok.status", json!({})),
        active_on(&key2),
    );
    drop(server);
}

/// The first line a phone shows under the Slack answer's header (the notification text is the
/// title and that line), and the whole answer as text.
fn slack_text(answer: &Value) -> (String, String) {
    let text = answer["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in the Slack answer: {answer}"))
        .to_owned();
    let first = text
        .split_once(" — ")
        .map_or(text.as_str(), |(_, rest)| rest)
        .to_owned();
    (first, answer.to_string())
}

/// Whether `s` shows a percentage as `NN %` (a number, a space, a percent sign).
fn shows_percent(s: &str, n: u64) -> bool {
    s.contains(&format!("{n} %")) || s.contains(&format!("{n}\u{a0}%"))
}

#[test]
fn slack_byok_status_is_a_green_dot_with_the_rewrap_progress_and_a_red_dot_when_revoked() {
    let rt = runtime();
    let moto = rt.block_on(Moto::start());
    let kms = moto.env();
    let mut extra: Vec<(&str, &str)> = kms.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("TENANTOPS_KEY_CACHE_TTL", "1s"));
    let w = crate::slack::world_with(&extra);
    let sb = &w.sb;
    let sec = w.person("sec", "security-admin");
    w.link("U0SEC", "sec");

    let key = rt.block_on(moto.create_key()).id;
    let call = |k: &str, op: &str, input: Value| call_env(sb, &kms, k, op, input);
    call(
        &w.admin,
        "byok.configure",
        json!({"provider": "aws", "key": key}),
    )
    .done();
    let request = pending(&call(&w.admin, "byok.verify", json!({})));
    let out = call(
        &sec.token,
        "approvals.decide",
        json!({"request_id": request, "decision": "approve"}),
    )
    .done()
    .clone();
    assert_eq!(out["request"]["result"]["ok"], true, "{out}");
    status_until(
        "active at 100 %",
        || call(&w.admin, "byok.status", json!({})).done().clone(),
        active_on(&key),
    );

    // Healthy: 🟢, with the re-wrap progress as `NN %`.
    let (status, answer) = w.command("U0SEC", "/byok", "status");
    assert_eq!(status, 200, "{answer}");
    let (text, all) = slack_text(&answer);
    assert!(
        text.starts_with('🟢'),
        "a healthy BYOK answers with a green dot first: {text:?} in {answer}"
    );
    assert!(
        shows_percent(&all, 100),
        "the re-wrap progress shows as `100 %`: {answer}"
    );
    assert!(!text.starts_with('🔴'), "{text}");

    // Revoked (approved by the second person): 🔴.
    let request = pending(&call(&w.admin, "byok.revoke", json!({"reason": "drill"})));
    let out = call(
        &sec.token,
        "approvals.decide",
        json!({"request_id": request, "decision": "approve"}),
    )
    .done()
    .clone();
    assert_eq!(out["request"]["state"], "succeeded", "{out}");
    let (status, answer) = w.command("U0SEC", "/byok", "status");
    assert_eq!(status, 200, "{answer}");
    let (text, _) = slack_text(&answer);
    assert!(
        text.starts_with('🔴'),
        "a revoked BYOK answers with a red dot first: {text:?} in {answer}"
    );
    assert!(!text.starts_with('🟢'), "{text}");
    drop(w);
}

/// Runs configure → verify green, then `refuse` on the fake, then verify must be red with a
/// failed check whose error mentions `names` and whose fix mentions `fix`.
#[track_caller]
fn verify_red(sb: &Sandbox, admin: &str, names: &str, fix: &str) -> Value {
    let red = sb.call_ok(admin, "byok.verify", json!({}));
    assert_eq!(red["ok"], false, "{red}");
    let bad = failed(&red);
    assert!(
        bad.iter().any(|c| {
            c["error"].as_str().unwrap_or_default().contains(names)
                && c["fix"].as_str().unwrap_or_default().contains(fix)
        }),
        "no failed check names `{names}` with a fix naming `{fix}`: {red}"
    );
    red
}

#[test]
fn gcp_cloud_kms_through_the_binary_green_then_red_on_a_denied_permission_and_a_disabled_key() {
    let rt = runtime();
    let gcp = rt.block_on(GcpFake::start());
    gcp.create_key(GCP_KEY);
    let sb = Sandbox::new();
    let credentials = sb.dir().join("service-account.json");
    std::fs::write(&credentials, gcp.service_account_json()).unwrap();
    let kms = vec![
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            credentials.to_str().unwrap().to_owned(),
        ),
        ("TENANTOPS_GCP_KMS_ENDPOINT", gcp.endpoint()),
        ("TENANTOPS_ALLOW_LOOPBACK_URLS", "true".to_owned()),
    ];
    let sb = with_kms(sb, &kms);
    let t = sb.create_tenant("acme");
    let admin = t.api_key;

    let configured = sb.call_ok(
        &admin,
        "byok.configure",
        json!({"provider": "gcp", "key": GCP_KEY}),
    );
    assert_eq!(configured["state"], "pending_verify", "{configured}");
    let green = sb.call_ok(&admin, "byok.verify", json!({}));
    assert_eq!(green["ok"], true, "{green}");
    assert!(failed(&green).is_empty(), "{green}");
    assert!(gcp.token_requests() >= 1, "tenantops signed in to the fake");
    let s = sb.call_ok(&admin, "byok.status", json!({}));
    assert_eq!(s["provider"], "gcp", "{s}");
    assert_eq!(s["healthy"], true, "{s}");

    // The service account loses the encrypt permission: red, naming it, with the role to grant.
    gcp.deny(GCP_KEY, "cloudkms.cryptoKeyVersions.useToEncrypt");
    verify_red(
        &sb,
        &admin,
        "cloudkms.cryptoKeyVersions.useToEncrypt",
        "roles/cloudkms.cryptoKeyEncrypterDecrypter",
    );

    // A fresh key, disabled in the console: red, naming the disabled key, with the Enable step.
    let other = format!("{GCP_KEY}-2");
    gcp.create_key(&other);
    gcp.set_state(&other, "DISABLED");
    let sb2 = with_kms(Sandbox::new(), &kms);
    let admin2 = sb2.create_tenant("globex").api_key;
    sb2.call_ok(
        &admin2,
        "byok.configure",
        json!({"provider": "gcp", "key": other}),
    );
    let red = verify_red(&sb2, &admin2, "DISABLED", "Enable");
    assert_eq!(red["checks"][0]["check"], "describe", "{red}");
    assert_eq!(red["checks"][0]["ok"], false, "{red}");
    assert_eq!(
        sb2.call_ok(&admin2, "byok.status", json!({}))["state"],
        "pending_verify"
    );
}

#[test]
fn azure_key_vault_through_the_binary_green_then_red_on_a_denied_operation_and_a_disabled_key() {
    let rt = runtime();
    let azure = rt.block_on(AzureFake::start());
    azure.create_key("tenant-key");
    let kms = azure.env();
    let sb = sandbox(&kms);
    let t = sb.create_tenant("acme");
    let admin = t.api_key;

    let configured = sb.call_ok(
        &admin,
        "byok.configure",
        json!({"provider": "azure", "key": azure.key_url("tenant-key")}),
    );
    assert_eq!(configured["state"], "pending_verify", "{configured}");
    let green = sb.call_ok(&admin, "byok.verify", json!({}));
    assert_eq!(green["ok"], true, "{green}");
    assert!(failed(&green).is_empty(), "{green}");
    assert!(
        azure.token_requests() >= 1,
        "tenantops signed in to the fake"
    );
    let s = sb.call_ok(&admin, "byok.status", json!({}));
    assert_eq!(s["provider"], "azure", "{s}");
    assert_eq!(s["healthy"], true, "{s}");

    // The app registration loses wrapKey: red, naming it, with the role assignment to add.
    azure.deny("tenant-key", "wrapKey");
    verify_red(
        &sb,
        &admin,
        "wrapKey",
        "Key Vault Crypto Service Encryption User",
    );

    // A fresh key, disabled in the portal: red, naming the disabled key, with the fix.
    azure.create_key("disabled-key");
    azure.set_enabled("disabled-key", false);
    let sb2 = sandbox(&kms);
    let admin2 = sb2.create_tenant("globex").api_key;
    sb2.call_ok(
        &admin2,
        "byok.configure",
        json!({"provider": "azure", "key": azure.key_url("disabled-key")}),
    );
    let red = verify_red(&sb2, &admin2, "disabled", "Enabled to Yes");
    assert_eq!(red["checks"][0]["check"], "describe", "{red}");
    assert_eq!(red["checks"][0]["ok"], false, "{red}");
}
