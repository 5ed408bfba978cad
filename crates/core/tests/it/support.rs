//! Shared fixtures: a core on a temporary database with a manual clock and JWT verification.
//!
//! The engine comes from the environment: with `TENANTOPS_TEST_POSTGRES` set (an admin URL of a
//! PostgreSQL server, as `.ci/pg start` prints it) every fixture creates a PostgreSQL database of
//! its own and drops it afterwards; without it, a SQLite file in the fixture's temp directory.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tenantops_core::clock::ManualClock;
use tenantops_core::jwt::JwtConfig;
use tenantops_core::notify::RecordingNotifier;
use tenantops_core::secrets::MasterKey;
use tenantops_core::store::{Location, Store};
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
    /// The PostgreSQL database of this fixture (dropped with it), when the tests run on one.
    _pg: Option<PgDatabase>,
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
        let pg = match postgres() {
            Some(admin) => Some(PgDatabase::create(&admin).await),
            None => None,
        };
        let mut config = match &pg {
            Some(db) => {
                let mut config = Config::at(Location::Postgres(db.url.clone()));
                config.export_dir = dir.path().join("exports");
                config
            }
            None => Config::new(dir.path().join("t.db")),
        };
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
            _pg: pg,
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

/// The PostgreSQL server the tests run on (`TENANTOPS_TEST_POSTGRES`, an admin URL), or `None`
/// when they run on SQLite.
pub fn postgres() -> Option<String> {
    std::env::var("TENANTOPS_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// A fresh database on the test server, dropped (with any connection left to it) when this
/// value is.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// Its URL, for `--db` / [`Location::Postgres`].
    pub url: String,
}

impl PgDatabase {
    /// Creates `t_<random hex>` through the admin URL.
    pub async fn create(admin: &str) -> Self {
        use sqlx::Connection;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("connect to TENANTOPS_TEST_POSTGRES: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        let _ = conn.close().await;
        let url = database_url(admin, &name);
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Runs on its own thread and runtime: a test's runtime may be the current thread.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `admin` with its database name replaced by `name` (query parameters kept).
fn database_url(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).expect("TENANTOPS_TEST_POSTGRES is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A value bound to a statement of [`exec`] or [`fetch`].
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(v.to_vec())
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}
impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Self {
        Self::Bytes(v.clone())
    }
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Int(v) => q.bind(*v),
                Arg::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// Runs one statement behind the core's back, on whichever engine the store runs (placeholders
/// `$1`, `$2`…, which both accept); returns the rows it changed.
pub async fn exec(store: &Store, sql: &str, args: &[Arg]) -> u64 {
    try_exec(store, sql, args)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// [`exec`], returning the database's refusal instead of panicking on it.
pub async fn try_exec(store: &Store, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
    let safe = || sqlx::AssertSqlSafe(sql.to_owned());
    if let Some(pool) = store.sqlite_pool() {
        bind_all!(sqlx::query(safe()), args)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    } else {
        let pool = store.pg_pool().expect("a SQLite or PostgreSQL store");
        bind_all!(sqlx::query(safe()), args)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    }
}

/// Reads rows behind the core's back (as tuples), on whichever engine the store runs.
pub async fn fetch<T>(store: &Store, sql: &str, args: &[Arg]) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    let safe = || sqlx::AssertSqlSafe(sql.to_owned());
    let rows = if let Some(pool) = store.sqlite_pool() {
        bind_all!(sqlx::query_as::<_, T>(safe()), args)
            .fetch_all(pool)
            .await
    } else {
        let pool = store.pg_pool().expect("a SQLite or PostgreSQL store");
        bind_all!(sqlx::query_as::<_, T>(safe()), args)
            .fetch_all(pool)
            .await
    };
    rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
}
