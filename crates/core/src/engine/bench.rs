//! Hooks for the benches only (`benches/vault.rs`): what they need and no public API offers
//! yet. Not for production use.

use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::vault as db;
use crate::vault::PLATFORM_KEK;
use crate::{Core, Event};

impl Core {
    /// Starts a new epoch for `tenant` under the platform key, as a rotation would, without a
    /// KMS: the next data key is stored and the tenant's cached keys are dropped, so new values
    /// seal under it and [`Core::rewrap_tenant`] has every older value to move.
    #[doc(hidden)]
    pub async fn rotate_platform_key_for_bench(&self, tenant: &TenantId) -> Result<()> {
        let env = self.env.clone();
        let now = to_millis(env.clock.now());
        let t = tenant.clone();
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    let newest = db::newest_epoch(tx, &t)
                        .await?
                        .ok_or_else(|| Error::Internal("the tenant has no data key".into()))?;
                    let epoch = u32::try_from(newest + 1)
                        .map_err(|_| Error::Internal("a data key epoch out of range".into()))?;
                    let (_, wrapped) = env.vault.platform_data_key(&t, epoch);
                    if !db::insert_data_key(tx, &t, i64::from(epoch), PLATFORM_KEK, &wrapped, now)
                        .await?
                    {
                        return Err(Error::Conflict(format!("epoch {epoch} exists already")));
                    }
                    env.announce(tx, &[Event::TenantKeysChanged { tenant: t.clone() }])
                        .await
                })
            })
            .await?;
        self.env.publish(Event::TenantKeysChanged {
            tenant: tenant.clone(),
        });
        Ok(())
    }
}
