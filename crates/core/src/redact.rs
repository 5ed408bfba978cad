//! Scrubs credentials out of text that is about to be kept or shown: an API key or a JWT pasted
//! into an input (say, `keys.revoke {"key": "tops_…"}`) must not become part of an immutable
//! ledger, and no log line may carry a secret, whatever the level. One implementation serves
//! the ledger, chat messages that echo input, and the process's log writer.
//!
//! Recognised by shape: API keys (`tops_` + 38 alphanumerics), JWTs (`eyJ…` with two dots),
//! Slack tokens (`xoxb-`, `xoxp-`, `xapp-`…), Discord bot tokens (a base64 user id, a
//! timestamp and an HMAC, dot-separated), chat link codes (`LINK-XXXXX-XXXXX`) and webhook
//! signing secrets (`whsec_…`). Recognised by value: every secret the process was configured
//! with ([`register`]: signing secrets, OAuth client secrets, bot tokens…), since those have no
//! shape of their own.

use crate::apikey::{KEY_LEN, PREFIX};
use base64::Engine as _;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::RwLock;

/// Secrets shorter than this are not registered: scrubbing every occurrence of a short word
/// would mangle text without protecting anything worth protecting.
pub const MIN_REGISTERED_LEN: usize = 8;

static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes `secret` (a configuration value such as a Slack signing secret or a bot token) be
/// scrubbed wherever it appears from now on. Values shorter than [`MIN_REGISTERED_LEN`] are
/// ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_REGISTERED_LEN {
        return;
    }
    let mut known = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == secret) {
        known.push(secret.to_owned());
        // Longest first, so a secret that contains another is scrubbed whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Replaces every recognised secret in `text` by a redacted marker (an API key keeps its last
/// four characters as a hint).
pub fn text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let known = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
        for secret in known.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "[redacted]"));
            }
        }
    }
    if out.contains(WEBHOOK_PREFIX) {
        out = Cow::Owned(webhook_secrets(&out));
    }
    if !might_hold_token(&out) {
        return out;
    }
    let is_token = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    let mut scrubbed = String::with_capacity(out.len());
    let mut rest: &str = &out;
    while let Some(start) = rest.find(is_token) {
        scrubbed.push_str(&rest[..start]);
        let token_len = rest[start..]
            .find(|c: char| !is_token(c))
            .unwrap_or(rest.len() - start);
        redact_token(&rest[start..start + token_len], &mut scrubbed);
        rest = &rest[start + token_len..];
    }
    scrubbed.push_str(rest);
    if scrubbed == *out {
        out
    } else {
        Cow::Owned(scrubbed)
    }
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

const WEBHOOK_PREFIX: &str = "whsec_";
const SLACK_PREFIXES: [&str; 7] = [
    "xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxr-", "xoxs-", "xapp-",
];

/// A cheap test that spares most text the token scan.
fn might_hold_token(text: &str) -> bool {
    text.contains(PREFIX)
        || text.contains("eyJ")
        || text.contains("xox")
        || text.contains("xapp-")
        || text.contains("INK-")
        || text.contains("ink-")
        // A Discord bot token has two dots.
        || text.bytes().filter(|&b| b == b'.').nth(1).is_some()
}

/// `whsec_` and the base64 that follows (which may hold `+`, `/` and `=`).
fn webhook_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(WEBHOOK_PREFIX) {
        let after = &rest[i + WEBHOOK_PREFIX.len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c)))
            .unwrap_or(after.len());
        out.push_str(&rest[..i + WEBHOOK_PREFIX.len()]);
        if len > 0 {
            out.push_str("[redacted]");
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Appends `token` (a run of `[A-Za-z0-9_.-]`) to `out` with every secret in it redacted.
fn redact_token(token: &str, out: &mut String) {
    let mut rest = token;
    let mut i = 0;
    while i < rest.len() {
        // Tokens are ASCII but for the odd letter; markers start with ASCII.
        if rest.is_char_boundary(i)
            && let Some((len, marker)) = secret_at(&rest[i..], i == 0 && rest.len() == token.len())
        {
            out.push_str(&rest[..i]);
            out.push_str(&marker);
            rest = &rest[i + len..];
            i = 0;
            continue;
        }
        i += 1;
    }
    out.push_str(rest);
}

/// The length of the secret that starts `s`, and its marker. `token_start` says whether `s`
/// starts a token (a Discord token must).
fn secret_at(s: &str, token_start: bool) -> Option<(usize, Cow<'static, str>)> {
    if let Some(body) = s.strip_prefix(PREFIX) {
        let n = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if n < KEY_LEN - PREFIX.len() {
            return None;
        }
        let hint = &s[KEY_LEN - 4..KEY_LEN];
        return Some((KEY_LEN, Cow::Owned(format!("{PREFIX}…{hint}[redacted]"))));
    }
    if s.starts_with("eyJ") {
        return jwt_len(s).map(|len| (len, Cow::Borrowed("[redacted JWT]")));
    }
    if let Some(prefix) = SLACK_PREFIXES.iter().find(|p| s.starts_with(**p)) {
        let n = s[prefix.len()..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        return (n >= 4).then(|| (prefix.len() + n, Cow::Owned(format!("{prefix}[redacted]"))));
    }
    if s.len() >= 16 && is_link_code(&s.as_bytes()[..16]) {
        return Some((16, Cow::Borrowed("LINK-[redacted]")));
    }
    if token_start {
        return discord_token_len(s).map(|len| (len, Cow::Borrowed("[redacted Discord token]")));
    }
    None
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The length of a JWT (three base64url segments, the first `eyJ…`) at the start of `s`.
fn jwt_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    for segment in 0..3 {
        let start = i;
        while i < b.len() && is_base64url(b[i]) {
            i += 1;
        }
        if i == start {
            return None;
        }
        if segment < 2 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i > 20).then_some(i)
}

/// `LINK-` + 5 + `-` + 5 characters of Crockford base32 (any case).
fn is_link_code(b: &[u8]) -> bool {
    b.len() == 16
        && b[..5].eq_ignore_ascii_case(b"LINK-")
        && b[10] == b'-'
        && b[5..10].iter().chain(&b[11..16]).all(|c| is_crockford(*c))
}

/// A character of Crockford's base32 (which leaves out I, L, O and U), in any case.
fn is_crockford(c: u8) -> bool {
    let c = c.to_ascii_uppercase();
    (c.is_ascii_digit() || c.is_ascii_uppercase()) && !matches!(c, b'I' | b'L' | b'O' | b'U')
}

/// The length of a Discord bot token at the start of `s`: the bot's user id in base64
/// (a snowflake: 17–20 digits), a base64 timestamp, and an HMAC of at least 27 characters.
fn discord_token_len(s: &str) -> Option<usize> {
    let mut parts = s.splitn(4, '.');
    let (id, time, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let mac_len = mac.bytes().take_while(|b| is_base64url(*b)).count();
    if !(23..=28).contains(&id.len())
        || !(5..=8).contains(&time.len())
        || mac_len < 27
        || !id.bytes().chain(time.bytes()).all(is_base64url)
    {
        return None;
    }
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let user = lenient.decode(id).ok()?;
    let is_snowflake = (17..=20).contains(&user.len()) && user.iter().all(u8::is_ascii_digit);
    is_snowflake.then_some(id.len() + 1 + time.len() + 1 + mac_len)
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
            "encoded": format!("Bearer%20{jwt}&key%3D{k}"),
            "fine": "ci-deploy",
        });
        json(&mut v);
        let s = v.to_string();
        assert!(!s.contains(k), "{s}");
        assert!(!s.contains(&k[5..37]), "{s}");
        assert!(!s.contains(jwt), "{s}");
        assert!(!s.contains("c2lnbmF0dXJl"), "{s}");
        assert!(s.contains(&k[k.len() - 4..]), "keeps a hint: {s}");
        assert!(s.contains("ci-deploy"));
        assert_eq!(
            text("tops_short and plain words"),
            "tops_short and plain words"
        );
    }

    #[test]
    fn chat_tokens_link_codes_and_webhook_secrets_are_scrubbed() {
        let cases = [
            "token=xoxb-1234-5678-abcdefghij",
            "xapp-1-A0APP-123-abcdef0123",
            "text=link+LINK-7QK2M-9HX4T&x",
            "/tenant link link-7qk2m-9hx4t",
            "code:LINK-7QK2M-9HX4T.",
            "secret whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD= end",
            // The shape of a Discord bot token (made up, never valid).
            "Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        let needles = [
            "1234-5678-abcdefghij",
            "A0APP-123-abcdef0123",
            "7QK2M-9HX4T",
            "7qk2m-9hx4t",
            "7QK2M-9HX4T",
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        for (case, needle) in cases.iter().zip(needles) {
            let r = text(case);
            assert!(!r.contains(needle), "{case} → {r}");
            assert!(r.contains("[redacted"), "{case} → {r}");
        }
        // Ordinary text with dots and dashes stays as it is.
        for fine in [
            "tenantops_core::service.call",
            "a.b.c",
            "LINK-too-short",
            "persona link-admin-users",
            "xoxb-…",
            "version 1.2.3 of rmcp.transport.streamable_http_server_session",
        ] {
            assert_eq!(text(fine), fine);
        }
    }

    #[test]
    fn registered_configuration_secrets_are_scrubbed_by_value() {
        register("s3cret-signing-value-for-this-test");
        register("short");
        let r = text("signing secret s3cret-signing-value-for-this-test in a line");
        assert!(!r.contains("s3cret-signing-value-for-this-test"), "{r}");
        assert!(r.contains("[redacted]"), "{r}");
        assert_eq!(text("short words"), "short words");
    }
}
