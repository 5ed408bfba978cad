//! Signed checkpoints published where the tenant keeps them, and read back from there.
//!
//! A rollback of the whole database to an older, validly signed state verifies as intact unless
//! the verifier holds a later checkpoint. So the tenant's latest signed checkpoint is posted to
//! places outside tenantops' database — each bound chat workspace's approval channel today,
//! webhooks later — on demand (`audit.publish_checkpoint`) and on a schedule (the `serve`
//! worker, when the ledger grew), as the signed note verbatim in a code block. `audit verify
//! --published` reads those messages back from the platforms, checks each note with the verifier
//! key the master key derives, and checks the ledger against them.
//!
//! The outbox (`audit_publications`) is delivery state and a record for display; verification
//! never reads it, since a rollback of the database would roll it back too. A destination is
//! anything that implements [`CheckpointSink`]: the core decides what to publish, when and where,
//! and a sink only posts a text and reads back what it posted.

use super::checkpoint::CheckpointVerifier;
use super::verify::{Failure, Report};
use super::{Actor, AuditOutcome, Draft};
use crate::Core;
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::{self, Tx};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// The future a [`CheckpointSink`] returns (re-exported so sinks need no `futures` crate).
pub use futures::future::BoxFuture;

/// How every publication message starts; only messages that start with it are read back.
pub const MARKER: &str = "Signed audit checkpoint";

/// How long a worker holds a claimed publication before another may take it over.
const LEASE_MS: i64 = 120_000;
/// Attempts before a publication that reached no destination is given up (and audited).
const MAX_ATTEMPTS: i64 = 5;
/// Publications delivered per worker pass at most.
const PER_PASS: usize = 32;

/// Why a checkpoint is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Someone asked (`audit.publish_checkpoint`).
    OnDemand,
    /// The schedule of the `serve` worker.
    Scheduled,
}

impl Reason {
    /// `on_demand` or `scheduled`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OnDemand => "on_demand",
            Reason::Scheduled => "scheduled",
        }
    }

    /// Parses the stored name; an unknown value is an error, never a silent default.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "on_demand" => Ok(Reason::OnDemand),
            "scheduled" => Ok(Reason::Scheduled),
            other => Err(Error::Internal(format!(
                "unknown publication reason `{other}` in the store"
            ))),
        }
    }
}

/// A place a tenant's checkpoints are published to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Destination {
    /// The kind of destination (the sink): `slack` or `discord`.
    pub kind: String,
    /// The Slack team or Discord server.
    pub workspace: String,
    /// The channel.
    pub channel: String,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} workspace {} channel {}",
            self.kind, self.workspace, self.channel
        )
    }
}

/// A message a sink posted, as read back from its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedText {
    /// The platform's message id (Slack `ts`, Discord message id).
    pub id: String,
    /// The message text, as the platform returns it.
    pub text: String,
}

/// Where signed checkpoints are published and read back from: one implementation per kind of
/// destination (Slack, Discord; a webhook sink later). Errors are one line for a person: what
/// failed and, where known, how to fix it; never a token.
pub trait CheckpointSink: Send + Sync + 'static {
    /// The destination kind this sink serves (`slack`, `discord`).
    fn kind(&self) -> &'static str;

    /// Posts `text` to `destination`; returns the new message's id.
    fn post<'a>(
        &'a self,
        destination: &'a Destination,
        text: &'a str,
    ) -> BoxFuture<'a, std::result::Result<String, String>>;

    /// Reads back the messages this sink's own identity posted at `destination` (top-level
    /// messages only, newest first), reading at most `max_messages` messages of the channel.
    fn read_back<'a>(
        &'a self,
        destination: &'a Destination,
        max_messages: usize,
    ) -> BoxFuture<'a, std::result::Result<Vec<PostedText>, String>>;
}

/// The message a publication posts: a marker line naming the tenant and the size, how to use
/// it, and the signed note verbatim in a code block.
pub fn message_text(tenant: &TenantId, size: u64, note: &str, reason: Reason) -> String {
    let why = match reason {
        Reason::OnDemand => "published on request",
        Reason::Scheduled => "published on schedule",
    };
    let note = if note.ends_with('\n') {
        note.to_owned()
    } else {
        format!("{note}\n")
    };
    format!(
        "{MARKER} of tenant {tenant}: {size} entries ({why}).\n\
         Keep this message: `tenantops audit verify --tenant {tenant} --published` checks the \
         audit ledger against every checkpoint published here, so a rollback of tenantops' \
         database is caught.\n```\n{note}```"
    )
}

/// The tenant a publication message names in its marker line, if it is one.
pub fn message_tenant(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix(MARKER)?;
    let rest = rest.strip_prefix(" of tenant ")?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// The signed notes in a publication message's code blocks, as the platform returned the text:
/// Slack's `&amp;`/`&lt;`/`&gt;` escapes are undone, CRLF becomes LF, a language tag after the
/// opening fence is skipped, and the trailing newline a note ends with is restored. A message
/// that does not start with [`MARKER`] yields nothing.
pub fn notes_in(text: &str) -> Vec<String> {
    let text = text
        .replace("\r\n", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    if !text.trim_start().starts_with(MARKER) {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(close) = after.find("```") else {
            break;
        };
        let mut block = &after[..close];
        rest = &after[close + 3..];
        // The fence's own line: empty, or a language tag (```text).
        if let Some((first, tail)) = block.split_once('\n')
            && !first.contains('/')
        {
            block = tail;
        }
        let mut note = block.trim_start_matches('\n').to_owned();
        while note.ends_with("\n\n") || note.ends_with(' ') {
            note.pop();
        }
        if !note.ends_with('\n') {
            note.push('\n');
        }
        if note.contains("\n\n\u{2014} ") {
            notes.push(note);
        }
    }
    notes
}

/// The origin line of a note (its first line).
fn origin_of(note: &str) -> &str {
    note.split('\n').next().unwrap_or_default()
}

/// Where a tenant's checkpoints are published: every bound workspace (not the offline
/// sandbox) with an approval channel. Webhook endpoints join this list when they exist.
pub async fn destinations(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Destination>> {
    Ok(store::chat::publication_channels(tx, tenant)
        .await?
        .into_iter()
        .map(|(platform, workspace, channel)| Destination {
            kind: platform.as_str().to_owned(),
            workspace,
            channel,
        })
        .collect())
}

/// A publication in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Its id.
    pub id: i64,
    /// Whether the request joined one already waiting.
    pub joined: bool,
}

/// Queues a publication of `tenant`'s latest checkpoint in the caller's transaction, or joins
/// the one already waiting (at most one waits per tenant).
pub async fn queue(
    tx: &mut Tx,
    tenant: &TenantId,
    reason: Reason,
    requested_by: Option<&str>,
    now_ms: i64,
) -> Result<Queued> {
    if let Some(id) = store::ledger::waiting_publication(tx, tenant).await? {
        return Ok(Queued { id, joined: true });
    }
    let id = store::ledger::insert_publication(tx, tenant, reason, requested_by, now_ms).await?;
    Ok(Queued { id, joined: false })
}

/// Whether a scheduled publication is due: the ledger grew since the last publication (beyond
/// that publication's own entry) and `every` has passed since it — or, before the first, since
/// the first destination was bound, so that binding a workspace posts nothing at once.
pub fn scheduled_due(
    now_ms: i64,
    every_ms: i64,
    size: u64,
    last: Option<(i64, u64)>,
    first_bound_ms: i64,
) -> bool {
    let (since, covered) = last.unwrap_or((first_bound_ms, 0));
    every_ms > 0 && size > covered && now_ms.saturating_sub(since) >= every_ms
}

/// What one delivery pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Publications posted to at least one destination.
    pub published: u32,
    /// Posts that failed (retried with the next publication, or the same one while it reached
    /// no destination).
    pub failed_posts: u32,
    /// Publications given up after reaching no destination [`MAX_ATTEMPTS`] times.
    pub given_up: u32,
}

/// The published checkpoints `audit verify --published` read back and checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PublishedCheck {
    /// Distinct published checkpoints (by tree size) the ledger was checked against.
    pub checked: u64,
    /// The largest tree size among them.
    pub newest_size: Option<u64>,
    /// What was read where.
    pub read: Vec<PlaceRead>,
}

/// What was read at one destination.
#[derive(Clone, Debug, Serialize)]
pub struct PlaceRead {
    /// The destination.
    #[serde(flatten)]
    pub destination: Destination,
    /// Publication messages of this sink found there.
    pub messages: u64,
    /// Signed checkpoints of this tenant among them.
    pub checkpoints: u64,
}

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
            let mut tx = env.store.begin_write().await?;
            let q = queue(&mut tx, &tenant, Reason::Scheduled, None, now).await?;
            tx.commit().await?;
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
        let mut tx = env.store.begin_write().await?;
        let row = store::ledger::claim_publication(
            &mut tx,
            kinds,
            now,
            now + LEASE_MS,
            now.saturating_sub(gap_ms),
        )
        .await?;
        tx.commit().await?;
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
            let (size, note) = super::latest_checkpoint(&mut tx, tenant).await?;
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
        let signer = super::signer(&env.master, tenant)?;
        let mut tx = env.store.begin_write().await?;
        if !posted.is_empty() {
            let appended = super::record(
                &mut tx,
                tenant,
                &signer,
                now,
                vec![Draft {
                    actor: worker_actor(),
                    op: "audit.checkpoint_published".into(),
                    outcome: AuditOutcome::Done,
                    detail,
                }],
            )
            .await?;
            // The ledger's size once this publication's own entry is in.
            let head_after = appended.last().map_or(0, |a| a.seq + 1);
            store::ledger::mark_published(
                &mut tx,
                tenant,
                claimed.id,
                size as i64,
                now_ms,
                head_after as i64,
                &serde_json::Value::Array(posted).to_string(),
                last_error.as_deref(),
            )
            .await?;
            report.published += 1;
        } else if claimed.attempts >= MAX_ATTEMPTS {
            super::record(
                &mut tx,
                tenant,
                &signer,
                now,
                vec![Draft {
                    actor: worker_actor(),
                    op: "audit.checkpoint_published".into(),
                    outcome: AuditOutcome::Failed,
                    detail,
                }],
            )
            .await?;
            store::ledger::mark_given_up(&mut tx, tenant, claimed.id, last_error.as_deref())
                .await?;
            report.given_up += 1;
        } else {
            // 30 s, 1 min, 2 min, 4 min: a platform outage is waited out, not hammered.
            let backoff = 30_000i64 << (claimed.attempts - 1).clamp(0, 6);
            store::ledger::retry_publication(
                &mut tx,
                tenant,
                claimed.id,
                now_ms + backoff,
                last_error.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
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
        let verifier = CheckpointVerifier::new(&key)
            .map_err(|e| Error::Internal(format!("audit verifier: {e}")))?;
        let origin = super::origin(tenant);
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

/// A publication a worker claimed.
struct Claimed {
    id: i64,
    tenant: TenantId,
    reason: Reason,
    requested_by: Option<String>,
    attempts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::checkpoint::CheckpointSigner;

    fn note() -> (TenantId, String, String) {
        let tenant = TenantId::from_db("tn_0123456789abcdef0123456789abcdef".into());
        let signer =
            CheckpointSigner::from_seed(&crate::ledger::origin(&tenant), &[9; 32]).unwrap();
        let note = signer.sign(42, &[7; 32]).unwrap();
        (tenant, note, signer.verifier_key())
    }

    #[test]
    fn the_note_comes_back_verbatim_from_the_message_it_was_posted_in() {
        let (tenant, note, key) = note();
        let text = message_text(&tenant, 42, &note, Reason::OnDemand);
        assert!(text.starts_with(MARKER));
        assert!(text.contains(&format!("```\n{note}```")), "{text}");
        assert_eq!(notes_in(&text), vec![note.clone()]);
        assert_eq!(message_tenant(&text), Some(tenant.as_str()));
        let cp = CheckpointVerifier::new(&key)
            .unwrap()
            .verify(&notes_in(&text)[0]);
        assert_eq!(cp.unwrap().size, 42);
    }

    #[test]
    fn platform_renderings_of_the_message_still_yield_the_note() {
        let (tenant, note, _) = note();
        let text = message_text(&tenant, 42, &note, Reason::Scheduled);
        // Slack escapes &, < and > in `text`; Windows clients send CRLF; a copy may lose the
        // note's last newline or carry a language tag after the fence.
        let slack = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert_eq!(notes_in(&slack), vec![note.clone()]);
        assert_eq!(notes_in(&text.replace('\n', "\r\n")), vec![note.clone()]);
        let trimmed = text.replace(&format!("{note}```"), &format!("{}```", note.trim_end()));
        assert_eq!(notes_in(&trimmed), vec![note.clone()]);
        let tagged = text.replace("```\n", "```text\n");
        assert_eq!(notes_in(&tagged), vec![note.clone()]);
        let no_break = text.replace("```\n", "```");
        assert_eq!(notes_in(&no_break), vec![note]);
    }

    #[test]
    fn other_messages_yield_nothing() {
        let (tenant, note, _) = note();
        // A code block in a message that is not a publication (an approval request, a comment
        // someone pasted a note into) is never read.
        assert!(notes_in(&format!("Rejected by bob: ```\n{note}```")).is_empty());
        assert!(notes_in("Approval request\n```\n{\"a\":1}\n```").is_empty());
        // A publication whose block holds no signed note yields nothing, and says whose it is.
        let text = format!("{MARKER} of tenant {tenant}: 1 entries.\n```\nhello\n```");
        assert!(notes_in(&text).is_empty());
        assert_eq!(message_tenant(&text), Some(tenant.as_str()));
        assert_eq!(message_tenant("Signed audit checkpoints are nice"), None);
        // An unterminated block yields nothing.
        let open = message_text(&tenant, 42, &note, Reason::OnDemand);
        assert!(notes_in(open.trim_end_matches('`')).is_empty());
    }

    #[test]
    fn reasons_read_back_as_stored_and_an_unknown_one_is_an_error() {
        for r in [Reason::OnDemand, Reason::Scheduled] {
            assert_eq!(Reason::parse(r.as_str()).unwrap(), r);
        }
        assert!(Reason::parse("whenever").is_err());
    }

    #[test]
    fn a_schedule_waits_for_growth_and_for_its_period() {
        let day = 86_400_000;
        // Never published: the period counts from the binding, so binding posts nothing at once.
        assert!(!scheduled_due(1_000, day, 10, None, 0));
        assert!(scheduled_due(day, day, 10, None, 0));
        // Published at size 10 whose own entry made it 11: nothing new, nothing published.
        assert!(!scheduled_due(3 * day, day, 11, Some((day, 11)), 0));
        // Something happened since: published once the period has passed.
        assert!(!scheduled_due(day + 5, day, 12, Some((day, 11)), 0));
        assert!(scheduled_due(2 * day, day, 12, Some((day, 11)), 0));
        // A zero period is off.
        assert!(!scheduled_due(2 * day, 0, 12, Some((day, 11)), 0));
    }
}
