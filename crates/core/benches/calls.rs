//! Audited calls through the core, without a transport: what group commit buys. An audited
//! read (`whoami`: re-check the caller, run, commit the audit entry) from 1, 16 and 64
//! concurrent callers, and a durable write (`members.create_persona`: the persona, its roles
//! and its audit entry in one transaction) from 16. Throughput, p50 and p99, on SQLite with
//! `synchronous=FULL`, or on PostgreSQL with `TENANTOPS_BENCH_POSTGRES=<admin URL>`.
//!
//! `cargo bench -p tenantops-core --bench calls` (`CALLS_BENCH_SECS` per level, default 5).
//! `TENANTOPS_BENCH_SMOKE=1` runs each level for a fraction of a second, for CI.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantops_core::{Core, Outcome, Principal, Surface};

mod support;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// Runs `call` from `clients` tasks for `secs`; prints calls/s, p50 and p99.
async fn level<F, Fut>(label: &str, clients: usize, secs: f64, call: F)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (call, counter) = (call.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                call(i).await;
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{label:<22} {clients:>7}  {:>8.0}  {:>7.2}  {:>7.2}  {:>7}",
        all.len() as f64 / elapsed,
        pct(&all, 0.50),
        pct(&all, 0.99),
        all.len()
    );
}

fn done(o: Outcome) -> Value {
    match o {
        Outcome::Done { output } => output,
        other => panic!("{other:?}"),
    }
}

#[tokio::main]
async fn main() {
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let secs: f64 = std::env::var("CALLS_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 0.3 } else { 5.0 });
    let levels: &[usize] = if smoke { &[1, 4] } else { &[1, 16, 64] };
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, engine) = support::config(dir.path()).await;
    let core = Core::open(config).await.expect("open");
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let admin: Principal = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .expect("admin");

    println!("audited calls through the core ({secs} s per level, {engine})");
    println!("call                   clients   calls/s   p50 ms   p99 ms    calls");
    for &clients in levels {
        let (core, admin) = (core.clone(), admin.clone());
        level("whoami (audited read)", clients, secs, move |_| {
            let (core, admin) = (core.clone(), admin.clone());
            async move {
                done(core.call(&admin, "whoami", json!({})).await.expect("call"));
            }
        })
        .await;
    }
    let writers = if smoke { 4 } else { 16 };
    let (c, a) = (core.clone(), admin.clone());
    level("create_persona (write)", writers, secs, move |i| {
        let (core, admin) = (c.clone(), a.clone());
        async move {
            let input =
                json!({"handle": format!("svc-{i}"), "kind": "service", "roles": ["developer"]});
            done(
                core.call(&admin, "members.create_persona", input)
                    .await
                    .expect("call"),
            );
        }
    })
    .await;
    let report = core
        .verify_audit(&created.tenant_id)
        .await
        .expect("verify")
        .expect("the ledger verifies");
    println!("ledger after the run: {} entries, intact", report.entries);
}
