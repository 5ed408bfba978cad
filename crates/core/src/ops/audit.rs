//! The audit ledger, as operations: inclusion proofs, the latest checkpoint, recent entries.

use crate::Event;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ledger::{self, Body, InclusionProof, publish};
use crate::operation::{OpCtx, Operation, Risk};
use crate::ops::members::NoInput;
use crate::scope::Scope;
use crate::store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Input of `audit.proof`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofInput {
    /// The entry's sequence number (0 is the tenant's creation).
    pub seq: u64,
}

/// `audit.proof`.
pub struct Proof;

impl Operation for Proof {
    const NAME: &'static str = "audit.proof";
    const SUMMARY: &'static str =
        "Inclusion proof of one audit entry against the signed checkpoint";
    const HELP: &'static str = "Returns one audit entry with an RFC 9162 inclusion proof against the latest \
        Ed25519-signed checkpoint (C2SP tlog-checkpoint) and the tenant's verifier key, so an auditor can \
        check offline that the entry is in the ledger everyone else sees.";
    const SCOPE: Option<Scope> = Some(Scope::AUDIT_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"seq":0}"#];
    type Input = ProofInput;
    type Output = InclusionProof;

    async fn execute(ctx: &mut OpCtx, input: ProofInput) -> Result<InclusionProof> {
        let tenant = ctx.tenant().clone();
        ledger::prove(&mut ctx.tx, &tenant, input.seq).await
    }
}

/// Output of `audit.checkpoint`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckpointOutput {
    /// Entries the checkpoint commits to.
    pub size: u64,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The C2SP verifier key of the tenant's checkpoints.
    pub verifier_key: String,
}

/// `audit.checkpoint`.
pub struct Checkpoint;

impl Operation for Checkpoint {
    const NAME: &'static str = "audit.checkpoint";
    const SUMMARY: &'static str = "The latest signed checkpoint of the audit ledger";
    const HELP: &'static str = "Returns the latest signed checkpoint (tree size and Merkle root, signed with \
        the tenant's Ed25519 key) and the verifier key. Keep copies: a later checkpoint that does not \
        extend an earlier one proves tampering.";
    const SCOPE: Option<Scope> = Some(Scope::AUDIT_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = CheckpointOutput;

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<CheckpointOutput> {
        let tenant = ctx.tenant().clone();
        let (size, checkpoint) = ledger::latest_checkpoint(&mut ctx.tx, &tenant).await?;
        let verifier_key = store::ledger::stored_verifier(&mut ctx.tx, &tenant)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no tenant {tenant} in this database")))?;
        Ok(CheckpointOutput {
            size,
            checkpoint,
            verifier_key,
        })
    }
}

/// Output of `audit.publish_checkpoint`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PublishOutput {
    /// The publication, as numbered in the tenant's outbox (audit entries of
    /// `audit.checkpoint_published` name it).
    pub publication: i64,
    /// Whether this call joined a publication already waiting to be posted.
    pub joined: bool,
    /// Entries in the ledger now; the checkpoint posted covers at least these.
    pub size: u64,
    /// Where it is posted.
    pub destinations: Vec<publish::Destination>,
    /// What happens next.
    pub next: String,
}

/// `audit.publish_checkpoint`.
pub struct PublishCheckpoint;

impl Operation for PublishCheckpoint {
    const NAME: &'static str = "audit.publish_checkpoint";
    const SUMMARY: &'static str =
        "Publish the latest signed checkpoint to the tenant's approval channels";
    const HELP: &'static str = "Posts the latest signed checkpoint of the audit ledger (the C2SP signed note, \
        verbatim in a code block) to the approval channel of every connected Slack workspace and Discord \
        server, where it stays out of reach of tenantops' own database. `tenantops audit verify --tenant ID \
        --published` reads those messages back and catches a rollback of the ledger that a check of the \
        database alone calls intact. `tenantops serve` posts it within moments (spaced a minute apart per \
        tenant by default) and also publishes on a schedule, daily by default, when the ledger grew. Each \
        publication is audited (`audit.checkpoint_published`, with where it went).";
    const SCOPE: Option<Scope> = Some(Scope::AUDIT_READ);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = PublishOutput;

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<PublishOutput> {
        let tenant = ctx.tenant().clone();
        let destinations = publish::destinations(&mut ctx.tx, &tenant).await?;
        if destinations.is_empty() {
            return Err(Error::Conflict(
                "there is nowhere to publish to: connect a Slack workspace or Discord server with an \
                 approval channel first (tenant.chat_install_link, then tenant.chat_bind)"
                    .into(),
            ));
        }
        let (size, _) = ledger::latest_checkpoint(&mut ctx.tx, &tenant).await?;
        let persona = ctx.principal.persona().to_string();
        let now = to_millis(ctx.now);
        let queued = publish::queue(
            &mut ctx.tx,
            &tenant,
            publish::Reason::OnDemand,
            Some(&persona),
            now,
        )
        .await?;
        ctx.audit("publication", queued.id);
        ctx.emit(Event::CheckpointPublicationQueued {
            tenant: tenant.clone(),
        });
        let next = if queued.joined {
            "a publication was already waiting; it posts the latest checkpoint when it goes out"
        } else {
            "queued: `tenantops serve` (with Slack or Discord configured) posts the latest \
             checkpoint within moments (a minute after the previous post at the earliest, by \
             default)"
        };
        Ok(PublishOutput {
            publication: queued.id,
            joined: queued.joined,
            size,
            destinations,
            next: next.into(),
        })
    }
}

/// Input of `audit.list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    /// How many entries, newest first (default 20, at most 200).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Only entries before this sequence number (for paging back).
    #[serde(default)]
    pub before: Option<u64>,
    /// Only entries of this operation, e.g. `keys.issue`.
    #[serde(default)]
    pub op: Option<String>,
}

fn default_limit() -> u32 {
    20
}

/// Output of `audit.list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EntryList {
    /// Entries, newest first.
    pub entries: Vec<serde_json::Value>,
}

/// `audit.list`.
pub struct List;

impl Operation for List {
    const NAME: &'static str = "audit.list";
    const SUMMARY: &'static str = "Recent audit entries, newest first";
    const HELP: &'static str = "Lists recent entries of the tenant's audit ledger — who did what, through \
        which credential and surface, and the outcome (done, denied, failed) — newest first.";
    const SCOPE: Option<Scope> = Some(Scope::AUDIT_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"limit":10}"#, r#"{"op":"keys.issue"}"#];
    type Input = ListInput;
    type Output = EntryList;

    async fn execute(ctx: &mut OpCtx, input: ListInput) -> Result<EntryList> {
        if input.limit == 0 || input.limit > 200 {
            return Err(Error::bad_input("limit", "give a limit between 1 and 200"));
        }
        let tenant = ctx.tenant().clone();
        let before = input.before.map(|b| b as i64).unwrap_or(i64::MAX);
        let bodies = store::ledger::recent_bodies(
            &mut ctx.tx,
            &tenant,
            before,
            input.op.as_deref(),
            i64::from(input.limit),
        )
        .await?;
        let entries = bodies
            .iter()
            .map(|b| {
                serde_json::from_str::<Body>(b)
                    .and_then(serde_json::to_value)
                    .map_err(|e| Error::Internal(format!("corrupt audit entry: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(EntryList { entries })
    }
}
