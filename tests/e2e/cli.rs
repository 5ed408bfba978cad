//! The command-line contract: `tenant create`, `call` (outcomes and exit codes), `ops --json`,
//! `--help` everywhere, and where the database lives.

use crate::support::{Sandbox, api_key_of, assert_key_shape, mistype, tenant_from};
use serde_json::{Value, json};

#[test]
fn provisioning_a_tenant_prints_its_id_first_admin_and_key_once() {
    let sb = Sandbox::new();
    let run = sb.run(&[
        "tenant",
        "create",
        "--name",
        "Acme Corp",
        "--admin-email",
        "ops@acme.example",
    ]);
    run.code(0);
    let t = tenant_from(run.json());
    assert!(t.tenant_id.starts_with("tn_"), "{}", t.tenant_id);
    assert!(t.persona_id.starts_with("ps_"), "{}", t.persona_id);
    assert_key_shape(&t.api_key);

    // A second tenant is a different tenant with a different key.
    let other = sb.create_tenant("Globex");
    assert_ne!(other.tenant_id, t.tenant_id);
    assert_ne!(other.api_key, t.api_key);

    // The first admin is a human tenant-admin with the email given.
    let me = sb.call_ok(&t.api_key, "whoami", json!({}));
    assert_eq!(me["tenant_id"], t.tenant_id);
    assert_eq!(me["tenant_name"], "Acme Corp");
    assert_eq!(me["persona_id"], t.persona_id);
    assert_eq!(me["kind"], "human");
    assert_eq!(me["roles"], json!(["tenant-admin"]));
    let detail = sb.call_ok(
        &t.api_key,
        "members.get_persona",
        json!({ "persona": t.persona_id }),
    );
    assert_eq!(detail["persona"]["email"], "ops@acme.example");

    // Bad flags are bad input, not a crash.
    sb.run(&[
        "tenant",
        "create",
        "--name",
        "x",
        "--admin-email",
        "not-an-email",
    ])
    .error(2, "bad_input");
    sb.run(&["tenant", "create"]).code(2);
    sb.run(&["tenant", "create", "--name", "  "])
        .error(2, "bad_input");
}

#[test]
fn provisioning_several_tenants_at_once_on_a_fresh_database_all_succeed() {
    // First use of a new deployment: several `tenant create` processes start together on a
    // database file that does not exist yet. Each must succeed, and every key must work.
    let sb = Sandbox::new();
    const N: usize = 6;
    let runs: Vec<crate::support::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || sb.run(&["tenant", "create", "--name", &format!("tenant-{i}")]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.code != 0)
        .map(|r| format!("exit {}: {}", r.code, r.stderr.trim()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {N} concurrent `tenant create` failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    for run in &runs {
        let t = tenant_from(run.json());
        assert_eq!(
            sb.call_ok(&t.api_key, "whoami", json!({}))["tenant_id"],
            t.tenant_id
        );
    }
}

#[test]
fn whoami_shows_the_tenant_persona_and_effective_scopes_of_the_credential() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let run = sb.call(&t.api_key, "whoami", json!({}));
    let me = run.done();
    assert_eq!(run.json().as_object().unwrap().len(), 2, "{}", run.stdout);
    assert_eq!(me["tenant_id"], t.tenant_id);
    assert_eq!(me["persona_id"], t.persona_id);
    assert_eq!(me["handle"], "admin");
    assert_eq!(me["via"]["type"], "api_key");
    assert_eq!(me["surface"], "cli");
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in ["members:write", "keys:write", "audit:read", "billing:read"] {
        assert!(scopes.contains(&s), "tenant-admin lacks {s}: {scopes:?}");
    }

    // --api-key works as well as the environment variable.
    let run = sb.run(&["call", "whoami", "--api-key", &t.api_key]);
    assert_eq!(run.done()["persona_id"], t.persona_id);
    // With no --input, the input is `{}`.
    let run = sb.run_env(&["call", "whoami"], &[("TENANTOPS_API_KEY", &t.api_key)]);
    assert_eq!(run.done()["tenant_id"], t.tenant_id);
}

/// Guide §2 and §3, day 1: a BU, a service persona in it for CI, a key with an expiry, the key
/// list (never the secret), a rotation with its grace window, and a revoke that cuts the key off.
#[test]
fn day_one_add_a_bu_a_ci_service_persona_and_issue_rotate_revoke_its_key() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let admin = t.api_key.as_str();

    // Steps to add a BU: a top-level cost-center and a region under it.
    let eng = sb.call_ok(
        admin,
        "members.create_bu",
        json!({ "name": "engineering", "kind": "cost-center" }),
    );
    assert_eq!(eng["name"], "engineering");
    assert_eq!(eng["kind"], "cost-center");
    assert!(eng["parent_id"].is_null());
    let emea = sb.call_ok(
        admin,
        "members.create_bu",
        json!({ "name": "emea", "kind": "region", "parent": "engineering" }),
    );
    assert_eq!(emea["parent"], "engineering");
    assert_eq!(emea["parent_id"], eng["id"]);

    // Steps to add a teammate: a service persona with a role, placed in the BU at creation.
    let bot = sb.call_ok(
        admin,
        "members.create_persona",
        json!({ "handle": "ci-bot", "kind": "service", "roles": ["developer"], "bu": "engineering" }),
    );
    assert_eq!(bot["handle"], "ci-bot");
    assert_eq!(bot["kind"], "service");
    assert_eq!(bot["status"], "active");
    assert_eq!(bot["roles"], json!(["developer"]));
    assert_eq!(bot["bu"], "engineering");
    let listed = sb.call_ok(
        admin,
        "members.list_personas",
        json!({ "bu": "engineering" }),
    );
    let handles: Vec<&Value> = listed["personas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["handle"])
        .collect();
    assert_eq!(handles, [&json!("ci-bot")]);

    // Move it to the region; give it a second role.
    let moved = sb.call_ok(
        admin,
        "members.move_persona",
        json!({ "persona": "ci-bot", "bu": "emea" }),
    );
    assert_eq!(moved["bu"], "emea");
    let roles = sb.call_ok(
        admin,
        "members.assign_roles",
        json!({ "persona": "ci-bot", "roles": ["developer", "billing-viewer"] }),
    );
    assert_eq!(roles["roles"], json!(["billing-viewer", "developer"]));

    // The role templates the guide names exist.
    let templates = sb.call_ok(admin, "roles.list_templates", json!({}));
    let text = templates.to_string();
    for role in [
        "tenant-admin",
        "billing-viewer",
        "finance-approver",
        "security-admin",
        "developer",
        "auditor",
        "ai-agent",
    ] {
        assert!(
            text.contains(&format!("\"{role}\"")),
            "role template {role} missing: {text}"
        );
    }

    // Steps to issue a key: persona, minimum scopes, an expiry; the secret is shown once.
    let issued = sb.call_ok(
        admin,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["keys:read", "billing:read"], "name": "ci-deploy", "expires_in": "90d" }),
    );
    let ci_key = api_key_of(&issued);
    assert_eq!(issued["name"], "ci-deploy");
    assert_eq!(issued["scopes"], json!(["billing:read", "keys:read"]));
    assert!(
        issued["expires_at"].is_string(),
        "expires_in gave no expiry: {issued}"
    );
    assert_ne!(ci_key, t.api_key);

    // The key acts as ci-bot with exactly its scopes.
    let me = sb.call_ok(&ci_key, "whoami", json!({}));
    assert_eq!(me["handle"], "ci-bot");
    assert_eq!(me["scopes"], json!(["billing:read", "keys:read"]));

    // keys.list shows the key — but never a secret.
    let run = sb.call(admin, "keys.list", json!({}));
    let list = run.done();
    assert!(
        !run.stdout.contains(&ci_key),
        "keys.list printed a secret: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&t.api_key),
        "keys.list printed a secret: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&ci_key[5..37]),
        "keys.list printed a secret's body"
    );
    assert!(
        !run.stdout.contains("\"api_key\""),
        "keys.list has an api_key field: {}",
        run.stdout
    );
    let keys = list["keys"].as_array().unwrap();
    let ci = keys
        .iter()
        .find(|k| k["name"] == "ci-deploy")
        .unwrap_or_else(|| panic!("ci-deploy not listed: {list}"));
    assert_eq!(ci["persona"], "ci-bot");
    assert_eq!(ci["state"], "active");
    assert_eq!(ci["expires_at"], issued["expires_at"]);
    assert!(
        ci["last_used_at"].is_string(),
        "the key was used by whoami: {ci}"
    );
    // The ci key itself may list keys (keys:read).
    sb.call_ok(&ci_key, "keys.list", json!({}));

    // Rotate: a new secret; the old one keeps working during the grace window.
    let rotated = sb.call_ok(admin, "keys.rotate", json!({ "key": "ci-deploy" }));
    let new_key = api_key_of(&rotated);
    assert_ne!(new_key, ci_key);
    assert_eq!(rotated["key_id"], issued["key_id"]);
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );
    assert_eq!(
        sb.call_ok(&new_key, "whoami", json!({}))["handle"],
        "ci-bot"
    );
    assert_eq!(sb.call_ok(&ci_key, "whoami", json!({}))["handle"], "ci-bot");

    // Revoke: instant, no grace — both the new secret and the old one are refused.
    let revoked = sb.call_ok(admin, "keys.revoke", json!({ "key": "ci-deploy" }));
    assert_eq!(revoked["state"], "revoked");
    let reason = sb.call(&new_key, "whoami", json!({})).denied().to_owned();
    assert!(reason.contains("revoked"), "{reason}");
    sb.call(&ci_key, "whoami", json!({})).denied();
    sb.call(&new_key, "keys.list", json!({})).denied();
    let all = sb.call_ok(admin, "keys.list", json!({ "include_inactive": true }));
    assert!(
        all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "ci-deploy" && k["state"] == "revoked"),
        "{all}"
    );
}

#[test]
fn revoking_a_persona_refuses_every_key_it_holds_on_the_next_request() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let key = sb.service_key(&t.api_key, "etl", &["billing-viewer"], &["billing:read"]);
    sb.call_ok(&key, "whoami", json!({}));
    let out = sb.call_ok(
        &t.api_key,
        "members.revoke",
        json!({ "persona": "etl", "reason": "decommissioned" }),
    );
    assert_eq!(out["persona"]["status"], "revoked");
    assert_eq!(
        out["revoked_keys"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
    sb.call(&key, "whoami", json!({})).denied();
}

#[test]
fn rotating_with_no_grace_refuses_the_old_secret_at_once() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({ "handle": "etl", "kind": "service", "roles": ["billing-viewer"] }),
    );
    let old = api_key_of(&sb.call_ok(
        &t.api_key,
        "keys.issue",
        json!({ "persona": "etl", "scopes": ["billing:read"], "name": "etl-key", "expires_in": "30d" }),
    ));
    sb.call_ok(&old, "whoami", json!({}));
    let rotated = sb.call_ok(
        &t.api_key,
        "keys.rotate",
        json!({ "key": "etl-key", "grace": "0s" }),
    );
    let new = api_key_of(&rotated);
    assert_eq!(sb.call_ok(&new, "whoami", json!({}))["handle"], "etl");
    let reason = sb.call(&old, "whoami", json!({})).denied().to_owned();
    assert!(reason.contains("rotation"), "{reason}");
}

#[test]
fn a_key_past_its_expiry_is_refused() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({ "handle": "etl", "kind": "service", "roles": ["billing-viewer"] }),
    );
    let issued = sb.call_ok(
        &t.api_key,
        "keys.issue",
        json!({ "persona": "etl", "scopes": ["billing:read"], "name": "short", "expires_in": "2s" }),
    );
    let key = api_key_of(&issued);
    sb.call_ok(&key, "whoami", json!({}));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let reason = sb.call(&key, "whoami", json!({})).denied().to_owned();
    assert!(reason.contains("expired"), "{reason}");
    let all = sb.call_ok(&t.api_key, "keys.list", json!({ "include_inactive": true }));
    let short = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "short")
        .unwrap();
    assert_eq!(short["state"], "expired", "{short}");
    // Keys without an expiry are flagged for review; this one is not among them.
    let review = sb.call_ok(&t.api_key, "keys.compliance", json!({}));
    let flagged = review["without_expiry"].to_string();
    assert!(!flagged.contains("\"short\""), "{review}");
}

#[test]
fn piping_ops_json_into_a_reader_that_stops_early_exits_quietly() {
    // `tenantops ops --json | head -1`: the reader goes away; the CLI must not panic.
    let sb = Sandbox::new();
    let mut child = std::process::Command::new(crate::support::BIN)
        .args(["ops", "--json"])
        .current_dir(sb.dir())
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "ops --json panicked on a closed pipe:\n{stderr}"
    );
}

#[test]
fn bad_input_exits_2_and_names_the_field() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let key = t.api_key.as_str();

    // Not JSON at all.
    let run = sb.run_env(
        &["call", "whoami", "--input", "{not json"],
        &[("TENANTOPS_API_KEY", key)],
    );
    let e = run.error(2, "bad_input");
    assert_eq!(e["field"], "input", "{e}");

    // JSON, but not an object.
    let run = sb.run_env(
        &["call", "whoami", "--input", "[1,2]"],
        &[("TENANTOPS_API_KEY", key)],
    );
    assert_eq!(run.error(2, "bad_input")["field"], "input");

    // A field of the wrong type: the message names it.
    let run = sb.call(
        key,
        "keys.issue",
        json!({ "persona": "admin", "scopes": "keys:read" }),
    );
    let e = run.error(2, "bad_input");
    assert_eq!(e["field"], "scopes", "{e}");
    assert!(e["message"].as_str().unwrap().contains("sequence"), "{e}");
    let run = sb.call(key, "audit.proof", json!({ "seq": "zero" }));
    assert_eq!(run.error(2, "bad_input")["field"], "seq");

    // An unknown field.
    let run = sb.call(
        key,
        "members.create_bu",
        json!({ "name": "eng", "kind": "cost-center", "colour": "red" }),
    );
    let e = run.error(2, "bad_input");
    let said = format!("{} {}", e["field"], e["message"]);
    assert!(
        said.contains("colour"),
        "the unknown field is not named: {e}"
    );

    // An invalid value: an unknown scope, a bad role.
    let run = sb.call(
        key,
        "keys.issue",
        json!({ "persona": "admin", "scopes": ["keys:read", "root:all"] }),
    );
    let e = run.error(2, "bad_input");
    assert!(e["field"].as_str().unwrap().starts_with("scopes"), "{e}");
    let run = sb.call(
        key,
        "members.create_persona",
        json!({ "handle": "bob", "kind": "service", "roles": ["wizard"] }),
    );
    assert_eq!(run.error(2, "bad_input")["field"], "roles[0]");

    // An unknown operation: named in the message.
    let run = sb.call(key, "keys.frobnicate", json!({}));
    let e = run.error(2, "unknown_operation");
    assert!(
        e["message"].as_str().unwrap().contains("keys.frobnicate"),
        "{e}"
    );

    // Nothing was created by any of these.
    let bus = sb.call_ok(key, "members.list_bus", json!({}));
    assert_eq!(bus["units"], json!([]));
}

#[test]
fn refused_credentials_and_missing_scopes_exit_3_denied() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");

    // No credential at all.
    let reason = sb.run(&["call", "whoami"]).denied().to_owned();
    assert!(
        reason.contains("TENANTOPS_API_KEY"),
        "the reason should say how to fix it: {reason}"
    );

    // A mistyped key (one character changed): refused by the checksum.
    let typo = mistype(&t.api_key);
    assert_ne!(typo, t.api_key);
    let reason = sb.call(&typo, "whoami", json!({})).denied().to_owned();
    assert!(
        reason.contains("checksum") || reason.contains("mistyped"),
        "{reason}"
    );
    // Truncated, foreign and garbage credentials.
    sb.call(&t.api_key[..42], "whoami", json!({})).denied();
    sb.call("ghp_0123456789abcdef", "whoami", json!({}))
        .denied();
    sb.run(&["call", "whoami", "--api-key", "   "]).denied();

    // A well-formed key that was never issued here: a key of another database.
    let elsewhere = Sandbox::new().create_tenant("elsewhere");
    sb.call(&elsewhere.api_key, "whoami", json!({})).denied();

    // A billing-viewer cannot issue keys.
    let viewer = sb.service_key(
        &t.api_key,
        "finance-bot",
        &["billing-viewer"],
        &["billing:read"],
    );
    let me = sb.call_ok(&viewer, "whoami", json!({}));
    assert_eq!(me["scopes"], json!(["billing:read"]));
    let run = sb.call(
        &viewer,
        "keys.issue",
        json!({ "persona": "finance-bot", "scopes": ["billing:read"] }),
    );
    let reason = run.denied();
    assert!(
        reason.contains("keys:write"),
        "the reason should name the missing scope: {reason}"
    );
    let run = sb.call(
        &viewer,
        "members.create_persona",
        json!({ "handle": "x", "kind": "service", "roles": ["tenant-admin"] }),
    );
    run.denied();
    // Still only the one key it was given.
    let keys = sb.call_ok(&t.api_key, "keys.list", json!({ "persona": "finance-bot" }));
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");

    // A key never carries more than its issuer: the developer-role key cannot mint a key with
    // members:write.
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({ "handle": "dev-bot", "kind": "service", "roles": ["developer"] }),
    );
    let dev = api_key_of(&sb.call_ok(
        &t.api_key,
        "keys.issue",
        json!({ "persona": "dev-bot", "scopes": ["keys:write", "keys:read"], "expires_in": "1h" }),
    ));
    let reason = sb
        .call(
            &dev,
            "keys.issue",
            json!({ "persona": "admin", "scopes": ["members:write"] }),
        )
        .denied()
        .to_owned();
    assert!(reason.contains("members:write"), "{reason}");
}

#[test]
fn a_persona_or_key_that_does_not_exist_exits_1_not_found() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let run = sb.call(
        &t.api_key,
        "keys.issue",
        json!({ "persona": "ghost", "scopes": ["keys:read"] }),
    );
    let e = run.error(1, "not_found");
    assert!(e["message"].as_str().unwrap().contains("ghost"), "{e}");
    sb.call(&t.api_key, "members.revoke", json!({ "persona": "ghost" }))
        .error(1, "not_found");
    sb.call(&t.api_key, "keys.rotate", json!({ "key": "no-such-key" }))
        .error(1, "not_found");

    // Another tenant's persona does not exist from here either.
    let other = sb.create_tenant("globex");
    sb.call(
        &t.api_key,
        "members.get_persona",
        json!({ "persona": other.persona_id }),
    )
    .error(1, "not_found");
}

const REQUIRED_OPS: &[&str] = &[
    "members.create_persona",
    "members.list_personas",
    "members.assign_roles",
    "members.revoke",
    "members.create_bu",
    "members.move_persona",
    "roles.list_templates",
    "keys.issue",
    "keys.list",
    "keys.rotate",
    "keys.revoke",
    "audit.proof",
    "whoami",
];

#[test]
fn ops_json_lists_the_catalogue_with_name_summary_scope_risk_and_input_schema() {
    let sb = Sandbox::new();
    let run = sb.run(&["ops", "--json"]);
    run.code(0);
    let ops = run
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("ops --json is not an array: {}", run.stdout));
    assert!(!ops.is_empty());
    let mut names = Vec::new();
    for op in ops {
        let name = op["name"]
            .as_str()
            .unwrap_or_else(|| panic!("no name: {op}"));
        for k in ["name", "summary", "scope", "risk", "input_schema"] {
            assert!(op.get(k).is_some(), "{name}: missing key `{k}`");
        }
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.trim().is_empty()),
            "{name}: empty summary"
        );
        assert!(
            matches!(op["risk"].as_str(), Some("read" | "write" | "destructive")),
            "{name}: risk {}",
            op["risk"]
        );
        assert!(
            op["scope"].is_null() || op["scope"].as_str().is_some_and(|s| s.contains(':')),
            "{name}: scope {}",
            op["scope"]
        );
        assert_eq!(
            op["input_schema"]["type"], "object",
            "{name}: input_schema {}",
            op["input_schema"]
        );
        names.push(name);
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "duplicate operation names: {names:?}"
    );
    for required in REQUIRED_OPS {
        assert!(
            names.contains(required),
            "ops --json lacks `{required}`: {names:?}"
        );
    }
    let by_name = |n: &str| ops.iter().find(|o| o["name"] == n).unwrap();
    assert_eq!(by_name("keys.issue")["scope"], "keys:write");
    assert_eq!(by_name("keys.issue")["risk"], "write");
    assert_eq!(by_name("keys.list")["risk"], "read");
    assert!(
        by_name("whoami")["scope"].is_null(),
        "whoami needs no scope"
    );
    let issue_props = &by_name("keys.issue")["input_schema"]["properties"];
    for field in ["persona", "scopes", "expires_in"] {
        assert!(
            issue_props.get(field).is_some(),
            "keys.issue schema lacks `{field}`: {issue_props}"
        );
    }

    // `ops` reads no database.
    assert!(sb.db_untouched(), "`ops --json` opened the database");
    // Without --json: one line per operation.
    let plain = sb.run(&["ops"]);
    plain.code(0);
    for required in REQUIRED_OPS {
        assert!(plain.stdout.contains(required), "`ops` lacks {required}");
    }
}

#[test]
fn every_subcommand_answers_help_with_exit_0() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--help"], &["tenant", "call", "audit", "ops"]),
        (&["ops", "--help"], &["--json"]),
        (&["tenant", "--help"], &["create"]),
        (
            &["tenant", "create", "--help"],
            &["--name", "--admin-email"],
        ),
        (
            &["call", "--help"],
            &["--input", "--api-key", "TENANTOPS_API_KEY"],
        ),
        (&["audit", "--help"], &["verify", "export"]),
        (
            &["audit", "verify", "--help"],
            &["--tenant", "--dir", "--key"],
        ),
        (&["audit", "export", "--help"], &["--tenant", "--out"]),
    ];
    for (args, mentions) in cases {
        let run = sb.run_raw(args, &[]);
        run.code(0);
        assert!(
            run.stdout.contains("Usage"),
            "`{}` printed no usage: {}",
            run.cmdline,
            run.stdout
        );
        for m in *mentions {
            assert!(
                run.stdout.contains(m),
                "`{}` does not mention {m}:\n{}",
                run.cmdline,
                run.stdout
            );
        }
    }
    assert!(
        std::fs::read_dir(sb.dir()).unwrap().next().is_none(),
        "--help wrote files into the working directory"
    );
}

#[test]
fn the_database_defaults_to_tenantops_db_in_the_working_directory() {
    let sb = Sandbox::new();
    if sb.on_postgres() {
        // About where SQLite keeps its file and key by default: the SQLite pass covers it.
        return;
    }
    let run = sb.run_raw(&["tenant", "create", "--name", "acme"], &[]);
    run.code(0);
    tenant_from(run.json());
    assert!(
        sb.dir().join("tenantops.db").is_file(),
        "./tenantops.db was not created"
    );
    assert!(
        sb.dir().join("tenantops.db.master-key").is_file(),
        "./tenantops.db.master-key was not created beside the database"
    );
}

#[test]
fn tenantops_db_env_points_every_command_at_another_database() {
    let sb = Sandbox::new();
    if sb.on_postgres() {
        // About where SQLite keeps its file and key by default: the SQLite pass covers it.
        return;
    }
    let env_db = sb.dir().join("from-env.db");
    let env_db_str = env_db.to_str().unwrap().to_owned();
    let env = [("TENANTOPS_DB", env_db_str.as_str())];
    let run = sb.run_raw(&["tenant", "create", "--name", "acme"], &env);
    run.code(0);
    let t = tenant_from(run.json());
    assert!(
        env_db.is_file(),
        "TENANTOPS_DB={} was not created",
        env_db.display()
    );
    assert!(
        sb.dir().join("from-env.db.master-key").is_file(),
        "no master key beside the TENANTOPS_DB database"
    );
    assert!(
        !sb.dir().join("tenantops.db").exists(),
        "the default database was created despite TENANTOPS_DB"
    );

    // Later commands find the tenant through the same variable...
    let run = sb.run_raw(
        &["call", "whoami"],
        &[env[0], ("TENANTOPS_API_KEY", &t.api_key)],
    );
    assert_eq!(run.done()["tenant_id"], t.tenant_id);
    let run = sb.run_raw(&["audit", "verify", "--tenant", &t.tenant_id], &env);
    run.code(0);
    // ...and --db wins over it.
    let flag_db = sb.dir().join("flag.db");
    let run = sb.run_raw(
        &["--db", flag_db.to_str().unwrap(), "call", "whoami"],
        &[env[0], ("TENANTOPS_API_KEY", &t.api_key)],
    );
    // --db names a file that does not exist: `call` refuses instead of creating an empty one.
    run.code(1);
    assert!(run.stderr.contains("no database"), "{}", run.stderr);
    assert!(!flag_db.exists(), "call must not create a database");
}
