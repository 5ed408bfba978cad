//! Google Cloud KMS over its REST API v1 (`…/cryptoKeys/K:encrypt`, `:decrypt`, GET), with
//! an OAuth token from a service-account key (JWT bearer grant) or the metadata server.

use super::shared::{
    GCE_METADATA_DEFAULT_HOST, GCP_DEFAULT_ENDPOINT, Shared, access_token, cached_token, excerpt,
    forget_token, send,
};
use super::{DataKey, KeyInfo, KeyProvider, KeyRef, KmsError, generate_locally};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The OAuth scope of Cloud KMS.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The Cloud KMS client for one key.
pub struct GcpKms {
    shared: Arc<Shared>,
    key: KeyRef,
    endpoint: String,
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl GcpKms {
    /// A client for `key` (a GCP key reference).
    pub(crate) fn new(shared: Arc<Shared>, key: KeyRef) -> Result<Self, KmsError> {
        if key.gcp_key().is_none() {
            return Err(KmsError::BadKeyRef("not a GCP key reference".into()));
        }
        let endpoint = shared
            .gcp_endpoint
            .clone()
            .unwrap_or_else(|| GCP_DEFAULT_ENDPOINT.to_owned());
        Ok(Self {
            shared,
            key,
            endpoint,
        })
    }

    async fn token(&self) -> Result<Zeroizing<String>, KmsError> {
        cached_token(&self.shared.gcp_token, || self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(Zeroizing<String>, u64), KmsError> {
        let inner = &self.shared;
        let http = self.shared.http()?;
        let (request, endpoint) = match &inner.gcp_credentials_file {
            Some(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    KmsError::Credentials(format!(
                        "cannot read GOOGLE_APPLICATION_CREDENTIALS file {}: {e}",
                        path.display()
                    ))
                })?);
                let mut account: ServiceAccount = serde_json::from_str(&text).map_err(|_| {
                    KmsError::Credentials(format!(
                        "GOOGLE_APPLICATION_CREDENTIALS file {} is not a service-account key \
                         (JSON with client_email, private_key and token_uri)",
                        path.display()
                    ))
                })?;
                let private_key = Zeroizing::new(std::mem::take(&mut account.private_key));
                let assertion = assertion(&account, &private_key)?;
                let request = http
                    .post(&account.token_uri)
                    .form(&[("grant_type", JWT_GRANT), ("assertion", assertion.as_str())]);
                (request, account.token_uri.clone())
            }
            None => {
                let host = inner
                    .gce_metadata_host
                    .as_deref()
                    .unwrap_or(GCE_METADATA_DEFAULT_HOST);
                let url = format!(
                    "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
                );
                (http.get(&url).header("Metadata-Flavor", "Google"), url)
            }
        };
        let (status, body) = send(request, &endpoint).await.map_err(|e| match e {
            KmsError::Unreachable { endpoint, detail } if inner.gcp_credentials_file.is_none() => {
                KmsError::Credentials(format!(
                    "no GOOGLE_APPLICATION_CREDENTIALS and the metadata server {endpoint} did not \
                     answer ({detail}); set GOOGLE_APPLICATION_CREDENTIALS to a service-account \
                     key file"
                ))
            }
            other => other,
        })?;
        if !status.is_success() {
            return Err(KmsError::Credentials(format!(
                "Google refused the platform's credentials at {endpoint} (HTTP {status}: {}); \
                 check GOOGLE_APPLICATION_CREDENTIALS",
                excerpt(&body)
            )));
        }
        access_token(&body, &endpoint)
    }

    async fn call(&self, what: Op, name: &str, body: Option<Value>) -> Result<Value, KmsError> {
        let token = self.token().await?;
        let http = self.shared.http()?;
        let url = match what {
            Op::Encrypt => format!("{}/v1/{name}:encrypt", self.endpoint),
            Op::Decrypt => format!("{}/v1/{name}:decrypt", self.endpoint),
            Op::Get => format!("{}/v1/{name}", self.endpoint),
        };
        let request = match body {
            Some(body) => http.post(&url).json(&body),
            None => http.get(&url),
        };
        let (status, response) = send(request.bearer_auth(token.as_str()), &self.endpoint).await?;
        if status.is_success() {
            return serde_json::from_slice(&response).map_err(|_| KmsError::Rejected {
                detail: "Cloud KMS answered with something that is not JSON".into(),
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            forget_token(&self.shared.gcp_token).await;
        }
        Err(map_error(what, status.as_u16(), &response))
    }
}

fn assertion(account: &ServiceAccount, private_key: &str) -> Result<Zeroizing<String>, KmsError> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let key = EncodingKey::from_rsa_pem(private_key.as_bytes()).map_err(|_| {
        KmsError::Credentials(
            "the private_key of the GOOGLE_APPLICATION_CREDENTIALS file is not an RSA key in PEM"
                .into(),
        )
    })?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        iss: &account.client_email,
        scope: SCOPE,
        aud: &account.token_uri,
        iat: now,
        exp: now + 3600,
    };
    encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map(Zeroizing::new)
        .map_err(|_| KmsError::Credentials("cannot sign the service-account assertion".into()))
}

/// Which Cloud KMS call failed (for the default permission name).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Encrypt,
    Decrypt,
    Get,
}

impl Op {
    fn permission(self) -> &'static str {
        match self {
            Op::Encrypt => "cloudkms.cryptoKeyVersions.useToEncrypt",
            Op::Decrypt => "cloudkms.cryptoKeyVersions.useToDecrypt",
            Op::Get => "cloudkms.cryptoKeys.get",
        }
    }
}

#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorBody,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// Maps Google's `{"error":{"code":…,"message":…,"status":…}}` to [`KmsError`].
pub(crate) fn map_error(op: Op, http_status: u16, body: &[u8]) -> KmsError {
    let Ok(GoogleError { error }) = serde_json::from_slice::<GoogleError>(body) else {
        return KmsError::Rejected {
            detail: format!("HTTP {http_status}: {}", excerpt(body)),
        };
    };
    let detail = format!("{}: {}", error.status, error.message);
    match (error.status.as_str(), error.code) {
        ("PERMISSION_DENIED", _) | ("", 403) => {
            let action = permission_in(&error.message).unwrap_or(op.permission());
            KmsError::PermissionDenied {
                action: action.to_owned(),
                detail,
            }
        }
        ("UNAUTHENTICATED", _) | ("", 401) => KmsError::Credentials(format!(
            "Cloud KMS refused the platform's access token ({detail}); check \
             GOOGLE_APPLICATION_CREDENTIALS"
        )),
        ("FAILED_PRECONDITION", _)
            if error.message.contains("DESTROY_SCHEDULED")
                || error.message.contains("DESTROYED") =>
        {
            KmsError::KeyPendingDeletion { detail }
        }
        ("FAILED_PRECONDITION", _)
            if error.message.contains("is not enabled") || error.message.contains("DISABLED") =>
        {
            KmsError::KeyDisabled { detail }
        }
        ("NOT_FOUND", _) | ("", 404) => KmsError::KeyNotFound { detail },
        _ => KmsError::Rejected { detail },
    }
}

/// The `cloudkms.…` permission a message names, if any.
fn permission_in(message: &str) -> Option<&str> {
    let start = message.find("cloudkms.")?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.'))
}

fn version_of(name: &str) -> Option<String> {
    name.rsplit_once("/cryptoKeyVersions/")
        .map(|(_, v)| v.to_owned())
}

fn decode_field(value: &Value, field: &str) -> Result<Vec<u8>, KmsError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| KmsError::Rejected {
            detail: format!("Cloud KMS answered without a valid `{field}`"),
        })
}

impl KeyProvider for GcpKms {
    fn key(&self) -> &KeyRef {
        &self.key
    }

    fn wrap<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, KmsError>> {
        Box::pin(async move {
            // A pinned version encrypts with that version; otherwise the primary.
            let body = json!({
                "plaintext": B64.encode(plaintext),
                "additionalAuthenticatedData": B64.encode(aad),
            });
            let out = self.call(Op::Encrypt, &self.key.id, Some(body)).await?;
            decode_field(&out, "ciphertext")
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, KmsError>> {
        Box::pin(async move {
            // Decrypt addresses the cryptoKey; the ciphertext names its version.
            let (key, _) = self.key.gcp_key().unwrap_or((&self.key.id, None));
            let body = json!({
                "ciphertext": B64.encode(wrapped),
                "additionalAuthenticatedData": B64.encode(aad),
            });
            let mut out = self.call(Op::Decrypt, key, Some(body)).await?;
            let text = match out.get_mut("plaintext") {
                Some(Value::String(s)) => Zeroizing::new(std::mem::take(s)),
                // Cloud KMS omits empty fields: an empty plaintext.
                _ => Zeroizing::new(String::new()),
            };
            B64.decode(text.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| KmsError::Rejected {
                    detail: "Cloud KMS answered with an invalid `plaintext`".into(),
                })
        })
    }

    fn generate_data_key<'a>(&'a self, aad: &'a str) -> BoxFuture<'a, Result<DataKey, KmsError>> {
        Box::pin(generate_locally(self, aad))
    }

    fn describe<'a>(&'a self) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let version = match self.key.gcp_key() {
                Some((_, Some(_))) => self.call(Op::Get, &self.key.id, None).await?,
                Some((key, None)) => {
                    let out = self.call(Op::Get, key, None).await?;
                    match out.get("primary") {
                        Some(primary) => primary.clone(),
                        None => {
                            return Ok(KeyInfo {
                                enabled: false,
                                state: "NO_PRIMARY_VERSION".into(),
                                version: None,
                            });
                        }
                    }
                }
                None => return Err(KmsError::BadKeyRef("not a GCP key reference".into())),
            };
            let state = version["state"].as_str().unwrap_or("STATE_UNSPECIFIED");
            Ok(KeyInfo {
                enabled: state == "ENABLED",
                state: state.to_owned(),
                version: version["name"].as_str().and_then(version_of),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GcpFake, TEST_RSA_PRIVATE_KEY};
    use super::super::{KmsConfig, Provider};
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";

    #[test]
    fn error_mapping() {
        let map = |op, body: &str| map_error(op, 400, body.as_bytes());
        let denied = map(
            Op::Encrypt,
            r#"{"error":{"code":403,"message":"Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied on resource 'projects/p/locations/global/keyRings/r/cryptoKeys/k' (or it may not exist).","status":"PERMISSION_DENIED"}}"#,
        );
        assert!(matches!(
            &denied,
            KmsError::PermissionDenied { action, .. } if action == "cloudkms.cryptoKeyVersions.useToEncrypt"
        ));
        let denied = map(
            Op::Decrypt,
            r#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#,
        );
        assert!(matches!(
            &denied,
            KmsError::PermissionDenied { action, .. } if action == "cloudkms.cryptoKeyVersions.useToDecrypt"
        ));
        assert!(matches!(
            map(
                Op::Encrypt,
                r#"{"error":{"code":400,"message":"projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.","status":"FAILED_PRECONDITION"}}"#
            ),
            KmsError::KeyDisabled { .. }
        ));
        assert!(matches!(
            map(
                Op::Encrypt,
                r#"{"error":{"code":400,"message":"projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1 is not enabled, current state is: DESTROY_SCHEDULED.","status":"FAILED_PRECONDITION"}}"#
            ),
            KmsError::KeyPendingDeletion { .. }
        ));
        assert!(matches!(
            map(
                Op::Get,
                r#"{"error":{"code":404,"message":"CryptoKey projects/p/locations/global/keyRings/r/cryptoKeys/k not found.","status":"NOT_FOUND"}}"#
            ),
            KmsError::KeyNotFound { .. }
        ));
        assert!(matches!(
            map(
                Op::Get,
                r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#
            ),
            KmsError::Credentials(_)
        ));
        assert_eq!(
            map(
                Op::Decrypt,
                r#"{"error":{"code":400,"message":"Decryption failed: the ciphertext is invalid.","status":"INVALID_ARGUMENT"}}"#
            ),
            KmsError::Rejected {
                detail: "INVALID_ARGUMENT: Decryption failed: the ciphertext is invalid.".into()
            }
        );
        assert_eq!(
            permission_in("Permission 'cloudkms.cryptoKeys.get' denied"),
            Some("cloudkms.cryptoKeys.get")
        );
        assert_eq!(permission_in("no permission named"), None);
    }

    fn config(fake: &GcpFake, credentials: Option<&std::path::Path>) -> KmsConfig {
        let mut vars = HashMap::from([
            ("TENANTOPS_GCP_KMS_ENDPOINT", fake.endpoint()),
            ("GCE_METADATA_HOST", fake.metadata_host()),
        ]);
        if let Some(path) = credentials {
            vars.insert("GOOGLE_APPLICATION_CREDENTIALS", path.display().to_string());
        }
        KmsConfig::from_vars(|k| vars.get(k).cloned())
    }

    fn key(text: &str) -> KeyRef {
        KeyRef::parse(Provider::Gcp, text, false).unwrap()
    }

    #[tokio::test]
    async fn roundtrip_with_a_service_account_key() {
        super::super::install_crypto_provider();
        let fake = GcpFake::start().await;
        fake.create_key(KEY);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sa.json");
        std::fs::write(&file, fake.service_account_json()).unwrap();
        let kms = config(&fake, Some(&file)).provider(&key(KEY)).unwrap();

        let wrapped = kms
            .wrap(b"data key bytes", "tenant-1/connector")
            .await
            .unwrap();
        assert_ne!(wrapped, b"data key bytes");
        let plain = kms.unwrap(&wrapped, "tenant-1/connector").await.unwrap();
        assert_eq!(&plain[..], b"data key bytes");
        let err = kms
            .unwrap(&wrapped, "tenant-2/connector")
            .await
            .unwrap_err();
        assert!(matches!(err, KmsError::Rejected { .. }), "{err:?}");

        let (dk, wrapped) = kms.generate_data_key("aad").await.unwrap();
        assert_eq!(&kms.unwrap(&wrapped, "aad").await.unwrap()[..], &dk[..]);

        let info = kms.describe().await.unwrap();
        assert_eq!(
            info,
            KeyInfo {
                enabled: true,
                state: "ENABLED".into(),
                version: Some("1".into())
            }
        );
        // One token for all these calls.
        assert_eq!(fake.token_requests(), 1);
        assert!(TEST_RSA_PRIVATE_KEY.contains("PRIVATE KEY"));
    }

    #[tokio::test]
    async fn metadata_server_token_and_error_classes() {
        super::super::install_crypto_provider();
        let fake = GcpFake::start().await;
        fake.create_key(KEY);
        let config = config(&fake, None);
        let kms = config.provider(&key(KEY)).unwrap();
        let wrapped = kms.wrap(b"k", "a").await.unwrap();
        assert_eq!(fake.token_requests(), 1);

        // A pinned version describes that version.
        let pinned = config
            .provider(&key(&format!("{KEY}/cryptoKeyVersions/1")))
            .unwrap();
        assert_eq!(
            pinned.describe().await.unwrap().version.as_deref(),
            Some("1")
        );
        assert_eq!(
            &pinned
                .unwrap(&pinned.wrap(b"x", "").await.unwrap(), "")
                .await
                .unwrap()[..],
            b"x"
        );

        fake.set_state(KEY, "DISABLED");
        let err = kms.wrap(b"k", "a").await.unwrap_err();
        assert!(matches!(err, KmsError::KeyDisabled { .. }), "{err:?}");
        let info = kms.describe().await.unwrap();
        assert!(!info.enabled);
        assert_eq!(info.state, "DISABLED");

        fake.set_state(KEY, "DESTROY_SCHEDULED");
        let err = kms.unwrap(&wrapped, "a").await.unwrap_err();
        assert!(
            matches!(err, KmsError::KeyPendingDeletion { .. }),
            "{err:?}"
        );

        fake.set_state(KEY, "ENABLED");
        fake.deny(KEY, "cloudkms.cryptoKeyVersions.useToEncrypt");
        match kms.generate_data_key("a").await.unwrap_err() {
            KmsError::PermissionDenied { action, .. } => {
                assert_eq!(action, "cloudkms.cryptoKeyVersions.useToEncrypt")
            }
            other => panic!("{other:?}"),
        }
        // Decrypt is still allowed.
        assert_eq!(&kms.unwrap(&wrapped, "a").await.unwrap()[..], b"k");

        let missing = config
            .provider(&key(
                "projects/p/locations/global/keyRings/r/cryptoKeys/nope",
            ))
            .unwrap();
        let err = missing.describe().await.unwrap_err();
        assert!(matches!(err, KmsError::KeyNotFound { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_bad_service_account_file_is_a_credentials_error() {
        super::super::install_crypto_provider();
        let fake = GcpFake::start().await;
        fake.create_key(KEY);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sa.json");
        std::fs::write(
            &file,
            r#"{"client_email":"x@y","private_key":"not a key","token_uri":"http://127.0.0.1:1/"}"#,
        )
        .unwrap();
        let kms = config(&fake, Some(&file)).provider(&key(KEY)).unwrap();
        let err = kms.wrap(b"k", "a").await.unwrap_err();
        assert!(matches!(err, KmsError::Credentials(_)), "{err:?}");
        assert!(!err.to_string().contains("not a key"), "{err}");
    }
}
