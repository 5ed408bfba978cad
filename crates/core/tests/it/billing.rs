//! Billing: idempotent ingestion, period boundaries, totals against an independent
//! recomputation, showback through a three-level BU tree, soft caps, invoices parsed back.

use crate::support::*;
use base64::Engine;
use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use tenantops_core::notify::Notification;
use tenantops_core::{Outcome, Principal};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn dv(v: &Value) -> Decimal {
    match v {
        Value::String(s) => d(s),
        other => d(&other.to_string()),
    }
}

async fn priced() -> (Env, Principal) {
    let t = Env::new().await;
    // Mid-November 2026.
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 15, 12, 0, 0).unwrap());
    let (_, admin) = t.tenant("acme").await;
    t.ok(&admin, "billing.set_prices", json!({"currency": "EUR", "prices": [
        {"sku": "api.requests", "unit_price": "0.0004", "unit": "request", "description": "API requests"},
        {"sku": "storage.gb", "unit_price": "0.023", "unit": "GB-day", "description": "Storage"},
        {"sku": "ai.tokens", "unit_price": "0.000002", "unit": "token", "description": "AI gateway tokens"},
    ]})).await;
    (t, admin)
}

fn ev(id: &str, time: &str, sku: &str, qty: Value) -> Value {
    json!({"id": id, "source": "sdk-meter", "time": time, "sku": sku, "quantity": qty})
}

async fn ingest(t: &Env, p: &Principal, events: Vec<Value>) -> Value {
    t.ok(p, "billing.ingest", json!({"events": events})).await
}

fn meter_line(m: &Value, sku: &str) -> Value {
    m["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == sku)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_resent_batch_never_counts_twice_even_concurrently() {
    let (t, admin) = priced().await;
    let batch: Vec<Value> = (0..50)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "2026-11-10T10:00:00Z",
                "api.requests",
                json!(10),
            )
        })
        .collect();
    let first = ingest(&t, &admin, batch.clone()).await;
    assert_eq!(first["accepted"], 50);
    let again = ingest(&t, &admin, batch.clone()).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(50))
    );
    // Two overlapping batches at once, plus a duplicate inside one batch.
    let mut a: Vec<Value> = (40..90)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "2026-11-11T10:00:00Z",
                "api.requests",
                json!(10),
            )
        })
        .collect();
    a.push(ev("e89", "2026-11-11T10:00:00Z", "api.requests", json!(10)));
    let b: Vec<Value> = (60..120)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "2026-11-11T10:00:00Z",
                "api.requests",
                json!(10),
            )
        })
        .collect();
    let (ra, rb) = tokio::join!(ingest(&t, &admin, a), ingest(&t, &admin, b));
    assert_eq!(
        ra["accepted"].as_u64().unwrap() + rb["accepted"].as_u64().unwrap(),
        70
    );
    let m = t.ok(&admin, "billing.live_meter", json!({})).await;
    assert_eq!(dv(&meter_line(&m, "api.requests")["quantity"]), d("1200"));
    // The same id from another source is another event.
    let other = t.ok(&admin, "billing.ingest", json!({"events": [
        {"id": "e0", "source": "batch-import", "time": "2026-11-10T10:00:00Z", "sku": "api.requests", "quantity": 1}
    ]})).await;
    assert_eq!(other["accepted"], 1);
}

#[tokio::test]
async fn old_events_spread_over_a_large_batch_are_each_counted_once() {
    let (t, admin) = priced().await;
    let mk = |i: usize| {
        ev(
            &format!("big-{i}"),
            "2026-11-10T10:00:00Z",
            "api.requests",
            json!(1),
        )
    };
    // Every third event first, then all of them: the old ones fall in every statement the
    // second batch is inserted with.
    let first = ingest(&t, &admin, (0..3000).step_by(3).map(mk).collect()).await;
    assert_eq!(first["accepted"], 1000);
    let all = ingest(&t, &admin, (0..3000).map(mk).collect()).await;
    assert_eq!(
        (all["accepted"].as_u64(), all["duplicates"].as_u64()),
        (Some(2000), Some(1000))
    );
    let again = ingest(&t, &admin, (0..3000).rev().map(mk).collect()).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(3000))
    );
    let m = t.ok(&admin, "billing.live_meter", json!({})).await;
    assert_eq!(dv(&meter_line(&m, "api.requests")["quantity"]), d("3000"));
}

#[tokio::test]
async fn events_land_in_the_utc_month_of_their_instant() {
    let (t, admin) = priced().await;
    let r = ingest(
        &t,
        &admin,
        vec![
            ev(
                "last-oct",
                "2026-10-31T23:59:59.999Z",
                "api.requests",
                json!(1),
            ),
            ev(
                "first-nov",
                "2026-11-01T00:00:00Z",
                "api.requests",
                json!(2),
            ),
            ev(
                "nov-by-offset",
                "2026-10-31T20:00:00-04:00",
                "api.requests",
                json!(4),
            ),
            ev(
                "oct-by-offset",
                "2026-11-01T00:59:59+01:00",
                "api.requests",
                json!(8),
            ),
        ],
    )
    .await;
    assert_eq!(r["accepted"], 4, "{r}");
    let nov = t.ok(&admin, "billing.live_meter", json!({})).await;
    let oct = t
        .ok(&admin, "billing.live_meter", json!({"period": "2026-10"}))
        .await;
    assert_eq!(dv(&meter_line(&nov, "api.requests")["quantity"]), d("6"));
    assert_eq!(dv(&meter_line(&oct, "api.requests")["quantity"]), d("9"));
}

#[tokio::test]
async fn bad_events_are_rejected_one_by_one_and_the_rest_lands() {
    let (t, admin) = priced().await;
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap());
    t.ok(&admin, "billing.close_period", json!({"period": "2026-11"}))
        .await;
    let r = ingest(&t, &admin, vec![
        ev("ok", "2026-12-01T10:00:00Z", "api.requests", json!(3)),
        ev("sku", "2026-12-01T10:00:00Z", "gpu.hours", json!(1)),
        ev("neg", "2026-12-01T10:00:00Z", "api.requests", json!(-1)),
        ev("future", "2026-12-03T10:00:00Z", "api.requests", json!(1)),
        ev("closed", "2026-11-30T10:00:00Z", "api.requests", json!(1)),
        json!({"source": "sdk-meter", "time": "2026-12-01T10:00:00Z", "sku": "api.requests", "quantity": 1}),
        ev("when", "yesterday", "api.requests", json!(1)),
        ev("qty", "2026-12-01T10:00:00Z", "api.requests", json!("lots")),
        ev("fine", "2026-12-01T10:00:00Z", "storage.gb", json!("0.5")),
    ]).await;
    assert_eq!(r["accepted"], 2, "{r}");
    let reasons: BTreeMap<u64, String> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(reasons[&1].contains("unknown SKU"), "{reasons:?}");
    assert!(reasons[&2].contains("negative"));
    assert!(reasons[&3].contains("future"));
    assert!(reasons[&4].contains("closed"));
    assert!(reasons[&5].contains("id is missing"));
    assert!(reasons[&6].contains("RFC 3339"));
    assert!(reasons[&7].contains("not a decimal"));
}

#[tokio::test]
async fn event_times_must_fall_in_the_previous_or_the_current_period() {
    // Now: 2026-11-15T12:00Z. October still takes late usage; September is too old.
    let (t, admin) = priced().await;
    let batch = |tag: &str| {
        vec![
            ev(
                &format!("{tag}-year-1"),
                "0001-01-01T00:00:00Z",
                "api.requests",
                json!(1),
            ),
            ev(
                &format!("{tag}-epoch"),
                "1970-01-01T00:00:00Z",
                "api.requests",
                json!(1),
            ),
            ev(
                &format!("{tag}-sep"),
                "2026-09-30T23:59:59.999Z",
                "api.requests",
                json!(1),
            ),
            ev(
                &format!("{tag}-oct"),
                "2026-10-01T00:00:00Z",
                "api.requests",
                json!(2),
            ),
            ev(
                &format!("{tag}-oct-offset"),
                "2026-09-30T20:00:00-04:00",
                "api.requests",
                json!(4),
            ),
            ev(
                &format!("{tag}-nov"),
                "2026-11-15T12:04:59Z",
                "api.requests",
                json!(8),
            ),
            ev(
                &format!("{tag}-future"),
                "2026-11-15T12:05:01Z",
                "api.requests",
                json!(16),
            ),
            ev(
                &format!("{tag}-far"),
                "9999-12-31T23:59:59Z",
                "api.requests",
                json!(32),
            ),
        ]
    };
    let reasons = |r: &Value| -> BTreeMap<u64, String> {
        r["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["index"].as_u64().unwrap(),
                    x["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let r = ingest(&t, &admin, batch("a")).await;
    assert_eq!(r["accepted"], 3, "{r}");
    let why = reasons(&r);
    assert_eq!(
        why.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 6, 7],
        "{r}"
    );
    for i in [0, 1, 2] {
        assert!(
            why[&i].contains("too old") && why[&i].contains("2026-10-01T00:00:00Z"),
            "{why:?}"
        );
    }
    assert!(
        why[&6].contains("future") && why[&7].contains("future"),
        "{why:?}"
    );
    assert_eq!(r["rejected"][0]["id"], "a-year-1");
    let oct = t
        .ok(&admin, "billing.live_meter", json!({"period": "2026-10"}))
        .await;
    assert_eq!(dv(&meter_line(&oct, "api.requests")["quantity"]), d("6"));
    let sep = t
        .ok(&admin, "billing.live_meter", json!({"period": "2026-09"}))
        .await;
    assert!(sep["lines"].as_array().unwrap().is_empty(), "{sep}");

    // A month on, October is too old (though never closed) and November is the late one.
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 15, 12, 0, 0).unwrap());
    let r = ingest(&t, &admin, batch("b")).await;
    assert_eq!(r["accepted"], 2, "{r}");
    let why = reasons(&r);
    assert_eq!(
        why.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 7],
        "{r}"
    );
    assert!(
        why[&3].contains("too old") && why[&3].contains("(2026-11)"),
        "{why:?}"
    );
}

/// A small deterministic generator, so the test needs no RNG crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[tokio::test]
async fn totals_equal_an_independent_recomputation_from_raw_events() {
    let (t, admin) = priced().await;
    let skus = [
        ("api.requests", "0.0004"),
        ("storage.gb", "0.023"),
        ("ai.tokens", "0.000002"),
    ];
    let mut rng = Lcg(42);
    let mut expected: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut events = Vec::new();
    for i in 0..3000 {
        let (sku, _) = skus[(rng.next() % 3) as usize];
        let day = 1 + rng.next() % 14;
        // Quantities with up to 3 decimals, sent as strings or numbers.
        let milli = rng.next() % 5_000_000;
        let qty = Decimal::new(milli as i64, 3);
        *expected.entry(sku).or_default() += qty;
        let q = if i % 2 == 0 {
            json!(qty.to_string())
        } else {
            json!(qty.to_string().parse::<f64>().unwrap())
        };
        events.push(ev(
            &format!("r{i}"),
            &format!("2026-11-{day:02}T{:02}:00:00Z", rng.next() % 24),
            sku,
            q,
        ));
        if events.len() == 700 {
            ingest(&t, &admin, std::mem::take(&mut events)).await;
        }
    }
    ingest(&t, &admin, events).await;
    let m = t.ok(&admin, "billing.live_meter", json!({})).await;
    let mut total = Decimal::ZERO;
    for (sku, price) in skus {
        let line = meter_line(&m, sku);
        assert_eq!(dv(&line["quantity"]), expected[sku], "{sku}");
        let amount = (expected[sku] * d(price))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(dv(&line["amount"]), amount, "{sku}");
        total += amount;
    }
    assert_eq!(dv(&m["total"]), total);
}

#[tokio::test]
async fn showback_rolls_costs_up_a_three_level_bu_tree() {
    let (t, admin) = priced().await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name": "corp", "kind": "company"}),
    )
    .await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name": "emea", "kind": "region", "parent": "corp"}),
    )
    .await;
    t.ok(
        &admin,
        "members.create_bu",
        json!({"name": "emea-sales", "kind": "cost-center", "parent": "emea"}),
    )
    .await;
    let mut keys = BTreeMap::new();
    for (h, bu) in [
        ("hq-bot", "corp"),
        ("eu-bot", "emea"),
        ("sales-bot", "emea-sales"),
    ] {
        t.ok(
            &admin,
            "members.create_persona",
            json!({"handle": h, "kind": "service", "roles": ["developer"], "bu": bu}),
        )
        .await;
        let k = t
            .ok(
                &admin,
                "keys.issue",
                json!({"persona": h, "scopes": ["keys:read"]}),
            )
            .await;
        keys.insert(h, k["key_id"].as_str().unwrap().to_owned());
    }
    let mut events = Vec::new();
    for (i, (h, n)) in [("hq-bot", 1000), ("eu-bot", 2000), ("sales-bot", 4000)]
        .into_iter()
        .enumerate()
    {
        let mut e = ev(
            &format!("s{i}"),
            "2026-11-05T10:00:00Z",
            "api.requests",
            json!(n),
        );
        e["key_id"] = json!(keys[h]);
        events.push(e);
    }
    events.push(ev(
        "loose",
        "2026-11-05T10:00:00Z",
        "api.requests",
        json!(500),
    ));
    ingest(&t, &admin, events).await;
    let s = t.ok(&admin, "billing.showback", json!({"csv": true})).await;
    let unit = |name: &str| {
        s["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(dv(&unit("emea-sales")["total"]), d("1.60"));
    assert_eq!(dv(&unit("emea")["direct"]), d("0.80"));
    assert_eq!(dv(&unit("emea")["total"]), d("2.40"));
    assert_eq!(dv(&unit("corp")["total"]), d("2.80"));
    assert_eq!(dv(&unit("(no business unit)")["total"]), d("0.20"));
    assert_eq!(dv(&s["total"]), d("3.00"));
    let csv = s["csv"].as_str().unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(r.records().count(), 4);
    // Drill-down names the drivers.
    let dd = t
        .ok(
            &admin,
            "billing.drilldown",
            json!({"sku": "api.requests", "top": 2}),
        )
        .await;
    assert_eq!(dd["by_persona"][0]["name"], "sales-bot");
    assert_eq!(dd["by_key"].as_array().unwrap().len(), 2);
    assert_eq!(dd["by_persona"][0]["share_percent"], 53);
}

/// A business unit (under `parent`) with a service persona in it and a key; returns the key id.
async fn unit_with_key(t: &Env, admin: &Principal, name: &str, parent: Option<&str>) -> String {
    let mut bu = json!({"name": name, "kind": "team"});
    if let Some(p) = parent {
        bu["parent"] = json!(p);
    }
    t.ok(admin, "members.create_bu", bu).await;
    let handle = format!("{name}-bot");
    t.ok(
        admin,
        "members.create_persona",
        json!({"handle": handle, "kind": "service", "roles": ["developer"], "bu": name}),
    )
    .await;
    let k = t
        .ok(
            admin,
            "keys.issue",
            json!({"persona": handle, "scopes": ["keys:read"]}),
        )
        .await;
    k["key_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn showback_adds_up_to_the_metered_spend_to_the_cent() {
    let (t, admin) = priced().await;
    t.ok(&admin, "billing.set_prices", json!({"prices": [
        {"sku": "archive.gb", "unit_price": "0.0125", "unit": "GB-day", "description": "Archive"},
    ]}))
    .await;
    let showback_sum = |s: &Value| -> Decimal {
        s["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| dv(&u["direct"]))
            .sum()
    };
    // Two units using 0.4 GB-day each: half a cent each, one cent metered and invoiced.
    let red = unit_with_key(&t, &admin, "red", None).await;
    let blue = unit_with_key(&t, &admin, "blue", None).await;
    let mut events = Vec::new();
    for (i, key) in [&red, &blue].into_iter().enumerate() {
        let mut e = ev(
            &format!("half-{i}"),
            "2026-10-05T10:00:00Z",
            "archive.gb",
            json!("0.4"),
        );
        e["key_id"] = json!(key);
        events.push(e);
    }
    ingest(&t, &admin, events).await;
    let m = t
        .ok(&admin, "billing.live_meter", json!({"period": "2026-10"}))
        .await;
    assert_eq!(dv(&m["total"]), d("0.01"));
    let s = t
        .ok(&admin, "billing.showback", json!({"period": "2026-10"}))
        .await;
    assert_eq!(dv(&s["total"]), d("0.01"), "{s}");
    assert_eq!(showback_sum(&s), d("0.01"), "{s}");

    // A realistic month: nested units, unattributed usage, four SKUs at sub-cent prices.
    let prices = [
        ("api.requests", d("0.0004")),
        ("storage.gb", d("0.023")),
        ("ai.tokens", d("0.000002")),
        ("archive.gb", d("0.0125")),
    ];
    let mut keys = vec![red, blue];
    for (name, parent) in [
        ("platform", None),
        ("data", Some("platform")),
        ("ml", Some("data")),
        ("web", Some("platform")),
        ("sales", None),
        ("sales-emea", Some("sales")),
    ] {
        keys.push(unit_with_key(&t, &admin, name, parent).await);
    }
    let names = [
        "red",
        "blue",
        "platform",
        "data",
        "ml",
        "web",
        "sales",
        "sales-emea",
    ];
    let mut exact: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut rng = Lcg(1234);
    let mut events = Vec::new();
    for i in 0..4000 {
        let (sku, price) = &prices[(rng.next() % 4) as usize];
        let who = (rng.next() % (keys.len() as u64 + 1)) as usize;
        let qty = Decimal::new((rng.next() % 3_000_000) as i64, 3);
        let mut e = ev(
            &format!("m{i}"),
            &format!(
                "2026-11-{:02}T{:02}:00:00Z",
                1 + rng.next() % 14,
                rng.next() % 24
            ),
            sku,
            json!(qty.to_string()),
        );
        let unit = if who < keys.len() {
            e["key_id"] = json!(keys[who]);
            names[who]
        } else {
            "(no business unit)"
        };
        *exact.entry(unit).or_default() += qty * price;
        events.push(e);
    }
    for batch in events.chunks(1000) {
        ingest(&t, &admin, batch.to_vec()).await;
    }
    let m = t.ok(&admin, "billing.live_meter", json!({})).await;
    let s = t.ok(&admin, "billing.showback", json!({"csv": true})).await;
    assert_eq!(dv(&s["total"]), dv(&m["total"]), "{s}");
    assert_eq!(showback_sum(&s), dv(&m["total"]), "{s}");
    // Roots plus unattributed usage are the whole too, and every unit is within a cent per SKU
    // of its exact cost.
    let roots: Decimal = s["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["parent_id"].is_null())
        .map(|u| dv(&u["total"]))
        .sum();
    assert_eq!(roots, dv(&m["total"]));
    for u in s["units"].as_array().unwrap() {
        let name = u["name"].as_str().unwrap();
        let exact = exact.get(name).copied().unwrap_or_default();
        let off = (dv(&u["direct"]) - exact).abs();
        assert!(off < d("0.04"), "{name}: {} against {exact}", u["direct"]);
    }
    // The CSV says the same.
    let mut r = csv::Reader::from_reader(s["csv"].as_str().unwrap().as_bytes());
    let direct = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "DirectCost")
        .unwrap();
    let csv_sum: Decimal = r.records().map(|x| d(&x.unwrap()[direct])).sum();
    assert_eq!(csv_sum, dv(&m["total"]));
}

#[tokio::test]
async fn soft_caps_raise_each_threshold_exactly_once_and_requests_still_succeed() {
    let (t, admin) = priced().await;
    t.ok(
        &admin,
        "billing.set_cap",
        json!({"sku": "api.requests", "cap": "100"}),
    )
    .await;
    let mut n = 0;
    let mut send = |q: i64| {
        n += 1;
        ev(
            &format!("c{n}"),
            "2026-11-10T10:00:00Z",
            "api.requests",
            json!(q),
        )
    };
    let batches = [
        vec![send(79)],
        vec![send(1)],
        vec![send(30)],
        vec![send(10), send(5)],
        vec![send(100)],
    ];
    let mut over = Vec::new();
    for b in batches {
        let r = ingest(&t, &admin, b).await;
        over.push(r["over_cap"].as_array().unwrap().len());
    }
    assert_eq!(over, vec![0, 0, 1, 1, 1]);
    let crossings: Vec<i64> = t
        .notes
        .all()
        .into_iter()
        .filter_map(|n| match n {
            Notification::SoftCap { threshold, sku, .. } if sku == "api.requests" => {
                Some(threshold)
            }
            _ => None,
        })
        .collect();
    assert_eq!(crossings, vec![80, 100, 120]);
    let m = t.ok(&admin, "billing.live_meter", json!({})).await;
    assert_eq!(meter_line(&m, "api.requests")["badge"], "soft-cap exceeded");
    assert_eq!(meter_line(&m, "api.requests")["cap"]["percent"], 225);
    let s = t.ok(&admin, "billing.summary", json!({})).await;
    assert_eq!(s["caps_exceeded"][0]["sku"], "api.requests");
}

#[tokio::test]
async fn closing_a_period_finalizes_an_immutable_invoice_readable_as_pdf_and_focus_csv() {
    let (t, admin) = priced().await;
    ingest(
        &t,
        &admin,
        vec![
            ev("o1", "2026-10-03T10:00:00Z", "api.requests", json!(250000)),
            ev("o2", "2026-10-09T10:00:00Z", "storage.gb", json!("1234.5")),
        ],
    )
    .await;
    let err = t
        .call(&admin, "billing.close_period", json!({"period": "2026-11"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has not ended"), "{err}");
    let inv = t
        .ok(&admin, "billing.close_period", json!({"period": "2026-10"}))
        .await;
    assert_eq!(inv["number"], "INV-000001");
    assert_eq!(inv["total"], "128.39");
    let err = t
        .call(&admin, "billing.close_period", json!({"period": "2026-10"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already closed"));
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 1).unwrap());
    let inv2 = t
        .ok(&admin, "billing.close_period", json!({"period": "2026-11"}))
        .await;
    assert_eq!(inv2["number"], "INV-000002");
    let list = t.ok(&admin, "billing.invoices", json!({})).await;
    assert_eq!(list["invoices"][0]["number"], "INV-000002", "newest first");
    // Immutable, even to someone with the database.
    let tamper = try_exec(t.core.store(), "UPDATE invoices SET total = '0.00'", &[]).await;
    assert!(tamper.is_err());

    let pdf = t
        .ok(
            &admin,
            "billing.invoice_pdf",
            json!({"invoice": "INV-000001"}),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pdf["base64"].as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    let doc = lopdf::Document::load_mem(&bytes).expect("a PDF a reader can open");
    let text = doc.extract_text(&[1]).unwrap();
    for needle in ["INV-000001", "acme", "api.requests", "storage.gb", "128.39"] {
        assert!(
            text.contains(needle),
            "{needle} missing from the PDF text: {text}"
        );
    }
    let csv = t
        .ok(
            &admin,
            "billing.invoice_csv",
            json!({"invoice": "INV-000001"}),
        )
        .await;
    let mut r = csv::Reader::from_reader(csv["text"].as_str().unwrap().as_bytes());
    let headers = r.headers().unwrap().clone();
    for col in [
        "BilledCost",
        "SkuId",
        "ConsumedQuantity",
        "SubAccountId",
        "ChargePeriodStart",
        "ChargePeriodEnd",
    ] {
        assert!(
            headers.iter().any(|h| h == col),
            "{col} missing: {headers:?}"
        );
    }
    let billed = headers.iter().position(|h| h == "BilledCost").unwrap();
    let sum: Decimal = r.records().map(|x| d(&x.unwrap()[billed])).sum();
    assert_eq!(sum, d("128.39"));
}

#[tokio::test]
async fn the_chart_is_a_png_and_the_summary_fits_a_phone() {
    let (t, admin) = priced().await;
    t.clock.advance(Duration::days(0));
    ingest(
        &t,
        &admin,
        vec![
            ev("a", "2026-10-05T10:00:00Z", "api.requests", json!(1000)),
            ev("b", "2026-11-05T10:00:00Z", "api.requests", json!(3000)),
            ev("c", "2026-11-06T10:00:00Z", "storage.gb", json!(10)),
        ],
    )
    .await;
    let chart = t.ok(&admin, "billing.chart", json!({})).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(chart["png_base64"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let s = t.ok(&admin, "billing.summary", json!({})).await;
    assert_eq!(dv(&s["period_to_date"]), d("1.43"));
    assert_eq!(dv(&s["previous_same_days"]), d("0.40"));
    assert_eq!(s["change_percent"], 258);
    let text = s["text"].as_str().unwrap();
    assert!(
        text.contains("EUR 1.43") && text.contains("api.requests"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
    // A billing-viewer can read all of it but cannot ingest.
    let (_, key) = t
        .persona_with_key(
            &admin,
            "fin",
            "human",
            &["billing-viewer"],
            &["billing:read"],
        )
        .await;
    let fin = t.auth(&key).await.unwrap();
    assert!(matches!(
        t.call(&fin, "billing.summary", json!({})).await.unwrap(),
        Outcome::Done { .. }
    ));
    assert!(matches!(
        t.call(&fin, "billing.ingest", json!({"events": []}))
            .await
            .unwrap(),
        Outcome::Denied { .. }
    ));
}

#[tokio::test]
async fn a_malformed_event_is_rejected_alone_and_a_lowered_cap_raises_what_it_skipped() {
    let (t, admin) = priced().await;
    let r = t.ok(&admin, "billing.ingest", json!({"events": [
        {"id": 5, "source": "sdk-meter", "time": "2026-11-10T10:00:00Z", "sku": "api.requests", "quantity": 1},
        {"id": "b", "source": "sdk-meter", "time": "2026-11-10T10:00:00Z", "sku": "api.requests", "quantity": true},
        null,
        {"id": "big", "source": "sdk-meter", "time": "2026-11-10T10:00:00Z", "sku": "api.requests", "quantity": "1e12"},
        {"id": "ok", "source": "sdk-meter", "time": "2026-11-10T10:00:00Z", "sku": "api.requests", "quantity": 850},
    ]})).await;
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["rejected"].as_array().unwrap().len(), 4, "{r}");
    t.ok(
        &admin,
        "billing.set_cap",
        json!({"sku": "api.requests", "cap": "1000"}),
    )
    .await;
    ingest(
        &t,
        &admin,
        vec![ev("n1", "2026-11-10T10:00:00Z", "api.requests", json!(10))],
    )
    .await;
    t.ok(
        &admin,
        "billing.set_cap",
        json!({"sku": "api.requests", "cap": "500"}),
    )
    .await;
    ingest(
        &t,
        &admin,
        vec![ev("n2", "2026-11-10T10:00:00Z", "api.requests", json!(1))],
    )
    .await;
    let crossings: Vec<(i64, String)> = t
        .notes
        .all()
        .into_iter()
        .filter_map(|n| match n {
            Notification::SoftCap {
                threshold, period, ..
            } => Some((threshold, period)),
            _ => None,
        })
        .collect();
    assert_eq!(
        crossings,
        vec![
            (80, "2026-11".into()),
            (100, "2026-11".into()),
            (120, "2026-11".into())
        ]
    );
}
