//! Guide §1 — Billing: ingestion, price book and caps, live meter, drill-down, invoices (PDF and
//! FOCUS CSV), showback per BU, the spend chart and the finance summary.

use crate::billing::{
    self, CapState, EventInput, IngestReport, Price, UsageEvent, amount, from_micro, period_end,
    period_label, period_start,
};
use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::notify::Notification;
use crate::operation::{OpCtx, Operation, Risk};
use crate::scope::Scope;
use crate::store::billing::{self as store, Driver as Grouping, InvoiceRow, NewInvoice, NewPrice};
use base64::Engine;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::str::FromStr;

/// The badge a chat surface shows next to a SKU past its cap.
pub const SOFT_CAP_BADGE: &str = "soft-cap exceeded";

/// Input naming an optional period.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodInput {
    /// The period, `YYYY-MM` (default: the current one).
    #[serde(default)]
    pub period: Option<String>,
}

fn chosen_period(ctx: &OpCtx, p: &Option<String>) -> Result<DateTime<Utc>> {
    match p {
        Some(p) => billing::parse_period("period", p),
        None => Ok(period_start(ctx.now)),
    }
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d)
}

/// Input of `billing.ingest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestInput {
    /// Usage events (at most 50,000 per call). Each is checked on its own: a malformed or
    /// invalid event is rejected with its reason and the rest still land.
    #[schemars(with = "Vec<UsageEvent>")]
    pub events: Vec<EventInput>,
}

/// `billing.ingest`.
pub struct Ingest;

impl Operation for Ingest {
    const NAME: &'static str = "billing.ingest";
    const SUMMARY: &'static str = "Ingest a batch of usage events (idempotent by source and id)";
    const HELP: &'static str = "Records usage events of the metering feed. Each event names its id, source, time, \
        SKU, quantity and the API key, persona or BU that drove it. A (source, id) already seen is ignored, \
        forever. Event times must fall between the start of the previous period and 5 minutes from now: \
        late usage for last month lands until that month is closed. Events with an unknown SKU, a negative \
        quantity, a time outside that window or in a closed period are rejected one by one with a reason; \
        the rest of the batch lands. SKUs past their soft cap are reported (requests still succeed).";
    const SCOPE: Option<Scope> = Some(Scope::USAGE_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const AUDIT_INPUT: bool = false;
    const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"events":[{"id":"evt-1","source":"sdk-meter","time":"2026-11-28T09:30:00Z","sku":"api.requests","quantity":120}]}"#,
    ];
    type Input = IngestInput;
    type Output = IngestReport;

    async fn execute(ctx: &mut OpCtx, input: IngestInput) -> Result<IngestReport> {
        if input.events.len() > 50_000 {
            return Err(Error::bad_input(
                "events",
                "send at most 50,000 events per call",
            ));
        }
        let tenant = ctx.tenant().clone();
        let report = billing::ingest(&mut ctx.tx, &tenant, &input.events, ctx.now).await?;
        ctx.audit("events", input.events.len());
        ctx.audit("accepted", report.accepted);
        ctx.audit("duplicates", report.duplicates);
        ctx.audit("rejected", report.rejected.len());
        for c in &report.crossed {
            ctx.notify(Notification::SoftCap {
                tenant: tenant.clone(),
                sku: c.sku.clone(),
                threshold: c.threshold,
                period: c.period.clone(),
                quantity: c.state.quantity.to_string(),
                cap: c.state.cap.to_string(),
            });
        }
        Ok(report)
    }
}

/// One price to set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// SKU id, e.g. `api.requests` (a-z 0-9 . _ -).
    pub sku: String,
    /// Unit price in major currency units, as a decimal string, e.g. "0.0004".
    pub unit_price: String,
    /// Unit of quantity, e.g. `request`.
    pub unit: String,
    /// What the SKU is.
    pub description: String,
}

/// Input of `billing.set_prices`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPricesInput {
    /// ISO 4217 currency, e.g. `USD` (can change only before the first invoice).
    #[serde(default)]
    pub currency: Option<String>,
    /// Prices to add or replace.
    pub prices: Vec<PriceInput>,
}

/// The price book.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PriceBookView {
    /// Currency.
    pub currency: String,
    /// Prices by SKU.
    pub prices: Vec<Price>,
}

async fn price_book_view(ctx: &mut OpCtx) -> Result<PriceBookView> {
    let tenant = ctx.tenant().clone();
    let book = billing::price_book(&mut ctx.tx, &tenant).await?;
    let mut prices: Vec<Price> = book.prices.into_values().collect();
    prices.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(PriceBookView {
        currency: book.currency,
        prices,
    })
}

/// `billing.set_prices`.
pub struct SetPrices;

impl Operation for SetPrices {
    const NAME: &'static str = "billing.set_prices";
    const SUMMARY: &'static str = "Set the currency and unit prices of SKUs";
    const HELP: &'static str = "Adds or replaces unit prices (decimal, in major currency units; never floating \
        point) and sets the currency. Usage is priced with the price book when read; closing a period freezes \
        its invoice.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"currency":"USD","prices":[{"sku":"api.requests","unit_price":"0.0004","unit":"request","description":"API requests"}]}"#,
    ];
    type Input = SetPricesInput;
    type Output = PriceBookView;

    async fn execute(ctx: &mut OpCtx, input: SetPricesInput) -> Result<PriceBookView> {
        let tenant = ctx.tenant().clone();
        let now = to_millis(ctx.now);
        if let Some(c) = &input.currency {
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Error::bad_input(
                    "currency",
                    "use an ISO 4217 code such as USD or EUR",
                ));
            }
            let current = billing::price_book(&mut ctx.tx, &tenant).await?.currency;
            let invoiced = store::invoice_count(&mut ctx.tx, &tenant).await?;
            if invoiced > 0 && current != *c {
                return Err(Error::Conflict(format!(
                    "the currency is {current} and invoices exist; it cannot change"
                )));
            }
            store::set_currency(&mut ctx.tx, &tenant, c, now).await?;
        }
        for (i, p) in input.prices.iter().enumerate() {
            super::validate_handle(&format!("prices[{i}].sku"), &p.sku)?;
            let price = Decimal::from_str(p.unit_price.trim())
                .ok()
                .filter(|d| !d.is_sign_negative() && *d <= Decimal::from(1_000_000_000) && d.scale() <= 10)
                .ok_or_else(|| {
                    Error::bad_input(
                        format!("prices[{i}].unit_price"),
                        format!("`{}` is not a price: a non-negative decimal with at most 10 decimals, e.g. \"0.0004\"", p.unit_price),
                    )
                })?;
            for (field, v) in [("unit", &p.unit), ("description", &p.description)] {
                if v.trim().is_empty() || v.chars().count() > 120 {
                    return Err(Error::bad_input(
                        format!("prices[{i}].{field}"),
                        "give 1 to 120 characters",
                    ));
                }
            }
            let unit_price = price.normalize().to_string();
            let price = NewPrice {
                sku: &p.sku,
                description: p.description.trim(),
                unit: p.unit.trim(),
                unit_price: &unit_price,
            };
            store::put_price(&mut ctx.tx, &tenant, &price, now).await?;
        }
        price_book_view(ctx).await
    }
}

/// Input of `billing.set_cap`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCapInput {
    /// The SKU.
    pub sku: String,
    /// The soft cap on a period's quantity, as a decimal string; null removes it.
    #[serde(default)]
    pub cap: Option<String>,
}

/// `billing.set_cap`.
pub struct SetCap;

impl Operation for SetCap {
    const NAME: &'static str = "billing.set_cap";
    const SUMMARY: &'static str = "Set or remove a SKU's soft cap (Finance)";
    const HELP: &'static str = "Sets the soft cap on a SKU's quantity per period. Past it, requests still succeed \
        but outputs carry a \"soft-cap exceeded\" badge, ingestion responses a warning header, and crossing 80 %, \
        100 % and 120 % each notifies once per period.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"sku":"api.requests","cap":"1000000"}"#,
        r#"{"sku":"api.requests","cap":null}"#,
    ];
    type Input = SetCapInput;
    type Output = Price;

    async fn execute(ctx: &mut OpCtx, input: SetCapInput) -> Result<Price> {
        let tenant = ctx.tenant().clone();
        let micro = match &input.cap {
            None => None,
            Some(c) => Some(
                Decimal::from_str(c.trim())
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .and_then(billing::to_micro)
                    .ok_or_else(|| {
                        Error::bad_input("cap", format!("`{c}` is not a non-negative quantity"))
                    })?,
            ),
        };
        let found =
            store::set_cap(&mut ctx.tx, &tenant, &input.sku, micro, to_millis(ctx.now)).await?;
        if !found {
            return Err(Error::NotFound(format!(
                "sku: `{}` is not in the price book; add it with billing.set_prices",
                input.sku
            )));
        }
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        book.prices
            .get(&input.sku)
            .cloned()
            .ok_or_else(|| Error::Internal("price vanished".into()))
    }
}

/// One SKU of the live meter.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MeterLine {
    /// SKU.
    pub sku: String,
    /// Description.
    pub description: String,
    /// Unit.
    pub unit: String,
    /// Quantity accrued this period.
    #[schemars(with = "String")]
    pub quantity: Decimal,
    /// Unit price.
    #[schemars(with = "String")]
    pub unit_price: Decimal,
    /// Amount accrued.
    #[schemars(with = "String")]
    pub amount: Decimal,
    /// The soft cap's state, if the SKU has one.
    pub cap: Option<CapState>,
    /// "soft-cap exceeded" when past the cap.
    pub badge: Option<String>,
}

/// Output of `billing.live_meter`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Meter {
    /// The period, `YYYY-MM`.
    pub period: String,
    /// Start (RFC 3339).
    pub period_start: String,
    /// End, exclusive.
    pub period_end: String,
    /// Currency.
    pub currency: String,
    /// Per SKU, biggest amount first.
    pub lines: Vec<MeterLine>,
    /// Total accrued.
    #[schemars(with = "String")]
    pub total: Decimal,
    /// When computed (usage is current to the last committed ingestion).
    pub as_of: String,
}

async fn meter(ctx: &mut OpCtx, start: DateTime<Utc>) -> Result<Meter> {
    let tenant = ctx.tenant().clone();
    let book = billing::price_book(&mut ctx.tx, &tenant).await?;
    let totals = store::sku_totals(&mut ctx.tx, &tenant, to_millis(start)).await?;
    let mut lines: Vec<MeterLine> = totals
        .into_iter()
        .map(|(sku, qty)| {
            let price = book.prices.get(&sku);
            let unit_price = price.map(|p| p.unit_price).unwrap_or_default();
            let cap = price
                .and_then(|p| p.cap)
                .map(|c| billing::cap_state(&sku, c, qty));
            MeterLine {
                description: price.map(|p| p.description.clone()).unwrap_or_default(),
                unit: price.map(|p| p.unit.clone()).unwrap_or_default(),
                quantity: from_micro(qty),
                unit_price,
                amount: amount(qty, unit_price),
                badge: cap
                    .as_ref()
                    .filter(|c| c.percent >= 100)
                    .map(|_| SOFT_CAP_BADGE.to_owned()),
                cap,
                sku,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.sku.cmp(&b.sku)));
    Ok(Meter {
        period: period_label(start),
        period_start: super::rfc3339(start),
        period_end: super::rfc3339(period_end(start)),
        currency: book.currency,
        total: lines.iter().map(|l| l.amount).sum(),
        lines,
        as_of: super::rfc3339(ctx.now),
    })
}

/// `billing.live_meter`.
pub struct LiveMeter;

impl Operation for LiveMeter {
    const NAME: &'static str = "billing.live_meter";
    const SUMMARY: &'static str = "Live meter: this period's accrued usage and amount by SKU";
    const HELP: &'static str = "The current period's accrued quantity and amount per SKU, current to the last \
        ingested batch, with each SKU's soft-cap state and a \"soft-cap exceeded\" badge past the cap.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = PeriodInput;
    type Output = Meter;

    async fn execute(ctx: &mut OpCtx, input: PeriodInput) -> Result<Meter> {
        let start = chosen_period(ctx, &input.period)?;
        meter(ctx, start).await
    }
}

/// Input of `billing.drilldown`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrilldownInput {
    /// The SKU to investigate.
    pub sku: String,
    /// How many drivers to list (default 10, at most 100).
    #[serde(default = "ten")]
    pub top: u32,
    /// The period, `YYYY-MM` (default: current).
    #[serde(default)]
    pub period: Option<String>,
}

fn ten() -> u32 {
    10
}

/// One driver of a SKU's usage.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Driver {
    /// Key or persona id (empty: not attributed).
    pub id: String,
    /// Its name or handle.
    pub name: Option<String>,
    /// Quantity driven.
    #[schemars(with = "String")]
    pub quantity: Decimal,
    /// Amount driven.
    #[schemars(with = "String")]
    pub amount: Decimal,
    /// Share of the SKU's quantity, percent.
    pub share_percent: u32,
    /// Events.
    pub events: i64,
}

/// Output of `billing.drilldown`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Drilldown {
    /// The SKU.
    pub sku: String,
    /// The period.
    pub period: String,
    /// Total quantity.
    #[schemars(with = "String")]
    pub quantity: Decimal,
    /// Top API keys.
    pub by_key: Vec<Driver>,
    /// Top personas.
    pub by_persona: Vec<Driver>,
}

/// `billing.drilldown`.
pub struct Drill;

impl Operation for Drill {
    const NAME: &'static str = "billing.drilldown";
    const SUMMARY: &'static str = "Overage investigation: which keys and personas drove a SKU";
    const HELP: &'static str = "For one SKU, the API keys and personas that drove its usage this period (or a \
        given one), biggest first, with quantity, amount and share.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{"sku":"api.requests","top":5}"#];
    type Input = DrilldownInput;
    type Output = Drilldown;

    async fn execute(ctx: &mut OpCtx, input: DrilldownInput) -> Result<Drilldown> {
        if input.top == 0 || input.top > 100 {
            return Err(Error::bad_input("top", "give top between 1 and 100"));
        }
        let tenant = ctx.tenant().clone();
        let start = chosen_period(ctx, &input.period)?;
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        let price = book
            .prices
            .get(&input.sku)
            .map(|p| p.unit_price)
            .ok_or_else(|| {
                Error::NotFound(format!("sku: `{}` is not in the price book", input.sku))
            })?;
        let names: HashMap<String, String> = store::driver_names(&mut ctx.tx, &tenant)
            .await?
            .into_iter()
            .collect();
        let mut total = 0i64;
        let mut groups = Vec::new();
        for by in [Grouping::Key, Grouping::Persona] {
            let rows = store::sums_by(&mut ctx.tx, &tenant, to_millis(start), by, Some(&input.sku))
                .await?;
            total = rows.iter().map(|r| r.qty_micro).sum();
            let mut drivers: Vec<Driver> = rows
                .into_iter()
                .map(|r| Driver {
                    name: names.get(&r.driver).cloned(),
                    quantity: from_micro(r.qty_micro),
                    amount: amount(r.qty_micro, price),
                    share_percent: if total > 0 {
                        ((r.qty_micro as i128 * 100) / total as i128) as u32
                    } else {
                        0
                    },
                    events: r.events,
                    id: r.driver,
                })
                .collect();
            drivers.sort_by(|a, b| b.quantity.cmp(&a.quantity).then(a.id.cmp(&b.id)));
            drivers.truncate(input.top as usize);
            groups.push(drivers);
        }
        let by_persona = groups.pop().unwrap_or_default();
        let by_key = groups.pop().unwrap_or_default();
        Ok(Drilldown {
            sku: input.sku,
            period: period_label(start),
            quantity: from_micro(total),
            by_key,
            by_persona,
        })
    }
}

/// An invoice as listed.
#[derive(Debug, Serialize, JsonSchema, Clone)]
pub struct InvoiceView {
    /// Invoice id.
    pub id: String,
    /// Number, e.g. `INV-000007`.
    pub number: String,
    /// Period, `YYYY-MM`.
    pub period: String,
    /// Period start.
    pub period_start: String,
    /// Period end, exclusive.
    pub period_end: String,
    /// Currency.
    pub currency: String,
    /// Total.
    pub total: String,
    /// Issued at.
    pub issued_at: String,
    /// Line items.
    pub lines: Value,
}

fn invoice_view(r: InvoiceRow) -> InvoiceView {
    InvoiceView {
        id: r.id,
        number: r.number,
        period: period_label(from_millis(r.period_start)),
        period_start: billing::ts(r.period_start),
        period_end: billing::ts(r.period_end),
        currency: r.currency,
        total: r.total,
        lines: serde_json::from_str(&r.lines).unwrap_or(Value::Null),
        issued_at: billing::ts(r.issued_at),
    }
}

async fn find_invoice(ctx: &mut OpCtx, reference: &str) -> Result<InvoiceView> {
    let tenant = ctx.tenant().clone();
    let row = store::invoice(&mut ctx.tx, &tenant, reference).await?;
    row.map(invoice_view).ok_or_else(|| {
        Error::NotFound(format!(
            "invoice: no invoice `{reference}` in this tenant; list them with billing.invoices"
        ))
    })
}

/// Input of `billing.close_period`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// The period to close, `YYYY-MM`; it must have ended.
    pub period: String,
}

/// `billing.close_period`.
pub struct ClosePeriod;

impl Operation for ClosePeriod {
    const NAME: &'static str = "billing.close_period";
    const SUMMARY: &'static str = "Close a period: finalize its numbered, immutable invoice";
    const HELP: &'static str = "Closes an ended period and finalizes its invoice from the period's usage at the \
        current prices: numbered, immutable, and listed first in billing.invoices. Usage events for a closed \
        period are refused from then on.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{"period":"2026-10"}"#];
    type Input = CloseInput;
    type Output = InvoiceView;

    async fn execute(ctx: &mut OpCtx, input: CloseInput) -> Result<InvoiceView> {
        let tenant = ctx.tenant().clone();
        let start = billing::parse_period("period", &input.period)?;
        let end = period_end(start);
        if end > ctx.now {
            return Err(Error::Conflict(format!(
                "{} has not ended yet; it can be closed from {}",
                input.period,
                super::rfc3339(end)
            )));
        }
        if store::closed_periods(&mut ctx.tx, &tenant)
            .await?
            .contains(&to_millis(start))
        {
            return Err(Error::Conflict(format!(
                "{} is already closed",
                input.period
            )));
        }
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        let totals = store::sku_totals(&mut ctx.tx, &tenant, to_millis(start)).await?;
        let lines: Vec<Value> = totals
            .into_iter()
            .filter(|(_, q)| *q != 0)
            .map(|(sku, qty)| {
                let p = book.prices.get(&sku);
                let unit_price = p.map(|p| p.unit_price).unwrap_or_default();
                json!({
                    "sku": sku,
                    "description": p.map(|p| p.description.clone()).unwrap_or_default(),
                    "unit": p.map(|p| p.unit.clone()).unwrap_or_default(),
                    "quantity": from_micro(qty).to_string(),
                    "unit_price": unit_price.to_string(),
                    "amount": money(amount(qty, unit_price)),
                })
            })
            .collect();
        let total: Decimal = lines
            .iter()
            .filter_map(|l| l["amount"].as_str().and_then(|a| Decimal::from_str(a).ok()))
            .sum();
        let n = store::invoice_count(&mut ctx.tx, &tenant).await?;
        let id = format!("inv_{}", uuid::Uuid::now_v7().simple());
        let number = format!("INV-{:06}", n + 1);
        let invoice = NewInvoice {
            id: &id,
            number: &number,
            period_start: to_millis(start),
            period_end: to_millis(end),
            currency: &book.currency,
            total: &money(total),
            lines: &Value::Array(lines).to_string(),
            issued_at: to_millis(ctx.now),
            issued_by: ctx.principal.persona().as_str(),
        };
        if !store::insert_invoice(&mut ctx.tx, &tenant, &invoice).await? {
            // Only a close running at the same time (on an engine without one write lock)
            // gets here: the period or the number was just taken.
            return Err(Error::Conflict(format!(
                "another billing.close_period ran at the same time; see billing.invoices, and \
                 close {} again if it is not listed",
                input.period
            )));
        }
        ctx.audit("invoice", &number);
        ctx.audit("total", money(total));
        find_invoice(ctx, &id).await
    }
}

/// Input of `billing.invoices`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoicesInput {
    /// How many, newest first (default 12, at most 120).
    #[serde(default = "twelve")]
    pub limit: u32,
}

fn twelve() -> u32 {
    12
}

/// Output of `billing.invoices`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvoiceList {
    /// Finalized invoices, newest first.
    pub invoices: Vec<InvoiceView>,
}

/// `billing.invoices`.
pub struct Invoices;

impl Operation for Invoices {
    const NAME: &'static str = "billing.invoices";
    const SUMMARY: &'static str = "Finalized invoices, newest first";
    const HELP: &'static str = "Lists the tenant's finalized invoices, newest period first. Fetch one as PDF with \
        billing.invoice_pdf or as FOCUS CSV with billing.invoice_csv.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#, r#"{"limit":3}"#];
    type Input = InvoicesInput;
    type Output = InvoiceList;

    async fn execute(ctx: &mut OpCtx, input: InvoicesInput) -> Result<InvoiceList> {
        if input.limit == 0 || input.limit > 120 {
            return Err(Error::bad_input("limit", "give a limit between 1 and 120"));
        }
        let tenant = ctx.tenant().clone();
        let rows = store::invoices(&mut ctx.tx, &tenant, i64::from(input.limit)).await?;
        Ok(InvoiceList {
            invoices: rows.into_iter().map(invoice_view).collect(),
        })
    }
}

/// Input naming an invoice.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneInvoice {
    /// Invoice number (e.g. `INV-000007`) or id.
    pub invoice: crate::refs::InvoiceRef,
}

/// A rendered document.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Rendered {
    /// The invoice number.
    pub number: String,
    /// A file name to save it under.
    pub filename: String,
    /// Its MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The content, base64 (PDF and PNG), or absent for text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// The content as text (CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

async fn invoice_doc(ctx: &mut OpCtx, inv: &InvoiceView) -> Result<billing::document::InvoiceDoc> {
    let tenant = ctx.tenant().clone();
    let name = store::tenant_name(&mut ctx.tx, &tenant).await?;
    let dec = |v: &Value| {
        v.as_str()
            .and_then(|s| Decimal::from_str(s).ok())
            .unwrap_or_default()
    };
    let lines = inv
        .lines
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| billing::document::InvoiceLine {
                    sku_id: l["sku"].as_str().unwrap_or_default().to_owned(),
                    description: l["description"].as_str().unwrap_or_default().to_owned(),
                    unit: l["unit"].as_str().unwrap_or_default().to_owned(),
                    quantity: dec(&l["quantity"]),
                    unit_price: dec(&l["unit_price"]),
                    amount: dec(&l["amount"]),
                    sub_account_id: None,
                    sub_account_name: None,
                })
                .collect()
        })
        .unwrap_or_default();
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    };
    Ok(billing::document::InvoiceDoc {
        number: inv.number.clone(),
        tenant_id: tenant.to_string(),
        tenant_name: name,
        period_start: parse(&inv.period_start),
        period_end: parse(&inv.period_end),
        issued_at: parse(&inv.issued_at),
        currency: inv.currency.clone(),
        lines,
        total: Decimal::from_str(&inv.total).unwrap_or_default(),
    })
}

/// `billing.invoice_pdf`.
pub struct InvoicePdf;

impl Operation for InvoicePdf {
    const NAME: &'static str = "billing.invoice_pdf";
    const SUMMARY: &'static str = "An invoice as PDF (base64)";
    const HELP: &'static str = "Renders a finalized invoice as a PDF — tenant, period, line items, totals, \
        currency — returned base64-encoded with a file name, for monthly close and AP reconciliation.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const MAX_INPUT_BYTES: usize = 1024;
    const EXAMPLES: &'static [&'static str] = &[r#"{"invoice":"INV-000001"}"#];
    type Input = OneInvoice;
    type Output = Rendered;

    async fn execute(ctx: &mut OpCtx, input: OneInvoice) -> Result<Rendered> {
        let inv = find_invoice(ctx, input.invoice.as_str()).await?;
        let doc = invoice_doc(ctx, &inv).await?;
        let pdf = billing::document::invoice_pdf(&doc);
        Ok(Rendered {
            filename: format!("{}-{}.pdf", inv.number, inv.period),
            number: inv.number,
            content_type: "application/pdf".into(),
            bytes: pdf.len() as u64,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(&pdf)),
            text: None,
        })
    }
}

/// `billing.invoice_csv`.
pub struct InvoiceCsv;

impl Operation for InvoiceCsv {
    const NAME: &'static str = "billing.invoice_csv";
    const SUMMARY: &'static str = "An invoice as FinOps FOCUS CSV";
    const HELP: &'static str = "Renders a finalized invoice as CSV with FinOps FOCUS column names (BilledCost, \
        SkuId, ConsumedQuantity, ChargePeriodStart, …) for AP systems and FinOps tools.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const MAX_INPUT_BYTES: usize = 1024;
    const EXAMPLES: &'static [&'static str] = &[r#"{"invoice":"INV-000001"}"#];
    type Input = OneInvoice;
    type Output = Rendered;

    async fn execute(ctx: &mut OpCtx, input: OneInvoice) -> Result<Rendered> {
        let inv = find_invoice(ctx, input.invoice.as_str()).await?;
        let doc = invoice_doc(ctx, &inv).await?;
        let csv = billing::document::invoice_csv(&doc);
        Ok(Rendered {
            filename: format!("{}-{}.csv", inv.number, inv.period),
            number: inv.number,
            content_type: "text/csv".into(),
            bytes: csv.len() as u64,
            base64: None,
            text: Some(csv),
        })
    }
}

/// Input of `billing.showback`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowbackInput {
    /// The period, `YYYY-MM` (default: current).
    #[serde(default)]
    pub period: Option<String>,
    /// Also render CSV (default false).
    #[serde(default)]
    pub csv: bool,
}

/// One business unit's usage and cost.
#[derive(Debug, Serialize, JsonSchema, Clone)]
pub struct UnitCost {
    /// BU id (empty: usage not attributed to any BU).
    pub bu_id: String,
    /// Name.
    pub name: String,
    /// Parent id.
    pub parent_id: Option<String>,
    /// Cost of usage attributed directly to this unit.
    #[schemars(with = "String")]
    pub direct: Decimal,
    /// Cost including every descendant unit.
    #[schemars(with = "String")]
    pub total: Decimal,
    /// Direct quantity per SKU.
    pub quantities: Map<String, Value>,
}

/// Output of `billing.showback`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Showback {
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// Units, parents before children, then unattributed usage.
    pub units: Vec<UnitCost>,
    /// Total of the period.
    #[schemars(with = "String")]
    pub total: Decimal,
    /// CSV rendering, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
}

/// `billing.showback`.
pub struct ShowbackOp;

impl Operation for ShowbackOp {
    const NAME: &'static str = "billing.showback";
    const SUMMARY: &'static str =
        "Showback: usage and cost per business unit, rolled up the BU tree";
    const HELP: &'static str = "Usage and cost per business unit for a period, for internal chargeback: each \
        unit's direct cost and its total including all descendant units, plus unattributed usage; optionally \
        as CSV.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#, r#"{"period":"2026-10","csv":true}"#];
    type Input = ShowbackInput;
    type Output = Showback;

    async fn execute(ctx: &mut OpCtx, input: ShowbackInput) -> Result<Showback> {
        let tenant = ctx.tenant().clone();
        let start = chosen_period(ctx, &input.period)?;
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        let sums =
            store::sums_by(&mut ctx.tx, &tenant, to_millis(start), Grouping::Bu, None).await?;
        let units: Vec<(String, String, Option<String>)> = store::units(&mut ctx.tx, &tenant)
            .await?
            .into_iter()
            .map(|u| (u.id, u.name, u.parent_id))
            .collect();
        let mut by_id: HashMap<String, UnitCost> = units
            .iter()
            .map(|(id, name, parent)| {
                (
                    id.clone(),
                    UnitCost {
                        bu_id: id.clone(),
                        name: name.clone(),
                        parent_id: parent.clone(),
                        direct: Decimal::ZERO,
                        total: Decimal::ZERO,
                        quantities: Map::new(),
                    },
                )
            })
            .collect();
        let mut unassigned = UnitCost {
            bu_id: String::new(),
            name: "(no business unit)".into(),
            parent_id: None,
            direct: Decimal::ZERO,
            total: Decimal::ZERO,
            quantities: Map::new(),
        };
        // Each SKU's amount — as metered and invoiced, rounded once — is split among the units
        // to the cent, so that the showback adds up to the period's spend.
        let mut sums = sums;
        sums.sort_by(|a, b| (&a.sku, &a.driver).cmp(&(&b.sku, &b.driver)));
        for group in sums.chunk_by(|a, b| a.sku == b.sku) {
            let sku = &group[0].sku;
            let price = book
                .prices
                .get(sku)
                .map(|p| p.unit_price)
                .unwrap_or_default();
            let qty: Vec<i64> = group.iter().map(|r| r.qty_micro).collect();
            for (r, share) in group.iter().zip(billing::split_amount(&qty, price)) {
                let unit = by_id.get_mut(&r.driver).unwrap_or(&mut unassigned);
                unit.direct += share;
                unit.quantities
                    .insert(sku.clone(), json!(from_micro(r.qty_micro).to_string()));
            }
        }
        // Roll up: a unit's total is its direct cost plus its descendants'.
        let ids: Vec<String> = units.iter().map(|u| u.0.clone()).collect();
        for id in &ids {
            let direct = by_id[id].direct;
            let mut cursor = Some(id.clone());
            let mut guard = 0;
            while let Some(c) = cursor {
                guard += 1;
                if guard > ids.len() + 1 {
                    break; // the tree has no cycles; this only bounds a corrupt one
                }
                let Some(u) = by_id.get_mut(&c) else { break };
                u.total += direct;
                cursor = u.parent_id.clone();
            }
        }
        unassigned.total = unassigned.direct;
        // Parents before children.
        let mut ordered = Vec::new();
        fn walk(
            parent: Option<&String>,
            all: &[(String, String, Option<String>)],
            by_id: &HashMap<String, UnitCost>,
            out: &mut Vec<UnitCost>,
        ) {
            for (id, _, _) in all.iter().filter(|u| u.2.as_ref() == parent) {
                out.push(by_id[id].clone());
                walk(Some(id), all, by_id, out);
            }
        }
        walk(None, &units, &by_id, &mut ordered);
        let total: Decimal = ordered.iter().map(|u| u.direct).sum::<Decimal>() + unassigned.direct;
        if !unassigned.direct.is_zero() || !unassigned.quantities.is_empty() {
            ordered.push(unassigned);
        }
        let csv = if input.csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            let io = |e: csv::Error| Error::Internal(format!("csv: {e}"));
            w.write_record([
                "SubAccountId",
                "SubAccountName",
                "ParentSubAccountId",
                "DirectCost",
                "TotalCost",
                "BillingCurrency",
                "BillingPeriodStart",
            ])
            .map_err(io)?;
            for u in &ordered {
                w.write_record([
                    u.bu_id.as_str(),
                    u.name.as_str(),
                    u.parent_id.as_deref().unwrap_or(""),
                    &money(u.direct),
                    &money(u.total),
                    &book.currency,
                    &super::rfc3339(start),
                ])
                .map_err(io)?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| Error::Internal(format!("csv: {e}")))?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            None
        };
        Ok(Showback {
            period: period_label(start),
            currency: book.currency,
            units: ordered,
            total,
            csv,
        })
    }
}

/// Output of `billing.chart`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Chart {
    /// Period.
    pub period: String,
    /// File name.
    pub filename: String,
    /// `image/png`.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG, base64.
    pub png_base64: String,
}

/// `billing.chart`.
pub struct ChartOp;

impl Operation for ChartOp {
    const NAME: &'static str = "billing.chart";
    const SUMMARY: &'static str = "PNG chart of the period's spend by SKU over days";
    const HELP: &'static str = "Renders the period's daily spend per SKU as a PNG (fonts embedded), base64, for \
        chat surfaces to attach to a /billing summary.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#, r#"{"period":"2026-10"}"#];
    type Input = PeriodInput;
    type Output = Chart;

    async fn execute(ctx: &mut OpCtx, input: PeriodInput) -> Result<Chart> {
        let tenant = ctx.tenant().clone();
        let start = chosen_period(ctx, &input.period)?;
        let end = period_end(start).min(ctx.now.max(start + chrono::Duration::days(1)));
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        let rows = store::daily_sku_totals(&mut ctx.tx, &tenant, to_millis(start)).await?;
        let mut days = Vec::new();
        let mut d = start;
        while d < end {
            days.push(d.date_naive());
            d += chrono::Duration::days(1);
        }
        let mut series: HashMap<String, Vec<Decimal>> = HashMap::new();
        for (sku, day, qty) in rows {
            let idx = ((day - to_millis(start)) / 86_400_000) as usize;
            if idx >= days.len() {
                continue;
            }
            let price = book
                .prices
                .get(&sku)
                .map(|p| p.unit_price)
                .unwrap_or_default();
            series
                .entry(sku)
                .or_insert_with(|| vec![Decimal::ZERO; days.len()])[idx] += amount(qty, price);
        }
        let mut series: Vec<billing::chart::SpendSeries> = series
            .into_iter()
            .map(|(sku, daily)| billing::chart::SpendSeries { sku, daily })
            .collect();
        series.sort_by(|a, b| a.sku.cmp(&b.sku));
        let spec = billing::chart::ChartSpec {
            title: format!(
                "Spend by SKU — {} ({})",
                start.format("%b %Y"),
                book.currency
            ),
            currency: book.currency.clone(),
            days,
            series,
        };
        let png = billing::chart::spend_chart_png(&spec)
            .map_err(|e| Error::Internal(format!("chart: {e}")))?;
        Ok(Chart {
            period: period_label(start),
            filename: format!("spend-{}.png", period_label(start)),
            content_type: "image/png".into(),
            width: 1000,
            height: 560,
            png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        })
    }
}

/// A SKU's amount in a summary.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SkuAmount {
    /// SKU.
    pub sku: String,
    /// Amount.
    #[schemars(with = "String")]
    pub amount: Decimal,
}

/// Output of `billing.summary`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Summary {
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// Spend so far this period.
    #[schemars(with = "String")]
    pub period_to_date: Decimal,
    /// Spend in the same number of days of the previous period.
    #[schemars(with = "String")]
    pub previous_same_days: Decimal,
    /// Change against it, percent (absent when the previous period had no spend).
    pub change_percent: Option<i64>,
    /// Biggest SKUs, at most 3.
    pub top_skus: Vec<SkuAmount>,
    /// SKUs past their soft cap.
    pub caps_exceeded: Vec<CapState>,
    /// The newest invoice.
    pub latest_invoice: Option<InvoiceView>,
    /// A rendering that fits a phone screen.
    pub text: String,
}

/// `billing.summary`.
pub struct SummaryOp;

impl Operation for SummaryOp {
    const NAME: &'static str = "billing.summary";
    const SUMMARY: &'static str =
        "Finance summary: period to date, top SKUs, change, caps, latest invoice";
    const HELP: &'static str = "The short summary a finance channel wants: spend so far this period, the top SKUs, \
        change against the same days of the previous period, soft caps exceeded and the latest invoice — as \
        structured data and as a few short lines that fit a phone screen.";
    const SCOPE: Option<Scope> = Some(Scope::BILLING_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = PeriodInput;
    type Output = Summary;

    async fn execute(ctx: &mut OpCtx, input: PeriodInput) -> Result<Summary> {
        let tenant = ctx.tenant().clone();
        let start = chosen_period(ctx, &input.period)?;
        let m = meter(ctx, start).await?;
        let elapsed_days = ((ctx.now.min(period_end(start)) - start).num_days() + 1).max(1);
        let prev = billing::previous_period(start);
        let book = billing::price_book(&mut ctx.tx, &tenant).await?;
        let until = to_millis(prev) + elapsed_days * 86_400_000;
        let prev_totals =
            store::sku_totals_until(&mut ctx.tx, &tenant, to_millis(prev), until).await?;
        let previous: Decimal = prev_totals
            .iter()
            .map(|(sku, q)| {
                amount(
                    *q,
                    book.prices
                        .get(sku)
                        .map(|p| p.unit_price)
                        .unwrap_or_default(),
                )
            })
            .sum();
        let change_percent = (!previous.is_zero())
            .then(|| ((m.total - previous) * Decimal::from(100) / previous).round())
            .and_then(|d| i64::try_from(d).ok());
        let top_skus: Vec<SkuAmount> = m
            .lines
            .iter()
            .filter(|l| !l.amount.is_zero())
            .take(3)
            .map(|l| SkuAmount {
                sku: l.sku.clone(),
                amount: l.amount,
            })
            .collect();
        let caps_exceeded: Vec<CapState> = m
            .lines
            .iter()
            .filter_map(|l| l.cap.clone())
            .filter(|c| c.percent >= 100)
            .collect();
        let latest_invoice: Option<InvoiceView> = store::invoices(&mut ctx.tx, &tenant, 1)
            .await?
            .into_iter()
            .next()
            .map(invoice_view);
        let mut text = format!(
            "*{} {}* spent in {} so far",
            m.currency,
            money(m.total),
            start.format("%b %Y")
        );
        match change_percent {
            Some(p) if p >= 0 => text.push_str(&format!(" (+{p}% vs last month)")),
            Some(p) => text.push_str(&format!(" ({p}% vs last month)")),
            None => {}
        }
        for s in &top_skus {
            text.push_str(&format!("\n• {} — {}", s.sku, money(s.amount)));
        }
        for c in &caps_exceeded {
            text.push_str(&format!(
                "\n⚠ {} {}: {}% of cap",
                SOFT_CAP_BADGE, c.sku, c.percent
            ));
        }
        if let Some(inv) = &latest_invoice {
            text.push_str(&format!(
                "\nLatest invoice {} ({}): {} {}",
                inv.number, inv.period, inv.currency, inv.total
            ));
        }
        Ok(Summary {
            period: m.period,
            currency: m.currency,
            period_to_date: m.total,
            previous_same_days: previous,
            change_percent,
            top_skus,
            caps_exceeded,
            latest_invoice,
            text,
        })
    }
}
