//! The audit ledger from the outside: `audit verify --tenant` on the database, tampering with the
//! database behind tenantops' back, and `audit export` + `audit verify --dir` offline.

use crate::support::{Sandbox, Tenant};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A tenant with a few operations behind it: tenant create plus six calls, one of them denied.
/// Returns the tenant and its ledger size.
fn tenant_with_history(sb: &Sandbox, name: &str) -> (Tenant, u64) {
    let t = sb.create_tenant(name);
    let admin = t.api_key.as_str();
    sb.call_ok(
        admin,
        "members.create_bu",
        json!({ "name": "engineering", "kind": "cost-center" }),
    );
    sb.call_ok(
        admin,
        "members.create_persona",
        json!({ "handle": "ci-bot", "kind": "service", "roles": ["billing-viewer"], "bu": "engineering" }),
    );
    let issued = sb.call_ok(
        admin,
        "keys.issue",
        json!({ "persona": "ci-bot", "scopes": ["billing:read"], "name": "ci", "expires_in": "7d" }),
    );
    let ci = issued["api_key"].as_str().unwrap().to_owned();
    sb.call(&ci, "keys.list", json!({})).denied();
    sb.call_ok(admin, "keys.rotate", json!({ "key": "ci" }));
    sb.call_ok(admin, "whoami", json!({}));
    // tenant.create + 6 calls, each with exactly one entry.
    (t, 7)
}

/// Rewrites the body of entry `seq` of `tenant` in place, keeping it a well-formed entry with its
/// own seq, tenant and chain link. With `rehash`, the stored leaf hash is recomputed to match
/// (an attacker who knows the format); without, the stale hash is left.
fn tamper_body(sb: &Sandbox, tenant: &str, seq: i64, rehash: bool) -> String {
    let (body, stale): (String, Vec<u8>) = sb
        .fetch(
            "SELECT body, leaf_hash FROM audit_entries WHERE tenant_id = $1 AND seq = $2",
            &[tenant.into(), seq.into()],
        )
        .pop()
        .expect("entry exists");
    let mut v: Value = serde_json::from_str(&body).expect("body is JSON");
    assert_eq!(v["seq"], seq, "body {body}");
    v["outcome"] = json!("denied");
    v["detail"]["note"] = json!("nothing to see here");
    let forged = serde_json::to_string(&v).unwrap();
    assert_ne!(forged, body);
    let leaf: Vec<u8> = if rehash {
        Sha256::new()
            .chain_update([0u8])
            .chain_update(forged.as_bytes())
            .finalize()
            .to_vec()
    } else {
        stale
    };
    let done = sb.exec(
        "UPDATE audit_entries SET body = $1, leaf_hash = $2 WHERE tenant_id = $3 AND seq = $4",
        &[(&forged).into(), leaf.into(), tenant.into(), seq.into()],
    );
    assert_eq!(done, 1);
    forged
}

fn delete_entry(sb: &Sandbox, tenant: &str, seq: i64) {
    let done = sb.exec(
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq = $2",
        &[tenant.into(), seq.into()],
    );
    assert_eq!(done, 1);
}

/// Runs one statement with text parameters against the sandbox's database.
fn execute(sb: &Sandbox, sql: &'static str, params: &[&str]) -> u64 {
    let args: Vec<_> = params.iter().map(|p| (*p).into()).collect();
    sb.exec(sql, &args)
}

#[track_caller]
fn assert_intact(sb: &Sandbox, tenant: &str, entries: u64) {
    let run = sb.run(&["audit", "verify", "--tenant", tenant]);
    run.code(0);
    let v = run.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["report"]["entries"], entries, "{v}");
}

#[track_caller]
fn assert_broken_at(run: &crate::support::Run, seq: Option<u64>) -> String {
    run.code(4);
    let v = run.json();
    assert_eq!(v["ok"], false, "{v}");
    match seq {
        Some(s) => assert_eq!(v["first_bad_seq"], s, "{v}"),
        None => assert!(
            v.get("first_bad_seq").is_some(),
            "no first_bad_seq key: {v}"
        ),
    }
    let error = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text: {v}"));
    assert!(!error.trim().is_empty());
    error.to_owned()
}

#[test]
fn an_auditor_verifies_the_ledger_after_a_day_of_admin_work() {
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    assert_intact(&sb, &t.tenant_id, entries);

    // Every call — done, denied or failed — left its entry, newest first, with the actor.
    let list = sb.call_ok(&t.api_key, "audit.list", json!({ "limit": 200 }));
    let list = list["entries"].as_array().unwrap();
    assert_eq!(list.len() as u64, entries, "{list:?}");
    let ops: Vec<(&str, &str)> = list
        .iter()
        .rev()
        .map(|e| (e["op"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("tenant.create", "done"),
            ("members.create_bu", "done"),
            ("members.create_persona", "done"),
            ("keys.issue", "done"),
            ("keys.list", "denied"),
            ("keys.rotate", "done"),
            ("whoami", "done"),
        ]
    );
    // (audit.list itself is entry 7.)
    assert_intact(&sb, &t.tenant_id, entries + 1);

    // An inclusion proof for one entry against the signed checkpoint.
    let proof = sb.call_ok(&t.api_key, "audit.proof", json!({ "seq": 3 }));
    let text = proof.to_string();
    assert!(
        text.contains("keys.issue"),
        "the proof is not for entry 3: {proof}"
    );
    sb.call(&t.api_key, "audit.proof", json!({ "seq": 10_000 }))
        .code(1);

    // An unknown tenant is not "intact".
    let run = sb.run(&[
        "audit",
        "verify",
        "--tenant",
        "tn_00000000000000000000000000000000",
    ]);
    run.error(1, "not_found");
    sb.run(&["audit", "verify", "--tenant", "acme"]).code(2);
}

#[test]
fn changing_an_entry_in_the_database_is_caught_and_named() {
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    let (other, other_entries) = tenant_with_history(&sb, "globex");
    assert_intact(&sb, &t.tenant_id, entries);

    let forged = tamper_body(&sb, &t.tenant_id, 2, false);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    let error = assert_broken_at(&run, Some(2));
    assert!(error.contains("entry 2"), "{error}");
    assert!(
        run.stderr.contains("entry 2"),
        "stderr should say what is wrong: {}",
        run.stderr
    );
    assert!(!forged.is_empty());

    // The other tenant's ledger in the same file is untouched and still verifies.
    assert_intact(&sb, &other.tenant_id, other_entries);
}

#[test]
fn deleting_an_entry_from_the_database_is_caught_and_named() {
    let sb = Sandbox::new();
    let (t, _) = tenant_with_history(&sb, "acme");
    delete_entry(&sb, &t.tenant_id, 4);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    let error = assert_broken_at(&run, Some(4));
    assert!(error.contains('4'), "{error}");

    // Deleting the newest entry is caught too (the checkpoint commits to it).
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    delete_entry(&sb, &t.tenant_id, entries as i64 - 1);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    assert_broken_at(&run, Some(entries - 1));
}

#[test]
fn an_exported_ledger_verifies_offline_without_any_database() {
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    let out = sb.dir().join("export");
    let run = sb.run(&[
        "audit",
        "export",
        "--tenant",
        &t.tenant_id,
        "--out",
        out.to_str().unwrap(),
    ]);
    run.code(0);
    assert_eq!(run.json()["entries"], entries, "{}", run.stdout);
    let lines = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    assert_eq!(lines.lines().count() as u64, entries);

    // Verify with --db pointing at a file that does not exist: nothing may open or create it.
    let absent = sb.dir().join("absent.db");
    let run = sb.run_raw(
        &[
            "--db",
            absent.to_str().unwrap(),
            "audit",
            "verify",
            "--dir",
            out.to_str().unwrap(),
        ],
        &[],
    );
    run.code(0);
    let v = run.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["report"]["entries"], entries, "{v}");
    assert_eq!(v["report"]["tenant"], t.tenant_id, "{v}");
    for leftover in [
        "absent.db",
        "absent.db-wal",
        "absent.db-shm",
        "absent.db.master-key",
    ] {
        assert!(
            !sb.dir().join(leftover).exists(),
            "`audit verify --dir` created {leftover}: it must not touch a database"
        );
    }

    // The same with the trusted key obtained independently from the tenant's own checkpoint.
    let cp = sb.call_ok(&t.api_key, "audit.checkpoint", json!({}));
    let key = cp["verifier_key"].as_str().unwrap();
    let exported_key = std::fs::read_to_string(out.join("verifier-key.txt")).unwrap();
    assert_eq!(exported_key.trim(), key);
    let run = sb.run_raw(
        &[
            "--db",
            absent.to_str().unwrap(),
            "audit",
            "verify",
            "--dir",
            out.to_str().unwrap(),
            "--key",
            key,
        ],
        &[],
    );
    run.code(0);
    assert_eq!(run.json()["ok"], true);
    assert!(!absent.exists());
}

#[test]
fn editing_a_line_of_an_export_is_caught_and_named() {
    let sb = Sandbox::new();
    let (t, _) = tenant_with_history(&sb, "acme");
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
    let path = out.join("entries.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let edited = lines[3].replace("\"keys.issue\"", "\"keys.list\"");
    assert_ne!(
        edited, lines[3],
        "entry 3 should be the keys.issue: {}",
        lines[3]
    );
    lines[3] = edited;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let run = sb.run(&["audit", "verify", "--dir", out.to_str().unwrap()]);
    let error = assert_broken_at(&run, Some(3));
    assert!(error.contains("entry 3"), "{error}");

    // Editing the newest line (no later entry links to it) is caught by the signed checkpoint.
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
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
    let path = out.join("entries.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let last = lines.len() - 1;
    lines[last] = lines[last].replace("\"done\"", "\"failed\"");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let run = sb.run(&["audit", "verify", "--dir", out.to_str().unwrap()]);
    assert_broken_at(&run, Some(entries - 1));
}

#[test]
fn an_export_checked_against_another_tenants_verifier_key_fails() {
    let sb = Sandbox::new();
    let (t, _) = tenant_with_history(&sb, "acme");
    let other = sb.create_tenant("globex");
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

    let theirs = sb.call_ok(&other.api_key, "audit.checkpoint", json!({}));
    let wrong = theirs["verifier_key"].as_str().unwrap().to_owned();
    let ours = sb.call_ok(&t.api_key, "audit.checkpoint", json!({}));
    assert_ne!(ours["verifier_key"], theirs["verifier_key"]);

    let run = sb.run(&[
        "audit",
        "verify",
        "--dir",
        out.to_str().unwrap(),
        "--key",
        &wrong,
    ]);
    assert_broken_at(&run, None);

    // A substituted export (the other tenant's ledger) fails against our trusted key, too.
    let out2 = sb.dir().join("export-globex");
    sb.run(&[
        "audit",
        "export",
        "--tenant",
        &other.tenant_id,
        "--out",
        out2.to_str().unwrap(),
    ])
    .code(0);
    let run = sb.run(&[
        "audit",
        "verify",
        "--dir",
        out2.to_str().unwrap(),
        "--key",
        ours["verifier_key"].as_str().unwrap(),
    ]);
    assert_broken_at(&run, None);
}

#[test]
fn a_checkpoint_saved_with_jq_is_accepted_and_a_malformed_one_still_refused() {
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    let cp = sb.call_ok(&t.api_key, "audit.checkpoint", json!({}));
    let note = cp["checkpoint"].as_str().unwrap();
    assert!(note.ends_with('\n') && !note.ends_with("\n\n"), "{note:?}");
    // `call audit.checkpoint | jq -r .output.checkpoint > kept.txt`: the note and a newline.
    let kept = sb.dir().join("kept.txt");
    let verify = |text: &str| {
        std::fs::write(&kept, text).unwrap();
        sb.run(&[
            "audit",
            "verify",
            "--tenant",
            &t.tenant_id,
            "--checkpoint",
            kept.to_str().unwrap(),
        ])
    };
    for saved in [format!("{note}\n"), note.to_owned()] {
        let run = verify(&saved);
        run.code(0);
        assert_eq!(run.json()["ok"], true, "{saved:?}");
        // `audit verify` appends no entry, and the kept checkpoint still matches.
        assert_eq!(run.json()["report"]["entries"], entries + 1);
    }
    for saved in [
        format!("{note}\n\n"),
        note.trim_end().to_owned(),
        format!("{note}\nextra\n"),
    ] {
        let error = assert_broken_at(&verify(&saved), None);
        assert!(error.contains("checkpoint"), "{saved:?}: {error}");
    }
}

#[test]
fn rewriting_an_entry_together_with_its_stored_hash_is_caught_by_the_chain() {
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    tamper_body(&sb, &t.tenant_id, 3, true);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    let error = assert_broken_at(&run, Some(3));
    assert!(error.contains("entry 3"), "{error}");

    // The newest entry has no successor linking to it: the signed checkpoint catches it.
    let sb = Sandbox::new();
    let (t, _) = tenant_with_history(&sb, "acme");
    tamper_body(&sb, &t.tenant_id, entries as i64 - 1, true);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    assert_broken_at(&run, Some(entries - 1));
}

#[test]
fn an_entry_appended_behind_tenantops_back_or_a_swapped_verifier_key_is_caught() {
    // An extra row, chained correctly but never signed into a checkpoint.
    let sb = Sandbox::new();
    let (t, entries) = tenant_with_history(&sb, "acme");
    let n = execute(
        &sb,
        "INSERT INTO audit_entries (tenant_id, seq, body, leaf_hash) \
         SELECT tenant_id, seq + 1, body, leaf_hash FROM audit_entries \
         WHERE tenant_id = $1 AND seq = (SELECT MAX(seq) FROM audit_entries WHERE tenant_id = $2)",
        &[&t.tenant_id, &t.tenant_id],
    );
    assert_eq!(n, 1);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    assert_broken_at(&run, Some(entries));

    // The tenant's stored verifier key replaced by another tenant's.
    let sb = Sandbox::new();
    let (t, _) = tenant_with_history(&sb, "acme");
    let other = sb.create_tenant("globex");
    let n = execute(
        &sb,
        "UPDATE tenants SET audit_verifier = (SELECT audit_verifier FROM tenants WHERE id = $1) WHERE id = $2",
        &[&other.tenant_id, &t.tenant_id],
    );
    assert_eq!(n, 1);
    let run = sb.run(&["audit", "verify", "--tenant", &t.tenant_id]);
    assert_broken_at(&run, None);
}

#[test]
fn refused_credentials_and_failed_calls_are_in_the_ledger_too() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    let key = sb.service_key(&t.api_key, "etl", &["billing-viewer"], &["billing:read"]);
    sb.call_ok(&t.api_key, "members.revoke", json!({ "persona": "etl" }));
    sb.call(&key, "whoami", json!({})).denied();
    sb.call(&t.api_key, "keys.revoke", json!({ "key": "nope" }))
        .error(1, "not_found");
    sb.call(
        &t.api_key,
        "members.create_bu",
        json!({ "name": "Bad Name", "kind": "x" }),
    )
    .error(2, "bad_input");
    let list = sb.call_ok(&t.api_key, "audit.list", json!({ "limit": 4 }));
    let got: Vec<(String, String)> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("members.create_bu", "invalid"),
        ("keys.revoke", "failed"),
        ("auth", "denied"),
        ("members.revoke", "done"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{list}");
    let refusal = &list["entries"][2];
    assert_eq!(refusal["actor"]["kind"], "service", "{refusal}");
    sb.run(&["audit", "verify", "--tenant", &t.tenant_id])
        .code(0);
}

#[test]
fn admins_working_at_the_same_time_all_land_in_one_intact_ledger() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    const WORKERS: usize = 6;
    const CALLS: usize = 4;
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let sb = &sb;
            let key = t.api_key.clone();
            s.spawn(move || {
                for c in 0..CALLS {
                    let name = format!("bu-{w}-{c}");
                    sb.call_ok(
                        &key,
                        "members.create_bu",
                        json!({ "name": name, "kind": "team" }),
                    );
                }
            });
        }
    });
    let bus = sb.call_ok(&t.api_key, "members.list_bus", json!({}));
    assert_eq!(
        bus["units"].as_array().map(Vec::len),
        Some(WORKERS * CALLS),
        "{bus}"
    );
    // tenant.create + every create_bu + list_bus.
    assert_intact(&sb, &t.tenant_id, 1 + (WORKERS * CALLS) as u64 + 1);
}
