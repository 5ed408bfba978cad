//! RFC 6962 / RFC 9162 Merkle tree primitives over SHA-256.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; a tree of `n > 1` leaves is split at the
//! largest power of two strictly below `n` (RFC 9162 §2.1.1). The root of the
//! empty tree is the SHA-256 of the empty string.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain-separation prefix of leaf hashes.
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes.
const NODE_PREFIX: u8 = 0x01;
/// Encoded size of one frontier entry: one height byte and a 32-byte hash.
const FRONTIER_ENTRY_LEN: usize = 1 + 32;

/// Errors from building or checking Merkle trees and proofs.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// A tree size larger than the number of leaves supplied was requested.
    #[error("tree size {size} exceeds the {available} leaves supplied")]
    NotEnoughLeaves {
        /// The requested tree size.
        size: u64,
        /// How many leaves the caller supplied.
        available: usize,
    },
    /// The inclusion proof has the wrong number of hashes for the index and size.
    #[error(
        "inclusion proof for leaf {index} in a tree of size {size} must have {expected} hashes, \
         got {got}"
    )]
    ProofLength {
        /// The leaf index being proven.
        index: u64,
        /// The tree size of the proof.
        size: u64,
        /// The number of hashes an audit path for this index and size has.
        expected: usize,
        /// The number of hashes supplied.
        got: usize,
    },
    /// The inclusion proof is well-formed but leads to a different root.
    #[error(
        "inclusion proof does not match the tree root: it yields {} but the root is {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    RootMismatch {
        /// The root reconstructed from the leaf and the proof.
        computed: Hash,
        /// The root the proof was checked against.
        expected: Hash,
    },
    /// A serialised frontier does not describe a tree of the claimed size.
    #[error("malformed frontier for tree size {size}: {reason}")]
    MalformedFrontier {
        /// The tree size the frontier was decoded for.
        size: u64,
        /// What is wrong with the encoding.
        reason: String,
    },
}

/// Returns the RFC 6962 leaf hash `SHA-256(0x00 || data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Returns the RFC 6962 interior node hash `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly below `n`; `n` must be at least 2.
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2, "split_point needs at least two leaves");
    1 << (n - 1).ilog2()
}

/// [`split_point`] for tree sizes that need not fit in memory.
fn split_point_u64(n: u64) -> u64 {
    debug_assert!(n >= 2, "split_point needs at least two leaves");
    1 << (n - 1).ilog2()
}

/// The root (MTH) of the tree whose leaf hashes are `leaves`.
///
/// Recursion depth is at most 64, and it computes `len - 1` node hashes.
fn subtree_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len());
            node_hash(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// Returns the RFC 6962 Merkle tree hash of the tree with the given leaf hashes.
#[must_use]
pub fn root_of(leaves: &[Hash]) -> Hash {
    subtree_root(leaves)
}

/// The compact range of a tree: the roots of its perfect left subtrees.
///
/// A tree of size `n` decomposes into one perfect subtree per set bit of `n`,
/// largest (leftmost) first. Appending a leaf merges equal-height subtrees, so
/// a frontier holds at most 64 entries and lets a log append and compute its
/// root without keeping the leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    /// Number of leaves in the tree.
    size: u64,
    /// `(height, root)` of each perfect subtree, left to right; the heights
    /// are exactly the set bits of `size`, in decreasing order.
    nodes: Vec<(u8, Hash)>,
}

impl Frontier {
    /// Returns the frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash to the tree.
    ///
    /// # Panics
    ///
    /// Panics if the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        // Invariant: reaching u64::MAX leaves takes 2^64 appends, which no
        // log will ever perform; overflow here would be memory corruption.
        self.size = self
            .size
            .checked_add(1)
            .expect("Merkle tree size overflowed u64");
        let mut height = 0u8;
        let mut hash = leaf;
        while let Some((top_height, top_hash)) = self.nodes.last() {
            if *top_height != height {
                break;
            }
            hash = node_hash(top_hash, &hash);
            height += 1;
            self.nodes.pop();
        }
        self.nodes.push((height, hash));
    }

    /// Returns the number of leaves in the tree.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the RFC 6962 Merkle tree hash of the tree.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut subtrees = self.nodes.iter().rev();
        match subtrees.next() {
            None => EMPTY_ROOT,
            Some((_, last)) => subtrees.fold(*last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }

    /// Encodes the frontier as `height || hash` (33 bytes) per subtree, left to
    /// right. The size is not included: store it alongside.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.nodes.len() * FRONTIER_ENTRY_LEN);
        for (height, hash) in &self.nodes {
            out.push(*height);
            out.extend_from_slice(hash);
        }
        out
    }

    /// Decodes a frontier written by [`Frontier::to_bytes`] for a tree of `size`
    /// leaves, checking that its subtree heights are exactly the set bits of `size`.
    ///
    /// # Errors
    ///
    /// [`MerkleError::MalformedFrontier`] if the length or the subtree heights
    /// do not match `size`.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, MerkleError> {
        let malformed = |reason: String| MerkleError::MalformedFrontier { size, reason };
        let count = size.count_ones() as usize;
        if bytes.len() != count * FRONTIER_ENTRY_LEN {
            return Err(malformed(format!(
                "expected {} bytes ({count} subtrees of {FRONTIER_ENTRY_LEN} bytes), got {}",
                count * FRONTIER_ENTRY_LEN,
                bytes.len()
            )));
        }
        let mut nodes = Vec::with_capacity(count);
        let mut remaining = size;
        for (i, entry) in bytes.chunks_exact(FRONTIER_ENTRY_LEN).enumerate() {
            let Some(want) = remaining.checked_ilog2() else {
                return Err(malformed(format!("unexpected subtree #{i}")));
            };
            let height = entry[0];
            if u32::from(height) != want {
                return Err(malformed(format!(
                    "subtree #{i} has height {height}, expected {want}"
                )));
            }
            remaining ^= 1 << want;
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&entry[1..]);
            nodes.push((height, hash));
        }
        Ok(Frontier { size, nodes })
    }
}

/// Returns the RFC 9162 §2.1.3.1 audit path of leaf `index` in the tree made
/// of the first `size` entries of `leaves`, ordered from the leaf's sibling up
/// to the child of the root.
///
/// Computes at most `size - 1` node hashes.
///
/// # Errors
///
/// [`MerkleError::NotEnoughLeaves`] if `size > leaves.len()`, and
/// [`MerkleError::IndexOutOfRange`] if `index >= size`.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
    let tree = usize::try_from(size)
        .ok()
        .and_then(|n| leaves.get(..n))
        .ok_or(MerkleError::NotEnoughLeaves {
            size,
            available: leaves.len(),
        })?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // index < size <= leaves.len(), so the conversion cannot fail.
    let m = usize::try_from(index).map_err(|_| MerkleError::IndexOutOfRange { index, size })?;

    // Walk from the root down to the leaf, recording the subtree not taken.
    let mut proof = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0usize, tree.len());
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < lo + k {
            proof.push(subtree_root(&tree[lo + k..hi]));
            hi = lo + k;
        } else {
            proof.push(subtree_root(&tree[lo..lo + k]));
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The number of hashes in the audit path of leaf `index` in a tree of `size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (mut lo, mut hi, mut len) = (0u64, size, 0usize);
    while hi - lo > 1 {
        let k = split_point_u64(hi - lo);
        if index < lo + k {
            hi = lo + k;
        } else {
            lo += k;
        }
        len += 1;
    }
    len
}

/// Verifies that `proof` shows leaf hash `leaf` at `index` in the tree of
/// `size` leaves whose root is `root`, per RFC 9162 §2.1.3.2.
///
/// # Errors
///
/// [`MerkleError::IndexOutOfRange`] if `index >= size`,
/// [`MerkleError::ProofLength`] if the proof has the wrong number of hashes,
/// and [`MerkleError::RootMismatch`] if it leads to a different root.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let wrong_length = || MerkleError::ProofLength {
        index,
        size,
        expected: inclusion_proof_len(index, size),
        got: proof.len(),
    };
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(wrong_length());
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(wrong_length());
    }
    if r != *root {
        return Err(MerkleError::RootMismatch {
            computed: r,
            expected: *root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, distinct leaf data for leaf `i`.
    fn data(i: u64) -> Vec<u8> {
        format!("leaf-{i}").into_bytes()
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&data(i))).collect()
    }

    /// RFC 6962 §2.1 MTH, written independently of the module (own hashing,
    /// own split search), over raw leaf data.
    fn naive_mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => Sha256::digest(b"").into(),
            1 => {
                let mut input = vec![0x00];
                input.extend_from_slice(&d[0]);
                Sha256::digest(&input).into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut input = vec![0x01];
                input.extend_from_slice(&naive_mth(&d[..k]));
                input.extend_from_slice(&naive_mth(&d[k..]));
                Sha256::digest(&input).into()
            }
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn unhex32(s: &str) -> Hash {
        unhex(s).try_into().unwrap()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let want: Hash = Sha256::digest(b"").into();
        assert_eq!(EMPTY_ROOT, want);
        assert_eq!(root_of(&[]), want);
        assert_eq!(Frontier::new().root(), want);
    }

    /// Certificate Transparency reference vectors (transparency-dev/merkle testonly).
    #[test]
    fn rfc6962_reference_vectors() {
        let data: Vec<Vec<u8>> = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| unhex(h))
        .collect();
        let roots = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut frontier = Frontier::new();
        for (n, want) in roots.iter().enumerate() {
            assert_eq!(hex::encode(root_of(&hashes[..n])), *want, "size {n}");
            assert_eq!(hex::encode(frontier.root()), *want, "frontier size {n}");
            if n < hashes.len() {
                frontier.push(hashes[n]);
            }
        }

        let root = unhex32(roots[8]);
        let cases: [(u64, [&str; 3]); 2] = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, want) in cases {
            let want: Vec<Hash> = want.iter().map(|h| unhex32(h)).collect();
            let proof = inclusion_proof(&hashes, index, 8).unwrap();
            assert_eq!(proof, want, "index {index}");
            verify_inclusion(&hashes[index as usize], index, 8, &proof, &root).unwrap();
        }
    }

    #[test]
    fn roots_match_naive_mth() {
        let all: Vec<Vec<u8>> = (0..=70).map(data).collect();
        let hashes = leaves(70);
        let mut frontier = Frontier::new();
        for n in 0..=70usize {
            let want = naive_mth(&all[..n]);
            assert_eq!(root_of(&hashes[..n]), want, "root_of size {n}");
            assert_eq!(frontier.size(), n as u64);
            assert_eq!(frontier.root(), want, "frontier size {n}");
            if n < 70 {
                frontier.push(hashes[n]);
            }
        }
    }

    #[test]
    fn frontier_has_one_entry_per_set_bit() {
        let mut frontier = Frontier::new();
        for n in 1..=300u64 {
            frontier.push(leaf_hash(&data(n)));
            assert_eq!(frontier.nodes.len(), n.count_ones() as usize, "size {n}");
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let root = root_of(&all[..size as usize]);
            for index in 0..size {
                let leaf = all[index as usize];
                let proof = inclusion_proof(&all, index, size).unwrap();
                assert_eq!(proof.len(), inclusion_proof_len(index, size));
                verify_inclusion(&leaf, index, size, &proof, &root)
                    .unwrap_or_else(|e| panic!("size {size} index {index}: {e}"));

                for bit in [0usize, 7, 100, 255] {
                    let flip = |h: &Hash| {
                        let mut h = *h;
                        h[bit / 8] ^= 1 << (bit % 8);
                        h
                    };
                    assert!(matches!(
                        verify_inclusion(&flip(&leaf), index, size, &proof, &root),
                        Err(MerkleError::RootMismatch { .. })
                    ));
                    assert!(matches!(
                        verify_inclusion(&leaf, index, size, &proof, &flip(&root)),
                        Err(MerkleError::RootMismatch { .. })
                    ));
                    for i in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[i] = flip(&bad[i]);
                        assert!(matches!(
                            verify_inclusion(&leaf, index, size, &bad, &root),
                            Err(MerkleError::RootMismatch { .. })
                        ));
                    }
                }
                for bit in 0..7 {
                    let other = index ^ (1 << bit);
                    assert!(
                        verify_inclusion(&leaf, other, size, &proof, &root).is_err(),
                        "size {size}: proof for {index} accepted for {other}"
                    );
                }
                if !proof.is_empty() {
                    assert!(matches!(
                        verify_inclusion(&leaf, index, size, &proof[1..], &root),
                        Err(MerkleError::ProofLength { .. })
                    ));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(matches!(
                    verify_inclusion(&leaf, index, size, &longer, &root),
                    Err(MerkleError::ProofLength { .. })
                ));
            }
        }
    }

    #[test]
    fn proof_argument_errors() {
        let all = leaves(5);
        assert!(matches!(
            inclusion_proof(&all, 5, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        ));
        assert!(matches!(
            inclusion_proof(&all, 0, 0),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            inclusion_proof(&all, 0, 6),
            Err(MerkleError::NotEnoughLeaves {
                size: 6,
                available: 5
            })
        ));
        assert!(matches!(
            inclusion_proof(&all, 0, u64::MAX),
            Err(MerkleError::NotEnoughLeaves { .. })
        ));
        // A prefix of a longer slice is a tree of its own.
        let proof = inclusion_proof(&all, 1, 3).unwrap();
        verify_inclusion(&all[1], 1, 3, &proof, &root_of(&all[..3])).unwrap();
        assert!(matches!(
            verify_inclusion(&all[0], 3, 3, &[], &EMPTY_ROOT),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        // The messages say what to look at.
        let msg = verify_inclusion(&all[0], 0, 3, &[], &EMPTY_ROOT)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "inclusion proof for leaf 0 in a tree of size 3 must have 2 hashes, got 0"
        );
    }

    #[test]
    fn frontier_round_trip_and_rejects_mismatched_sizes() {
        let mut frontier = Frontier::new();
        let empty = Frontier::from_bytes(0, &frontier.to_bytes()).unwrap();
        assert_eq!(empty, frontier);
        for n in 1..=100u64 {
            frontier.push(leaf_hash(&data(n)));
            let bytes = frontier.to_bytes();
            assert_eq!(bytes.len(), n.count_ones() as usize * 33);
            let back = Frontier::from_bytes(n, &bytes).unwrap();
            assert_eq!(back, frontier);
            assert_eq!(back.root(), frontier.root());
            assert_eq!(back.size(), n);

            // Every other size nearby is rejected, whether the length differs
            // (different popcount) or only the heights do.
            for other in n.saturating_sub(4)..=n + 4 {
                if other != n {
                    assert!(matches!(
                        Frontier::from_bytes(other, &bytes),
                        Err(MerkleError::MalformedFrontier { .. })
                    ));
                }
            }
            assert!(Frontier::from_bytes(n, &bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Frontier::from_bytes(n, &longer).is_err());
        }

        // Same popcount, different heights: 5 = 0b101 vs 6 = 0b110.
        let mut five = Frontier::new();
        for i in 0..5 {
            five.push(leaf_hash(&data(i)));
        }
        let err = Frontier::from_bytes(6, &five.to_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed frontier for tree size 6: subtree #1 has height 0, expected 1"
        );

        // Subtrees out of order are rejected.
        let mut seven = Frontier::new();
        for i in 0..7 {
            seven.push(leaf_hash(&data(i)));
        }
        let bytes = seven.to_bytes();
        let mut swapped = bytes[33..66].to_vec();
        swapped.extend_from_slice(&bytes[..33]);
        swapped.extend_from_slice(&bytes[66..]);
        assert!(Frontier::from_bytes(7, &swapped).is_err());

        // The largest possible frontier decodes.
        let max: Vec<u8> = (0..64u8)
            .rev()
            .flat_map(|h| std::iter::once(h).chain([h; 32]))
            .collect();
        let f = Frontier::from_bytes(u64::MAX, &max).unwrap();
        assert_eq!(f.size(), u64::MAX);
        assert_eq!(f.to_bytes(), max);
    }

    /// An in-memory `tlog_tiles::HashReader` over the stored-hash layout.
    struct MemHashes(Vec<tlog_tiles::Hash>);

    impl tlog_tiles::HashReader for MemHashes {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
            indexes
                .iter()
                .map(|&i| {
                    self.0
                        .get(i as usize)
                        .copied()
                        .ok_or(tlog_tiles::Error::IndexesNotInTree)
                })
                .collect()
        }
    }

    /// Our roots and proofs agree with tlog_tiles (a port of Go's sumdb/tlog).
    #[test]
    fn agrees_with_tlog_tiles() {
        const N: u64 = 80;
        let mut store = MemHashes(Vec::new());
        let mut ours = Vec::new();
        let mut frontier = Frontier::new();
        for n in 0..N {
            let d = data(n);
            assert_eq!(tlog_tiles::record_hash(&d).0, leaf_hash(&d));
            let new = tlog_tiles::stored_hashes(n, &d, &store).unwrap();
            store.0.extend(new);
            ours.push(leaf_hash(&d));
            frontier.push(leaf_hash(&d));
        }
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_eq!(
            tlog_tiles::node_hash(tlog_tiles::Hash(a), tlog_tiles::Hash(b)).0,
            node_hash(&a, &b)
        );
        assert_eq!(tlog_tiles::tree_hash(0, &store).unwrap().0, EMPTY_ROOT);
        assert_eq!(frontier.root(), tlog_tiles::tree_hash(N, &store).unwrap().0);

        for size in 1..=N {
            let root = tlog_tiles::tree_hash(size, &store).unwrap();
            assert_eq!(
                root_of(&ours[..size as usize]),
                root.0,
                "root of size {size}"
            );
            for index in 0..size {
                let theirs = tlog_tiles::prove_record(size, index, &store).unwrap();
                let mine = inclusion_proof(&ours, index, size).unwrap();
                let theirs_raw: Vec<Hash> = theirs.iter().map(|h| h.0).collect();
                assert_eq!(mine, theirs_raw, "proof for {index} in {size}");

                let leaf = ours[index as usize];
                verify_inclusion(&leaf, index, size, &theirs_raw, &root.0).unwrap();
                let mine_wrapped: Vec<tlog_tiles::Hash> =
                    mine.iter().map(|h| tlog_tiles::Hash(*h)).collect();
                tlog_tiles::check_record(&mine_wrapped, size, root, index, tlog_tiles::Hash(leaf))
                    .unwrap();
            }
        }
    }
}
