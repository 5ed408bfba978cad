//! How long an approval takes from the decision to the executed operation: the time of the
//! approving `approvals.decide` call, which commits the decision, re-checks the request and
//! runs the operation as the requester. Prints the median and p90 over many requests.
//!
//! `cargo bench -p tenantops-core --bench approvals` (`APPROVALS_BENCH_N`, default 300).
//! `TENANTOPS_BENCH_SMOKE=1` runs 10 requests, for CI.

use serde_json::json;
use std::time::Instant;
use tenantops_core::{Core, Outcome, Surface};

mod support;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let n: usize = std::env::var("APPROVALS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 10 } else { 300 });
    let dir = tempfile::tempdir().expect("tempdir");
    // The admin's key is its own; Alice's is issued by the admin. A bench scripts both people,
    // so any key may decide here (the weakened policy a single operator would choose).
    let (mut config, engine) = support::config(dir.path()).await;
    config.key_decisions = tenantops_core::config::KeyDecisions::AnyKey;
    let core = Core::open(config).await.expect("open");
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let admin = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .expect("admin");
    let call = |p: &tenantops_core::Principal, op: &str, input: serde_json::Value| {
        let core = core.clone();
        let p = p.clone();
        let op = op.to_owned();
        async move { core.call(&p, &op, input).await.expect("call") }
    };
    let out = |o: Outcome| match o {
        Outcome::Done { output } => output,
        other => panic!("{other:?}"),
    };
    out(call(
        &admin,
        "members.create_persona",
        json!({"handle":"alice","kind":"human","email":"a@b.example","roles":["security-admin"]}),
    )
    .await);
    let alice_key = out(call(
        &admin,
        "keys.issue",
        json!({"persona":"alice","scopes":["approvals:decide","approvals:read"]}),
    )
    .await)["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = core.authenticate(&alice_key, Surface::Cli).await.unwrap();
    for i in 0..n {
        out(call(
            &admin,
            "members.create_persona",
            json!({"handle": format!("v{i}"),"kind":"service","roles":["developer"]}),
        )
        .await);
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let id = match call(
            &admin,
            "members.delete_persona",
            json!({"persona": format!("v{i}")}),
        )
        .await
        {
            Outcome::PendingApproval { request_id, .. } => request_id,
            other => panic!("{other:?}"),
        };
        let t = Instant::now();
        let done = out(call(
            &alice,
            "approvals.decide",
            json!({"request_id": id, "decision": "approve"}),
        )
        .await);
        times.push(t.elapsed());
        assert_eq!(done["request"]["state"], "succeeded");
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "approval decision → executed ({n} requests, {engine}): median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(times[n / 2]),
        ms(times[n * 9 / 10]),
        ms(times[n - 1])
    );
}
