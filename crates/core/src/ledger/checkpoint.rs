//! C2SP tlog-checkpoint notes signed with Ed25519 (C2SP signed-note).
//!
//! A checkpoint body is `"{origin}\n{size}\n{base64(root)}\n"`, optionally
//! followed by extension lines; the signed note appends a blank line and one
//! `— {key name} {base64(key id || signature)}` line per signature. The
//! origin doubles as the signing key's name.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use signed_note::{Note, NoteError, StandardVerifier, VerificationError, Verifier, Verifiers};

use super::merkle::Hash;

/// signed-note algorithm identifier of Ed25519 keys.
const ALG_ED25519: u8 = 0x01;

/// Errors from signing or verifying checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The origin cannot be used as a checkpoint origin / key name.
    #[error(
        "invalid checkpoint origin {origin:?}: it must be non-empty and contain no spaces, \
         '+' or control characters"
    )]
    InvalidOrigin {
        /// The rejected origin.
        origin: String,
    },
    /// The verifier key string could not be parsed.
    #[error(
        "invalid checkpoint verifier key {vkey:?}: {source} (expected <name>+<8 hex digit id>+<base64 Ed25519 key>)"
    )]
    InvalidVerifierKey {
        /// The rejected verifier key.
        vkey: String,
        /// Why `signed_note` rejected it.
        source: signed_note::VerifierError,
    },
    /// Producing the signed note failed.
    #[error("failed to sign checkpoint: {0}")]
    Signing(String),
    /// The input is not a syntactically valid signed note.
    #[error("checkpoint is not a well-formed signed note: {0}")]
    MalformedNote(#[source] NoteError),
    /// The note carries a signature by the key, but it is invalid.
    #[error("checkpoint signature does not verify with key {key}")]
    BadSignature {
        /// The key, as `name+id`.
        key: String,
    },
    /// The note carries no signature by the key.
    #[error("checkpoint is not signed by key {key} (signatures found: {found})")]
    NotSignedByKey {
        /// The expected key, as `name+id`.
        key: String,
        /// The keys that did sign, as `name+id`, comma separated.
        found: String,
    },
    /// `signed_note` reported a verification failure other than the above.
    #[error("checkpoint verification with key {key} failed: {source}")]
    Verification {
        /// The key, as `name+id`.
        key: String,
        /// The underlying error.
        source: NoteError,
    },
    /// The signed body names a different origin than the key.
    #[error("checkpoint origin {found:?} does not match key name {expected:?}")]
    OriginMismatch {
        /// The origin line of the checkpoint.
        found: String,
        /// The verifier's key name.
        expected: String,
    },
    /// The signed body is not a valid tlog-checkpoint.
    #[error("malformed checkpoint body: {0}")]
    MalformedBody(String),
}

/// A verified checkpoint: a log's tree size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (equal to the verifying key's name).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 root hash of the tree.
    pub root: Hash,
}

/// A signed note as saved in a file by a person or a tool: the note with at most one line ending
/// after it, which is taken off. A signed note ends with exactly one newline after its signature
/// lines, and `jq -r .output.checkpoint > FILE` (or an editor) adds one more; anything else — a
/// missing final newline, a blank line more, other text — is left for
/// [`CheckpointVerifier::verify`] to refuse.
#[must_use]
pub fn note_from_file(text: &str) -> &str {
    match text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
    {
        Some(note) if note.ends_with('\n') => note,
        _ => text,
    }
}

/// Formats a key as the `name+hexid` label used in signed-note messages.
fn key_label(name: &str, id: u32) -> String {
    format!("{name}+{id:08x}")
}

/// A [`signed_note::Signer`] over an Ed25519 key.
struct Ed25519NoteSigner {
    /// Key name (the checkpoint origin).
    name: String,
    /// signed-note key ID of `name` and the public key.
    id: u32,
    /// The private key; zeroized on drop by ed25519-dalek.
    key: ed25519_dalek::SigningKey,
}

impl signed_note::Signer for Ed25519NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.try_sign(msg)?.to_vec())
    }
}

/// Signs checkpoints for one log with an Ed25519 key named after its origin.
pub struct CheckpointSigner {
    signer: Ed25519NoteSigner,
    /// The last checkpoint this signer signed, with its note: a note read back that is
    /// byte-for-byte this one needs no signature check (see [`CheckpointSigner::signed_by_me`]).
    last: std::sync::Mutex<Option<(String, Checkpoint)>>,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key", &key_label(&self.signer.name, self.signer.id))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Builds a signer for `origin` from a 32-byte Ed25519 seed; `origin` is
    /// also the key name and must be a valid signed-note key name.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidOrigin`] if `origin` is not a valid key name.
    pub fn from_seed(origin: &str, seed: &[u8; 32]) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(origin) || origin.chars().any(char::is_control) {
            return Err(CheckpointError::InvalidOrigin {
                origin: origin.to_owned(),
            });
        }
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let mut public = [0u8; 33];
        public[0] = ALG_ED25519;
        public[1..].copy_from_slice(key.verifying_key().as_bytes());
        let id = signed_note::key_id(origin, &public);
        Ok(Self {
            signer: Ed25519NoteSigner {
                name: origin.to_owned(),
                id,
                key,
            },
            last: std::sync::Mutex::new(None),
        })
    }

    /// The log origin, which is also the key name.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.signer.name
    }

    /// The C2SP verifier key, `name+hexid+base64(0x01 || public key)`.
    #[must_use]
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.signer.name, &self.signer.key.verifying_key())
    }

    /// Returns the signed note of the checkpoint for a tree of `size` leaves with root `root`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Signing`] if the note cannot be built or signed.
    pub fn sign(&self, size: u64, root: &Hash) -> Result<String, CheckpointError> {
        let body = format!("{}\n{size}\n{}\n", self.signer.name, BASE64.encode(root));
        let note = self.sign_body(&body)?;
        let checkpoint = Checkpoint {
            origin: self.signer.name.clone(),
            size,
            root: *root,
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((note.clone(), checkpoint));
        Ok(note)
    }

    /// The checkpoint of `note` when it is exactly the last note this signer signed — which
    /// needs no signature check, since this key made it here — and `None` for any other note
    /// (verify that one).
    #[must_use]
    pub fn signed_by_me(&self, note: &str) -> Option<Checkpoint> {
        match &*self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((last, checkpoint)) if last == note => Some(checkpoint.clone()),
            _ => None,
        }
    }

    /// Signs an arbitrary note body with this key.
    fn sign_body(&self, body: &str) -> Result<String, CheckpointError> {
        let mut note = Note::new(body.as_bytes(), &[])
            .map_err(|e| CheckpointError::Signing(format!("invalid note text: {e}")))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| CheckpointError::Signing(e.to_string()))?;
        String::from_utf8(note.to_bytes())
            .map_err(|_| CheckpointError::Signing("signed note is not UTF-8".to_owned()))
    }
}

/// A [`Verifiers`] set holding exactly one key.
#[derive(Clone)]
struct SingleKey(StandardVerifier);

impl Verifiers for SingleKey {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn Verifier, VerificationError> {
        if name == self.0.name() && id == self.0.key_id() {
            Ok(&self.0)
        } else {
            Err(VerificationError::UnknownKey {
                name: name.to_owned(),
                id,
            })
        }
    }
}

/// Verifies checkpoints signed by one log key, whose name is the log's origin.
#[derive(Clone)]
pub struct CheckpointVerifier {
    key: SingleKey,
}

impl std::fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointVerifier")
            .field("key", &self.key_label())
            .finish()
    }
}

impl CheckpointVerifier {
    /// Builds a verifier from a C2SP verifier key `name+hexid+base64(0x01 || public key)`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidVerifierKey`] if `vkey` is malformed, is not an
    /// Ed25519 key, or its key ID does not match its name and key.
    pub fn new(vkey: &str) -> Result<Self, CheckpointError> {
        let verifier =
            StandardVerifier::new(vkey).map_err(|source| CheckpointError::InvalidVerifierKey {
                vkey: vkey.to_owned(),
                source,
            })?;
        Ok(Self {
            key: SingleKey(verifier),
        })
    }

    /// The log origin, which is the key name.
    #[must_use]
    pub fn origin(&self) -> &str {
        self.key.0.name()
    }

    /// The key as `name+hexid`, as used in error messages.
    fn key_label(&self) -> String {
        key_label(self.key.0.name(), self.key.0.key_id())
    }

    /// Checks that `note` is signed by this key and parses its checkpoint body.
    ///
    /// Signatures by other keys (for example witness cosignatures) are ignored.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::MalformedNote`] if `note` is not a signed note,
    /// [`CheckpointError::NotSignedByKey`] or [`CheckpointError::BadSignature`] if
    /// it carries no valid signature by this key,
    /// [`CheckpointError::OriginMismatch`] if the body names another origin, and
    /// [`CheckpointError::MalformedBody`] if the body is not a strict checkpoint.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(CheckpointError::MalformedNote)?;
        match parsed.verify(&self.key) {
            Ok(_) => {}
            Err(NoteError::InvalidSignature { .. }) => {
                return Err(CheckpointError::BadSignature {
                    key: self.key_label(),
                });
            }
            Err(NoteError::UnverifiedNote) => {
                return Err(CheckpointError::NotSignedByKey {
                    key: self.key_label(),
                    found: signers_of(note),
                });
            }
            Err(source) => {
                return Err(CheckpointError::Verification {
                    key: self.key_label(),
                    source,
                });
            }
        }
        // Note::new validated the text as UTF-8 when parsing; failing here
        // would mean a signed_note bug, which is reported rather than trusted.
        let text = std::str::from_utf8(parsed.text())
            .map_err(|_| CheckpointError::MalformedBody("not UTF-8".to_owned()))?;
        parse_body(text, self.origin())
    }
}

/// Lists the `name+id` of every signature line of a syntactically valid note.
fn signers_of(note: &str) -> String {
    let sigs = note
        .rsplit_once("\n\n")
        .map(|(_, sigs)| sigs)
        .unwrap_or_default();
    let found: Vec<String> = sigs
        .lines()
        .filter_map(|line| signed_note::Signature::from_bytes(line.as_bytes()).ok())
        .map(|sig| key_label(sig.name(), sig.id()))
        .collect();
    if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    }
}

/// Strictly parses a tlog-checkpoint body whose origin must be `origin`.
fn parse_body(text: &str, origin: &str) -> Result<Checkpoint, CheckpointError> {
    let malformed = CheckpointError::MalformedBody;
    let Some(text) = text.strip_suffix('\n') else {
        return Err(malformed("body does not end with a newline".to_owned()));
    };
    let mut lines = text.split('\n');
    let (Some(found), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(malformed(
            "expected origin, tree size and root hash lines".to_owned(),
        ));
    };
    if found != origin {
        return Err(CheckpointError::OriginMismatch {
            found: found.to_owned(),
            expected: origin.to_owned(),
        });
    }

    let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
    if !canonical || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "tree size {size:?} is not a decimal number without leading zeros"
        )));
    }
    let size: u64 = size
        .parse()
        .map_err(|_| malformed(format!("tree size {size} does not fit in 64 bits")))?;

    let decoded = BASE64
        .decode(root)
        .map_err(|e| malformed(format!("root hash {root:?} is not standard base64: {e}")))?;
    let root: Hash = decoded.try_into().map_err(|bytes: Vec<u8>| {
        malformed(format!(
            "root hash is {} bytes, expected 32 (SHA-256)",
            bytes.len()
        ))
    })?;

    if let Some(n) = lines.position(str::is_empty) {
        return Err(malformed(format!("extension line {} is empty", n + 1)));
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::super::merkle::{EMPTY_ROOT, leaf_hash, root_of};
    use super::*;

    const ORIGIN: &str = "example.com/ledger";
    const SEED: [u8; 32] = [7; 32];

    fn signer() -> CheckpointSigner {
        CheckpointSigner::from_seed(ORIGIN, &SEED).unwrap()
    }

    fn verifier() -> CheckpointVerifier {
        CheckpointVerifier::new(&signer().verifier_key()).unwrap()
    }

    fn sample_root() -> Hash {
        root_of(&[leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
    }

    #[test]
    fn sign_verify_round_trip() {
        let s = signer();
        let v = verifier();
        assert_eq!(s.origin(), ORIGIN);
        assert_eq!(v.origin(), ORIGIN);
        for (size, root) in [(0, EMPTY_ROOT), (3, sample_root()), (u64::MAX, [0xff; 32])] {
            let note = s.sign(size, &root).unwrap();
            let cp = v.verify(&note).unwrap();
            assert_eq!(
                cp,
                Checkpoint {
                    origin: ORIGIN.to_owned(),
                    size,
                    root
                }
            );
        }
    }

    #[test]
    fn output_format_matches_spec() {
        let s = signer();
        let root = sample_root();
        let note = s.sign(3, &root).unwrap();

        let body = format!("{ORIGIN}\n3\n{}\n", BASE64.encode(root));
        let rest = note.strip_prefix(&body).expect("note starts with the body");
        let rest = rest.strip_prefix('\n').expect("blank line after the body");
        let line = rest
            .strip_suffix('\n')
            .expect("signature line ends in newline");
        assert!(!line.contains('\n'), "exactly one signature line");
        let sig_b64 = line
            .strip_prefix(&format!("\u{2014} {ORIGIN} "))
            .expect("em dash, space, key name, space");
        let sig = BASE64.decode(sig_b64).unwrap();
        assert_eq!(sig.len(), 4 + 64);

        // The key ID is the one in the verifier key, and is SHA-256(name || \n || 0x01 || pk)[:4].
        let vkey = s.verifier_key();
        // The base64 key may itself contain '+'.
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], ORIGIN);
        assert_eq!(hex::encode(&sig[..4]), parts[1]);
        let public = BASE64.decode(parts[2]).unwrap();
        assert_eq!(public.len(), 33);
        assert_eq!(public[0], 0x01);
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(ORIGIN.as_bytes());
        h.update(b"\n");
        h.update(&public);
        assert_eq!(&h.finalize()[..4], &sig[..4]);

        // The signature is plain Ed25519 over the body, including its final newline.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&public[1..].try_into().unwrap()).unwrap();
        let ed_sig = ed25519_dalek::Signature::from_slice(&sig[4..]).unwrap();
        use ed25519_dalek::Verifier as _;
        vk.verify(body.as_bytes(), &ed_sig).unwrap();
    }

    /// signed_note's own key-string signer produces byte-identical notes.
    #[test]
    fn matches_signed_note_standard_signer() {
        let s = signer();
        let id = s.verifier_key().split('+').nth(1).unwrap().to_owned();
        let mut private = vec![0x01];
        private.extend_from_slice(&SEED);
        let skey = format!("PRIVATE+KEY+{ORIGIN}+{id}+{}", BASE64.encode(&private));
        let std_signer = signed_note::StandardSigner::new(&skey).unwrap();

        let root = sample_root();
        let body = format!("{ORIGIN}\n3\n{}\n", BASE64.encode(root));
        let mut n = Note::new(body.as_bytes(), &[]).unwrap();
        n.add_sigs(&[&std_signer]).unwrap();
        assert_eq!(s.sign(3, &root).unwrap().as_bytes(), n.to_bytes());
    }

    /// The body parses with tlog_tiles' independent checkpoint parser.
    #[test]
    fn body_parses_with_tlog_tiles() {
        let root = sample_root();
        let note = signer().sign(12345, &root).unwrap();
        let text = Note::from_bytes(note.as_bytes()).unwrap().text().to_vec();
        let cp = tlog_tiles::Checkpoint::from_bytes(&text).unwrap();
        assert_eq!(cp.origin(), ORIGIN);
        assert_eq!(cp.size(), 12345);
        assert_eq!(cp.hash().0, root);
        assert_eq!(cp.extension(), "");

        let theirs = tlog_tiles::Checkpoint::new(ORIGIN, 12345, tlog_tiles::Hash(root), "")
            .unwrap()
            .to_bytes();
        assert_eq!(theirs, text);
    }

    #[test]
    fn tampering_is_detected() {
        let s = signer();
        let v = verifier();
        let root = sample_root();
        let note = s.sign(3, &root).unwrap();
        let b64 = BASE64.encode(root);

        // Size, root and origin edits invalidate the signature.
        let other_root = BASE64.encode(leaf_hash(b"x"));
        for tampered in [
            note.replacen("\n3\n", "\n4\n", 1),
            note.replacen(&b64, &other_root, 1),
            note.replacen(ORIGIN, "example.com/other", 1),
        ] {
            assert_ne!(tampered, note);
            let err = v.verify(&tampered).unwrap_err();
            assert!(
                matches!(err, CheckpointError::BadSignature { .. }),
                "{tampered:?}: {err}"
            );
            assert!(
                err.to_string().starts_with(
                    "checkpoint signature does not verify with key example.com/ledger+"
                ),
                "{err}"
            );
        }

        // A flipped signature byte.
        let (head, sig_line) = note.rsplit_once(' ').unwrap();
        let mut sig = BASE64.decode(sig_line.trim_end()).unwrap();
        sig[10] ^= 1;
        let tampered = format!("{head} {}\n", BASE64.encode(&sig));
        assert!(matches!(
            v.verify(&tampered),
            Err(CheckpointError::BadSignature { .. })
        ));

        // A flipped key ID byte: the signature no longer names this key.
        let mut sig = BASE64.decode(sig_line.trim_end()).unwrap();
        sig[0] ^= 1;
        let tampered = format!("{head} {}\n", BASE64.encode(&sig));
        assert!(matches!(
            v.verify(&tampered),
            Err(CheckpointError::NotSignedByKey { .. })
        ));

        // Not a signed note at all.
        for garbage in ["", "hello\n", &note[..note.len() - 1]] {
            assert!(matches!(
                v.verify(garbage),
                Err(CheckpointError::MalformedNote(_))
            ));
        }
    }

    #[test]
    fn a_saved_note_may_end_with_one_more_newline_and_no_other_change() {
        let v = verifier();
        let note = signer().sign(3, &sample_root()).unwrap();
        let expected = v.verify(&note).unwrap();
        // As `jq -r` writes it (and with a CRLF editor), and as written exactly.
        for saved in [format!("{note}\n"), format!("{note}\r\n"), note.clone()] {
            assert_eq!(
                v.verify(note_from_file(&saved)).unwrap(),
                expected,
                "{saved:?}"
            );
        }
        // The library itself stays strict.
        assert!(matches!(
            v.verify(&format!("{note}\n")),
            Err(CheckpointError::MalformedNote(_))
        ));
        // Real malformations are still refused.
        for saved in [
            format!("{note}\n\n"),
            format!("{note}\n\r\n"),
            format!("{note} \n"),
            format!("{note}x\n"),
            note[..note.len() - 1].to_owned(),
            format!("\n{note}"),
        ] {
            assert!(v.verify(note_from_file(&saved)).is_err(), "{saved:?}");
        }
        assert_eq!(note_from_file(&note), note);
    }

    #[test]
    fn other_keys_are_rejected() {
        let v = verifier();
        let root = sample_root();

        // Same origin, different key.
        let other = CheckpointSigner::from_seed(ORIGIN, &[8; 32]).unwrap();
        let err = v.verify(&other.sign(3, &root).unwrap()).unwrap_err();
        assert!(matches!(err, CheckpointError::NotSignedByKey { .. }));
        let other_vkey = other.verifier_key();
        let other_label: Vec<&str> = other_vkey.splitn(3, '+').take(2).collect();
        let other_label = other_label.join("+");
        assert!(err.to_string().contains(&other_label), "{err}");

        // Different origin and key.
        let other = CheckpointSigner::from_seed("example.com/other", &SEED).unwrap();
        let err = v.verify(&other.sign(3, &root).unwrap()).unwrap_err();
        assert!(matches!(err, CheckpointError::NotSignedByKey { .. }));

        // A cosignature by another key is ignored.
        let note = signer().sign(3, &root).unwrap();
        let (body, _) = note.split_once("\n\n").unwrap();
        let mut n = Note::from_bytes(note.as_bytes()).unwrap();
        n.add_sigs(&[&other.signer]).unwrap();
        let cosigned = String::from_utf8(n.to_bytes()).unwrap();
        assert!(cosigned.starts_with(body));
        assert_eq!(v.verify(&cosigned).unwrap().size, 3);
    }

    #[test]
    fn origin_must_match_key_name() {
        // Validly signed by the key, but the body names another origin.
        let body = format!("example.com/other\n3\n{}\n", BASE64.encode(sample_root()));
        let note = signer().sign_body(&body).unwrap();
        let err = verifier().verify(&note).unwrap_err();
        assert!(matches!(err, CheckpointError::OriginMismatch { .. }));
        assert_eq!(
            err.to_string(),
            "checkpoint origin \"example.com/other\" does not match key name \"example.com/ledger\""
        );
    }

    #[test]
    fn body_is_parsed_strictly() {
        let root = BASE64.encode(sample_root());
        let ok = |body: &str| parse_body(body, ORIGIN);

        let cp = ok(&format!("{ORIGIN}\n0\n{root}\n")).unwrap();
        assert_eq!(cp.size, 0);
        let cp = ok(&format!(
            "{ORIGIN}\n18446744073709551615\n{root}\next\nmore\n"
        ))
        .unwrap();
        assert_eq!(cp.size, u64::MAX);

        let bad = [
            format!("{ORIGIN}\n3\n{root}"),
            format!("{ORIGIN}\n3\n"),
            format!("{ORIGIN}\n"),
            format!("{ORIGIN}\n03\n{root}\n"),
            format!("{ORIGIN}\n00\n{root}\n"),
            format!("{ORIGIN}\n\n{root}\n"),
            format!("{ORIGIN}\n+3\n{root}\n"),
            format!("{ORIGIN}\n-3\n{root}\n"),
            format!("{ORIGIN}\n 3\n{root}\n"),
            format!("{ORIGIN}\n3.0\n{root}\n"),
            format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
            format!("{ORIGIN}\n3\n{}\n", BASE64.encode([1u8; 31])),
            format!("{ORIGIN}\n3\n{}\n", BASE64.encode([1u8; 33])),
            format!("{ORIGIN}\n3\n{}\n", root.trim_end_matches('=')),
            format!("{ORIGIN}\n3\n{}\n", hex::encode(sample_root())),
            format!("{ORIGIN}\n3\n{root}\n\n"),
            format!("{ORIGIN}\n3\n{root}\next\n\nmore\n"),
        ];
        for body in &bad {
            let err = ok(body).unwrap_err();
            assert!(
                matches!(err, CheckpointError::MalformedBody(_)),
                "{body:?}: {err}"
            );
        }
        assert!(matches!(
            ok(&format!("{ORIGIN}x\n3\n{root}\n")),
            Err(CheckpointError::OriginMismatch { .. })
        ));

        // The same failures surface through a properly signed note.
        let note = signer()
            .sign_body(&format!("{ORIGIN}\n03\n{root}\n"))
            .unwrap();
        let err = verifier().verify(&note).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed checkpoint body: tree size \"03\""),
            "{err}"
        );
    }

    #[test]
    fn invalid_keys_and_origins() {
        for origin in ["", "has space", "a+b", "tab\there", "line\nbreak", "nul\0"] {
            assert!(matches!(
                CheckpointSigner::from_seed(origin, &SEED),
                Err(CheckpointError::InvalidOrigin { .. })
            ));
        }
        let vkey = signer().verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        for bad in [
            String::new(),
            "example.com/ledger".to_owned(),
            format!("{}+{}+{}", parts[0], parts[1], &parts[2][4..]),
            format!("{}+00000000+{}", parts[0], parts[2]),
            vkey.replacen("example.com/ledger", "example.com/other", 1),
        ] {
            let err = CheckpointVerifier::new(&bad).unwrap_err();
            assert!(
                matches!(err, CheckpointError::InvalidVerifierKey { .. }),
                "{bad:?}"
            );
        }
        // Debug output never shows the private key.
        let dbg = format!("{:?}", signer());
        assert!(dbg.contains(ORIGIN) && !dbg.contains(&hex::encode(SEED)));
    }
}
