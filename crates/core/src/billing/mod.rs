//! Billing and metering (guide §1): the price book, usage ingestion with permanent idempotency,
//! rollups maintained at ingest, periods, soft caps, and the reads built on the rollups.
//!
//! Money is `Decimal`, never floating point; quantities are stored as integer millionths of a
//! unit; periods are calendar months in UTC (an event's time, whatever its offset, is placed by
//! its UTC instant); amounts are rounded to 2 decimals half away from zero per line.

pub mod chart;
pub mod document;

use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::SqliteConnection;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// Quantities are stored in millionths of a unit.
pub const QTY_SCALE: u32 = 6;
/// Events may be stamped at most this far in the future (clock skew of the reporter).
pub const MAX_FUTURE: Duration = Duration::minutes(5);
/// The largest quantity one event may report: keeps every period sum far inside i64 micro-units.
pub const MAX_EVENT_QUANTITY: i64 = 1_000_000_000;
/// Soft-cap thresholds that raise one notification each per period, in percent.
pub const CAP_THRESHOLDS: [i64; 3] = [80, 100, 120];

/// The start of the UTC calendar month containing `t`.
pub fn period_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

/// The start of the month after the one starting at `start`.
pub fn period_end(start: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if start.month() == 12 {
        (start.year() + 1, 1)
    } else {
        (start.year(), start.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(start)
}

/// The period before the one starting at `start`.
pub fn previous_period(start: DateTime<Utc>) -> DateTime<Utc> {
    period_start(start - Duration::days(1))
}

/// Parses `YYYY-MM` into the period's start.
pub fn parse_period(field: &str, text: &str) -> Result<DateTime<Utc>> {
    let bad = || {
        Error::bad_input(
            field,
            format!("`{text}` is not a period; write YYYY-MM, e.g. 2026-11"),
        )
    };
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(2000..=2200).contains(&y) {
        return Err(bad());
    }
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .ok_or_else(bad)
}

/// `YYYY-MM` of a period start.
pub fn period_label(start: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", start.year(), start.month())
}

/// A quantity in millionths, from a decimal; `None` if it has more than 6 decimals or overflows.
pub fn to_micro(q: Decimal) -> Option<i64> {
    let scaled = q.checked_mul(Decimal::from(1_000_000))?;
    if scaled.fract() != Decimal::ZERO {
        return None;
    }
    i64::try_from(scaled).ok()
}

/// The decimal quantity of a stored micro-quantity.
pub fn from_micro(m: i64) -> Decimal {
    Decimal::new(m, QTY_SCALE).normalize()
}

/// Quantity × unit price, rounded to 2 decimals half away from zero.
pub fn amount(qty_micro: i64, unit_price: Decimal) -> Decimal {
    (Decimal::new(qty_micro, QTY_SCALE) * unit_price)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// One SKU of the price book.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Price {
    /// SKU id, e.g. `api.requests`.
    pub sku: String,
    /// What it is.
    pub description: String,
    /// Unit of quantity, e.g. `request` or `GB-hour`.
    pub unit: String,
    /// Price per unit in major currency units (may be sub-cent).
    #[schemars(with = "String")]
    pub unit_price: Decimal,
    /// Soft cap on the period's quantity, if Finance set one.
    #[schemars(with = "Option<String>")]
    pub cap: Option<Decimal>,
}

/// A tenant's plan: currency and price book.
#[derive(Clone, Debug)]
pub struct PriceBook {
    /// ISO 4217 currency.
    pub currency: String,
    /// Prices by SKU.
    pub prices: HashMap<String, Price>,
}

/// Loads a tenant's price book (empty, in USD, when none was set).
pub async fn price_book(conn: &mut SqliteConnection, tenant: &TenantId) -> Result<PriceBook> {
    let currency: Option<String> =
        sqlx::query_scalar("SELECT currency FROM billing_plans WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let rows: Vec<(String, String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT sku, description, unit, unit_price, cap_micro FROM billing_prices WHERE tenant_id = ? ORDER BY sku",
    )
    .bind(tenant.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut prices = HashMap::new();
    for (sku, description, unit, price, cap) in rows {
        let unit_price = Decimal::from_str(&price)
            .map_err(|_| Error::Internal(format!("corrupt price of {sku}")))?;
        prices.insert(
            sku.clone(),
            Price {
                sku,
                description,
                unit,
                unit_price,
                cap: cap.map(from_micro),
            },
        );
    }
    Ok(PriceBook {
        currency: currency.unwrap_or_else(|| "USD".into()),
        prices,
    })
}

/// A quantity as reporters send it: a JSON number or a decimal string.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(
    with = "serde_json::Value",
    description = "A non-negative number, or a decimal string such as \"0.25\"; at most 6 decimals"
)]
pub struct Quantity(pub std::result::Result<Decimal, String>);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Quantity, E> {
                Ok(Quantity(Ok(Decimal::from(v))))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Quantity, E> {
                Ok(Quantity(Ok(Decimal::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Quantity, E> {
                // The shortest decimal that round-trips: what the reporter wrote.
                Ok(Quantity(Decimal::from_str(&v.to_string()).map_err(|_| {
                    format!("quantity {v} is not a finite decimal")
                })))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Quantity, E> {
                Ok(Quantity(Decimal::from_str(v.trim()).map_err(|_| {
                    format!("quantity `{v}` is not a decimal number")
                })))
            }
            fn visit_unit<E>(self) -> std::result::Result<Quantity, E> {
                Ok(Quantity(Err("quantity is missing".into())))
            }
        }
        d.deserialize_any(V)
    }
}

/// One usage event of the metering feed. Fields are checked one event at a time, so a bad event
/// is rejected with its reason while the rest of the batch lands.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct UsageEvent {
    /// The event id, unique within its source (required): a re-sent event never counts twice.
    #[serde(default)]
    pub id: Option<String>,
    /// The reporting source, e.g. `sdk-meter` (required).
    #[serde(default)]
    pub source: Option<String>,
    /// When the usage happened, RFC 3339 with any offset (required).
    #[serde(default)]
    pub time: Option<String>,
    /// The SKU, which must be in the price book (required).
    #[serde(default)]
    pub sku: Option<String>,
    /// How much, in the SKU's unit (required, not negative).
    #[serde(default)]
    pub quantity: Option<Quantity>,
    /// The API key that drove it (id), if known; its persona and BU are filled in from it.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The persona that drove it (id), if no key is given.
    #[serde(default)]
    pub persona_id: Option<String>,
    /// The business unit to charge (id); defaults to the persona's.
    #[serde(default)]
    pub bu_id: Option<String>,
}

/// Why one event was not accepted.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Rejection {
    /// Its position in the batch.
    pub index: u32,
    /// Its id, if it had one.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
}

/// A soft cap's state for one SKU.
#[derive(Clone, Debug, Serialize, JsonSchema, PartialEq)]
pub struct CapState {
    /// The SKU.
    pub sku: String,
    /// The cap.
    #[schemars(with = "String")]
    pub cap: Decimal,
    /// The period's quantity so far.
    #[schemars(with = "String")]
    pub quantity: Decimal,
    /// Quantity as a percentage of the cap (whole percent).
    pub percent: i64,
    /// `ok`, `warning` (≥ 80 %) or `exceeded` (≥ 100 %: the "soft-cap exceeded" badge).
    pub state: String,
}

/// The state of a cap at `qty_micro`.
pub fn cap_state(sku: &str, cap: Decimal, qty_micro: i64) -> CapState {
    let qty = from_micro(qty_micro);
    let percent = if cap.is_zero() {
        if qty_micro > 0 { 100_000 } else { 0 }
    } else {
        i64::try_from((qty * Decimal::from(100) / cap).floor()).unwrap_or(i64::MAX)
    };
    let state = if percent >= 100 {
        "exceeded"
    } else if percent >= 80 {
        "warning"
    } else {
        "ok"
    };
    CapState {
        sku: sku.to_owned(),
        cap,
        quantity: qty,
        percent,
        state: state.into(),
    }
}

/// What an ingestion did.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct IngestReport {
    /// Events counted now.
    pub accepted: u32,
    /// Events already counted before (same source and id): ignored.
    pub duplicates: u32,
    /// Events refused, each with its reason.
    pub rejected: Vec<Rejection>,
    /// SKUs of this batch that are at or over their soft cap: requests still succeed.
    pub over_cap: Vec<CapState>,
    /// Thresholds (80/100/120 %) reached for the first time in their period.
    #[serde(skip)]
    pub crossed: Vec<Crossing>,
}

/// A soft-cap threshold reached for the first time in a period.
#[derive(Clone, Debug)]
pub struct Crossing {
    /// The SKU.
    pub sku: String,
    /// 80, 100 or 120.
    pub threshold: i64,
    /// The period it happened in, `YYYY-MM`.
    pub period: String,
    /// The cap's state after the batch.
    pub state: CapState,
}

struct Row {
    source: String,
    id: String,
    ts: i64,
    period: i64,
    day: i64,
    sku: String,
    qty: i64,
    key: String,
    persona: String,
    bu: String,
}

/// Who can drive usage in a tenant: key → persona, persona → BU, and the BUs.
struct Drivers {
    keys: HashMap<String, String>,
    personas: HashMap<String, String>,
    bus: HashSet<String>,
}

async fn drivers(conn: &mut SqliteConnection, tenant: &TenantId) -> Result<Drivers> {
    let keys: Vec<(String, String)> =
        sqlx::query_as("SELECT id, persona_id FROM api_keys WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let personas: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, bu_id FROM personas WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let bus: Vec<String> = sqlx::query_scalar("SELECT id FROM business_units WHERE tenant_id = ?")
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await?;
    Ok(Drivers {
        keys: keys.into_iter().collect(),
        personas: personas
            .into_iter()
            .map(|(p, b)| (p, b.unwrap_or_default()))
            .collect(),
        bus: bus.into_iter().collect(),
    })
}

fn check_event(
    ev: &UsageEvent,
    book: &PriceBook,
    drivers: &Drivers,
    closed: &HashSet<i64>,
    now: DateTime<Utc>,
) -> std::result::Result<Row, String> {
    let text = |v: &Option<String>, name: &str| -> std::result::Result<String, String> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() && s.len() <= 128 => Ok(s.to_owned()),
            Some(s) if s.len() > 128 => Err(format!("{name} is longer than 128 characters")),
            _ => Err(format!("{name} is missing")),
        }
    };
    let id = text(&ev.id, "id")?;
    let source = text(&ev.source, "source")?;
    let sku = text(&ev.sku, "sku")?;
    if !book.prices.contains_key(&sku) {
        return Err(format!(
            "unknown SKU `{sku}`: it is not in the tenant's price book (billing.set_prices)"
        ));
    }
    let time = text(&ev.time, "time")?;
    let ts = DateTime::parse_from_rfc3339(&time)
        .map_err(|_| format!("time `{time}` is not RFC 3339 (e.g. 2026-11-28T09:30:00Z)"))?
        .with_timezone(&Utc);
    if ts > now + MAX_FUTURE {
        return Err(format!("time {time} is in the future"));
    }
    let period = to_millis(period_start(ts));
    if closed.contains(&period) {
        return Err(format!(
            "time {time} falls in {}, a closed period",
            period_label(period_start(ts))
        ));
    }
    let qty = match &ev.quantity {
        None => return Err("quantity is missing".into()),
        Some(Quantity(Err(e))) => return Err(e.clone()),
        Some(Quantity(Ok(q))) => *q,
    };
    if qty.is_sign_negative() && !qty.is_zero() {
        return Err(format!("quantity {qty} is negative"));
    }
    if qty > Decimal::from(MAX_EVENT_QUANTITY) {
        return Err(format!(
            "quantity {qty} is larger than one event may report ({MAX_EVENT_QUANTITY}); split it"
        ));
    }
    let qty = to_micro(qty)
        .ok_or_else(|| format!("quantity {qty} has more than 6 decimals or is too large"))?;
    let mut key = String::new();
    let mut persona = ev.persona_id.clone().unwrap_or_default();
    if let Some(k) = ev.key_id.as_deref().filter(|k| !k.is_empty()) {
        let Some(p) = drivers.keys.get(k) else {
            return Err(format!("key_id `{k}` is not a key of this tenant"));
        };
        if !persona.is_empty() && persona != *p {
            return Err(format!(
                "key_id `{k}` belongs to another persona than persona_id"
            ));
        }
        key = k.to_owned();
        persona = p.clone();
    }
    let mut bu = String::new();
    if !persona.is_empty() {
        let Some(b) = drivers.personas.get(&persona) else {
            return Err(format!(
                "persona_id `{persona}` is not a persona of this tenant"
            ));
        };
        bu = b.clone();
    }
    if let Some(b) = ev.bu_id.as_deref().filter(|b| !b.is_empty()) {
        if !drivers.bus.contains(b) {
            return Err(format!("bu_id `{b}` is not a business unit of this tenant"));
        }
        bu = b.to_owned();
    }
    let day = to_millis(ts) - to_millis(ts).rem_euclid(86_400_000);
    Ok(Row {
        source,
        id,
        ts: to_millis(ts),
        period,
        day,
        sku,
        qty,
        key,
        persona,
        bu,
    })
}

/// Periods that are closed (invoiced).
pub async fn closed_periods(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
) -> Result<HashSet<i64>> {
    let v: Vec<i64> = sqlx::query_scalar("SELECT period_start FROM invoices WHERE tenant_id = ?")
        .bind(tenant.as_str())
        .fetch_all(conn)
        .await?;
    Ok(v.into_iter().collect())
}

/// The period's quantity of one SKU.
pub async fn period_qty(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    period: i64,
    sku: &str,
) -> Result<i64> {
    let q: Option<i64> = sqlx::query_scalar(
        "SELECT SUM(qty_micro) FROM usage_rollups WHERE tenant_id = ? AND period_start = ? AND sku = ?",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(sku)
    .fetch_one(conn)
    .await?;
    Ok(q.unwrap_or(0))
}

/// Rows per multi-row INSERT (11 parameters each; SQLite allows 32,766 per statement).
const INSERT_CHUNK: usize = 500;
/// Pairs per duplicate lookup.
const LOOKUP_CHUNK: usize = 1000;
/// Rollup rows per upsert.
const CHUNK: usize = 500;

/// Ingests a batch inside the caller's transaction: validates each event, inserts the new ones
/// (a (source, id) seen before is a duplicate, forever), adds them to the rollups, and checks
/// the soft caps of the SKUs it touched.
pub async fn ingest(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    events: &[serde_json::Value],
    now: DateTime<Utc>,
) -> Result<IngestReport> {
    let book = price_book(conn, tenant).await?;
    let drivers = drivers(conn, tenant).await?;
    let closed = closed_periods(conn, tenant).await?;
    let mut report = IngestReport::default();
    let mut rows = Vec::with_capacity(events.len());
    for (i, value) in events.iter().enumerate() {
        // Each event is parsed on its own: a malformed one is rejected, the rest still land.
        let parsed = UsageEvent::deserialize(value).map_err(|e| format!("malformed event: {e}"));
        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        match parsed.and_then(|ev| check_event(&ev, &book, &drivers, &closed, now)) {
            Ok(r) => rows.push(r),
            Err(reason) => report.rejected.push(Rejection {
                index: i as u32,
                id,
                reason,
            }),
        }
    }
    // Which (source, id) pairs were counted before? Asked in bulk, inside the ingesting
    // transaction (which holds the write lock, so the answer cannot go stale before the insert).
    let mut existing: HashSet<(String, String)> = HashSet::new();
    for chunk in rows.chunks(LOOKUP_CHUNK) {
        let mut sql = String::from(
            "SELECT source, event_id FROM usage_events WHERE tenant_id = ? AND (source, event_id) IN (VALUES ",
        );
        sql.push_str(&vec!["(?, ?)"; chunk.len()].join(", "));
        sql.push(')');
        let mut q =
            sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str());
        for r in chunk {
            q = q.bind(&r.source).bind(&r.id);
        }
        existing.extend(q.fetch_all(&mut *conn).await?);
    }
    // Keep the first occurrence of each new pair; everything else is a duplicate.
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(rows.len());
    let mut fresh: Vec<&Row> = Vec::with_capacity(rows.len());
    for r in &rows {
        let first = seen.insert((r.source.as_str(), r.id.as_str()));
        let old = !existing.is_empty() && existing.contains(&(r.source.clone(), r.id.clone()));
        if first && !old {
            fresh.push(r);
        } else {
            report.duplicates += 1;
        }
    }
    let ingested_at = to_millis(now);
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO usage_events (tenant_id, source, event_id, ts, period_start, sku, qty_micro, key_id, persona_id, bu_id, ingested_at) VALUES ",
        );
        sql.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(&r.source)
                .bind(&r.id)
                .bind(r.ts)
                .bind(r.period)
                .bind(&r.sku)
                .bind(r.qty)
                .bind(&r.key)
                .bind(&r.persona)
                .bind(&r.bu)
                .bind(ingested_at);
        }
        q.execute(&mut *conn).await?;
    }
    // Roll up what is new.
    type Key<'a> = (i64, i64, &'a str, &'a str, &'a str, &'a str);
    let mut sums: HashMap<Key<'_>, (i64, i64)> = HashMap::new();
    let mut touched: HashSet<(i64, &str)> = HashSet::new();
    for r in &fresh {
        report.accepted += 1;
        let e = sums
            .entry((r.period, r.day, &r.sku, &r.key, &r.persona, &r.bu))
            .or_default();
        e.0 += r.qty;
        e.1 += 1;
        touched.insert((r.period, r.sku.as_str()));
    }
    let sums: Vec<_> = sums.into_iter().collect();
    for chunk in sums.chunks(CHUNK) {
        let mut sql = String::from(
            "INSERT INTO usage_rollups (tenant_id, period_start, day, sku, key_id, persona_id, bu_id, qty_micro, events) VALUES ",
        );
        sql.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "));
        sql.push_str(
            " ON CONFLICT (tenant_id, period_start, sku, day, key_id, persona_id, bu_id) \
             DO UPDATE SET qty_micro = qty_micro + excluded.qty_micro, events = events + excluded.events",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((period, day, sku, key, persona, bu), (qty, n)) in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(*period)
                .bind(*day)
                .bind(*sku)
                .bind(*key)
                .bind(*persona)
                .bind(*bu)
                .bind(*qty)
                .bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    // Soft caps of the SKUs this batch touched, in the current period.
    let current = to_millis(period_start(now));
    for (period, sku) in touched {
        let Some(cap) = book.prices.get(sku).and_then(|p| p.cap) else {
            continue;
        };
        let after = period_qty(conn, tenant, period, sku).await?;
        let state = cap_state(sku, cap, after);
        // Every threshold reached and not yet raised this period is raised now — once — even if
        // a lowered cap jumps several at a time.
        for threshold in CAP_THRESHOLDS {
            if state.percent >= threshold {
                let new = sqlx::query(
                    "INSERT OR IGNORE INTO billing_cap_alerts (tenant_id, period_start, sku, threshold, raised_at) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(tenant.as_str())
                .bind(period)
                .bind(sku)
                .bind(threshold)
                .bind(ingested_at)
                .execute(&mut *conn)
                .await?;
                if new.rows_affected() == 1 {
                    report.crossed.push(Crossing {
                        sku: sku.to_owned(),
                        threshold,
                        period: period_label(from_millis(period)),
                        state: state.clone(),
                    });
                }
            }
        }
        if period == current && state.percent >= 100 {
            report.over_cap.push(state);
        }
    }
    report.over_cap.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(report)
}

/// Sums of a period by one grouping column of the rollups.
pub async fn sums_by(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    period: i64,
    column: &'static str,
    sku: Option<&str>,
) -> Result<Vec<(String, String, i64, i64)>> {
    let sql = format!(
        "SELECT sku, {column}, SUM(qty_micro), SUM(events) FROM usage_rollups \
         WHERE tenant_id = ? AND period_start = ? AND (? IS NULL OR sku = ?) GROUP BY sku, {column}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(period)
        .bind(sku)
        .bind(sku)
        .fetch_all(conn)
        .await?)
}

/// A period's quantity per SKU.
pub async fn sku_totals(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    period: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT sku, SUM(qty_micro) FROM usage_rollups WHERE tenant_id = ? AND period_start = ? GROUP BY sku ORDER BY sku",
    )
    .bind(tenant.as_str())
    .bind(period)
    .fetch_all(conn)
    .await?)
}

/// A period's quantity per SKU up to (excluding) `until`, by whole days.
pub async fn sku_totals_until(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    period: i64,
    until: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT sku, SUM(qty_micro) FROM usage_rollups WHERE tenant_id = ? AND period_start = ? AND day < ? GROUP BY sku",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(until)
    .fetch_all(conn)
    .await?)
}

/// Renders a timestamp of the period API.
pub fn ts(ms: i64) -> String {
    crate::ops::rfc3339(from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_months_whatever_the_offset() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T19:00:00-05:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(period_label(period_start(t)), "2026-12");
        let t = DateTime::parse_from_rfc3339("2026-11-30T23:59:59.999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(period_label(period_start(t)), "2026-11");
        let dec = parse_period("p", "2026-12").unwrap();
        assert_eq!(period_label(period_end(dec)), "2027-01");
        assert_eq!(period_label(previous_period(dec)), "2026-11");
        assert!(parse_period("p", "2026-13").is_err());
        assert!(parse_period("p", "nov").is_err());
    }

    #[test]
    fn money_is_decimal_and_rounds_half_away_from_zero() {
        let q = to_micro(Decimal::from_str("3").unwrap()).unwrap();
        assert_eq!(
            amount(q, Decimal::from_str("0.005").unwrap()),
            Decimal::from_str("0.02").unwrap()
        );
        assert_eq!(
            amount(
                to_micro(Decimal::from_str("0.1").unwrap()).unwrap(),
                Decimal::from_str("0.2").unwrap()
            ),
            Decimal::from_str("0.02").unwrap()
        );
        assert!(to_micro(Decimal::from_str("0.0000001").unwrap()).is_none());
        assert_eq!(from_micro(1_500_000), Decimal::from_str("1.5").unwrap());
    }

    #[test]
    fn cap_states_follow_the_thresholds() {
        let cap = Decimal::from(100);
        assert_eq!(
            cap_state("s", cap, to_micro(Decimal::from(79)).unwrap()).state,
            "ok"
        );
        assert_eq!(
            cap_state("s", cap, to_micro(Decimal::from(80)).unwrap()).state,
            "warning"
        );
        assert_eq!(
            cap_state("s", cap, to_micro(Decimal::from(100)).unwrap()).state,
            "exceeded"
        );
        assert_eq!(
            cap_state("s", cap, to_micro(Decimal::from(121)).unwrap()).percent,
            121
        );
    }
}
