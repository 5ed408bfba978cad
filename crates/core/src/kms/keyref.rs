//! [`KeyRef`]: a tenant's key reference, checked for form.

use super::{KmsError, Provider};
use url::{Host, Url};

const AWS_FORM: &str = "an AWS KMS key ARN such as \
    arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab \
    (or an alias ARN arn:aws:kms:eu-west-1:111122223333:alias/NAME)";
const GCP_FORM: &str = "a Cloud KMS key resource name such as \
    projects/my-project/locations/europe-west1/keyRings/my-ring/cryptoKeys/my-key \
    (optionally followed by /cryptoKeyVersions/N)";
const AZURE_FORM: &str = "an Azure Key Vault key identifier such as \
    https://my-vault.vault.azure.net/keys/my-key (optionally followed by /VERSION)";

/// Vault host suffixes of the Azure clouds (public, China, US Government) and Managed HSM.
const AZURE_SUFFIXES: &[&str] = &[
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
    ".managedhsm.azure.net",
    ".managedhsm.azure.cn",
    ".managedhsm.usgovcloudapi.net",
];

/// A tenant's key reference, checked for form: AWS key ARN `arn:aws:kms:REGION:ACCOUNT:key/ID`
/// (also alias ARNs `arn:aws:kms:REGION:ACCOUNT:alias/NAME`; partitions aws, aws-cn,
/// aws-us-gov), GCP `projects/P/locations/L/keyRings/R/cryptoKeys/K` (optionally
/// `/cryptoKeyVersions/N`), Azure `https://VAULT.vault.azure.net/keys/NAME[/VERSION]` (also the
/// other sovereign-cloud and Managed HSM suffixes; and, only when loopback URLs are allowed,
/// `http://127.0.0.1:PORT/keys/NAME[/VERSION]` so tests can use a local fake).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KeyRef {
    /// The cloud.
    pub provider: Provider,
    /// The normalized reference text (ARN, resource name or key URL).
    pub id: String,
}

impl KeyRef {
    /// Checks `text` for the form of `provider`'s key references and normalizes it (trimmed;
    /// Azure: lower-case host, no trailing slash).
    pub fn parse(provider: Provider, text: &str, allow_loopback: bool) -> Result<KeyRef, KmsError> {
        let text = text.trim();
        let id = match provider {
            Provider::Aws => parse_aws(text).map(|_| text.to_owned()),
            Provider::Gcp => parse_gcp(text).map(|_| text.to_owned()),
            Provider::Azure => parse_azure(text, allow_loopback),
        }?;
        Ok(KeyRef { provider, id })
    }

    /// AWS: the region named in the ARN.
    pub fn aws_region(&self) -> Option<&str> {
        match self.provider {
            Provider::Aws => self.id.split(':').nth(3),
            _ => None,
        }
    }

    /// GCP: the cryptoKey name (without any version) and the pinned version, if any.
    pub fn gcp_key(&self) -> Option<(&str, Option<&str>)> {
        if self.provider != Provider::Gcp {
            return None;
        }
        Some(match self.id.split_once("/cryptoKeyVersions/") {
            Some((key, version)) => (key, Some(version)),
            None => (self.id.as_str(), None),
        })
    }

    /// Azure: the vault base URL (scheme and authority), the key name and the pinned version.
    pub fn azure_key(&self) -> Option<(&str, &str, Option<&str>)> {
        if self.provider != Provider::Azure {
            return None;
        }
        let (base, rest) = self.id.split_once("/keys/")?;
        Some(match rest.split_once('/') {
            Some((name, version)) => (base, name, Some(version)),
            None => (base, rest, None),
        })
    }
}

fn bad(form: &str, problem: impl std::fmt::Display) -> KmsError {
    KmsError::BadKeyRef(format!("{problem}; expected {form}"))
}

fn parse_aws(text: &str) -> Result<(), KmsError> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "kms" {
        return Err(bad(AWS_FORM, format!("`{text}` is not a KMS ARN")));
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        return Err(bad(
            AWS_FORM,
            format!(
                "unknown AWS partition `{}` (aws, aws-cn or aws-us-gov)",
                parts[1]
            ),
        ));
    }
    let region = parts[3];
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(AWS_FORM, format!("`{region}` is not an AWS region")));
    }
    if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            AWS_FORM,
            format!("`{}` is not a 12-digit AWS account ID", parts[4]),
        ));
    }
    let resource = parts[5];
    let ok = if let Some(id) = resource.strip_prefix("key/") {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    } else if let Some(name) = resource.strip_prefix("alias/") {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    } else {
        false
    };
    if !ok {
        return Err(bad(
            AWS_FORM,
            format!("`{resource}` is neither key/ID nor alias/NAME"),
        ));
    }
    Ok(())
}

fn parse_gcp(text: &str) -> Result<(), KmsError> {
    let parts: Vec<&str> = text.split('/').collect();
    let labels = ["projects", "locations", "keyRings", "cryptoKeys"];
    if !(parts.len() == 8 || parts.len() == 10) {
        return Err(bad(
            GCP_FORM,
            format!("`{text}` is not a key resource name"),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        if parts[2 * i] != *label {
            return Err(bad(
                GCP_FORM,
                format!("expected `{label}/` at part {} of `{text}`", 2 * i + 1),
            ));
        }
        let value = parts[2 * i + 1];
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        if value.is_empty() || !value.bytes().all(allowed) {
            return Err(bad(
                GCP_FORM,
                format!("`{value}` is not a valid {label} segment"),
            ));
        }
    }
    if parts.len() == 10
        && (parts[8] != "cryptoKeyVersions"
            || parts[9].is_empty()
            || !parts[9].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad(
            GCP_FORM,
            format!("`{}/{}` is not cryptoKeyVersions/N", parts[8], parts[9]),
        ));
    }
    Ok(())
}

fn parse_azure(text: &str, allow_loopback: bool) -> Result<String, KmsError> {
    let url =
        Url::parse(text).map_err(|e| bad(AZURE_FORM, format!("`{text}` is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            AZURE_FORM,
            "the key URL must not carry a user name or password",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            AZURE_FORM,
            "the key URL must not carry a query or fragment",
        ));
    }
    let loopback = matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback());
    let base = if loopback && allow_loopback && url.scheme() == "http" {
        let port = url
            .port()
            .ok_or_else(|| bad(AZURE_FORM, "a loopback key URL needs a port"))?;
        format!("http://{}:{port}", url.host_str().unwrap_or_default())
    } else {
        if url.scheme() != "https" {
            return Err(bad(AZURE_FORM, "the key URL must use https"));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let vault = AZURE_SUFFIXES
            .iter()
            .find_map(|suffix| host.strip_suffix(suffix))
            .ok_or_else(|| {
                bad(
                    AZURE_FORM,
                    format!("`{host}` is not an Azure Key Vault host (VAULT.vault.azure.net)"),
                )
            })?;
        let vault_ok = (3..=24).contains(&vault.len())
            && vault
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && vault.as_bytes()[0].is_ascii_alphabetic();
        if !vault_ok {
            return Err(bad(
                AZURE_FORM,
                format!("`{vault}` is not a key vault name (3-24 letters, digits and hyphens)"),
            ));
        }
        if url.port().is_some() {
            return Err(bad(AZURE_FORM, "the key URL must not name a port"));
        }
        format!("https://{host}")
    };
    let path = url.path().trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name_ok = |s: &str| {
        !s.is_empty() && s.len() <= 127 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    match segments.as_slice() {
        ["keys", name] if name_ok(name) => Ok(format!("{base}/keys/{name}")),
        ["keys", name, version] if name_ok(name) && name_ok(version) => {
            Ok(format!("{base}/keys/{name}/{version}"))
        }
        _ => Err(bad(
            AZURE_FORM,
            format!("`{path}` is not /keys/NAME or /keys/NAME/VERSION"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: Provider, text: &str) -> KeyRef {
        KeyRef::parse(p, text, false).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(p: Provider, text: &str, loopback: bool) -> String {
        KeyRef::parse(p, text, loopback).unwrap_err().to_string()
    }

    #[test]
    fn aws_forms() {
        let k = ok(
            Provider::Aws,
            " arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab ",
        );
        assert_eq!(
            k.id,
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert_eq!(k.aws_region(), Some("eu-west-1"));
        ok(
            Provider::Aws,
            "arn:aws:kms:us-east-1:111122223333:alias/tenant/keys_1",
        );
        ok(
            Provider::Aws,
            "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd",
        );
        ok(
            Provider::Aws,
            "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/abc",
        );

        for (text, says) in [
            ("1234abcd-12ab-34cd-56ef-1234567890ab", "is not a KMS ARN"),
            (
                "arn:aws:s3:eu-west-1:111122223333:key/abc",
                "is not a KMS ARN",
            ),
            (
                "arn:azure:kms:eu-west-1:111122223333:key/abc",
                "unknown AWS partition",
            ),
            ("arn:aws:kms::111122223333:key/abc", "is not an AWS region"),
            (
                "arn:aws:kms:eu-west-1:1111:key/abc",
                "12-digit AWS account ID",
            ),
            (
                "arn:aws:kms:eu-west-1:111122223333:key/",
                "neither key/ID nor alias/NAME",
            ),
            (
                "arn:aws:kms:eu-west-1:111122223333:secret/x",
                "neither key/ID nor alias/NAME",
            ),
        ] {
            let e = err(Provider::Aws, text, false);
            assert!(e.contains(says), "{text}: {e}");
            assert!(
                e.contains("expected an AWS KMS key ARN such as arn:aws:kms:eu-west-1:"),
                "{e}"
            );
        }
    }

    #[test]
    fn gcp_forms() {
        let k = ok(
            Provider::Gcp,
            "projects/my-project/locations/europe-west1/keyRings/ring/cryptoKeys/key",
        );
        assert_eq!(
            k.gcp_key(),
            Some((
                "projects/my-project/locations/europe-west1/keyRings/ring/cryptoKeys/key",
                None
            ))
        );
        let k = ok(
            Provider::Gcp,
            "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3",
        );
        assert_eq!(
            k.gcp_key(),
            Some((
                "projects/p/locations/global/keyRings/r/cryptoKeys/k",
                Some("3")
            ))
        );
        for (text, says) in [
            (
                "projects/p/locations/l/keyRings/r",
                "is not a key resource name",
            ),
            (
                "project/p/locations/l/keyRings/r/cryptoKeys/k",
                "expected `projects/`",
            ),
            (
                "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/x",
                "cryptoKeyVersions/N",
            ),
            (
                "projects/p/locations/l/keyRings/r w/cryptoKeys/k",
                "not a valid keyRings segment",
            ),
        ] {
            let e = err(Provider::Gcp, text, false);
            assert!(e.contains(says), "{text}: {e}");
            assert!(
                e.contains("expected a Cloud KMS key resource name such as projects/"),
                "{e}"
            );
        }
    }

    #[test]
    fn azure_forms() {
        let k = ok(
            Provider::Azure,
            "https://My-Vault.vault.azure.net/keys/tenant-key/",
        );
        assert_eq!(k.id, "https://my-vault.vault.azure.net/keys/tenant-key");
        assert_eq!(
            k.azure_key(),
            Some(("https://my-vault.vault.azure.net", "tenant-key", None))
        );
        let k = ok(
            Provider::Azure,
            "https://vault1.vault.usgovcloudapi.net/keys/k/0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            k.azure_key().unwrap().2,
            Some("0123456789abcdef0123456789abcdef")
        );
        ok(Provider::Azure, "https://vault1.vault.azure.cn/keys/k");
        ok(Provider::Azure, "https://hsm1.managedhsm.azure.net/keys/k");

        for (text, says) in [
            ("http://my-vault.vault.azure.net/keys/k", "must use https"),
            (
                "https://my-vault.example.com/keys/k",
                "is not an Azure Key Vault host",
            ),
            (
                "https://x.vault.azure.net/keys/k",
                "is not a key vault name",
            ),
            (
                "https://my-vault.vault.azure.net/secrets/k",
                "is not /keys/NAME",
            ),
            ("https://my-vault.vault.azure.net/keys/k?x=1", "query"),
            (
                "https://u:p@my-vault.vault.azure.net/keys/k",
                "user name or password",
            ),
            ("https://my-vault.vault.azure.net:8443/keys/k", "port"),
            ("my-vault/keys/k", "is not a URL"),
            ("http://127.0.0.1:8080/keys/k", "must use https"),
        ] {
            let e = err(Provider::Azure, text, false);
            assert!(e.contains(says), "{text}: {e}");
            assert!(
                e.contains("expected an Azure Key Vault key identifier such as https://"),
                "{e}"
            );
        }
        // Loopback only when allowed.
        let k = KeyRef::parse(Provider::Azure, "http://127.0.0.1:8080/keys/k/v1", true).unwrap();
        assert_eq!(
            k.azure_key(),
            Some(("http://127.0.0.1:8080", "k", Some("v1")))
        );
        assert!(err(Provider::Azure, "http://10.0.0.1:8080/keys/k", true).contains("https"));
    }
}
