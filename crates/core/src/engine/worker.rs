//! The approvals worker: escalation, expiry, and resuming approved requests nobody is running.

use crate::clock::to_millis;
use crate::error::Result;
use crate::ids::TenantId;
use crate::ledger::{Actor, AuditOutcome, Draft};
use crate::notify::Notification;
use crate::store::{self};
use crate::{Core, Event};
use serde::Serialize;
use serde_json::{Value, json};

impl Core {
    /// One pass of the approvals worker over every tenant: escalates requests whose SLA
    /// breached (once), expires those past their hard limit, and executes approved requests
    /// nobody is executing (after a crash, or a stalled execution whose lease ran out).
    pub async fn tick_approvals(&self) -> Result<TickReport> {
        let env = &self.env;
        let now = to_millis(env.clock.now());
        let mut report = TickReport::default();
        let due = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::due_for_escalation(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id, to) in due {
            // One request's trouble must not stop the pass for every other one.
            let escalated = self
                .worker_step(
                    &tenant,
                    &id,
                    WorkerStep::Escalate,
                    json!({ "request_id": id, "to": to }),
                )
                .await;
            if log_err(&id, escalated) {
                report.escalated += 1;
                env.notify(&Notification::Escalated {
                    tenant,
                    request_id: id,
                    to,
                });
            }
        }
        let expired = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::past_expiry(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id) in expired {
            if log_err(&id, self.expire(&tenant, &id).await) {
                report.expired += 1;
            }
        }
        let runnable = {
            let mut tx = env.store.begin_read().await?;
            let found = store::approvals::claimable(&mut tx, now).await?;
            tx.rollback().await?;
            found
        };
        for (tenant, id) in runnable {
            // A request that cannot be read (a stored value outside its closed set) is logged
            // on every pass, and does not hold up the others.
            if log_err(&id, self.execute_request(&tenant, &id).await) {
                report.resumed += 1;
            }
        }
        Ok(report)
    }

    /// Expires a pending request past its hard limit (also done lazily when someone decides).
    pub(crate) async fn expire(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let changed = self
            .worker_step(tenant, id, WorkerStep::Expire, json!({ "request_id": id }))
            .await?;
        if changed {
            self.env.notify(&Notification::Expired {
                tenant: tenant.clone(),
                request_id: id.to_owned(),
            });
            self.env.publish(Event::RequestFinished {
                tenant: tenant.clone(),
                request_id: id.to_owned(),
            });
        }
        Ok(changed)
    }

    /// Applies a worker step to a pending request with its audit entry, by the platform.
    /// Returns whether the request changed (it was still pending, and not yet escalated).
    async fn worker_step(
        &self,
        tenant: &TenantId,
        id: &str,
        step: WorkerStep,
        detail: Value,
    ) -> Result<bool> {
        let env = &self.env;
        let now = env.clock.now();
        let (tenant, id, env2) = (tenant.clone(), id.to_owned(), env.clone());
        env.write(move |tx| {
            Box::pin(async move {
                let (env, tenant, id) = (env2, &tenant, id.as_str());
                let changed = match step {
                    WorkerStep::Escalate => {
                        store::approvals::mark_escalated(tx, tenant, id, to_millis(now)).await?
                    }
                    WorkerStep::Expire => {
                        store::approvals::expire(tx, tenant, id, to_millis(now)).await?
                    }
                };
                if !changed {
                    return Ok(false);
                }
                env.record(
                    tx,
                    tenant,
                    now,
                    Draft {
                        actor: Actor {
                            persona: None,
                            kind: None,
                            via: "platform".into(),
                            surface: "worker".into(),
                        },
                        op: step.op().to_owned(),
                        outcome: AuditOutcome::Done,
                        detail,
                    },
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }

    /// Approval requests waiting for a decision, across tenants (an operational figure).
    pub async fn open_requests(&self) -> Result<u64> {
        let mut tx = self.env.store.begin_read().await?;
        let n = store::approvals::pending_count(&mut tx).await?;
        tx.rollback().await?;
        Ok(n as u64)
    }
}

/// What the approvals worker does to a pending request whose time has come.
#[derive(Clone, Copy)]
enum WorkerStep {
    /// Its SLA breached: page the escalation persona (once); the state stays `pending`.
    Escalate,
    /// Its hard limit passed: [`approvals::Transition::Expire`].
    Expire,
}

impl WorkerStep {
    /// The operation its audit entry records.
    fn op(self) -> &'static str {
        match self {
            WorkerStep::Escalate => "approvals.escalate",
            WorkerStep::Expire => "approvals.expire",
        }
    }
}

/// The worker's view of one request's step: done or not, with failures logged, not raised.
fn log_err(request: &str, r: Result<bool>) -> bool {
    r.unwrap_or_else(|e| {
        tracing::error!(request, error = %e, "approvals worker step failed; will retry next pass");
        false
    })
}

/// What one worker pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Requests escalated.
    pub escalated: u32,
    /// Requests expired.
    pub expired: u32,
    /// Approved requests executed (resumed).
    pub resumed: u32,
}
