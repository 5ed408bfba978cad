//! Audit-ledger tamper evidence: change, delete, reorder or insert a row, forge a checkpoint —
//! verification fails and names the place. Also: export and verify offline; inclusion proofs.

use crate::support::*;
use serde_json::json;
use tenantops_core::ids::TenantId;
use tenantops_core::ledger::checkpoint::{CheckpointSigner, CheckpointVerifier};
use tenantops_core::ledger::merkle::{self, Hash};
use tenantops_core::ledger::verify::Failure;

/// A tenant whose ledger holds a dozen entries.
async fn ledger() -> (Env, TenantId) {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    for i in 0..5 {
        t.ok(
            &admin,
            "members.create_bu",
            json!({"name": format!("bu-{i}"), "kind": "cost-center"}),
        )
        .await;
    }
    t.ok(&admin, "members.list_bus", json!({})).await;
    let _ = t
        .call(&admin, "members.get_persona", json!({"persona":"nobody"}))
        .await;
    t.ok(&admin, "whoami", json!({})).await;
    assert!(
        t.core
            .verify_audit(&created.tenant_id)
            .await
            .unwrap()
            .is_ok()
    );
    (t, created.tenant_id)
}

async fn failure(t: &Env, tenant: &TenantId) -> Failure {
    match t.core.verify_audit(tenant).await.unwrap() {
        Ok(report) => panic!("tampered ledger verified: {report:?}"),
        Err(f) => f,
    }
}

fn store(t: &Env) -> &tenantops_core::store::Store {
    t.core.store()
}

#[tokio::test]
async fn intact_ledger_verifies_and_counts_every_operation_including_denials_and_failures() {
    let (t, tenant) = ledger().await;
    let report = t.core.verify_audit(&tenant).await.unwrap().unwrap();
    // create + 5 BUs + list + failed lookup + whoami
    assert_eq!(report.entries, 9);
}

#[tokio::test]
async fn changing_an_entry_is_caught_at_that_entry() {
    let (t, tenant) = ledger().await;
    exec(
        store(&t),
        "UPDATE audit_entries SET body = replace(body, 'bu-2', 'bu-9') WHERE tenant_id = $1 AND seq = 3",
        &[tenant.as_str().into()],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(3), "{f}");
}

#[tokio::test]
async fn changing_an_entry_and_its_stored_hash_is_still_caught_at_that_entry() {
    let (t, tenant) = ledger().await;
    let (body,): (String,) = fetch(
        store(&t),
        "SELECT body FROM audit_entries WHERE tenant_id = $1 AND seq = 3",
        &[tenant.as_str().into()],
    )
    .await
    .remove(0);
    let forged = body.replace("bu-2", "bu-9");
    exec(
        store(&t),
        "UPDATE audit_entries SET body = $1, leaf_hash = $2 WHERE tenant_id = $3 AND seq = 3",
        &[
            (&forged).into(),
            merkle::leaf_hash(forged.as_bytes())[..].into(),
            tenant.as_str().into(),
        ],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(3), "{f}");
}

#[tokio::test]
async fn deleting_an_entry_is_caught_where_it_is_missing() {
    let (t, tenant) = ledger().await;
    exec(
        store(&t),
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq = 4",
        &[tenant.as_str().into()],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(4), "{f}");
    assert!(f.message.contains("missing"), "{f}");
}

#[tokio::test]
async fn deleting_the_newest_entries_is_caught_by_the_signed_checkpoint() {
    let (t, tenant) = ledger().await;
    exec(
        store(&t),
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq >= 7",
        &[tenant.as_str().into()],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(7), "{f}");
}

#[tokio::test]
async fn reordering_entries_is_caught() {
    let (t, tenant) = ledger().await;
    for (from, to) in [(2i64, -1i64), (3, 2), (-1, 3)] {
        exec(
            store(&t),
            "UPDATE audit_entries SET seq = $1 WHERE tenant_id = $2 AND seq = $3",
            &[to.into(), tenant.as_str().into(), from.into()],
        )
        .await;
    }
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(2), "{f}");
}

#[tokio::test]
async fn inserting_a_well_formed_entry_at_the_end_is_caught_by_the_checkpoint() {
    let (t, tenant) = ledger().await;
    let (seq, last): (i64, Vec<u8>) = fetch(
        store(&t),
        "SELECT seq, leaf_hash FROM audit_entries WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
        &[tenant.as_str().into()],
    )
    .await
    .remove(0);
    let body = json!({
        "v": 1, "tenant": tenant.as_str(), "seq": seq + 1, "prev": hex::encode(&last),
        "ts": "2026-11-01T09:00:00.000Z",
        "actor": {"via": "platform", "surface": "cli"},
        "op": "keys.revoke", "outcome": "done", "detail": {}
    })
    .to_string();
    exec(
        store(&t),
        "INSERT INTO audit_entries (tenant_id, seq, body, leaf_hash) VALUES ($1, $2, $3, $4)",
        &[
            tenant.as_str().into(),
            (seq + 1).into(),
            (&body).into(),
            merkle::leaf_hash(body.as_bytes())[..].into(),
        ],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert_eq!(f.seq, Some(seq as u64 + 1), "{f}");
}

#[tokio::test]
async fn inserting_an_entry_in_the_middle_is_caught() {
    let (t, tenant) = ledger().await;
    exec(
        store(&t),
        "UPDATE audit_entries SET seq = seq + 100 WHERE tenant_id = $1 AND seq >= 5",
        &[tenant.as_str().into()],
    )
    .await;
    exec(
        store(&t),
        "UPDATE audit_entries SET seq = seq - 99 WHERE tenant_id = $1 AND seq >= 100",
        &[tenant.as_str().into()],
    )
    .await;
    let (prev,): (Vec<u8>,) = fetch(
        store(&t),
        "SELECT leaf_hash FROM audit_entries WHERE tenant_id = $1 AND seq = 4",
        &[tenant.as_str().into()],
    )
    .await
    .remove(0);
    let body = json!({
        "v": 1, "tenant": tenant.as_str(), "seq": 5, "prev": hex::encode(&prev),
        "ts": "2026-11-01T09:00:00.000Z", "actor": {"via": "platform", "surface": "cli"},
        "op": "members.revoke", "outcome": "done", "detail": {}
    })
    .to_string();
    exec(
        store(&t),
        "INSERT INTO audit_entries (tenant_id, seq, body, leaf_hash) VALUES ($1, 5, $2, $3)",
        &[
            tenant.as_str().into(),
            (&body).into(),
            merkle::leaf_hash(body.as_bytes())[..].into(),
        ],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert!(matches!(f.seq, Some(5) | Some(6)), "{f}");
}

#[tokio::test]
async fn a_forged_checkpoint_is_rejected() {
    let (t, tenant) = ledger().await;
    // Signed by a key that is not the tenant's, over a root that would hide a change.
    let impostor =
        CheckpointSigner::from_seed(&format!("tenantops/audit/{tenant}"), &[7u8; 32]).unwrap();
    let note = impostor.sign(9, &[0u8; 32]).unwrap();
    exec(
        store(&t),
        "UPDATE audit_heads SET checkpoint = $1 WHERE tenant_id = $2",
        &[(&note).into(), tenant.as_str().into()],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert!(f.message.contains("checkpoint"), "{f}");

    // Swapping the stored verifier key to the impostor's is caught too.
    exec(
        store(&t),
        "UPDATE tenants SET audit_verifier = $1 WHERE id = $2",
        &[impostor.verifier_key().into(), tenant.as_str().into()],
    )
    .await;
    let f = failure(&t, &tenant).await;
    assert!(f.message.contains("verifier key"), "{f}");
}

#[tokio::test]
async fn exported_ledger_verifies_offline_and_catches_an_edited_line() {
    let (t, tenant) = ledger().await;
    let dir = t.dir.path().join("export");
    let n = t.core.export_audit(&tenant, &dir).await.unwrap();
    assert_eq!(n, 9);
    let key = t.core.audit_verifier_key(&tenant).unwrap();
    let report = tenantops_core::ledger::verify_dir(&dir, Some(&key), &[])
        .unwrap()
        .unwrap();
    assert_eq!(report.entries, 9);
    // Owner-only: the directories 0700, every file 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let cps = dir.join("checkpoints");
        assert_eq!((mode(&dir), mode(&cps)), (0o700, 0o700));
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(&cps).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        assert!(files.len() >= 4, "{files:?}");
        for f in files {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }

    let path = dir.join("entries.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 6 {
                l.replace("done", "fine")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let f = tenantops_core::ledger::verify_dir(&dir, Some(&key), &[])
        .unwrap()
        .unwrap_err();
    assert_eq!(f.seq, Some(6), "{f}");
}

#[tokio::test]
async fn an_inclusion_proof_verifies_against_the_signed_checkpoint() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    for i in 0..20 {
        t.ok(
            &admin,
            "members.create_bu",
            json!({"name": format!("u{i}"), "kind": "region"}),
        )
        .await;
    }
    let proof = t.ok(&admin, "audit.proof", json!({"seq": 7})).await;
    let cp = CheckpointVerifier::new(proof["verifier_key"].as_str().unwrap())
        .unwrap()
        .verify(proof["checkpoint"].as_str().unwrap())
        .unwrap();
    assert_eq!(cp.size, proof["tree_size"].as_u64().unwrap());
    let leaf = merkle::leaf_hash(proof["body"].as_str().unwrap().as_bytes());
    assert_eq!(hex::encode(leaf), proof["leaf_hash"]);
    let path: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    merkle::verify_inclusion(&leaf, 7, cp.size, &path, &cp.root).unwrap();
    assert!(merkle::verify_inclusion(&leaf, 8, cp.size, &path, &cp.root).is_err());
    // The verifier key is the one the master key derives, not merely the stored one.
    assert_eq!(
        proof["verifier_key"],
        t.core.audit_verifier_key(&created.tenant_id).unwrap()
    );
}

#[tokio::test]
async fn a_rewritten_head_is_refused_instead_of_being_signed_over() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let tenant = created.tenant_id.clone();
    for i in 0..6 {
        t.ok(
            &admin,
            "members.create_bu",
            json!({"name": format!("b{i}"), "kind": "region"}),
        )
        .await;
    }
    // Rewrite the head as someone without the master key would: drop the newest entries and
    // shrink the head to match what remains, recomputing the compact range.
    let leaves: Vec<Vec<u8>> = fetch::<(Vec<u8>,)>(
        store(&t),
        "SELECT leaf_hash FROM audit_entries WHERE tenant_id = $1 AND seq < 4 ORDER BY seq",
        &[tenant.as_str().into()],
    )
    .await
    .into_iter()
    .map(|(l,)| l)
    .collect();
    let mut frontier = merkle::Frontier::new();
    for l in &leaves {
        frontier.push(l.clone().try_into().unwrap());
    }
    exec(
        store(&t),
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq >= 4",
        &[tenant.as_str().into()],
    )
    .await;
    exec(
        store(&t),
        "UPDATE audit_heads SET size = 4, last_hash = $1, frontier = $2 WHERE tenant_id = $3",
        &[
            leaves.last().unwrap().into(),
            frontier.to_bytes().into(),
            tenant.as_str().into(),
        ],
    )
    .await;
    // The next operation refuses to extend (and re-sign) the forged head.
    let err = t.call(&admin, "whoami", json!({})).await.unwrap_err();
    assert!(err.to_string().contains("tampered"), "{err}");
    let err = t
        .call(
            &admin,
            "members.create_bu",
            json!({"name":"x","kind":"region"}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tampered"), "{err}");
    assert!(t.core.verify_audit(&tenant).await.unwrap().is_err());
}

#[tokio::test]
async fn a_rollback_to_an_older_signed_state_is_caught_by_a_kept_checkpoint() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let tenant = created.tenant_id.clone();
    let early = t.ok(&admin, "audit.checkpoint", json!({})).await;
    let early_size = early["size"].as_u64().unwrap();
    let early_note = early["checkpoint"].as_str().unwrap().to_owned();
    for i in 0..3 {
        t.ok(
            &admin,
            "members.create_bu",
            json!({"name": format!("b{i}"), "kind": "region"}),
        )
        .await;
    }
    let kept = t.ok(&admin, "audit.checkpoint", json!({})).await["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    // Roll back: drop everything after the early state and restore its (validly signed) head.
    exec(
        store(&t),
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq >= $2",
        &[tenant.as_str().into(), (early_size as i64).into()],
    )
    .await;
    exec(
        store(&t),
        "UPDATE audit_heads SET checkpoint = $1 WHERE tenant_id = $2",
        &[(&early_note).into(), tenant.as_str().into()],
    )
    .await;
    // Alone, the rolled-back ledger is self-consistent...
    assert!(t.core.verify_audit(&tenant).await.unwrap().is_ok());
    // ...but not with the checkpoint an auditor kept.
    let f = t
        .core
        .verify_audit_against(&tenant, &[kept])
        .await
        .unwrap()
        .unwrap_err();
    assert!(f.message.contains("deleted"), "{f}");
}
