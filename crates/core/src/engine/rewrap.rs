//! The re-wrap as the engine runs it: after a rotation (or BYOK's activation) every sealed
//! value of the tenant moves to the newest epoch in small batches, each its own write; then the
//! older data keys are dropped and the rotation ends. Plaintext personal data and the legacy
//! sealed format an older version stored are sealed the same way.

use crate::clock::to_millis;
use crate::error::Result;
use crate::ids::TenantId;
use crate::ledger::{Actor, AuditOutcome, Draft};
use crate::store::vault::{self as db, PERSONA_EMAIL, PERSONA_NAME, SEALED, SealedColumn};
use crate::vault::keys::{LEGACY_FORMAT, Place, TenantKeys};
use crate::vault::rewrap::{BATCH, RewrapReport};
use crate::{Core, Event};
use serde_json::json;
use std::sync::Arc;

impl Core {
    /// One pass of the re-wrap over every tenant with work: personal data an older version
    /// stored in plaintext is sealed, legacy-format values and values under an older epoch
    /// are re-sealed under the newest one, and finished rotations drop their old data keys.
    pub async fn tick_rewrap(&self) -> Result<RewrapReport> {
        let env = &self.env;
        let mut report = RewrapReport::default();
        report.rewrapped += self.seal_plaintext_personas(&mut report).await?;
        let tenants = {
            let mut read = env.store.read().await?;
            let mut t = db::rotating(&mut read).await?;
            for legacy in db::tenants_with_prefix(&mut read, LEGACY_FORMAT).await? {
                if !t.contains(&legacy) {
                    t.push(legacy);
                }
            }
            t
        };
        for tenant in tenants {
            match self.rewrap_tenant(&tenant).await {
                Ok((moved, finished)) => {
                    report.rewrapped += moved;
                    report.finished += u32::from(finished);
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(tenant = %tenant, error = %e, "re-wrap pass failed; will retry");
                }
            }
        }
        Ok(report)
    }

    /// Moves one tenant's values to its newest epoch; true when its rotation finished.
    /// Public for the benches only (`benches/vault.rs`).
    #[doc(hidden)]
    pub async fn rewrap_tenant(&self, tenant: &TenantId) -> Result<(u64, bool)> {
        let env = &self.env;
        let keys = env.keys(tenant).await?;
        let newest = {
            let mut read = env.store.read().await?;
            db::newest_epoch(&mut read, tenant).await?
        };
        if newest != Some(i64::from(keys.current_epoch())) {
            // Another process rotated since these keys were cached.
            env.vault.forget(tenant);
            return Ok((0, false));
        }
        let header = keys.current_header();
        let mut moved = 0u64;
        for col in SEALED {
            let mut after: Option<Vec<String>> = None;
            loop {
                let found = {
                    let mut read = env.store.read().await?;
                    db::stale(&mut read, tenant, col, &header, after.as_deref(), BATCH).await?
                };
                let Some(last) = found.last() else {
                    break;
                };
                after = Some(last.key.clone());
                let mut fresh = Vec::with_capacity(found.len());
                for v in found {
                    let record = v.record();
                    let place = Place::new(col, &record);
                    let sealed = keys.seal(place, &keys.open(place, &v.value)?);
                    fresh.push((v, sealed));
                }
                moved += self.replace_batch(&keys, col, fresh).await?;
            }
        }
        let finished = self.finish_rotation(&keys, moved).await?;
        Ok((moved, finished))
    }

    async fn replace_batch(
        &self,
        keys: &Arc<TenantKeys>,
        col: &'static SealedColumn,
        fresh: Vec<(db::SealedValue, Vec<u8>)>,
    ) -> Result<u64> {
        let (tenant, epoch) = (keys.tenant().clone(), i64::from(keys.current_epoch()));
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    // The epoch sealed under must still be the newest (a rotation committed
                    // meanwhile would strand these values under a key about to be dropped).
                    if db::newest_epoch(tx, &tenant).await? != Some(epoch) {
                        return Ok(0);
                    }
                    let mut n = 0;
                    for (old, new) in &fresh {
                        if db::replace(tx, &tenant, col, old, new).await? {
                            n += 1;
                        }
                    }
                    db::add_rewrapped(tx, &tenant, n as i64).await?;
                    Ok(n)
                })
            })
            .await
    }

    /// When nothing of the tenant is left under an older epoch: drops the older data keys and
    /// ends a rotation, with its audit entry. True when a rotation ended.
    async fn finish_rotation(&self, keys: &Arc<TenantKeys>, moved: u64) -> Result<bool> {
        let env = self.env.clone();
        let (tenant, epoch) = (keys.tenant().clone(), keys.current_epoch());
        let now = env.clock.now();
        let t = tenant.clone();
        let finished = self
            .env
            .write(move |tx| {
                Box::pin(async move {
                    let header = crate::vault::keys::header(epoch);
                    for col in SEALED {
                        if !db::stale(tx, &t, col, &header, None, 1).await?.is_empty() {
                            return Ok(false);
                        }
                    }
                    let config = db::byok(tx, &t).await?;
                    let rotating = config.as_ref().is_some_and(|c| c.state == "rotating");
                    let dropped = db::drop_data_keys_before(tx, &t, i64::from(epoch)).await?;
                    if !rotating && dropped == 0 {
                        return Ok(false);
                    }
                    if rotating {
                        db::set_byok_state(tx, &t, "active", to_millis(now)).await?;
                    }
                    let total = config.as_ref().map_or(moved as i64, |c| c.rewrapped);
                    let draft = Draft {
                        actor: Actor {
                            persona: None,
                            kind: None,
                            via: "platform".into(),
                            surface: "vault".into(),
                        },
                        op: "byok.rewrap".into(),
                        outcome: AuditOutcome::Done,
                        detail: json!({
                            "epoch": epoch,
                            "rewrapped": total,
                            "data_keys_dropped": dropped,
                            "kek": config.as_ref().map(|c| format!("{}:{}", c.provider, c.key_id)),
                        }),
                    };
                    env.record(tx, &t, now, draft).await?;
                    env.announce(tx, &[Event::TenantKeysChanged { tenant: t.clone() }])
                        .await?;
                    Ok(true)
                })
            })
            .await?;
        if finished {
            self.env.publish(Event::TenantKeysChanged { tenant });
        }
        Ok(finished)
    }

    /// Seals personal data an older version stored in plaintext (once, after an upgrade).
    async fn seal_plaintext_personas(&self, report: &mut RewrapReport) -> Result<u64> {
        let env = &self.env;
        let mut sealed = 0u64;
        loop {
            let found = {
                let mut read = env.store.read().await?;
                db::plaintext_personas(&mut read, BATCH).await?
            };
            if found.is_empty() {
                return Ok(sealed);
            }
            let mut rows = Vec::with_capacity(found.len());
            for (tenant, id, email, name) in found {
                let keys = match env.keys(&tenant).await {
                    Ok(k) => k,
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!(tenant = %tenant, error = %e, "plaintext personal data not sealed yet");
                        return Ok(sealed);
                    }
                };
                let email = email.map(|e| {
                    (
                        keys.seal(Place::new(&PERSONA_EMAIL, &id), e.as_bytes()),
                        keys.blind_index(&e),
                    )
                });
                let name = name.map(|n| keys.seal(Place::new(&PERSONA_NAME, &id), n.as_bytes()));
                rows.push((tenant, id, email, name));
            }
            let n = rows.len() as u64;
            self.env
                .write(move |tx| {
                    Box::pin(async move {
                        for (tenant, id, email, name) in &rows {
                            db::seal_persona(
                                tx,
                                tenant,
                                id,
                                email.as_ref().map(|(s, i)| (s.as_slice(), i.as_slice())),
                                name.as_deref(),
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .await?;
            sealed += n;
        }
    }
}
