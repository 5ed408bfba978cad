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
    /// People known to decide approvals, by tenant: (tenant id, persona id). Fixtures that grow
    /// the set of deciders past two ask one of them for the second person's approval.
    deciders: std::sync::Mutex<Vec<(String, String)>>,
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
            deciders: Default::default(),
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
        self.deciders.lock().unwrap().push((
            created.tenant_id.to_string(),
            created.persona_id.to_string(),
        ));
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
            Ok(Outcome::Done { output }) => {
                self.note_decider(p, op, &output);
                output
            }
            other => panic!("{op} {input}: expected done, got {other:?}"),
        }
    }

    /// Remembers a new human who may decide, for [`Env::ok_approved`].
    fn note_decider(&self, p: &Principal, op: &str, output: &Value) {
        let deciding = output["roles"].as_array().is_some_and(|roles| {
            roles.iter().any(|r| {
                ["tenant-admin", "finance-approver", "security-admin"]
                    .contains(&r.as_str().unwrap_or_default())
            })
        });
        if op == "members.create_persona" && output["kind"] == "human" && deciding {
            self.deciders.lock().unwrap().push((
                p.tenant().to_string(),
                output["id"].as_str().unwrap().to_owned(),
            ));
        }
    }

    /// Calls and expects `done`; a call that waits for a second person (growing the set of
    /// deciders) is approved by another known decider of the tenant, signed in with their own
    /// console token. Returns the output.
    pub async fn ok_approved(&self, p: &Principal, op: &str, input: Value) -> Value {
        match self.core.call(p, op, input.clone()).await {
            Ok(Outcome::Done { output }) => {
                self.note_decider(p, op, &output);
                output
            }
            Ok(Outcome::PendingApproval { request_id, .. }) => {
                let tenant = p.tenant().to_string();
                let second = self
                    .deciders
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(t, d)| *t == tenant && *d != p.persona().to_string())
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| panic!("{op}: no second decider known for {tenant}"));
                let second = self.sign_in(&tenant, &second).await;
                let decided = self
                    .ok(
                        &second,
                        "approvals.decide",
                        json!({"request_id": request_id, "decision": "approve",
                               "comment": "second person for the fixture"}),
                    )
                    .await;
                assert_eq!(decided["request"]["state"], "succeeded", "{decided}");
                let output = decided["request"]["result"].clone();
                self.note_decider(p, op, &output);
                output
            }
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
        let persona = self
            .ok_approved(admin, "members.create_persona", input)
            .await;

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
