//! A tenant's keys as the engine loads them: from the vault's cache, or unwrapped by the
//! platform key or the tenant's KMS (with the audit entry of every failed unwrap).

use crate::Env;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::kms::{KeyRef, KmsError};
use crate::ledger::{Actor, AuditOutcome};
use crate::store::{self, vault::DataKeyRow};
use crate::vault::keys::TenantKeys;
use crate::vault::{Cached, PLATFORM_KEK, epoch, kms_context, parse_kek, to_key, unavailable};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

impl Env {
    /// The tenant's unwrapped data keys, from the cache or its key-encryption key (a KMS call
    /// per epoch when BYOK is active). Never call it inside a write job: it may write (a new
    /// tenant's first data key, the KMS's reachability) and wait for a KMS.
    pub async fn keys(&self, tenant: &TenantId) -> Result<Arc<TenantKeys>> {
        let vault = &self.vault;
        if let Some(found) = vault.cached(tenant) {
            return found;
        }
        let gate = {
            let mut loading = vault.loading.lock().unwrap_or_else(|p| p.into_inner());
            loading.entry(tenant.clone()).or_default().clone()
        };
        let _one_at_a_time = gate.lock().await;
        if let Some(found) = vault.cached(tenant) {
            return found;
        }
        let loaded = self.load_keys(tenant).await;
        let mut cache = vault.lock_cache();
        match &loaded {
            Ok(k) => {
                cache.insert(tenant.clone(), Cached::Ready(k.clone(), Instant::now()));
            }
            Err(Error::KeysUnavailable(why)) => {
                cache.insert(tenant.clone(), Cached::Failed(why.clone(), Instant::now()));
            }
            Err(_) => {}
        }
        loaded
    }

    async fn load_keys(&self, tenant: &TenantId) -> Result<Arc<TenantKeys>> {
        let vault = &self.vault;
        let (config, mut rows) = {
            let mut read = self.store.read().await?;
            let config = store::vault::byok(&mut read, tenant).await?;
            let rows = store::vault::data_keys(&mut read, tenant).await?;
            (config, rows)
        };
        if config.as_ref().is_some_and(|c| c.state == "revoked") {
            return Err(Error::KeysUnavailable(
                "BYOK is revoked for this tenant: its sealed data stays unreadable until the \
                 tenant restores tenantops' grant on its KMS key and byok.verify passes"
                    .into(),
            ));
        }
        if rows.is_empty() {
            rows = self.first_data_key(tenant).await?;
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let e = epoch(row)?;
            match parse_kek(&row.kek, vault.kms().allow_loopback())? {
                None => keys.push((e, vault.open_platform(tenant, row)?)),
                Some(key) => match self.unwrap_at_kms(tenant, &key, e, &row.wrapped).await {
                    Ok(k) => keys.push((e, k)),
                    Err(err) => {
                        let why = unavailable(&key, &err);
                        self.kms_failed(tenant, &key, e, &err, &why).await;
                        return Err(Error::KeysUnavailable(why));
                    }
                },
            }
        }
        if config
            .as_ref()
            .is_some_and(|c| c.unreachable_since.is_some())
        {
            let now = to_millis(self.clock.now());
            let t = tenant.clone();
            let cleared = self
                .write(move |tx| {
                    Box::pin(async move { store::vault::set_unreachable(tx, &t, None, now).await })
                })
                .await;
            if let Err(e) = cleared {
                tracing::warn!(tenant = %tenant, error = %e, "could not clear the KMS's unreachable mark");
            }
        }
        Ok(Arc::new(TenantKeys::new(
            tenant.clone(),
            keys,
            vault.master(),
            Some(vault.stale.clone()),
        )?))
    }

    async fn unwrap_at_kms(
        &self,
        tenant: &TenantId,
        key: &KeyRef,
        epoch: u32,
        wrapped: &[u8],
    ) -> std::result::Result<Zeroizing<[u8; 32]>, KmsError> {
        let provider = self.vault.kms().provider(key)?;
        let plain = provider
            .unwrap(wrapped, &kms_context(tenant, epoch))
            .await?;
        to_key(&plain).map_err(|e| KmsError::Rejected {
            detail: e.to_string(),
        })
    }

    /// Records a failed unwrap: its audit entry, and the KMS marked unreachable.
    async fn kms_failed(
        &self,
        tenant: &TenantId,
        key: &KeyRef,
        epoch: u32,
        err: &KmsError,
        why: &str,
    ) {
        tracing::warn!(tenant = %tenant, provider = key.provider.as_str(), error = %err, "a tenant's data key did not unwrap");
        let detail = json!({
            "provider": key.provider.as_str(),
            "key": key.id,
            "epoch": epoch,
            "error": err.to_string(),
        });
        let actor = Actor {
            persona: None,
            kind: None,
            via: "platform".into(),
            surface: "vault".into(),
        };
        if let Err(e) = self
            .audit(tenant, actor, "byok.unwrap", AuditOutcome::Failed, detail)
            .await
        {
            tracing::error!(tenant = %tenant, error = %e, "a failed unwrap was not audited");
        }
        let now = to_millis(self.clock.now());
        let (t, why) = (tenant.clone(), why.to_owned());
        let marked = self
            .write(move |tx| {
                Box::pin(
                    async move { store::vault::set_unreachable(tx, &t, Some(&why), now).await },
                )
            })
            .await;
        if let Err(e) = marked {
            tracing::warn!(tenant = %tenant, error = %e, "could not mark the KMS unreachable");
        }
    }

    /// Makes a tenant's first data key (epoch 1, under the platform key).
    async fn first_data_key(&self, tenant: &TenantId) -> Result<Vec<DataKeyRow>> {
        let (_, wrapped) = self.vault.platform_data_key(tenant, 1);
        let now = to_millis(self.clock.now());
        let t = tenant.clone();
        self.write(move |tx| {
            Box::pin(async move {
                store::vault::insert_data_key(tx, &t, 1, PLATFORM_KEK, &wrapped, now).await?;
                store::vault::data_keys(tx, &t).await
            })
        })
        .await
    }
}
