//! The platform master key and the keys derived from it.
//!
//! One 32-byte master key per deployment, kept outside the database (a `0600` file beside it, or
//! `TENANTOPS_MASTER_KEY`). From it HKDF derives the pepper of API-key digests and each tenant's
//! audit-checkpoint signing key, so a stolen database alone neither verifies guessed keys nor
//! forges checkpoints.

use crate::error::{Error, Result};
use crate::ids::TenantId;
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// The deployment's master key. `Debug` never prints it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
            Error::Config("the master key must be 64 hexadecimal digits (32 bytes)".into())
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads the key file at `path`; creates it (mode 0600) with a fresh key when `create` is
    /// set and no file exists.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text).map_err(|_| {
                Error::Config(format!(
                    "master key file {} is not 64 hexadecimal digits; restore it from backup",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                write_private(path, &hex::encode(*Self::generate().0))?;
                // Re-read: if another process created the file first, its key is the key.
                Self::load_or_create(path, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Config(format!(
                "master key file {} is missing but the database already holds data; restore the \
                 file or set TENANTOPS_MASTER_KEY",
                path.display()
            ))),
            Err(e) => Err(Error::Config(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))),
        }
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"tenantops/v1"), &*self.0);
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 255*32 limit, so expand cannot fail.
        hk.expand(info, &mut *out)
            .expect("HKDF output length is valid");
        out
    }

    /// Unwraps the master key kept in `file`, wrapped by the KMS key `key`; when `create` is set
    /// and there is no file, asks the KMS for a fresh key and keeps it there wrapped. Every
    /// failure is one line naming the file or the KMS, and the fix.
    pub async fn load_or_create_in_kms(
        kms: &crate::kms::KmsConfig,
        key: &crate::kms::KeyRef,
        file: &Path,
        create: bool,
    ) -> Result<Self> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD as B64;
        const AAD: &str = "tenantops/master-key";
        let name = format!("{}:{}", key.provider.as_str(), key.id);
        let kms_err = |what: &str, e: crate::kms::KmsError| {
            Error::Config(format!(
                "the master key cannot be {what} with the KMS key {name}: {e}; fix: {}",
                e.fix(key.provider)
            ))
        };
        let provider = kms.provider(key).map_err(|e| kms_err("reached", e))?;
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let stored: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
                    Error::Config(format!(
                        "wrapped master key file {} is not the JSON tenantops writes; restore it",
                        file.display()
                    ))
                })?;
                if stored["kek"].as_str() != Some(name.as_str()) {
                    return Err(Error::Config(format!(
                        "wrapped master key file {} is wrapped by {}, not by                          TENANTOPS_MASTER_KEY_URI={name}",
                        file.display(),
                        stored["kek"].as_str().unwrap_or("an unknown key")
                    )));
                }
                let wrapped = stored["wrapped"]
                    .as_str()
                    .and_then(|w| B64.decode(w).ok())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "wrapped master key file {} holds no wrapped key",
                            file.display()
                        ))
                    })?;
                let plain = provider
                    .unwrap(&wrapped, AAD)
                    .await
                    .map_err(|e| kms_err("unwrapped", e))?;
                let bytes = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| {
                    Error::Config("the unwrapped master key is not 32 bytes".into())
                })?;
                Ok(Self::from_bytes(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let (plain, wrapped) = provider
                    .generate_data_key(AAD)
                    .await
                    .map_err(|e| kms_err("generated", e))?;
                let body = serde_json::json!({ "kek": name, "wrapped": B64.encode(&wrapped) });
                write_private(file, &body.to_string())?;
                drop(plain);
                // If another process wrote the file first, its key is the key.
                Box::pin(Self::load_or_create_in_kms(kms, key, file, false)).await
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Config(format!(
                "wrapped master key file {} is missing but the database already holds data;                  restore the file",
                file.display()
            ))),
            Err(e) => Err(Error::Config(format!(
                "cannot read wrapped master key file {}: {e}",
                file.display()
            ))),
        }
    }

    /// The HMAC key under which API-key digests are computed.
    pub fn api_key_pepper(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"api-key-digest")
    }

    /// A tenant's key-encryption key for connector secrets (BYOK providers would replace it).
    fn tenant_kek(&self, tenant: &TenantId) -> Zeroizing<[u8; 32]> {
        let mut info = b"connector-kek/".to_vec();
        info.extend_from_slice(tenant.as_str().as_bytes());
        self.derive(&info)
    }

    /// Envelope-encrypts a connector secret (e.g. a Slack bot token from an OAuth install): a
    /// fresh data key encrypts it with XChaCha20-Poly1305, and the data key is wrapped under the
    /// tenant's key-encryption key; `purpose` (e.g. `slack:T0123`) is authenticated with both,
    /// so a sealed value cannot be moved to another record or tenant.
    pub fn seal(&self, tenant: &TenantId, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        use chacha20poly1305::XChaCha20Poly1305;
        use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
        let data_key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let kek = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*self.tenant_kek(tenant)));
        let wrap_nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let wrapped = kek
            .encrypt(
                &wrap_nonce,
                Payload {
                    msg: &data_key[..],
                    aad: purpose.as_bytes(),
                },
            )
            .expect("encrypting 32 bytes cannot fail");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = XChaCha20Poly1305::new(&data_key)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("encryption of a bounded secret cannot fail");
        let mut out = b"E1".to_vec();
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for the same tenant and purpose.
    pub fn open(
        &self,
        tenant: &TenantId,
        purpose: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
        let bad = || {
            Error::Internal(
                "a sealed connector secret does not open (wrong master key, tenant or record)"
                    .into(),
            )
        };
        let body = sealed.strip_prefix(b"E1").ok_or_else(bad)?;
        if body.len() < 24 + 48 + 24 + 16 {
            return Err(bad());
        }
        let (wrap_nonce, rest) = body.split_at(24);
        let (wrapped, rest) = rest.split_at(48);
        let (nonce, ct) = rest.split_at(24);
        let nonce_of = |b: &[u8]| -> Result<XNonce> {
            Ok(XNonce::from(<[u8; 24]>::try_from(b).map_err(|_| bad())?))
        };
        let kek = XChaCha20Poly1305::new(&Key::from(*self.tenant_kek(tenant)));
        let data_key = Zeroizing::new(
            kek.decrypt(
                &nonce_of(wrap_nonce)?,
                Payload {
                    msg: wrapped,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| bad())?,
        );
        let key = <[u8; 32]>::try_from(data_key.as_slice()).map_err(|_| bad())?;
        let plain = XChaCha20Poly1305::new(&Key::from(key))
            .decrypt(
                &nonce_of(nonce)?,
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        Ok(Zeroizing::new(plain))
    }

    /// The key of a tenant's blind indexes (lookups of sealed values by value).
    pub fn blind_index_key(&self, tenant: &TenantId) -> Zeroizing<[u8; 32]> {
        let mut info = b"blind-index/".to_vec();
        info.extend_from_slice(tenant.as_str().as_bytes());
        self.derive(&info)
    }

    /// The seed of a tenant's audit-checkpoint Ed25519 signing key.
    pub fn audit_seed(&self, tenant: &TenantId) -> Zeroizing<[u8; 32]> {
        let mut info = b"audit-checkpoint/".to_vec();
        info.extend_from_slice(tenant.as_str().as_bytes());
        self.derive(&info)
    }
}

/// Creates `path` holding `content`, readable by the owner only, atomically and without ever
/// replacing an existing file: the content is written to a temporary file first and hard-linked
/// into place, so a concurrent reader sees either no file or the whole key. When another process
/// won the race, its key is kept and returned by the caller's re-read.
fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Error::Config(format!(
            "cannot create master key file {}: {e}",
            path.display()
        ))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".master-key.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(content.as_bytes()).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(MasterKey::load_or_create(&path, false).is_err());
        let a = MasterKey::load_or_create(&path, true).unwrap();
        let b = MasterKey::load_or_create(&path, false).unwrap();
        assert_eq!(*a.api_key_pepper(), *b.api_key_pepper());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{a:?}"), "MasterKey(redacted)");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_tenant_and_purpose() {
        let m = MasterKey::generate();
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let sealed = m.seal(&a, "slack:T1", b"xoxb-secret");
        assert!(!sealed.windows(11).any(|w| w == b"xoxb-secret"));
        assert_eq!(
            m.open(&a, "slack:T1", &sealed).unwrap().as_slice(),
            b"xoxb-secret"
        );
        assert!(m.open(&b, "slack:T1", &sealed).is_err(), "another tenant");
        assert!(m.open(&a, "slack:T2", &sealed).is_err(), "another record");
        assert!(
            MasterKey::generate().open(&a, "slack:T1", &sealed).is_err(),
            "another master key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(m.open(&a, "slack:T1", &tampered).is_err());
    }

    #[test]
    fn derived_keys_differ_per_purpose_and_tenant() {
        let k = MasterKey::generate();
        let t1 = TenantId::generate();
        let t2 = TenantId::generate();
        assert_ne!(*k.audit_seed(&t1), *k.audit_seed(&t2));
        assert_ne!(*k.audit_seed(&t1), *k.api_key_pepper());
    }
}
