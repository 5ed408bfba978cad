//! `AzureFake`: the Microsoft Entra ID token endpoint and a Key Vault's keys API, in process.

use super::{bearer, fake_decrypt, fake_encrypt, form, random_key, serve};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

const TENANT: &str = "00000000-0000-0000-0000-00000000f00d";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT_SECRET: &str = "fake-azure-client-secret";
const TOKEN: &str = "fake-azure-access-token";

/// An in-process Azure: `POST /{tenant}/oauth2/v2.0/token` (client credentials) and a vault
/// at the same base URL (`/keys/NAME[/VERSION][/wrapkey|/unwrapkey]?api-version=7.4`) whose
/// keys have versions, an enabled flag and per-key denied operations.
pub struct AzureFake {
    endpoint: String,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct FakeState {
    endpoint: String,
    keys: HashMap<String, FakeKey>,
    token_requests: u32,
}

struct FakeKey {
    versions: Vec<(String, [u8; 32])>,
    enabled: bool,
    denied: HashSet<String>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_version() -> String {
    hex::encode(&random_key()[..16])
}

fn vault_error(status: StatusCode, code: &str, message: String, inner: Option<&str>) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

impl AzureFake {
    /// Starts the fake on a free 127.0.0.1 port.
    pub async fn start() -> AzureFake {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/keys/{*rest}", get(vault).post(vault))
            .with_state(state.clone());
        let (endpoint, task) = serve(router).await;
        lock(&state).endpoint = endpoint.clone();
        AzureFake {
            endpoint,
            state,
            task,
        }
    }

    /// The authority host and vault base URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The tenant the token endpoint accepts.
    pub fn tenant_id(&self) -> &'static str {
        TENANT
    }

    /// The client id the token endpoint accepts.
    pub fn client_id(&self) -> &'static str {
        CLIENT_ID
    }

    /// The client secret the token endpoint accepts.
    pub fn client_secret(&self) -> &'static str {
        CLIENT_SECRET
    }

    /// The variables that point a process at this fake (loopback URLs allowed).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", TENANT.into()),
            ("AZURE_CLIENT_ID", CLIENT_ID.into()),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("TENANTOPS_AZURE_AUTHORITY_HOST", self.endpoint.clone()),
            ("TENANTOPS_ALLOW_LOOPBACK_URLS", "true".into()),
        ]
    }

    /// The key identifier of `name` (no version).
    pub fn key_url(&self, name: &str) -> String {
        format!("{}/keys/{name}", self.endpoint)
    }

    /// Creates an enabled key with one version; returns that version.
    pub fn create_key(&self, name: &str) -> String {
        let version = new_version();
        lock(&self.state).keys.insert(
            name.to_owned(),
            FakeKey {
                versions: vec![(version.clone(), random_key())],
                enabled: true,
                denied: HashSet::new(),
            },
        );
        version
    }

    /// Adds a new current version to the key; returns it.
    pub fn rotate(&self, name: &str) -> String {
        let version = new_version();
        if let Some(key) = lock(&self.state).keys.get_mut(name) {
            key.versions.push((version.clone(), random_key()));
        }
        version
    }

    /// Enables or disables the key.
    pub fn set_enabled(&self, name: &str, enabled: bool) {
        if let Some(key) = lock(&self.state).keys.get_mut(name) {
            key.enabled = enabled;
        }
    }

    /// Denies an operation (`wrapKey`, `unwrapKey`, `get`) on the key.
    pub fn deny(&self, name: &str, operation: &str) {
        if let Some(key) = lock(&self.state).keys.get_mut(name) {
            key.denied.insert(operation.to_owned());
        }
    }

    /// How many access tokens were issued.
    pub fn token_requests(&self) -> u32 {
        lock(&self.state).token_requests
    }
}

impl Drop for AzureFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn token(State(state): State<Shared>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form = form(&body);
    let field = |name: &str| form.get(name).map(String::as_str);
    let ok = tenant == TENANT
        && field("client_id") == Some(CLIENT_ID)
        && field("client_secret") == Some(CLIENT_SECRET)
        && field("grant_type") == Some("client_credentials")
        && field("scope") == Some("https://vault.azure.net/.default");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the \
                    secret being sent in the request is the client secret value.",
            })),
        )
            .into_response();
    }
    lock(&state).token_requests += 1;
    axum::Json(json!({ "token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN }))
        .into_response()
}

async fn vault(
    State(state): State<Shared>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bearer(&headers) != Some(TOKEN) {
        return vault_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.".into(),
            None,
        );
    }
    if !uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|p| p == "api-version=7.4")
    {
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified version is not recognized; use api-version=7.4.".into(),
            None,
        );
    }
    let mut parts: Vec<&str> = rest.split('/').collect();
    let operation = match parts.last() {
        Some(&"wrapkey") => "wrapKey",
        Some(&"unwrapkey") => "unwrapKey",
        _ => "get",
    };
    if operation != "get" {
        parts.pop();
    }
    let (name, version) = match parts.as_slice() {
        [name] => (*name, None),
        [name, version] => (*name, Some(*version)),
        _ => {
            return vault_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such path".into(),
                None,
            );
        }
    };
    let state = lock(&state);
    let not_found = || {
        vault_error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            format!(
                "A key with (name/id) {name} was not found in this key vault. If you recently \
                 deleted this key you may be able to recover it using the correct recovery \
                 command."
            ),
            None,
        )
    };
    let Some(key) = state.keys.get(name) else {
        return not_found();
    };
    if key.denied.contains(operation) {
        return vault_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "The user, group or application 'appid={CLIENT_ID}' does not have keys \
                 {operation} permission on key vault 'fake;location=local'."
            ),
            Some("ForbiddenByPolicy"),
        );
    }
    let Some((version, secret)) = (match version {
        Some(v) => key.versions.iter().find(|(id, _)| id == v),
        None => key.versions.last(),
    }) else {
        return not_found();
    };
    let kid = format!("{}/keys/{name}/{version}", state.endpoint);
    if operation == "get" {
        return axum::Json(json!({
            "key": { "kid": kid, "kty": "RSA", "key_ops": ["wrapKey", "unwrapKey"], "e": "AQAB" },
            "attributes": { "enabled": key.enabled, "recoveryLevel": "Recoverable+Purgeable" },
        }))
        .into_response();
    }
    if !key.enabled {
        return vault_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation {operation} is not allowed on a disabled key."),
            Some("KeyDisabled"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "bad JSON".into(),
            None,
        );
    };
    if body["alg"] != "RSA-OAEP-256" {
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Unsupported algorithm".into(),
            None,
        );
    }
    let Some(value) = body["value"].as_str().and_then(|v| B64URL.decode(v).ok()) else {
        return vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid value".into(),
            None,
        );
    };
    let out = if operation == "wrapKey" {
        fake_encrypt(secret, b"", &value)
    } else {
        match fake_decrypt(secret, b"", &value) {
            Some(plain) => plain,
            None => {
                return vault_error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "Error decrypting the ciphertext.".into(),
                    None,
                );
            }
        }
    };
    axum::Json(json!({ "kid": kid, "value": B64URL.encode(out) })).into_response()
}
