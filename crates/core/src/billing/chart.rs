//! PNG chart of a billing period's spend by SKU, for chat surfaces (Slack,
//! Discord) to attach.
//!
//! The chart is a stacked daily bar chart: one bar per day, one coloured
//! segment per SKU, the period's biggest SKU at the bottom. At most
//! [`MAX_NAMED_SKUS`] legend entries are drawn: past that, the smallest SKUs
//! are summed into one "other" entry. The legend on the right lists each
//! entry with its period total; the subtitle gives the period, its total and
//! its peak day (which keeps a single huge outlier readable).
//!
//! Everything is rendered in memory: plotters' `BitMapBackend::with_buffer`
//! draws the shapes, [`ab_glyph`] rasterises the text from a font embedded in
//! the binary, and the `png` crate encodes. No system font library, font file
//! or temp file is used.
//!
//! Sums shown as text are computed in [`Decimal`]; amounts become `f64` only
//! to place pixels.

use std::ops::Range;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use chrono::NaiveDate;
use plotters::coord::Shift;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Width of the rendered PNG in pixels.
pub const WIDTH: u32 = 1000;
/// Height of the rendered PNG in pixels.
pub const HEIGHT: u32 = 560;
/// Most legend entries (and colours); past that, the smallest SKUs become "other".
pub const MAX_NAMED_SKUS: usize = 8;

// Font: Noto Sans 1.04 Regular and Bold, Copyright 2012 Google Inc., licensed
// under the Apache License 2.0 (stated in the font's own name table and in the
// `ttf-noto-sans` crate's assets/LICENSE-2.0.txt; that crate's code is
// MIT OR Apache-2.0). The crate embeds the TTFs with `include_bytes!`.
const FONT_REGULAR: &[u8] = ttf_noto_sans::REGULAR;
const FONT_BOLD: &[u8] = ttf_noto_sans::BOLD;

const BG: RGBColor = RGBColor(255, 255, 255);
const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(96, 104, 112);
const GRID: RGBColor = RGBColor(226, 230, 234);
const AXIS: RGBColor = RGBColor(150, 158, 166);
/// Tableau 10 (colour-blind friendly) minus grey, one per legend entry.
const PALETTE: [RGBColor; MAX_NAMED_SKUS] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(89, 161, 79),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(156, 117, 95),
];
/// Colour of the "other" entry (replaces the last palette colour).
const OTHER_COLOUR: RGBColor = RGBColor(186, 176, 172);

/// Height of the title and subtitle band.
const HEADER_H: i32 = 84;
const LEGEND_W: i32 = 240;
const TITLE_PX: f32 = 34.0;
const SUBTITLE_PX: f32 = 22.0;
const LABEL_PX: f32 = 21.0;
const LEGEND_PX: f32 = 22.0;
const LEGEND_AMOUNT_PX: f32 = 19.0;
/// Fewest bar slots on the x axis, so one or two days don't become slabs.
const MIN_SLOTS: usize = 7;
/// Most day labels on the x axis.
const MAX_X_LABELS: usize = 8;
/// Fraction of a day's slot covered by its bar.
const BAR_FILL: f64 = 0.72;

/// One SKU's spend over the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendSeries {
    /// SKU name shown in the legend.
    pub sku: String,
    /// One amount per day, aligned with [`ChartSpec::days`].
    pub daily: Vec<Decimal>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartSpec {
    /// Title at the top, e.g. "Spend by SKU — Nov 2026 (USD)"; empty for none.
    pub title: String,
    /// Currency code used in labels, e.g. "USD".
    pub currency: String,
    /// The days of the period, in display order.
    pub days: Vec<NaiveDate>,
    /// Spend per SKU, each with one value per day.
    pub series: Vec<SpendSeries>,
}

/// Why a chart could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The spec has no days.
    #[error("chart has no days")]
    NoDays,
    /// A series does not have exactly one value per day.
    #[error("series {sku:?} has {actual} daily values but the chart has {expected} days")]
    LengthMismatch {
        /// The offending series.
        sku: String,
        /// Number of days in the spec.
        expected: usize,
        /// Number of values in the series.
        actual: usize,
    },
    /// A sum of amounts does not fit in a `Decimal`.
    #[error("spend total overflows the decimal range")]
    Overflow,
    /// The embedded font could not be parsed.
    #[error("embedded chart font could not be loaded")]
    Font,
    /// plotters failed to draw.
    #[error("chart drawing failed: {0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// Renders `spec` as a 1000×560 PNG and returns the file's bytes.
pub fn spend_chart_png(spec: &ChartSpec) -> Result<Vec<u8>, ChartError> {
    let model = Model::build(spec)?;
    let fonts = fonts()?;
    let mut rgb = vec![255u8; WIDTH as usize * HEIGHT as usize * 3];
    let mut texts = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, spec, &model, fonts, &mut texts)
            .map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    for text in &texts {
        paint_text(&mut rgb, fonts, text);
    }
    encode_png(&rgb)
}

/// One legend entry and stack segment: a SKU, or "other".
struct Group {
    label: String,
    colour: RGBColor,
    total: Decimal,
    daily: Vec<Decimal>,
}

/// The validated, grouped data and the y scale.
struct Model {
    /// Biggest total first; "other", if any, last.
    groups: Vec<Group>,
    total: Decimal,
    /// The day with the largest positive total, and that total.
    peak: Option<(usize, Decimal)>,
    y: Range<f64>,
    y_ticks: Vec<f64>,
}

impl Model {
    fn build(spec: &ChartSpec) -> Result<Self, ChartError> {
        let n = spec.days.len();
        if n == 0 {
            return Err(ChartError::NoDays);
        }
        let mut ranked = Vec::with_capacity(spec.series.len());
        for s in &spec.series {
            if s.daily.len() != n {
                return Err(ChartError::LengthMismatch {
                    sku: s.sku.clone(),
                    expected: n,
                    actual: s.daily.len(),
                });
            }
            ranked.push((checked_sum(s.daily.iter().copied())?, s));
        }
        // Biggest first; ties by name so the output is deterministic.
        ranked.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then_with(|| a.sku.cmp(&b.sku)));

        let named = if ranked.len() > MAX_NAMED_SKUS {
            MAX_NAMED_SKUS - 1
        } else {
            ranked.len()
        };
        let (shown, rest) = ranked.split_at(named);
        let mut groups: Vec<Group> = shown
            .iter()
            .zip(PALETTE)
            .map(|((total, s), colour)| Group {
                label: s.sku.clone(),
                colour,
                total: *total,
                daily: s.daily.clone(),
            })
            .collect();
        if !rest.is_empty() {
            let mut daily = vec![Decimal::ZERO; n];
            for (_, s) in rest {
                for (acc, v) in daily.iter_mut().zip(&s.daily) {
                    *acc = acc.checked_add(*v).ok_or(ChartError::Overflow)?;
                }
            }
            groups.push(Group {
                label: format!("other ({} SKUs)", rest.len()),
                colour: OTHER_COLOUR,
                total: checked_sum(rest.iter().map(|(t, _)| *t))?,
                daily,
            });
        }

        let total = checked_sum(groups.iter().map(|g| g.total))?;
        let mut peak: Option<(usize, Decimal)> = None;
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for day in 0..n {
            let day_total = checked_sum(groups.iter().map(|g| g.daily[day]))?;
            if day_total > Decimal::ZERO && peak.is_none_or(|(_, p)| day_total > p) {
                peak = Some((day, day_total));
            }
            let (pos, neg) = stack_extent(groups.iter().map(|g| to_f64(g.daily[day])));
            hi = hi.max(pos);
            lo = lo.min(neg);
        }
        let (y, y_ticks) = nice_scale(lo, hi);
        Ok(Self {
            groups,
            total,
            peak,
            y,
            y_ticks,
        })
    }
}

/// Sum of the positive and of the negative values (credits stack downwards).
fn stack_extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((0.0, 0.0), |(pos, neg), v| {
        if v >= 0.0 {
            (pos + v, neg)
        } else {
            (pos, neg + v)
        }
    })
}

/// A y range covering `lo..hi` (and 0) with round tick values.
fn nice_scale(lo: f64, hi: f64) -> (Range<f64>, Vec<f64>) {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return (0.0..1.0, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    // Round outwards to whole steps, keeping a little headroom above the top bar.
    let top = ((hi * 1.04) / step).ceil() * step;
    let bottom = (lo / step).floor() * step;
    let count = ((top - bottom) / step).round() as usize;
    let ticks = (0..=count).map(|i| bottom + i as f64 * step).collect();
    (bottom..top.max(bottom + step), ticks)
}

fn checked_sum(mut values: impl Iterator<Item = Decimal>) -> Result<Decimal, ChartError> {
    values.try_fold(Decimal::ZERO, |acc, v| {
        acc.checked_add(v).ok_or(ChartError::Overflow)
    })
}

/// For pixel placement only. Every `Decimal` has an `f64` approximation, so
/// the fallback is unreachable.
fn to_f64(v: Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

// ---------------------------------------------------------------- drawing --

type DrawResult = Result<(), Box<dyn std::error::Error>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn draw(
    root: &Area<'_>,
    spec: &ChartSpec,
    m: &Model,
    fonts: &Fonts,
    texts: &mut Vec<Text>,
) -> DrawResult {
    root.fill(&BG)?;
    draw_header(spec, m, fonts, texts);
    let (_, body) = root.split_vertically(HEADER_H);
    let (plot, legend) = body.split_horizontally(WIDTH as i32 - LEGEND_W);
    draw_bars(&plot, spec, m, texts)?;
    draw_legend(&legend, spec, m, fonts, texts)?;
    Ok(())
}

fn draw_header(spec: &ChartSpec, m: &Model, fonts: &Fonts, texts: &mut Vec<Text>) {
    let max_w = WIDTH as f32 - 48.0;
    if !spec.title.is_empty() {
        let title = Text::new(&spec.title, (24.0, 10.0), TITLE_PX, INK).bold();
        texts.push(title.fit(fonts, max_w));
    }
    let first = short_day(spec.days[0]);
    let range = match spec.days.last() {
        Some(last) if spec.days.len() > 1 => format!("{first} – {}", short_day(*last)),
        _ => first,
    };
    let mut sub = format!("{range}   ·   total {}", money(m.total, &spec.currency));
    if let Some((day, amount)) = m.peak.filter(|_| spec.days.len() > 1) {
        sub.push_str(&format!(
            "   ·   peak {} {}",
            short_day(spec.days[day]),
            money(amount, &spec.currency)
        ));
    }
    texts.push(Text::new(&sub, (24.0, 50.0), SUBTITLE_PX, MUTED).fit(fonts, max_w));
}

fn draw_bars(area: &Area<'_>, spec: &ChartSpec, m: &Model, texts: &mut Vec<Text>) -> DrawResult {
    let n = spec.days.len();
    // Centre the bars in at least MIN_SLOTS slots.
    let pad = MIN_SLOTS.saturating_sub(n) as f64 / 2.0 + 0.5;
    let x = -pad..(n - 1) as f64 + pad;
    let mut chart = ChartBuilder::on(area)
        .margin_top(34)
        .margin_right(14)
        .margin_bottom(4)
        .margin_left(10)
        .x_label_area_size(34)
        .y_label_area_size(78)
        .build_cartesian_2d(x.clone(), m.y.clone())?;

    // Horizontal grid with amount labels left of the plot.
    let largest = m.y_ticks.iter().fold(0.0f64, |a, t| a.max(t.abs()));
    for &t in &m.y_ticks {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x.start, t), (x.end, t)],
            GRID.stroke_width(1),
        )))?;
        let (px, py) = chart.backend_coord(&(x.start, t));
        texts.push(
            Text::new(
                &axis_amount(t, largest),
                (px as f32 - 10.0, py as f32),
                LABEL_PX,
                MUTED,
            )
            .align(HAlign::Right, VAlign::Middle),
        );
    }
    let (px, py) = chart.backend_coord(&(x.start, m.y.end));
    texts.push(
        Text::new(
            &format!("{} / day", spec.currency),
            (px as f32 - 10.0, py as f32 - 32.0),
            LABEL_PX,
            MUTED,
        )
        .align(HAlign::Right, VAlign::Top),
    );

    // Stacked bars: positives up from zero, credits down from zero.
    let half = BAR_FILL / 2.0;
    for day in 0..n {
        let (mut pos, mut neg) = (0.0f64, 0.0f64);
        let cx = day as f64;
        for g in &m.groups {
            let v = to_f64(g.daily[day]);
            let (lo, hi) = if v > 0.0 {
                pos += v;
                (pos - v, pos)
            } else if v < 0.0 {
                neg += v;
                (neg, neg - v)
            } else {
                continue;
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(cx - half, lo), (cx + half, hi)],
                g.colour.filled(),
            )))?;
        }
    }

    // Zero line, then day ticks and labels below the plot.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(x.start, 0.0), (x.end, 0.0)],
        AXIS.stroke_width(1),
    )))?;
    let base = area.get_base_pixel();
    for day in x_label_days(n) {
        let (px, py) = chart.backend_coord(&(day as f64, m.y.start));
        let (ax, ay) = (px - base.0, py - base.1);
        area.draw(&PathElement::new(
            vec![(ax, ay), (ax, ay + 5)],
            AXIS.stroke_width(1),
        ))?;
        texts.push(
            Text::new(
                &short_day(spec.days[day]),
                (px as f32, py as f32 + 8.0),
                LABEL_PX,
                MUTED,
            )
            .align(HAlign::Center, VAlign::Top),
        );
    }

    if m.peak.is_none() && m.groups.iter().all(|g| g.total.is_zero()) {
        let (x0, y0) = chart.backend_coord(&(x.start, m.y.end));
        let (x1, y1) = chart.backend_coord(&(x.end, m.y.start));
        texts.push(
            Text::new(
                "No spend recorded in this period",
                ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0),
                LEGEND_PX,
                MUTED,
            )
            .align(HAlign::Center, VAlign::Middle),
        );
    }
    Ok(())
}

fn draw_legend(
    area: &Area<'_>,
    spec: &ChartSpec,
    m: &Model,
    fonts: &Fonts,
    texts: &mut Vec<Text>,
) -> DrawResult {
    let (ox, oy) = area.get_base_pixel();
    let (x, mut y) = (8, 10);
    if m.groups.is_empty() {
        texts.push(Text::new(
            "No SKUs",
            ((ox + x) as f32, (oy + y) as f32),
            LEGEND_PX,
            MUTED,
        ));
        return Ok(());
    }
    let text_x = (ox + x + 26) as f32;
    let max_w = (WIDTH as i32 - (ox + x + 26) - 8) as f32;
    for g in &m.groups {
        area.draw(&Rectangle::new(
            [(x, y + 4), (x + 17, y + 21)],
            g.colour.filled(),
        ))?;
        let top = (oy + y) as f32;
        texts.push(Text::new(&g.label, (text_x, top), LEGEND_PX, INK).fit(fonts, max_w));
        let amount = money(g.total, &spec.currency);
        texts.push(
            Text::new(&amount, (text_x, top + 24.0), LEGEND_AMOUNT_PX, MUTED).fit(fonts, max_w),
        );
        y += 53;
    }
    Ok(())
}

/// Day indices to label: every `step` days, `step` from a "nice" list.
fn x_label_days(n: usize) -> Vec<usize> {
    let step = [1, 2, 3, 5, 7, 10, 14, 21, 28, 30, 60, 90, 180, 365]
        .into_iter()
        .find(|s| n.div_ceil(*s) <= MAX_X_LABELS)
        .unwrap_or_else(|| n.div_ceil(MAX_X_LABELS));
    (0..n).step_by(step.max(1)).collect()
}

fn short_day(d: NaiveDate) -> String {
    d.format("%b %-d").to_string()
}

/// `1234567.891` → `"1,234,567.89 USD"`.
fn money(v: Decimal, currency: &str) -> String {
    let s = format!("{:.2}", v.round_dp(2));
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "00"));
    format!("{sign}{}.{frac} {currency}", group_thousands(int))
}

fn group_thousands(int: &str) -> String {
    let mut out = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Tick label in one unit for the whole axis, chosen by its largest tick:
/// `0.25`, `750`, `12,000`, then `250k`, `1.5M`, `2B`.
fn axis_amount(v: f64, largest: f64) -> String {
    let (div, suffix) = match largest.abs() {
        a if a >= 1e9 => (1e9, "B"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e5 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let a = (v / div).abs();
    let body = if a >= 100.0 && suffix.is_empty() {
        group_thousands(&format!("{a:.0}"))
    } else {
        let s = format!("{a:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    match body.as_str() {
        "0" => body,
        _ if v < 0.0 => format!("-{body}{suffix}"),
        _ => format!("{body}{suffix}"),
    }
}

// ------------------------------------------------------------------- text --
//
// Text is rasterised with ab_glyph straight into the RGB buffer after plotters
// has drawn the shapes. plotters 0.3.7's own `ab_glyph` text path places each
// glyph without its left side bearing, which visibly misspaces digits
// ("a1 00"); doing it here keeps spacing and kerning right.

struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

fn fonts() -> Result<&'static Fonts, ChartError> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: FontRef::try_from_slice(FONT_REGULAR).ok()?,
                bold: FontRef::try_from_slice(FONT_BOLD).ok()?,
            })
        })
        .as_ref()
        .ok_or(ChartError::Font)
}

#[derive(Clone, Copy)]
enum HAlign {
    Left,
    Center,
    Right,
}

#[derive(Clone, Copy)]
enum VAlign {
    /// `at.1` is the top of the line box.
    Top,
    /// `at.1` is the vertical middle of the text.
    Middle,
}

/// A line of text to paint, anchored at `at` (absolute pixels).
struct Text {
    s: String,
    at: (f32, f32),
    px: f32,
    bold: bool,
    colour: RGBColor,
    h: HAlign,
    v: VAlign,
}

impl Text {
    fn new(s: &str, at: (f32, f32), px: f32, colour: RGBColor) -> Self {
        Self {
            s: s.to_owned(),
            at,
            px,
            bold: false,
            colour,
            h: HAlign::Left,
            v: VAlign::Top,
        }
    }

    fn bold(mut self) -> Self {
        self.bold = true;
        self
    }

    fn align(mut self, h: HAlign, v: VAlign) -> Self {
        self.h = h;
        self.v = v;
        self
    }

    fn font<'f>(&self, fonts: &'f Fonts) -> &'f FontRef<'static> {
        if self.bold {
            &fonts.bold
        } else {
            &fonts.regular
        }
    }

    fn width(&self, fonts: &Fonts) -> f32 {
        text_width(self.font(fonts), self.px, &self.s)
    }

    /// Shortens the text with an ellipsis until it is at most `max_w` wide.
    fn fit(mut self, fonts: &Fonts, max_w: f32) -> Self {
        if self.width(fonts) <= max_w {
            return self;
        }
        let mut chars: Vec<char> = self.s.chars().collect();
        while chars.pop().is_some() {
            let shorter: String = chars.iter().collect();
            self.s = format!("{}…", shorter.trim_end());
            if self.width(fonts) <= max_w {
                break;
            }
        }
        self
    }
}

/// Calls `f` with each glyph id and its pen x offset; returns the advance width.
fn layout(font: &FontRef<'_>, px: f32, s: &str, mut f: impl FnMut(GlyphId, f32)) -> f32 {
    let sf = font.as_scaled(PxScale::from(px));
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    for c in s.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            pen += sf.kern(p, id);
        }
        f(id, pen);
        pen += sf.h_advance(id);
        prev = Some(id);
    }
    pen
}

fn text_width(font: &FontRef<'_>, px: f32, s: &str) -> f32 {
    layout(font, px, s, |_, _| {})
}

fn paint_text(rgb: &mut [u8], fonts: &Fonts, t: &Text) {
    let font = t.font(fonts);
    let scale = PxScale::from(t.px);
    let sf = font.as_scaled(scale);
    let width = text_width(font, t.px, &t.s);
    let x0 = match t.h {
        HAlign::Left => t.at.0,
        HAlign::Center => t.at.0 - width / 2.0,
        HAlign::Right => t.at.0 - width,
    }
    .round();
    let baseline = match t.v {
        // Centre of the ascent–descent box, close to the middle of digits.
        VAlign::Middle => t.at.1 + (sf.ascent() + sf.descent()) / 2.0,
        VAlign::Top => t.at.1 + sf.ascent(),
    }
    .round();
    layout(font, t.px, &t.s, |id, pen| {
        let glyph = id.with_scale_and_position(scale, point(x0 + pen, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let x = b.min.x as i64 + i64::from(gx);
                let y = b.min.y as i64 + i64::from(gy);
                blend(rgb, x, y, t.colour, coverage);
            });
        }
    });
}

fn blend(rgb: &mut [u8], x: i64, y: i64, c: RGBColor, coverage: f32) {
    if x < 0 || y < 0 || x >= i64::from(WIDTH) || y >= i64::from(HEIGHT) {
        return;
    }
    let a = coverage.clamp(0.0, 1.0);
    let i = (y as usize * WIDTH as usize + x as usize) * 3;
    for (dst, src) in rgb[i..i + 3].iter_mut().zip([c.0, c.1, c.2]) {
        *dst = (f32::from(*dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
    }
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let encode_err = |e: png::EncodingError| ChartError::Encode(e.to_string());
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    let mut writer = enc.write_header().map_err(encode_err)?;
    writer.write_image_data(rgb).map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("valid decimal literal")
    }

    fn november(n: u32) -> Vec<NaiveDate> {
        (1..=n)
            .map(|d| NaiveDate::from_ymd_opt(2026, 11, d).expect("valid date"))
            .collect()
    }

    fn spec(title: &str, days: Vec<NaiveDate>, series: Vec<(&str, Vec<Decimal>)>) -> ChartSpec {
        ChartSpec {
            title: title.to_owned(),
            currency: "USD".to_owned(),
            days,
            series: series
                .into_iter()
                .map(|(sku, daily)| SpendSeries {
                    sku: sku.to_owned(),
                    daily,
                })
                .collect(),
        }
    }

    /// A month of realistic-looking data for `skus` SKUs.
    fn month_spec(skus: usize) -> ChartSpec {
        let days = november(30);
        let names = [
            "compute.vm.standard",
            "storage.object.hot",
            "network.egress.internet",
            "db.postgres.managed",
            "compute.gpu.a100",
            "cdn.requests",
            "logs.ingest",
            "kms.operations",
            "dns.queries",
            "backup.snapshots",
            "queue.messages",
        ];
        let series = names
            .iter()
            .take(skus)
            .enumerate()
            .map(|(k, name)| {
                let base = 400 / (k as i64 + 1);
                let daily = (0..days.len() as i64)
                    .map(|d| {
                        let wobble = (d * 37 + k as i64 * 11) % 23;
                        Decimal::new((base * 100 + wobble * base * 4) + 37, 2)
                    })
                    .collect();
                (*name, daily)
            })
            .collect();
        spec("Spend by SKU — Nov 2026 (USD)", days, series)
    }

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("PNG header decodes");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buf).expect("PNG frame decodes");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(rgb: &[u8], x: u32, y: u32) -> [u8; 3] {
        let i = (y * WIDTH + x) as usize * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    /// Pixels in columns `xs` and rows `ys` that satisfy `pred`.
    fn count(rgb: &[u8], xs: Range<u32>, ys: Range<u32>, pred: impl Fn([u8; 3]) -> bool) -> usize {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| pred(pixel(rgb, x, y)))
            .count()
    }

    fn non_white(rgb: &[u8], xs: Range<u32>, ys: Range<u32>) -> usize {
        count(rgb, xs, ys, |p| p != [255, 255, 255])
    }

    const ALL_X: Range<u32> = 0..WIDTH;
    const ALL_Y: Range<u32> = 0..HEIGHT;
    /// Columns of the plot, left of the legend.
    const PLOT_X: Range<u32> = 0..WIDTH - LEGEND_W as u32;

    fn is(c: RGBColor) -> impl Fn([u8; 3]) -> bool {
        move |p| p == [c.0, c.1, c.2]
    }

    #[test]
    fn renders_a_decodable_png_of_the_right_size() {
        let png_bytes = spend_chart_png(&month_spec(3)).expect("renders");
        assert!(png_bytes.starts_with(&PNG_SIGNATURE));
        let (w, h, rgb) = decode(&png_bytes);
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert_eq!(rgb.len(), (WIDTH * HEIGHT * 3) as usize);
        assert_eq!(pixel(&rgb, 0, 0), [255, 255, 255], "white background");
        assert_eq!(pixel(&rgb, WIDTH - 1, HEIGHT - 1), [255, 255, 255]);
    }

    #[test]
    fn chart_with_data_draws_bars_in_distinct_colours() {
        let png_bytes = spend_chart_png(&month_spec(2)).expect("renders");
        let (_, _, rgb) = decode(&png_bytes);
        let total = (WIDTH * HEIGHT) as usize;
        let inked = non_white(&rgb, ALL_X, ALL_Y);
        assert!(inked > total / 10, "only {inked} non-white pixels");
        let first = count(&rgb, ALL_X, ALL_Y, is(PALETTE[0]));
        let second = count(&rgb, ALL_X, ALL_Y, is(PALETTE[1]));
        assert!(first > 20_000, "first SKU colour: {first} px");
        assert!(second > 5_000, "second SKU colour: {second} px");
        assert_ne!(PALETTE[0], PALETTE[1]);
        // The biggest SKU sits at the bottom of each bar: just above the x
        // axis, the middle of the plot is the first colour.
        assert!(
            count(&rgb, PLOT_X, HEIGHT - 60..HEIGHT - 50, is(PALETTE[0])) > 1_000,
            "first SKU not at the bottom of the stack"
        );
    }

    #[test]
    fn title_text_is_drawn() {
        let with = month_spec(2);
        let without = ChartSpec {
            title: String::new(),
            ..with.clone()
        };
        let (_, _, a) = decode(&spend_chart_png(&with).expect("renders"));
        let (_, _, b) = decode(&spend_chart_png(&without).expect("renders"));
        // The title occupies the top rows; the subtitle starts below them.
        const TITLE_ROWS: Range<u32> = 0..50;
        let with_px = non_white(&a, ALL_X, TITLE_ROWS);
        let without_px = non_white(&b, ALL_X, TITLE_ROWS);
        assert_eq!(without_px, 0, "nothing but the title belongs in the band");
        assert!(with_px > 1_500, "title drew only {with_px} px");
        // Dark, anti-aliased glyph pixels, not a block of colour.
        let dark = count(&a, ALL_X, TITLE_ROWS, |p| p.iter().all(|&c| c < 90));
        assert!(dark > 500 && dark < with_px, "dark title px: {dark}");
        // A different title draws differently.
        let other = ChartSpec {
            title: "Spend by SKU — Dec 2026 (EUR)".to_owned(),
            ..with.clone()
        };
        let (_, _, c) = decode(&spend_chart_png(&other).expect("renders"));
        let band = TITLE_ROWS.end as usize * WIDTH as usize * 3;
        assert_ne!(a[..band], c[..band]);
        // Everything below the title band is the same with or without it.
        assert_eq!(a[band..], b[band..]);
    }

    #[test]
    fn legend_groups_beyond_eight_skus_into_other() {
        let spec = month_spec(11);
        let model = Model::build(&spec).expect("valid");
        assert_eq!(model.groups.len(), MAX_NAMED_SKUS);
        assert_eq!(model.groups[0].label, "compute.vm.standard");
        let other = &model.groups[MAX_NAMED_SKUS - 1];
        assert_eq!(other.label, "other (4 SKUs)");
        assert!(
            model
                .groups
                .windows(2)
                .take(MAX_NAMED_SKUS - 2)
                .all(|w| w[0].total >= w[1].total)
        );
        let sum: Decimal = spec.series.iter().flat_map(|s| &s.daily).sum();
        assert_eq!(model.total, sum, "grouping loses no money");
        let (_, _, rgb) = decode(&spend_chart_png(&spec).expect("renders"));
        assert!(count(&rgb, ALL_X, ALL_Y, is(OTHER_COLOUR)) > 500);
    }

    #[test]
    fn edge_cases_render() {
        // One day.
        let one = spec("One day", november(1), vec![("a", vec![dec("12.5")])]);
        let (_, _, rgb) = decode(&spend_chart_png(&one).expect("one day renders"));
        assert!(count(&rgb, ALL_X, ALL_Y, is(PALETTE[0])) > 10_000);

        // 31 days (a month that has them), all zero.
        let days: Vec<NaiveDate> = (1..=31)
            .map(|d| NaiveDate::from_ymd_opt(2026, 12, d).expect("valid date"))
            .collect();
        let zeros = spec(
            "All zero",
            days.clone(),
            vec![
                ("a", vec![Decimal::ZERO; 31]),
                ("b", vec![Decimal::ZERO; 31]),
            ],
        );
        let (w, h, rgb) = decode(&spend_chart_png(&zeros).expect("zeros render"));
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert_eq!(count(&rgb, PLOT_X, ALL_Y, is(PALETTE[1])), 0);

        // One huge outlier.
        let mut daily = vec![dec("3.10"); 31];
        daily[16] = dec("98765432.10");
        let outlier = spec("Outlier", days.clone(), vec![("a", daily)]);
        let png_bytes = spend_chart_png(&outlier).expect("outlier renders");
        let (_, _, rgb) = decode(&png_bytes);
        assert!(count(&rgb, ALL_X, ALL_Y, is(PALETTE[0])) > 3_000);

        // No series at all, negative credits, and a huge amount sum.
        let empty = spec("Nothing", days.clone(), vec![]);
        spend_chart_png(&empty).expect("no series renders");
        let credit = spec(
            "Credit",
            november(3),
            vec![
                ("a", vec![dec("5"), dec("-2"), dec("1")]),
                ("b", vec![dec("-1"); 3]),
            ],
        );
        spend_chart_png(&credit).expect("credits render");
    }

    #[test]
    fn empty_days_is_an_error() {
        let err = spend_chart_png(&spec("x", vec![], vec![])).expect_err("no days");
        assert!(matches!(err, ChartError::NoDays), "{err:?}");
        let err = spend_chart_png(&spec("x", vec![], vec![("a", vec![])])).expect_err("no days");
        assert!(matches!(err, ChartError::NoDays), "{err:?}");
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let bad = spec(
            "x",
            november(3),
            vec![("ok", vec![dec("1"); 3]), ("short", vec![dec("1"); 2])],
        );
        match spend_chart_png(&bad) {
            Err(ChartError::LengthMismatch {
                sku,
                expected,
                actual,
            }) => {
                assert_eq!((sku.as_str(), expected, actual), ("short", 3, 2));
            }
            other => panic!("expected LengthMismatch, got {other:?}"),
        }
        let long = spec("x", november(2), vec![("long", vec![dec("1"); 5])]);
        assert!(matches!(
            spend_chart_png(&long),
            Err(ChartError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn overflowing_totals_are_an_error() {
        let bad = spec("x", november(2), vec![("a", vec![Decimal::MAX; 2])]);
        assert!(matches!(spend_chart_png(&bad), Err(ChartError::Overflow)));
    }

    #[test]
    fn formats_amounts() {
        assert_eq!(money(dec("1234567.891"), "USD"), "1,234,567.89 USD");
        assert_eq!(money(dec("-12.5"), "EUR"), "-12.50 EUR");
        assert_eq!(money(Decimal::ZERO, "USD"), "0.00 USD");
        assert_eq!(money(dec("999.999"), "USD"), "1,000.00 USD");
        assert_eq!(axis_amount(0.0, 1.0), "0");
        assert_eq!(axis_amount(0.25, 1.0), "0.25");
        assert_eq!(axis_amount(2.5, 20.0), "2.5");
        assert_eq!(axis_amount(12_000.0, 20_000.0), "12,000");
        assert_eq!(axis_amount(80_000.0, 120_000.0), "80k");
        assert_eq!(axis_amount(0.0, 120_000.0), "0");
        assert_eq!(axis_amount(1_500_000.0, 2_000_000.0), "1.5M");
        assert_eq!(axis_amount(-250_000.0, 2_000_000.0), "-0.25M");
        assert_eq!(axis_amount(-2e9, 2e9), "-2B");
        assert_eq!(x_label_days(1), vec![0]);
        assert_eq!(x_label_days(30), vec![0, 5, 10, 15, 20, 25]);
        assert_eq!(x_label_days(31).len(), 7);
        assert!(x_label_days(366).len() <= MAX_X_LABELS);
    }

    /// The rows (y) where colour `c` appears in the plot, left of the legend.
    fn rows_of(rgb: &[u8], c: RGBColor) -> Vec<u32> {
        ALL_Y
            .filter(|&y| PLOT_X.clone().any(|x| is(c)(pixel(rgb, x, y))))
            .collect()
    }

    /// Renders the sample charts — a month of 11 SKUs and of 2, one huge outlier, a single
    /// day, all zero, credits — writes each to `SPEND_CHART_SAMPLE_DIR` when it is set (for a
    /// human to look at) or else to a temporary directory, reads every file back and checks
    /// what it shows.
    #[test]
    fn write_samples() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let dir = std::env::var_os("SPEND_CHART_SAMPLE_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| temp.path().to_path_buf());
        let mut outlier_daily = vec![dec("41.20"); 30];
        outlier_daily[16] = dec("98765.43");
        type Check = fn(&[u8]);
        let samples: [(&str, ChartSpec, Check); 6] = [
            ("spend-chart-sample.png", month_spec(11), |rgb| {
                // Seven named SKUs and "other", each in its own colour.
                for c in &PALETTE[..MAX_NAMED_SKUS - 1] {
                    assert!(!rows_of(rgb, *c).is_empty(), "{c:?} not drawn");
                }
                assert!(count(rgb, PLOT_X, ALL_Y, is(OTHER_COLOUR)) > 500);
            }),
            ("spend-chart-sample-2skus.png", month_spec(2), |rgb| {
                assert!(count(rgb, PLOT_X, ALL_Y, is(PALETTE[0])) > 20_000);
                assert!(count(rgb, PLOT_X, ALL_Y, is(PALETTE[1])) > 5_000);
                assert_eq!(count(rgb, ALL_X, ALL_Y, is(PALETTE[2])), 0);
            }),
            (
                "spend-chart-sample-outlier.png",
                spec(
                    "Spend by SKU — Nov 2026 (USD)",
                    november(30),
                    vec![
                        ("compute.gpu.a100", outlier_daily),
                        ("storage", vec![dec("12.00"); 30]),
                    ],
                ),
                |rgb| {
                    // The outlier's bar reaches far above every other day's.
                    let rows = rows_of(rgb, PALETTE[0]);
                    let top = *rows.first().expect("outlier drawn");
                    let bottom = *rows.last().expect("outlier drawn");
                    assert!(bottom - top > 250, "outlier bar spans only {top}..{bottom}");
                    assert!(
                        count(rgb, ALL_X, ALL_Y, is(PALETTE[1])) > 0,
                        "storage in legend"
                    );
                },
            ),
            (
                "spend-chart-sample-oneday.png",
                ChartSpec {
                    currency: "EUR".into(),
                    ..spec(
                        "Spend by SKU — Nov 3, 2026 (EUR)",
                        vec![NaiveDate::from_ymd_opt(2026, 11, 3).expect("valid date")],
                        vec![
                            ("compute", vec![dec("12.5")]),
                            ("storage", vec![dec("3.25")]),
                        ],
                    )
                },
                |rgb| {
                    assert!(count(rgb, PLOT_X, ALL_Y, is(PALETTE[0])) > 10_000);
                    assert!(count(rgb, PLOT_X, ALL_Y, is(PALETTE[1])) > 1_000);
                    // The bigger SKU sits at the bottom of the stack.
                    let (a, b) = (rows_of(rgb, PALETTE[0]), rows_of(rgb, PALETTE[1]));
                    assert!(a.last() > b.last(), "compute not below storage");
                },
            ),
            (
                "spend-chart-sample-zero.png",
                spec(
                    "Spend by SKU — Dec 2026 (USD)",
                    (1..=31)
                        .map(|d| NaiveDate::from_ymd_opt(2026, 12, d).expect("valid date"))
                        .collect(),
                    vec![("compute", vec![Decimal::ZERO; 31])],
                ),
                |rgb| {
                    // No bar, but the legend's swatch.
                    assert_eq!(count(rgb, PLOT_X, ALL_Y, is(PALETTE[0])), 0);
                    assert!(count(rgb, ALL_X, ALL_Y, is(PALETTE[0])) > 0);
                },
            ),
            (
                "spend-chart-sample-credit.png",
                spec(
                    "Spend by SKU — with credits",
                    november(10),
                    vec![
                        ("compute", vec![dec("120"); 10]),
                        ("storage", vec![dec("40"); 10]),
                        (
                            "promo credit",
                            (0..10)
                                .map(|d| dec(if d % 3 == 0 { "-90" } else { "0" }))
                                .collect(),
                        ),
                    ],
                ),
                |rgb| {
                    // Credits hang below zero, under the spend that stands on it.
                    let spend = rows_of(rgb, PALETTE[0]);
                    let credit = rows_of(rgb, PALETTE[2]);
                    assert!(!credit.is_empty(), "credits not drawn");
                    assert!(credit.last() > spend.last(), "credits not below zero");
                    assert!(credit.first() > spend.first());
                },
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (name, spec, check) in samples {
            let rendered = spend_chart_png(&spec).expect("renders");
            let path = dir.join(name);
            std::fs::write(&path, &rendered).expect("sample written");
            let back = std::fs::read(&path).expect("sample read back");
            assert_eq!(back, rendered, "{name}");
            assert!(
                seen.insert(back.clone()),
                "{name} is the same as another sample"
            );
            let (w, h, rgb) = decode(&back);
            assert_eq!((w, h), (WIDTH, HEIGHT), "{name}");
            assert!(non_white(&rgb, ALL_X, 0..50) > 1_500, "{name}: no title");
            check(&rgb);
        }
    }
}
