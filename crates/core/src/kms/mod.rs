//! Tenants' keys in cloud KMSs (bring your own key): AWS KMS, Google Cloud KMS and Azure Key
//! Vault behind one small trait, [`KeyProvider`].
//!
//! A tenant names a key ([`KeyRef`]); the platform's own credentials for each cloud come from
//! the environment ([`KmsConfig::from_env`]); [`KmsConfig::provider`] gives the client for a key.
//! The clients speak each cloud's REST API over one shared reqwest client (rustls with `ring`;
//! see [`install_crypto_provider`]), follow no redirects, and never put key material or tokens
//! in errors, logs or `Debug` output.

pub mod aws;
pub mod azure;
mod config;
pub mod gcp;
mod keyref;
mod shared;
#[doc(hidden)]
pub mod testing;

pub use crate::outbound::install_crypto_provider;
pub use config::KmsConfig;
pub use keyref::KeyRef;

use futures::future::BoxFuture;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;
use zeroize::Zeroizing;

/// Which cloud holds a key.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// AWS Key Management Service.
    Aws,
    /// Google Cloud Key Management.
    Gcp,
    /// Azure Key Vault (and Managed HSM).
    Azure,
}

impl Provider {
    /// `aws`, `gcp` or `azure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = KmsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "aws" => Ok(Provider::Aws),
            "gcp" => Ok(Provider::Gcp),
            "azure" => Ok(Provider::Azure),
            _ => Err(KmsError::BadKeyRef(format!(
                "unknown KMS provider `{}`; use `aws`, `gcp` or `azure`",
                s.trim()
            ))),
        }
    }
}

/// What a KMS says about a key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Whether the key can be used now.
    pub enabled: bool,
    /// The provider's word for the state (`Enabled`, `PendingDeletion`, `DESTROY_SCHEDULED`...).
    pub state: String,
    /// The key version that wrapping uses (GCP primary version, Azure version); AWS has none.
    pub version: Option<String>,
}

/// A fresh plaintext data key and its wrapped form.
pub type DataKey = (Zeroizing<[u8; 32]>, Vec<u8>);

/// A key-encryption key in a KMS.
pub trait KeyProvider: Send + Sync {
    /// The key this client uses.
    fn key(&self) -> &KeyRef;

    /// Encrypts (wraps) a data key; `aad` is authenticated where the provider supports it
    /// (AWS EncryptionContext `{"tenantops": aad}`, GCP additionalAuthenticatedData; Azure RSA
    /// wrap has none).
    fn wrap<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, KmsError>>;

    /// Decrypts (unwraps) what [`KeyProvider::wrap`] returned, with the same `aad`.
    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        aad: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, KmsError>>;

    /// A fresh 32-byte data key and its wrapped form: AWS GenerateDataKey (KeySpec AES_256);
    /// GCP and Azure generate it locally (OsRng) and wrap it.
    fn generate_data_key<'a>(&'a self, aad: &'a str) -> BoxFuture<'a, Result<DataKey, KmsError>>;

    /// Key metadata: enabled or not, its state, the version wrapping will use (AWS DescribeKey,
    /// GCP GET cryptoKey, Azure GET key).
    fn describe<'a>(&'a self) -> BoxFuture<'a, Result<KeyInfo, KmsError>>;
}

/// Generates a data key locally and wraps it (GCP, Azure).
pub(crate) async fn generate_locally<P: KeyProvider + ?Sized>(
    provider: &P,
    aad: &str,
) -> Result<DataKey, KmsError> {
    use rand::RngCore;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut *key);
    let wrapped = provider.wrap(&*key, aad).await?;
    Ok((key, wrapped))
}

/// What went wrong talking to a KMS. Messages carry the provider's code and message, never
/// key material or credentials.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KmsError {
    /// The key reference does not have the provider's form; the message shows the form.
    #[error("bad key reference: {0}")]
    BadKeyRef(String),
    /// The platform's identity may not use the key.
    #[error("permission denied: the platform may not perform `{action}` on the key: {detail}")]
    PermissionDenied {
        /// The refused permission, e.g. `kms:GenerateDataKey`,
        /// `cloudkms.cryptoKeyVersions.useToEncrypt`, `wrapKey`.
        action: String,
        /// The provider's message.
        detail: String,
    },
    /// The key is disabled.
    #[error("the key is disabled: {detail}")]
    KeyDisabled {
        /// The provider's message.
        detail: String,
    },
    /// The key is scheduled for deletion (or destruction).
    #[error("the key is scheduled for deletion: {detail}")]
    KeyPendingDeletion {
        /// The provider's message.
        detail: String,
    },
    /// The key does not exist (or is not visible to the platform).
    #[error("the key was not found: {detail}")]
    KeyNotFound {
        /// The provider's message.
        detail: String,
    },
    /// The KMS could not be reached.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable {
        /// The URL (scheme, host and port) that did not answer.
        endpoint: String,
        /// What failed (connect, timeout...).
        detail: String,
    },
    /// The platform's credentials for the cloud are missing or invalid; names the variables.
    #[error("KMS credentials: {0}")]
    Credentials(String),
    /// Any other refusal (invalid ciphertext, throttling...): the provider's code and message.
    #[error("the KMS refused the request: {detail}")]
    Rejected {
        /// The provider's code and message.
        detail: String,
    },
}

impl KmsError {
    /// The console step that fixes it, for a key in `provider`.
    pub fn fix(&self, provider: Provider) -> String {
        use Provider::*;
        match (self, provider) {
            (KmsError::BadKeyRef(_), Aws) => "In the AWS console open Key Management Service → \
                Customer managed keys → your key, and copy its ARN \
                (arn:aws:kms:REGION:ACCOUNT:key/ID)."
                .into(),
            (KmsError::BadKeyRef(_), Gcp) => "In the Google Cloud console open Security → Key \
                Management → your key ring → your key, and copy its resource name \
                (Actions → Copy resource name: projects/P/locations/L/keyRings/R/cryptoKeys/K)."
                .into(),
            (KmsError::BadKeyRef(_), Azure) => "In the Azure portal open your key vault → Objects \
                → Keys → your key, and copy its Key Identifier \
                (https://VAULT.vault.azure.net/keys/NAME)."
                .into(),
            (KmsError::PermissionDenied { action, .. }, Aws) => format!(
                "In the AWS console open Key Management Service → Customer managed keys → your \
                 key → Key policy → Edit, and allow `{action}` (with kms:Encrypt, kms:Decrypt, \
                 kms:GenerateDataKey and kms:DescribeKey) for the platform's IAM principal."
            ),
            (KmsError::PermissionDenied { action, .. }, Gcp) => format!(
                "In the Google Cloud console open Security → Key Management → your key ring → \
                 your key → Permissions → Grant access, and give the platform's service account \
                 the role Cloud KMS CryptoKey Encrypter/Decrypter \
                 (roles/cloudkms.cryptoKeyEncrypterDecrypter), which includes `{action}`, and \
                 Cloud KMS Viewer (roles/cloudkms.viewer) to read the key."
            ),
            (KmsError::PermissionDenied { action, .. }, Azure) => format!(
                "In the Azure portal open your key vault → Access control (IAM) → Add role \
                 assignment, and give the platform's application the role Key Vault Crypto \
                 Service Encryption User (allows `{action}`); with the access-policy model, \
                 open Access policies and grant Get, Wrap Key and Unwrap Key instead."
            ),
            (KmsError::KeyDisabled { .. }, Aws) => "In the AWS console open Key Management \
                Service → Customer managed keys → your key → Key actions → Enable."
                .into(),
            (KmsError::KeyDisabled { .. }, Gcp) => "In the Google Cloud console open Security → \
                Key Management → your key ring → your key, select the primary version and \
                choose Enable."
                .into(),
            (KmsError::KeyDisabled { .. }, Azure) => "In the Azure portal open your key vault → \
                Objects → Keys → your key → its current version, set Enabled to Yes and Save."
                .into(),
            (KmsError::KeyPendingDeletion { .. }, Aws) => "In the AWS console open Key \
                Management Service → Customer managed keys → your key → Key actions → Cancel \
                key deletion, then Key actions → Enable."
                .into(),
            (KmsError::KeyPendingDeletion { .. }, Gcp) => "In the Google Cloud console open \
                Security → Key Management → your key ring → your key, select the version \
                scheduled for destruction and choose Restore, then Enable."
                .into(),
            (KmsError::KeyPendingDeletion { .. }, Azure) => "In the Azure portal open your key \
                vault → Objects → Keys → Manage deleted keys, select the key and choose Recover."
                .into(),
            (KmsError::KeyNotFound { .. }, Aws) => "Check the key ARN: the key must exist in \
                the ARN's region and account (AWS console → Key Management Service → Customer \
                managed keys, with that region selected)."
                .into(),
            (KmsError::KeyNotFound { .. }, Gcp) => "Check the key's resource name: project, \
                location, key ring and key must match a key in Security → Key Management."
                .into(),
            (KmsError::KeyNotFound { .. }, Azure) => "Check the Key Identifier: the vault and \
                key name must match a key in your key vault → Objects → Keys (a deleted key can \
                be recovered under Manage deleted keys)."
                .into(),
            (KmsError::Unreachable { endpoint, .. }, _) => format!(
                "Check that the platform can reach {endpoint} (DNS, firewall, outbound proxy), \
                 then retry."
            ),
            (KmsError::Credentials(_), Aws) => "Give the platform AWS credentials: set \
                AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for \
                temporary credentials) of an IAM principal, and AWS_REGION."
                .into(),
            (KmsError::Credentials(_), Gcp) => "Give the platform Google credentials: set \
                GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (IAM & Admin → \
                Service accounts → your account → Keys → Add key → JSON), or run on Google Cloud \
                with that service account attached."
                .into(),
            (KmsError::Credentials(_), Azure) => "Give the platform Azure credentials: set \
                AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET of an app registration \
                (Microsoft Entra ID → App registrations → your app → Certificates & secrets → \
                New client secret)."
                .into(),
            (KmsError::Rejected { .. }, _) => "Retry later; if it persists, the provider's \
                message says what it refused (for an invalid ciphertext: the data was wrapped \
                under another key or with other associated data)."
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        for p in [Provider::Aws, Provider::Gcp, Provider::Azure] {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        assert_eq!(" AWS ".parse::<Provider>().unwrap(), Provider::Aws);
        let err = "oracle".parse::<Provider>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad key reference: unknown KMS provider `oracle`; use `aws`, `gcp` or `azure`"
        );
    }

    #[test]
    fn fix_texts_name_the_console_step() {
        let denied = |action: &str| KmsError::PermissionDenied {
            action: action.into(),
            detail: "x".into(),
        };
        assert!(
            denied("kms:GenerateDataKey")
                .fix(Provider::Aws)
                .contains("Key policy → Edit, and allow `kms:GenerateDataKey`")
        );
        assert!(
            denied("cloudkms.cryptoKeyVersions.useToEncrypt")
                .fix(Provider::Gcp)
                .contains("roles/cloudkms.cryptoKeyEncrypterDecrypter")
        );
        assert!(
            denied("wrapKey")
                .fix(Provider::Azure)
                .contains("Key Vault Crypto Service Encryption User (allows `wrapKey`)")
        );
        let disabled = KmsError::KeyDisabled { detail: "x".into() };
        assert!(
            disabled
                .fix(Provider::Aws)
                .ends_with("Key actions → Enable.")
        );
        assert!(disabled.fix(Provider::Azure).contains("set Enabled to Yes"));
        let pending = KmsError::KeyPendingDeletion { detail: "x".into() };
        assert!(pending.fix(Provider::Aws).contains("Cancel key deletion"));
        assert!(pending.fix(Provider::Gcp).contains("Restore"));
        let creds = KmsError::Credentials("x".into());
        assert!(creds.fix(Provider::Aws).contains("AWS_ACCESS_KEY_ID"));
        assert!(
            creds
                .fix(Provider::Gcp)
                .contains("GOOGLE_APPLICATION_CREDENTIALS")
        );
        assert!(creds.fix(Provider::Azure).contains("AZURE_CLIENT_SECRET"));
        let unreachable = KmsError::Unreachable {
            endpoint: "https://kms.eu-west-1.amazonaws.com".into(),
            detail: "timeout".into(),
        };
        assert!(
            unreachable
                .fix(Provider::Aws)
                .contains("reach https://kms.eu-west-1.amazonaws.com")
        );
    }
}
