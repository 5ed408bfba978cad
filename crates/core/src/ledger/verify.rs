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
}

/// One entry as a source yields it.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The stored sequence number (databases have one; exports do not).
    pub seq: Option<u64>,
    /// The body, exactly as hashed.
    pub body: &'a [u8],
    /// The stored leaf hash, when the source keeps one.
    pub stored_leaf: Option<&'a [u8]>,
}

/// What one body says about its place in the chain, and its hash.
#[derive(Debug)]
pub struct Parsed {
    seq: u64,
    prev: Hash,
    leaf: Hash,
}

/// Parses and hashes one body: everything about an entry that needs no other entry.
///
/// tenantops writes bodies in one canonical layout that starts
/// `{"v":1,"tenant":"<tenant>","seq":<n>,"prev":"<64 hex>",`; the verifier demands it (an entry
/// in any other layout was not written by tenantops). Reading those fields at their fixed places
/// avoids a full JSON parse per entry; any deviation falls back to a JSON parse that says what
/// is wrong.
fn parse_entry(tenant: &str, body: &[u8]) -> Result<Parsed, String> {
    match canonical_prefix(tenant, body) {
        Some((seq, prev)) => Ok(Parsed {
            seq,
            prev,
            leaf: leaf_hash(body),
        }),
        None => Err(explain_malformed(tenant, body)),
    }
}

fn canonical_prefix(tenant: &str, body: &[u8]) -> Option<(u64, Hash)> {
    let rest = body.strip_prefix(br#"{"v":1,"tenant":""#)?;
    let rest = rest.strip_prefix(tenant.as_bytes())?;
    let rest = rest.strip_prefix(br#"","seq":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(br#","prev":""#)?;
    let (hex_prev, rest) = (rest.get(..64)?, rest.get(64..)?);
    if !rest.starts_with(br#"","#) || body.last() != Some(&b'}') {
        return None;
    }
    let mut prev = [0u8; 32];
    hex::decode_to_slice(hex_prev, &mut prev).ok()?;
    Some((seq, prev))
}

/// Why a body is not a canonical entry, in words.
fn explain_malformed(tenant: &str, body: &[u8]) -> String {
    match serde_json::from_slice::<Link>(body) {
        Err(e) => format!("body is not a valid audit entry: {e}"),
        Ok(link) if link.tenant != tenant => {
            format!("body belongs to tenant {}, not {tenant}", link.tenant)
        }
        Ok(_) => "body is not in the canonical layout tenantops writes".to_owned(),
    }
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
        let parsed = parse_entry(&self.tenant, body);
        self.accept(row_seq, parsed, stored_leaf)
    }

    /// Feeds a batch of entries in order. The per-entry work that needs no context (parsing,
    /// hashing) runs on all cores; chaining and the Merkle tree follow in order.
    pub fn feed_batch(&mut self, entries: &[Entry<'_>]) -> Result<(), Failure> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let parsed: Vec<Result<Parsed, String>> = if threads < 2 || entries.len() < 1024 {
            entries
                .iter()
                .map(|e| parse_entry(&self.tenant, e.body))
                .collect()
        } else {
            let tenant = self.tenant.as_str();
            let chunk = entries.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = entries
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|e| parse_entry(tenant, e.body))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| match h.join() {
                        Ok(v) => v,
                        // A panic while parsing is a bug, not a verdict on the ledger.
                        Err(p) => std::panic::resume_unwind(p),
                    })
                    .collect()
            })
        };
        for (entry, parsed) in entries.iter().zip(parsed) {
            self.accept(entry.seq, parsed, entry.stored_leaf)?;
        }
        Ok(())
    }

    fn accept(
        &mut self,
        row_seq: Option<u64>,
        parsed: Result<Parsed, String>,
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
        let p = parsed.map_err(|message| Failure::at(n, message))?;
        if p.seq != n {
            return Err(Failure::at(
                n,
                format!(
                    "body says it is entry {} but sits at position {n}: reordered, inserted or deleted",
                    p.seq
                ),
            ));
        }
        if p.prev != self.prev {
            // Entry n commits to the hash of entry n-1. With stored hashes checked, a mismatch
            // means n-1's content changed (hash recomputed to hide it) or n's link was altered;
            // the earlier entry is the first that can be bad.
            return Err(if n == 0 {
                Failure::at(0, "the first entry does not start the chain")
            } else {
                Failure::at(
                    n - 1,
                    format!(
                        "no longer matches the hash entry {n} commits to: entry {} was changed or \
                         inserted, or entry {n}'s link was altered",
                        n - 1
                    ),
                )
            });
        }
        if let Some(stored) = stored_leaf
            && stored != p.leaf
        {
            return Err(Failure::at(
                n,
                "body does not match its stored hash: changed",
            ));
        }
        self.frontier.push(p.leaf);
        self.prev = p.leaf;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Actor, AuditOutcome, Body};

    fn body(seq: u64) -> Vec<u8> {
        serde_json::to_vec(&Body {
            v: 1,
            tenant: "tn_x".into(),
            seq,
            prev: hex::encode([7u8; 32]),
            ts: "2026-11-01T00:00:00.000Z".into(),
            actor: Actor {
                persona: None,
                kind: None,
                via: "platform".into(),
                surface: "cli".into(),
            },
            op: "whoami".into(),
            outcome: AuditOutcome::Done,
            detail: serde_json::json!({"a": [1, 2]}),
        })
        .unwrap()
    }

    #[test]
    fn bodies_the_ledger_writes_are_canonical() {
        for seq in [0, 7, 1_000_000, u64::MAX] {
            let b = body(seq);
            assert_eq!(canonical_prefix("tn_x", &b), Some((seq, [7u8; 32])));
            let p = parse_entry("tn_x", &b).unwrap();
            assert_eq!(p.leaf, leaf_hash(&b));
        }
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let b = String::from_utf8(body(5)).unwrap();
        assert!(
            parse_entry("tn_y", b.as_bytes())
                .unwrap_err()
                .contains("tenant tn_x")
        );
        let padded = b.replace("\"seq\":5", "\"seq\":05");
        assert!(parse_entry("tn_x", padded.as_bytes()).is_err());
        let reordered = b.replace(
            "{\"v\":1,\"tenant\":\"tn_x\",",
            "{\"tenant\":\"tn_x\",\"v\":1,",
        );
        assert!(
            parse_entry("tn_x", reordered.as_bytes())
                .unwrap_err()
                .contains("canonical")
        );
        assert!(
            parse_entry("tn_x", b"")
                .unwrap_err()
                .contains("not a valid audit entry")
        );
    }
}
