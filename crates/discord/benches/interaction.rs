//! Signed interaction to HTTP answer, end to end on loopback: Ed25519 signature check, delivery
//! bookkeeping (each interaction id once), parsing the interaction, the linked user's principal,
//! the command's options, the core call (`/tenant whoami`, audited) and the embed answer.
//! p50 and p99 with 1 and 100 concurrent senders.
//!
//! `cargo bench -p tenantops-discord --bench interaction` (`DISCORD_BENCH_N` requests per level,
//! default 2000).
//! `TENANTOPS_BENCH_SMOKE=1` sends 40 requests per level, for CI.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantops_core::chat::Platform;
use tenantops_core::{Config, Core, Outcome, Surface};

const APPLICATION_ID: u64 = 1_100_000_000_000_000_001;
const GUILD: &str = "1200000000000000001";
const CHANNEL: &str = "1250000000000000001";
const USER: &str = "1000000000000000001";
const COMMAND_ID: &str = "1150000000000000001";
/// Interaction ids are deduplicated: each request gets the next one.
const FIRST_INTERACTION: u64 = 1_400_000_000_000_000_000;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// `/tenant whoami` by [`USER`] in [`GUILD`], as Discord sends it (the fixture of the e2e tests).
fn whoami(id: u64) -> String {
    let user = json!({"id": USER, "username": format!("user{USER}"), "discriminator": "0",
        "global_name": format!("User {USER}"), "avatar": null});
    let data = json!({"id": COMMAND_ID, "name": "tenant", "type": 1,
        "options": [{"type": 1, "name": "whoami", "options": []}]});
    json!({"id": id.to_string(), "application_id": APPLICATION_ID.to_string(), "type": 2,
        "data": data, "guild_id": GUILD, "channel_id": CHANNEL,
        "channel": {"id": CHANNEL, "type": 0, "name": "general", "permissions": "2248473465835073"},
        "member": {"user": user, "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "deaf": false, "mute": false, "flags": 0, "pending": false,
            "permissions": "2248473465835073", "nick": null, "avatar": null},
        "token": format!("tok-{id}"), "version": 1, "app_permissions": "2248473465835073",
        "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD}, "context": 0,
        "attachment_size_limit": 26214400})
    .to_string()
}

/// `X-Signature-Ed25519` (hex of the signature over `timestamp || body`) and
/// `X-Signature-Timestamp`.
fn signed(key: &SigningKey, body: &str) -> (String, String) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature = key.sign(format!("{ts}{body}").as_bytes());
    (hex::encode(signature.to_bytes()), ts)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider: ring, installed once.
    tenantops_core::kms::install_crypto_provider();
    let smoke = std::env::var("TENANTOPS_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let n: usize = std::env::var("DISCORD_BENCH_N")
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
    // The server is bound the way a tenant binds it: a code, used from inside the server.
    let state = done(
        core.call(
            &admin,
            "tenant.chat_install_link",
            json!({"platform": "discord"}),
        )
        .await
        .unwrap(),
    )["state"]
        .as_str()
        .unwrap()
        .to_owned();
    core.complete_chat_install(Platform::Discord, &state, GUILD, None, None)
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
    core.link_chat(Platform::Discord, GUILD, USER, &code)
        .await
        .unwrap();
    // The persona the Discord user is now linked to: every answer must name it.
    let handle = done(core.call(&admin, "whoami", json!({})).await.unwrap())["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    let handle = Arc::new(handle);

    let discord = tenantops_discord::Discord::new(
        core.clone(),
        &tenantops_discord::DiscordConfig {
            public_key: Some(hex::encode(key().verifying_key().to_bytes())),
            application_id: APPLICATION_ID,
            bot_token: "bench".into(),
            api_url: Some("http://127.0.0.1:9".into()),
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
            tenantops_discord::router(discord),
        )
        .await
        .unwrap()
    });
    let url = Arc::new(format!("http://{addr}/discord/interactions"));
    let counter = Arc::new(AtomicU64::new(FIRST_INTERACTION));

    println!("signed /tenant whoami interaction → HTTP answer ({n} requests per level)");
    println!("senders  req/s    p50 ms   p99 ms");
    for senders in [1usize, if smoke { 8 } else { 100 }] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..senders {
            let (url, counter, handle) = (url.clone(), counter.clone(), handle.clone());
            let share = n / senders + usize::from(s < n % senders);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let key = key();
                let mut times = Vec::with_capacity(share);
                for _ in 0..share {
                    let body = whoami(counter.fetch_add(1, Ordering::Relaxed));
                    let (sig, ts) = signed(&key, &body);
                    let t = Instant::now();
                    let res = http
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .header("x-signature-ed25519", sig)
                        .header("x-signature-timestamp", ts)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let text = res.text().await.unwrap();
                    times.push(t.elapsed());
                    assert_eq!(status, 200, "{text}");
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(answer["type"], 4, "{text}");
                    // The whoami embed names the linked persona, acting via this Discord user.
                    let field = |name: &str| {
                        answer["data"]["embeds"][0]["fields"]
                            .as_array()
                            .and_then(|f| f.iter().find(|f| f["name"] == name))
                            .map(|f| f["value"].clone())
                    };
                    assert_eq!(field("handle"), Some(json!(handle.as_str())), "{text}");
                    assert_eq!(field("via user"), Some(json!(USER)), "{text}");
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
