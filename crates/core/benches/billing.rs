//! Billing throughput and latency: batched ingestion rate through the full operation path
//! (JSON input, validation, idempotency, rollups, audit entry; durable SQLite), then
//! `billing.live_meter` latency with the given number of events stored.
//!
//! `cargo bench -p tenantops-core --bench billing`
//! (`BILLING_BENCH_EVENTS`, default 10,000,000; `BILLING_BENCH_BATCH`, default 10,000).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tenantops_core::{Config, Core, Outcome, Surface};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let total: usize = std::env::var("BILLING_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let batch: usize = std::env::var("BILLING_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let core = Core::open(Config::new(dir.path().join("bench.db")))
        .await
        .expect("open");
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let admin = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .expect("admin");
    let done = |o: Outcome| match o {
        Outcome::Done { output } => output,
        other => panic!("{other:?}"),
    };
    let skus = [
        "api.requests",
        "storage.gb",
        "ai.tokens",
        "egress.gb",
        "seats",
    ];
    let prices: Vec<Value> = skus
        .iter()
        .map(|s| json!({"sku": s, "unit_price": "0.0004", "unit": "unit", "description": s}))
        .collect();
    done(
        core.call(&admin, "billing.set_prices", json!({"prices": prices}))
            .await
            .unwrap(),
    );
    let mut keys = Vec::new();
    for i in 0..20 {
        done(
            core.call(
                &admin,
                "members.create_persona",
                json!({"handle": format!("svc{i}"), "kind": "service", "roles": ["developer"]}),
            )
            .await
            .unwrap(),
        );
        let k = done(
            core.call(
                &admin,
                "keys.issue",
                json!({"persona": format!("svc{i}"), "scopes": ["keys:read"]}),
            )
            .await
            .unwrap(),
        );
        keys.push(k["key_id"].as_str().unwrap().to_owned());
    }
    let now = chrono::Utc::now();
    let base = tenantops_core::billing::period_start(now);
    let span = (now - base).num_seconds().max(60);
    let mut n = 0usize;
    let mut ingest_time = Duration::ZERO;
    let mut first_window: Option<(usize, Duration)> = None;
    while n < total {
        let size = batch.min(total - n);
        let events: Vec<Value> = (n..n + size)
            .map(|i| {
                let t = base + chrono::Duration::seconds((i as i64 * 7919) % span);
                json!({
                    "id": format!("e{i}"), "source": "sdk-meter", "time": t.to_rfc3339(),
                    "sku": skus[i % skus.len()], "quantity": (i % 100) + 1, "key_id": keys[i % keys.len()],
                })
            })
            .collect();
        let input = json!({ "events": events });
        let t = Instant::now();
        let out = done(core.call(&admin, "billing.ingest", input).await.unwrap());
        ingest_time += t.elapsed();
        assert_eq!(
            out["accepted"].as_u64().unwrap() as usize,
            size,
            "{}",
            out["rejected"]
        );
        n += size;
        if first_window.is_none() && n >= 500_000.min(total) {
            first_window = Some((n, ingest_time));
        }
    }
    if let Some((events, time)) = first_window {
        println!(
            "ingest, batches of {batch} (durable, full operation path): {:>9.0} events/s over the first {events} events",
            events as f64 / time.as_secs_f64()
        );
    }
    println!(
        "ingest, batches of {batch}: {:>9.0} events/s over all {n} events ({:.1} s)",
        n as f64 / ingest_time.as_secs_f64(),
        ingest_time.as_secs_f64()
    );
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let m = done(
            core.call(&admin, "billing.live_meter", json!({}))
                .await
                .unwrap(),
        );
        times.push(t.elapsed());
        assert!(m["lines"].as_array().unwrap().len() == skus.len());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "billing.live_meter with {n} events stored: p50 {:.2} ms, p99 {:.2} ms",
        ms(times[100]),
        ms(times[198])
    );
}
