//! Slack request signatures (v0: HMAC-SHA256 of `v0:{timestamp}:{raw body}` under the signing
//! secret, compared in constant time) and the five-minute replay window, checked against the raw
//! body before anything in it is parsed.

use axum::http::HeaderMap;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

/// Why a request was refused (said in the 401 body; no secret or signature echoed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// A header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The signature does not match.
    #[error("bad request signature")]
    BadSignature,
    /// The timestamp is malformed or outside the replay window.
    #[error("stale or malformed request timestamp (more than 5 minutes off)")]
    Stale,
    /// The body is not UTF-8.
    #[error("the body is not UTF-8")]
    NotUtf8,
}

/// Verifies Slack's signature on `body`.
pub fn verify(
    verifier: &SlackEventSignatureVerifier,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refused> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(Refused::Missing(name))
    };
    let signature = get(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?;
    let ts = get(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?;
    let body = std::str::from_utf8(body).map_err(|_| Refused::NotUtf8)?;
    verifier.verify(signature, body, ts).map_err(|e| match e {
        slack_morphism::signature_verifier::SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_) => {
            Refused::Stale
        }
        _ => Refused::BadSignature,
    })
}

/// A verifier for `secret`.
pub fn verifier(secret: &str) -> SlackEventSignatureVerifier {
    SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sign(secret: &str, ts: &str, body: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-slack-signature", HeaderValue::from_str(sig).unwrap());
        h.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_str(ts).unwrap(),
        );
        h
    }

    #[test]
    fn good_bad_stale_and_missing() {
        let v = verifier("s3cret");
        let now = chrono::Utc::now().timestamp().to_string();
        let body = "command=%2Fkeys&text=list";
        assert_eq!(
            verify(
                &v,
                &headers(&sign("s3cret", &now, body), &now),
                body.as_bytes()
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &v,
                &headers(&sign("other", &now, body), &now),
                body.as_bytes()
            ),
            Err(Refused::BadSignature)
        );
        // A tampered body fails even with a valid signature of the original.
        assert_eq!(
            verify(
                &v,
                &headers(&sign("s3cret", &now, body), &now),
                b"command=%2Fkeys&text=revoke"
            ),
            Err(Refused::BadSignature)
        );
        let old = (chrono::Utc::now().timestamp() - 301).to_string();
        assert_eq!(
            verify(
                &v,
                &headers(&sign("s3cret", &old, body), &old),
                body.as_bytes()
            ),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify(&v, &HeaderMap::new(), body.as_bytes()),
            Err(Refused::Missing("x-slack-signature"))
        );
    }
}
