//! Azure Key Vault over its REST API (api-version 7.4): RSA-OAEP-256 `wrapkey`/`unwrapkey` and
//! GET key, with a client-credentials token from Microsoft Entra ID. The vault URL is
//! tenant-given, so its requests go through [`crate::outbound`].

use super::shared::{
    AZURE_DEFAULT_AUTHORITY, Shared, access_token, cached_token, excerpt, forget_token, send,
};
use super::{DataKey, KeyInfo, KeyProvider, KeyRef, KmsError, generate_locally};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The Key Vault REST API version used.
pub const API_VERSION: &str = "7.4";
/// The OAuth scope of Key Vault.
pub const SCOPE: &str = "https://vault.azure.net/.default";
const ALG: &str = "RSA-OAEP-256";
/// Wrapped bytes start with this tag, then one length byte and the key version that wrapped.
const FRAME_TAG: &[u8] = b"AZ1";

/// The Azure Key Vault client for one key.
pub struct AzureKms {
    shared: Arc<Shared>,
    key: KeyRef,
    tenant_id: String,
    client_id: String,
    client_secret: Zeroizing<String>,
    authority: String,
}

impl AzureKms {
    /// A client for `key` (an Azure key reference) with the platform's app registration.
    pub(crate) fn new(shared: Arc<Shared>, key: KeyRef) -> Result<Self, KmsError> {
        if key.azure_key().is_none() {
            return Err(KmsError::BadKeyRef("not an Azure key reference".into()));
        }
        shared
            .guard()
            .check_url(&key.id)
            .map_err(|e| KmsError::BadKeyRef(e.to_string()))?;
        let inner = &shared;
        let (Some(tenant_id), Some(client_id), Some(client_secret)) = (
            inner.azure_tenant_id.clone(),
            inner.azure_client_id.clone(),
            inner.azure_client_secret.clone(),
        ) else {
            return Err(KmsError::Credentials(
                "Azure credentials are missing: set AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                 AZURE_CLIENT_SECRET"
                    .into(),
            ));
        };
        let authority = inner
            .azure_authority
            .clone()
            .unwrap_or_else(|| AZURE_DEFAULT_AUTHORITY.to_owned());
        Ok(Self {
            shared,
            key,
            tenant_id,
            client_id,
            client_secret,
            authority,
        })
    }

    async fn token(&self) -> Result<Zeroizing<String>, KmsError> {
        cached_token(&self.shared.azure_token, || async {
            let url = format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id);
            let request = self.shared.http()?.post(&url).form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("grant_type", "client_credentials"),
                ("scope", SCOPE),
            ]);
            let (status, body) = send(request, &url).await?;
            if !status.is_success() {
                return Err(KmsError::Credentials(format!(
                    "Microsoft Entra ID refused the platform's client credentials (HTTP {status}: \
                     {}); check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                    token_error(&body)
                )));
            }
            access_token(&body, &url)
        })
        .await
    }

    async fn call(&self, action: &str, url: &str, body: Option<Value>) -> Result<Value, KmsError> {
        let token = self.token().await?;
        let http = self.shared.guarded_http()?;
        let request = match body {
            Some(body) => http.post(url).json(&body),
            None => http.get(url),
        };
        let request = request
            .query(&[("api-version", API_VERSION)])
            .bearer_auth(token.as_str());
        let (status, response) = send(request, url).await?;
        if status.is_success() {
            return serde_json::from_slice(&response).map_err(|_| KmsError::Rejected {
                detail: "Key Vault answered with something that is not JSON".into(),
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            forget_token(&self.shared.azure_token).await;
        }
        Err(map_error(action, status.as_u16(), &response))
    }

    fn key_url(&self, version: Option<&str>) -> String {
        match (self.key.azure_key(), version) {
            (Some((base, name, _)), Some(v)) => format!("{base}/keys/{name}/{v}"),
            (Some((base, name, None)), None) => format!("{base}/keys/{name}"),
            _ => self.key.id.clone(),
        }
    }
}

/// The OAuth error of a token response, without anything the request carried.
fn token_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => format!(
            "{}: {}",
            e.error,
            e.error_description.lines().next().unwrap_or("")
        ),
        Err(_) => excerpt(body),
    }
}

#[derive(Deserialize)]
struct VaultError {
    error: VaultErrorBody,
}

#[derive(Deserialize)]
struct VaultErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    innererror: Option<Box<VaultErrorBody>>,
}

/// Maps Key Vault's `{"error":{"code":…,"message":…,"innererror":{"code":…}}}` to
/// [`KmsError`]; `action` is `wrapKey`, `unwrapKey` or `get`.
pub(crate) fn map_error(action: &str, status: u16, body: &[u8]) -> KmsError {
    let Ok(VaultError { error }) = serde_json::from_slice::<VaultError>(body) else {
        return match status {
            401 => KmsError::Credentials(
                "Key Vault refused the platform's access token (HTTP 401); check \
                 AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
                    .into(),
            ),
            404 => KmsError::KeyNotFound {
                detail: format!("HTTP 404: {}", excerpt(body)),
            },
            _ => KmsError::Rejected {
                detail: format!("HTTP {status}: {}", excerpt(body)),
            },
        };
    };
    let inner = error
        .innererror
        .as_ref()
        .map(|e| e.code.as_str())
        .unwrap_or("");
    let detail = if inner.is_empty() {
        format!("{}: {}", error.code, error.message)
    } else {
        format!("{} ({inner}): {}", error.code, error.message)
    };
    let message = error.message.to_ascii_lowercase();
    if error.code == "KeyDisabled" || inner == "KeyDisabled" || message.contains("disabled key") {
        return KmsError::KeyDisabled { detail };
    }
    if message.contains("deleted but recoverable") {
        return KmsError::KeyPendingDeletion { detail };
    }
    match (error.code.as_str(), status) {
        ("KeyNotFound", _) | ("NotFound", _) | (_, 404) => KmsError::KeyNotFound { detail },
        ("Forbidden", _) | ("ForbiddenByPolicy" | "ForbiddenByRbac", _) | (_, 403) => {
            KmsError::PermissionDenied {
                action: action.to_owned(),
                detail,
            }
        }
        ("Unauthorized", _) | (_, 401) => KmsError::Credentials(format!(
            "Key Vault refused the platform's access token ({detail}); check AZURE_TENANT_ID, \
             AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
        )),
        _ => KmsError::Rejected { detail },
    }
}

/// Frames a wrapped key with the version that wrapped it.
fn frame(version: &str, ciphertext: &[u8]) -> Result<Vec<u8>, KmsError> {
    let len = u8::try_from(version.len()).map_err(|_| KmsError::Rejected {
        detail: "Key Vault answered with an overlong key version".into(),
    })?;
    let mut out = FRAME_TAG.to_vec();
    out.push(len);
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(ciphertext);
    Ok(out)
}

/// The version and ciphertext of framed wrapped bytes.
fn unframe(wrapped: &[u8]) -> Result<(&str, &[u8]), KmsError> {
    let bad = || KmsError::Rejected {
        detail: "the wrapped key is not in the Azure format (AZ1 + key version + ciphertext)"
            .into(),
    };
    let rest = wrapped.strip_prefix(FRAME_TAG).ok_or_else(bad)?;
    let (&len, rest) = rest.split_first().ok_or_else(bad)?;
    let len = usize::from(len);
    if rest.len() <= len {
        return Err(bad());
    }
    let version = std::str::from_utf8(&rest[..len]).map_err(|_| bad())?;
    if version.is_empty()
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad());
    }
    Ok((version, &rest[len..]))
}

fn value_field(out: &Value) -> Result<Vec<u8>, KmsError> {
    out.get("value")
        .and_then(Value::as_str)
        .and_then(|s| B64URL.decode(s.trim_end_matches('=')).ok())
        .ok_or_else(|| KmsError::Rejected {
            detail: "Key Vault answered without a valid `value`".into(),
        })
}

fn version_of_kid(kid: &str) -> Option<String> {
    let (_, rest) = kid.split_once("/keys/")?;
    rest.split_once('/')
        .map(|(_, v)| v.trim_end_matches('/').to_owned())
}

impl KeyProvider for AzureKms {
    fn key(&self) -> &KeyRef {
        &self.key
    }

    fn wrap<'a>(
        &'a self,
        plaintext: &'a [u8],
        _aad: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, KmsError>> {
        Box::pin(async move {
            let url = format!("{}/wrapkey", self.key_url(None));
            let body = json!({ "alg": ALG, "value": B64URL.encode(plaintext) });
            let out = self.call("wrapKey", &url, Some(body)).await?;
            let version = out
                .get("kid")
                .and_then(Value::as_str)
                .and_then(version_of_kid)
                .or_else(|| self.key.azure_key().and_then(|k| k.2).map(str::to_owned))
                .ok_or_else(|| KmsError::Rejected {
                    detail: "Key Vault answered wrapKey without the key version (`kid`)".into(),
                })?;
            frame(&version, &value_field(&out)?)
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        _aad: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, KmsError>> {
        Box::pin(async move {
            let (version, ciphertext) = unframe(wrapped)?;
            let url = format!("{}/unwrapkey", self.key_url(Some(version)));
            let body = json!({ "alg": ALG, "value": B64URL.encode(ciphertext) });
            let mut out = self.call("unwrapKey", &url, Some(body)).await?;
            let text = match out.get_mut("value") {
                Some(Value::String(s)) => Zeroizing::new(std::mem::take(s)),
                _ => {
                    return Err(KmsError::Rejected {
                        detail: "Key Vault answered unwrapKey without `value`".into(),
                    });
                }
            };
            B64URL
                .decode(text.trim_end_matches('='))
                .map(Zeroizing::new)
                .map_err(|_| KmsError::Rejected {
                    detail: "Key Vault answered unwrapKey with an invalid `value`".into(),
                })
        })
    }

    fn generate_data_key<'a>(&'a self, aad: &'a str) -> BoxFuture<'a, Result<DataKey, KmsError>> {
        Box::pin(generate_locally(self, aad))
    }

    fn describe<'a>(&'a self) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let out = self.call("get", &self.key_url(None), None).await?;
            let enabled = out["attributes"]["enabled"].as_bool().unwrap_or(false);
            Ok(KeyInfo {
                enabled,
                state: if enabled { "enabled" } else { "disabled" }.into(),
                version: out["key"]["kid"].as_str().and_then(version_of_kid),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::AzureFake;
    use super::super::{KmsConfig, Provider};
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn error_mapping() {
        let map = |action, status, body: &str| map_error(action, status, body.as_bytes());
        for inner in ["ForbiddenByPolicy", "ForbiddenByRbac"] {
            let err = map(
                "wrapKey",
                403,
                &format!(
                    r#"{{"error":{{"code":"Forbidden","message":"The user, group or application 'appid=…' does not have keys wrapKey permission on key vault 'v;location=westeurope'.","innererror":{{"code":"{inner}"}}}}}}"#
                ),
            );
            match err {
                KmsError::PermissionDenied { action, detail } => {
                    assert_eq!(action, "wrapKey");
                    assert!(
                        detail.starts_with(&format!("Forbidden ({inner}): ")),
                        "{detail}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            map(
                "wrapKey",
                403,
                r#"{"error":{"code":"Forbidden","message":"Operation wrapKey is not allowed on a disabled key.","innererror":{"code":"KeyDisabled"}}}"#
            ),
            KmsError::KeyDisabled { .. }
        ));
        assert!(matches!(
            map(
                "unwrapKey",
                400,
                r#"{"error":{"code":"KeyDisabled","message":"x"}}"#
            ),
            KmsError::KeyDisabled { .. }
        ));
        assert!(matches!(
            map(
                "get",
                404,
                r#"{"error":{"code":"KeyNotFound","message":"A key with (name/id) k was not found in this key vault."}}"#
            ),
            KmsError::KeyNotFound { .. }
        ));
        assert!(matches!(
            map(
                "get",
                401,
                r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#
            ),
            KmsError::Credentials(_)
        ));
        assert!(matches!(
            map(
                "unwrapKey",
                400,
                r#"{"error":{"code":"BadParameter","message":"Invalid ciphertext"}}"#
            ),
            KmsError::Rejected { .. }
        ));
        assert!(matches!(map("get", 401, ""), KmsError::Credentials(_)));
    }

    #[test]
    fn framing_roundtrip_and_refusals() {
        let framed = frame("0123abcd", b"ct").unwrap();
        assert_eq!(unframe(&framed).unwrap(), ("0123abcd", &b"ct"[..]));
        assert!(unframe(b"AZ1").is_err());
        assert!(unframe(b"AZ1\x08short").is_err());
        assert!(unframe(b"XX1\x01vct").is_err());
        assert!(unframe(b"AZ1\x03../ct").is_err());
        assert_eq!(
            version_of_kid("https://v.vault.azure.net/keys/k/abc123"),
            Some("abc123".into())
        );
        assert_eq!(version_of_kid("https://v.vault.azure.net/keys/k"), None);
    }

    fn config(fake: &AzureFake, secret: &str) -> KmsConfig {
        let vars = HashMap::from([
            ("AZURE_TENANT_ID", fake.tenant_id().to_owned()),
            ("AZURE_CLIENT_ID", fake.client_id().to_owned()),
            ("AZURE_CLIENT_SECRET", secret.to_owned()),
            ("TENANTOPS_AZURE_AUTHORITY_HOST", fake.endpoint()),
            ("TENANTOPS_ALLOW_LOOPBACK_URLS", "true".to_owned()),
        ]);
        KmsConfig::from_vars(|k| vars.get(k).cloned())
    }

    fn key(text: &str) -> KeyRef {
        KeyRef::parse(Provider::Azure, text, true).unwrap()
    }

    #[tokio::test]
    async fn roundtrip_describe_rotation_and_errors() {
        super::super::install_crypto_provider();
        let fake = AzureFake::start().await;
        let first = fake.create_key("tenant-key");
        let config = config(&fake, fake.client_secret());
        let kms = config.provider(&key(&fake.key_url("tenant-key"))).unwrap();

        let wrapped = kms.wrap(b"data key", "ignored").await.unwrap();
        assert_eq!(
            &kms.unwrap(&wrapped, "ignored").await.unwrap()[..],
            b"data key"
        );
        let (dk, wrapped_dk) = kms.generate_data_key("").await.unwrap();
        assert_eq!(&kms.unwrap(&wrapped_dk, "").await.unwrap()[..], &dk[..]);
        let info = kms.describe().await.unwrap();
        assert_eq!(info.version.as_deref(), Some(first.as_str()));
        assert!(info.enabled);

        // After a rotation, new wraps use the new version and old wraps still open.
        let second = fake.rotate("tenant-key");
        assert_ne!(first, second);
        let newer = kms.wrap(b"newer", "").await.unwrap();
        assert_eq!(unframe(&newer).unwrap().0, second);
        assert_eq!(&kms.unwrap(&wrapped, "").await.unwrap()[..], b"data key");
        assert_eq!(fake.token_requests(), 1);

        fake.set_enabled("tenant-key", false);
        let err = kms.wrap(b"k", "").await.unwrap_err();
        assert!(matches!(err, KmsError::KeyDisabled { .. }), "{err:?}");
        assert!(!kms.describe().await.unwrap().enabled);
        fake.set_enabled("tenant-key", true);

        fake.deny("tenant-key", "unwrapKey");
        match kms.unwrap(&wrapped, "").await.unwrap_err() {
            KmsError::PermissionDenied { action, .. } => assert_eq!(action, "unwrapKey"),
            other => panic!("{other:?}"),
        }

        let missing = config.provider(&key(&fake.key_url("nope"))).unwrap();
        let err = missing.describe().await.unwrap_err();
        assert!(matches!(err, KmsError::KeyNotFound { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn wrong_client_secret_is_a_credentials_error_without_the_secret() {
        super::super::install_crypto_provider();
        let fake = AzureFake::start().await;
        fake.create_key("k");
        let kms = config(&fake, "wrong-secret-value")
            .provider(&key(&fake.key_url("k")))
            .unwrap();
        let err = kms.wrap(b"k", "").await.unwrap_err();
        assert!(matches!(err, KmsError::Credentials(_)), "{err:?}");
        assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    }

    #[test]
    fn a_loopback_vault_needs_loopback_allowed() {
        let key = key("http://127.0.0.1:9/keys/k");
        let vars = HashMap::from([
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ]);
        let config = KmsConfig::from_vars(|k| vars.get(k).map(|v| v.to_string()));
        let err = config.provider(&key).err().unwrap();
        assert!(matches!(err, KmsError::BadKeyRef(_)), "{err:?}");
        let err = KmsConfig::from_vars(|_| None)
            .provider(
                &KeyRef::parse(
                    Provider::Azure,
                    "https://my-vault.vault.azure.net/keys/k",
                    false,
                )
                .unwrap(),
            )
            .err()
            .unwrap();
        assert!(err.to_string().contains("AZURE_CLIENT_SECRET"), "{err}");
    }
}
