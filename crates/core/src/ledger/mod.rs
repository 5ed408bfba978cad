//! The audit ledger: per tenant, append-only, hash-chained and committed to an RFC 6962 Merkle
//! tree whose heads are signed as C2SP tlog-checkpoints.
//!
//! An entry's body is canonical JSON that names its tenant, its sequence number and the leaf
//! hash of the entry before it; the leaf hash `SHA-256(0x00 || body)` is both the chain link and
//! the Merkle leaf. Appends happen inside the caller's transaction, so an operation and its entry
//! commit or roll back together. Secrets never enter a body: callers pass only ids and inputs.

pub mod append;
pub mod checkpoint;
pub mod merkle;
pub mod publish;
pub mod verify;

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::secrets::MasterKey;
use crate::store::{self, Tx};
use checkpoint::CheckpointSigner;
use chrono::{DateTime, SecondsFormat, Utc};
use merkle::{Frontier, Hash, leaf_hash};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A checkpoint is kept in history each time the ledger crosses a multiple of this size; the
/// latest one is always kept in the head.
pub const CHECKPOINT_INTERVAL: u64 = 1024;

/// Entries verified per batch when reading from the database.
const VERIFY_BATCH: usize = 8192;

/// Who did it, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    /// The persona, when one is known (absent for platform actions).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub persona: Option<String>,
    /// The persona kind.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<String>,
    /// The credential (`api_key:key_…`, `jwt`, `slack:T1/U1`, `platform`).
    pub via: String,
    /// The surface (`cli`, `mcp`, `slack`, …).
    pub surface: String,
}

/// What came of an operation, as recorded in its entry (`"outcome"`, in snake case).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It ran (`done`).
    Done,
    /// The caller may not (`denied`).
    Denied,
    /// It failed (`failed`).
    Failed,
    /// Its input was refused (`invalid`).
    Invalid,
    /// It waits for approval (`pending_approval`).
    PendingApproval,
}

impl AuditOutcome {
    /// The recorded name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Done => "done",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Invalid => "invalid",
            AuditOutcome::PendingApproval => "pending_approval",
        }
    }
}

/// What happened, before it is numbered and chained.
#[derive(Clone, Debug)]
pub struct Draft {
    /// The actor.
    pub actor: Actor,
    /// The operation name.
    pub op: String,
    /// What came of it.
    pub outcome: AuditOutcome,
    /// Operation-specific detail: inputs and ids, never secrets.
    pub detail: Value,
}

/// The stored form of an entry: the exact bytes that are hashed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Body {
    /// Format version.
    pub v: u32,
    /// The tenant whose ledger this is.
    pub tenant: String,
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// Hex leaf hash of entry `seq - 1` (all zeros for entry 0).
    pub prev: String,
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// Who.
    pub actor: Actor,
    /// Which operation.
    pub op: String,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Detail.
    pub detail: Value,
}

/// An appended entry's coordinates.
#[derive(Clone, Copy, Debug)]
pub struct Appended {
    /// Its sequence number.
    pub seq: u64,
    /// Its leaf hash.
    pub leaf: Hash,
}

/// The origin line (and key name) of a tenant's checkpoints.
pub fn origin(tenant: &TenantId) -> String {
    format!("tenantops/audit/{tenant}")
}

/// The tenant's checkpoint signer, derived from the master key.
pub fn signer(master: &MasterKey, tenant: &TenantId) -> Result<CheckpointSigner> {
    CheckpointSigner::from_seed(&origin(tenant), &master.audit_seed(tenant))
        .map_err(|e| Error::Internal(format!("audit signer: {e}")))
}

/// Creates an empty ledger (size 0, signed) for a new tenant.
pub async fn init(tx: &mut Tx, tenant: &TenantId, signer: &CheckpointSigner) -> Result<()> {
    let frontier = Frontier::new();
    let note = signer
        .sign(0, &frontier.root())
        .map_err(|e| Error::Internal(format!("sign checkpoint: {e}")))?;
    store::ledger::insert_head(
        tx,
        tenant,
        &store::ledger::Head {
            size: 0,
            last_hash: &[0u8; 32],
            frontier: &frontier.to_bytes(),
            checkpoint: &note,
        },
    )
    .await
}

struct Head {
    size: u64,
    last_hash: Hash,
    frontier: Frontier,
}

/// Reads the head and checks it against its own signed checkpoint before anything is appended:
/// a head whose size or compact range was rewritten in the database (by someone without the
/// master key) is refused rather than extended and re-signed.
async fn head(tx: &mut Tx, tenant: &TenantId, signer: &CheckpointSigner) -> Result<Head> {
    let row = store::ledger::head(tx, tenant)
        .await?
        .ok_or_else(|| Error::Internal(format!("tenant {tenant} has no audit ledger")))?;
    let size = stored_size(row.size)?;
    let (frontier, note) = (row.frontier, row.checkpoint);
    let last_hash: Hash = row
        .last_hash
        .try_into()
        .map_err(|_| Error::Internal("corrupt audit head hash".into()))?;
    let frontier = Frontier::from_bytes(size, &frontier)
        .map_err(|e| Error::Internal(format!("corrupt audit head: {e}")))?;
    // The note this process signed last needs no signature check (a hot ledger's every append
    // finds it); any other note is verified.
    let signed = match signer.signed_by_me(&note) {
        Some(signed) => signed,
        None => checkpoint::CheckpointVerifier::new(&signer.verifier_key())
            .map_err(|e| Error::Internal(format!("audit verifier: {e}")))?
            .verify(&note)
            .map_err(|e| {
                Error::Internal(format!(
                    "the audit head of tenant {tenant} fails its signed checkpoint ({e}); the \
                     ledger was tampered with — run `tenantops audit verify` and restore from \
                     backup"
                ))
            })?,
    };
    if signed.size != size || signed.root != frontier.root() {
        return Err(Error::Internal(format!(
            "the audit head of tenant {tenant} does not match its signed checkpoint; the ledger was \
             tampered with — run `tenantops audit verify` and restore from backup"
        )));
    }
    Ok(Head {
        size,
        last_hash,
        frontier,
    })
}

/// A size or sequence number read from the store.
fn stored_size(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Internal(format!("negative audit size {n} in the store")))
}

/// Appends `drafts` to the tenant's ledger inside the caller's transaction and signs a
/// checkpoint covering them: the only way entries enter a ledger, so every committed entry is
/// covered by a signed checkpoint.
pub async fn record(
    tx: &mut Tx,
    tenant: &TenantId,
    signer: &CheckpointSigner,
    now: DateTime<Utc>,
    drafts: Vec<Draft>,
) -> Result<Vec<Appended>> {
    record_at(tx, tenant, signer, drafts.into_iter().map(|d| (now, d))).await
}

/// [`record`] for entries of different times (the entries of many calls appended at once).
pub async fn record_at(
    tx: &mut Tx,
    tenant: &TenantId,
    signer: &CheckpointSigner,
    drafts: impl IntoIterator<Item = (DateTime<Utc>, Draft)>,
) -> Result<Vec<Appended>> {
    let mut h = head(tx, tenant, signer).await?;
    let old_size = h.size;
    let mut rows: Vec<(u64, String, Hash)> = Vec::new();
    for (at, mut draft) in drafts {
        let ts = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        // Whatever a caller pasted, a credential never becomes part of the ledger.
        crate::redact::json(&mut draft.detail);
        let body = Body {
            v: 1,
            tenant: tenant.to_string(),
            seq: h.size,
            prev: hex::encode(h.last_hash),
            ts,
            actor: draft.actor,
            op: draft.op,
            outcome: draft.outcome,
            detail: draft.detail,
        };
        let text = serde_json::to_string(&body)
            .map_err(|e| Error::Internal(format!("serialise audit entry: {e}")))?;
        let leaf = leaf_hash(text.as_bytes());
        h.frontier.push(leaf);
        h.last_hash = leaf;
        h.size += 1;
        rows.push((body.seq, text, leaf));
    }
    let entries: Vec<store::ledger::NewEntry<'_>> = rows
        .iter()
        .map(|(_, text, leaf)| store::ledger::NewEntry {
            body: text,
            leaf_hash: leaf,
        })
        .collect();
    let note = signer
        .sign(h.size, &h.frontier.root())
        .map_err(|e| Error::Internal(format!("sign checkpoint: {e}")))?;
    store::ledger::append(
        tx,
        tenant,
        old_size as i64,
        &entries,
        &store::ledger::Head {
            size: h.size as i64,
            last_hash: &h.last_hash,
            frontier: &h.frontier.to_bytes(),
            checkpoint: &note,
        },
    )
    .await?;
    if h.size / CHECKPOINT_INTERVAL > old_size / CHECKPOINT_INTERVAL {
        store::ledger::keep_checkpoint(tx, tenant, h.size as i64, &note).await?;
    }
    Ok(rows
        .into_iter()
        .map(|(seq, _, leaf)| Appended { seq, leaf })
        .collect())
}

/// The latest signed checkpoint of a tenant's ledger.
pub async fn latest_checkpoint(tx: &mut Tx, tenant: &TenantId) -> Result<(u64, String)> {
    let (size, note) = store::ledger::head_checkpoint(tx, tenant)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tenant {tenant} has no audit ledger")))?;
    Ok((stored_size(size)?, note))
}

/// An inclusion proof of one entry in the tree of the latest checkpoint.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// The entry's sequence number (its leaf index).
    pub seq: u64,
    /// The entry body, exactly as hashed.
    pub body: String,
    /// Hex `SHA-256(0x00 || body)`.
    pub leaf_hash: String,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The audit path, hex, leaf to root (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
    /// The signed checkpoint committing to that tree.
    pub checkpoint: String,
    /// The C2SP verifier key that signs the tenant's checkpoints.
    pub verifier_key: String,
}

/// Builds an inclusion proof for entry `seq` against the latest checkpoint. Reads every leaf
/// hash of the tenant (32 bytes each): linear in the ledger's size.
pub async fn prove(tx: &mut Tx, tenant: &TenantId, seq: u64) -> Result<InclusionProof> {
    let (size, note) = latest_checkpoint(tx, tenant).await?;
    if seq >= size {
        return Err(Error::NotFound(format!(
            "audit entry {seq} does not exist; the ledger has {size} entries (0..{size})"
        )));
    }
    let leaves = store::ledger::leaf_hashes(tx, tenant, size as i64).await?;
    let leaves: Vec<Hash> = leaves
        .into_iter()
        .map(|l| {
            l.try_into()
                .map_err(|_| Error::Internal("corrupt leaf hash".into()))
        })
        .collect::<Result<_>>()?;
    let path = merkle::inclusion_proof(&leaves, seq, size)
        .map_err(|e| Error::Internal(format!("inclusion proof: {e}")))?;
    let body = store::ledger::body(tx, tenant, seq as i64)
        .await?
        .ok_or_else(|| Error::Internal(format!("audit entry {seq} is missing from the store")))?;
    let verifier_key = store::ledger::stored_verifier(tx, tenant)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no tenant {tenant} in this database")))?;
    Ok(InclusionProof {
        seq,
        leaf_hash: hex::encode(leaves[seq as usize]),
        body,
        tree_size: size,
        proof: path.iter().map(hex::encode).collect(),
        checkpoint: note,
        verifier_key,
    })
}

/// File names of an exported ledger.
pub mod export_files {
    /// One entry body per line, in order.
    pub const ENTRIES: &str = "entries.jsonl";
    /// Signed checkpoints, one file each.
    pub const CHECKPOINTS_DIR: &str = "checkpoints";
    /// The tenant's C2SP verifier key.
    pub const VERIFIER_KEY: &str = "verifier-key.txt";
    /// The tenant id.
    pub const TENANT: &str = "tenant.txt";
}

/// Verifies a tenant's ledger in the database against `trusted_key` (derived from the master
/// key by the caller, never read from the database it is checking), reading everything in `tx`
/// (a read transaction: one snapshot, even while the ledger keeps growing). Entries are
/// streamed and checked in batches.
///
/// `trusted` are checkpoints the caller kept from earlier (from `audit.checkpoint`); they must
/// be consistent with the ledger, which defeats a rollback to an older, validly signed state.
pub async fn verify_db(
    tx: &mut Tx,
    tenant: &TenantId,
    trusted_key: &str,
    trusted: &[String],
) -> Result<std::result::Result<verify::Report, verify::Failure>> {
    use futures::TryStreamExt;
    let Some(stored) = store::ledger::stored_verifier(tx, tenant).await? else {
        return Err(Error::NotFound(format!(
            "no tenant {tenant} in this database"
        )));
    };
    if stored != trusted_key {
        return Ok(Err(verify::Failure {
            seq: None,
            message: "the verifier key stored for the tenant is not the one the master key derives: replaced".into(),
        }));
    }
    let mut notes: Vec<String> = store::ledger::kept_checkpoints(tx, tenant)
        .await?
        .into_iter()
        .map(|(_, note)| note)
        .collect();
    notes.extend_from_slice(trusted);
    let head = store::ledger::head_checkpoint(tx, tenant).await?;
    notes.extend(head.map(|(_, note)| note));
    let mut verifier = match verify::LedgerVerifier::new(tenant.as_str(), trusted_key, &notes) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    let mut rows = store::ledger::entries(tx, tenant);
    let mut batch: Vec<store::ledger::EntryRow> = Vec::with_capacity(VERIFY_BATCH);
    loop {
        let row = rows.try_next().await?;
        let done = row.is_none();
        batch.extend(row);
        if batch.len() == VERIFY_BATCH || (done && !batch.is_empty()) {
            let entries: Vec<verify::Entry<'_>> = batch
                .iter()
                .map(|(seq, body, leaf)| verify::Entry {
                    seq: Some(*seq as u64),
                    body: body.as_bytes(),
                    stored_leaf: Some(leaf),
                })
                .collect();
            if let Err(f) = verifier.feed_batch(&entries) {
                return Ok(Err(f));
            }
            batch.clear();
        }
        if done {
            break;
        }
    }
    Ok(verifier.finish())
}

/// Writes a tenant's ledger to `dir` so that [`verify_dir`] can check it with no database.
/// Returns how many entries were written.
///
/// `verifier_key` is written as the export's key: pass the one the master key derives, never
/// the one stored beside the data being exported. Reads in `tx` (a read transaction, so that
/// entries and checkpoints agree with each other); entries are streamed to the file.
pub async fn export(
    tx: &mut Tx,
    tenant: &TenantId,
    verifier_key: &str,
    dir: &std::path::Path,
) -> Result<u64> {
    use futures::TryStreamExt;
    use std::io::Write;
    let io =
        |e: std::io::Error| Error::Config(format!("cannot write export to {}: {e}", dir.display()));
    if store::ledger::stored_verifier(tx, tenant).await?.is_none() {
        return Err(Error::NotFound(format!(
            "no tenant {tenant} in this database"
        )));
    }
    let key = verifier_key;
    let cp_dir = dir.join(export_files::CHECKPOINTS_DIR);
    private_dir(&cp_dir).map_err(io)?;
    let write = |path: std::path::PathBuf, text: &str| {
        private_file(&path).and_then(|mut f| f.write_all(text.as_bytes()))
    };
    write(dir.join(export_files::VERIFIER_KEY), &format!("{key}\n")).map_err(io)?;
    write(dir.join(export_files::TENANT), &format!("{tenant}\n")).map_err(io)?;
    let mut notes = store::ledger::kept_checkpoints(tx, tenant).await?;
    let head = store::ledger::head_checkpoint(tx, tenant)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tenant {tenant} has no audit ledger")))?;
    notes.push(head);
    for (size, note) in &notes {
        write(cp_dir.join(format!("{size:012}.txt")), note).map_err(io)?;
    }
    let mut out =
        std::io::BufWriter::new(private_file(&dir.join(export_files::ENTRIES)).map_err(io)?);
    let mut count = 0u64;
    {
        let mut rows = store::ledger::bodies(tx, tenant);
        while let Some(body) = rows.try_next().await? {
            out.write_all(body.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
            count += 1;
        }
    }
    out.flush().map_err(io)?;
    out.get_ref().sync_all().map_err(io)?;
    Ok(count)
}

/// Creates `dir` and its missing parents owner-only (an existing directory is left as it is).
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates or truncates a file of an export, readable and writable by its owner only: a ledger
/// holds the tenant's activity.
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Verifies an exported ledger with no database. `trusted_key` should come from somewhere other
/// than the export itself; when `None`, the export's own key file is used (and the caller should
/// say so).
///
/// `trusted` are checkpoints kept from earlier; they must be consistent with the export.
pub fn verify_dir(
    dir: &std::path::Path,
    trusted_key: Option<&str>,
    trusted: &[String],
) -> Result<std::result::Result<verify::Report, verify::Failure>> {
    let io =
        |e: std::io::Error| Error::Config(format!("cannot read export {}: {e}", dir.display()));
    let tenant = std::fs::read_to_string(dir.join(export_files::TENANT)).map_err(io)?;
    let key = match trusted_key {
        Some(k) => k.trim().to_owned(),
        None => std::fs::read_to_string(dir.join(export_files::VERIFIER_KEY))
            .map_err(io)?
            .trim()
            .to_owned(),
    };
    let mut notes = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir.join(export_files::CHECKPOINTS_DIR))
        .map_err(io)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(io)?
        .into_iter()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        notes.push(std::fs::read_to_string(p).map_err(io)?);
    }
    notes.extend_from_slice(trusted);
    let mut verifier = match verify::LedgerVerifier::new(tenant.trim(), &key, &notes) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    let mut file = std::fs::File::open(dir.join(export_files::ENTRIES)).map_err(io)?;
    // Read big blocks, verify every whole line in them as one batch, carry the partial tail.
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + (8 << 20), 0);
        let n = std::io::Read::read(&mut file, &mut buf[start..]).map_err(io)?;
        buf.truncate(start + n);
        eof = n == 0;
        let complete = if eof {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let block = &buf[..complete];
        let mut entries: Vec<verify::Entry<'_>> = Vec::with_capacity(block.len() / 256);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', block)
            .chain((complete > 0 && block[complete - 1] != b'\n').then_some(complete))
        {
            entries.push(verify::Entry {
                seq: None,
                body: &block[start..end],
                stored_leaf: None,
            });
            start = end + 1;
        }
        if let Err(f) = verifier.feed_batch(&entries) {
            return Ok(Err(f));
        }
        buf.drain(..complete);
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_recorded_by_name_and_an_entry_keeps_its_exact_text() {
        for (outcome, name) in [
            (AuditOutcome::Done, "done"),
            (AuditOutcome::Denied, "denied"),
            (AuditOutcome::Failed, "failed"),
            (AuditOutcome::Invalid, "invalid"),
            (AuditOutcome::PendingApproval, "pending_approval"),
        ] {
            assert_eq!(outcome.as_str(), name);
            assert_eq!(serde_json::to_value(outcome).unwrap(), json!(name));
        }
        // The bytes an entry is hashed as (and so every existing ledger's hashes) are the ones
        // recorded before the outcome had a type.
        let body = Body {
            v: 1,
            tenant: "tn_1".into(),
            seq: 3,
            prev: "00".into(),
            ts: "2025-01-01T00:00:00.000Z".into(),
            actor: Actor {
                persona: None,
                kind: None,
                via: "platform".into(),
                surface: "cli".into(),
            },
            op: "keys.revoke".into(),
            outcome: AuditOutcome::PendingApproval,
            detail: json!({ "a": 1 }),
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"tenant":"tn_1","seq":3,"prev":"00","ts":"2025-01-01T00:00:00.000Z","actor":{"via":"platform","surface":"cli"},"op":"keys.revoke","outcome":"pending_approval","detail":{"a":1}}"#
        );
        assert_eq!(serde_json::from_str::<Body>(&text).unwrap(), body);
        assert!(serde_json::from_str::<Body>(&text.replace("pending_approval", "maybe")).is_err());
    }
}
