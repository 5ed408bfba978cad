//! Invoice documents: a finalized [`InvoiceDoc`] rendered as a paginated A4 PDF
//! ([`invoice_pdf`]) and as a FinOps FOCUS cost-and-usage CSV ([`invoice_csv`]).
//!
//! Both renderers are pure: the same document always gives the same bytes (the PDF's
//! creation date is the invoice's issue date, not the wall clock). They print the amounts
//! they are given and never recompute them; computing `amount` and `total` is the billing
//! engine's job (see [`InvoiceLine::amount`]).
//!
//! The PDF uses the base-14 fonts Helvetica and Helvetica-Bold, which every PDF reader
//! provides, so nothing is embedded. Their encoding is WinAnsiEncoding (Windows-1252):
//! characters outside it are shown as `?`, and control characters as spaces. Text metrics
//! come from Adobe's AFM files, so columns align and long cells wrap.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Timelike, Utc};
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// A finalized invoice, ready to render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDoc {
    /// Invoice number, e.g. `INV-2026-0007`.
    pub number: String,
    /// The billed tenant's id.
    pub tenant_id: String,
    /// The billed tenant's display name.
    pub tenant_name: String,
    /// Start of the billing period (inclusive).
    pub period_start: DateTime<Utc>,
    /// End of the billing period (exclusive).
    pub period_end: DateTime<Utc>,
    /// When the invoice was issued.
    pub issued_at: DateTime<Utc>,
    /// ISO 4217 currency code, e.g. `USD`.
    pub currency: String,
    /// The line items, in display order.
    pub lines: Vec<InvoiceLine>,
    /// Sum of the line amounts, 2 decimal places.
    pub total: Decimal,
}

/// One line item of an [`InvoiceDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    /// The priced SKU's id.
    pub sku_id: String,
    /// Human-readable description of the charge.
    pub description: String,
    /// Unit of the quantity, e.g. `request` or `GB-hour`.
    pub unit: String,
    /// Quantity consumed, in `unit`s.
    pub quantity: Decimal,
    /// Price of one `unit` in major currency units; may be sub-cent (e.g. `0.0001`).
    pub unit_price: Decimal,
    /// `quantity × unit_price` rounded to 2 decimal places, half away from zero
    /// ([`RoundingStrategy::MidpointAwayFromZero`], not banker's rounding).
    pub amount: Decimal,
    /// Id of the business unit (sub-account) the line is billed to, when per-BU.
    pub sub_account_id: Option<String>,
    /// Name of the business unit (sub-account) the line is billed to, when per-BU.
    pub sub_account_name: Option<String>,
}

/// Renders `doc` as a PDF: A4 pages with the invoice header, a line-item table (its
/// header repeated on every page), the total, and a "Page N of M" footer.
pub fn invoice_pdf(doc: &InvoiceDoc) -> Vec<u8> {
    let header = FirstHeader::layout(doc);
    let rows = table_rows(doc);
    let plan = paginate(&rows, PAGE_H - MARGIN_TOP - header.height);
    let page_count = plan.len();

    let mut ids = RefAlloc::default();
    let catalog_id = ids.next();
    let tree_id = ids.next();
    let info_id = ids.next();
    let regular_id = ids.next();
    let bold_id = ids.next();
    let page_ids: Vec<(Ref, Ref)> = plan.iter().map(|_| (ids.next(), ids.next())).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().map(|&(page, _)| page))
        .count(ids.count_of(page_count));

    for (index, (page_plan, &(page_id, content_id))) in plan.iter().zip(&page_ids).enumerate() {
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree_id);
        page.contents(content_id);
        page.resources()
            .fonts()
            .pair(Font::Regular.resource(), regular_id)
            .pair(Font::Bold.resource(), bold_id);
        page.finish();

        let content = render_page(doc, &header, &rows, page_plan, index + 1, page_count);
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&content, 6);
        pdf.stream(content_id, &compressed)
            .filter(Filter::FlateDecode);
    }

    for (id, font) in [(regular_id, Font::Regular), (bold_id, Font::Bold)] {
        pdf.type1_font(id)
            .base_font(Name(font.base_font()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }

    let title = format!("Invoice {} \u{2013} {}", doc.number, doc.tenant_name);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("tenantops"))
        .creation_date(pdf_date(doc.issued_at));

    pdf.finish()
}

/// Renders `doc` as a FinOps FOCUS CSV (RFC 4180, CRLF line ends): a header row of
/// [`FOCUS_COLUMNS`] and one row per line item, in order.
///
/// Costs (`BilledCost`, `EffectiveCost`, `ListCost`, `ContractedCost`) are the line's
/// `amount` exactly, with at least 2 decimals, so they sum to `total`. Charge periods are
/// the billing period. Quantities and unit prices are plain decimals without trailing
/// zeros. Values are written verbatim (no spreadsheet-formula escaping), so the file
/// round-trips exactly.
pub fn invoice_csv(doc: &InvoiceDoc) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Every record is a `[_; COLUMN_COUNT]`, so the writer's equal-length check holds, and
    // writing to a `Vec<u8>` does no I/O: these writes cannot fail.
    writer
        .write_record(COLUMNS)
        .expect("csv: header record written to a Vec");
    let period_start = rfc3339(doc.period_start);
    let period_end = rfc3339(doc.period_end);
    for line in &doc.lines {
        let cost = plain_amount(line.amount);
        let quantity = line.quantity.normalize().to_string();
        let unit_price = line.unit_price.normalize().to_string();
        let record = COLUMNS.map(|column| match column {
            "InvoiceId" => doc.number.clone(),
            "BillingAccountId" => doc.tenant_id.clone(),
            "BillingAccountName" => doc.tenant_name.clone(),
            "SubAccountId" => line.sub_account_id.clone().unwrap_or_default(),
            "SubAccountName" => line.sub_account_name.clone().unwrap_or_default(),
            "BillingPeriodStart" | "ChargePeriodStart" => period_start.clone(),
            "BillingPeriodEnd" | "ChargePeriodEnd" => period_end.clone(),
            "BillingCurrency" => doc.currency.clone(),
            "BilledCost" | "EffectiveCost" | "ListCost" | "ContractedCost" => cost.clone(),
            "ChargeCategory" => "Usage".to_owned(),
            "ChargeFrequency" => "Usage-Based".to_owned(),
            "ChargeDescription" => line.description.clone(),
            "ConsumedQuantity" | "PricingQuantity" => quantity.clone(),
            "ConsumedUnit" | "PricingUnit" => line.unit.clone(),
            "ListUnitPrice" | "ContractedUnitPrice" => unit_price.clone(),
            "PricingCategory" => "Standard".to_owned(),
            "SkuId" => line.sku_id.clone(),
            // Empty (null) for regular charges, i.e. not corrections.
            "ChargeClass" => String::new(),
            // Every entry of COLUMNS is matched above; the tests check no column is blank.
            _ => String::new(),
        });
        writer
            .write_record(&record)
            .expect("csv: record written to a Vec");
    }
    let bytes = writer
        .into_inner()
        .expect("csv: flushing into a Vec cannot fail");
    // Every field is a `&str`, so the output is UTF-8; the lossy path is never taken.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

const COLUMN_COUNT: usize = 26;

const COLUMNS: [&str; COLUMN_COUNT] = [
    "InvoiceId",
    "BillingAccountId",
    "BillingAccountName",
    "SubAccountId",
    "SubAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ChargeCategory",
    "ChargeClass",
    "ChargeFrequency",
    "ChargeDescription",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "PricingCategory",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "SkuId",
];

/// The FinOps FOCUS column names of [`invoice_csv`]'s header row, in order.
pub const FOCUS_COLUMNS: &[&str] = &COLUMNS;

// ---------------------------------------------------------------------------------------
// Formatting

/// `amount` rounded half away from zero to 2 decimals, e.g. `USD 12,345.67`.
fn money(currency: &str, amount: Decimal) -> String {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    format!("{currency} {}", grouped(rounded))
}

/// A unit price with as many decimals as it has (at least 2), e.g. `USD 0.0001`.
fn unit_price(currency: &str, price: Decimal) -> String {
    let mut price = price.normalize();
    if price.scale() < 2 {
        price.rescale(2);
    }
    format!("{currency} {}", grouped(price))
}

/// A quantity without trailing zeros, with thousands separators, e.g. `1,500.25`.
fn quantity(value: Decimal) -> String {
    grouped(value.normalize())
}

/// `value` as plain digits with `,` between thousands; keeps its scale.
fn grouped(value: Decimal) -> String {
    let digits = value.abs().to_string();
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let mut out = String::with_capacity(digits.len() + int.len() / 3 + 1);
    if value.is_sign_negative() && !value.is_zero() {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A cost for the CSV: the exact value, with at least 2 decimals.
fn plain_amount(amount: Decimal) -> String {
    let mut amount = amount;
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    amount.to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The last day of the half-open period `[start, end)`.
fn last_day(start: DateTime<Utc>, end: DateTime<Utc>) -> NaiveDate {
    if end > start {
        end.checked_sub_signed(TimeDelta::nanoseconds(1))
            .unwrap_or(end)
            .date_naive()
    } else {
        end.date_naive()
    }
}

fn pdf_date(at: DateTime<Utc>) -> Date {
    let narrow = |v: u32| u8::try_from(v).unwrap_or(0);
    Date::new(u16::try_from(at.year().clamp(0, 9999)).unwrap_or(0))
        .month(narrow(at.month()))
        .day(narrow(at.day()))
        .hour(narrow(at.hour()))
        .minute(narrow(at.minute()))
        .second(narrow(at.second()))
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

// ---------------------------------------------------------------------------------------
// Text: WinAnsi encoding and Helvetica metrics

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    fn base_font(self) -> &'static [u8] {
        match self {
            Font::Regular => b"Helvetica",
            Font::Bold => b"Helvetica-Bold",
        }
    }

    /// Width of WinAnsi-encoded `text` at `size` points.
    fn width(self, text: &[u8], size: f32) -> f32 {
        let table = match self {
            Font::Regular => &HELVETICA_WIDTHS,
            Font::Bold => &HELVETICA_BOLD_WIDTHS,
        };
        let units: u32 = text
            .iter()
            .map(|&b| {
                b.checked_sub(32)
                    .and_then(|i| table.get(usize::from(i)))
                    .map_or(0, |&w| u32::from(w))
            })
            .sum();
        // Precision loss only past 2^24 font units (~16,000 characters), far wider than a page.
        let units = units as f32;
        units * size / 1000.0
    }
}

/// Encodes `text` in WinAnsiEncoding (Windows-1252): unencodable characters become `?`,
/// whitespace and control characters become spaces.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            code @ (0x20..=0x7e | 0xa0..=0xff) => u8::try_from(code).unwrap_or(b'?'),
            _ if c.is_whitespace() || c.is_control() => b' ',
            _ => match c {
                '\u{20ac}' => 0x80,
                '\u{201a}' => 0x82,
                '\u{0192}' => 0x83,
                '\u{201e}' => 0x84,
                '\u{2026}' => 0x85,
                '\u{2020}' => 0x86,
                '\u{2021}' => 0x87,
                '\u{02c6}' => 0x88,
                '\u{2030}' => 0x89,
                '\u{0160}' => 0x8a,
                '\u{2039}' => 0x8b,
                '\u{0152}' => 0x8c,
                '\u{017d}' => 0x8e,
                '\u{2018}' => 0x91,
                '\u{2019}' => 0x92,
                '\u{201c}' => 0x93,
                '\u{201d}' => 0x94,
                '\u{2022}' => 0x95,
                '\u{2013}' => 0x96,
                '\u{2014}' => 0x97,
                '\u{02dc}' => 0x98,
                '\u{2122}' => 0x99,
                '\u{0161}' => 0x9a,
                '\u{203a}' => 0x9b,
                '\u{0153}' => 0x9c,
                '\u{017e}' => 0x9e,
                '\u{0178}' => 0x9f,
                _ => b'?',
            },
        })
        .collect()
}

const ELLIPSIS: u8 = 0x85;

/// Greedy word wrap of WinAnsi `text` into lines at most `max_width` wide; words wider
/// than a line are broken. Beyond `max_lines`, the last line ends with an ellipsis.
fn wrap(text: &[u8], font: Font, size: f32, max_width: f32, max_lines: usize) -> Vec<Vec<u8>> {
    let fits = |line: &[u8]| font.width(line, size) <= max_width;
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for word in text.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        if lines.len() > max_lines {
            break;
        }
        if !current.is_empty() {
            let mut candidate = current.clone();
            candidate.push(b' ');
            candidate.extend_from_slice(word);
            if fits(&candidate) {
                current = candidate;
                continue;
            }
            lines.push(std::mem::take(&mut current));
        }
        let mut rest = word;
        while !fits(rest) && lines.len() <= max_lines {
            // At least one character per line, so this always advances.
            let fitting = (1..rest.len())
                .rev()
                .find(|&n| fits(&rest[..n]))
                .unwrap_or(1);
            // Prefer to break after punctuation (as in `compute.vcpu-hour`) in the second
            // half of the fitting prefix.
            let take = rest[..fitting]
                .iter()
                .rposition(|b| matches!(b, b'-' | b'/' | b'_' | b'.' | b':' | b','))
                .map(|i| i + 1)
                .filter(|&n| n * 2 >= fitting)
                .unwrap_or(fitting);
            lines.push(rest[..take].to_vec());
            rest = &rest[take..];
        }
        current = rest.to_vec();
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            last.push(ELLIPSIS);
            while last.len() > 1 && !fits(last) {
                last.remove(last.len() - 2);
            }
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------
// Layout

const PAGE_W: f32 = 595.276; // A4, in points
const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 48.0;
const MARGIN_TOP: f32 = 52.0;
const TABLE_BOTTOM: f32 = 64.0; // lowest y the table may reach; the footer sits below
const FOOTER_Y: f32 = 34.0;

const TABLE_SIZE: f32 = 8.5;
const TABLE_LEADING: f32 = 11.0;
const ROW_PAD: f32 = 4.0;
const CELL_PAD: f32 = 4.0;
const HEADER_ROW_H: f32 = 20.0;
const TOTAL_BLOCK_H: f32 = 52.0;
const CONTINUATION_HEADER_H: f32 = 40.0;

const MUTED: f32 = 0.38;
const BLACK: f32 = 0.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

struct Column {
    title: &'static str,
    width: f32,
    align: Align,
    max_lines: usize,
}

const TABLE_W: f32 = PAGE_W - 2.0 * MARGIN_X;

const COLS: [Column; 6] = [
    Column {
        title: "SKU",
        width: 84.0,
        align: Align::Left,
        max_lines: 3,
    },
    Column {
        title: "Description",
        width: TABLE_W - 84.0 - 60.0 - 58.0 - 72.0 - 84.0,
        align: Align::Left,
        max_lines: 4,
    },
    Column {
        title: "Quantity",
        width: 60.0,
        align: Align::Right,
        max_lines: 2,
    },
    Column {
        title: "Unit",
        width: 58.0,
        align: Align::Left,
        max_lines: 2,
    },
    Column {
        title: "Unit price",
        width: 72.0,
        align: Align::Right,
        max_lines: 2,
    },
    Column {
        title: "Amount",
        width: 84.0,
        align: Align::Right,
        max_lines: 2,
    },
];

fn column_x(index: usize) -> f32 {
    MARGIN_X + COLS.iter().take(index).map(|c| c.width).sum::<f32>()
}

/// One wrapped line of a table cell.
struct CellLine {
    text: Vec<u8>,
    gray: f32,
}

struct Row {
    cells: [Vec<CellLine>; 6],
    height: f32,
}

fn table_rows(doc: &InvoiceDoc) -> Vec<Row> {
    let cell = |column: usize, text: &str, gray: f32, max_lines: usize| -> Vec<CellLine> {
        let inner = COLS[column].width - 2.0 * CELL_PAD;
        wrap(&win_ansi(text), Font::Regular, TABLE_SIZE, inner, max_lines)
            .into_iter()
            .map(|text| CellLine { text, gray })
            .collect()
    };
    let mut rows: Vec<Row> = doc
        .lines
        .iter()
        .map(|line| {
            let mut description = cell(1, &line.description, BLACK, COLS[1].max_lines);
            let business_unit = match (&line.sub_account_name, &line.sub_account_id) {
                (Some(name), Some(id)) => Some(format!("Business unit: {name} ({id})")),
                (Some(name), None) => Some(format!("Business unit: {name}")),
                (None, Some(id)) => Some(format!("Business unit: {id}")),
                (None, None) => None,
            };
            if let Some(bu) = business_unit {
                description.extend(cell(1, &bu, MUTED, 2));
            }
            [
                cell(0, &line.sku_id, BLACK, COLS[0].max_lines),
                description,
                cell(2, &quantity(line.quantity), BLACK, COLS[2].max_lines),
                cell(3, &line.unit, BLACK, COLS[3].max_lines),
                cell(
                    4,
                    &unit_price(&doc.currency, line.unit_price),
                    BLACK,
                    COLS[4].max_lines,
                ),
                cell(
                    5,
                    &money(&doc.currency, line.amount),
                    BLACK,
                    COLS[5].max_lines,
                ),
            ]
        })
        .map(Row::new)
        .collect();
    if rows.is_empty() {
        let empty = || Vec::new();
        rows.push(Row::new([
            empty(),
            cell(1, "No charges in this billing period.", MUTED, 1),
            empty(),
            empty(),
            empty(),
            empty(),
        ]));
    }
    rows
}

impl Row {
    fn new(cells: [Vec<CellLine>; 6]) -> Row {
        let lines = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
        // At most 6 lines per cell: the cast is exact.
        let height = lines as f32 * TABLE_LEADING + 2.0 * ROW_PAD;
        Row { cells, height }
    }
}

/// What one page shows: a run of table rows (by index) and, on the last page, the total.
struct PagePlan {
    rows: std::ops::Range<usize>,
    total: bool,
}

/// Splits `rows` over pages; the first page's table starts at `first_top`.
fn paginate(rows: &[Row], first_top: f32) -> Vec<PagePlan> {
    let continuation_top = PAGE_H - MARGIN_TOP - CONTINUATION_HEADER_H;
    let mut pages = vec![PagePlan {
        rows: 0..0,
        total: false,
    }];
    let mut y = first_top - HEADER_ROW_H;
    for (index, row) in rows.iter().enumerate() {
        let started = pages.last().is_some_and(|p| !p.rows.is_empty());
        if y - row.height < TABLE_BOTTOM && started {
            pages.push(PagePlan {
                rows: index..index,
                total: false,
            });
            y = continuation_top - HEADER_ROW_H;
        }
        if let Some(page) = pages.last_mut() {
            page.rows.end = index + 1;
        }
        y -= row.height;
    }
    if y - TOTAL_BLOCK_H < TABLE_BOTTOM {
        pages.push(PagePlan {
            rows: rows.len()..rows.len(),
            total: true,
        });
    } else if let Some(page) = pages.last_mut() {
        page.total = true;
    }
    pages
}

/// The first page's header: title, total, and the invoice's facts as label/value pairs.
struct FirstHeader {
    facts: Vec<(&'static str, Vec<Vec<u8>>, Font)>,
    height: f32,
}

const TITLE_SIZE: f32 = 24.0;
const FACT_SIZE: f32 = 9.5;
const FACT_LEADING: f32 = 14.0;
const FACT_LABEL_W: f32 = 92.0;
const FACT_VALUE_W: f32 = 300.0;

impl FirstHeader {
    fn layout(doc: &InvoiceDoc) -> FirstHeader {
        let period = format!(
            "{} \u{2013} {} (UTC, inclusive)",
            doc.period_start.date_naive().format("%Y-%m-%d"),
            last_day(doc.period_start, doc.period_end).format("%Y-%m-%d"),
        );
        let issued = doc.issued_at.date_naive().format("%Y-%m-%d").to_string();
        let value = |text: &str, font: Font, max_lines: usize| {
            wrap(&win_ansi(text), font, FACT_SIZE, FACT_VALUE_W, max_lines)
        };
        let facts = vec![
            (
                "Invoice number",
                value(&doc.number, Font::Bold, 1),
                Font::Bold,
            ),
            ("Tenant", value(&doc.tenant_name, Font::Bold, 2), Font::Bold),
            (
                "Tenant ID",
                value(&doc.tenant_id, Font::Regular, 2),
                Font::Regular,
            ),
            (
                "Billing period",
                value(&period, Font::Regular, 1),
                Font::Regular,
            ),
            (
                "Issue date",
                value(&issued, Font::Regular, 1),
                Font::Regular,
            ),
            (
                "Currency",
                value(&doc.currency, Font::Regular, 1),
                Font::Regular,
            ),
        ];
        let fact_lines: usize = facts.iter().map(|(_, lines, _)| lines.len().max(1)).sum();
        // At most a dozen lines: the cast is exact.
        let facts_h = fact_lines as f32 * FACT_LEADING;
        FirstHeader {
            facts,
            height: TITLE_SIZE + 22.0 + facts_h + 18.0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Drawing

fn text(content: &mut Content, font: Font, size: f32, gray: f32, x: f32, y: f32, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    content
        .begin_text()
        .set_fill_gray(gray)
        .set_font(font.resource(), size)
        .next_line(x, y)
        .show(Str(bytes))
        .end_text();
}

fn text_right(
    content: &mut Content,
    font: Font,
    size: f32,
    gray: f32,
    right: f32,
    y: f32,
    bytes: &[u8],
) {
    let x = right - font.width(bytes, size);
    text(content, font, size, gray, x, y, bytes);
}

fn rule(content: &mut Content, gray: f32, width: f32, x0: f32, x1: f32, y: f32) {
    content
        .set_stroke_gray(gray)
        .set_line_width(width)
        .move_to(x0, y)
        .line_to(x1, y)
        .stroke();
}

fn fill_rect(content: &mut Content, gray: f32, x: f32, y: f32, w: f32, h: f32) {
    content.set_fill_gray(gray).rect(x, y, w, h).fill_nonzero();
}

fn render_page(
    doc: &InvoiceDoc,
    header: &FirstHeader,
    rows: &[Row],
    plan: &PagePlan,
    page_number: usize,
    page_count: usize,
) -> Vec<u8> {
    let mut c = Content::new();
    let right = PAGE_W - MARGIN_X;
    let top = PAGE_H - MARGIN_TOP;

    let mut y = if page_number == 1 {
        draw_first_header(&mut c, doc, header);
        top - header.height
    } else {
        let title = win_ansi(&format!("Invoice {} (continued)", doc.number));
        text(
            &mut c,
            Font::Bold,
            13.0,
            BLACK,
            MARGIN_X,
            top - 13.0,
            &title,
        );
        let name = wrap(&win_ansi(&doc.tenant_name), Font::Regular, 9.0, TABLE_W, 1);
        if let Some(name) = name.first() {
            text(
                &mut c,
                Font::Regular,
                9.0,
                MUTED,
                MARGIN_X,
                top - 27.0,
                name,
            );
        }
        top - CONTINUATION_HEADER_H
    };

    if !plan.rows.is_empty() {
        fill_rect(
            &mut c,
            0.9,
            MARGIN_X,
            y - HEADER_ROW_H,
            TABLE_W,
            HEADER_ROW_H,
        );
        let baseline = y - HEADER_ROW_H + 7.0;
        for (i, col) in COLS.iter().enumerate() {
            draw_cell_text(&mut c, Font::Bold, i, baseline, col.title.as_bytes(), BLACK);
        }
        y -= HEADER_ROW_H;
        for index in plan.rows.clone() {
            let row = &rows[index];
            if index % 2 == 1 {
                fill_rect(&mut c, 0.965, MARGIN_X, y - row.height, TABLE_W, row.height);
            }
            for (i, cell) in row.cells.iter().enumerate() {
                let mut baseline = y - ROW_PAD - TABLE_SIZE;
                for line in cell {
                    draw_cell_text(&mut c, Font::Regular, i, baseline, &line.text, line.gray);
                    baseline -= TABLE_LEADING;
                }
            }
            y -= row.height;
        }
        if !plan.total {
            rule(&mut c, 0.6, 0.5, MARGIN_X, right, y);
        }
    }

    if plan.total {
        rule(&mut c, BLACK, 0.8, MARGIN_X, right, y - 6.0);
        let total = win_ansi(&money(&doc.currency, doc.total));
        let size = 11.0;
        let baseline = y - 24.0;
        text_right(
            &mut c,
            Font::Bold,
            size,
            BLACK,
            right - CELL_PAD,
            baseline,
            &total,
        );
        let label_right = right - CELL_PAD - Font::Bold.width(&total, size) - 18.0;
        text_right(
            &mut c,
            Font::Bold,
            size,
            BLACK,
            label_right,
            baseline,
            b"Total",
        );
        let note = format!(
            "All amounts in {}. Line amounts are quantity \u{d7} unit price, rounded half up to 2 decimals.",
            doc.currency
        );
        for line in wrap(&win_ansi(&note), Font::Regular, 7.5, TABLE_W, 1) {
            text(&mut c, Font::Regular, 7.5, MUTED, MARGIN_X, y - 42.0, &line);
        }
    }

    // Footer.
    rule(&mut c, 0.8, 0.5, MARGIN_X, right, FOOTER_Y + 12.0);
    let left = wrap(
        &win_ansi(&format!("Invoice {}", doc.number)),
        Font::Regular,
        8.0,
        TABLE_W / 2.0,
        1,
    );
    if let Some(left) = left.first() {
        text(&mut c, Font::Regular, 8.0, MUTED, MARGIN_X, FOOTER_Y, left);
    }
    let page = format!("Page {page_number} of {page_count}");
    text_right(
        &mut c,
        Font::Regular,
        8.0,
        MUTED,
        right,
        FOOTER_Y,
        page.as_bytes(),
    );

    c.finish().into_vec()
}

fn draw_first_header(c: &mut Content, doc: &InvoiceDoc, header: &FirstHeader) {
    let right = PAGE_W - MARGIN_X;
    let top = PAGE_H - MARGIN_TOP;
    text(
        c,
        Font::Bold,
        TITLE_SIZE,
        BLACK,
        MARGIN_X,
        top - TITLE_SIZE,
        b"Invoice",
    );
    text_right(c, Font::Regular, 9.0, MUTED, right, top - 9.0, b"Total");
    let total = win_ansi(&money(&doc.currency, doc.total));
    text_right(c, Font::Bold, 16.0, BLACK, right, top - TITLE_SIZE, &total);

    let mut y = top - TITLE_SIZE - 22.0 - FACT_SIZE;
    for (label, lines, font) in &header.facts {
        text(
            c,
            Font::Regular,
            FACT_SIZE,
            MUTED,
            MARGIN_X,
            y,
            label.as_bytes(),
        );
        if lines.is_empty() {
            y -= FACT_LEADING;
        }
        for line in lines {
            text(c, *font, FACT_SIZE, BLACK, MARGIN_X + FACT_LABEL_W, y, line);
            y -= FACT_LEADING;
        }
    }
}

fn draw_cell_text(
    c: &mut Content,
    font: Font,
    column: usize,
    baseline: f32,
    bytes: &[u8],
    gray: f32,
) {
    let col = &COLS[column];
    let x = column_x(column);
    match col.align {
        Align::Left => text(c, font, TABLE_SIZE, gray, x + CELL_PAD, baseline, bytes),
        Align::Right => text_right(
            c,
            font,
            TABLE_SIZE,
            gray,
            x + col.width - CELL_PAD,
            baseline,
            bytes,
        ),
    }
}

/// Allocates PDF object ids.
#[derive(Default)]
struct RefAlloc(i32);

impl RefAlloc {
    fn next(&mut self) -> Ref {
        // A document has 5 objects plus 2 per page, and every page holds at least one
        // line item: i32::MAX is out of reach, and ids start at 1 as `Ref::new` requires.
        self.0 = self.0.checked_add(1).expect("PDF object ids fit in i32");
        Ref::new(self.0)
    }

    fn count_of(&self, pages: usize) -> i32 {
        // Fewer pages than object ids, which fit in i32 (see `next`).
        i32::try_from(pages).unwrap_or(i32::MAX)
    }
}

/// Glyph widths (1/1000 em) of Helvetica for WinAnsi codes 32..=255, from Adobe's AFM;
/// 0 marks codes without a glyph.
const HELVETICA_WIDTHS: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, //
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, //
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, //
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0, //
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, //
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667, //
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, //
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, //
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, //
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, //
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500, //
];

/// Glyph widths of Helvetica-Bold, laid out as [`HELVETICA_WIDTHS`].
const HELVETICA_BOLD_WIDTHS: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0, //
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, //
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667, //
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, //
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, //
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, //
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, //
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278, //
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556, //
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeSet;
    use std::process::Command;
    use std::str::FromStr;

    const TRICKY: &str = "Café Zürich (Ops) \\ \"R&D\", Nord";

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap()
    }

    fn line(sku: &str, description: &str, unit: &str, quantity: &str, price: &str) -> InvoiceLine {
        let (quantity, unit_price) = (d(quantity), d(price));
        InvoiceLine {
            sku_id: sku.to_owned(),
            description: description.to_owned(),
            unit: unit.to_owned(),
            quantity,
            unit_price,
            amount: (quantity * unit_price)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
            sub_account_id: None,
            sub_account_name: None,
        }
    }

    fn doc(number: &str, tenant_name: &str, lines: Vec<InvoiceLine>) -> InvoiceDoc {
        let total = lines.iter().map(|l| l.amount).sum();
        InvoiceDoc {
            number: number.to_owned(),
            tenant_id: "tnt_01HZX4Q8".to_owned(),
            tenant_name: tenant_name.to_owned(),
            period_start: at(2026, 3, 1),
            period_end: at(2026, 4, 1),
            issued_at: Utc.with_ymd_and_hms(2026, 4, 2, 9, 30, 0).unwrap(),
            currency: "USD".to_owned(),
            lines,
            total,
        }
    }

    /// Three lines: a sub-cent unit price, a per-BU line whose names need escaping, and a
    /// large amount (thousands separators).
    fn small_doc() -> InvoiceDoc {
        let mut requests = line(
            "api.requests",
            "API requests",
            "request",
            "1234567",
            "0.0001",
        );
        requests.sub_account_id = Some("bu-(eng)\\1".to_owned());
        requests.sub_account_name = Some(TRICKY.to_owned());
        let storage = line(
            "storage.gb-hour",
            "Object storage (EU)",
            "GB-hour",
            "7200.500",
            "0.0125",
        );
        let support = line(
            "support.business",
            "Support plan – Business; 東京 desk",
            "month",
            "1",
            "12150",
        );
        doc("INV-2026-0007", TRICKY, vec![requests, storage, support])
    }

    fn large_doc() -> InvoiceDoc {
        let lines = (0..120)
            .map(|i| {
                let description = if i % 7 == 0 {
                    format!(
                        "Compute instance hours for a long-running batch cluster number {i} in region \
                         eu-central with extended description text that must wrap"
                    )
                } else {
                    format!("Usage item {i}")
                };
                line(&format!("sku-{i:03}"), &description, "hour", &format!("{}.25", i * 13), "0.0375")
            })
            .collect();
        doc("INV-2026-0120", "Globex Corporation", lines)
    }

    fn parse(pdf: &[u8]) -> lopdf::Document {
        lopdf::Document::load_mem(pdf).expect("the PDF parses")
    }

    fn page_texts(parsed: &lopdf::Document) -> Vec<String> {
        let pages = parsed.get_pages();
        pages
            .keys()
            .map(|&n| parsed.extract_text(&[n]).unwrap())
            .collect()
    }

    #[test]
    fn small_invoice_pdf_is_one_page_with_everything_on_it() {
        let doc = small_doc();
        assert_eq!(
            doc.total,
            d("12363.47"),
            "fixture: 123.46 + 90.01 + 12150.00"
        );
        let pdf = invoice_pdf(&doc);
        assert!(pdf.starts_with(b"%PDF-"));
        let parsed = parse(&pdf);
        assert_eq!(parsed.get_pages().len(), 1);
        let text = page_texts(&parsed).concat();
        for needle in [
            "Invoice",
            "INV-2026-0007",
            TRICKY,
            "tnt_01HZX4Q8",
            "api.requests",
            "storage.gb-hour",
            "support.business",
            "USD 12,363.47",
            "USD 0.0001",
            "USD 123.46",
            "USD 90.01",
            "1,234,567",
            "7,200.5",
            "2026-03-01 \u{2013} 2026-03-31 (UTC, inclusive)",
            "2026-04-02",
            "Page 1 of 1",
            "Support plan \u{2013} Business; ?? desk",
        ] {
            assert!(
                text.contains(needle),
                "missing {needle:?} in extracted text:\n{text}"
            );
        }
        assert!(
            !text.contains("7,200.500"),
            "quantities drop trailing zeros"
        );
    }

    #[test]
    fn pdf_uses_base14_helvetica_with_winansi_on_a4() {
        let parsed = parse(&invoice_pdf(&small_doc()));
        let (_, &page_id) = parsed.get_pages().iter().next().unwrap();
        let fonts = parsed.get_page_fonts(page_id).unwrap();
        let mut names = BTreeSet::new();
        for font in fonts.values() {
            names.insert(
                String::from_utf8(font.get(b"BaseFont").unwrap().as_name().unwrap().to_vec())
                    .unwrap(),
            );
            assert_eq!(font.get(b"Subtype").unwrap().as_name().unwrap(), b"Type1");
            assert_eq!(
                font.get(b"Encoding").unwrap().as_name().unwrap(),
                b"WinAnsiEncoding"
            );
        }
        assert_eq!(
            names,
            BTreeSet::from(["Helvetica".to_owned(), "Helvetica-Bold".to_owned()])
        );
        let page = parsed.get_dictionary(page_id).unwrap();
        let media_box: Vec<f32> = page
            .get(b"MediaBox")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_float().unwrap())
            .collect();
        assert_eq!(media_box.len(), 4);
        assert!((media_box[2] - 595.276).abs() < 0.01 && (media_box[3] - 841.89).abs() < 0.01);
    }

    #[test]
    fn large_invoice_paginates_and_repeats_the_table_header() {
        let doc = large_doc();
        let pdf = invoice_pdf(&doc);
        let parsed = parse(&pdf);
        let texts = page_texts(&parsed);
        let pages = texts.len();
        assert!(pages >= 3, "120 lines need at least 3 pages, got {pages}");
        let all = texts.concat();
        assert!(all.contains("INV-2026-0120") && all.contains("Globex Corporation"));
        assert!(all.contains(&money("USD", doc.total)));
        for (i, text) in texts.iter().enumerate() {
            assert!(
                text.contains(&format!("Page {} of {pages}", i + 1)),
                "page {}: {text}",
                i + 1
            );
            if i + 1 < pages || text.contains("sku-") {
                for title in ["SKU", "Description", "Quantity", "Unit price", "Amount"] {
                    assert!(
                        text.contains(title),
                        "page {} lacks header {title:?}",
                        i + 1
                    );
                }
            }
            if i > 0 {
                assert!(text.contains("INV-2026-0120 (continued)"));
            }
        }
        // Every SKU appears exactly once, in order, across the pages.
        let skus: Vec<&str> = all.lines().filter(|l| l.starts_with("sku-")).collect();
        let expected: Vec<String> = (0..120).map(|i| format!("sku-{i:03}")).collect();
        assert_eq!(skus, expected);
        // The total is on the last page only.
        let total = money("USD", doc.total);
        let last = texts.last().unwrap();
        assert!(last.contains(&total) && last.lines().any(|l| l == "Total"));
        assert!(texts[1..pages - 1].iter().all(|t| !t.contains(&total)));
    }

    #[test]
    fn total_that_does_not_fit_moves_to_its_own_page() {
        let simple = |i: usize| line(&format!("sku-{i:03}"), "Usage", "hour", "1", "1");
        let doc = (1..200)
            .map(|n| doc("INV-2026-0042", "Initech", (0..n).map(simple).collect()))
            .find(|doc| {
                let header = FirstHeader::layout(doc);
                let plan = paginate(&table_rows(doc), PAGE_H - MARGIN_TOP - header.height);
                plan.last().is_some_and(|p| p.total && p.rows.is_empty())
            })
            .expect("some line count leaves no room for the total");
        let texts = page_texts(&parse(&invoice_pdf(&doc)));
        let pages = texts.len();
        let last = texts.last().unwrap();
        assert!(last.contains(&format!("Page {pages} of {pages}")));
        assert!(
            last.contains(&money("USD", doc.total))
                && !last.contains("sku-")
                && !last.contains("SKU")
        );
        let skus = texts
            .concat()
            .lines()
            .filter(|l| l.starts_with("sku-"))
            .count();
        assert_eq!(skus, doc.lines.len());
    }

    #[test]
    fn pagination_keeps_rows_and_total_above_the_footer_without_waste() {
        let simple = |i: usize| line(&format!("sku-{i:03}"), "Usage", "hour", "1", "1");
        let docs = [small_doc(), large_doc(), doc("INV-0", "Nobody", Vec::new())]
            .into_iter()
            .chain((1..150).map(|n| doc("INV-1", "Initech", (0..n).map(simple).collect())));
        for doc in docs {
            let header = FirstHeader::layout(&doc);
            let rows = table_rows(&doc);
            let first_top = PAGE_H - MARGIN_TOP - header.height;
            let plan = paginate(&rows, first_top);
            assert_eq!(plan.iter().filter(|p| p.total).count(), 1);
            assert!(plan.last().unwrap().total);
            let mut next = 0;
            for (i, page) in plan.iter().enumerate() {
                assert_eq!(page.rows.start, next, "pages cover the rows in order");
                next = page.rows.end;
                let top = if i == 0 {
                    first_top
                } else {
                    PAGE_H - MARGIN_TOP - CONTINUATION_HEADER_H
                };
                let header_h = if page.rows.is_empty() {
                    0.0
                } else {
                    HEADER_ROW_H
                };
                let y = top
                    - header_h
                    - rows[page.rows.clone()]
                        .iter()
                        .map(|r| r.height)
                        .sum::<f32>();
                let bottom = if page.total { y - TOTAL_BLOCK_H } else { y };
                assert!(bottom >= TABLE_BOTTOM, "page {} overflows: {bottom}", i + 1);
                if let Some(following) = plan.get(i + 1) {
                    let needed = rows
                        .get(following.rows.start)
                        .filter(|_| !following.rows.is_empty());
                    let needed = needed.map_or(TOTAL_BLOCK_H, |r| r.height);
                    assert!(y - needed < TABLE_BOTTOM, "page {} broke early", i + 1);
                }
            }
            assert_eq!(next, rows.len());
        }
    }

    #[test]
    fn empty_invoice_renders_a_single_page() {
        let parsed = parse(&invoice_pdf(&doc("INV-2026-0000", "Nobody", Vec::new())));
        assert_eq!(parsed.get_pages().len(), 1);
        let text = page_texts(&parsed).concat();
        assert!(text.contains("No charges in this billing period.") && text.contains("USD 0.00"));
    }

    #[test]
    fn pdf_is_deterministic() {
        assert_eq!(invoice_pdf(&large_doc()), invoice_pdf(&large_doc()));
    }

    #[test]
    fn pdf_renders_with_pdftoppm_when_installed() {
        let installed = Command::new("which")
            .arg("pdftoppm")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            println!("note: pdftoppm is not installed; skipping the rendering check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (name, doc) in [("small", small_doc()), ("large", large_doc())] {
            let pdf_path = dir.path().join(format!("{name}.pdf"));
            std::fs::write(&pdf_path, invoice_pdf(&doc)).unwrap();
            let prefix = dir.path().join(name);
            let out = Command::new("pdftoppm")
                .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
                .arg(&pdf_path)
                .arg(&prefix)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pdftoppm failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let png = std::fs::read(prefix.with_extension("png")).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
        }
    }

    #[test]
    fn csv_parses_back_with_focus_header_and_exact_costs() {
        for doc in [small_doc(), large_doc()] {
            let csv_text = invoice_csv(&doc);
            let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
            let header: Vec<String> = reader
                .headers()
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(header, FOCUS_COLUMNS);
            let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            assert_eq!(records.len(), doc.lines.len());
            let col = |name: &str| FOCUS_COLUMNS.iter().position(|c| *c == name).unwrap();
            let mut billed = Decimal::ZERO;
            for (record, line) in records.iter().zip(&doc.lines) {
                let cost = &record[col("BilledCost")];
                billed += d(cost);
                for number in [
                    cost,
                    &record[col("ConsumedQuantity")],
                    &record[col("ListUnitPrice")],
                ] {
                    assert!(
                        number
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == '.' || c == '-'),
                        "not a plain decimal: {number:?}"
                    );
                }
                assert_eq!(d(cost), line.amount);
                assert_eq!(&record[col("EffectiveCost")], cost);
                assert_eq!(&record[col("ListCost")], cost);
                assert_eq!(d(&record[col("ConsumedQuantity")]), line.quantity);
                assert_eq!(d(&record[col("PricingQuantity")]), line.quantity);
                assert_eq!(d(&record[col("ListUnitPrice")]), line.unit_price);
                assert_eq!(&record[col("SkuId")], line.sku_id);
                assert_eq!(&record[col("ChargeDescription")], line.description);
                assert_eq!(&record[col("ConsumedUnit")], line.unit);
                assert_eq!(&record[col("PricingUnit")], line.unit);
                assert_eq!(&record[col("ChargeCategory")], "Usage");
                assert_eq!(&record[col("BillingCurrency")], "USD");
                assert_eq!(&record[col("InvoiceId")], doc.number);
                assert_eq!(&record[col("BillingAccountId")], doc.tenant_id);
                assert_eq!(&record[col("BillingAccountName")], doc.tenant_name);
                assert_eq!(
                    &record[col("SubAccountId")],
                    line.sub_account_id.as_deref().unwrap_or("")
                );
                assert_eq!(
                    &record[col("SubAccountName")],
                    line.sub_account_name.as_deref().unwrap_or("")
                );
                for c in ["BillingPeriodStart", "ChargePeriodStart"] {
                    assert_eq!(&record[col(c)], "2026-03-01T00:00:00Z");
                    assert_eq!(
                        DateTime::parse_from_rfc3339(&record[col(c)]).unwrap(),
                        doc.period_start
                    );
                }
                for c in ["BillingPeriodEnd", "ChargePeriodEnd"] {
                    assert_eq!(&record[col(c)], "2026-04-01T00:00:00Z");
                }
                // Only ChargeClass (regular charge) and absent sub-accounts are empty.
                for (name, value) in FOCUS_COLUMNS.iter().zip(record.iter()) {
                    let may_be_empty = *name == "ChargeClass"
                        || (line.sub_account_id.is_none() && name.starts_with("SubAccount"));
                    assert_eq!(value.is_empty(), may_be_empty, "column {name}");
                }
            }
            assert_eq!(billed, doc.total);
        }
    }

    #[test]
    fn csv_round_trips_the_tricky_name_and_plain_decimals() {
        let csv_text = invoice_csv(&small_doc());
        assert!(csv_text.ends_with("\r\n"));
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let col = |name: &str| FOCUS_COLUMNS.iter().position(|c| *c == name).unwrap();
        assert_eq!(&records[0][col("BillingAccountName")], TRICKY);
        assert_eq!(&records[0][col("SubAccountName")], TRICKY);
        assert_eq!(&records[0][col("SubAccountId")], "bu-(eng)\\1");
        assert_eq!(&records[0][col("ListUnitPrice")], "0.0001");
        assert_eq!(&records[0][col("BilledCost")], "123.46");
        assert_eq!(&records[1][col("ConsumedQuantity")], "7200.5");
        assert_eq!(&records[2][col("BilledCost")], "12150.00");
        assert_eq!(
            &records[2][col("ChargeDescription")],
            "Support plan – Business; 東京 desk"
        );
    }

    #[test]
    fn formatting_rules() {
        assert_eq!(money("USD", d("12345.67")), "USD 12,345.67");
        assert_eq!(money("EUR", d("1234567.891")), "EUR 1,234,567.89");
        assert_eq!(money("USD", d("0.125")), "USD 0.13", "half away from zero");
        assert_eq!(money("USD", d("-0.125")), "USD -0.13");
        assert_eq!(money("USD", d("-0.001")), "USD 0.00");
        assert_eq!(money("USD", d("100")), "USD 100.00");
        assert_eq!(money("USD", d("999999.995")), "USD 1,000,000.00");
        assert_eq!(quantity(d("1500.000")), "1,500");
        assert_eq!(quantity(d("0.000")), "0");
        assert_eq!(quantity(d("7200.50")), "7,200.5");
        assert_eq!(unit_price("USD", d("0.0001")), "USD 0.0001");
        assert_eq!(unit_price("USD", d("2")), "USD 2.00");
        assert_eq!(unit_price("USD", d("1234.5")), "USD 1,234.50");
        assert_eq!(plain_amount(d("5")), "5.00");
        assert_eq!(plain_amount(d("1234567.5")), "1234567.50");
        assert_eq!(
            plain_amount(d("0.00000000000000000001")),
            "0.00000000000000000001"
        );
        assert_eq!(
            last_day(at(2026, 3, 1), at(2026, 4, 1)).to_string(),
            "2026-03-31"
        );
        assert_eq!(
            last_day(at(2026, 3, 1), at(2026, 3, 1)).to_string(),
            "2026-03-01"
        );
    }

    #[test]
    fn win_ansi_encoding_and_wrapping() {
        assert_eq!(win_ansi("Café Zürich"), b"Caf\xe9 Z\xfcrich");
        assert_eq!(win_ansi("€ – “q” …"), b"\x80 \x96 \x93q\x94 \x85");
        assert_eq!(win_ansi("東京\tx\n"), b"?? x ");
        assert_eq!(win_ansi("(a) \\ b"), b"(a) \\ b");
        // Helvetica "Hello": H722 e556 l222 l222 o556 = 2278 units.
        assert!((Font::Regular.width(b"Hello", 10.0) - 22.78).abs() < 1e-4);
        let long = win_ansi(&"word ".repeat(200));
        let lines = wrap(&long, Font::Regular, 10.0, 100.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| Font::Regular.width(l, 10.0) <= 100.0));
        assert_eq!(lines[2].last(), Some(&ELLIPSIS));
        let unbroken = wrap(&[b'W'; 100], Font::Bold, 10.0, 50.0, 10);
        assert!(
            unbroken
                .iter()
                .all(|l| !l.is_empty() && Font::Bold.width(l, 10.0) <= 50.0)
        );
        assert!(wrap(b"", Font::Regular, 10.0, 50.0, 2).is_empty());
        let sku = wrap(b"compute.vcpu-hour", Font::Regular, 10.0, 60.0, 3);
        assert_eq!(sku, [b"compute.".to_vec(), b"vcpu-hour".to_vec()]);
    }
}
