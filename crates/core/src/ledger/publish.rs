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

use crate::error::Result;
use crate::ids::TenantId;
use crate::store::{self, Tx};
use schemars::JsonSchema;
use serde::Serialize;

/// The future a [`CheckpointSink`] returns (re-exported so sinks need no `futures` crate).
pub use futures::future::BoxFuture;

/// How every publication message starts; only messages that start with it are read back.
pub const MARKER: &str = "Signed audit checkpoint";

/// How long a worker holds a claimed publication before another may take it over.
pub(crate) const LEASE_MS: i64 = 120_000;
/// Attempts before a publication that reached no destination is given up (and audited).
pub(crate) const MAX_ATTEMPTS: i64 = 5;
/// Publications delivered per worker pass at most.
pub(crate) const PER_PASS: usize = 32;

pub use crate::store::ledger::Reason;

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
pub(crate) fn origin_of(note: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::checkpoint::{CheckpointSigner, CheckpointVerifier};

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
