//! Billing throughput and latency: batched ingestion rate through the full operation path
//! (JSON input, validation, idempotency, rollups, audit entry; durable SQLite, or PostgreSQL with `TENANTOPS_BENCH_POSTGRES=<admin URL>`), then
//! `billing.live_meter` latency with the given number of events stored.
//!
//! Whatever the sizes, it checks what it measures: every event of a batch is accepted, a batch
//! sent again is all duplicates, and the live meter shows exactly the quantities sent.
//!
//! `cargo bench -p tenantops-core --bench billing`
//! (`BILLING_BENCH_EVENTS`, default 10,000,000; `BILLING_BENCH_BATCH`, default 10,000).
//! `TENANTOPS_BENCH_SMOKE=1` runs tiny sizes (20,000 events in batches of 1,000) in seconds,
//! with the same checks: for CI.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tenantops_core::{Core, Outcome, Surface};

mod support;

fn env_size(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name}={v}: give a positive whole number")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let (default_total, default_batch, meter_reads) = if smoke {
        (20_000, 1_000, 20)
    } else {
        (10_000_000, 10_000, 200)
    };
    let total = env_size("BILLING_BENCH_EVENTS", default_total);
    let batch = env_size("BILLING_BENCH_BATCH", default_batch);
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, engine) = support::config(dir.path()).await;
    println!("engine: {engine}");
    let core = Core::open(config).await.expect("open");
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
    // What the meter must show: the quantities sent, per SKU.
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last_input = Value::Null;
    while n < total {
        let size = batch.min(total - n);
        let events: Vec<Value> = (n..n + size)
            .map(|i| {
                let t = base + chrono::Duration::seconds((i as i64 * 7919) % span);
                let (sku, quantity) = (skus[i % skus.len()], (i % 100) as u64 + 1);
                *expected.entry(sku).or_default() += quantity;
                json!({
                    "id": format!("e{i}"), "source": "sdk-meter", "time": t.to_rfc3339(),
                    "sku": sku, "quantity": quantity, "key_id": keys[i % keys.len()],
                })
            })
            .collect();
        let input = json!({ "events": events });
        if n + size == total {
            last_input = input.clone();
        }
        let t = Instant::now();
        let out = done(core.call(&admin, "billing.ingest", input).await.unwrap());
        ingest_time += t.elapsed();
        assert_eq!(
            (out["accepted"].as_u64(), out["duplicates"].as_u64()),
            (Some(size as u64), Some(0)),
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
    // The last batch again: every event a duplicate, nothing counted twice.
    let last = last_input["events"].as_array().map_or(0, Vec::len) as u64;
    let again = done(
        core.call(&admin, "billing.ingest", last_input)
            .await
            .unwrap(),
    );
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(last)),
        "a resent batch"
    );
    let mut times = Vec::new();
    for _ in 0..meter_reads {
        let t = Instant::now();
        let m = done(
            core.call(&admin, "billing.live_meter", json!({}))
                .await
                .unwrap(),
        );
        times.push(t.elapsed());
        let lines = m["lines"].as_array().unwrap();
        assert_eq!(lines.len(), expected.len());
        for line in lines {
            let sku = line["sku"].as_str().unwrap();
            let quantity = match &line["quantity"] {
                Value::String(s) => Decimal::from_str(s).unwrap(),
                other => Decimal::from_str(&other.to_string()).unwrap(),
            };
            assert_eq!(quantity, Decimal::from(expected[sku]), "{sku}");
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "billing.live_meter with {n} events stored: p50 {:.2} ms, p99 {:.2} ms",
        ms(at(50)),
        ms(at(99))
    );
    if smoke {
        println!(
            "smoke run: every batch accepted, the resent batch all duplicates, the meter exact"
        );
    }
}
