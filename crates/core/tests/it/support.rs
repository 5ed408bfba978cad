//! Shared fixtures: a core on a temporary database with a manual clock and JWT verification.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tenantops_core::clock::ManualClock;
use tenantops_core::jwt::JwtConfig;
use tenantops_core::notify::RecordingNotifier;
use tenantops_core::secrets::MasterKey;
use tenantops_core::{
    Config, Core, Error, MasterKeySource, Outcome, Principal, Surface, TenantCreated,
};

pub const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123";
pub const ISSUER: &str = "https://console.projex.test";
pub const AUDIENCE: &str = "tenantops";

pub struct Env {
    pub core: Core,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub notes: RecordingNotifier,
}

impl Env {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A core whose configuration `tune` adjusts first.
    pub async fn with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap());
        let mut config = Config::new(dir.path().join("t.db"));
        config.master_key = MasterKeySource::Key(MasterKey::generate());
        config.clock = Arc::new(clock.clone());
        config.jwt = Some(JwtConfig::new("HS256", JWT_SECRET, ISSUER, AUDIENCE).unwrap());
        let notes = RecordingNotifier::default();
        config.notifiers = vec![Arc::new(notes.clone())];
        tune(&mut config);
        let core = Core::open(config).await.unwrap();
        Self {
            core,
            clock,
            dir,
            notes,
        }
    }

    /// A new tenant and its admin principal.
    pub async fn tenant(&self, name: &str) -> (TenantCreated, Principal) {
        let created = self
            .core
            .create_tenant(name, Some("admin@example.com"))
            .await
            .unwrap();
        let p = self.auth(&created.api_key).await.unwrap();
        (created, p)
    }

    pub async fn auth(&self, credential: &str) -> Result<Principal, Error> {
        self.core.authenticate(credential, Surface::Cli).await
    }

    pub async fn call(&self, p: &Principal, op: &str, input: Value) -> Result<Outcome, Error> {
        self.core.call(p, op, input).await
    }

    /// Calls and expects `done`; returns the output.
    pub async fn ok(&self, p: &Principal, op: &str, input: Value) -> Value {
        match self.core.call(p, op, input.clone()).await {
            Ok(Outcome::Done { output }) => output,
            other => panic!("{op} {input}: expected done, got {other:?}"),
        }
    }

    /// Creates a persona with roles and a key carrying `scopes`; returns (persona id, secret).
    pub async fn persona_with_key(
        &self,
        admin: &Principal,
        handle: &str,
        kind: &str,
        roles: &[&str],
        scopes: &[&str],
    ) -> (String, String) {
        let mut input = json!({ "handle": handle, "kind": kind, "roles": roles });
        if kind == "human" {
            input["email"] = json!(format!("{handle}@example.com"));
        }
        let persona = self.ok(admin, "members.create_persona", input).await;
        let key = self
            .ok(
                admin,
                "keys.issue",
                json!({ "persona": handle, "scopes": scopes }),
            )
            .await;
        (
            persona["id"].as_str().unwrap().to_owned(),
            key["api_key"].as_str().unwrap().to_owned(),
        )
    }
}

impl Env {
    /// A console (SSO) token for a persona, as ProjexCloud's identity provider would mint it.
    pub fn jwt(&self, tenant: &str, persona: &str) -> String {
        use tenantops_core::clock::Clock;
        let claims = json!({
            "sub": persona, "tenant_id": tenant, "iss": ISSUER, "aud": AUDIENCE,
            "exp": self.clock.now().timestamp() + 30 * 86400,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
        )
        .unwrap()
    }

    /// Signs a persona in through the console: the credential decisions require.
    pub async fn sign_in(&self, tenant: &str, persona: &str) -> Principal {
        self.auth(&self.jwt(tenant, persona)).await.unwrap()
    }
}

pub fn unauthenticated(r: Result<Principal, Error>) -> String {
    match r {
        Err(Error::Unauthenticated(reason)) => reason,
        other => panic!("expected unauthenticated, got {other:?}"),
    }
}
