//! Approved execution: an approved request runs exactly once, as its requester, re-checked.

use super::actor_of;
use super::dispatch::CallInput;
use crate::approvals;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::{PersonaId, TenantId};
use crate::ledger::{Actor, AuditOutcome, Draft};
use crate::notify::Notification;
use crate::operation::{Effects, OpCtx, OpSpec};
use crate::ops::registry;
use crate::principal::{PersonaStatus, Principal, Via};
use crate::store::{self, Tx};
use crate::{Core, Event, roles};
use serde_json::{Map, Value, json};

impl Core {
    /// Runs an approved request's operation in `ctx` and records it with its audit entry and
    /// its `succeeded` state, handing the transaction back: an `Err` leaves nothing of it (the
    /// writer rolls the job back).
    async fn run_approved(
        &self,
        mut ctx: OpCtx,
        spec: &OpSpec,
        input: Value,
        extra: Map<String, Value>,
        request: String,
    ) -> (Tx, Result<(Value, Effects)>) {
        let result = (spec.run)(&mut ctx, &input).await;
        let principal = ctx.principal.clone();
        let now = ctx.now;
        let (mut tx, mut detail, effects) = ctx.into_parts();
        let recorded = async {
            let output = result?;
            detail.insert("input".into(), CallInput::of(spec, &input).audited());
            detail.extend(extra);
            self.env
                .record(
                    &mut tx,
                    &principal.tenant,
                    now,
                    Draft {
                        actor: actor_of(&principal),
                        op: spec.name.to_owned(),
                        outcome: AuditOutcome::Done,
                        detail: Value::Object(detail),
                    },
                )
                .await?;
            self.env.announce(&mut tx, &effects.events).await?;
            let done = store::approvals::succeed(
                &mut tx,
                &principal.tenant,
                &request,
                &output.to_string(),
                to_millis(now),
            )
            .await?;
            if !done {
                return Err(Error::Conflict(format!(
                    "request {request} is no longer executing"
                )));
            }
            Ok((output, effects))
        }
        .await;
        (tx, recorded)
    }

    /// Publishes an operation's events and notifications, and executes requests it approved.
    /// When it approved one and its output shows that request, the output is refreshed to show
    /// the request after execution.
    pub(crate) async fn after_commit(&self, effects: Effects, mut output: Value) -> Value {
        for n in &effects.notifications {
            self.env.notify(n);
        }
        for event in effects.events {
            if let Event::RequestApproved { tenant, request_id } = &event {
                crate::fault::point(crate::fault::AFTER_APPROVAL);
                if let Err(e) = self.execute_request(tenant, request_id).await {
                    tracing::error!(request = %request_id, error = %e, "executing an approved request failed");
                }
                if output
                    .get("request")
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    == Some(request_id)
                {
                    let Ok(mut tx) = self.env.store.begin_read().await else {
                        continue;
                    };
                    if let Ok(view) = approvals::view(&mut tx, tenant, request_id).await {
                        output["request"] = json!(view);
                    }
                    // A read: ending it cannot lose anything.
                    let _ = tx.rollback().await;
                }
            }
            self.env.publish(event);
        }
        output
    }

    /// Executes an approved request exactly once: claims it (`approved` → `executing`, or a
    /// stalled `executing` whose lease ran out), re-checks it — the input still matches its
    /// digest, the requester is active and still holds the scope, the approvals still stand —
    /// and runs the operation as the requester, committing the result, its audit entry and the
    /// `succeeded` state together. Returns whether this call executed it.
    pub async fn execute_request(&self, tenant: &TenantId, request_id: &str) -> Result<bool> {
        let env = &self.env;
        let now = env.clock.now();
        let (t, id) = (tenant.clone(), request_id.to_owned());
        let lease_until = to_millis(now + env.execution_lease);
        let claimed = env
            .write(move |tx| {
                Box::pin(async move {
                    let claimed =
                        store::approvals::claim(tx, &t, &id, to_millis(now), lease_until).await?;
                    match claimed {
                        true => approvals::load(tx, &t, &id).await.map(Some),
                        false => Ok(None),
                    }
                })
            })
            .await?;
        let Some(mut req) = claimed else {
            return Ok(false);
        };
        let Some(spec) = registry::find(&req.operation) else {
            self.finish_failed(tenant, &req, "the operation no longer exists in this build")
                .await?;
            return Ok(true);
        };
        // Keys and a KMS's answers are fetched before the transaction (never inside the writer).
        let keys = match spec.keys {
            true => match env.keys(tenant).await {
                Ok(k) => Some(k),
                Err(e) => {
                    self.finish_failed(tenant, &req, &e.to_string()).await?;
                    return Ok(true);
                }
            },
            false => None,
        };
        // The personal fields sealed apart are put back before the digest check and the run.
        if let Err(e) = req.restore_personal(keys.as_deref()) {
            self.finish_failed(tenant, &req, &e.to_string()).await?;
            return Ok(true);
        }
        let (_, prepared) = match self
            .before_transaction(tenant, spec, &req.input, keys.clone())
            .await
        {
            Ok(pre) => pre,
            Err(e) => {
                self.finish_failed(tenant, &req, &e.to_string()).await?;
                return Ok(true);
            }
        };
        // Every re-check reads inside the transaction that runs the operation: a revocation
        // either committed before it (and is seen) or waits behind it.
        let core = self.clone();
        let (t, request) = (tenant.clone(), req.clone());
        let ran = env
            .write_owned(move |mut tx| {
                Box::pin(async move {
                    let (tenant, req) = (&t, &request);
                    match core.execution_blocker(&mut tx, tenant, req).await {
                        Ok(None) => {}
                        Ok(Some(reason)) => return (tx, Ok(Err(reason))),
                        Err(e) => return (tx, Err(e)),
                    }
                    let requester = PersonaId::from_db(req.requester.clone());
                    let checked = async {
                        let role_scopes =
                            roles::role_scopes_on(&mut tx, tenant, &requester).await?;
                        let (approved_by, _) =
                            approvals::standing_approvals(&mut tx, tenant, req).await?;
                        Ok::<_, Error>((role_scopes, approved_by))
                    }
                    .await;
                    let (role_scopes, approved_by) = match checked {
                        Ok(c) => c,
                        Err(e) => return (tx, Err(e)),
                    };
                    let principal = Principal {
                        tenant: tenant.clone(),
                        persona: requester,
                        kind: req.requester_kind,
                        scopes: req
                            .requester_scopes
                            .intersection(&role_scopes)
                            .copied()
                            .collect(),
                        via: Via::Approval {
                            request_id: req.id.clone(),
                        },
                        surface: req.requester_surface,
                        valid_until: None,
                        secret_digest: None,
                    };
                    let env = core.env.clone();
                    let mut ctx =
                        OpCtx::new(tx, principal, env.clock.now(), env, registry::catalogue());
                    ctx.keys = keys;
                    ctx.prepared = prepared;
                    let extra: Map<String, Value> = json!({
                        "request_id": req.id,
                        "digest": req.digest,
                        "approved_by": approved_by,
                        "break_glass_by": req.break_glass_by,
                    })
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                    let (tx, ran) = core
                        .run_approved(ctx, spec, req.input.clone(), extra, req.id.clone())
                        .await;
                    (tx, ran.map(Ok))
                })
            })
            .await;
        match ran {
            Ok(Ok((_, effects))) => {
                for n in &effects.notifications {
                    env.notify(n);
                }
                for e in effects.events {
                    env.publish(e);
                }
                env.notify(&Notification::Executed {
                    tenant: tenant.clone(),
                    request_id: req.id.clone(),
                    operation: req.operation.clone(),
                    requester: req.requester.clone(),
                });
                env.publish(Event::RequestFinished {
                    tenant: tenant.clone(),
                    request_id: req.id.clone(),
                });
            }
            Ok(Err(reason)) => self.finish_failed(tenant, &req, &reason).await?,
            Err(e) => self.finish_failed(tenant, &req, &e.to_string()).await?,
        }
        Ok(true)
    }

    /// Why an approved request may not run now, if anything.
    pub(crate) async fn execution_blocker(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        req: &approvals::StoredRequest,
    ) -> Result<Option<String>> {
        let requester = PersonaId::from_db(req.requester.clone());
        if approvals::digest(tenant, &req.operation, &req.input, &requester) != req.digest {
            return Ok(Some(
                "the stored input no longer matches the digest that was approved; nothing was run"
                    .into(),
            ));
        }
        if store::personas::status(tx, tenant, &requester).await? != Some(PersonaStatus::Active) {
            return Ok(Some(
                "the requester is no longer active; nothing was run".into(),
            ));
        }
        if let Some(spec) = registry::find(&req.operation)
            && let Some(scope) = spec.scope
        {
            let now_scopes = roles::role_scopes_on(tx, tenant, &requester).await?;
            if !now_scopes.contains(&scope) || !req.requester_scopes.contains(&scope) {
                return Ok(Some(format!(
                    "the requester no longer holds `{scope}`; nothing was run"
                )));
            }
        }
        if req.break_glass_by.is_none() {
            let (valid, lapsed) = approvals::standing_approvals(tx, tenant, req).await?;
            if (valid.len() as u32) < req.quorum {
                return Ok(Some(format!(
                    "only {} of the {} approvals still stand ({}); nothing was run",
                    valid.len(),
                    req.quorum,
                    lapsed.join("; ")
                )));
            }
        }
        Ok(None)
    }

    /// Marks an executing request failed, with its audit entry, and tells the requester.
    pub(crate) async fn finish_failed(
        &self,
        tenant: &TenantId,
        req: &approvals::StoredRequest,
        reason: &str,
    ) -> Result<()> {
        let env = &self.env;
        let now = env.clock.now();
        let (t, request, why) = (tenant.clone(), req.clone(), reason.to_owned());
        let env2 = env.clone();
        let changed = env
            .write(move |tx| {
                Box::pin(async move {
                    let (env, tenant, req, reason) = (env2, &t, &request, why.as_str());
                    let changed =
                        store::approvals::fail(tx, tenant, &req.id, reason, to_millis(now)).await?;
                    if !changed {
                        // Someone else finished it meanwhile: nothing to record, nobody to tell twice.
                        return Ok(false);
                    }
                    env.record(
                        tx,
                        tenant,
                        now,
                        Draft {
                            actor: Actor {
                                persona: Some(req.requester.clone()),
                                kind: Some(req.requester_kind.as_str().to_owned()),
                                via: format!("approval:{}", req.id),
                                surface: req.requester_surface.as_str().to_owned(),
                            },
                            op: req.operation.clone(),
                            outcome: AuditOutcome::Failed,
                            detail: json!({
                                "request_id": req.id,
                                "input": req.input,
                                "error": reason,
                            }),
                        },
                    )
                    .await?;
                    Ok(true)
                })
            })
            .await?;
        if !changed {
            return Ok(());
        }
        env.notify(&Notification::Failed {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
            operation: req.operation.clone(),
            requester: req.requester.clone(),
            reason: reason.to_owned(),
        });
        env.publish(Event::RequestFinished {
            tenant: tenant.clone(),
            request_id: req.id.clone(),
        });
        Ok(())
    }
}
