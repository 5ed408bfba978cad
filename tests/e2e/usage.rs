//! The metering feed over HTTP: `POST /api/usage` with a bearer key, per-event rejections,
//! idempotency, and the soft-cap warning header.

use crate::approvals::serve;
use crate::support::*;
use serde_json::{Value, json};
use std::io::{Read, Write};

/// POSTs `body` to `path` with an optional bearer; returns (status, headers, body JSON).
fn post(
    addr: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, Vec<(String, String)>, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    // Bodies may be chunked; take the JSON between the first '{' and the last '}'.
    let json = match (rest.find('{'), rest.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&rest[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, headers, json)
}

#[test]
fn the_metering_feed_posts_usage_and_is_warned_past_a_soft_cap() {
    let sb = Sandbox::new();
    let t = sb.create_tenant("acme");
    sb.call_ok(&t.api_key, "billing.set_prices", json!({"currency": "USD", "prices": [
        {"sku": "api.requests", "unit_price": "0.0004", "unit": "request", "description": "API requests"}
    ]}));
    sb.call_ok(
        &t.api_key,
        "billing.set_cap",
        json!({"sku": "api.requests", "cap": "100"}),
    );
    sb.call_ok(
        &t.api_key,
        "members.create_persona",
        json!({"handle": "meter", "kind": "service", "roles": ["metering-service"]}),
    );
    let meter = api_key_of(&sb.call_ok(
        &t.api_key,
        "keys.issue",
        json!({"persona": "meter", "scopes": ["usage:write"]}),
    ));
    let (mut child, addr) = serve(&sb);
    let now = chrono::Utc::now().to_rfc3339();
    let batch = json!([
        {"id": "1", "source": "sdk-meter", "time": now, "sku": "api.requests", "quantity": 60},
        {"id": "2", "source": "sdk-meter", "time": now, "sku": "nope", "quantity": 1},
        {"id": "4", "source": "sdk-meter", "time": "0001-01-01T00:00:00Z", "sku": "api.requests", "quantity": 1},
    ])
    .to_string();
    let (status, headers, body) = post(&addr, "/api/usage", Some(&meter), &batch);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1);
    assert!(
        body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown SKU")
    );
    let old = body["rejected"][1]["reason"].as_str().unwrap();
    assert!(old.contains("too old"), "{body}");
    assert!(!headers.iter().any(|(k, _)| k == "warning"));
    // Re-sent: nothing counts twice. Then over the cap: still 200, with a warning naming it.
    let (_, _, again) = post(&addr, "/api/usage", Some(&meter), &batch);
    assert_eq!(again["duplicates"], 1);
    let more = json!([{"id": "3", "source": "sdk-meter", "time": now, "sku": "api.requests", "quantity": 50}]).to_string();
    let (status, headers, body) = post(&addr, "/api/usage", Some(&meter), &more);
    assert_eq!(status, 200, "{body}");
    let warning = headers
        .iter()
        .find(|(k, _)| k == "warning")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        warning.contains("api.requests") && warning.contains("100"),
        "{headers:?}"
    );
    // No credential: 401 with a challenge. A key without usage:write: 403.
    let (status, headers, _) = post(&addr, "/api/usage", None, &more);
    assert_eq!(status, 401);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer"))
    );
    let viewer = sb.service_key(&t.api_key, "fin", &["billing-viewer"], &["billing:read"]);
    let (status, _, _) = post(&addr, "/api/usage", Some(&viewer), &more);
    assert_eq!(status, 403);
    let (status, _, body) = post(&addr, "/api/usage", Some(&meter), "{\"not\":\"an array\"}");
    assert_eq!(status, 400, "{body}");
    let _ = child.kill();
    let _ = child.wait();
    let m = sb.call_ok(&t.api_key, "billing.live_meter", json!({}));
    assert_eq!(m["lines"][0]["quantity"], "110");
    assert_eq!(m["lines"][0]["badge"], "soft-cap exceeded");
}
