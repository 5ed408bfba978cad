//! The sealing service: opening a sealed value with a tenant's cached keys (and sealing one),
//! a warm-cache key lookup, and the re-wrap after a new epoch — records re-sealed under the
//! newest data key per second, each batch its own durable write. On SQLite with
//! `synchronous=FULL`, or on PostgreSQL with `TENANTOPS_BENCH_POSTGRES=<admin URL>`.
//!
//! `cargo bench -p tenantops-core --bench vault` (`VAULT_BENCH_OPENS` opens, default 200,000;
//! `VAULT_BENCH_PERSONAS` personas to re-wrap, default 2,000, each with a sealed email and
//! display name). `TENANTOPS_BENCH_SMOKE=1` runs 2,000 opens and 50 personas, for CI.

use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tenantops_core::vault::PERSONA_EMAIL;
use tenantops_core::vault::keys::Place;
use tenantops_core::{Core, Outcome, Principal, Surface};

mod support;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let opens = env_or("VAULT_BENCH_OPENS", if smoke { 2_000 } else { 200_000 });
    let personas = env_or("VAULT_BENCH_PERSONAS", if smoke { 50 } else { 2_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, engine) = support::config(dir.path()).await;
    let core = Core::open(config).await.expect("open");
    let env = core.env().clone();
    println!("sealing service ({engine})");

    // 1. Open (and seal) with cached keys: XChaCha20-Poly1305 and the associated data, no I/O.
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let tenant = created.tenant_id.clone();
    let keys = env.keys(&tenant).await.expect("keys");
    let place = Place::new(&PERSONA_EMAIL, "per_x");
    let value = b"ada.lovelace@analytical-engine.example.org";
    let sealed = keys.seal(place, value);
    assert_eq!(&keys.open(place, &sealed).expect("opens")[..], value);
    let t = Instant::now();
    for _ in 0..opens {
        black_box(
            keys.open(black_box(place), black_box(&sealed))
                .expect("opens"),
        );
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "open, cached keys ({} B value):  {:>8.3} µs/open  {:>10.0} opens/s  ({opens} opens in {secs:.2} s)",
        value.len(),
        secs * 1e6 / opens as f64,
        opens as f64 / secs
    );
    let t = Instant::now();
    for _ in 0..opens {
        black_box(keys.seal(black_box(place), black_box(value)));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "seal, cached keys ({} B value):  {:>8.3} µs/seal  {:>10.0} seals/s  ({opens} seals in {secs:.2} s)",
        value.len(),
        secs * 1e6 / opens as f64,
        opens as f64 / secs
    );

    // 2. The keys of a tenant from a warm cache: what each operation needing them pays.
    let t = Instant::now();
    for _ in 0..opens {
        black_box(env.keys(black_box(&tenant)).await.expect("keys"));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "env.keys, warm cache:            {:>8.3} µs/lookup {:>9.0} lookups/s ({opens} lookups in {secs:.2} s)",
        secs * 1e6 / opens as f64,
        opens as f64 / secs
    );
    drop(keys);

    // 3. The re-wrap: a tenant with `personas` personas (email and display name sealed), a new
    //    epoch, every value moved to it in batches, then the old data key dropped.
    let created = core.create_tenant("rewrap", None).await.expect("tenant");
    let tenant = created.tenant_id;
    let admin: Principal = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .expect("admin");
    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (core, admin, next) = (core.clone(), admin.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= personas {
                    break;
                }
                let input = json!({
                    "handle": format!("svc-{i:05}"),
                    "kind": "service",
                    "email": format!("svc-{i:05}@bench.example.com"),
                    "display_name": format!("Bench service account {i:05}"),
                    "roles": ["developer"],
                });
                done(
                    core.call(&admin, "members.create_persona", input)
                        .await
                        .expect("call"),
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "setup: {personas} personas created (16 callers) in {secs:.2} s ({:.0}/s)",
        personas as f64 / secs
    );

    core.rotate_platform_key_for_bench(&tenant)
        .await
        .expect("new epoch");
    let t = Instant::now();
    let mut moved = 0u64;
    let mut passes = 0u32;
    loop {
        let (n, finished) = core.rewrap_tenant(&tenant).await.expect("re-wrap");
        moved += n;
        passes += 1;
        if finished {
            break;
        }
        assert!(passes < 10, "the re-wrap does not finish");
    }
    let secs = t.elapsed().as_secs_f64();
    // Every persona's email and display name, and the first admin's display name.
    assert_eq!(moved, 2 * personas + 1, "values moved");
    println!(
        "re-wrap to a new epoch (durable): {:>9.0} records/s  ({moved} sealed values in {secs:.2} s, {passes} pass)",
        moved as f64 / secs
    );

    // The values open under the new epoch only (the old data key is gone).
    let keys = env.keys(&tenant).await.expect("keys");
    assert_eq!(keys.current_epoch(), 2);
    let list = done(
        core.call(&admin, "members.list_personas", json!({"kind": "service"}))
            .await
            .expect("list"),
    );
    let listed = list["personas"].as_array().expect("personas");
    assert_eq!(listed.len() as u64, personas);
    for p in listed {
        let handle = p["handle"].as_str().expect("handle");
        assert_eq!(p["email"], json!(format!("{handle}@bench.example.com")));
    }
    println!("after the re-wrap: {personas} personas list with their emails, under epoch 2");
}
