//! No secret leaks: every API key the binary hands out appears exactly once — in the stdout of
//! the command that issued it — and never in logs (even at trace level), in the database files,
//! or in the audit ledger.

use crate::support::{Sandbox, api_key_of, api_keys_in, contains_bytes, mistype};
use serde_json::json;
use std::path::Path;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn issued_keys_never_reach_logs_the_database_or_the_audit_ledger() {
    let sb = Sandbox::new().with_var("TENANTOPS_LOG", "trace");

    // Provision two tenants and run the API-key workflows of guide §3 in the first.
    let t = sb.create_tenant("acme");
    let other = sb.create_tenant("globex");
    let admin = t.api_key.as_str();
    sb.call_ok(
        admin,
        "members.create_persona",
        json!({ "handle": "ci-bot", "kind": "service", "roles": ["developer"] }),
    );
    let ci = api_key_of(&sb.call_ok(
        admin,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["keys:read", "keys:write"], "name": "ci", "expires_in": "90d" }),
    ));
    let etl = api_key_of(&sb.call_ok(
        admin,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["keys:read"], "name": "etl" }),
    ));
    // Use the keys: successful calls, a denial, a key issued by a service key.
    sb.call_ok(&ci, "whoami", json!({}));
    sb.call_ok(&etl, "keys.list", json!({}));
    sb.call(
        &etl,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["keys:read"] }),
    )
    .denied();
    let by_ci = api_key_of(&sb.call_ok(
        &ci,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["keys:read"], "name": "from-ci", "expires_in": "1d" }),
    ));
    // Rotate (with the default grace, then with none), use old and new secrets.
    let ci2 = api_key_of(&sb.call_ok(admin, "keys.rotate", json!({ "key": "ci" })));
    sb.call_ok(&ci, "whoami", json!({}));
    sb.call_ok(&ci2, "whoami", json!({}));
    let etl2 =
        api_key_of(&sb.call_ok(admin, "keys.rotate", json!({ "key": "etl", "grace": "0s" })));
    sb.call(&etl, "whoami", json!({})).denied();
    sb.call_ok(&etl2, "whoami", json!({}));
    // Rotate the provisioning key, as the day-1 checklist says; revoke one; misuse some.
    let provisioning = sb.call_ok(admin, "keys.list", json!({ "persona": "admin" }));
    let provisioning = provisioning["keys"][0]["name"].as_str().unwrap().to_owned();
    let admin2 = api_key_of(&sb.call_ok(admin, "keys.rotate", json!({ "key": provisioning })));
    sb.call_ok(&admin2, "keys.revoke", json!({ "key": "from-ci" }));
    sb.call(&by_ci, "whoami", json!({})).denied();
    sb.call(&mistype(&ci2), "whoami", json!({})).denied();
    sb.run_env(&["call", "whoami", "--api-key", &ci2], &[])
        .done();
    sb.call(&other.api_key, "keys.list", json!({})).done();
    sb.call(&admin2, "members.revoke", json!({ "persona": "ci-bot" }))
        .done();
    sb.call(&ci2, "whoami", json!({})).denied();
    sb.call(&admin2, "keys.rotate", json!({ "key": "ci" }))
        .error(1, "conflict");

    // The ledgers as the tenants' auditors read them.
    let audit = sb.call(&admin2, "audit.list", json!({ "limit": 200 }));
    audit.done();
    let other_audit = sb.call(&other.api_key, "audit.list", json!({ "limit": 200 }));
    other_audit.done();
    let out = sb.dir().join("export");
    sb.run(&[
        "audit",
        "export",
        "--tenant",
        &t.tenant_id,
        "--out",
        out.to_str().unwrap(),
    ])
    .code(0);
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);

    // Every secret the binary printed, from every stdout.
    let transcript = sb.transcript();
    let mut secrets = Vec::new();
    for run in &transcript {
        if let Some(v) = &run.json {
            api_keys_in(v, &mut secrets);
        }
    }
    for expected in [
        &t.api_key,
        &other.api_key,
        &ci,
        &etl,
        &by_ci,
        &ci2,
        &etl2,
        &admin2,
    ] {
        assert!(secrets.contains(expected), "{expected} was not collected");
    }
    assert_eq!(
        secrets.len(),
        8,
        "unexpected api_key fields in outputs: {secrets:?}"
    );

    // The log level took effect, or this test proves nothing about logs.
    let all_stderr: String = transcript.iter().map(|r| r.stderr.as_str()).collect();
    assert!(
        all_stderr.contains("TRACE") || all_stderr.contains("DEBUG"),
        "TENANTOPS_LOG=trace produced no debug output"
    );

    let files = {
        let mut f = Vec::new();
        files_under(sb.dir(), &mut f);
        f
    };
    if !sb.on_postgres() {
        let db = sb.db_file();
        assert!(files.contains(&db), "no database at {}", db.display());
    }
    let mut contents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    // The database: its files on SQLite (again with the -wal / -shm a listing may have missed),
    // every row and stored byte on PostgreSQL.
    let db = sb.db_contents();
    assert!(
        db.iter().any(|(_, bytes)| !bytes.is_empty()),
        "nothing read from the database {}",
        sb.db()
    );
    contents.extend(db);

    for secret in &secrets {
        // The whole key, and its random body alone (in case the prefix were stripped).
        let needles = [secret.as_str(), &secret[5..37]];
        let shown_in = transcript
            .iter()
            .filter(|r| r.stdout.contains(secret.as_str()))
            .count();
        assert_eq!(
            shown_in, 1,
            "{secret} was printed by {shown_in} commands, not exactly once"
        );
        for needle in needles {
            for run in &transcript {
                assert!(
                    !run.stderr.contains(needle),
                    "a secret leaked into the stderr of `{}`:\n{}",
                    run.cmdline,
                    run.stderr
                );
            }
            for (name, bytes) in &contents {
                assert!(
                    !contains_bytes(bytes, needle.as_bytes()),
                    "a secret is in the bytes of {name}"
                );
            }
            assert!(
                !audit.stdout.contains(needle),
                "a secret is in audit.list: {}",
                audit.stdout
            );
            assert!(
                !other_audit.stdout.contains(needle),
                "a secret is in audit.list"
            );
        }
    }
}
