//! API-key and JWT lifecycle at the exact edges of time: grace windows, expiry, revocation.

use crate::support::*;
use chrono::Duration;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;
use tenantops_core::Outcome;

#[tokio::test]
async fn rotated_key_keeps_working_until_the_grace_window_ends_and_not_a_moment_longer() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, old) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let keys = t
        .ok(&admin, "keys.list", json!({ "persona": "ci-bot" }))
        .await;
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();

    let rotated = t.ok(&admin, "keys.rotate", json!({ "key": key_id })).await;
    let new = rotated["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    // Both work inside the default 10-minute window.
    t.clock
        .advance(Duration::minutes(10) - Duration::milliseconds(1));
    assert!(
        t.auth(&old).await.is_ok(),
        "old secret inside the grace window"
    );
    assert!(t.auth(&new).await.is_ok());

    // At the boundary the old one is refused; the new one goes on.
    t.clock.advance(Duration::milliseconds(1));
    let reason = unauthenticated(t.auth(&old).await);
    assert!(reason.contains("grace window has ended"), "{reason}");
    assert!(t.auth(&new).await.is_ok());
}

#[tokio::test]
async fn rotation_grace_is_configurable_per_call() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, old) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let keys = t.ok(&admin, "keys.list", json!({})).await;
    let name = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["persona"] == "ci-bot")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    t.ok(&admin, "keys.rotate", json!({ "key": name, "grace": "0s" }))
        .await;
    unauthenticated(t.auth(&old).await);
    let err = t
        .call(
            &admin,
            "keys.rotate",
            json!({ "key": name, "grace": "30 days" }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("grace"), "{err}");
}

#[tokio::test]
async fn revoked_key_is_refused_on_the_next_request_even_inside_a_grace_window() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, old) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let key = t
        .ok(&admin, "keys.list", json!({ "persona": "ci-bot" }))
        .await["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = t.ok(&admin, "keys.rotate", json!({ "key": key })).await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    t.ok(&admin, "keys.revoke", json!({ "key": key })).await;
    assert!(unauthenticated(t.auth(&new).await).contains("revoked"));
    assert!(unauthenticated(t.auth(&old).await).contains("revoked"));
    // The refusal is on the tenant's ledger.
    let log = t.ok(&admin, "audit.list", json!({ "op": "auth" })).await;
    assert_eq!(log["entries"][0]["outcome"], "denied");
}

#[tokio::test]
async fn key_expires_at_its_expiry_instant() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    t.ok(
        &admin,
        "members.create_persona",
        json!({"handle":"etl","kind":"service","roles":["auditor"]}),
    )
    .await;
    let key = t
        .ok(
            &admin,
            "keys.issue",
            json!({"persona":"etl","scopes":["audit:read"],"expires_in":"1h"}),
        )
        .await;
    let secret = key["api_key"].as_str().unwrap();
    t.clock
        .advance(Duration::hours(1) - Duration::milliseconds(1));
    assert!(t.auth(secret).await.is_ok());
    t.clock.advance(Duration::milliseconds(1));
    assert!(unauthenticated(t.auth(secret).await).contains("expired"));
}

#[tokio::test]
async fn mistyped_keys_are_rejected_by_checksum_before_any_lookup() {
    let t = Env::new().await;
    let (created, _) = t.tenant("acme").await;
    let mut typo = created.api_key.clone().into_bytes();
    typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
    let reason = unauthenticated(t.auth(std::str::from_utf8(&typo).unwrap()).await);
    assert!(reason.contains("checksum"), "{reason}");
    assert!(unauthenticated(t.auth("tops_short").await).contains("malformed"));
    assert!(unauthenticated(t.auth("hunter2").await).contains("unrecognised"));
}

#[tokio::test]
async fn revoking_a_persona_stops_every_key_it_holds_at_once() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, k1) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let k2 = t
        .ok(
            &admin,
            "keys.issue",
            json!({"persona":"ci-bot","scopes":["members:read"]}),
        )
        .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let bot = t.auth(&k1).await.unwrap();
    let mut events = t.core.subscribe();
    let out = t
        .ok(
            &admin,
            "members.revoke",
            json!({"persona":"ci-bot","reason":"on-call"}),
        )
        .await;
    assert_eq!(out["revoked_keys"].as_array().unwrap().len(), 2);
    assert!(matches!(
        events.try_recv(),
        Ok(tenantops_core::Event::PersonaRevoked { .. })
    ));
    for k in [&k1, &k2] {
        assert!(unauthenticated(t.auth(k).await).contains("persona has been revoked"));
    }
    // A principal authenticated before the revocation (a long-lived session) cannot act either.
    let err = t.call(&bot, "keys.list", json!({})).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
}

fn token(claims: serde_json::Value, alg: jsonwebtoken::Algorithm, secret: &[u8]) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn tenant_jwt_is_accepted_and_refused_once_its_persona_is_revoked_before_expiry() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let (jane, _) = t
        .persona_with_key(
            &admin,
            "jane",
            "human",
            &["billing-viewer"],
            &["billing:read"],
        )
        .await;
    let exp = t.clock.now_secs() + 3600;
    let claims = json!({
        "sub": jane, "tenant_id": created.tenant_id, "exp": exp,
        "iss": ISSUER, "aud": AUDIENCE,
    });
    let jwt = token(claims.clone(), jsonwebtoken::Algorithm::HS256, JWT_SECRET);
    let p = t.auth(&jwt).await.unwrap();
    assert!(p.has(tenantops_core::Scope::BILLING_READ));
    assert!(!p.has(tenantops_core::Scope::KEYS_WRITE));
    match t.call(&p, "keys.list", json!({})).await.unwrap() {
        Outcome::Denied { reason } => assert!(reason.contains("keys:read"), "{reason}"),
        other => panic!("{other:?}"),
    }

    t.ok(&admin, "members.revoke", json!({ "persona": "jane" }))
        .await;
    assert!(unauthenticated(t.auth(&jwt).await).contains("revoked"));

    // Pinned algorithm, issuer, audience and expiry.
    let other_alg = token(claims.clone(), jsonwebtoken::Algorithm::HS384, JWT_SECRET);
    unauthenticated(t.auth(&other_alg).await);
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.test");
    unauthenticated(
        t.auth(&token(
            wrong_iss,
            jsonwebtoken::Algorithm::HS256,
            JWT_SECRET,
        ))
        .await,
    );
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    unauthenticated(
        t.auth(&token(
            wrong_aud,
            jsonwebtoken::Algorithm::HS256,
            JWT_SECRET,
        ))
        .await,
    );
    let forged = token(
        claims.clone(),
        jsonwebtoken::Algorithm::HS256,
        b"another-secret-another-secret-0123456",
    );
    unauthenticated(t.auth(&forged).await);
}

#[tokio::test]
async fn jwt_expiry_follows_the_clock_and_unsigned_tokens_never_pass() {
    let t = Env::new().await;
    let (created, _) = t.tenant("acme").await;
    let exp = t.clock.now_secs() + 60;
    let claims = json!({
        "sub": created.persona_id, "tenant_id": created.tenant_id, "exp": exp,
        "iss": ISSUER, "aud": AUDIENCE, "scope": "members:read keys:write",
    });
    let jwt = token(claims.clone(), jsonwebtoken::Algorithm::HS256, JWT_SECRET);
    let p = t.auth(&jwt).await.unwrap();
    // The `scope` claim narrows the admin's role scopes.
    assert_eq!(p.scopes().len(), 2);
    t.clock.advance(Duration::seconds(66));
    assert!(unauthenticated(t.auth(&jwt).await).contains("expired"));

    // alg=none with no signature.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    unauthenticated(t.auth(&none).await);
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for tenantops_core::clock::ManualClock {
    fn now_secs(&self) -> i64 {
        use tenantops_core::clock::Clock;
        self.now().timestamp()
    }
}

#[tokio::test]
async fn an_open_session_ends_when_its_rotated_secret_leaves_the_grace_window() {
    let t = Env::new().await;
    let (_, admin) = t.tenant("acme").await;
    let (_, old) = t
        .persona_with_key(&admin, "ci-bot", "service", &["developer"], &["keys:read"])
        .await;
    let session = t.auth(&old).await.unwrap();
    t.ok(&admin, "keys.rotate", json!({"key": old, "grace": "5m"}))
        .await;
    assert!(t.call(&session, "keys.list", json!({})).await.is_ok());
    t.clock.advance(Duration::minutes(5));
    let err = t.call(&session, "keys.list", json!({})).await.unwrap_err();
    assert!(err.to_string().contains("grace window"), "{err}");
}

#[tokio::test]
async fn an_expired_but_validly_signed_jwt_is_refused_and_recorded() {
    let t = Env::new().await;
    let (created, admin) = t.tenant("acme").await;
    let claims = json!({
        "sub": created.persona_id, "tenant_id": created.tenant_id,
        "exp": t.clock.now_secs() - 3600, "iss": ISSUER, "aud": AUDIENCE,
    });
    let jwt = token(claims, jsonwebtoken::Algorithm::HS256, JWT_SECRET);
    assert!(unauthenticated(t.auth(&jwt).await).contains("expired"));
    let log = t
        .ok(&admin, "audit.list", json!({"op":"auth","limit":1}))
        .await;
    assert_eq!(log["entries"][0]["detail"]["reason"], "JWT expired");
    assert_eq!(log["entries"][0]["actor"]["via"], "jwt");
}
