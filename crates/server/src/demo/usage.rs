//! The demo's usage feed: what a month and a half of a small company's metering looks like —
//! every few hours per API key and SKU, quieter at weekends, growing slowly — generated
//! deterministically so every demo database tells the same story.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use serde_json::{Value, json};

/// One metered stream: a SKU driven by one API key.
pub struct Stream {
    /// The SKU.
    pub sku: &'static str,
    /// The key that drives it (index into the key ids given to [`events`]).
    pub key: usize,
    /// The typical quantity per reading on a weekday.
    pub base: f64,
    /// Hours of the day (UTC) it reports at.
    pub hours: &'static [u32],
    /// Decimals of its quantities.
    pub decimals: u32,
    /// Whether it slows down at weekends.
    pub weekly: bool,
}

/// The demo's streams; keys: 0 ci-deploy, 1 etl-prod, 2 claude-mcp.
pub const STREAMS: &[Stream] = &[
    Stream {
        sku: "api.requests",
        key: 0,
        base: 9_000.0,
        hours: &[3, 9, 15, 21],
        decimals: 0,
        weekly: true,
    },
    Stream {
        sku: "api.requests",
        key: 1,
        base: 7_000.0,
        hours: &[3, 9, 15, 21],
        decimals: 0,
        weekly: true,
    },
    Stream {
        sku: "api.requests",
        key: 2,
        base: 450.0,
        hours: &[9, 15],
        decimals: 0,
        weekly: true,
    },
    Stream {
        sku: "compute.vcpu_hours",
        key: 0,
        base: 5.0,
        hours: &[3, 9, 15, 21],
        decimals: 2,
        weekly: true,
    },
    Stream {
        sku: "compute.vcpu_hours",
        key: 1,
        base: 8.0,
        hours: &[3, 9, 15, 21],
        decimals: 2,
        weekly: false,
    },
    Stream {
        sku: "storage.gb_days",
        key: 1,
        base: 420.0,
        hours: &[0],
        decimals: 1,
        weekly: false,
    },
    Stream {
        sku: "ai.tokens",
        key: 2,
        base: 90.0,
        hours: &[9, 15],
        decimals: 1,
        weekly: true,
    },
];

/// A number in [0, 1) from a seed (SplitMix64).
fn noise(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Every reading from `from` (a midnight) until `until`, as `billing.ingest` events attributed to
/// `keys` (key ids).
pub fn events(from: DateTime<Utc>, until: DateTime<Utc>, keys: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut day = from;
    let mut n: i64 = 0;
    while day < until {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let growth = 1.0 + 0.004 * n as f64;
        for (s, stream) in STREAMS.iter().enumerate() {
            let Some(key) = keys.get(stream.key) else {
                continue;
            };
            for &hour in stream.hours {
                let at = day + Duration::hours(i64::from(hour));
                if at > until {
                    continue;
                }
                let seed = (n as u64) << 16 | (s as u64) << 8 | u64::from(hour);
                let jitter = 0.7 + 0.6 * noise(seed);
                let week = if stream.weekly && weekend { 0.55 } else { 1.0 };
                let quantity = if stream.sku == "storage.gb_days" {
                    // Storage only grows: the daily snapshot of what is kept.
                    stream.base + 3.0 * n as f64 + 10.0 * noise(seed)
                } else {
                    stream.base * jitter * week * growth
                };
                out.push(json!({
                    "id": format!("{}:{s}:{}", stream.sku, at.format("%Y-%m-%dT%H")),
                    "source": "sdk-meter",
                    "time": at.to_rfc3339(),
                    "sku": stream.sku,
                    "quantity": format!("{quantity:.*}", stream.decimals as usize),
                    "key_id": key,
                }));
            }
        }
        day += Duration::days(1);
        n += 1;
    }
    out
}

/// Midnight (UTC) of the first day of the month before `now`'s, and that month as `YYYY-MM`.
pub fn last_month(now: DateTime<Utc>) -> (DateTime<Utc>, String) {
    let first = now.date_naive().with_day(1).unwrap_or(now.date_naive());
    let prev = (first - Duration::days(1))
        .with_day(1)
        .unwrap_or(first - Duration::days(28));
    (
        prev.and_time(NaiveTime::MIN).and_utc(),
        prev.format("%Y-%m").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_and_a_half_of_readings_none_in_the_future() {
        let now = "2026-11-17T10:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let (from, period) = last_month(now);
        assert_eq!(period, "2026-10");
        assert_eq!(from.to_rfc3339(), "2026-10-01T00:00:00+00:00");
        let keys: Vec<String> = ["key_a", "key_b", "key_c"].map(String::from).to_vec();
        let ev = events(from, now, &keys);
        assert!(ev.len() > 900 && ev.len() < 1_500, "{}", ev.len());
        assert!(
            ev.iter()
                .all(|e| e["time"].as_str().unwrap() <= "2026-11-17T10:30:00+00:00")
        );
        let ids: std::collections::HashSet<&str> =
            ev.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), ev.len(), "event ids are unique");
        // Deterministic: the same story every time.
        assert_eq!(ev, events(from, now, &keys));
        let january = "2027-01-05T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(last_month(january).1, "2026-12");
    }
}
