//! Signed slash command to HTTP answer, end to end on loopback: signature check, delivery
//! bookkeeping, the linked user's principal, parsing, the core call (`/tenant whoami`, audited)
//! and the Block Kit answer. p50 and p99 with 1 and 100 concurrent senders.
//!
//! `cargo bench -p tenantops-slack --bench ack` (`SLACK_BENCH_N` requests per level, default 2000).
//! `TENANTOPS_BENCH_SMOKE=1` sends 40 requests per level, for CI.

use hmac::{Hmac, Mac};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantops_core::chat::Platform;
use tenantops_core::{Config, Core, Outcome, Surface};

const SECRET: &str = "bench-signing-secret";

fn signed(body: &str) -> (String, String) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    (
        format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ts,
    )
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider: ring, installed once.
    tenantops_core::kms::install_crypto_provider();
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let n: usize = std::env::var("SLACK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 40 } else { 2000 });
    let dir = tempfile::tempdir().unwrap();
    let core = Core::open(Config::new(dir.path().join("bench.db")))
        .await
        .unwrap();
    let created = core.create_tenant("bench", None).await.unwrap();
    let admin = core
        .authenticate(&created.api_key, Surface::Cli)
        .await
        .unwrap();
    let done = |o: Outcome| match o {
        Outcome::Done { output } => output,
        other => panic!("{other:?}"),
    };
    // The workspace is bound the way an admin's OAuth install binds it.
    let state = done(
        core.call(
            &admin,
            "tenant.chat_install_link",
            json!({"platform": "slack"}),
        )
        .await
        .unwrap(),
    )["state"]
        .as_str()
        .unwrap()
        .to_owned();
    core.complete_chat_install(Platform::Slack, &state, "TBENCH", Some("bench"), None)
        .await
        .unwrap();
    let code = done(
        core.call(&admin, "members.chat_link_code", json!({}))
            .await
            .unwrap(),
    )["code"]
        .as_str()
        .unwrap()
        .to_owned();
    core.link_chat(Platform::Slack, "TBENCH", "UBENCH", &code)
        .await
        .unwrap();

    let slack = tenantops_slack::Slack::new(
        core.clone(),
        &tenantops_slack::SlackConfig {
            signing_secret: Some(SECRET.into()),
            app_token: None,
            bot_token: Some("xoxb-bench".into()),
            api_url: "http://127.0.0.1:9/api".into(),
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            tenantops_slack::router(slack),
        )
        .await
        .unwrap()
    });
    let url = Arc::new(format!("http://{addr}/slack/commands"));
    let counter = Arc::new(AtomicU64::new(0));

    println!("signed /tenant whoami → HTTP answer ({n} requests per level)");
    println!("senders  req/s    p50 ms   p99 ms");
    for senders in [1usize, if smoke { 8 } else { 100 }] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..senders {
            let (url, counter) = (url.clone(), counter.clone());
            let share = n / senders + usize::from(s < n % senders);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut times = Vec::with_capacity(share);
                for _ in 0..share {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let body = format!(
                        "team_id=TBENCH&channel_id=C1&user_id=UBENCH&command=%2Ftenant&text=whoami\
                         &response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr&trigger_id=bench.{i}"
                    );
                    let (sig, ts) = signed(&body);
                    let t = Instant::now();
                    let res = http
                        .post(url.as_str())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-slack-signature", sig)
                        .header("x-slack-request-timestamp", ts)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(res.status().is_success());
                    let text = res.text().await.unwrap();
                    assert!(text.contains("admin"), "{text}");
                    times.push(t.elapsed());
                }
                times
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort();
        println!(
            "{senders:>7}  {:>6.0}  {:>7.2}  {:>7.2}",
            all.len() as f64 / secs,
            pct(&all, 0.5),
            pct(&all, 0.99)
        );
    }
}
