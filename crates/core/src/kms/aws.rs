//! AWS KMS over its JSON 1.1 API (`POST /`, `X-Amz-Target: TrentService.*`), signed with
//! SigV4 (service `kms`, the key ARN's region).

use super::shared::{Shared, excerpt, send};
use super::{DataKey, KeyInfo, KeyProvider, KeyRef, KmsError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;
use zeroize::Zeroizing;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The AWS KMS client for one key.
pub struct AwsKms {
    shared: Arc<Shared>,
    key: KeyRef,
    signer: Signer,
}

/// Signs and sends KMS JSON API calls to one endpoint and region.
pub(crate) struct Signer {
    pub(crate) endpoint: String,
    pub(crate) region: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl AwsKms {
    /// A client for `key` (an AWS key reference) with the platform's AWS credentials.
    pub(crate) fn new(shared: Arc<Shared>, key: KeyRef) -> Result<Self, KmsError> {
        let region = key
            .aws_region()
            .ok_or_else(|| KmsError::BadKeyRef("not an AWS key reference".into()))?
            .to_owned();
        let signer = Signer::from_shared(&shared, &region)?;
        Ok(Self {
            shared,
            key,
            signer,
        })
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, KmsError> {
        self.signer.call(&self.shared.http()?, op, &body).await
    }
}

fn context(aad: &str) -> Value {
    if aad.is_empty() {
        Value::Null
    } else {
        json!({ "tenantops": aad })
    }
}

fn with_context(mut body: Value, aad: &str) -> Value {
    if !aad.is_empty() {
        body["EncryptionContext"] = context(aad);
    }
    body
}

fn blob(value: &Value, field: &str) -> Result<Vec<u8>, KmsError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| KmsError::Rejected {
            detail: format!("AWS KMS answered without a valid `{field}`"),
        })
}

/// Takes a base64 plaintext field out of a response, leaving nothing readable behind.
fn take_plaintext(value: &mut Value, field: &str) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let text = match value.get_mut(field) {
        Some(Value::String(s)) => Zeroizing::new(std::mem::take(s)),
        _ => {
            return Err(KmsError::Rejected {
                detail: format!("AWS KMS answered without `{field}`"),
            });
        }
    };
    B64.decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| KmsError::Rejected {
            detail: format!("AWS KMS answered with an invalid `{field}`"),
        })
}

impl KeyProvider for AwsKms {
    fn key(&self) -> &KeyRef {
        &self.key
    }

    fn wrap<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, KmsError>> {
        Box::pin(async move {
            let body = json!({ "KeyId": self.key.id, "Plaintext": B64.encode(plaintext) });
            let out = self.call("Encrypt", with_context(body, aad)).await?;
            blob(&out, "CiphertextBlob")
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, KmsError>> {
        Box::pin(async move {
            let body = json!({ "KeyId": self.key.id, "CiphertextBlob": B64.encode(wrapped) });
            let mut out = self.call("Decrypt", with_context(body, aad)).await?;
            take_plaintext(&mut out, "Plaintext")
        })
    }

    fn generate_data_key<'a>(&'a self, aad: &'a str) -> BoxFuture<'a, Result<DataKey, KmsError>> {
        Box::pin(async move {
            let body = json!({ "KeyId": self.key.id, "KeySpec": "AES_256" });
            let mut out = self
                .call("GenerateDataKey", with_context(body, aad))
                .await?;
            let plain = take_plaintext(&mut out, "Plaintext")?;
            let mut key = Zeroizing::new([0u8; 32]);
            if plain.len() != 32 {
                return Err(KmsError::Rejected {
                    detail: format!("AWS KMS generated a {}-byte data key, not 32", plain.len()),
                });
            }
            key.copy_from_slice(&plain);
            Ok((key, blob(&out, "CiphertextBlob")?))
        })
    }

    fn describe<'a>(&'a self) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let out = self
                .call("DescribeKey", json!({ "KeyId": self.key.id }))
                .await?;
            let meta = &out["KeyMetadata"];
            Ok(KeyInfo {
                enabled: meta["Enabled"].as_bool().unwrap_or(false),
                state: meta["KeyState"].as_str().unwrap_or("Unknown").to_owned(),
                version: None,
            })
        })
    }
}

impl Signer {
    /// Reads the platform's AWS credentials; the endpoint is AWS_ENDPOINT_URL_KMS or the
    /// region's.
    pub(crate) fn from_shared(inner: &Shared, region: &str) -> Result<Self, KmsError> {
        let (Some(id), Some(secret)) = (&inner.aws_access_key_id, &inner.aws_secret_access_key)
        else {
            return Err(KmsError::Credentials(
                "AWS credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (and AWS_SESSION_TOKEN for temporary credentials)"
                    .into(),
            ));
        };
        let endpoint = match &inner.aws_endpoint {
            Some(e) => format!("{e}/"),
            None => format!("https://kms.{region}.amazonaws.com/"),
        };
        Ok(Self {
            endpoint,
            region: region.to_owned(),
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: inner.aws_session_token.clone(),
        })
    }

    /// The SigV4 headers (Authorization, X-Amz-Date, X-Amz-Security-Token) for a call.
    pub(crate) fn sign(
        &self,
        target: &str,
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, KmsError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let credentials = aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.as_str().to_owned(),
            self.session_token.as_ref().map(|t| t.as_str().to_owned()),
            None,
            "tenantops",
        );
        let identity = credentials.into();
        let failed = |what: &str| {
            KmsError::Credentials(format!(
                "cannot sign the AWS request ({what}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ))
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("kms")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| failed("signing parameters"))?
            .into();
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", target)];
        let request = SignableRequest::new(
            "POST",
            &self.endpoint,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|_| failed("request"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|_| failed("signature"))?
            .into_parts();
        let (headers, _params) = instructions.into_parts();
        Ok(headers
            .into_iter()
            .map(|h| (h.name(), h.value().to_owned()))
            .collect())
    }

    /// Calls `TrentService.{op}` with a JSON body; maps AWS errors to [`KmsError`].
    pub(crate) async fn call(
        &self,
        http: &reqwest::Client,
        op: &str,
        body: &Value,
    ) -> Result<Value, KmsError> {
        let target = format!("TrentService.{op}");
        let bytes = serde_json::to_vec(body).map_err(|e| KmsError::Rejected {
            detail: format!("cannot encode the request: {e}"),
        })?;
        let mut request = http
            .post(&self.endpoint)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target);
        for (name, value) in self.sign(&target, &bytes, SystemTime::now())? {
            let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                KmsError::Credentials(
                    "the AWS credentials contain characters not allowed in HTTP headers".into(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        let (status, response) = send(request.body(bytes), &self.endpoint).await?;
        if status.is_success() {
            return serde_json::from_slice(&response).map_err(|_| KmsError::Rejected {
                detail: format!("AWS KMS answered {op} with something that is not JSON"),
            });
        }
        Err(map_error(op, status.as_u16(), &response))
    }
}

#[derive(Deserialize)]
struct AwsError {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(alias = "Message", default)]
    message: String,
}

/// Maps an AWS KMS error body (`{"__type": "...", "message": "..."}`) to [`KmsError`].
pub(crate) fn map_error(op: &str, status: u16, body: &[u8]) -> KmsError {
    let Ok(err) = serde_json::from_slice::<AwsError>(body) else {
        return KmsError::Rejected {
            detail: format!("HTTP {status}: {}", excerpt(body)),
        };
    };
    // `com.amazonaws.kms#NotFoundException` or `NotFoundException:http://...`
    let kind = err.kind.rsplit('#').next().unwrap_or_default();
    let kind = kind.split(':').next().unwrap_or_default();
    let detail = if err.message.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", err.message)
    };
    match kind {
        "AccessDeniedException" => KmsError::PermissionDenied {
            action: format!("kms:{op}"),
            detail,
        },
        "DisabledException" => KmsError::KeyDisabled { detail },
        "KMSInvalidStateException"
            if err.message.contains("PendingDeletion")
                || err
                    .message
                    .to_ascii_lowercase()
                    .contains("pending deletion") =>
        {
            KmsError::KeyPendingDeletion { detail }
        }
        "NotFoundException" => KmsError::KeyNotFound { detail },
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredTokenException" => KmsError::Credentials(format!(
            "AWS refused the platform's credentials ({detail}); check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        )),
        _ => KmsError::Rejected { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::super::KmsConfig;
    use super::*;
    use std::collections::HashMap;

    fn config() -> KmsConfig {
        let vars = HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("AWS_SESSION_TOKEN", "session-token-example"),
        ]);
        KmsConfig::from_vars(|k| vars.get(k).map(|v| v.to_string()))
    }

    fn key() -> KeyRef {
        KeyRef::parse(
            super::super::Provider::Aws,
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            false,
        )
        .unwrap()
    }

    #[test]
    fn sigv4_headers_are_present() {
        let signer = Signer::from_shared(config().shared(), "eu-west-1").unwrap();
        assert_eq!(signer.endpoint, "https://kms.eu-west-1.amazonaws.com/");
        let headers: HashMap<_, _> = signer
            .sign("TrentService.Encrypt", b"{}", SystemTime::UNIX_EPOCH)
            .unwrap()
            .into_iter()
            .collect();
        let auth = &headers["authorization"];
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/eu-west-1/kms/aws4_request"
            ),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders="), "{auth}");
        assert!(auth.contains("x-amz-target"), "{auth}");
        assert!(auth.contains("Signature="), "{auth}");
        assert!(!auth.contains("wJalrXUtnFEMI"), "{auth}");
        assert_eq!(headers["x-amz-date"], "19700101T000000Z");
        assert_eq!(headers["x-amz-security-token"], "session-token-example");
    }

    #[test]
    fn endpoint_override_and_missing_credentials() {
        let vars = HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:4566/"),
        ]);
        let config = KmsConfig::from_vars(|k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(
            Signer::from_shared(config.shared(), "eu-west-1")
                .unwrap()
                .endpoint,
            "http://127.0.0.1:4566/"
        );
        let err = KmsConfig::from_vars(|_| None)
            .provider(&key())
            .err()
            .unwrap();
        assert!(matches!(err, KmsError::Credentials(_)));
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn error_mapping() {
        let map = |op: &str, body: &str| map_error(op, 400, body.as_bytes());
        assert_eq!(
            map(
                "GenerateDataKey",
                r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::111122223333:user/x is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:... because no resource-based policy allows the kms:GenerateDataKey action"}"#
            ),
            KmsError::PermissionDenied {
                action: "kms:GenerateDataKey".into(),
                detail: "AccessDeniedException: User: arn:aws:iam::111122223333:user/x is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:... because no resource-based policy allows the kms:GenerateDataKey action".into(),
            }
        );
        assert!(matches!(
            map(
                "Encrypt",
                r#"{"__type":"com.amazonaws.kms#DisabledException","message":"arn:aws:kms:eu-west-1:111122223333:key/abc is disabled."}"#
            ),
            KmsError::KeyDisabled { .. }
        ));
        assert!(matches!(
            map(
                "Decrypt",
                r#"{"__type":"KMSInvalidStateException","message":"arn:aws:kms:eu-west-1:111122223333:key/abc is pending deletion."}"#
            ),
            KmsError::KeyPendingDeletion { .. }
        ));
        assert!(matches!(
            map(
                "Decrypt",
                r#"{"__type":"KMSInvalidStateException","message":"key/abc is PendingDeletion"}"#
            ),
            KmsError::KeyPendingDeletion { .. }
        ));
        assert!(matches!(
            map(
                "Encrypt",
                r#"{"__type":"KMSInvalidStateException","message":"key/abc is PendingImport"}"#
            ),
            KmsError::Rejected { .. }
        ));
        assert!(matches!(
            map(
                "DescribeKey",
                r#"{"__type":"NotFoundException","message":"Key 'arn:aws:kms:eu-west-1:111122223333:key/abc' does not exist"}"#
            ),
            KmsError::KeyNotFound { .. }
        ));
        for kind in ["UnrecognizedClientException", "InvalidSignatureException"] {
            let err = map(
                "Encrypt",
                &format!(
                    r#"{{"__type":"{kind}","message":"The security token included in the request is invalid."}}"#
                ),
            );
            assert!(matches!(err, KmsError::Credentials(_)), "{err:?}");
            assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"));
        }
        assert_eq!(
            map("Decrypt", r#"{"__type":"InvalidCiphertextException"}"#),
            KmsError::Rejected {
                detail: "InvalidCiphertextException".into()
            }
        );
        assert_eq!(
            map(
                "Encrypt",
                r#"{"__type":"ThrottlingException","Message":"Rate exceeded"}"#
            ),
            KmsError::Rejected {
                detail: "ThrottlingException: Rate exceeded".into()
            }
        );
        assert!(matches!(
            map_error("Encrypt", 502, b"<html>bad gateway</html>"),
            KmsError::Rejected { detail } if detail == "HTTP 502: <html>bad gateway</html>"
        ));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_reported_as_such() {
        super::super::install_crypto_provider();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let vars = HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "x".to_owned()),
            ("AWS_ENDPOINT_URL_KMS", format!("http://127.0.0.1:{port}")),
        ]);
        let config = KmsConfig::from_vars(|k| vars.get(k).cloned());
        let kms = config.provider(&key()).unwrap();
        match kms.describe().await.unwrap_err() {
            KmsError::Unreachable { endpoint, .. } => {
                assert_eq!(endpoint, format!("http://127.0.0.1:{port}"))
            }
            other => panic!("{other:?}"),
        }
    }
}
