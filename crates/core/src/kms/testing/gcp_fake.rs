//! `GcpFake`: Cloud KMS REST v1, its OAuth token endpoint and the metadata server, in process.

use super::{
    TEST_RSA_PRIVATE_KEY, TEST_RSA_PUBLIC_KEY, bearer, fake_decrypt, fake_encrypt, form,
    random_key, serve,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

const TOKEN: &str = "ya29.fake-gcp-access-token";
const CLIENT_EMAIL: &str = "tenantops@fake-project.iam.gserviceaccount.com";

/// An in-process Cloud KMS: keys with one state for all their versions, per-key denied
/// permissions, a JWT-bearer token endpoint (`/token`, verifying the assertion) and the GCE
/// metadata token path.
pub struct GcpFake {
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
    state: String,
    versions: Vec<[u8; 32]>,
    denied: HashSet<String>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn google_error(code: StatusCode, status: &str, message: String) -> Response {
    let body = json!({ "error": { "code": code.as_u16(), "message": message, "status": status } });
    (code, axum::Json(body)).into_response()
}

impl GcpFake {
    /// Starts the fake on a free 127.0.0.1 port.
    pub async fn start() -> GcpFake {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/token", post(token))
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(metadata_token),
            )
            .route("/v1/{*path}", get(get_resource).post(crypt))
            .with_state(state.clone());
        let (endpoint, task) = serve(router).await;
        lock(&state).endpoint = endpoint.clone();
        GcpFake {
            endpoint,
            state,
            task,
        }
    }

    /// The Cloud KMS endpoint (for `TENANTOPS_GCP_KMS_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The metadata host (for `GCE_METADATA_HOST`): `127.0.0.1:PORT`.
    pub fn metadata_host(&self) -> String {
        self.endpoint.trim_start_matches("http://").to_owned()
    }

    /// A service-account key file whose `token_uri` is this fake.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "fake-project",
            "client_email": CLIENT_EMAIL,
            "private_key": TEST_RSA_PRIVATE_KEY,
            "token_uri": format!("{}/token", self.endpoint),
        })
        .to_string()
    }

    /// Creates an enabled key named `name` (`projects/…/cryptoKeys/K`) with version 1.
    pub fn create_key(&self, name: &str) {
        lock(&self.state).keys.insert(
            name.to_owned(),
            FakeKey {
                state: "ENABLED".into(),
                versions: vec![random_key()],
                denied: HashSet::new(),
            },
        );
    }

    /// Sets the state of all the key's versions (`ENABLED`, `DISABLED`, `DESTROY_SCHEDULED`).
    pub fn set_state(&self, name: &str, state: &str) {
        if let Some(key) = lock(&self.state).keys.get_mut(name) {
            key.state = state.to_owned();
        }
    }

    /// Denies a permission (e.g. `cloudkms.cryptoKeyVersions.useToEncrypt`) on the key.
    pub fn deny(&self, name: &str, permission: &str) {
        if let Some(key) = lock(&self.state).keys.get_mut(name) {
            key.denied.insert(permission.to_owned());
        }
    }

    /// How many access tokens were issued (token endpoint and metadata server).
    pub fn token_requests(&self) -> u32 {
        lock(&self.state).token_requests
    }
}

impl Drop for GcpFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn issue(state: &Shared) -> Response {
    lock(state).token_requests += 1;
    axum::Json(json!({ "access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

async fn token(State(state): State<Shared>, body: Bytes) -> Response {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let form = form(&body);
    let invalid = |what: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_grant", "error_description": what })),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return invalid("unsupported grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return invalid("missing assertion");
    };
    let Ok(key) = DecodingKey::from_rsa_pem(TEST_RSA_PUBLIC_KEY.as_bytes()) else {
        return invalid("fake has no key");
    };
    let aud = format!("{}/token", lock(&state).endpoint);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    match decode::<Value>(assertion, &key, &validation) {
        Ok(data) if data.claims["scope"] == crate::kms::gcp::SCOPE => issue(&state),
        Ok(_) => invalid("wrong scope"),
        Err(_) => invalid("Invalid JWT Signature."),
    }
}

async fn metadata_token(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor: Google header",
        )
            .into_response();
    }
    issue(&state)
}

/// The 401 answer when the bearer token is not the fake's.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    if bearer(headers) == Some(TOKEN) {
        return None;
    }
    Some(google_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.".into(),
    ))
}

/// `name` → (cryptoKey name, pinned version).
fn split_version(name: &str) -> (&str, Option<usize>) {
    match name.split_once("/cryptoKeyVersions/") {
        Some((key, v)) => (key, v.parse().ok()),
        None => (name, None),
    }
}

fn not_found(name: &str) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("CryptoKey {name} not found."),
    )
}

fn denied(permission: &str, name: &str) -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        format!("Permission '{permission}' denied on resource '{name}' (or it may not exist)."),
    )
}

async fn get_resource(
    State(state): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&headers) {
        return r;
    }
    let (name, version) = split_version(&path);
    let state = lock(&state);
    let Some(key) = state.keys.get(name) else {
        return not_found(name);
    };
    if key.denied.contains("cloudkms.cryptoKeys.get") {
        return denied("cloudkms.cryptoKeys.get", name);
    }
    let primary = json!({
        "name": format!("{name}/cryptoKeyVersions/{}", key.versions.len()),
        "state": key.state,
    });
    match version {
        Some(v) if (1..=key.versions.len()).contains(&v) => axum::Json(json!({
            "name": format!("{name}/cryptoKeyVersions/{v}"), "state": key.state,
        }))
        .into_response(),
        Some(_) => not_found(&path),
        None => axum::Json(json!({
            "name": name, "purpose": "ENCRYPT_DECRYPT", "primary": primary,
        }))
        .into_response(),
    }
}

async fn crypt(
    State(state): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorized(&headers) {
        return r;
    }
    let Some((name, method)) = path.rsplit_once(':') else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method".into());
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "bad JSON".into(),
        );
    };
    let field = |f: &str| B64.decode(body[f].as_str().unwrap_or_default()).ok();
    let aad = field("additionalAuthenticatedData").unwrap_or_default();
    let (key_name, pinned) = split_version(name);
    let state = lock(&state);
    let Some(key) = state.keys.get(key_name) else {
        return not_found(key_name);
    };
    let permission = match method {
        "encrypt" => "cloudkms.cryptoKeyVersions.useToEncrypt",
        "decrypt" => "cloudkms.cryptoKeyVersions.useToDecrypt",
        _ => return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method".into()),
    };
    if key.denied.contains(permission) {
        return denied(permission, key_name);
    }
    let not_enabled = |v: usize| {
        google_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            format!(
                "{key_name}/cryptoKeyVersions/{v} is not enabled, current state is: {}.",
                key.state
            ),
        )
    };
    match method {
        "encrypt" => {
            let v = pinned.unwrap_or(key.versions.len());
            let Some(secret) = v.checked_sub(1).and_then(|i| key.versions.get(i)) else {
                return not_found(name);
            };
            if key.state != "ENABLED" {
                return not_enabled(v);
            }
            let plaintext = field("plaintext").unwrap_or_default();
            let mut ciphertext = vec![v as u8];
            ciphertext.extend(fake_encrypt(secret, &aad, &plaintext));
            axum::Json(json!({
                "name": format!("{key_name}/cryptoKeyVersions/{v}"),
                "ciphertext": B64.encode(ciphertext),
            }))
            .into_response()
        }
        _ => {
            if pinned.is_some() {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Decrypt takes a CryptoKey name, not a CryptoKeyVersion.".into(),
                );
            }
            let invalid = || {
                google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Decryption failed: the ciphertext is invalid.".into(),
                )
            };
            let Some(ciphertext) = field("ciphertext") else {
                return invalid();
            };
            let Some((&v, rest)) = ciphertext.split_first() else {
                return invalid();
            };
            let Some(secret) = usize::from(v)
                .checked_sub(1)
                .and_then(|i| key.versions.get(i))
            else {
                return invalid();
            };
            if key.state != "ENABLED" {
                return not_enabled(usize::from(v));
            }
            match fake_decrypt(secret, &aad, rest) {
                Some(plain) => {
                    axum::Json(json!({ "plaintext": B64.encode(plain) })).into_response()
                }
                None => invalid(),
            }
        }
    }
}
