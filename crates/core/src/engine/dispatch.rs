//! Dispatch: the single function through which every operation runs — re-check the caller, the
//! scope, canonical references, the two-person gate, the operation and its audit entry.

use super::actor_of;
use crate::Core;
use crate::approvals;
use crate::error::{Error, Result};
use crate::ledger::{AuditOutcome, Draft};
use crate::notify::Notification;
use crate::operation::{Effects, OpCtx, OpSpec, Risk};
use crate::ops::registry;
use crate::principal::Principal;
use crate::refs;
use crate::store::Tx;
use crate::vault::keys::TenantKeys;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The result of a call, as every surface renders it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The operation ran; here is its output.
    Done {
        /// The operation's output.
        output: Value,
    },
    /// The operation waits for a second person.
    PendingApproval {
        /// The approval request.
        request_id: String,
        /// What will happen once approved.
        summary: String,
        /// Hex SHA-256 of canonical {tenant, operation, input, requester}, shown to approvers.
        digest: String,
        /// When the request expires if undecided (RFC 3339).
        expires_at: String,
        /// Approvals needed.
        quorum: u32,
    },
    /// The caller may not do this.
    Denied {
        /// Why, in words a person can act on.
        reason: String,
    },
}

impl Core {
    /// Runs operation `op` for `principal`: the single dispatch function of every surface.
    ///
    /// The principal is re-checked first ([`Core::refresh`]). A missing scope yields
    /// [`Outcome::Denied`]. A destructive operation, or one an approval route matches, is not
    /// run: a request bound to its digest is stored and [`Outcome::PendingApproval`] returned.
    /// An operation error is returned as `Err`. In every case exactly one audit entry is
    /// written — on success in the operation's own transaction, otherwise in a transaction of
    /// its own after the rollback.
    pub async fn call(&self, principal: &Principal, op: &str, input: Value) -> Result<Outcome> {
        let env = &self.env;
        // One snapshot re-checks the caller, counts the routes naming the operation and, for a
        // read, runs it. Anything else is released right after the re-check, which is one
        // statement: it needs no transaction (no `BEGIN`, no `ROLLBACK`).
        let mut snapshot = if registry::find(op).is_some_and(|s| s.risk == Risk::Read) {
            env.store.begin_read().await?
        } else {
            env.store.read().await?
        };
        let rechecked = match self.recheck(&mut snapshot, principal, op).await {
            Ok(r) => r,
            Err(e) => {
                snapshot.end_read();
                return Err(e);
            }
        };
        let rechecked = match rechecked {
            Ok(fresh) => fresh,
            Err(refused) => {
                snapshot.end_read();
                self.record_refusal(principal, refused).await?;
                return Err(Error::Unauthenticated(refused.into()));
            }
        };
        let (principal, routes) = rechecked;
        let principal = &principal;
        let spec = registry::find(op);
        // Kept for a read; released before anything else is recorded or written.
        let mut snapshot = match spec.is_some_and(|s| s.risk == Risk::Read && routes == 0) {
            true => Some(snapshot),
            false => {
                snapshot.end_read();
                None
            }
        };
        let Some(spec) = spec else {
            let shown: String = op.chars().take(80).collect();
            self.record(
                principal,
                "unknown",
                AuditOutcome::Invalid,
                json!({ "requested": shown }),
            )
            .await?;
            return Err(Error::UnknownOperation(shown));
        };
        // Serialised once: its size for the limit and, for a bulk operation, its digest for the
        // audit entry. The value itself is owned here until the call no longer needs it.
        let value = input;
        let input = &CallInput::of(spec, &value);
        let input_len = input.bytes;
        let limit = spec.max_input_bytes;
        if input_len > limit {
            if let Some(snapshot) = snapshot.take() {
                snapshot.end_read();
            }
            self.record(
                principal,
                spec.name,
                AuditOutcome::Invalid,
                json!({ "error": "input too large" }),
            )
            .await?;
            return Err(Error::bad_input(
                "input",
                format!("input is {input_len} bytes; the limit is {limit}"),
            ));
        }
        if let Some(scope) = spec.scope
            && !principal.has(scope)
        {
            let reason = format!(
                "`{}` needs scope `{scope}`, which this credential does not carry; ask an admin \
                 for a role or key that grants it",
                spec.name
            );
            if let Some(snapshot) = snapshot.take() {
                snapshot.end_read();
            }
            self.record(
                principal,
                spec.name,
                AuditOutcome::Denied,
                json!({ "reason": reason, "input": input.audited() }),
            )
            .await?;
            return Ok(Outcome::Denied { reason });
        }
        // Keys and prepared work come before any transaction: a KMS is never waited for
        // inside the writer.
        let pre = self
            .before_transaction(&principal.tenant, spec, &value, None)
            .await;
        let (keys, prepared) = match pre {
            Ok(pre) => pre,
            Err(e) => {
                if let Some(snapshot) = snapshot.take() {
                    snapshot.end_read();
                }
                let draft = failure_draft(principal, spec, &input.audited(), &e);
                self.record(principal, spec.name, draft.outcome, draft.detail)
                    .await?;
                return Err(e);
            }
        };
        let now = env.clock.now();
        if let Some(snapshot) = snapshot {
            return self
                .call_read(snapshot, principal, spec, input, now, keys)
                .await;
        }
        // One write transaction holds the operation and its audit entry, whatever the outcome:
        // the operation runs inside a savepoint that is rolled back if it fails, and the
        // failure's entry is committed in its place. The transaction is the writer's, shared
        // with concurrent calls (group commit); the call is answered once it is durable.
        let facts = input.facts();
        let core = self.clone();
        let caller = principal.clone();
        let written = env
            .write_owned_in("op", move |tx| {
                Box::pin(async move {
                    let (tx, written) = core
                        .run_write(tx, caller, spec, (value, facts), now, (keys, prepared))
                        .await;
                    (tx, written)
                })
            })
            .await?;
        match written {
            Written::Pending(pending, value) => {
                let (outcome, notification) = *pending;
                drop(value);
                env.notify(&notification);
                Ok(outcome)
            }
            Written::Done(output, effects, value) => {
                drop(value);
                let output = self.after_commit(effects, output).await;
                Ok(Outcome::Done { output })
            }
            Written::Failed(err) => match err {
                Error::Denied { reason } => Ok(Outcome::Denied { reason }),
                other => Err(other),
            },
        }
    }

    /// The write path of [`Core::call`], as a job of the writer: canonical references, the
    /// gate, the operation in the savepoint `op` (set by the writer with the job's own), and
    /// the audit entry of whatever came of it. An `Err` is a failure of the store itself (the
    /// job is rolled back and nothing is recorded).
    async fn run_write(
        &self,
        tx: Tx,
        principal: Principal,
        spec: &'static OpSpec,
        (value, facts): (Value, InputFacts),
        now: chrono::DateTime<chrono::Utc>,
        (keys, prepared): Prepared,
    ) -> (Tx, Result<Written>) {
        let env = &self.env;
        let input = &CallInput::with(&value, facts);
        let mut ctx = OpCtx::new(tx, principal, now, env.clone(), registry::catalogue());
        ctx.keys = keys;
        ctx.prepared = prepared;
        // References are resolved to ids first: routing, the gate, the digest, the operation
        // and its audit entry all see the same objects, however the caller named them.
        let tenant = ctx.principal.tenant.clone();
        let canonical =
            refs::canonicalise(&mut ctx.tx, env, &tenant, &spec.refs, input.value).await;
        let (step, canonical) = match canonical {
            Err(e) => (Err(e), None),
            Ok((canon_value, resolved)) => {
                ctx.names = refs::names(&resolved);
                // Serialised again only when a reference changed it (never a bulk input).
                let owned;
                let canon = match &canon_value {
                    std::borrow::Cow::Borrowed(_) => input,
                    std::borrow::Cow::Owned(v) => {
                        owned = CallInput::of(spec, v);
                        &owned
                    }
                };
                let step = match self.gate(&mut ctx, spec, canon).await {
                    Ok(Some(pending)) => Ok(Step::Pending(Box::new(pending))),
                    Ok(None) => (spec.run)(&mut ctx, canon.value).await.map(Step::Done),
                    Err(e) => Err(e),
                };
                (step, Some(canon.audited()))
            }
        };
        let audited = canonical.unwrap_or_else(|| input.audited());
        let principal = ctx.principal.clone();
        let (mut tx, mut detail, effects) = ctx.into_parts();
        let written = async {
            match step {
                // The savepoint `op` is left set: the writer's release of the job (or the
                // commit) releases it with everything inside, one round trip fewer.
                Ok(Step::Pending(pending)) => Ok(Written::Pending(pending, value)),
                Ok(Step::Done(output)) => {
                    detail.insert("input".into(), audited);
                    let draft = Draft {
                        actor: actor_of(&principal),
                        op: spec.name.to_owned(),
                        outcome: AuditOutcome::Done,
                        detail: Value::Object(detail),
                    };
                    env.record(&mut tx, &principal.tenant, now, draft).await?;
                    env.announce(&mut tx, &effects.events).await?;
                    Ok(Written::Done(output, effects, value))
                }
                Err(err) => {
                    tx.rollback_to("op").await?;
                    let draft = failure_draft(&principal, spec, &audited, &err);
                    env.record(&mut tx, &principal.tenant, now, draft).await?;
                    Ok(Written::Failed(err))
                }
            }
        }
        .await;
        (tx, written)
    }

    /// A read-only call runs in a read transaction `tx` (a consistent snapshot that never holds
    /// the write lock); its output is released only after its audit entry has committed.
    pub(crate) async fn call_read(
        &self,
        tx: Tx,
        principal: &Principal,
        spec: &OpSpec,
        input: &CallInput<'_>,
        now: chrono::DateTime<chrono::Utc>,
        keys: Option<Arc<TenantKeys>>,
    ) -> Result<Outcome> {
        let env = &self.env;
        let mut ctx = OpCtx::new(
            tx,
            principal.clone(),
            now,
            env.clone(),
            registry::catalogue(),
        );
        ctx.keys = keys;
        let canonical =
            refs::canonicalise(&mut ctx.tx, env, &principal.tenant, &spec.refs, input.value).await;
        let (result, audited) = match canonical {
            Err(e) => (Err(e), input.audited()),
            Ok((canon_value, resolved)) => {
                ctx.names = refs::names(&resolved);
                let audited = match &canon_value {
                    std::borrow::Cow::Borrowed(_) => input.audited(),
                    std::borrow::Cow::Owned(v) => CallInput::of(spec, v).audited(),
                };
                ((spec.run)(&mut ctx, &canon_value).await, audited)
            }
        };
        let (tx, mut detail, _) = ctx.into_parts();
        tx.end_read();
        match result {
            Ok(output) => {
                detail.insert("input".into(), audited);
                self.record(
                    principal,
                    spec.name,
                    AuditOutcome::Done,
                    Value::Object(detail),
                )
                .await?;
                Ok(Outcome::Done { output })
            }
            Err(err) => {
                let draft = failure_draft(principal, spec, &audited, &err);
                self.record(principal, spec.name, draft.outcome, draft.detail)
                    .await?;
                match err {
                    Error::Denied { reason } => Ok(Outcome::Denied { reason }),
                    other => Err(other),
                }
            }
        }
    }

    /// The two-person gate. For a destructive call, one an approval route matches, or one the
    /// operation says needs a second person now ([`crate::Operation::second_person`]), stores a
    /// request bound to the (canonical) input with its audit entry in `ctx.tx` and returns the
    /// outcome and the notification to send once committed. Otherwise leaves the transaction
    /// untouched and returns `None`.
    pub(crate) async fn gate(
        &self,
        ctx: &mut OpCtx,
        spec: &OpSpec,
        input: &CallInput<'_>,
    ) -> Result<Option<(Outcome, Notification)>> {
        let tenant = ctx.tenant().clone();
        let routed = approvals::has_routes(&mut ctx.tx, &tenant, spec.name).await?;
        let second_person = match spec.guard {
            Some(guard) => guard(ctx, input.value).await?,
            None => None,
        };
        if spec.risk != Risk::Destructive && !routed && second_person.is_none() {
            return Ok(None);
        }
        let mut plan = (spec.plan)(ctx, input.value).await?;
        let route = approvals::matching_route(
            &mut ctx.tx,
            &self.env,
            &tenant,
            spec,
            &plan.facts,
            input.value,
        )
        .await?;
        if spec.risk != Risk::Destructive && route.is_none() && second_person.is_none() {
            return Ok(None);
        }
        if let Some(why) = &second_person {
            plan.facts
                .insert("second_person".into(), Value::String(why.clone()));
            plan.summary = format!("{} — {why}", plan.summary);
        }
        let principal = ctx.principal.clone();
        let (stored, pending) = approvals::create(
            &mut ctx.tx,
            &principal,
            spec.name,
            input.value,
            &plan.facts,
            &plan.summary,
            route.as_ref(),
            ctx.now,
            (spec.personal, ctx.keys.as_deref()),
        )
        .await?;
        let approvers = approvals::eligible_approvers(&mut ctx.tx, &tenant, &stored).await?;
        self.env
            .record(
                &mut ctx.tx,
                &tenant,
                ctx.now,
                Draft {
                    actor: actor_of(&principal),
                    op: spec.name.to_owned(),
                    outcome: AuditOutcome::PendingApproval,
                    detail: json!({
                        "input": input.audited(),
                        "request_id": pending.request_id,
                        "digest": pending.digest,
                        "facts": plan.facts,
                        "route": route.as_ref().map(|r| r.name.clone()),
                        "quorum": pending.quorum,
                    }),
                },
            )
            .await?;
        let notification = Notification::Requested {
            tenant,
            request_id: pending.request_id.clone(),
            operation: spec.name.to_owned(),
            summary: pending.summary.clone(),
            approvers,
        };
        let outcome = Outcome::PendingApproval {
            request_id: pending.request_id,
            summary: pending.summary,
            digest: pending.digest,
            expires_at: pending.expires_at,
            quorum: pending.quorum,
        };
        Ok(Some((outcome, notification)))
    }
}

/// What an operation gets from before its transaction: the tenant's keys and what it prepared.
pub(crate) type Prepared = (Option<Arc<TenantKeys>>, Value);

impl Core {
    /// Loads the tenant's keys (for an operation declaring [`crate::Operation::KEYS`]) and runs
    /// its [`crate::Operation::prepare`]: both outside any transaction.
    pub(crate) async fn before_transaction(
        &self,
        tenant: &crate::ids::TenantId,
        spec: &OpSpec,
        input: &Value,
        keys: Option<Arc<TenantKeys>>,
    ) -> Result<Prepared> {
        let keys = match (spec.keys, keys) {
            (true, None) => Some(self.env.keys(tenant).await?),
            (_, given) => given,
        };
        let prepared = match spec.prepare {
            Some(prepare) => prepare(self.env.clone(), tenant.clone(), input).await?,
            None => Value::Null,
        };
        Ok((keys, prepared))
    }
}

/// What one serialisation of an input told: its size, and its digest when audited by digest.
#[derive(Clone, Copy)]
pub(crate) struct InputFacts {
    bytes: usize,
    sha256: Option<[u8; 32]>,
    personal: &'static [&'static str],
}

/// A call's input with what one serialisation of it tells: its size in bytes (for the limit)
/// and, for an operation that does not audit its input verbatim, its SHA-256.
pub(crate) struct CallInput<'a> {
    value: &'a Value,
    bytes: usize,
    sha256: Option<[u8; 32]>,
    personal: &'static [&'static str],
}

impl<'a> CallInput<'a> {
    /// Serialises `value` once (compact JSON, the bytes `value.to_string()` gives) without
    /// keeping the text: only counted, and hashed when the audit entry records a digest.
    pub(crate) fn of(spec: &OpSpec, value: &'a Value) -> Self {
        use sha2::Digest;
        struct Sink {
            bytes: usize,
            hash: Option<sha2::Sha256>,
        }
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.bytes += buf.len();
                if let Some(h) = &mut self.hash {
                    h.update(buf);
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = std::io::BufWriter::with_capacity(
            16 * 1024,
            Sink {
                bytes: 0,
                hash: (!spec.audit_input).then(sha2::Sha256::new),
            },
        );
        // Writing JSON into memory cannot fail.
        let _ = serde_json::to_writer(&mut sink, value);
        let sink = match sink.into_inner() {
            Ok(sink) => sink,
            Err(e) => e.into_inner().into_parts().0,
        };
        Self {
            value,
            bytes: sink.bytes,
            sha256: sink.hash.map(|h| h.finalize().into()),
            personal: spec.personal,
        }
    }

    /// What the serialisation told, to pair with the value again later ([`CallInput::with`]).
    pub(crate) fn facts(&self) -> InputFacts {
        InputFacts {
            bytes: self.bytes,
            sha256: self.sha256,
            personal: self.personal,
        }
    }

    /// The input `value` with the facts of its earlier serialisation.
    pub(crate) fn with(value: &'a Value, facts: InputFacts) -> Self {
        Self {
            value,
            bytes: facts.bytes,
            sha256: facts.sha256,
            personal: facts.personal,
        }
    }

    /// The input as its audit entry records it: verbatim but for its personal data
    /// ([`crate::Operation::PERSONAL`], which the ledger — append-only, never re-encrypted —
    /// must not hold), or (bulk operations) its size and digest.
    pub(crate) fn audited(&self) -> Value {
        match &self.sha256 {
            None => {
                let mut v = self.value.clone();
                if let Some(obj) = v.as_object_mut() {
                    for field in self.personal {
                        if let Some(x) = obj.get_mut(*field)
                            && !x.is_null()
                        {
                            *x = Value::String(PERSONAL_MARK.into());
                        }
                    }
                }
                v
            }
            Some(digest) => json!({ "bytes": self.bytes, "sha256": hex::encode(digest) }),
        }
    }
}

/// What the ledger records in place of a personal value of an input.
pub use crate::approvals::PERSONAL_MARK;

/// What a write call's job did, committed. The input comes back with it, to be freed outside
/// the writer (freeing a large input takes milliseconds).
pub(crate) enum Written {
    /// A request waits for approval; notify once committed.
    Pending(Box<(Outcome, Notification)>, Value),
    /// The operation ran; its effects follow the commit.
    Done(Value, Effects, Value),
    /// The operation failed; its failure was recorded.
    Failed(Error),
}

/// How far a write call got.
pub(crate) enum Step {
    /// Waiting for approval.
    Pending(Box<(Outcome, Notification)>),
    /// Ran, with this output.
    Done(Value),
}

/// The audit entry of a call that failed.
fn failure_draft(principal: &Principal, spec: &OpSpec, input: &Value, err: &Error) -> Draft {
    let op = spec.name;
    let outcome = match err {
        Error::Denied { .. } => AuditOutcome::Denied,
        Error::BadInput { .. } => AuditOutcome::Invalid,
        _ => AuditOutcome::Failed,
    };
    Draft {
        actor: actor_of(principal),
        op: op.to_owned(),
        outcome,
        detail: json!({ "input": input, "error": err.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn one_pass_over_the_input_gives_the_size_and_digest_of_its_text() {
        let input = json!({"events": [{"id": "é\"1\n", "quantity": 1.5, "n": null}], "a": [true]});
        let text = input.to_string();
        let bulk = registry::find("billing.ingest").unwrap();
        let facts = CallInput::of(bulk, &input);
        assert_eq!(facts.bytes, text.len());
        assert_eq!(
            facts.audited(),
            json!({ "bytes": text.len(), "sha256": hex::encode(sha2::Sha256::digest(&text)) })
        );
        let verbatim = registry::find("whoami").unwrap();
        let facts = CallInput::of(verbatim, &input);
        assert_eq!((facts.bytes, facts.audited()), (text.len(), input.clone()));
    }
}
