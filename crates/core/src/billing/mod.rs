//! Billing and metering (guide §1): the price book, usage ingestion with permanent idempotency,
//! rollups maintained at ingest, periods, soft caps, and the reads built on the rollups.
//!
//! Money is `Decimal`, never floating point; quantities are stored as integer millionths of a
//! unit; periods are calendar months in UTC (an event's time, whatever its offset, is placed by
//! its UTC instant); amounts are rounded to 2 decimals half away from zero per line.
//!
//! An event may be dated from the start of the previous period (late usage lands there until
//! the period is closed) to [`MAX_FUTURE`] from now; outside that, or in a closed period, it is
//! rejected with its reason.

pub mod chart;
pub mod document;

use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::store::Tx;
use crate::store::billing::{self as store, Attribution, NewEvent, RollupDelta, Text};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

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

/// The earliest time a usage event may carry at `now`: the start of the previous period. The
/// current period takes usage as it happens and the previous one takes late usage until it is
/// closed (it can be closed once it has ended); anything older belongs to a period that should
/// long be invoiced, or comes from a reporter with a broken clock (a time in year 1).
pub fn earliest_usage(now: DateTime<Utc>) -> DateTime<Utc> {
    previous_period(period_start(now))
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

/// Splits the amount of a quantity summed from parts (a SKU's period usage by business unit)
/// among the parts, to the cent, so that they add up to exactly [`amount`] of the whole: each
/// part gets its exact share rounded down, and the cents left over go one each to the parts with
/// the largest remainders (ties: the larger part, then the earlier one). Rounding each part on
/// its own would not add up: 0.4 and 0.4 at 0.0125 would be 0.01 each, their sum only 0.01.
pub fn split_amount(qty_micro: &[i64], unit_price: Decimal) -> Vec<Decimal> {
    // Exact shares, in cents.
    let exact: Vec<Decimal> = qty_micro
        .iter()
        .map(|&q| Decimal::new(q, QTY_SCALE) * unit_price * Decimal::ONE_HUNDRED)
        .collect();
    let whole = exact
        .iter()
        .sum::<Decimal>()
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let mut cents: Vec<Decimal> = exact.iter().map(|e| e.floor()).collect();
    let mut left = whole - cents.iter().sum::<Decimal>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - cents[b])
            .cmp(&(exact[a] - cents[a]))
            .then(exact[b].cmp(&exact[a]))
            .then(a.cmp(&b))
    });
    for i in order {
        if left <= Decimal::ZERO {
            break;
        }
        cents[i] += Decimal::ONE;
        left -= Decimal::ONE;
    }
    cents
        .into_iter()
        .map(|c| {
            let mut c = c;
            c.rescale(0);
            Decimal::from_i128_with_scale(c.mantissa(), 2)
        })
        .collect()
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
pub async fn price_book(tx: &mut Tx, tenant: &TenantId) -> Result<PriceBook> {
    let currency = store::currency(tx, tenant).await?;
    let mut prices = HashMap::new();
    for row in store::prices(tx, tenant).await? {
        let unit_price = Decimal::from_str(&row.unit_price)
            .map_err(|_| Error::Internal(format!("corrupt price of {}", row.sku)))?;
        prices.insert(
            row.sku.clone(),
            Price {
                sku: row.sku,
                description: row.description,
                unit: row.unit,
                unit_price,
                cap: row.cap_micro.map(from_micro),
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

impl Quantity {
    /// A quantity sent as a JSON number with a fraction or exponent.
    fn from_f64(v: f64) -> Self {
        // The shortest decimal that round-trips: what the reporter wrote.
        Quantity(
            Decimal::from_str(&v.to_string())
                .map_err(|_| format!("quantity {v} is not a finite decimal")),
        )
    }

    /// A quantity sent as a string.
    fn from_text(v: &str) -> Self {
        Quantity(
            Decimal::from_str(v.trim())
                .map_err(|_| format!("quantity `{v}` is not a decimal number")),
        )
    }
}

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
                Ok(Quantity::from_f64(v))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Quantity, E> {
                Ok(Quantity::from_text(v))
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
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
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

/// One element of a batch as sent (a [`UsageEvent`], or something malformed). Parsing it never
/// fails: an element that is not an object, a field of the wrong type or a repeated field makes
/// the event malformed, and it is rejected with that reason while the rest of the batch lands.
/// Parsed field by field straight from the input, without an intermediate JSON value per event.
#[derive(Clone, Debug)]
pub struct EventInput(std::result::Result<UsageEvent, Malformed>);

/// Why an element of a batch is not a usage event.
#[derive(Clone, Debug)]
pub struct Malformed {
    /// Its id, when it had a string one.
    id: Option<String>,
    /// What is wrong with it.
    reason: String,
}

impl EventInput {
    fn malformed(reason: String) -> Self {
        EventInput(Err(Malformed {
            id: None,
            reason: format!("malformed event: {reason}"),
        }))
    }

    fn not_an_object(what: impl std::fmt::Display) -> Self {
        Self::malformed(format!(
            "invalid type: {what}, expected a usage event object"
        ))
    }
}

/// The fields of a usage event, as keys of its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventField {
    Id,
    Source,
    Time,
    Sku,
    Quantity,
    KeyId,
    PersonaId,
    BuId,
    /// Any other key: ignored.
    Other,
}

impl EventField {
    const ALL: [(&'static str, EventField); 8] = [
        ("id", EventField::Id),
        ("source", EventField::Source),
        ("time", EventField::Time),
        ("sku", EventField::Sku),
        ("quantity", EventField::Quantity),
        ("key_id", EventField::KeyId),
        ("persona_id", EventField::PersonaId),
        ("bu_id", EventField::BuId),
    ];

    fn named(name: &str) -> Self {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Self::Other, |(_, f)| *f)
    }
}

impl<'de> Deserialize<'de> for EventField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EventField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<EventField, E> {
                Ok(EventField::named(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<EventField, E> {
                Ok(std::str::from_utf8(v).map_or(EventField::Other, EventField::named))
            }
        }
        d.deserialize_identifier(V)
    }
}

/// What a JSON value of the wrong type is, for a malformed event's reason.
fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl<'de> Deserialize<'de> for EventInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventInput;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a usage event object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<EventInput, A::Error> {
                let mut ev = UsageEvent::default();
                let mut wrong: Option<String> = None;
                let mut seen = [false; EventField::ALL.len()];
                while let Some(field) = map.next_key::<EventField>()? {
                    if field == EventField::Other {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let (name, _) = EventField::ALL[field as usize];
                    if std::mem::replace(&mut seen[field as usize], true) {
                        map.next_value::<IgnoredAny>()?;
                        wrong.get_or_insert_with(|| format!("duplicate field `{name}`"));
                        continue;
                    }
                    // One field at a time; a string is copied once, straight into the event.
                    let value: Value = map.next_value()?;
                    let mut mistyped = |v: &Value, expected: &str| {
                        wrong.get_or_insert_with(|| {
                            format!(
                                "invalid type for `{name}`: {}, expected {expected}",
                                describe(v)
                            )
                        });
                    };
                    if field == EventField::Quantity {
                        ev.quantity = match value {
                            Value::Null => None,
                            Value::Number(n) => Some(match (n.as_u64(), n.as_i64(), n.as_f64()) {
                                (Some(u), _, _) => Quantity(Ok(Decimal::from(u))),
                                (_, Some(i), _) => Quantity(Ok(Decimal::from(i))),
                                (_, _, Some(f)) => Quantity::from_f64(f),
                                _ => Quantity(Err(format!("quantity {n} is not a finite decimal"))),
                            }),
                            Value::String(s) => Some(Quantity::from_text(&s)),
                            other => {
                                mistyped(&other, "a number or a decimal string");
                                None
                            }
                        };
                        continue;
                    }
                    let text = match value {
                        Value::String(s) => Some(s),
                        Value::Null => None,
                        other => {
                            mistyped(&other, "a string");
                            None
                        }
                    };
                    match field {
                        EventField::Id => ev.id = text,
                        EventField::Source => ev.source = text,
                        EventField::Time => ev.time = text,
                        EventField::Sku => ev.sku = text,
                        EventField::KeyId => ev.key_id = text,
                        EventField::PersonaId => ev.persona_id = text,
                        EventField::BuId => ev.bu_id = text,
                        EventField::Quantity | EventField::Other => {}
                    }
                }
                Ok(match wrong {
                    None => EventInput(Ok(ev)),
                    Some(reason) => EventInput(Err(Malformed {
                        id: ev.id,
                        reason: format!("malformed event: {reason}"),
                    })),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<EventInput, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EventInput::not_an_object("an array"))
            }
            fn visit_unit<E>(self) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object("null"))
            }
            fn visit_none<E>(self) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object("null"))
            }
            fn visit_some<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<EventInput, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object(format_args!("boolean `{v}`")))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object(format_args!("number `{v}`")))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object(format_args!("number `{v}`")))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object(format_args!("number `{v}`")))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object("a string"))
            }
            fn visit_bytes<E>(self, _: &[u8]) -> std::result::Result<EventInput, E> {
                Ok(EventInput::not_an_object("bytes"))
            }
        }
        d.deserialize_any(V)
    }
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

/// One accepted event, ready to record.
struct Row<'a> {
    /// The event as stored; its attribution is 0 until `charged` is numbered.
    event: NewEvent,
    period: i64,
    day: i64,
    /// What it is charged to.
    charged: Charged<'a>,
}

/// What an event is charged to: SKU, key, persona and BU (`""` for none), as texts interned by
/// [`Drivers`]. Equal texts are one shared text there, so two of these are equal exactly when
/// their texts are the same objects, and hashing one hashes four addresses, not four ids.
#[derive(Clone, Copy, Debug)]
struct Charged<'a> {
    sku: &'a Text,
    key: &'a Text,
    persona: &'a Text,
    bu: &'a Text,
}

impl Charged<'_> {
    fn parts(&self) -> [&Text; 4] {
        [self.sku, self.key, self.persona, self.bu]
    }

    fn attribution(&self) -> Attribution {
        self.parts().map(Text::clone)
    }
}

impl PartialEq for Charged<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parts()
            .iter()
            .zip(other.parts())
            .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Charged<'_> {}

impl std::hash::Hash for Charged<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for t in self.parts() {
            std::ptr::hash(Arc::as_ptr(t), state);
        }
    }
}

/// Who can drive usage in a tenant, and what it can be billed for: key → persona, persona → BU,
/// the BUs and the SKUs of the price book. Every text is interned once here.
struct Drivers {
    /// Key id → (key id, its persona id).
    keys: HashMap<String, (Text, Text)>,
    /// Persona id → (persona id, its BU id or "").
    personas: HashMap<String, (Text, Text)>,
    /// Business unit ids.
    bus: HashMap<String, Text>,
    /// SKUs of the price book.
    skus: HashMap<String, Text>,
    /// "": no key, persona or BU.
    none: Text,
}

async fn drivers(tx: &mut Tx, tenant: &TenantId, book: &PriceBook) -> Result<Drivers> {
    let keys = store::key_personas(tx, tenant).await?;
    let personas = store::persona_units(tx, tenant).await?;
    let bus: Vec<String> = store::units(tx, tenant)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let none: Text = Arc::from("");
    // One shared text per distinct string.
    let mut interned: HashMap<String, Text> = HashMap::new();
    let mut intern = |s: &str| -> Text {
        if s.is_empty() {
            return none.clone();
        }
        interned
            .entry(s.to_owned())
            .or_insert_with(|| Arc::from(s))
            .clone()
    };
    let bus: HashMap<String, Text> = bus.into_iter().map(|b| (b.clone(), intern(&b))).collect();
    let personas: HashMap<String, (Text, Text)> = personas
        .into_iter()
        .map(|(p, b)| {
            let v = (intern(&p), intern(b.as_deref().unwrap_or_default()));
            (p, v)
        })
        .collect();
    let keys = keys
        .into_iter()
        .map(|(k, p)| {
            let v = (intern(&k), intern(&p));
            (k, v)
        })
        .collect();
    let skus = book.prices.keys().map(|s| (s.clone(), intern(s))).collect();
    Ok(Drivers {
        keys,
        personas,
        bus,
        skus,
        none,
    })
}

/// A required text field, trimmed.
fn required<'e>(v: &'e Option<String>, name: &str) -> std::result::Result<&'e str, String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() && s.len() <= 128 => Ok(s),
        Some(s) if s.len() > 128 => Err(format!("{name} is longer than 128 characters")),
        _ => Err(format!("{name} is missing")),
    }
}

/// The times an ingestion takes usage for.
struct Window {
    /// [`earliest_usage`].
    earliest: DateTime<Utc>,
    /// Its period, `YYYY-MM`.
    earliest_label: String,
    /// Periods that are closed.
    closed: HashSet<i64>,
}

fn check_event<'a>(
    ev: &UsageEvent,
    drivers: &'a Drivers,
    window: &Window,
    now: DateTime<Utc>,
) -> std::result::Result<Row<'a>, String> {
    let id = required(&ev.id, "id")?;
    let source = required(&ev.source, "source")?;
    let sku = required(&ev.sku, "sku")?;
    let Some(sku) = drivers.skus.get(sku) else {
        return Err(format!(
            "unknown SKU `{sku}`: it is not in the tenant's price book (billing.set_prices)"
        ));
    };
    let time = required(&ev.time, "time")?;
    let ts = DateTime::parse_from_rfc3339(time)
        .map_err(|_| format!("time `{time}` is not RFC 3339 (e.g. 2026-11-28T09:30:00Z)"))?
        .with_timezone(&Utc);
    if ts > now + MAX_FUTURE {
        return Err(format!("time {time} is in the future"));
    }
    if ts < window.earliest {
        return Err(format!(
            "time {time} is too old: usage is taken only for the current period and the \
             previous one ({}), from {} on",
            window.earliest_label,
            crate::clock::rfc3339(window.earliest)
        ));
    }
    let period = to_millis(period_start(ts));
    if window.closed.contains(&period) {
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
    let mut key = &drivers.none;
    let mut persona_id = ev.persona_id.as_deref().filter(|p| !p.is_empty());
    if let Some(k) = ev.key_id.as_deref().filter(|k| !k.is_empty()) {
        let Some((key_id, p)) = drivers.keys.get(k) else {
            return Err(format!("key_id `{k}` is not a key of this tenant"));
        };
        if persona_id.is_some_and(|given| given != &**p) {
            return Err(format!(
                "key_id `{k}` belongs to another persona than persona_id"
            ));
        }
        key = key_id;
        persona_id = Some(p);
    }
    let (mut persona, mut bu) = (&drivers.none, &drivers.none);
    if let Some(p) = persona_id {
        let Some((p, b)) = drivers.personas.get(p) else {
            return Err(format!("persona_id `{p}` is not a persona of this tenant"));
        };
        (persona, bu) = (p, b);
    }
    if let Some(b) = ev.bu_id.as_deref().filter(|b| !b.is_empty()) {
        let Some(b) = drivers.bus.get(b) else {
            return Err(format!("bu_id `{b}` is not a business unit of this tenant"));
        };
        bu = b;
    }
    let ts = to_millis(ts);
    Ok(Row {
        event: NewEvent {
            source: source.into(),
            id: id.into(),
            ts,
            qty_micro: qty,
            attribution: 0,
        },
        period,
        day: ts - ts.rem_euclid(86_400_000),
        charged: Charged {
            sku,
            key,
            persona,
            bu,
        },
    })
}

/// Numbers each distinct [`Charged`] of `rows` (in `usage_attributions`), and returns the
/// numbers.
async fn attributions<'a>(
    tx: &mut Tx,
    tenant: &TenantId,
    rows: &[Row<'a>],
) -> Result<HashMap<Charged<'a>, i64>> {
    let mut wanted: Vec<Charged<'a>> = Vec::new();
    let mut seen: HashSet<Charged<'a>> = HashSet::new();
    for r in rows {
        if seen.insert(r.charged) {
            wanted.push(r.charged);
        }
    }
    let texts: Vec<Attribution> = wanted.iter().map(Charged::attribution).collect();
    let numbers = store::number_attributions(tx, tenant, &texts).await?;
    Ok(wanted.into_iter().zip(numbers).collect())
}

/// Ingests a batch inside the caller's transaction: validates each event, records the new ones
/// (a (source, id) seen before is a duplicate, forever), adds them to the rollups, and checks
/// the soft caps of the SKUs it touched.
pub async fn ingest(
    tx: &mut Tx,
    tenant: &TenantId,
    events: &[EventInput],
    now: DateTime<Utc>,
) -> Result<IngestReport> {
    let book = price_book(tx, tenant).await?;
    let drivers = drivers(tx, tenant, &book).await?;
    let earliest = earliest_usage(now);
    let window = Window {
        earliest,
        earliest_label: period_label(earliest),
        closed: store::closed_periods(tx, tenant)
            .await?
            .into_iter()
            .collect(),
    };
    let mut report = IngestReport::default();
    let mut rows = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        // Each event is checked on its own: a malformed or invalid one is rejected, the rest
        // still land.
        let checked = match &event.0 {
            Ok(ev) => check_event(ev, &drivers, &window, now).map_err(|e| (ev.id.clone(), e)),
            Err(m) => Err((m.id.clone(), m.reason.clone())),
        };
        match checked {
            Ok(r) => rows.push(r),
            Err((id, reason)) => report.rejected.push(Rejection {
                index: i as u32,
                id,
                reason,
            }),
        }
    }
    let numbers = attributions(tx, tenant, &rows).await?;
    for r in &mut rows {
        r.event.attribution = numbers[&r.charged];
    }
    // The first occurrence of each (source, id) in the batch is a candidate; later ones are
    // duplicates.
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(rows.len());
    let mut candidates: Vec<&Row> = Vec::with_capacity(rows.len());
    for r in &rows {
        if seen.insert((&r.event.source, &r.event.id)) {
            candidates.push(r);
        } else {
            report.duplicates += 1;
        }
    }
    drop(seen);
    // Candidates counted before are duplicates too: the store records only the new ones and
    // says which they were.
    let ingested_at = to_millis(now);
    let new = {
        let events: Vec<&NewEvent> = candidates.iter().map(|r| &r.event).collect();
        store::record_new_events(tx, tenant, &events, ingested_at).await?
    };
    let fresh: Vec<&Row> = candidates
        .into_iter()
        .zip(&new)
        .filter_map(|(r, &new)| new.then_some(r))
        .collect();
    report.duplicates += (new.len() - fresh.len()) as u32;
    report.accepted = fresh.len() as u32;
    // Roll up what is new.
    let mut sums: HashMap<(i64, i64, i64), (i64, i64)> = HashMap::new();
    let mut touched: HashSet<(i64, &Text)> = HashSet::new();
    for r in &fresh {
        let e = sums
            .entry((r.period, r.day, r.event.attribution))
            .or_default();
        e.0 += r.event.qty_micro;
        e.1 += 1;
        touched.insert((r.period, r.charged.sku));
    }
    let charged: HashMap<i64, Attribution> = numbers
        .into_iter()
        .map(|(c, n)| (n, c.attribution()))
        .collect();
    let deltas: Vec<RollupDelta> = sums
        .into_iter()
        .map(
            |((period, day, attribution), (qty_micro, events))| RollupDelta {
                period,
                day,
                charged: &charged[&attribution],
                qty_micro,
                events,
            },
        )
        .collect();
    store::add_to_rollups(tx, tenant, &deltas).await?;
    // Soft caps of the SKUs this batch touched, in the current period.
    let current = to_millis(period_start(now));
    for (period, sku) in touched {
        let Some(cap) = book.prices.get(&**sku).and_then(|p| p.cap) else {
            continue;
        };
        let after = store::period_qty(tx, tenant, period, sku).await?;
        let state = cap_state(sku, cap, after);
        // Every threshold reached and not yet raised this period is raised now — once — even if
        // a lowered cap jumps several at a time.
        for threshold in CAP_THRESHOLDS {
            if state.percent >= threshold
                && store::raise_cap_alert(tx, tenant, period, sku, threshold, ingested_at).await?
            {
                report.crossed.push(Crossing {
                    sku: sku.to_string(),
                    threshold,
                    period: period_label(from_millis(period)),
                    state: state.clone(),
                });
            }
        }
        if period == current && state.percent >= 100 {
            report.over_cap.push(state);
        }
    }
    report.over_cap.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(report)
}

/// Renders a timestamp of the period API.
pub fn ts(ms: i64) -> String {
    crate::clock::rfc3339(from_millis(ms))
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
    fn split_amounts_add_up_to_the_amount_of_the_whole() {
        let p = |s: &str| Decimal::from_str(s).unwrap();
        let micro = |s: &str| to_micro(p(s)).unwrap();
        // The issue's case: two halves of a cent make one cent, not two.
        let parts = split_amount(&[micro("0.4"), micro("0.4")], p("0.0125"));
        assert_eq!(parts, [p("0.01"), p("0.00")]);
        // The cent left over goes to the largest remainder.
        let parts = split_amount(&[micro("0.4"), micro("0.6")], p("0.0125"));
        assert_eq!(parts, [p("0.00"), p("0.01")]);
        let parts = split_amount(&[micro("1"), micro("1"), micro("1")], p("0.01"));
        assert_eq!(parts, [p("0.01"), p("0.01"), p("0.01")]);
        let parts = split_amount(&[micro("1"), micro("1"), micro("1")], p("0.01666"));
        assert_eq!(parts.iter().sum::<Decimal>(), p("0.05"));
        assert!(split_amount(&[], p("1")).is_empty());
        assert_eq!(split_amount(&[micro("7"), 0], p("0")), [p("0"), p("0")]);
        // Many parts at an awkward price: the sum is always the whole's amount, and no part is
        // more than a cent away from its exact share.
        let mut seed = 7u64;
        for _ in 0..200 {
            let n = (seed % 40) as usize + 1;
            let qty: Vec<i64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) % 5_000_000) as i64
                })
                .collect();
            let price = p("0.0123457");
            let parts = split_amount(&qty, price);
            assert_eq!(
                parts.iter().sum::<Decimal>(),
                amount(qty.iter().sum(), price)
            );
            for (q, a) in qty.iter().zip(&parts) {
                let exact = Decimal::new(*q, QTY_SCALE) * price;
                assert!((exact - a).abs() < p("0.01"), "{q} → {a}");
                assert_eq!(a.scale(), 2);
            }
        }
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

    fn event(v: serde_json::Value) -> std::result::Result<UsageEvent, Malformed> {
        EventInput::deserialize(&v).unwrap().0
    }

    #[test]
    fn one_malformed_event_never_fails_the_parse() {
        use serde_json::json;
        let ok = event(
            json!({"id": "e1", "source": "s", "time": "2026-11-01T00:00:00Z",
            "sku": "a", "quantity": "0.5", "key_id": null, "extra": {"nested": [1, 2]}}),
        )
        .unwrap();
        assert_eq!((ok.id.as_deref(), ok.key_id), (Some("e1"), None));
        assert_eq!(
            ok.quantity.unwrap().0.unwrap(),
            Decimal::from_str("0.5").unwrap()
        );
        for (v, reason) in [
            (json!(null), "null"),
            (json!([1, 2]), "an array"),
            (json!("e1"), "a string"),
            (json!({"id": 5}), "`id`: number `5`"),
            (
                json!({"id": "e2", "quantity": true}),
                "`quantity`: boolean `true`",
            ),
            (json!({"id": "e3", "sku": {"a": 1}}), "`sku`: an object"),
        ] {
            let m = event(v.clone()).unwrap_err();
            assert!(
                m.reason.starts_with("malformed event: "),
                "{v}: {}",
                m.reason
            );
            assert!(m.reason.contains(reason), "{v}: {}", m.reason);
            assert_eq!(m.id.as_deref(), v.get("id").and_then(|i| i.as_str()));
        }
        // From JSON text a key can repeat; that event is malformed too.
        let batch: Vec<EventInput> =
            serde_json::from_str(r#"[{"id": "a", "id": "b"}, {"id": "c"}]"#).unwrap();
        assert!(
            batch[0]
                .0
                .as_ref()
                .unwrap_err()
                .reason
                .contains("duplicate field `id`")
        );
        assert!(batch[1].0.is_ok());
    }
}
