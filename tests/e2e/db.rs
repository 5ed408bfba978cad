//! `tenantops db`: an installation moved from the embedded SQLite file to PostgreSQL with
//! `db copy` keeps working there — the same keys, the same requests, a ledger that verifies —
//! and `db migrate` says where a database stands. Runs in the PostgreSQL pass of `.ci/test`.

use crate::support::{Sandbox, api_key_of, postgres, tenant_from};
use serde_json::json;

#[test]
fn an_installation_moves_from_sqlite_to_postgres_with_db_copy_and_keeps_working() {
    if postgres().is_none() {
        eprintln!(
            "db copy needs a PostgreSQL target: run with TENANTOPS_TEST_POSTGRES (.ci/test does)"
        );
        return;
    }
    // The sandbox's database is an empty PostgreSQL one; the source is a SQLite file beside it,
    // `t.db`, whose key file is the one the sandbox's runs name on PostgreSQL.
    let sb = Sandbox::new();
    let src = sb.db_file();
    let src = src.to_str().unwrap();
    let on_src = |args: &[&str], key: Option<&str>| {
        let mut full = vec!["--db", src];
        full.extend_from_slice(args);
        let env: Vec<(&str, &str)> = key.map(|k| ("TENANTOPS_API_KEY", k)).into_iter().collect();
        sb.run_raw(&full, &env)
    };
    let t = tenant_from(
        on_src(&["tenant", "create", "--name", "acme"], None)
            .code(0)
            .json(),
    );
    for handle in ["ci-bot", "old-bot"] {
        let input =
            json!({"handle": handle, "kind": "service", "roles": ["developer"]}).to_string();
        on_src(
            &["call", "members.create_persona", "--input", &input],
            Some(&t.api_key),
        )
        .done();
    }
    let input = json!({"persona": "ci-bot", "expires_in": "1d", "scopes": ["members:read"]});
    let bot_key = api_key_of(
        on_src(
            &["call", "keys.issue", "--input", &input.to_string()],
            Some(&t.api_key),
        )
        .done(),
    );
    let pending = on_src(
        &[
            "call",
            "members.delete_persona",
            "--input",
            &json!({"persona": "old-bot"}).to_string(),
        ],
        Some(&t.api_key),
    );
    assert_eq!(pending.status(), "pending_approval", "{}", pending.stdout);
    let request = pending.json()["request_id"].as_str().unwrap().to_owned();

    let target = sb.db();
    let copied = sb.run_raw(&["db", "copy", "--from", src, "--to", &target], &[]);
    let report = copied.code(0).json();
    assert_eq!(report["tenants"], 1, "{report}");
    assert_eq!(report["tables"]["personas"], 3, "{report}");
    assert_eq!(report["tables"]["approval_requests"], 1, "{report}");
    assert!(
        report["ledger_entries_verified"].as_u64().unwrap() >= 5,
        "{report}"
    );
    assert!(!copied.stdout.contains("hunter"), "no password is printed");

    // On PostgreSQL now: the same keys, the same pending request, the ledger verifies.
    let people = sb.call_ok(&bot_key, "members.list_personas", json!({}));
    assert_eq!(people["personas"].as_array().unwrap().len(), 3, "{people}");
    let got = sb.call_ok(&t.api_key, "approvals.get", json!({"request_id": request}));
    assert_eq!(got["state"], "pending", "{got}");
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);
    let migrated = sb.run(&["db", "migrate"]).code(0).json().clone();
    assert_eq!(migrated["engine"], "postgres", "{migrated}");
    assert!(
        migrated["schema_version"].as_i64().unwrap() >= 9,
        "{migrated}"
    );

    // A second copy into the same database is refused, and leaves it as it was.
    let again = sb.run_raw(&["db", "copy", "--from", src, "--to", &target], &[]);
    again.code(1);
    assert!(
        again.stderr.contains("already holds tenants"),
        "{}",
        again.stderr
    );
    let people = sb.call_ok(&bot_key, "members.list_personas", json!({}));
    assert_eq!(people["personas"].as_array().unwrap().len(), 3);
}
