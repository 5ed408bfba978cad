//! Checkpoint publication, driven: the worker queues and delivers publications
//! ([`crate::ledger::publish`] holds what is published and how it is read back), and
//! `audit verify --published` checks the ledger against what the destinations hold.

use crate::Core;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::ledger::publish::*;
use crate::ledger::verify::{Failure, Report};
use crate::ledger::{Actor, AuditOutcome, Draft};
use crate::store;
use serde_json::json;
use std::sync::Arc;

/// A checkpoint found at a destination, with where.
struct Found {
    note: String,
    size: u64,
    at: Destination,
    message: String,
}

fn worker_actor() -> Actor {
    Actor {
        persona: None,
        kind: None,
        via: "platform".into(),
        surface: "worker".into(),
    }
}

impl Core {
    /// Queues a scheduled publication for every tenant with a destination of one of `kinds`
    /// whose ledger grew since its last publication, once `every` has passed since it (see
    /// [`scheduled_due`]). Returns how many were queued.
    pub async fn schedule_checkpoint_publications(
        &self,
        kinds: &[&str],
        every: std::time::Duration,
    ) -> Result<u32> {
        if kinds.is_empty() || every.is_zero() {
            return Ok(0);
        }
        let env = self.env();
        let now = to_millis(env.clock.now());
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let tenants = {
            let mut tx = env.store.begin_read().await?;
            let tenants = store::chat::publishing_tenants(&mut tx, kinds).await?;
            tx.rollback().await?;
            tenants
        };
        let mut queued = 0;
        for (tenant, first_bound) in tenants {
            let (size, last) = {
                let mut tx = env.store.begin_read().await?;
                let size = store::ledger::head_size(&mut tx, &tenant).await?;
                let last = store::ledger::last_published(&mut tx, &tenant).await?;
                tx.rollback().await?;
                (size, last)
            };
            let Some(size) = size else { continue };
            let last = last.map(|(at, after)| (at, after.max(0) as u64));
            if !scheduled_due(now, every_ms, size.max(0) as u64, last, first_bound) {
                continue;
            }
            let q = env
                .write(move |tx| {
                    Box::pin(async move { queue(tx, &tenant, Reason::Scheduled, None, now).await })
                })
                .await?;
            if !q.joined {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Posts waiting publications through `sinks`: for each, the tenant's latest signed
    /// checkpoint (read when it is posted) goes to every destination a sink serves, and the
    /// publication is audited (`audit.checkpoint_published`) with where it went. A tenant is
    /// posted to at most once per `gap`. A publication that reached no destination is retried
    /// with a growing delay and, after five attempts, given up and audited as failed.
    pub async fn deliver_checkpoint_publications(
        &self,
        sinks: &[Arc<dyn CheckpointSink>],
        gap: std::time::Duration,
    ) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        if sinks.is_empty() {
            return Ok(report);
        }
        let kinds: Vec<&str> = sinks.iter().map(|s| s.kind()).collect();
        let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
        for _ in 0..PER_PASS {
            let Some(claimed) = self.claim_publication(&kinds, gap_ms).await? else {
                break;
            };
            self.deliver_one(sinks, claimed, &mut report).await?;
        }
        Ok(report)
    }

    /// Claims the oldest waiting publication of a tenant with a destination of `kinds` that was
    /// not posted to within `gap_ms`.
    async fn claim_publication(&self, kinds: &[&str], gap_ms: i64) -> Result<Option<Claimed>> {
        let env = self.env();
        let now = to_millis(env.clock.now());
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let row = env
            .write(move |tx| {
                Box::pin(async move {
                    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
                    store::ledger::claim_publication(
                        tx,
                        &kinds,
                        now,
                        now + LEASE_MS,
                        now.saturating_sub(gap_ms),
                    )
                    .await
                })
            })
            .await?;
        Ok(row.map(|r| Claimed {
            id: r.id,
            tenant: r.tenant,
            reason: r.reason,
            requested_by: r.requested_by,
            attempts: r.attempts,
        }))
    }

    async fn deliver_one(
        &self,
        sinks: &[Arc<dyn CheckpointSink>],
        claimed: Claimed,
        report: &mut DeliveryReport,
    ) -> Result<()> {
        let env = self.env();
        let tenant = &claimed.tenant;
        let (size, note, all) = {
            let mut tx = env.store.begin_read().await?;
            let (size, note) = crate::ledger::latest_checkpoint(&mut tx, tenant).await?;
            let all = destinations(&mut tx, tenant).await?;
            tx.rollback().await?;
            (size, note, all)
        };
        let text = message_text(tenant, size, &note, claimed.reason);
        let mut posted = Vec::new();
        let mut failed = Vec::new();
        for dest in &all {
            let Some(sink) = sinks.iter().find(|s| s.kind() == dest.kind) else {
                continue;
            };
            match sink.post(dest, &text).await {
                Ok(message_id) => posted.push(json!({
                    "kind": dest.kind, "workspace": dest.workspace, "channel": dest.channel,
                    "message_id": message_id,
                })),
                Err(e) => {
                    tracing::warn!(tenant = %tenant, destination = %dest, error = %e,
                        "signed checkpoint not posted");
                    report.failed_posts += 1;
                    failed.push(json!({
                        "kind": dest.kind, "workspace": dest.workspace, "channel": dest.channel,
                        "error": e,
                    }));
                }
            }
        }
        let now = env.clock.now();
        let now_ms = to_millis(now);
        let last_error = failed
            .first()
            .and_then(|f| f["error"].as_str())
            .map(str::to_owned);
        let detail = json!({
            "publication": claimed.id,
            "reason": claimed.reason.as_str(),
            "requested_by": claimed.requested_by,
            "size": size,
            "posted": posted,
            "failed": failed,
        });
        let (t, claimed_id, attempts) = (tenant.clone(), claimed.id, claimed.attempts);
        let env2 = env.clone();
        let delivered = env
            .write(move |tx| {
                Box::pin(async move {
                    let (env, tenant) = (env2, &t);
                    let delivered = if !posted.is_empty() {
                        let appended = env
                            .record(
                                tx,
                                tenant,
                                now,
                                Draft {
                                    actor: worker_actor(),
                                    op: "audit.checkpoint_published".into(),
                                    outcome: AuditOutcome::Done,
                                    detail,
                                },
                            )
                            .await?;
                        // The ledger's size once this publication's own entry is in.
                        let head_after = appended.seq + 1;
                        store::ledger::mark_published(
                            tx,
                            tenant,
                            claimed_id,
                            size as i64,
                            now_ms,
                            head_after as i64,
                            &serde_json::Value::Array(posted).to_string(),
                            last_error.as_deref(),
                        )
                        .await?;
                        Delivered::Published
                    } else if attempts >= MAX_ATTEMPTS {
                        env.record(
                            tx,
                            tenant,
                            now,
                            Draft {
                                actor: worker_actor(),
                                op: "audit.checkpoint_published".into(),
                                outcome: AuditOutcome::Failed,
                                detail,
                            },
                        )
                        .await?;
                        store::ledger::mark_given_up(tx, tenant, claimed_id, last_error.as_deref())
                            .await?;
                        Delivered::GivenUp
                    } else {
                        // 30 s, 1 min, 2 min, 4 min: a platform outage is waited out, not hammered.
                        let backoff = 30_000i64 << (attempts - 1).clamp(0, 6);
                        store::ledger::retry_publication(
                            tx,
                            tenant,
                            claimed_id,
                            now_ms + backoff,
                            last_error.as_deref(),
                        )
                        .await?;
                        Delivered::Retry
                    };
                    Ok(delivered)
                })
            })
            .await?;
        match delivered {
            Delivered::Published => report.published += 1,
            Delivered::GivenUp => report.given_up += 1,
            Delivered::Retry => {}
        }
        Ok(())
    }

    /// Reads the checkpoints tenantops published for `tenant` back from the platforms through
    /// `sinks` (at most `max_messages` messages per destination), checks each note with the
    /// verifier key the master key derives, and verifies the ledger against them and against
    /// `kept` (checkpoints kept by the caller): no rollback, no rewrite.
    ///
    /// A published note of the tenant that does not verify is a failed verification: it was
    /// altered after it was posted. Errors (`Err`) are for what could not be checked: no
    /// destination to read, a platform that cannot be reached, nothing published found.
    pub async fn verify_audit_published(
        &self,
        tenant: &TenantId,
        sinks: &[Arc<dyn CheckpointSink>],
        max_messages: usize,
        kept: &[String],
    ) -> Result<(std::result::Result<Report, Failure>, PublishedCheck)> {
        let key = self.audit_verifier_key(tenant)?;
        let verifier = crate::ledger::checkpoint::CheckpointVerifier::new(&key)
            .map_err(|e| Error::Internal(format!("audit verifier: {e}")))?;
        let origin = crate::ledger::origin(tenant);
        let all = {
            let mut tx = self.store().begin_read().await?;
            let all = destinations(&mut tx, tenant).await?;
            tx.rollback().await?;
            all
        };
        if all.is_empty() {
            return Err(Error::Config(format!(
                "tenant {tenant} has no place its checkpoints are published to (a Slack workspace \
                 or Discord server with an approval channel); nothing to read back"
            )));
        }
        let mut check = PublishedCheck::default();
        let mut found: Vec<Found> = Vec::new();
        for dest in all {
            let Some(sink) = sinks.iter().find(|s| s.kind() == dest.kind) else {
                return Err(Error::Config(format!(
                    "cannot read the checkpoints published to {dest}: {} is not configured here \
                     (set its bot token as for `tenantops serve`)",
                    dest.kind
                )));
            };
            let messages = sink.read_back(&dest, max_messages).await.map_err(|e| {
                Error::Config(format!(
                    "cannot read the checkpoints published to {dest}: {e}"
                ))
            })?;
            let mut place = PlaceRead {
                destination: dest.clone(),
                messages: 0,
                checkpoints: 0,
            };
            for message in messages {
                let notes = notes_in(&message.text);
                let names_us = message_tenant(&message.text) == Some(tenant.as_str());
                if notes.is_empty() && !names_us {
                    continue;
                }
                place.messages += 1;
                if notes.is_empty() {
                    check.read.push(place);
                    return Ok((
                        Err(Failure {
                            seq: None,
                            message: format!(
                                "the checkpoint message {} at {dest} names this tenant but holds \
                                 no signed note: it was altered after it was posted",
                                message.id
                            ),
                        }),
                        check,
                    ));
                }
                for note in notes {
                    if !names_us && origin_of(&note) != origin {
                        continue; // another tenant's (a workspace bound to it before)
                    }
                    match verifier.verify(&note) {
                        Ok(cp) => {
                            place.checkpoints += 1;
                            found.push(Found {
                                note,
                                size: cp.size,
                                at: dest.clone(),
                                message: message.id.clone(),
                            });
                        }
                        Err(e) => {
                            check.read.push(place);
                            return Ok((
                                Err(Failure {
                                    seq: None,
                                    message: format!(
                                        "the checkpoint published at {dest} (message {}) does not \
                                         verify with the tenant's key ({e}): it was altered after \
                                         it was posted",
                                        message.id
                                    ),
                                }),
                                check,
                            ));
                        }
                    }
                }
            }
            check.read.push(place);
        }
        let mut sizes: Vec<u64> = found.iter().map(|f| f.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        check.checked = sizes.len() as u64;
        check.newest_size = sizes.last().copied();
        let Some(newest) = found.iter().max_by_key(|f| f.size) else {
            let places: Vec<String> = check
                .read
                .iter()
                .map(|p| p.destination.to_string())
                .collect();
            return Err(Error::NotFound(format!(
                "no checkpoint published by tenantops for tenant {tenant} was found in {} (the \
                 newest {max_messages} messages of each); publish one with \
                 audit.publish_checkpoint while `tenantops serve` runs with the chat platform \
                 configured",
                places.join(", ")
            )));
        };
        let mut trusted: Vec<String> = found.iter().map(|f| f.note.clone()).collect();
        trusted.extend_from_slice(kept);
        let verdict = self
            .verify_audit_against(tenant, &trusted)
            .await?
            .map_err(|f| Failure {
                seq: f.seq,
                message: format!(
                    "{} (checked against {} published checkpoint(s); the newest, for {} entries, \
                     is message {} at {})",
                    f.message, check.checked, newest.size, newest.message, newest.at
                ),
            });
        Ok((verdict, check))
    }
}

/// What became of a delivered publication.
enum Delivered {
    Published,
    GivenUp,
    Retry,
}

/// A publication a worker claimed.
struct Claimed {
    id: i64,
    tenant: TenantId,
    reason: Reason,
    requested_by: Option<String>,
    attempts: i64,
}
