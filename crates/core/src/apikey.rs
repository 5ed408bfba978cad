//! The API-key secret format: `tops_` + 32 random base62 characters + a 6-character base62
//! CRC32 of everything before it — the shape of GitHub's tokens. The prefix makes a leaked key
//! recognisable by secret scanners; the checksum rejects a mistyped key before any database
//! lookup. Only an HMAC-SHA256 digest (keyed by the deployment pepper) is ever stored.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Every tenantops API key starts with this.
pub const PREFIX: &str = "tops_";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed API key. Raised before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Wrong prefix.
    #[error("not a tenantops API key: it must start with `{PREFIX}`")]
    Prefix,
    /// Wrong length or characters.
    #[error("malformed API key: expected {KEY_LEN} characters of [A-Za-z0-9] after the prefix")]
    Shape,
    /// The checksum does not match: a typo or truncation.
    #[error("API key checksum mismatch: the key was mistyped or truncated")]
    Checksum,
}

/// An API key secret. `Debug` and `Display` show only a redacted hint; the value is wiped from
/// memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(Zeroizing<String>);

impl ApiKeySecret {
    /// A fresh key from the OS random generator.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut s = String::with_capacity(KEY_LEN);
        s.push_str(PREFIX);
        for _ in 0..RANDOM_LEN {
            s.push(BASE62[rng.gen_range(0..62)] as char);
        }
        let sum = checksum(&s);
        s.push_str(&sum);
        Self(Zeroizing::new(s))
    }

    /// Checks prefix, shape and checksum. Cheap and offline.
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        if !text.starts_with(PREFIX) {
            return Err(KeyFormatError::Prefix);
        }
        if text.len() != KEY_LEN
            || !text[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(KeyFormatError::Shape);
        }
        let (body, sum) = text.split_at(KEY_LEN - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(KeyFormatError::Checksum);
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// The secret itself, for the one moment it is handed to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored digest: HMAC-SHA256 under the deployment pepper.
    pub fn digest(&self, pepper: &[u8; 32]) -> [u8; 32] {
        // HMAC accepts keys of any length, so construction cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(pepper).expect("HMAC takes any key length");
        mac.update(self.0.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A non-secret hint for listings: the prefix and the last four characters.
    pub fn hint(&self) -> String {
        format!("{PREFIX}…{}", &self.0[KEY_LEN - 4..])
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({})", self.hint())
    }
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_look_like_keys() {
        let k = ApiKeySecret::generate();
        assert_eq!(k.expose().len(), KEY_LEN);
        assert!(k.expose().starts_with("tops_"));
        assert_eq!(ApiKeySecret::parse(k.expose()).unwrap(), k);
        assert_ne!(ApiKeySecret::generate(), k);
    }

    #[test]
    fn every_single_character_typo_is_caught_by_the_checksum() {
        let k = ApiKeySecret::generate();
        let s = k.expose().to_owned();
        for i in PREFIX.len()..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(b).unwrap();
            assert_eq!(
                ApiKeySecret::parse(&typo),
                Err(KeyFormatError::Checksum),
                "{i}"
            );
        }
        assert_eq!(
            ApiKeySecret::parse(&s[..s.len() - 1]),
            Err(KeyFormatError::Shape)
        );
        assert_eq!(ApiKeySecret::parse("ghp_abc"), Err(KeyFormatError::Prefix));
        let swapped = format!("{}{}", &s[..10], "!".repeat(s.len() - 10));
        assert_eq!(ApiKeySecret::parse(&swapped), Err(KeyFormatError::Shape));
    }

    #[test]
    fn debug_never_shows_the_secret_and_digests_are_keyed() {
        let k = ApiKeySecret::generate();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&k.expose()[5..30]));
        assert_ne!(k.digest(&[1; 32]), k.digest(&[2; 32]));
        assert_eq!(k.digest(&[1; 32]), k.digest(&[1; 32]));
    }
}
