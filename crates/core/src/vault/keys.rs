//! A tenant's unwrapped data keys and the sealed-value format they read and write.
//!
//! A sealed value is `S2 ‖ epoch (u32, big-endian) ‖ nonce (24) ‖ XChaCha20-Poly1305 ciphertext`,
//! sealed under the data key of its epoch, with the tenant, the place (`table.column`) and the
//! record id as associated data: a value copied to another record, column or tenant does not
//! open. Its first six bytes name its epoch, so the store can count and find values sealed under
//! an older one without opening anything.

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::secrets::MasterKey;
use crate::store::vault::SealedColumn;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::sync::Arc;
use tokio::sync::Notify;
use zeroize::Zeroizing;

/// The format marker of a sealed value.
pub const FORMAT: &[u8; 2] = b"S2";
/// The marker of values sealed directly under the platform key before the vault existed.
pub const LEGACY_FORMAT: &[u8; 2] = b"E1";
/// Length of the header: format and epoch.
pub const HEADER_LEN: usize = 6;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Where a sealed value belongs: authenticated with it.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// The column.
    pub column: &'a SealedColumn,
    /// The record id within the tenant (its key column values joined by `:`).
    pub record: &'a str,
}

impl<'a> Place<'a> {
    /// The value of `column` in the record `record`.
    pub fn new(column: &'a SealedColumn, record: &'a str) -> Self {
        Self { column, record }
    }
}

/// The header of a value sealed under `epoch`.
pub fn header(epoch: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(FORMAT);
    h[2..].copy_from_slice(&epoch.to_be_bytes());
    h
}

/// The epoch a sealed value names, if it is in the current format.
pub fn epoch_of(sealed: &[u8]) -> Option<u32> {
    let h = sealed.get(..HEADER_LEN)?;
    (&h[..2] == FORMAT).then(|| u32::from_be_bytes([h[2], h[3], h[4], h[5]]))
}

/// A tenant's data keys, unwrapped: the newest seals, every one still stored opens. Held in the
/// vault's cache for a short time and zeroized when the last holder lets go.
pub struct TenantKeys {
    tenant: TenantId,
    current: u32,
    keys: Vec<(u32, Zeroizing<[u8; 32]>)>,
    index_key: Zeroizing<[u8; 32]>,
    legacy: MasterKey,
    /// Woken when a value sealed under an older epoch is read: the re-wrap moves it soon.
    stale: Option<Arc<Notify>>,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys")
            .field("tenant", &self.tenant)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl TenantKeys {
    /// Keys for `tenant`; the last of `keys` (by epoch) seals.
    pub(crate) fn new(
        tenant: TenantId,
        mut keys: Vec<(u32, Zeroizing<[u8; 32]>)>,
        master: &MasterKey,
        stale: Option<Arc<Notify>>,
    ) -> Result<Self> {
        keys.sort_by_key(|(e, _)| *e);
        let current = keys
            .last()
            .map(|(e, _)| *e)
            .ok_or_else(|| Error::Internal("a tenant without a data key".into()))?;
        Ok(Self {
            index_key: master.blind_index_key(&tenant),
            tenant,
            current,
            keys,
            legacy: master.clone(),
            stale,
        })
    }

    /// These keys and a new newest data key of `epoch`: what seals under it, before it is
    /// stored and cached (a work that re-wraps in the transaction that adds it).
    pub(crate) fn with_epoch(&self, epoch: u32, key: Zeroizing<[u8; 32]>) -> Self {
        let mut keys: Vec<(u32, Zeroizing<[u8; 32]>)> = self
            .keys
            .iter()
            .map(|(e, k)| (*e, Zeroizing::new(**k)))
            .collect();
        keys.push((epoch, key));
        Self {
            tenant: self.tenant.clone(),
            current: epoch,
            keys,
            index_key: Zeroizing::new(*self.index_key),
            legacy: self.legacy.clone(),
            stale: self.stale.clone(),
        }
    }

    /// The tenant these keys belong to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The epoch new values are sealed under.
    pub fn current_epoch(&self) -> u32 {
        self.current
    }

    /// The header of values sealed under the current epoch.
    pub fn current_header(&self) -> [u8; HEADER_LEN] {
        header(self.current)
    }

    fn aad(&self, place: Place<'_>) -> Vec<u8> {
        let mut aad = b"tenantops/v2\0".to_vec();
        aad.extend_from_slice(self.tenant.as_str().as_bytes());
        aad.push(0);
        aad.extend_from_slice(place.column.place().as_bytes());
        aad.push(0);
        aad.extend_from_slice(place.record.as_bytes());
        aad
    }

    /// Seals `plaintext` for `place` under the current epoch.
    pub fn seal(&self, place: Place<'_>, plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys.last().expect("keys are never empty").1;
        let cipher = XChaCha20Poly1305::new(&Key::from(**key));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = self.aad(place);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("encrypting a bounded value cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&self.current_header());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed for `place` (also one in the legacy format, or under an older
    /// epoch still kept).
    pub fn open(&self, place: Place<'_>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.starts_with(LEGACY_FORMAT) {
            self.hint_stale();
            return self.legacy.open(&self.tenant, place.record, sealed);
        }
        let bad = |why: &str| {
            Error::Internal(format!(
                "a sealed value of {} does not open: {why}",
                place.column.place()
            ))
        };
        let epoch = epoch_of(sealed).ok_or_else(|| bad("unknown format"))?;
        if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(bad("truncated"));
        }
        let key = self
            .keys
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, k)| k)
            .ok_or_else(|| bad("its data key was dropped (crypto-shredded)"))?;
        if epoch != self.current {
            self.hint_stale();
        }
        let (nonce, ct) = sealed[HEADER_LEN..].split_at(NONCE_LEN);
        let aad = self.aad(place);
        let plain = XChaCha20Poly1305::new(&Key::from(**key))
            .decrypt(
                &XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| bad("truncated"))?),
                Payload { msg: ct, aad: &aad },
            )
            .map_err(|_| bad("wrong tenant, record or key, or tampered"))?;
        Ok(Zeroizing::new(plain))
    }

    /// [`TenantKeys::open`] for text.
    pub fn open_text(&self, place: Place<'_>, sealed: &[u8]) -> Result<String> {
        let plain = self.open(place, sealed)?;
        String::from_utf8(plain.to_vec()).map_err(|_| {
            Error::Internal(format!(
                "a sealed value of {} is not text",
                place.column.place()
            ))
        })
    }

    /// Opens an optional sealed text.
    pub fn open_opt(&self, place: Place<'_>, sealed: Option<&[u8]>) -> Result<Option<String>> {
        sealed.map(|s| self.open_text(place, s)).transpose()
    }

    /// The keyed blind index of a value (an email address, compared case-insensitively): equal
    /// values give equal indexes within the tenant, and nothing else can be learnt from it.
    pub fn blind_index(&self, value: &str) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.index_key[..])
            .expect("HMAC takes any key length");
        mac.update(value.trim().to_lowercase().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn hint_stale(&self) {
        if let Some(n) = &self.stale {
            n.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::vault::{PERSONA_EMAIL, PERSONA_NAME};

    fn keys(tenant: &TenantId, epochs: &[u32]) -> TenantKeys {
        let master = MasterKey::from_bytes([7; 32]);
        let keys = epochs
            .iter()
            .map(|e| (*e, Zeroizing::new([*e as u8; 32])))
            .collect();
        TenantKeys::new(tenant.clone(), keys, &master, None).unwrap()
    }

    #[test]
    fn a_value_opens_only_in_its_place_tenant_and_epoch() {
        let t = TenantId::generate();
        let k = keys(&t, &[1, 2]);
        let sealed = k.seal(Place::new(&PERSONA_EMAIL, "per_1"), b"ada@example.com");
        assert_eq!(epoch_of(&sealed), Some(2));
        assert!(!sealed.windows(3).any(|w| w == b"ada"));
        let at = Place::new(&PERSONA_EMAIL, "per_1");
        assert_eq!(k.open_text(at, &sealed).unwrap(), "ada@example.com");
        assert!(
            k.open(Place::new(&PERSONA_EMAIL, "per_2"), &sealed)
                .is_err()
        );
        assert!(k.open(Place::new(&PERSONA_NAME, "per_1"), &sealed).is_err());
        assert!(
            keys(&TenantId::generate(), &[1, 2])
                .open(at, &sealed)
                .is_err()
        );
        let err = keys(&t, &[1]).open(at, &sealed).unwrap_err().to_string();
        assert!(err.contains("dropped"), "{err}");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(at, &tampered).is_err());
        assert!(k.open(at, &sealed[..20]).is_err());
    }

    #[test]
    fn older_epochs_open_and_legacy_values_still_open() {
        let t = TenantId::generate();
        let old = keys(&t, &[1]);
        let sealed = old.seal(Place::new(&PERSONA_EMAIL, "per_1"), b"x");
        let both = keys(&t, &[1, 2]);
        assert_eq!(
            &both
                .open(Place::new(&PERSONA_EMAIL, "per_1"), &sealed)
                .unwrap()[..],
            b"x"
        );
        let master = MasterKey::from_bytes([7; 32]);
        let legacy = master.seal(&t, "slack:T1", b"xoxb");
        let col = crate::store::vault::BOT_TOKEN;
        assert_eq!(
            &both.open(Place::new(&col, "slack:T1"), &legacy).unwrap()[..],
            b"xoxb"
        );
    }

    #[test]
    fn blind_indexes_are_per_tenant_and_case_blind() {
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let ka = keys(&a, &[1]);
        assert_eq!(
            ka.blind_index("Ada@Example.com"),
            ka.blind_index("ada@example.com")
        );
        assert_ne!(
            ka.blind_index("ada@example.com"),
            keys(&b, &[1]).blind_index("ada@example.com")
        );
    }
}
