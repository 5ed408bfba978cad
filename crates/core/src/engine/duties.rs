//! Duties shared by replicas: a background duty (the approvals worker, the checkpoint
//! publisher, a platform's digest) or one piece of work (syncing one approval message) is held
//! under a lease in the database by one replica at a time; a replica that dies stops renewing,
//! and another takes over once the lease runs out. Lease times are wall-clock (they are about
//! processes, not about the business clock).

use crate::Core;
use crate::error::Result;
use crate::store;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Core {
    /// This process's replica id (unique per start).
    pub fn replica(&self) -> &str {
        &self.env.replica
    }

    /// Takes the lease on `duty` for `ttl`, or renews it if this replica holds it; returns
    /// whether this replica holds it now. Held leases outlive a crash only until `ttl` ends.
    pub async fn hold(&self, duty: &str, ttl: Duration) -> Result<bool> {
        let (duty, me) = (duty.to_owned(), self.env.replica.clone());
        let now = wall_ms();
        let until = now.saturating_add(ttl.as_millis() as i64);
        // Now and then, leases whose holders vanished an hour ago are forgotten.
        let prune = rand::random::<u8>() == 0;
        self.env
            .write(move |tx| {
                Box::pin(async move {
                    if prune {
                        store::leases::forget_expired(tx, now - 3_600_000).await?;
                    }
                    store::leases::acquire(tx, &duty, &me, now, until).await
                })
            })
            .await
    }

    /// Gives up this replica's lease on `duty`, so another replica may take it at once.
    pub async fn release(&self, duty: &str) -> Result<()> {
        let (duty, me) = (duty.to_owned(), self.env.replica.clone());
        self.env
            .write(move |tx| Box::pin(async move { store::leases::release(tx, &duty, &me).await }))
            .await
    }

    /// The duties this replica holds now.
    pub async fn held_duties(&self) -> Result<Vec<String>> {
        let mut tx = self.env.store.read().await?;
        let held = store::leases::held(&mut tx, &self.env.replica, wall_ms()).await;
        tx.end_read();
        held
    }
}

/// How long a background duty's lease lasts when renewed every `tick`: a few ticks, and never
/// less than a few seconds, so a busy pass does not lose it; a dead replica's duty moves on
/// after this.
pub fn duty_ttl(tick: Duration) -> Duration {
    (tick * 3).max(Duration::from_secs(3))
}
