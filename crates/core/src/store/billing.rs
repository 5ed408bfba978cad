//! Billing: the plan (currency) and price book with soft caps, the soft-cap thresholds already
//! raised, usage attributions, raw usage events (idempotent by source and id, forever), the
//! rollups every billing read uses, and immutable invoices. Money is decimal text, quantities
//! integer millionths, times integer milliseconds: nothing here is floating point.
//!
//! Ingestion writes in multi-row statements (a few fixed shapes, see [`statements`]), the one
//! place where statement text is built: only from constants, with numbered placeholders.

use super::{Engine, Tx, on};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A text shared for the length of one ingestion (SKUs, key, persona and BU ids recur on every
/// event): binding it to a statement costs a reference count, not a copy.
pub(crate) type Text = Arc<str>;

// ---------------------------------------------------------------------------------------------
// Plan and price book.

/// The tenant's currency, if one was set.
pub(crate) async fn currency(tx: &mut Tx, tenant: &TenantId) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT currency FROM billing_plans WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(c)
    .await)?)
}

/// Sets the tenant's currency.
pub(crate) async fn set_currency(
    tx: &mut Tx,
    tenant: &TenantId,
    currency: &str,
    now: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO billing_plans (tenant_id, currency, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET currency = excluded.currency, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(currency)
    .bind(now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// One SKU of the price book as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct PriceRow {
    pub sku: String,
    pub description: String,
    pub unit: String,
    /// Decimal text, major currency units per unit.
    pub unit_price: String,
    /// Soft cap on a period's quantity, in millionths.
    pub cap_micro: Option<i64>,
}

/// The price book, by SKU.
pub(crate) async fn prices(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<PriceRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT sku, description, unit, unit_price, cap_micro FROM billing_prices \
         WHERE tenant_id = $1 ORDER BY sku",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// A price to add or replace (its cap stays as it is).
pub(crate) struct NewPrice<'a> {
    pub sku: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    /// Decimal text.
    pub unit_price: &'a str,
}

/// Adds a SKU to the price book or replaces its price, unit and description.
pub(crate) async fn put_price(
    tx: &mut Tx,
    tenant: &TenantId,
    p: &NewPrice<'_>,
    now: i64,
) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO billing_prices (tenant_id, sku, description, unit, unit_price, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, sku) DO UPDATE SET description = excluded.description, \
         unit = excluded.unit, unit_price = excluded.unit_price, updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(p.sku)
    .bind(p.description)
    .bind(p.unit)
    .bind(p.unit_price)
    .bind(now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Sets or removes (`None`) a SKU's soft cap; false when the SKU is not in the price book.
pub(crate) async fn set_cap(
    tx: &mut Tx,
    tenant: &TenantId,
    sku: &str,
    cap_micro: Option<i64>,
    now: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "UPDATE billing_prices SET cap_micro = $1, updated_at = $2 WHERE tenant_id = $3 AND sku = $4",
    )
    .bind(cap_micro)
    .bind(now)
    .bind(tenant.as_str())
    .bind(sku)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records that a soft-cap threshold was reached in a period; true the first time only.
pub(crate) async fn raise_cap_alert(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
    sku: &str,
    threshold: i64,
    at: i64,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO billing_cap_alerts (tenant_id, period_start, sku, threshold, raised_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, period_start, sku, threshold) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(sku)
    .bind(threshold)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// What billing reads of other kinds of data: who drives usage, their names, the BU tree, the
// tenant's name. Read-only and scoped to the tenant; they move to those kinds' repositories when
// those exist.

/// Every API key of the tenant with its persona: (key id, persona id).
pub(crate) async fn key_personas(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, persona_id FROM api_keys WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// Every persona of the tenant with its business unit: (persona id, BU id).
pub(crate) async fn persona_units(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<Vec<(String, Option<String>)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, bu_id FROM personas WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// A business unit of the tenant.
#[derive(sqlx::FromRow)]
pub(crate) struct UnitRow {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
}

/// Every business unit of the tenant, by name.
pub(crate) async fn units(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<UnitRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name, parent_id FROM business_units WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// The names of everything that can drive usage: (key id, key name) and (persona id, handle).
pub(crate) async fn driver_names(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<(String, String)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, name FROM api_keys WHERE tenant_id = $1 \
         UNION ALL SELECT id, handle FROM personas WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// The tenant's name, for its invoices.
pub(crate) async fn tenant_name(tx: &mut Tx, tenant: &TenantId) -> Result<String> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(tenant.as_str())
        .fetch_one(c)
        .await)?,
    )
}

// ---------------------------------------------------------------------------------------------
// Multi-row statements.

/// Most rows in one multi-row statement. Row counts are split into this many, then powers of
/// two, so that a handful of statement shapes is prepared once per connection and reused,
/// whatever the batch sizes.
const MAX_ROWS: usize = 1024;

/// `n` rows as statement sizes: `MAX_ROWS` at a time, then the remainder's powers of two.
fn statement_sizes(n: usize) -> impl Iterator<Item = usize> {
    let full = n / MAX_ROWS;
    let rest = n % MAX_ROWS;
    std::iter::repeat_n(MAX_ROWS, full).chain(
        (0..usize::BITS)
            .rev()
            .map(|b| 1usize << b)
            .filter(move |bit| rest & bit != 0),
    )
}

/// Splits `items` into consecutive slices of [`statement_sizes`].
fn statements<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut at = 0;
    statement_sizes(items.len()).map(move |n| {
        let s = &items[at..at + n];
        at += n;
        s
    })
}

/// The text of a multi-row statement, built only from constants: every value is bound. Its
/// placeholders are numbered `$1, $2, …` in the order the values are bound — except on SQLite,
/// where they are all written `?` (bound in the same order, so the statement means the same).
///
/// Why SQLite differs: sqlx binds each SQLite parameter after asking SQLite for its name, and
/// SQLite finds a parameter's name by a linear search of the statement's names. A statement of
/// 1,024 rows of 7 named parameters thus spends ~n²/2 ≈ 26 million steps binding, which made
/// ingestion ten times slower; anonymous `?` parameters have no name to look for. Statements
/// with a few parameters keep `$N` on both engines.
struct MultiRow {
    text: String,
    /// Placeholders written so far.
    params: usize,
    anonymous: bool,
}

impl MultiRow {
    fn new(tx: &Tx, capacity: usize) -> Self {
        Self {
            text: String::with_capacity(capacity),
            params: 0,
            anonymous: tx.engine() == Engine::Sqlite,
        }
    }

    /// Appends constant text.
    fn sql(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder.
    fn param(mut self) -> Self {
        self.params += 1;
        if self.anonymous {
            self.text.push('?');
        } else {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(self.text, "${}", self.params);
        }
        self
    }

    /// Appends `rows` groups of `width` placeholders: `(…, …), (…, …)`.
    fn rows(mut self, rows: usize, width: usize) -> Self {
        if self.anonymous {
            // Every group reads the same: written once, copied per row.
            let mut group = String::with_capacity(2 + width * 3);
            group.push('(');
            for j in 0..width {
                group.push_str(if j == 0 { "?" } else { ", ?" });
            }
            group.push(')');
            self.text.reserve(rows * (group.len() + 2));
            for i in 0..rows {
                if i > 0 {
                    self.text.push_str(", ");
                }
                self.text.push_str(&group);
            }
            self.params += rows * width;
            return self;
        }
        for i in 0..rows {
            self = self.sql(if i == 0 { "(" } else { ", (" });
            for j in 0..width {
                if j > 0 {
                    self = self.sql(", ");
                }
                self = self.param();
            }
            self = self.sql(")");
        }
        self
    }

    fn done(self) -> String {
        self.text
    }
}

// ---------------------------------------------------------------------------------------------
// Usage attributions.

/// What usage is charged to: SKU, key, persona and BU ids (`""` for none), in that order.
pub(crate) type Attribution = [Text; 4];

/// How often numbering new attributions may find its numbers taken by a concurrent writer
/// before giving up (never more than once under SQLite's write lock).
const NUMBERING_ROUNDS: usize = 8;

/// The per-tenant numbers of `wanted` (distinct attributions) in `usage_attributions`, in the
/// same order, numbering the ones the tenant was never charged to before.
pub(crate) async fn number_attributions(
    tx: &mut Tx,
    tenant: &TenantId,
    wanted: &[Attribution],
) -> Result<Vec<i64>> {
    let tenant: Text = Arc::from(tenant.as_str());
    let mut ids = vec![0i64; wanted.len()];
    let position: HashMap<[&str; 4], usize> = wanted
        .iter()
        .enumerate()
        .map(|(i, a)| (a.each_ref().map(|t| &**t), i))
        .collect();
    let all: Vec<usize> = (0..wanted.len()).collect();
    find_attributions(tx, &tenant, wanted, &all, &position, &mut ids).await?;
    for _ in 0..NUMBERING_ROUNDS {
        let missing: Vec<usize> = (0..wanted.len()).filter(|&i| ids[i] == 0).collect();
        if missing.is_empty() {
            return Ok(ids);
        }
        let next: i64 = on!(tx, c => sqlx::query_scalar(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM usage_attributions WHERE tenant_id = $1",
        )
        .bind(tenant.clone())
        .fetch_one(c)
        .await)?;
        // New numbers from `next` on; a number or an attribution another writer took meanwhile
        // is skipped (nothing fails), and looked up or numbered again in the next round.
        let numbered: HashMap<i64, usize> = missing
            .iter()
            .enumerate()
            .map(|(k, &i)| (next + k as i64, i))
            .collect();
        let mut at = 0;
        for chunk in statements(&missing) {
            let first = next + at as i64;
            at += chunk.len();
            let sql = MultiRow::new(tx, 128 + chunk.len() * 40)
                .sql(
                    "INSERT INTO usage_attributions \
                     (tenant_id, id, sku, key_id, persona_id, bu_id) VALUES ",
                )
                .rows(chunk.len(), 6)
                .sql(" ON CONFLICT DO NOTHING RETURNING id")
                .done();
            let landed: Vec<i64> = on!(tx, c => {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                for (k, &i) in chunk.iter().enumerate() {
                    q = q.bind(tenant.clone()).bind(first + k as i64);
                    for t in &wanted[i] {
                        q = q.bind(t.clone());
                    }
                }
                q.fetch_all(c).await
            })?;
            for id in landed {
                if let Some(&i) = numbered.get(&id) {
                    ids[i] = id;
                }
            }
        }
        let skipped: Vec<usize> = missing.into_iter().filter(|&i| ids[i] == 0).collect();
        if !skipped.is_empty() {
            find_attributions(tx, &tenant, wanted, &skipped, &position, &mut ids).await?;
        }
    }
    if ids.iter().all(|&id| id != 0) {
        return Ok(ids);
    }
    Err(Error::Conflict(
        "usage attributions kept changing under concurrent ingestion; send the batch again".into(),
    ))
}

/// Fills in `ids` of the attributions at `which` that the tenant already has.
async fn find_attributions(
    tx: &mut Tx,
    tenant: &Text,
    wanted: &[Attribution],
    which: &[usize],
    position: &HashMap<[&str; 4], usize>,
    ids: &mut [i64],
) -> Result<()> {
    for chunk in statements(which) {
        let sql = MultiRow::new(tx, 128 + chunk.len() * 30)
            .sql("SELECT id, sku, key_id, persona_id, bu_id FROM usage_attributions WHERE tenant_id = ")
            .param()
            .sql(" AND (sku, key_id, persona_id, bu_id) IN (VALUES ")
            .rows(chunk.len(), 4)
            .sql(")")
            .done();
        let found: Vec<(i64, String, String, String, String)> = on!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.clone());
            for &i in chunk {
                for t in &wanted[i] {
                    q = q.bind(t.clone());
                }
            }
            q.fetch_all(c).await
        })?;
        for (id, sku, key, persona, bu) in found {
            if let Some(&i) = position.get(&[sku.as_str(), &key, &persona, &bu]) {
                ids[i] = id;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw usage events.

/// One usage event to record.
pub(crate) struct NewEvent {
    pub source: Text,
    pub id: Text,
    /// When it happened, ms.
    pub ts: i64,
    pub qty_micro: i64,
    /// Its number in `usage_attributions`.
    pub attribution: i64,
}

/// Records the events whose (source, id) the tenant never recorded before and tells, for each
/// event in order, whether it was new (recorded now) or a duplicate (left as it was). The
/// events' (source, id) pairs should be distinct (a repeated pair is new at most once).
///
/// Nothing fails on a duplicate (`ON CONFLICT DO NOTHING`), so the transaction stays usable on
/// every engine. Usually every event is new: the batch is inserted, inside a savepoint, by
/// statements that return nothing, and when each records as many rows as it was given, every
/// event was new. When one records fewer, the batch is undone to the savepoint and inserted
/// again a statement at a time, each statement's pairs looked up first and only the others
/// inserted. Returning the recorded rows instead would be exact at once, but streaming a row
/// back per event costs more than the insert itself on SQLite (and a savepoint per statement
/// costs 5 % of the throughput); returning is left for the case where another writer records
/// some of the pairs between the look-up and the insert (possible only on an engine without one
/// write lock).
pub(crate) async fn record_new_events(
    tx: &mut Tx,
    tenant: &TenantId,
    events: &[&NewEvent],
    ingested_at: i64,
) -> Result<Vec<bool>> {
    let tenant: Text = Arc::from(tenant.as_str());
    if insert_all_new(tx, &tenant, events, ingested_at).await? {
        return Ok(vec![true; events.len()]);
    }
    let mut new = Vec::with_capacity(events.len());
    for chunk in statements(events) {
        let before = recorded_before(tx, &tenant, chunk).await?;
        let mut is_new: Vec<bool> = chunk
            .iter()
            .map(|e| !before.contains(&(e.source.to_string(), e.id.to_string())))
            .collect();
        let fresh: Vec<&NewEvent> = chunk
            .iter()
            .zip(&is_new)
            .filter_map(|(e, n)| n.then_some(*e))
            .collect();
        if !insert_all_new(tx, &tenant, &fresh, ingested_at).await? {
            let mut recorded = insert_returning(tx, &tenant, &fresh, ingested_at).await?;
            // Each pair recorded now is one event; taking it out keeps a repeated pair a
            // duplicate.
            is_new = chunk
                .iter()
                .map(|e| recorded.remove(&(e.source.to_string(), e.id.to_string())))
                .collect();
        }
        new.extend(is_new);
    }
    Ok(new)
}

/// `INSERT INTO usage_events … ON CONFLICT DO NOTHING` text for `rows` rows, then `tail`.
fn insert_events_sql(tx: &Tx, rows: usize, tail: &str) -> String {
    MultiRow::new(tx, 200 + rows * 50)
        .sql(
            "INSERT INTO usage_events \
             (tenant_id, source, event_id, ts, qty_micro, attribution, ingested_at) VALUES ",
        )
        .rows(rows, 7)
        .sql(" ON CONFLICT (tenant_id, source, event_id) DO NOTHING")
        .sql(tail)
        .done()
}

/// Inserts `events` if every one of them is new; otherwise leaves everything as it was (and
/// stops at the first statement that shows it).
async fn insert_all_new(
    tx: &mut Tx,
    tenant: &Text,
    events: &[&NewEvent],
    ingested_at: i64,
) -> Result<bool> {
    if events.is_empty() {
        return Ok(true);
    }
    tx.savepoint("usage_events").await?;
    let mut all = true;
    if tx.engine() == Engine::Postgres {
        all = insert_unnested(tx, tenant, events, ingested_at).await? == events.len() as u64;
    } else {
        for chunk in statements(events) {
            let sql = insert_events_sql(tx, chunk.len(), "");
            let recorded = on!(tx, c => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for e in chunk {
                    q = q
                        .bind(tenant.clone())
                        .bind(e.source.clone())
                        .bind(e.id.clone())
                        .bind(e.ts)
                        .bind(e.qty_micro)
                        .bind(e.attribution)
                        .bind(ingested_at);
                }
                q.execute(c).await.map(|r| r.rows_affected())
            })?;
            if recorded < chunk.len() as u64 {
                all = false;
                break;
            }
        }
    }
    if !all {
        tx.rollback_to("usage_events").await?;
    }
    tx.release("usage_events").await?;
    Ok(all)
}

/// PostgreSQL: every event in one statement, its columns bound as five arrays (`UNNEST`) rather
/// than seven parameters a row — one parse and bind for a whole batch. Returns the rows
/// recorded.
async fn insert_unnested(
    tx: &mut Tx,
    tenant: &Text,
    events: &[&NewEvent],
    ingested_at: i64,
) -> Result<u64> {
    let conn = super::postgres::conn(tx)?;
    let (mut sources, mut ids, mut ts, mut qty, mut attr) = (
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
    );
    for e in events {
        sources.push(e.source.to_string());
        ids.push(e.id.to_string());
        ts.push(e.ts);
        qty.push(e.qty_micro);
        attr.push(e.attribution);
    }
    Ok(sqlx::query(
        "INSERT INTO usage_events \
         (tenant_id, source, event_id, ts, qty_micro, attribution, ingested_at) \
         SELECT $1, u.s, u.e, u.t, u.q, u.a, $2 \
         FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) \
           AS u(s, e, t, q, a) \
         ON CONFLICT (tenant_id, source, event_id) DO NOTHING",
    )
    .bind(tenant.as_ref())
    .bind(ingested_at)
    .bind(sources)
    .bind(ids)
    .bind(ts)
    .bind(qty)
    .bind(attr)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Inserts the new ones of `events` and returns their (source, id) pairs.
async fn insert_returning(
    tx: &mut Tx,
    tenant: &Text,
    events: &[&NewEvent],
    ingested_at: i64,
) -> Result<HashSet<(String, String)>> {
    let mut recorded = HashSet::new();
    for chunk in statements(events) {
        let sql = insert_events_sql(tx, chunk.len(), " RETURNING source, event_id");
        let rows: Vec<(String, String)> = on!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(tenant.clone())
                    .bind(e.source.clone())
                    .bind(e.id.clone())
                    .bind(e.ts)
                    .bind(e.qty_micro)
                    .bind(e.attribution)
                    .bind(ingested_at);
            }
            q.fetch_all(c).await
        })?;
        recorded.extend(rows);
    }
    Ok(recorded)
}

/// Which of `events` the tenant recorded before, as (source, id).
async fn recorded_before(
    tx: &mut Tx,
    tenant: &Text,
    events: &[&NewEvent],
) -> Result<HashSet<(String, String)>> {
    let mut found = HashSet::new();
    for chunk in statements(events) {
        let sql = MultiRow::new(tx, 128 + chunk.len() * 16)
            .sql("SELECT source, event_id FROM usage_events WHERE tenant_id = ")
            .param()
            .sql(" AND (source, event_id) IN (VALUES ")
            .rows(chunk.len(), 2)
            .sql(")")
            .done();
        let rows: Vec<(String, String)> = on!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.clone());
            for e in chunk {
                q = q.bind(e.source.clone()).bind(e.id.clone());
            }
            q.fetch_all(c).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Rollups.

/// Usage to add to one rollup row: a period, a UTC day, what it is charged to.
pub(crate) struct RollupDelta<'a> {
    pub period: i64,
    pub day: i64,
    pub charged: &'a Attribution,
    pub qty_micro: i64,
    pub events: i64,
}

/// Adds usage to the rollups. The deltas' (period, day, attribution) must be distinct.
pub(crate) async fn add_to_rollups(
    tx: &mut Tx,
    tenant: &TenantId,
    deltas: &[RollupDelta<'_>],
) -> Result<()> {
    let tenant: Text = Arc::from(tenant.as_str());
    for chunk in statements(deltas) {
        let sql = MultiRow::new(tx, 400 + chunk.len() * 60)
            .sql(
                "INSERT INTO usage_rollups \
                 (tenant_id, period_start, day, sku, key_id, persona_id, bu_id, qty_micro, events) \
                 VALUES ",
            )
            .rows(chunk.len(), 9)
            .sql(
                " ON CONFLICT (tenant_id, period_start, sku, day, key_id, persona_id, bu_id) \
                 DO UPDATE SET qty_micro = usage_rollups.qty_micro + excluded.qty_micro, \
                 events = usage_rollups.events + excluded.events",
            )
            .done();
        on!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q.bind(tenant.clone()).bind(d.period).bind(d.day);
                for t in d.charged {
                    q = q.bind(t.clone());
                }
                q = q.bind(d.qty_micro).bind(d.events);
            }
            q.execute(c).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// A period's quantity of one SKU, in millionths.
pub(crate) async fn period_qty(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
    sku: &str,
) -> Result<i64> {
    let q: Option<i64> = on!(tx, c => sqlx::query_scalar(
        "SELECT CAST(SUM(qty_micro) AS BIGINT) FROM usage_rollups \
         WHERE tenant_id = $1 AND period_start = $2 AND sku = $3",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(sku)
    .fetch_one(c)
    .await)?;
    Ok(q.unwrap_or(0))
}

/// A period's quantity per SKU, by SKU.
pub(crate) async fn sku_totals(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT sku, CAST(SUM(qty_micro) AS BIGINT) FROM usage_rollups \
         WHERE tenant_id = $1 AND period_start = $2 GROUP BY sku ORDER BY sku",
    )
    .bind(tenant.as_str())
    .bind(period)
    .fetch_all(c)
    .await)?)
}

/// A period's quantity per SKU in the whole days before `until`.
pub(crate) async fn sku_totals_until(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
    until: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT sku, CAST(SUM(qty_micro) AS BIGINT) FROM usage_rollups \
         WHERE tenant_id = $1 AND period_start = $2 AND day < $3 GROUP BY sku",
    )
    .bind(tenant.as_str())
    .bind(period)
    .bind(until)
    .fetch_all(c)
    .await)?)
}

/// A period's quantity per SKU and UTC day: (SKU, day, quantity).
pub(crate) async fn daily_sku_totals(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
) -> Result<Vec<(String, i64, i64)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT sku, day, CAST(SUM(qty_micro) AS BIGINT) FROM usage_rollups \
         WHERE tenant_id = $1 AND period_start = $2 GROUP BY sku, day",
    )
    .bind(tenant.as_str())
    .bind(period)
    .fetch_all(c)
    .await)?)
}

/// What usage is summed by, besides the SKU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    /// The API key (`""`: none).
    Key,
    /// The persona (`""`: none).
    Persona,
    /// The business unit (`""`: none).
    Bu,
}

/// A period's usage of one SKU by one driver.
#[derive(sqlx::FromRow)]
pub(crate) struct DriverSum {
    pub sku: String,
    /// The key, persona or BU id, `""` for none.
    pub driver: String,
    pub qty_micro: i64,
    pub events: i64,
}

/// A period's usage per SKU and `by` (of one SKU when `sku` is given).
pub(crate) async fn sums_by(
    tx: &mut Tx,
    tenant: &TenantId,
    period: i64,
    by: Driver,
    sku: Option<&str>,
) -> Result<Vec<DriverSum>> {
    // One constant statement per grouping: a column name cannot be a parameter.
    let sql = match by {
        Driver::Key => {
            "SELECT sku, key_id AS driver, CAST(SUM(qty_micro) AS BIGINT) AS qty_micro, \
             CAST(SUM(events) AS BIGINT) AS events FROM usage_rollups \
             WHERE tenant_id = $1 AND period_start = $2 AND (CAST($3 AS TEXT) IS NULL OR sku = $3) \
             GROUP BY sku, key_id"
        }
        Driver::Persona => {
            "SELECT sku, persona_id AS driver, CAST(SUM(qty_micro) AS BIGINT) AS qty_micro, \
             CAST(SUM(events) AS BIGINT) AS events FROM usage_rollups \
             WHERE tenant_id = $1 AND period_start = $2 AND (CAST($3 AS TEXT) IS NULL OR sku = $3) \
             GROUP BY sku, persona_id"
        }
        Driver::Bu => {
            "SELECT sku, bu_id AS driver, CAST(SUM(qty_micro) AS BIGINT) AS qty_micro, \
             CAST(SUM(events) AS BIGINT) AS events FROM usage_rollups \
             WHERE tenant_id = $1 AND period_start = $2 AND (CAST($3 AS TEXT) IS NULL OR sku = $3) \
             GROUP BY sku, bu_id"
        }
    };
    Ok(on!(tx, c => sqlx::query_as(sql)
        .bind(tenant.as_str())
        .bind(period)
        .bind(sku)
        .fetch_all(c)
        .await)?)
}

// ---------------------------------------------------------------------------------------------
// Invoices.

/// The periods that are closed (invoiced), by start.
pub(crate) async fn closed_periods(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<i64>> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT period_start FROM invoices WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(c)
    .await)?)
}

/// How many invoices the tenant has.
pub(crate) async fn invoice_count(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM invoices WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(c)
        .await)?,
    )
}

/// A finalized invoice as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    pub id: String,
    pub number: String,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
    /// Decimal text.
    pub total: String,
    /// JSON text: the frozen line items.
    pub lines: String,
    pub issued_at: i64,
}

/// A new invoice.
pub(crate) struct NewInvoice<'a> {
    pub id: &'a str,
    pub number: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: &'a str,
    /// Decimal text.
    pub total: &'a str,
    /// JSON text.
    pub lines: &'a str,
    pub issued_at: i64,
    /// The persona who closed the period.
    pub issued_by: &'a str,
}

/// Records an invoice; false (nothing recorded) when its period or number is taken, which only
/// a concurrent close can do after the caller checked.
pub(crate) async fn insert_invoice(
    tx: &mut Tx,
    tenant: &TenantId,
    inv: &NewInvoice<'_>,
) -> Result<bool> {
    let n = on!(tx, c => sqlx::query(
        "INSERT INTO invoices (tenant_id, id, number, period_start, period_end, currency, total, \
         lines, issued_at, issued_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(inv.id)
    .bind(inv.number)
    .bind(inv.period_start)
    .bind(inv.period_end)
    .bind(inv.currency)
    .bind(inv.total)
    .bind(inv.lines)
    .bind(inv.issued_at)
    .bind(inv.issued_by)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The invoice with this id or number.
pub(crate) async fn invoice(
    tx: &mut Tx,
    tenant: &TenantId,
    reference: &str,
) -> Result<Option<InvoiceRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, number, period_start, period_end, currency, total, lines, issued_at \
         FROM invoices WHERE tenant_id = $1 AND (id = $2 OR number = $2)",
    )
    .bind(tenant.as_str())
    .bind(reference)
    .fetch_optional(c)
    .await)?)
}

/// The newest `limit` invoices, newest period first.
pub(crate) async fn invoices(
    tx: &mut Tx,
    tenant: &TenantId,
    limit: i64,
) -> Result<Vec<InvoiceRow>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, number, period_start, period_end, currency, total, lines, issued_at \
         FROM invoices WHERE tenant_id = $1 ORDER BY period_start DESC LIMIT $2",
    )
    .bind(tenant.as_str())
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn statements_come_in_few_shapes() {
        let sizes = |n| statement_sizes(n).collect::<Vec<_>>();
        assert!(sizes(0).is_empty());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(MAX_ROWS), [MAX_ROWS]);
        assert_eq!(sizes(2 * MAX_ROWS + 5), [MAX_ROWS, MAX_ROWS, 4, 1]);
        let items: Vec<usize> = (0..3000).collect();
        let parts: Vec<&[usize]> = statements(&items).collect();
        assert_eq!(parts.concat(), items);
    }

    #[tokio::test]
    async fn multi_row_statements_number_their_placeholders_on_postgres_only() {
        let (_dir, store, _) = store().await;
        let mut tx = store.begin_read().await.unwrap();
        let build = |tx: &Tx| {
            MultiRow::new(tx, 0)
                .sql("SELECT a FROM t WHERE x = ")
                .param()
                .sql(" AND (a, b) IN (VALUES ")
                .rows(2, 2)
                .sql(")")
                .done()
        };
        assert_eq!(
            build(&tx),
            "SELECT a FROM t WHERE x = ? AND (a, b) IN (VALUES (?, ?), (?, ?))"
        );
        let mut numbered = MultiRow::new(&tx, 0);
        numbered.anonymous = false;
        assert_eq!(
            numbered.sql("V ").rows(2, 3).done(),
            "V ($1, $2, $3), ($4, $5, $6)"
        );
        // What SQLite is given runs there, binding in order.
        let sql = MultiRow::new(&tx, 0)
            .sql("SELECT CAST(")
            .param()
            .sql(" AS BIGINT) * 10 + CAST(")
            .param()
            .sql(" AS BIGINT)")
            .done();
        let n: i64 = on!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(4i64)
            .bind(2i64)
            .fetch_one(c)
            .await)
        .unwrap();
        assert_eq!(n, 42);
        tx.rollback().await.unwrap();
    }

    async fn store() -> (tempfile::TempDir, Store, TenantId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").into(), true)
            .await
            .unwrap();
        let tenant = TenantId::generate();
        let mut tx = store.begin_write().await.unwrap();
        crate::store::tenants::insert(
            &mut tx,
            &crate::store::tenants::NewTenant {
                id: &tenant,
                name: "t",
                created_at: 0,
                audit_verifier: "v",
                demo: false,
                chat_link_min_age_secs: 0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (dir, store, tenant)
    }

    fn text(s: &str) -> Text {
        Arc::from(s)
    }

    fn event(source: &str, id: &str, qty: i64, attribution: i64) -> NewEvent {
        NewEvent {
            source: text(source),
            id: text(id),
            ts: 1_000,
            qty_micro: qty,
            attribution,
        }
    }

    async fn stored_events(tx: &mut Tx, tenant: &TenantId) -> Vec<(String, String, i64, i64)> {
        on!(tx, c => sqlx::query_as(
            "SELECT source, event_id, qty_micro, ingested_at FROM usage_events \
             WHERE tenant_id = $1 ORDER BY source, event_id",
        )
        .bind(tenant.as_str())
        .fetch_all(c)
        .await)
        .unwrap()
    }

    #[tokio::test]
    async fn events_are_recorded_once_and_each_is_told_new_or_duplicate() {
        let (_dir, store, tenant) = store().await;
        let mut tx = store.begin_write().await.unwrap();
        // All new, over several statements.
        let first: Vec<NewEvent> = (0..1500)
            .map(|i| event("meter", &format!("e{i:04}"), i, 1))
            .collect();
        let refs: Vec<&NewEvent> = first.iter().collect();
        let new = record_new_events(&mut tx, &tenant, &refs, 10)
            .await
            .unwrap();
        assert_eq!(new, vec![true; 1500]);
        // New events before, between and after old ones; the same ids from another source are
        // other events. The old ones keep what they were recorded with.
        let mut second: Vec<NewEvent> = Vec::new();
        for i in (0..3000).step_by(2) {
            second.push(event("meter", &format!("e{i:04}"), 7, 1));
        }
        second.push(event("import", "e0000", 5, 1));
        let refs: Vec<&NewEvent> = second.iter().collect();
        let new = record_new_events(&mut tx, &tenant, &refs, 20)
            .await
            .unwrap();
        let expected: Vec<bool> = second
            .iter()
            .map(|e| &*e.source == "import" || e.id[1..].parse::<usize>().unwrap() >= 1500)
            .collect();
        assert_eq!(new, expected);
        assert_eq!(new.iter().filter(|n| **n).count(), 750 + 1);
        let stored = stored_events(&mut tx, &tenant).await;
        assert_eq!(stored.len(), 1500 + 750 + 1);
        for (source, id, qty, at) in &stored {
            let n: i64 = id[1..].parse().unwrap();
            let want = match (source.as_str(), n) {
                ("import", _) => (5, 20),
                (_, n) if n < 1500 => (n, 10),
                _ => (7, 20),
            };
            assert_eq!((*qty, *at), want, "{source}/{id}");
        }
        // New events first and an old one in the batch's last statement: what the earlier
        // statements recorded is undone and recorded again, each event told new exactly once.
        let mut third: Vec<NewEvent> = (3000..4500)
            .map(|i| event("meter", &format!("e{i:04}"), 3, 1))
            .collect();
        third.push(event("meter", "e0001", 3, 1));
        let refs: Vec<&NewEvent> = third.iter().collect();
        let new = record_new_events(&mut tx, &tenant, &refs, 25)
            .await
            .unwrap();
        let mut expected = vec![true; 1500];
        expected.push(false);
        assert_eq!(new, expected);
        let stored_third = stored_events(&mut tx, &tenant).await;
        assert_eq!(stored_third.len(), stored.len() + 1500);
        assert!(stored_third.contains(&("meter".into(), "e4499".into(), 3, 25)));
        assert!(stored_third.contains(&("meter".into(), "e0001".into(), 1, 10)));
        let stored = stored_third;
        // Everything again: nothing is new, nothing changes.
        for batch in [&first, &second, &third] {
            let refs: Vec<&NewEvent> = batch.iter().collect();
            let new = record_new_events(&mut tx, &tenant, &refs, 30)
                .await
                .unwrap();
            assert_eq!(new, vec![false; refs.len()]);
        }
        assert_eq!(stored_events(&mut tx, &tenant).await, stored);
        // A repeated pair, should a caller send one, is new at most once.
        let twice = [event("x", "1", 1, 1), event("x", "1", 1, 1)];
        let new = record_new_events(&mut tx, &tenant, &[&twice[0], &twice[1]], 40)
            .await
            .unwrap();
        assert_eq!(new.iter().filter(|n| **n).count(), 1);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn attributions_are_numbered_once_per_tenant() {
        let (_dir, store, tenant) = store().await;
        let a = |s: &str, k: &str| -> Attribution { [text(s), text(k), text(""), text("")] };
        let mut tx = store.begin_write().await.unwrap();
        let ids = number_attributions(&mut tx, &tenant, &[a("api", "k1"), a("api", "")])
            .await
            .unwrap();
        assert_eq!(ids, [1, 2]);
        let ids = number_attributions(
            &mut tx,
            &tenant,
            &[a("gb", ""), a("api", ""), a("api", "k1")],
        )
        .await
        .unwrap();
        assert_eq!(ids, [3, 2, 1]);
        let many: Vec<Attribution> = (0..2000).map(|i| a("api", &format!("k{i}"))).collect();
        let ids = number_attributions(&mut tx, &tenant, &many).await.unwrap();
        assert_eq!(ids[1], 1);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2000);
        assert_eq!(*ids.iter().max().unwrap(), 3 + 1999);
        assert!(
            number_attributions(&mut tx, &tenant, &[])
                .await
                .unwrap()
                .is_empty()
        );
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn rollups_add_up_and_sums_group_by_each_driver() {
        let (_dir, store, tenant) = store().await;
        let t = |s: &str| text(s);
        let k1: Attribution = [t("api"), t("k1"), t("p1"), t("b1")];
        let k2: Attribution = [t("api"), t("k2"), t("p1"), t("")];
        let gb: Attribution = [t("gb"), t(""), t(""), t("b1")];
        let day = 86_400_000;
        let mut tx = store.begin_write().await.unwrap();
        for _ in 0..2 {
            let deltas = [
                RollupDelta {
                    period: 0,
                    day: 0,
                    charged: &k1,
                    qty_micro: 5,
                    events: 1,
                },
                RollupDelta {
                    period: 0,
                    day,
                    charged: &k1,
                    qty_micro: 7,
                    events: 2,
                },
                RollupDelta {
                    period: 0,
                    day,
                    charged: &k2,
                    qty_micro: 11,
                    events: 1,
                },
                RollupDelta {
                    period: 0,
                    day,
                    charged: &gb,
                    qty_micro: 13,
                    events: 1,
                },
                RollupDelta {
                    period: 9 * day,
                    day: 9 * day,
                    charged: &gb,
                    qty_micro: 1,
                    events: 1,
                },
            ];
            add_to_rollups(&mut tx, &tenant, &deltas).await.unwrap();
        }
        assert_eq!(period_qty(&mut tx, &tenant, 0, "api").await.unwrap(), 46);
        assert_eq!(period_qty(&mut tx, &tenant, 0, "none").await.unwrap(), 0);
        assert_eq!(
            sku_totals(&mut tx, &tenant, 0).await.unwrap(),
            [("api".into(), 46), ("gb".into(), 26)]
        );
        let mut until = sku_totals_until(&mut tx, &tenant, 0, day).await.unwrap();
        until.sort();
        assert_eq!(until, [("api".into(), 10)]);
        let mut daily = daily_sku_totals(&mut tx, &tenant, 0).await.unwrap();
        daily.sort();
        assert_eq!(
            daily,
            [
                ("api".into(), 0, 10),
                ("api".into(), day, 36),
                ("gb".into(), day, 26)
            ]
        );
        let sums = |v: Vec<DriverSum>| {
            let mut v: Vec<_> = v
                .into_iter()
                .map(|s| (s.sku, s.driver, s.qty_micro, s.events))
                .collect();
            v.sort();
            v
        };
        let s = |x: &str| x.to_owned();
        assert_eq!(
            sums(
                sums_by(&mut tx, &tenant, 0, Driver::Key, Some("api"))
                    .await
                    .unwrap()
            ),
            [(s("api"), s("k1"), 24, 6), (s("api"), s("k2"), 22, 2)]
        );
        assert_eq!(
            sums(
                sums_by(&mut tx, &tenant, 0, Driver::Persona, None)
                    .await
                    .unwrap()
            ),
            [(s("api"), s("p1"), 46, 8), (s("gb"), s(""), 26, 2)]
        );
        assert_eq!(
            sums(
                sums_by(&mut tx, &tenant, 0, Driver::Bu, None)
                    .await
                    .unwrap()
            ),
            [
                (s("api"), s(""), 22, 2),
                (s("api"), s("b1"), 24, 6),
                (s("gb"), s("b1"), 26, 2)
            ]
        );
        // Another tenant sees none of it.
        let other = TenantId::generate();
        assert!(sku_totals(&mut tx, &other, 0).await.unwrap().is_empty());
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn an_invoice_is_recorded_once_per_period_and_number() {
        let (_dir, store, tenant) = store().await;
        let mut tx = store.begin_write().await.unwrap();
        let inv = |id, number, period_start| NewInvoice {
            id,
            number,
            period_start,
            period_end: period_start + 10,
            currency: "EUR",
            total: "1.50",
            lines: "[]",
            issued_at: 99,
            issued_by: "p",
        };
        assert!(
            insert_invoice(&mut tx, &tenant, &inv("i1", "INV-1", 0))
                .await
                .unwrap()
        );
        assert!(
            !insert_invoice(&mut tx, &tenant, &inv("i2", "INV-2", 0))
                .await
                .unwrap()
        );
        assert!(
            !insert_invoice(&mut tx, &tenant, &inv("i3", "INV-1", 10))
                .await
                .unwrap()
        );
        assert!(
            insert_invoice(&mut tx, &tenant, &inv("i4", "INV-2", 10))
                .await
                .unwrap()
        );
        assert_eq!(invoice_count(&mut tx, &tenant).await.unwrap(), 2);
        let mut closed = closed_periods(&mut tx, &tenant).await.unwrap();
        closed.sort();
        assert_eq!(closed, [0, 10]);
        let by_number = invoice(&mut tx, &tenant, "INV-2").await.unwrap().unwrap();
        let by_id = invoice(&mut tx, &tenant, "i4").await.unwrap().unwrap();
        assert_eq!(
            (by_number.id.as_str(), by_id.number.as_str()),
            ("i4", "INV-2")
        );
        assert!(invoice(&mut tx, &tenant, "i2").await.unwrap().is_none());
        let listed: Vec<String> = invoices(&mut tx, &tenant, 5)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.number)
            .collect();
        assert_eq!(listed, ["INV-2", "INV-1"]);
        assert_eq!(invoices(&mut tx, &tenant, 1).await.unwrap().len(), 1);
        assert!(
            invoice(&mut tx, &TenantId::generate(), "i4")
                .await
                .unwrap()
                .is_none()
        );
        tx.commit().await.unwrap();
    }

    /// The SQLite migration that made events compact (PostgreSQL starts from the compact form).
    #[tokio::test]
    async fn the_compact_events_migration_keeps_every_event_and_its_attribution() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0003_billing.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        let old = [
            ("t1", "meter", "e1", 1_000, "api", "k1", "p1", "b1", 5),
            ("t1", "meter", "e2", 2_000, "api", "k1", "p1", "b1", 7),
            ("t1", "import", "e1", 3_000, "gb", "", "", "", 11),
            ("t2", "meter", "e1", 4_000, "api", "k9", "p9", "", 13),
        ];
        for (t, src, id, ts, sku, key, persona, bu, qty) in old {
            sqlx::query(
                "INSERT INTO usage_events (tenant_id, source, event_id, ts, period_start, sku, \
                 qty_micro, key_id, persona_id, bu_id, ingested_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, 99)",
            )
            .bind(t)
            .bind(src)
            .bind(id)
            .bind(ts)
            .bind(sku)
            .bind(qty)
            .bind(key)
            .bind(persona)
            .bind(bu)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::raw_sql(include_str!(
            "../../migrations/0004_billing_compact_events.sql"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        type Back = (
            String,
            String,
            String,
            i64,
            String,
            i64,
            String,
            String,
            String,
            i64,
        );
        let back: Vec<Back> = sqlx::query_as(
            "SELECT e.tenant_id, e.source, e.event_id, e.ts, a.sku, e.qty_micro, a.key_id, \
             a.persona_id, a.bu_id, e.ingested_at FROM usage_events e JOIN usage_attributions a \
             ON a.tenant_id = e.tenant_id AND a.id = e.attribution ORDER BY e.ts",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let expected: Vec<Back> = old
            .iter()
            .map(|&(t, src, id, ts, sku, key, persona, bu, qty)| {
                let s = |x: &str| x.to_owned();
                (
                    s(t),
                    s(src),
                    s(id),
                    ts,
                    s(sku),
                    qty,
                    s(key),
                    s(persona),
                    s(bu),
                    99,
                )
            })
            .collect();
        assert_eq!(back, expected);
        let numbers: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, id FROM usage_attributions ORDER BY tenant_id, id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            numbers,
            [("t1".into(), 1), ("t1".into(), 2), ("t2".into(), 1)]
        );
    }
}
