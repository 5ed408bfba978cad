//! Audit-ledger throughput: durable appends per second (one entry per transaction, as an
//! operation writes it, and batched) and verification per second over a large ledger, from an
//! export (pure verification) and from the database.
//!
//! `cargo bench -p tenantops-core --bench ledger` (set `LEDGER_BENCH_ENTRIES` to change the
//! ledger size; default 1,000,000). `TENANTOPS_BENCH_SMOKE=1` runs 5,000 entries, for CI.

use serde_json::json;
use std::time::Instant;
use tenantops_core::ledger::{self, Actor, AuditOutcome, Draft};
use tenantops_core::{Config, Core};

fn draft(i: u64) -> Draft {
    Draft {
        actor: Actor {
            persona: Some("ps_01a21fb48038758586cc59fbf4749064".into()),
            kind: Some("service".into()),
            via: "api_key:key_01a21fb4817474449947f194ffbcda00".into(),
            surface: "mcp".into(),
        },
        op: "billing.live_meter".into(),
        outcome: AuditOutcome::Done,
        detail: json!({ "input": { "sku": format!("sku-{}", i % 17) }, "n": i }),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Profiling aid: verify an existing export (`LEDGER_BENCH_VERIFY_DIR`) and nothing else.
    if let Ok(dir) = std::env::var("LEDGER_BENCH_VERIFY_DIR") {
        let t = Instant::now();
        let report = ledger::verify_dir(std::path::Path::new(&dir), None, &[])
            .expect("read")
            .expect("intact");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "verify export offline: {:>10.0} entries/s ({} entries, {secs:.2} s)",
            report.entries as f64 / secs,
            report.entries
        );
        return;
    }
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let entries: u64 = std::env::var("LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 5_000 } else { 1_000_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let core = Core::open(Config::new(dir.path().join("bench.db")))
        .await
        .expect("open");
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let tenant = created.tenant_id;
    let signer = core.env().signer(&tenant).expect("signer");
    let env = core.env();
    let now = chrono::Utc::now();

    // 1. One entry per transaction, fsync'd (synchronous=FULL): what each operation pays.
    let single = if smoke { 200 } else { 2_000u64 };
    let t = Instant::now();
    for i in 0..single {
        let (tenant, signer) = (tenant.clone(), signer.clone());
        env.write(move |tx| {
            Box::pin(async move {
                ledger::record(tx, &tenant, &signer, now, vec![draft(i)]).await?;
                Ok(())
            })
        })
        .await
        .expect("record");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "append, 1 entry/transaction (durable): {:>10.0} entries/s  ({single} entries in {secs:.2} s)",
        single as f64 / secs
    );

    // 2. Batched: 1,000 entries per transaction, one checkpoint each.
    let batch = 1_000u64;
    let remaining = entries.saturating_sub(single + 1);
    let t = Instant::now();
    let mut done = 0u64;
    while done < remaining {
        let n = batch.min(remaining - done);
        let (tenant, signer) = (tenant.clone(), signer.clone());
        let drafts = (0..n).map(|i| draft(done + i)).collect();
        env.write(move |tx| {
            Box::pin(async move {
                ledger::record(tx, &tenant, &signer, now, drafts).await?;
                Ok(())
            })
        })
        .await
        .expect("record");
        done += n;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "append, {batch} entries/transaction (durable): {:>10.0} entries/s  ({done} entries in {secs:.2} s)",
        done as f64 / secs
    );

    // 3. Verify from the database.
    let t = Instant::now();
    let report = core
        .verify_audit(&tenant)
        .await
        .expect("verify")
        .expect("intact");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify from database:              {:>10.0} entries/s  ({} entries, {} checkpoints, {secs:.2} s)",
        report.entries as f64 / secs,
        report.entries,
        report.checkpoints
    );

    // 4. Verify an export (pure verification: read, parse, hash, chain, Merkle, signatures).
    let out = std::env::var("LEDGER_BENCH_KEEP_EXPORT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("export"));
    core.export_audit(&tenant, &out).await.expect("export");
    let key = core.audit_verifier_key(&tenant).expect("key");
    let t = Instant::now();
    let report = ledger::verify_dir(&out, Some(&key), &[])
        .expect("read")
        .expect("intact");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify export offline:             {:>10.0} entries/s  ({} entries, {secs:.2} s)",
        report.entries as f64 / secs,
        report.entries
    );
}
