//! MCP over streamable HTTP, measured end to end on loopback: `tools/call` of audited read
//! tools (`whoami`, and `billing.live_meter`, which reads the meter) — each call authenticates
//! its bearer key, re-checks it, runs and commits its audit entry — with 1, 16 and 64 concurrent
//! clients (throughput, p50 and p99), and `tools/list` latency for a scoped caller. The clients
//! run in the same process and share its cores: an external load generator (`wrk`) sees more.
//!
//! `cargo bench -p tenantops-mcp --bench mcp_http` (`MCP_BENCH_SECS` per level, default 5).
//! `TENANTOPS_BENCH_SMOKE=1` runs each level for a fraction of a second, for CI.
//! Requests speak the 2026-07-28 protocol (stateless), as a modern client does.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tenantops_core::{Config, Core, Outcome, Surface};
use tenantops_mcp::{HttpOptions, Limits};

const PROTOCOL: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
    })
}

async fn rpc(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    method: &str,
    name: Option<&str>,
    params: Value,
) {
    let mut req = http
        .post(url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", PROTOCOL)
        .header("Mcp-Method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(n) = name {
        req = req.header("Mcp-Name", n);
    }
    let res = req.send().await.expect("send");
    assert!(res.status().is_success(), "{}", res.status());
    let body = res.text().await.expect("body");
    assert!(
        body.contains("\"result\"") && !body.contains("\"isError\":true"),
        "{body}"
    );
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider: ring, installed once.
    tenantops_core::kms::install_crypto_provider();
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let secs: f64 = std::env::var("MCP_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 0.3 } else { 5.0 });
    let levels: &[usize] = if smoke { &[1, 4] } else { &[1, 16, 64] };
    let dir = tempfile::tempdir().expect("tempdir");
    let core = Core::open(Config::new(dir.path().join("bench.db")))
        .await
        .expect("open");
    let created = core.create_tenant("bench", None).await.expect("tenant");
    let admin = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .unwrap();
    let done = |o: Outcome| match o {
        Outcome::Done { output } => output,
        other => panic!("{other:?}"),
    };
    done(
        core.call(
            &admin,
            "members.create_persona",
            json!({"handle": "agent", "kind": "agent", "roles": ["ai-agent"]}),
        )
        .await
        .unwrap(),
    );
    let key = done(core
        .call(
            &admin,
            "keys.issue",
            json!({"persona": "agent", "scopes": ["billing:read", "members:read", "approvals:read"]}),
        )
        .await
        .unwrap())["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    done(core
        .call(
            &admin,
            "billing.set_prices",
            json!({"currency": "USD", "prices": [
                {"sku": "api.requests", "unit": "request", "unit_price": "0.0004", "description": "API"},
                {"sku": "storage.gb", "unit": "GB-month", "unit_price": "0.02", "description": "Storage"}
            ]}),
        )
        .await
        .unwrap());

    let options = HttpOptions {
        limits: Limits {
            calls_per_minute: std::num::NonZeroU32::new(10_000_000).unwrap(),
            ..Limits::default()
        },
        ..HttpOptions::default()
    };
    let app = tenantops_mcp::router(
        core.clone(),
        options,
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            app,
        )
        .await
        .unwrap()
    });
    let url = format!("http://{addr}/mcp");
    for tool in ["whoami", "billing.live_meter"] {
        let call_params = json!({"name": tool, "arguments": {}, "_meta": meta()});
        println!("tools/call {tool} over streamable HTTP ({secs} s per level)");
        println!("clients  calls/s   p50 ms   p99 ms   calls");
        for &clients in levels {
            let deadline = Instant::now() + Duration::from_secs_f64(secs);
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (url, key, params) = (url.clone(), key.clone(), call_params.clone());
                tasks.push(tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut times = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        rpc(&http, &url, &key, "tools/call", Some(tool), params.clone()).await;
                        times.push(t.elapsed());
                    }
                    times
                }));
            }
            let started = Instant::now();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let elapsed = started.elapsed().as_secs_f64();
            all.sort();
            println!(
                "{clients:>7}  {:>7.0}  {:>7.2}  {:>7.2}  {:>6}",
                all.len() as f64 / elapsed,
                pct(&all, 0.50),
                pct(&all, 0.99),
                all.len()
            );
        }
    }

    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..if smoke { 20 } else { 500 } {
        let t = Instant::now();
        rpc(
            &http,
            &url,
            &key,
            "tools/list",
            None,
            json!({"_meta": meta()}),
        )
        .await;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "tools/list (scoped caller, {} of {} tools): p50 {:.2} ms, p99 {:.2} ms over {} requests",
        tenantops_mcp::tools::visible(&core.authenticate(&key, Surface::Mcp).await.unwrap()).len(),
        tenantops_core::catalogue().len(),
        pct(&times, 0.50),
        pct(&times, 0.99),
        times.len()
    );
}
