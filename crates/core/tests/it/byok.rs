//! BYOK against a real AWS-compatible KMS (moto in server mode): configure, verify red and green,
//! the re-wrap to 100 %, rotation with a second person, a key disabled upstream (through a thin
//! proxy that answers AWS's `DisabledException` for it — moto itself still encrypts with a
//! disabled key), revocation with the crypto-shredding check, restoration and disable.

use crate::support::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tenantops_core::kms::KmsConfig;
use tenantops_core::kms::testing::Moto;
use tenantops_core::{Error, Outcome, Principal};

/// A proxy in front of moto that refuses every use of the keys while `disabled` is set, with
/// the body AWS KMS answers for a disabled key.
struct Upstream {
    url: String,
    disabled: Arc<AtomicBool>,
}

async fn upstream(moto: &Moto) -> Upstream {
    let disabled = Arc::new(AtomicBool::new(false));
    let target = moto.endpoint().to_owned();
    let flag = disabled.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (flag, http, target) = (flag.clone(), http.clone(), target.clone());
        async move {
            let op = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if flag.load(Ordering::SeqCst) && !op.ends_with("DescribeKey") {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"__type":"DisabledException","message":"arn:aws:kms:us-east-1:123456789012:key/x is disabled."}"#
                        .to_owned(),
                );
            }
            let mut req = http.post(&target).body(body.to_vec());
            for (k, v) in headers.iter() {
                if k != "host" && k != "content-length" {
                    req = req.header(k, v);
                }
            }
            match req.send().await {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
                    (status, r.text().await.unwrap_or_default())
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { url, disabled }
}

fn config_via(moto: &Moto, endpoint: &str) -> KmsConfig {
    let vars: Vec<(&str, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| match k {
            "AWS_ENDPOINT_URL_KMS" => (k, endpoint.to_owned()),
            _ => (k, v),
        })
        .collect();
    KmsConfig::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
}

async fn status(t: &Env, p: &Principal) -> Value {
    t.ok(p, "byok.status", json!({})).await
}

async fn emails(t: &Env, p: &Principal) -> Result<Vec<String>, Error> {
    match t.call(p, "members.list_personas", json!({})).await? {
        Outcome::Done { output } => Ok(output["personas"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["email"].as_str().map(str::to_owned))
            .collect()),
        other => panic!("{other:?}"),
    }
}

/// Approves `request` as `second`.
async fn approve(t: &Env, second: &Principal, outcome: Outcome) -> Value {
    let Outcome::PendingApproval {
        request_id,
        summary,
        ..
    } = outcome
    else {
        panic!("expected an approval request, got {outcome:?}")
    };
    let decided = t
        .ok(
            second,
            "approvals.decide",
            json!({"request_id": request_id, "decision": "approve"}),
        )
        .await;
    assert_eq!(decided["request"]["state"], "succeeded", "{decided}");
    json!({ "summary": summary, "result": decided["request"]["result"] })
}

#[tokio::test]
async fn byok_on_a_real_kms_from_configure_to_disable() {
    let moto = Moto::start().await;
    let up = upstream(&moto).await;
    let kms = config_via(&moto, &up.url);
    let t = Env::with(|c| {
        c.kms = kms;
        c.key_cache_ttl = Duration::from_millis(500);
    })
    .await;
    let (created, admin) = t.tenant("acme").await;
    let tid = created.tenant_id.to_string();
    let ops = t
        .ok(
            &admin,
            "members.create_persona",
            json!({"handle":"ops","kind":"human","email":"ops@acme.example","roles":["tenant-admin"]}),
        )
        .await;
    let ops = t.sign_in(&tid, ops["id"].as_str().unwrap()).await;
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"ada","kind":"human","email":"ada@acme.example",
               "display_name":"Ada Lovelace","roles":["billing-viewer"]}),
    )
    .await;
    assert_eq!(status(&t, &admin).await["state"], "off");

    // Form is checked; a key tenantops may not describe verifies red, naming the permission.
    let bad = t
        .call(
            &admin,
            "byok.configure",
            json!({"provider":"aws","key":"arn:aws:kms:nowhere"}),
        )
        .await;
    assert!(
        matches!(bad, Err(Error::BadInput { ref field, .. }) if field == "key"),
        "{bad:?}"
    );
    let denied = moto.create_key().await;
    moto.deny(&denied, "kms:DescribeKey").await;
    t.ok(
        &admin,
        "byok.configure",
        json!({"provider":"aws","key": denied.id}),
    )
    .await;
    let red = t.ok(&admin, "byok.verify", json!({})).await;
    assert_eq!(red["ok"], false, "{red}");
    let describe = &red["checks"][0];
    assert_eq!(describe["check"], "describe");
    assert!(
        describe["error"]
            .as_str()
            .unwrap()
            .contains("kms:DescribeKey"),
        "{red}"
    );
    assert!(describe["fix"].as_str().unwrap().len() > 10, "{red}");
    assert_eq!(status(&t, &admin).await["state"], "pending_verify");

    // Green: BYOK activates, the re-wrap moves everything under the tenant's key.
    let key1 = moto.create_key().await;
    t.ok(
        &admin,
        "byok.configure",
        json!({"provider":"aws","key": key1.id}),
    )
    .await;
    let green = approve(
        &t,
        &ops,
        t.call(&admin, "byok.verify", json!({})).await.unwrap(),
    )
    .await;
    assert!(
        green["summary"].as_str().unwrap().contains("go dark"),
        "{green}"
    );
    let green = &green["result"];
    assert_eq!(green["ok"], true, "{green}");
    assert_eq!(green["state"], "rotating");
    let report = t.core.tick_rewrap().await.unwrap();
    assert!(report.rewrapped >= 4, "{report:?}");
    let s = status(&t, &admin).await;
    assert_eq!(s["state"], "active", "{s}");
    assert_eq!(s["rewrap"]["percent"], 100, "{s}");
    assert_eq!(s["data_keys"].as_array().unwrap().len(), 1, "{s}");
    assert!(
        s["data_keys"][0]["wrapped_by"]
            .as_str()
            .unwrap()
            .starts_with("aws:arn:aws:kms:"),
        "{s}"
    );
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"ada@acme.example".to_owned())
    );

    // Rotation needs a second person; new writes use the new key at once, old ones re-wrap.
    let key2 = moto.create_key().await;
    let pending = t
        .call(&admin, "byok.rotate", json!({"key": key2.id}))
        .await
        .unwrap();
    let rotated = approve(&t, &ops, pending).await;
    assert!(
        rotated["summary"]
            .as_str()
            .unwrap()
            .contains("records re-wrapped"),
        "{rotated}"
    );
    assert_eq!(rotated["result"]["state"], "rotating", "{rotated}");
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"bob","kind":"human","email":"bob@acme.example","roles":["billing-viewer"]}),
    )
    .await;
    let mid = status(&t, &admin).await;
    assert!(mid["rewrap"]["percent"].as_u64().unwrap() < 100, "{mid}");
    let all = emails(&t, &admin).await.unwrap();
    assert!(
        all.contains(&"ada@acme.example".to_owned())
            && all.contains(&"bob@acme.example".to_owned())
    );
    t.core.tick_rewrap().await.unwrap();
    let s = status(&t, &admin).await;
    assert_eq!(s["state"], "active", "{s}");
    assert_eq!(s["rewrap"]["percent"], 100, "{s}");
    assert_eq!(s["key"], key2.id.as_str());
    assert_eq!(s["data_keys"].as_array().unwrap().len(), 1, "{s}");

    // The key disabled upstream: reads fail clearly within the cache TTL; nothing is lost.
    up.disabled.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let dark = emails(&t, &admin).await.unwrap_err();
    let msg = dark.to_string();
    assert!(msg.contains("BYOK") && msg.contains("disabled"), "{msg}");
    assert_eq!(status(&t, &admin).await["state"], "unreachable");
    assert!(t.ok(&admin, "whoami", json!({})).await["handle"] == "admin");
    up.disabled.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"ada@acme.example".to_owned())
    );
    assert_eq!(status(&t, &admin).await["state"], "active");
    let audit = t
        .ok(&admin, "audit.list", json!({"op": "byok.unwrap"}))
        .await;
    assert!(audit.to_string().contains("failed"), "{audit}");

    // An export made now is sealed with the tenant's keys.
    let exported = approve(
        &t,
        &ops,
        t.call(
            &admin,
            "tenant.export_all",
            json!({"reason":"before the drill"}),
        )
        .await
        .unwrap(),
    )
    .await;
    let archive = std::path::PathBuf::from(exported["result"]["archive"].as_str().unwrap());
    let mut opened = Vec::new();
    t.core.open_export(&archive, &mut opened).await.unwrap();

    // Revocation: dark at once, and nothing personal is left in plaintext at rest.
    let revoked = approve(
        &t,
        &ops,
        t.call(&admin, "byok.revoke", json!({"reason":"drill"}))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        revoked["summary"].as_str().unwrap().contains("goes dark"),
        "{revoked}"
    );
    let dark = emails(&t, &admin).await.unwrap_err().to_string();
    assert!(dark.contains("BYOK is revoked"), "{dark}");
    assert_eq!(status(&t, &admin).await["healthy"], false);
    let shredded = t.core.open_export(&archive, &mut Vec::new()).await;
    assert!(
        shredded
            .unwrap_err()
            .to_string()
            .contains("BYOK is revoked"),
        "the archive opens only while the tenant's key does"
    );
    let sealed_archive = std::fs::read(&archive).unwrap();
    for secret in ["ada@acme.example", "Ada Lovelace"] {
        assert!(
            !sealed_archive
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
        );
    }
    if postgres().is_none() {
        let mut at_rest = Vec::new();
        for entry in std::fs::read_dir(t.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                at_rest.extend(std::fs::read(&path).unwrap());
            }
        }
        for secret in ["ada@acme.example", "Ada Lovelace", "bob@acme.example"] {
            assert!(
                !at_rest
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "`{secret}` is in plaintext in the database files"
            );
        }
    }

    // One person cannot undo the revocation: not with another key, not alone with verify.
    let other = moto.create_key().await;
    let swap = t
        .call(
            &admin,
            "byok.configure",
            json!({"provider":"aws","key": other.id}),
        )
        .await;
    assert!(matches!(swap, Err(Error::Conflict(_))), "{swap:?}");
    // The grant restored: verify, approved by a second person, brings the tenant back;
    // disable goes back to the platform key.
    let back = approve(
        &t,
        &ops,
        t.call(&admin, "byok.verify", json!({})).await.unwrap(),
    )
    .await;
    assert!(
        back["summary"]
            .as_str()
            .unwrap()
            .contains("restores access"),
        "{back}"
    );
    let back = &back["result"];
    assert_eq!(back["ok"], true, "{back}");
    t.core.tick_rewrap().await.unwrap();
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"bob@acme.example".to_owned())
    );
    let off = approve(
        &t,
        &ops,
        t.call(&admin, "byok.disable", json!({})).await.unwrap(),
    )
    .await;
    assert_eq!(off["result"]["state"], "off", "{off}");
    assert!(off["result"]["rewrapped"].as_u64().unwrap() >= 5, "{off}");
    let s = status(&t, &admin).await;
    assert_eq!(s["state"], "off");
    assert_eq!(s["data_keys"][0]["wrapped_by"], "platform", "{s}");
    drop(moto);
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"ada@acme.example".to_owned())
    );
}

#[tokio::test]
async fn byok_operations_stay_in_the_callers_tenant_and_need_their_scopes() {
    let t = Env::new().await;
    let (a, admin_a) = t.tenant("a").await;
    let (_b, admin_b) = t.tenant("b").await;
    t.ok(
        &admin_a,
        "byok.configure",
        json!({"provider":"gcp","key":"projects/a/locations/eu/keyRings/r/cryptoKeys/k"}),
    )
    .await;
    assert_eq!(status(&t, &admin_b).await["state"], "off");
    assert_eq!(status(&t, &admin_a).await["state"], "pending_verify");
    let viewer = t
        .ok(
            &admin_a,
            "members.create_persona",
            json!({"handle":"v","kind":"human","email":"v@a.example","roles":["billing-viewer"]}),
        )
        .await;
    let viewer = t
        .sign_in(&a.tenant_id.to_string(), viewer["id"].as_str().unwrap())
        .await;
    for op in [
        "byok.status",
        "byok.configure",
        "byok.rotate",
        "byok.revoke",
    ] {
        let out = t
            .call(&viewer, op, json!({"provider":"aws","key":"x"}))
            .await;
        assert!(
            matches!(
                out,
                Ok(Outcome::Denied { .. }) | Err(Error::BadInput { .. })
            ),
            "{op}: {out:?}"
        );
    }
    // Destructive ones never run on one person's word, not even an admin's.
    for op in ["byok.rotate", "byok.revoke", "byok.disable"] {
        let spec = tenantops_core::catalogue::find(op).unwrap();
        assert_eq!(spec.risk, tenantops_core::Risk::Destructive, "{op}");
    }
}

#[tokio::test]
async fn personal_data_of_a_call_waiting_for_approval_is_sealed_and_kept_out_of_the_ledger() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let tid = created.tenant_id.to_string();
    let ops = t
        .ok(
            &admin,
            "members.create_persona",
            json!({"handle":"ops","kind":"human","email":"ops@acme.example","roles":["tenant-admin"]}),
        )
        .await;
    let ops = t.sign_in(&tid, ops["id"].as_str().unwrap()).await;
    // A third person who may decide needs a second person: the call waits, with its email.
    let pending = t
        .call(
            &admin,
            "members.create_persona",
            json!({"handle":"grace","kind":"human","email":"grace@acme.example",
                   "display_name":"Grace Hopper","roles":["tenant-admin"]}),
        )
        .await
        .unwrap();
    let stored: Vec<(String,)> = fetch(
        t.core.store(),
        "SELECT input FROM approval_requests WHERE tenant_id = $1",
        &[Arg::Text(tid.clone())],
    )
    .await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].0.contains("grace@acme.example"),
        "{}",
        stored[0].0
    );
    assert!(!stored[0].0.contains("Grace Hopper"), "{}", stored[0].0);
    let done = approve(&t, &ops, pending).await;
    assert_eq!(done["result"]["email"], "grace@acme.example", "{done}");
    assert_eq!(done["result"]["display_name"], "Grace Hopper", "{done}");
    let ledger: Vec<(String,)> = fetch(
        t.core.store(),
        "SELECT body FROM audit_entries WHERE tenant_id = $1",
        &[Arg::Text(tid)],
    )
    .await;
    for (body,) in &ledger {
        assert!(
            !body.contains("grace@acme.example") && !body.contains("Grace Hopper"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_master_key_can_live_in_a_kms() {
    use tenantops_core::{Config, Core, MasterKeySource, Surface};
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    let keep = tempfile::tempdir().unwrap();
    let file = keep.path().join("master-key.kms");
    let source = MasterKeySource::Kms {
        key: key.clone(),
        file: file.clone(),
    };
    let t = Env::with(|c| {
        c.kms = moto.config();
        c.master_key = source.clone();
    })
    .await;
    let (created, _) = t.tenant("acme").await;
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains(&format!("aws:{}", key.id)), "{stored}");
    if postgres().is_some() {
        return;
    }
    // Reopened with the same KMS key, the same master key: the admin's API key still works.
    let db = t.dir.path().join("t.db");
    let mut again = Config::new(&db);
    again.kms = moto.config();
    again.master_key = source;
    let core = Core::open(again).await.unwrap();
    core.authenticate(&created.api_key, Surface::Cli)
        .await
        .unwrap();
    // Another KMS key cannot stand in for it: one clear line.
    let other = moto.create_key().await;
    let mut wrong = Config::new(&db);
    wrong.kms = moto.config();
    wrong.master_key = MasterKeySource::Kms { key: other, file };
    let Err(err) = Core::open(wrong).await else {
        panic!("opened with another KMS key")
    };
    let err = err.to_string();
    assert!(err.contains("is wrapped by aws:"), "{err}");
}

#[tokio::test]
async fn rotate_revoke_and_disable_never_run_on_one_persons_word() {
    let moto = Moto::start().await;
    let t = Env::with(|c| c.kms = moto.config()).await;
    let (created, admin) = t.tenant("acme").await;
    let tid = created.tenant_id.to_string();
    let ops = t
        .ok(
            &admin,
            "members.create_persona",
            json!({"handle":"ops","kind":"human","email":"ops@acme.example","roles":["tenant-admin"]}),
        )
        .await;
    let ops = t.sign_in(&tid, ops["id"].as_str().unwrap()).await;
    let (_, agent_key) = t
        .persona_with_key(
            &admin,
            "bot",
            "agent",
            &["tenant-admin"],
            &["byok:write", "byok:read", "approvals:decide"],
        )
        .await;
    let agent = t.auth(&agent_key).await.unwrap();
    let key = moto.create_key().await;
    t.ok(
        &admin,
        "byok.configure",
        json!({"provider":"aws","key": key.id}),
    )
    .await;
    let green = approve(
        &t,
        &ops,
        t.call(&admin, "byok.verify", json!({})).await.unwrap(),
    )
    .await;
    assert_eq!(green["result"]["ok"], true);
    t.core.tick_rewrap().await.unwrap();
    let second = moto.create_key().await;
    for (op, input) in [
        ("byok.rotate", json!({"key": second.id})),
        ("byok.disable", json!({})),
    ] {
        for requester in [&admin, &agent] {
            let Outcome::PendingApproval { request_id, .. } =
                t.call(requester, op, input.clone()).await.unwrap()
            else {
                panic!("{op} ran on one person's word")
            };
            // Neither the requester nor an agent decides; the request stays pending.
            for decider in [requester, &agent] {
                let decided = t
                    .call(
                        decider,
                        "approvals.decide",
                        json!({"request_id": request_id, "decision": "approve"}),
                    )
                    .await;
                assert!(
                    !matches!(&decided, Ok(Outcome::Done { output }) if output["request"]["state"] == "succeeded"),
                    "{op}: {decided:?}"
                );
            }
            let state = t
                .ok(&admin, "approvals.get", json!({"request_id": request_id}))
                .await;
            assert_eq!(state["state"], "pending", "{op}: {state}");
            t.ok(
                requester,
                "approvals.withdraw",
                json!({"request_id": request_id}),
            )
            .await;
        }
    }
    assert_eq!(status(&t, &admin).await["state"], "active");
    let revoke = t.call(&admin, "byok.revoke", json!({})).await.unwrap();
    assert!(
        matches!(revoke, Outcome::PendingApproval { .. }),
        "{revoke:?}"
    );
    assert_eq!(status(&t, &admin).await["state"], "active");
    approve(&t, &ops, revoke).await;
    assert_eq!(status(&t, &admin).await["state"], "revoked");
}

#[tokio::test]
async fn what_an_older_version_stored_in_plaintext_is_sealed_by_the_upgrade_pass() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let tid = created.tenant_id.to_string();
    // As an older version wrote it: plaintext columns, no sealed ones.
    exec(
        t.core.store(),
        "INSERT INTO personas (tenant_id, id, handle, kind, display_name, email, invite_state, \
         status, created_at) VALUES ($1, 'ps_0123456789abcdef0123456789abcdef', 'old', 'human', \
         'Old Timer', 'old@acme.example', 'invited', 'active', 0)",
        &[Arg::Text(tid.clone())],
    )
    .await;
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"old@acme.example".to_owned())
    );
    let report = t.core.tick_rewrap().await.unwrap();
    assert!(report.rewrapped >= 1, "{report:?}");
    type Row = (Option<String>, Option<String>, Option<Vec<u8>>);
    let rows: Vec<Row> = fetch(
        t.core.store(),
        "SELECT email, display_name, email_sealed FROM personas WHERE tenant_id = $1 AND handle = 'old'",
        &[Arg::Text(tid)],
    )
    .await;
    assert_eq!(rows[0].0, None);
    assert_eq!(rows[0].1, None);
    assert!(rows[0].2.as_ref().unwrap().starts_with(b"S2"));
    assert!(
        emails(&t, &admin)
            .await
            .unwrap()
            .contains(&"old@acme.example".to_owned())
    );
    assert_eq!(t.core.tick_rewrap().await.unwrap().rewrapped, 0, "once");
}
