//! The one sealing service: everything secret or personal a tenant stores is sealed here.
//!
//! Envelope encryption with a data key per tenant epoch ([`keys`]); each data key is wrapped by
//! the tenant's key-encryption key — its own KMS key when BYOK is active ([`crate::kms`]), else
//! the platform key derived from the master key. Unwrapped keys live in a per-process cache for
//! a short time ([`Vault::ttl`]) and are zeroized when dropped, so an operation costs no KMS call
//! while the cache is warm, and a key the tenant revokes upstream stops working within the TTL.
//!
//! Loading keys is the engine's (`engine/keys.rs`), as is the background re-wrap
//! (`engine/rewrap.rs`). Operations never wait for a KMS inside the writer: dispatch loads the caller's keys before
//! the transaction ([`crate::Operation::KEYS`]), and work that must talk to a KMS runs in
//! [`crate::Operation::prepare`], outside any transaction.

pub mod archive;
pub mod keys;
pub(crate) mod rewrap;

/// The sealed columns, for naming a [`keys::Place`] from outside the crate (the store's
/// module is private).
pub use crate::store::vault::{BOT_TOKEN, PERSONA_EMAIL, PERSONA_NAME, SEALED, SealedColumn};

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::kms::{KeyRef, KmsConfig, KmsError, Provider};
use crate::secrets::MasterKey;
use crate::store::vault::DataKeyRow;
use keys::TenantKeys;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use zeroize::Zeroizing;

/// The key-encryption key of the platform, as data-key rows name it.
pub const PLATFORM_KEK: &str = "platform";

/// How long unwrapped keys stay cached by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The sealing service of one process: its KMS clients and its cache of unwrapped keys.
pub struct Vault {
    master: MasterKey,
    kms: KmsConfig,
    ttl: Duration,
    pub(crate) cache: Mutex<HashMap<TenantId, Cached>>,
    pub(crate) loading: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Woken when a value sealed under an older epoch is read, or a rotation starts.
    pub stale: Arc<Notify>,
}

pub(crate) enum Cached {
    Ready(Arc<TenantKeys>, Instant),
    Failed(String, Instant),
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault sealing under `master` (the platform key) and tenants' keys reached with `kms`.
    pub fn new(master: MasterKey, kms: KmsConfig, ttl: Duration) -> Self {
        Self {
            master,
            kms,
            ttl,
            cache: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            stale: Arc::new(Notify::new()),
        }
    }

    /// How long unwrapped keys stay cached.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The platform key.
    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The KMS clients.
    pub fn kms(&self) -> &KmsConfig {
        &self.kms
    }

    /// Drops a tenant's cached keys (its key changed, or was revoked): the next use unwraps
    /// them again, or fails.
    pub fn forget(&self, tenant: &TenantId) {
        self.lock_cache().remove(tenant);
    }

    /// Drops every cached key.
    pub fn forget_all(&self) {
        self.lock_cache().clear();
    }

    pub(crate) fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn cached(&self, tenant: &TenantId) -> Option<Result<Arc<TenantKeys>>> {
        let cache = self.lock_cache();
        match cache.get(tenant)? {
            Cached::Ready(k, at) if at.elapsed() < self.ttl => Some(Ok(k.clone())),
            Cached::Failed(why, at) if at.elapsed() < self.retry_after() => {
                Some(Err(Error::KeysUnavailable(why.clone())))
            }
            _ => None,
        }
    }

    /// How long a failure is remembered before the KMS is asked again.
    fn retry_after(&self) -> Duration {
        self.ttl.min(Duration::from_secs(5))
    }

    /// A fresh data key for `tenant`'s `epoch` and its wrapping under the platform key.
    pub(crate) fn platform_data_key(
        &self,
        tenant: &TenantId,
        epoch: u32,
    ) -> (Zeroizing<[u8; 32]>, Vec<u8>) {
        use rand::RngCore;
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut dek[..]);
        let wrapped = self.master.seal(tenant, &platform_purpose(epoch), &dek[..]);
        (dek, wrapped)
    }

    /// A new tenant's first data key: its keys, and the wrapped key to store in the
    /// transaction that creates the tenant.
    pub(crate) fn first_keys(&self, tenant: &TenantId) -> Result<(TenantKeys, Vec<u8>)> {
        let (dek, wrapped) = self.platform_data_key(tenant, 1);
        let keys = TenantKeys::new(
            tenant.clone(),
            vec![(1, dek)],
            &self.master,
            Some(self.stale.clone()),
        )?;
        Ok((keys, wrapped))
    }

    /// Unwraps a fresh platform data key (see [`Vault::platform_data_key`]).
    pub(crate) fn open_platform(
        &self,
        tenant: &TenantId,
        row: &DataKeyRow,
    ) -> Result<Zeroizing<[u8; 32]>> {
        let plain = self
            .master
            .open(tenant, &platform_purpose(epoch(row)?), &row.wrapped)?;
        to_key(&plain)
    }
}

fn platform_purpose(epoch: u32) -> String {
    format!("dek/{epoch}")
}

/// What a tenant's BYOK data key is authenticated with at its KMS.
pub(crate) fn kms_context(tenant: &TenantId, epoch: u32) -> String {
    format!("tenantops/dek/{tenant}/{epoch}")
}

/// How a data key row names a tenant's KMS key.
pub(crate) fn kek_name(key: &KeyRef) -> String {
    format!("{}:{}", key.provider.as_str(), key.id)
}

/// The KMS key a data key row names (`None` for the platform key).
pub(crate) fn parse_kek(kek: &str, allow_loopback: bool) -> Result<Option<KeyRef>> {
    if kek == PLATFORM_KEK {
        return Ok(None);
    }
    let (provider, id) = kek
        .split_once(':')
        .ok_or_else(|| Error::Internal(format!("unknown key-encryption key `{kek}`")))?;
    let provider: Provider = provider
        .parse()
        .map_err(|e: KmsError| Error::Internal(e.to_string()))?;
    KeyRef::parse(provider, id, allow_loopback)
        .map(Some)
        .map_err(|e| Error::Internal(e.to_string()))
}

pub(crate) fn epoch(row: &DataKeyRow) -> Result<u32> {
    u32::try_from(row.epoch).map_err(|_| Error::Internal("a data key epoch out of range".into()))
}

pub(crate) fn to_key(plain: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let bytes = <[u8; 32]>::try_from(plain)
        .map_err(|_| Error::Internal("an unwrapped data key is not 32 bytes".into()))?;
    Ok(Zeroizing::new(bytes))
}

/// One line naming BYOK, the failure and its fix: what every operation needing a sealed value
/// of the tenant answers while its KMS refuses.
pub fn unavailable(key: &KeyRef, err: &KmsError) -> String {
    format!(
        "BYOK: the tenant's {} key {} cannot be used, so its sealed data cannot be read: {err}. \
         Fix: {}; then run byok.verify",
        key.provider.as_str(),
        key.id,
        err.fix(key.provider)
    )
}
