//! Discord's request signatures: Ed25519 over `timestamp || body` with the application's public
//! key (serenity's verifier), checked on the raw body before anything parses it, plus a window
//! on the timestamp's age (the signature alone does not stop a replay).

use axum::http::HeaderMap;

/// How far a request's timestamp may be from now, in seconds.
pub const WINDOW_SECS: u64 = 300;

/// Why a request was refused. The message is safe to log and to send back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A signature header is missing or not ASCII.
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    Missing,
    /// The timestamp is not a number or outside the window.
    #[error("stale or invalid X-Signature-Timestamp")]
    Stale,
    /// The signature does not match.
    #[error("invalid request signature")]
    BadSignature,
}

/// Checks requests against one application's public key.
#[derive(Clone)]
pub struct Verifier(serenity::interactions_endpoint::Verifier);

impl Verifier {
    /// A verifier for `public_key_hex`, or `None` when it is not a valid key.
    pub fn new(public_key_hex: &str) -> Option<Self> {
        let key: [u8; 32] = hex::decode_to_array(public_key_hex.trim()).ok()?;
        serenity::interactions_endpoint::Verifier::try_new(key)
            .ok()
            .map(Self)
    }

    /// Checks one request at `now` (Unix seconds).
    pub fn check(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refused> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (
            header("x-signature-ed25519"),
            header("x-signature-timestamp"),
        ) else {
            return Err(Refused::Missing);
        };
        let ts: i64 = timestamp.parse().map_err(|_| Refused::Stale)?;
        if now.abs_diff(ts) > WINDOW_SECS {
            return Err(Refused::Stale);
        }
        self.0
            .verify(signature, timestamp, body)
            .map_err(|()| Refused::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(key: &SigningKey, ts: i64, body: &str) -> HeaderMap {
        let sig = key.sign(format!("{ts}{body}").as_bytes());
        let mut h = HeaderMap::new();
        h.insert(
            "x-signature-ed25519",
            hex::encode(sig.to_bytes()).parse().unwrap(),
        );
        h.insert("x-signature-timestamp", ts.to_string().parse().unwrap());
        h
    }

    #[test]
    fn good_bad_stale_and_missing() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let v = Verifier::new(&hex::encode(key.verifying_key().to_bytes())).unwrap();
        let now = 1_800_000_000;
        let body = r#"{"type":1}"#;
        assert_eq!(
            v.check(&signed(&key, now, body), body.as_bytes(), now),
            Ok(())
        );
        assert_eq!(
            v.check(&signed(&key, now, body), br#"{"type":2}"#, now),
            Err(Refused::BadSignature)
        );
        let other = SigningKey::from_bytes(&[4u8; 32]);
        assert_eq!(
            v.check(&signed(&other, now, body), body.as_bytes(), now),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            v.check(&signed(&key, now - 301, body), body.as_bytes(), now),
            Err(Refused::Stale)
        );
        assert_eq!(
            v.check(&HeaderMap::new(), body.as_bytes(), now),
            Err(Refused::Missing)
        );
        let mut extreme = signed(&key, now, body);
        extreme.insert(
            "x-signature-timestamp",
            i64::MIN.to_string().parse().unwrap(),
        );
        assert_eq!(v.check(&extreme, body.as_bytes(), now), Err(Refused::Stale));
        let mut garbage = signed(&key, now, body);
        garbage.insert("x-signature-ed25519", "zz".parse().unwrap());
        assert_eq!(
            v.check(&garbage, body.as_bytes(), now),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn keys_must_be_64_hex_digits() {
        assert!(Verifier::new("abc").is_none());
        assert!(Verifier::new(&"g".repeat(64)).is_none());
    }
}
