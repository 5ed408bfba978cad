//! [`KmsConfig`]: the platform's credentials and endpoints for each cloud, read from the
//! environment, and the one place that picks a client for a key.

use super::shared::Shared;
use super::{KeyProvider, KeyRef, KmsError, Provider, aws, azure, gcp};
use crate::outbound::env_flag;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Platform credentials and endpoints, from the environment (each cloud's standard variables).
///
/// Cheap to clone: clones share one HTTP client and the OAuth token caches. `Debug` shows which
/// credentials are set, never their values.
#[derive(Clone, Default)]
pub struct KmsConfig {
    inner: Arc<Shared>,
}

impl KmsConfig {
    /// Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (default
    /// region; a key ARN's region wins), AWS_ENDPOINT_URL_KMS (else
    /// `https://kms.{region}.amazonaws.com`); GOOGLE_APPLICATION_CREDENTIALS (service-account
    /// JSON; without it the metadata server, GCE_METADATA_HOST overriding its host),
    /// TENANTOPS_GCP_KMS_ENDPOINT (default `https://cloudkms.googleapis.com`); AZURE_TENANT_ID,
    /// AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, TENANTOPS_AZURE_AUTHORITY_HOST (default
    /// `https://login.microsoftonline.com`); TENANTOPS_ALLOW_LOOPBACK_URLS=true.
    pub fn from_env() -> KmsConfig {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`KmsConfig::from_env`], reading variables through `var` (tests use a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> KmsConfig {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| get(name).map(Zeroizing::new);
        let url = |name: &str| get(name).map(|v| v.trim_end_matches('/').to_owned());
        KmsConfig {
            inner: Arc::new(Shared {
                aws_access_key_id: get("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key: secret("AWS_SECRET_ACCESS_KEY"),
                aws_session_token: secret("AWS_SESSION_TOKEN"),
                aws_region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
                aws_endpoint: url("AWS_ENDPOINT_URL_KMS"),
                gcp_credentials_file: get("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
                gcp_endpoint: url("TENANTOPS_GCP_KMS_ENDPOINT"),
                gce_metadata_host: get("GCE_METADATA_HOST"),
                azure_tenant_id: get("AZURE_TENANT_ID"),
                azure_client_id: get("AZURE_CLIENT_ID"),
                azure_client_secret: secret("AZURE_CLIENT_SECRET"),
                azure_authority: url("TENANTOPS_AZURE_AUTHORITY_HOST"),
                allow_loopback: env_flag(get(crate::outbound::ALLOW_LOOPBACK_ENV).as_deref()),
                ..Shared::default()
            }),
        }
    }

    /// Whether loopback URLs (local fakes) are allowed for tenant-given key URLs.
    pub fn allow_loopback(&self) -> bool {
        self.inner.allow_loopback
    }

    /// A client for `key`; all clients of this configuration share one HTTP client and cache
    /// OAuth access tokens until shortly before they expire.
    pub fn provider(&self, key: &KeyRef) -> Result<Arc<dyn KeyProvider>, KmsError> {
        Ok(match key.provider {
            Provider::Aws => Arc::new(aws::AwsKms::new(self.inner.clone(), key.clone())?),
            Provider::Gcp => Arc::new(gcp::GcpKms::new(self.inner.clone(), key.clone())?),
            Provider::Azure => Arc::new(azure::AzureKms::new(self.inner.clone(), key.clone())?),
        })
    }

    /// What the clients of this configuration share.
    pub(crate) fn shared(&self) -> &Shared {
        &self.inner
    }
}

impl fmt::Debug for KmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let set = |b: bool| if b { "set" } else { "unset" };
        f.debug_struct("KmsConfig")
            .field("aws_credentials", &set(i.aws_secret_access_key.is_some()))
            .field("aws_session_token", &set(i.aws_session_token.is_some()))
            .field("aws_region", &i.aws_region)
            .field("aws_endpoint", &i.aws_endpoint)
            .field("gcp_credentials_file", &i.gcp_credentials_file)
            .field("gcp_endpoint", &i.gcp_endpoint)
            .field("gce_metadata_host", &i.gce_metadata_host)
            .field("azure_tenant_id", &i.azure_tenant_id)
            .field("azure_client_id", &i.azure_client_id)
            .field("azure_client_secret", &set(i.azure_client_secret.is_some()))
            .field("azure_authority", &i.azure_authority)
            .field("allow_loopback", &i.allow_loopback)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn debug_redacts_secrets() {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-aws"),
            ("AWS_SESSION_TOKEN", "very-secret-session"),
            ("AZURE_CLIENT_SECRET", "very-secret-azure"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("TENANTOPS_ALLOW_LOOPBACK_URLS", "true"),
        ]);
        let config = KmsConfig::from_vars(|k| vars.get(k).map(|v| v.to_string()));
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("aws_credentials: \"set\""), "{debug}");
        assert!(debug.contains("tenant-1"), "{debug}");
        assert!(config.allow_loopback());
        assert!(!KmsConfig::from_vars(|_| None).allow_loopback());
    }
}
