//! [`Moto`]: a real `moto_server` (AWS KMS emulator) on a free 127.0.0.1 port.

use crate::kms::aws::Signer;
use crate::kms::{KeyRef, KmsConfig, KmsError, Provider};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region the emulator's keys live in.
pub const MOTO_REGION: &str = "us-east-1";

/// A running `moto_server`, killed on drop.
///
/// Found through `TENANTOPS_TEST_MOTO`, else `.ci/.venv/bin/moto_server` of the workspace, else
/// `moto_server` on `PATH`; [`Moto::start`] panics (the test fails) when none is found, saying
/// to run `.ci/test-deps`.
///
/// moto's fidelity, as measured with moto 5.2.1: it still encrypts, decrypts and generates
/// data keys with a *disabled* key or a key *pending deletion* (real AWS answers
/// `DisabledException` / `KMSInvalidStateException`), and it evaluates key-policy `Deny`
/// statements only for `kms:DescribeKey`. `DescribeKey` reports both states faithfully.
pub struct Moto {
    child: Child,
    endpoint: String,
    config: KmsConfig,
    log: PathBuf,
}

/// Where the emulator binary is, or why it is not.
pub fn moto_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TENANTOPS_TEST_MOTO") {
        return Ok(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/.venv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "moto_server (the AWS KMS emulator) was not found at {} nor on PATH: run .ci/test-deps \
         (installs moto[server] into .ci/.venv), or set TENANTOPS_TEST_MOTO to its path",
        venv.display()
    ))
}

impl Moto {
    /// Starts the emulator and waits (up to 30 s) until it answers a signed `ListKeys`.
    pub async fn start() -> Moto {
        crate::kms::install_crypto_provider();
        let binary = moto_binary().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"));
        let log = std::env::temp_dir().join(format!("tenantops-moto-{port}.log"));
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let stderr = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run .ci/test-deps to install moto[server]",
                    binary.display()
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let config = KmsConfig::from_vars(|name| {
            match name {
                "AWS_ACCESS_KEY_ID" => Some("testing"),
                "AWS_SECRET_ACCESS_KEY" => Some("testing"),
                "AWS_REGION" => Some(MOTO_REGION),
                "AWS_ENDPOINT_URL_KMS" => Some(endpoint.as_str()),
                _ => None,
            }
            .map(str::to_owned)
        });
        let mut moto = Moto {
            child,
            endpoint,
            config,
            log,
        };
        moto.wait_ready().await;
        moto
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited ({status}) before answering; its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if self.call("ListKeys", json!({})).await.is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not answer on {} within 30 s; its log:\n{}",
                    self.endpoint,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The emulator's base URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A configuration whose AWS endpoint is the emulator (test credentials, us-east-1).
    pub fn config(&self) -> KmsConfig {
        self.config.clone()
    }

    /// The variables that point a process (e.g. the server binary) at the emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", MOTO_REGION.into()),
            ("AWS_ENDPOINT_URL_KMS", self.endpoint.clone()),
        ]
    }

    /// Calls `TrentService.{op}` on the emulator through the same signed JSON API as
    /// [`crate::kms::aws::AwsKms`].
    pub async fn call(&self, op: &str, body: Value) -> Result<Value, KmsError> {
        let signer = Signer::from_shared(self.config.shared(), MOTO_REGION)?;
        signer.call(&self.config.shared().http()?, op, &body).await
    }

    async fn must(&self, op: &str, body: Value) -> Value {
        self.call(op, body)
            .await
            .unwrap_or_else(|e| panic!("moto {op}: {e}"))
    }

    /// Creates a symmetric encryption key and returns its ARN as a key reference.
    pub async fn create_key(&self) -> KeyRef {
        let out = self
            .must(
                "CreateKey",
                json!({
                    "KeySpec": "SYMMETRIC_DEFAULT",
                    "KeyUsage": "ENCRYPT_DECRYPT",
                    "Description": "tenantops test key",
                }),
            )
            .await;
        let arn = out["KeyMetadata"]["Arn"]
            .as_str()
            .unwrap_or_else(|| panic!("moto CreateKey answered without an ARN: {out}"));
        KeyRef::parse(Provider::Aws, arn, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates `alias/NAME` for `key` and returns the alias ARN.
    pub async fn create_alias(&self, key: &KeyRef, name: &str) -> KeyRef {
        self.must(
            "CreateAlias",
            json!({ "AliasName": format!("alias/{name}"), "TargetKeyId": key.id }),
        )
        .await;
        let arn = key
            .id
            .rsplit_once(":key/")
            .map(|(prefix, _)| format!("{prefix}:alias/{name}"))
            .unwrap_or_else(|| panic!("{} is not a key ARN", key.id));
        KeyRef::parse(Provider::Aws, &arn, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Disables a key (moto still encrypts with it: see the type's documentation).
    pub async fn disable_key(&self, key: &KeyRef) {
        self.must("DisableKey", json!({ "KeyId": bare_id(key) }))
            .await;
    }

    /// Enables a key.
    pub async fn enable_key(&self, key: &KeyRef) {
        self.must("EnableKey", json!({ "KeyId": bare_id(key) }))
            .await;
    }

    /// Schedules a key's deletion in 7 days.
    pub async fn schedule_deletion(&self, key: &KeyRef) {
        self.must(
            "ScheduleKeyDeletion",
            json!({ "KeyId": bare_id(key), "PendingWindowInDays": 7 }),
        )
        .await;
    }

    /// Cancels a scheduled deletion (the key stays disabled).
    pub async fn cancel_deletion(&self, key: &KeyRef) {
        self.must("CancelKeyDeletion", json!({ "KeyId": bare_id(key) }))
            .await;
    }

    /// Replaces the key's `default` policy.
    pub async fn put_key_policy(&self, key: &KeyRef, policy: &Value) {
        self.must(
            "PutKeyPolicy",
            json!({ "KeyId": bare_id(key), "PolicyName": "default", "Policy": policy.to_string() }),
        )
        .await;
    }

    /// Sets a policy that allows everything but denies `action` (e.g. `kms:DescribeKey`, the
    /// only action moto 5.2 checks against Deny statements) to everyone.
    pub async fn deny(&self, key: &KeyRef, action: &str) {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Sid": "all", "Effect": "Allow", "Principal": { "AWS": "*" },
                  "Action": "kms:*", "Resource": "*" },
                { "Sid": "deny", "Effect": "Deny", "Principal": { "AWS": "*" },
                  "Action": [action], "Resource": "*" },
            ],
        });
        self.put_key_policy(key, &policy).await;
    }
}

/// The key id of a key ARN: moto 5.2.1's state-changing calls (DisableKey, EnableKey,
/// ScheduleKeyDeletion...) look keys up by bare id only and fail with HTTP 500 on an ARN.
fn bare_id(key: &KeyRef) -> &str {
    key.id
        .rsplit_once(":key/")
        .map_or(key.id.as_str(), |(_, id)| id)
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
