//! Scrubs credentials out of text that is about to be kept: an API key or a JWT pasted into an
//! input (say, `keys.revoke {"key": "tops_…"}`) must not become part of an immutable ledger.

use crate::apikey::{KEY_LEN, PREFIX};
use serde_json::Value;
use std::borrow::Cow;

/// Replaces every API key (`tops_` + 38 alphanumerics) and every JWT-shaped token
/// (`eyJ…` with two dots) in `text` by a redacted marker.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.contains(PREFIX) && !text.contains("eyJ") {
        return Cow::Borrowed(text);
    }
    let is_token = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_token(c)) {
        out.push_str(&rest[..start]);
        let token_len = rest[start..]
            .find(|c: char| !is_token(c))
            .unwrap_or(rest.len() - start);
        let token = &rest[start..start + token_len];
        out.push_str(&redact_token(token));
        rest = &rest[start + token_len..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn redact_token(token: &str) -> Cow<'_, str> {
    if let Some(i) = token.find(PREFIX) {
        let candidate = &token[i..];
        let body_len = candidate
            .bytes()
            .skip(PREFIX.len())
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if PREFIX.len() + body_len >= KEY_LEN {
            let end = i + KEY_LEN;
            return Cow::Owned(format!(
                "{}{PREFIX}…{}[redacted]{}",
                &token[..i],
                &token[end - 4..end],
                &token[end..]
            ));
        }
    }
    if token.starts_with("eyJ") && token.matches('.').count() == 2 && token.len() > 20 {
        return Cow::Borrowed("[redacted JWT]");
    }
    Cow::Borrowed(token)
}

/// Redacts every string in a JSON value, in place.
pub fn json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = text(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(json),
        Value::Object(o) => o.values_mut().for_each(json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikey::ApiKeySecret;

    #[test]
    fn keys_and_jwts_are_scrubbed_wherever_they_appear() {
        let key = ApiKeySecret::generate();
        let k = key.expose();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwc18xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        let mut v = serde_json::json!({
            "key": k,
            "error": format!("no API key `{k}` here"),
            "nested": [format!("Bearer {jwt}")],
            "fine": "ci-deploy",
        });
        json(&mut v);
        let s = v.to_string();
        assert!(!s.contains(k), "{s}");
        assert!(!s.contains(jwt), "{s}");
        assert!(s.contains(&k[k.len() - 4..]), "keeps a hint: {s}");
        assert!(s.contains("ci-deploy"));
        assert_eq!(
            text("tops_short and plain words"),
            "tops_short and plain words"
        );
    }
}
