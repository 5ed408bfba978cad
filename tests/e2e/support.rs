//! Drives the built `tenantops` binary as a user's shell would: each [`Sandbox`] is a fresh temp
//! directory (the working directory of every run) and a database of its own; every run gets an
//! environment with no `TENANTOPS_*` (or `RUST_LOG`) variable except those the test sets, and its
//! exit code, stdout (parsed as JSON when it is JSON) and stderr are captured. Every run is also
//! kept in a transcript, so a test can scan everything the binary ever printed.
//!
//! The database's engine comes from the environment of the tests: with `TENANTOPS_TEST_POSTGRES`
//! set (an admin URL of a PostgreSQL server, as `.ci/pg start` prints it) each sandbox creates a
//! PostgreSQL database of its own (dropped with the sandbox) and its runs use it, with the master
//! key in `<dir>/t.db.master-key` (`TENANTOPS_MASTER_KEY_FILE`); without it, the SQLite file
//! `<dir>/t.db`.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The binary under test, built by cargo before the tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_tenantops");

/// The repository root (for files the tests run as written: deploy snippets, scripts).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The length of an API key: `tops_` + 32 random + 6 checksum characters.
pub const KEY_LEN: usize = 43;

/// One finished run of the binary.
#[derive(Clone, Debug)]
pub struct Run {
    /// What was run (for failure messages).
    pub cmdline: String,
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
    /// Stdout parsed as one JSON document, when it is one.
    pub json: Option<Value>,
}

impl Run {
    /// Asserts the exit code, printing everything the run said when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Stdout as JSON; panics (with the run's output) when stdout is not exactly one JSON
    /// document.
    #[track_caller]
    pub fn json(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| {
            panic!(
                "`{}` did not print one JSON document on stdout\n--- stdout\n{}\n--- stderr\n{}",
                self.cmdline, self.stdout, self.stderr
            )
        })
    }

    /// `json()["status"]` as a string.
    #[track_caller]
    pub fn status(&self) -> &str {
        self.json()["status"]
            .as_str()
            .unwrap_or_else(|| panic!("`{}`: no string `status` in {}", self.cmdline, self.json()))
    }

    /// Asserts `{"status":"done","output":...}` with exit 0 and returns the output.
    #[track_caller]
    pub fn done(&self) -> &Value {
        self.code(0);
        assert_eq!(self.status(), "done", "`{}`: {}", self.cmdline, self.stdout);
        let out = &self.json()["output"];
        assert!(!out.is_null(), "`{}`: done without output", self.cmdline);
        out
    }

    /// Asserts `{"status":"denied","reason":...}` with exit 3 and returns the reason.
    #[track_caller]
    pub fn denied(&self) -> &str {
        self.code(3);
        assert_eq!(
            self.status(),
            "denied",
            "`{}`: {}",
            self.cmdline,
            self.stdout
        );
        let reason = self.json()["reason"].as_str().unwrap_or_else(|| {
            panic!(
                "`{}`: denied without a reason: {}",
                self.cmdline, self.stdout
            )
        });
        assert!(
            !reason.trim().is_empty(),
            "`{}`: empty reason",
            self.cmdline
        );
        reason
    }

    /// Asserts `{"status":"error","kind":KIND,"message":...}` with exit `code` and returns the
    /// whole object.
    #[track_caller]
    pub fn error(&self, code: i32, kind: &str) -> &Value {
        self.code(code);
        let v = self.json();
        assert_eq!(self.status(), "error", "`{}`: {v}", self.cmdline);
        assert_eq!(v["kind"], kind, "`{}`: {v}", self.cmdline);
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            !message.trim().is_empty(),
            "`{}`: error without a message: {v}",
            self.cmdline
        );
        v
    }
}

/// A tenant as `tenant create` hands it back.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub tenant_id: String,
    pub persona_id: String,
    pub api_key: String,
}

/// The console's JWT secret in every sandbox: tests sign people in the way ProjexCloud's
/// identity provider would.
pub const JWT_SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123456789";
/// The console's issuer.
pub const JWT_ISSUER: &str = "https://console.projex.test";

/// A console token for a persona, as the identity provider would mint it: the person's own
/// sign-in, the proof decisions and link codes need.
pub fn console_token(tenant: &str, persona: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = json!({
        "sub": persona, "tenant_id": tenant, "exp": exp, "iss": JWT_ISSUER, "aud": "tenantops",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The environment that makes `tenantops` accept console tokens.
pub const JWT_ENV: [(&str, &str); 4] = [
    ("TENANTOPS_JWT_ALGORITHM", "HS256"),
    ("TENANTOPS_JWT_SECRET", JWT_SECRET),
    ("TENANTOPS_JWT_ISSUER", JWT_ISSUER),
    ("TENANTOPS_JWT_AUDIENCE", "tenantops"),
];

/// A person of a tenant: persona id and their own console sign-in.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub token: String,
}

/// A temp directory, a database, and the environment every run gets.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The sandbox's PostgreSQL database, when the tests run on PostgreSQL.
    pg: Option<PgDatabase>,
    vars: Vec<(String, String)>,
    transcript: Mutex<Vec<Run>>,
    /// Credentials of people who may decide, by tenant: (tenant id, credential).
    deciders: Mutex<Vec<(String, String)>>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temp dir"),
            pg: postgres().map(|admin| PgDatabase::create(&admin)),
            vars: JWT_ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            transcript: Mutex::new(Vec::new()),
            deciders: Mutex::new(Vec::new()),
        }
    }

    /// Sets an environment variable for every run of this sandbox.
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// The temp directory (every run's working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What `--db` / `TENANTOPS_DB` names for this sandbox's database: the SQLite file
    /// `<dir>/t.db`, or the URL of its PostgreSQL database.
    pub fn db(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.db_file().to_str().expect("utf-8 temp path").to_owned(),
        }
    }

    /// The SQLite file `<dir>/t.db` (the sandbox's database on SQLite; on PostgreSQL no run
    /// creates it).
    pub fn db_file(&self) -> PathBuf {
        self.dir().join("t.db")
    }

    /// Whether this sandbox's database is on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The environment every process that opens the sandbox's database needs besides `--db`:
    /// on PostgreSQL the master key file (`<dir>/t.db.master-key`, where SQLite keeps it).
    pub fn db_env(&self) -> Vec<(&'static str, String)> {
        match &self.pg {
            Some(_) => {
                let key = self.dir().join("t.db.master-key");
                vec![(
                    "TENANTOPS_MASTER_KEY_FILE",
                    key.to_str().expect("utf-8 temp path").to_owned(),
                )]
            }
            None => Vec::new(),
        }
    }

    /// Every run so far, in order.
    pub fn transcript(&self) -> Vec<Run> {
        self.transcript.lock().unwrap().clone()
    }

    /// Runs `tenantops --db <sandbox db> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs `tenantops --db <sandbox db> ARGS...` with extra environment variables (and
    /// [`Sandbox::db_env`]).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let db = self.db();
        let mut full = vec!["--db", db.as_str()];
        full.extend_from_slice(args);
        let db_env = self.db_env();
        let mut all: Vec<(&str, &str)> = db_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(env);
        self.run_raw(&full, &all)
    }

    /// Runs `tenantops ARGS...` exactly as given (no `--db` added, no [`Sandbox::db_env`]: for
    /// runs on another database or none).
    pub fn run_raw(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .filter(|(k, _)| k.starts_with("TENANTOPS_") || k == "RUST_LOG")
        {
            cmd.env_remove(name);
        }
        // Colour codes would only get in the way of reading stderr.
        cmd.env("NO_COLOR", "1");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the tenantops binary");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_str::<Value>(&stdout).ok();
        let mut cmdline = String::from("tenantops");
        for a in args {
            cmdline.push(' ');
            cmdline.push_str(a);
        }
        for (k, _) in env {
            cmdline = format!("{k}=… {cmdline}");
        }
        let run = Run {
            cmdline,
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr,
            json,
        };
        self.transcript.lock().unwrap().push(run.clone());
        run
    }

    /// `tenant create --name NAME`, asserting the contract's shape.
    #[track_caller]
    pub fn create_tenant(&self, name: &str) -> Tenant {
        let run = self.run(&["tenant", "create", "--name", name]);
        run.code(0);
        let t = tenant_from(run.json());
        self.deciders
            .lock()
            .unwrap()
            .push((t.tenant_id.clone(), t.api_key.clone()));
        t
    }

    /// Creates a human persona with `roles` and returns it with its own console sign-in. When
    /// the creation changes who may decide (the two-person rule guards the set of deciders),
    /// another decider created earlier in this sandbox approves it.
    #[track_caller]
    pub fn person(&self, admin: &str, tenant: &str, handle: &str, roles: &[&str]) -> Person {
        let input = json!({"handle": handle, "kind": "human",
                           "email": format!("{handle}@acme.example"), "roles": roles});
        let created = self.call_approved(admin, tenant, "members.create_persona", input);
        let id = created["id"].as_str().unwrap().to_owned();
        let token = console_token(tenant, &id);
        let deciding = roles
            .iter()
            .any(|r| ["tenant-admin", "finance-approver", "security-admin"].contains(r));
        if deciding {
            self.deciders
                .lock()
                .unwrap()
                .push((tenant.to_owned(), token.clone()));
        }
        Person { id, token }
    }

    /// `call`, and when it waits for a second person, another decider of `tenant` known to
    /// this sandbox approves it; returns the output.
    #[track_caller]
    pub fn call_approved(&self, key: &str, tenant: &str, op: &str, input: Value) -> Value {
        let run = self.call(key, op, input);
        if run.status() != "pending_approval" {
            return run.done().clone();
        }
        let id = run.json()["request_id"].as_str().unwrap().to_owned();
        let second = self
            .deciders
            .lock()
            .unwrap()
            .iter()
            .find(|(t, c)| t == tenant && c != key)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{op} waits for a second person and none is known"));
        let out = self.call_ok(
            &second,
            "approvals.decide",
            json!({"request_id": id, "decision": "approve", "comment": "second person"}),
        );
        assert_eq!(out["request"]["state"], "succeeded", "{out}");
        out["request"]["result"].clone()
    }

    /// A key `person` issues for themselves from their own sign-in: their own proof, which
    /// decides approvals.
    #[track_caller]
    pub fn own_key(&self, person: &Person, scopes: &[&str]) -> String {
        api_key_of(&self.call_ok(
            &person.token,
            "keys.issue",
            json!({"persona": person.id, "scopes": scopes, "expires_in": "1d"}),
        ))
    }

    /// Lets new chat links decide at once (a tenant's default is 24 h), while the tenant still
    /// has a single decider (later, shortening it needs a second person).
    #[track_caller]
    pub fn links_decide_at_once(&self, admin: &str) {
        self.call_ok(
            admin,
            "approvals.update_settings",
            json!({"chat_link_min_age": "0s"}),
        );
    }

    /// `call OP --input INPUT` with `key` in `TENANTOPS_API_KEY`.
    pub fn call(&self, key: &str, op: &str, input: Value) -> Run {
        let input = input.to_string();
        self.run_env(
            &["call", op, "--input", &input],
            &[("TENANTOPS_API_KEY", key)],
        )
    }

    /// `call`, asserting `done`; returns the output.
    #[track_caller]
    pub fn call_ok(&self, key: &str, op: &str, input: Value) -> Value {
        self.call(key, op, input).done().clone()
    }

    /// Creates a service persona with `roles` (and optionally a BU) and issues it a key with
    /// `scopes`; returns the key.
    #[track_caller]
    pub fn service_key(
        &self,
        admin: &str,
        handle: &str,
        roles: &[&str],
        scopes: &[&str],
    ) -> String {
        self.call_ok(
            admin,
            "members.create_persona",
            json!({ "handle": handle, "kind": "service", "roles": roles }),
        );
        let issued = self.call_ok(
            admin,
            "keys.issue",
            json!({ "persona": handle, "scopes": scopes, "expires_in": "1d" }),
        );
        api_key_of(&issued)
    }
}

/// Checks the `tenant create` shape and extracts it.
#[track_caller]
pub fn tenant_from(v: &Value) -> Tenant {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("tenant create printed {v}, not an object"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["api_key", "persona_id", "tenant_id"],
        "tenant create must print exactly tenant_id, persona_id, api_key: {v}"
    );
    let field = |k: &str| {
        obj[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("`{k}` is not a non-empty string in {v}"))
            .to_owned()
    };
    let tenant = Tenant {
        tenant_id: field("tenant_id"),
        persona_id: field("persona_id"),
        api_key: field("api_key"),
    };
    assert_key_shape(&tenant.api_key);
    tenant
}

/// Asserts the API-key format: `tops_` prefix, 43 characters, base62 after the prefix.
#[track_caller]
pub fn assert_key_shape(key: &str) {
    assert!(
        key.starts_with("tops_"),
        "API key `{key}` lacks the tops_ prefix"
    );
    assert_eq!(
        key.len(),
        KEY_LEN,
        "API key `{key}` is not {KEY_LEN} characters"
    );
    assert!(
        key[5..].bytes().all(|b| b.is_ascii_alphanumeric()),
        "API key `{key}` has characters outside [A-Za-z0-9]"
    );
}

/// The `api_key` of a `keys.issue` / `keys.rotate` output, shape-checked.
#[track_caller]
pub fn api_key_of(output: &Value) -> String {
    let key = output["api_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no api_key in {output}"))
        .to_owned();
    assert_key_shape(&key);
    key
}

/// `key` with one character of its random part changed (a typo).
pub fn mistype(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let i = 12;
    bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
    String::from_utf8(bytes).expect("ascii key")
}

/// Every string under a key named `api_key`, anywhere in `v`.
pub fn api_keys_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "api_key"
                    && let Some(s) = child.as_str()
                {
                    out.push(s.to_owned());
                }
                api_keys_in(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| api_keys_in(c, out)),
        _ => {}
    }
}

/// Whether `haystack` contains `needle` as bytes.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// One raw HTTP/1.1 request over a TCP socket (`Connection: close`), the way a client that
/// controls every header does; returns the status and the whole response (head and body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the server");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    (status, text)
}

/// The body of a raw response from [`http`].
pub fn body_of(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// The PostgreSQL server the tests run on (`TENANTOPS_TEST_POSTGRES`, an admin URL), or `None`
/// when they run on SQLite.
pub fn postgres() -> Option<String> {
    std::env::var("TENANTOPS_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Runs `f` to completion on a thread and runtime of its own (callers may be inside a runtime).
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f)
    })
    .join()
    .expect("the database thread panicked")
}

/// A fresh database on the test server, dropped (with any connection left to it) when this
/// value is.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates `t_<unique hex>` through the admin URL.
    fn create(admin: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "t_{:x}_{:x}_{:x}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (a, n) = (admin.to_owned(), name.clone());
        block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&a)
                .await
                .unwrap_or_else(|e| panic!("connect to TENANTOPS_TEST_POSTGRES: {e}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("create the test database {n}: {e}"));
            let _ = conn.close().await;
        });
        Self {
            url: database_url(admin, &name),
            admin: admin.to_owned(),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(async move {
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

/// `admin` (`postgres://USER@HOST:PORT/DB?…`) with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").expect("TENANTOPS_TEST_POSTGRES is a URL") + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A value bound to a statement of [`Sandbox::exec`] or [`Sandbox::fetch`].
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
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Self {
        Self::Bytes(v.clone())
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
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

/// A direct connection to a sandbox's database, as someone with access to it (not tenantops)
/// would open it.
enum Direct {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Direct {
    async fn open(db: &str, postgres: bool) -> Self {
        use sqlx::Connection;
        if postgres {
            Self::Postgres(
                sqlx::PgConnection::connect(db)
                    .await
                    .expect("connect to the sandbox database"),
            )
        } else {
            // Never creating it: the file must be the one tenantops made.
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .create_if_missing(false);
            Self::Sqlite(
                sqlx::SqliteConnection::connect_with(&opts)
                    .await
                    .expect("open the database file"),
            )
        }
    }

    async fn close(self) {
        use sqlx::Connection;
        let _ = match self {
            Self::Sqlite(c) => c.close().await,
            Self::Postgres(c) => c.close().await,
        };
    }
}

impl Sandbox {
    /// Runs one statement on the sandbox's database behind tenantops' back (placeholders `$1`,
    /// `$2`…, which both engines accept); returns the rows it changed.
    #[track_caller]
    pub fn exec(&self, sql: &str, args: &[Arg]) -> u64 {
        let (db, pg, sql, args) = (self.db(), self.on_postgres(), sql.to_owned(), args.to_vec());
        block_on(async move {
            let mut conn = Direct::open(&db, pg).await;
            let q = || sqlx::AssertSqlSafe(sql.clone());
            let n = match &mut conn {
                Direct::Sqlite(c) => bind_all!(sqlx::query(q()), &args)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected()),
                Direct::Postgres(c) => bind_all!(sqlx::query(q()), &args)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected()),
            }
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.close().await;
            n
        })
    }

    /// Reads rows (as tuples) from the sandbox's database behind tenantops' back.
    #[track_caller]
    pub fn fetch<T>(&self, sql: &str, args: &[Arg]) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin
            + 'static,
    {
        let (db, pg, sql, args) = (self.db(), self.on_postgres(), sql.to_owned(), args.to_vec());
        block_on(async move {
            let mut conn = Direct::open(&db, pg).await;
            let q = || sqlx::AssertSqlSafe(sql.clone());
            let rows = match &mut conn {
                Direct::Sqlite(c) => {
                    bind_all!(sqlx::query_as::<_, T>(q()), &args)
                        .fetch_all(&mut *c)
                        .await
                }
                Direct::Postgres(c) => {
                    bind_all!(sqlx::query_as::<_, T>(q()), &args)
                        .fetch_all(&mut *c)
                        .await
                }
            }
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.close().await;
            rows
        })
    }

    /// Everything the sandbox's database holds, as bytes to search for what must never be
    /// stored: on SQLite the database file and its `-wal` / `-shm` files; on PostgreSQL every
    /// row of every table in its text form, and the raw bytes of every `bytea` value.
    pub fn db_contents(&self) -> Vec<(String, Vec<u8>)> {
        if !self.on_postgres() {
            let db = self.db();
            return ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| {
                    let p = format!("{db}{suffix}");
                    std::fs::read(&p).ok().map(|b| (p, b))
                })
                .collect();
        }
        let tables: Vec<(String, String)> = self.fetch(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position",
            &[],
        );
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (table, _) in &tables {
            if seen.insert(table.clone()) {
                let rows: Vec<(String,)> =
                    self.fetch(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"), &[]);
                let text: String = rows.into_iter().map(|(r,)| r + "\n").collect();
                out.push((format!("table {table}"), text.into_bytes()));
            }
        }
        let binary: Vec<(String, String)> = self.fetch(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND data_type = 'bytea'",
            &[],
        );
        for (table, column) in binary {
            let values: Vec<(Option<Vec<u8>>,)> =
                self.fetch(&format!("SELECT \"{column}\" FROM \"{table}\""), &[]);
            let bytes: Vec<u8> = values
                .into_iter()
                .flat_map(|(v,)| v.unwrap_or_default())
                .collect();
            out.push((format!("{table}.{column}"), bytes));
        }
        out
    }

    /// Whether nothing has opened the sandbox's database yet: no SQLite file, or a PostgreSQL
    /// database without any table (opening one applies the migrations).
    pub fn db_untouched(&self) -> bool {
        if !self.on_postgres() {
            return !self.db_file().exists();
        }
        let tables: Vec<(i64,)> = self.fetch(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        );
        tables[0].0 == 0
    }
}
