//! What all KMS clients of one [`super::KmsConfig`] share: the platform's settings, the HTTP
//! clients, the OAuth token caches; and the request helpers.

use super::KmsError;
use crate::outbound::{CONNECT_TIMEOUT, Guard, REQUEST_TIMEOUT, install_crypto_provider};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// Default Cloud KMS endpoint.
pub(crate) const GCP_DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
/// Default metadata server host of Google Compute Engine.
pub(crate) const GCE_METADATA_DEFAULT_HOST: &str = "metadata.google.internal";
/// Default Microsoft identity platform host.
pub(crate) const AZURE_DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The platform's settings for each cloud (from the environment), the shared HTTP clients and
/// token caches.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) aws_access_key_id: Option<String>,
    pub(crate) aws_secret_access_key: Option<Zeroizing<String>>,
    pub(crate) aws_session_token: Option<Zeroizing<String>>,
    pub(crate) aws_region: Option<String>,
    pub(crate) aws_endpoint: Option<String>,
    pub(crate) gcp_credentials_file: Option<PathBuf>,
    pub(crate) gcp_endpoint: Option<String>,
    pub(crate) gce_metadata_host: Option<String>,
    pub(crate) azure_tenant_id: Option<String>,
    pub(crate) azure_client_id: Option<String>,
    pub(crate) azure_client_secret: Option<Zeroizing<String>>,
    pub(crate) azure_authority: Option<String>,
    pub(crate) allow_loopback: bool,
    pub(crate) http: OnceLock<reqwest::Client>,
    pub(crate) guarded: OnceLock<reqwest::Client>,
    pub(crate) gcp_token: Mutex<Option<CachedToken>>,
    pub(crate) azure_token: Mutex<Option<CachedToken>>,
}

/// An OAuth access token and when to stop using it.
pub(crate) struct CachedToken {
    value: Zeroizing<String>,
    until: Instant,
}

impl Shared {
    /// The HTTP client for platform-configured endpoints (AWS, GCP, token endpoints).
    pub(crate) fn http(&self) -> Result<reqwest::Client, KmsError> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| KmsError::Rejected {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// The guarded HTTP client for tenant-given URLs (Azure vaults): see [`crate::outbound`].
    pub(crate) fn guarded_http(&self) -> Result<reqwest::Client, KmsError> {
        if let Some(client) = self.guarded.get() {
            return Ok(client.clone());
        }
        let client = self.guard().client().map_err(|e| KmsError::Rejected {
            detail: e.to_string(),
        })?;
        Ok(self.guarded.get_or_init(|| client).clone())
    }

    pub(crate) fn guard(&self) -> Guard {
        Guard::new(self.allow_loopback)
    }
}

/// Returns the cached token in `slot`, or fetches one (`fetch` gives the token and its lifetime
/// in seconds) and caches it until a minute (or a tenth of its life, if shorter) before expiry.
pub(crate) async fn cached_token<F, Fut>(
    slot: &Mutex<Option<CachedToken>>,
    fetch: F,
) -> Result<Zeroizing<String>, KmsError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(Zeroizing<String>, u64), KmsError>>,
{
    let mut slot = slot.lock().await;
    if let Some(token) = slot.as_ref().filter(|t| Instant::now() < t.until) {
        return Ok(token.value.clone());
    }
    let (value, lifetime) = fetch().await?;
    let margin = (lifetime / 10).min(60);
    *slot = Some(CachedToken {
        value: value.clone(),
        until: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
    });
    Ok(value)
}

/// Forgets a cached token (after the API refused it).
/// An OAuth 2.0 token endpoint's answer (RFC 6749 §5.1): the access token and its lifetime,
/// taken out of the body without a copy left behind.
pub(crate) fn access_token(
    body: &[u8],
    endpoint: &str,
) -> Result<(Zeroizing<String>, u64), KmsError> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: String,
        #[serde(default = "default_lifetime")]
        expires_in: u64,
    }
    fn default_lifetime() -> u64 {
        3600
    }
    let mut token: TokenResponse = serde_json::from_slice(body).map_err(|_| {
        KmsError::Credentials(format!("{endpoint} answered without an access_token"))
    })?;
    let value = Zeroizing::new(std::mem::take(&mut token.access_token));
    Ok((value, token.expires_in))
}

pub(crate) async fn forget_token(slot: &Mutex<Option<CachedToken>>) {
    *slot.lock().await = None;
}

/// Sends a request; connection failures and timeouts become [`KmsError::Unreachable`] naming
/// `endpoint`. Returns the status and body.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    endpoint: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), KmsError> {
    let unreachable = |e: reqwest::Error| KmsError::Unreachable {
        endpoint: origin(endpoint),
        detail: error_chain(&e.without_url()),
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_redirection() {
        return Err(KmsError::Rejected {
            detail: format!(
                "unexpected redirect ({status}) from {}; redirects are not followed",
                origin(endpoint)
            ),
        });
    }
    Ok((status, body.to_vec()))
}

/// Scheme, host and port of a URL (no path, no query).
pub(crate) fn origin(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => endpoint.to_owned(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A short, safe excerpt of a response body for error messages that lack a structured one.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_cached_until_shortly_before_expiry() {
        let slot = Mutex::new(None);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let fetch = |life: u64| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok((Zeroizing::new("t".to_owned()), life)) }
        };
        cached_token(&slot, || fetch(3600)).await.unwrap();
        cached_token(&slot, || fetch(3600)).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        forget_token(&slot).await;
        // A token that expires now is not reused.
        cached_token(&slot, || fetch(0)).await.unwrap();
        cached_token(&slot, || fetch(0)).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn origin_keeps_scheme_host_and_port() {
        assert_eq!(origin("http://127.0.0.1:4566/"), "http://127.0.0.1:4566");
        assert_eq!(
            origin("https://kms.eu-west-1.amazonaws.com/"),
            "https://kms.eu-west-1.amazonaws.com"
        );
    }
}
