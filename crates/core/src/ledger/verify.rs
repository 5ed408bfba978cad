//! Verification of a ledger, from the database or from an export, with no trust in either:
//! every entry's chain link, sequence and tenant; the Merkle root at every signed checkpoint;
//! every checkpoint's signature; and that the latest checkpoint covers exactly the entries there
//! are. The first failure names the entry (or checkpoint) where the ledger stops being intact.

use super::checkpoint::{Checkpoint, CheckpointVerifier};
use super::merkle::{Frontier, Hash, leaf_hash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where and why verification failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", match .seq { Some(s) => format!("entry {s}: {}", .message), None => .message.clone() })]
pub struct Failure {
    /// The first entry that is not intact, when the failure is tied to one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Failure {
    fn at(seq: u64, message: impl Into<String>) -> Self {
        Self {
            seq: Some(seq),
            message: message.into(),
        }
    }

    fn global(message: impl Into<String>) -> Self {
        Self {
            seq: None,
            message: message.into(),
        }
    }
}

/// A successful verification.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The tenant.
    pub tenant: String,
    /// How many entries were checked.
    pub entries: u64,
    /// How many signed checkpoints were checked against recomputed roots.
    pub checkpoints: u64,
    /// Hex Merkle root of the whole ledger.
    pub root: String,
}

#[derive(Deserialize)]
struct Link<'a> {
    tenant: &'a str,
    seq: u64,
    prev: &'a str,
}

/// Checks entries fed in order against signed checkpoints.
pub struct LedgerVerifier {
    tenant: String,
    expected: u64,
    prev: Hash,
    frontier: Frontier,
    checkpoints: BTreeMap<u64, Checkpoint>,
}

impl LedgerVerifier {
    /// Verifies every checkpoint note's signature with `verifier_key` (a C2SP vkey) up front.
    pub fn new(tenant: &str, verifier_key: &str, notes: &[String]) -> Result<Self, Failure> {
        let verifier = CheckpointVerifier::new(verifier_key)
            .map_err(|e| Failure::global(format!("verifier key: {e}")))?;
        let mut checkpoints = BTreeMap::new();
        for note in notes {
            let cp = verifier
                .verify(note)
                .map_err(|e| Failure::global(format!("checkpoint rejected: {e}")))?;
            if let Some(other) = checkpoints.get(&cp.size)
                && *other != cp
            {
                return Err(Failure::global(format!(
                    "two validly signed checkpoints disagree about the tree of size {}",
                    cp.size
                )));
            }
            checkpoints.insert(cp.size, cp);
        }
        if checkpoints.is_empty() {
            return Err(Failure::global("no signed checkpoint to verify against"));
        }
        let v = Self {
            tenant: tenant.to_owned(),
            expected: 0,
            prev: [0; 32],
            frontier: Frontier::new(),
            checkpoints,
        };
        v.check_checkpoint()?;
        Ok(v)
    }

    fn check_checkpoint(&self) -> Result<(), Failure> {
        let size = self.frontier.size();
        if let Some(cp) = self.checkpoints.get(&size)
            && cp.root != self.frontier.root()
        {
            let seq = size.saturating_sub(1);
            return Err(Failure::at(
                seq,
                format!(
                    "the Merkle root of the first {size} entries does not match the signed \
                     checkpoint for size {size}: an entry up to {seq} was changed"
                ),
            ));
        }
        Ok(())
    }

    /// Feeds the next entry: its stored sequence number and leaf hash when the source has them
    /// (the database), and its body.
    pub fn feed(
        &mut self,
        row_seq: Option<u64>,
        body: &[u8],
        stored_leaf: Option<&[u8]>,
    ) -> Result<(), Failure> {
        let n = self.expected;
        if let Some(s) = row_seq
            && s != n
        {
            return Err(if s > n {
                Failure::at(
                    n,
                    format!("entry {n} is missing (next stored entry is {s}): deleted"),
                )
            } else {
                Failure::at(
                    n,
                    format!("entry {s} appears again at position {n}: duplicated or reordered"),
                )
            });
        }
        let link: Link = serde_json::from_slice(body)
            .map_err(|e| Failure::at(n, format!("body is not a valid audit entry: {e}")))?;
        if link.seq != n {
            return Err(Failure::at(
                n,
                format!(
                    "body says it is entry {} but sits at position {n}: reordered, inserted or deleted",
                    link.seq
                ),
            ));
        }
        if link.tenant != self.tenant {
            return Err(Failure::at(
                n,
                format!(
                    "body belongs to tenant {}, not {}",
                    link.tenant, self.tenant
                ),
            ));
        }
        if link.prev != hex::encode(self.prev) {
            // Entry n commits to the hash of entry n-1. With stored hashes checked, a mismatch
            // means n-1's content changed (hash recomputed to hide it) or n's link was altered;
            // the earlier entry is the first that can be bad.
            return Err(if n == 0 {
                Failure::at(0, "the first entry does not start the chain")
            } else {
                Failure::at(
                    n - 1,
                    format!(
                        "no longer matches the hash entry {n} commits to: entry {} was changed or inserted, or entry {n}'s link was altered",
                        n - 1
                    ),
                )
            });
        }
        let leaf = leaf_hash(body);
        if let Some(stored) = stored_leaf
            && stored != leaf
        {
            return Err(Failure::at(
                n,
                "body does not match its stored hash: changed",
            ));
        }
        self.frontier.push(leaf);
        self.prev = leaf;
        self.expected += 1;
        self.check_checkpoint()
    }

    /// Ends verification: the latest checkpoint must cover exactly the entries fed.
    pub fn finish(self) -> Result<Report, Failure> {
        let entries = self.expected;
        // `new` guarantees at least one checkpoint.
        let latest = self.checkpoints.keys().next_back().copied().unwrap_or(0);
        if latest > entries {
            return Err(Failure::at(
                entries,
                format!(
                    "the signed checkpoint commits to {latest} entries but only {entries} exist: entries from {entries} on were deleted"
                ),
            ));
        }
        if entries > latest {
            return Err(Failure::at(
                latest,
                format!(
                    "entries from {latest} on are not covered by any signed checkpoint: appended outside tenantops"
                ),
            ));
        }
        Ok(Report {
            tenant: self.tenant,
            entries,
            checkpoints: self.checkpoints.len() as u64,
            root: hex::encode(self.frontier.root()),
        })
    }
}
