//! SVG figures for the experiment reports: scatter plots, line plots and η × B heatmaps, built with
//! `plotters`' SVG backend so that the same code draws them natively (the CLI writes report files) and in
//! wasm (the browser shows the report). The backend writes `<text>` elements, so no font files are needed.
//!
//! Why these choices:
//! - The paper's sweeps span orders of magnitude in η and B, so every axis can be logarithmic, and an
//!   iso-ratio reference line `y = slope·x` ([`RefKind::Proportional`]) is a straight line on a log-log
//!   η × B plot: the claim "only η/B matters" predicts that results line up along such lines.
//! - Runs diverge. A diverged run reports NaN or ∞, and a log axis cannot show 0; such points are left
//!   out *and counted in a note under the title*, so a figure never silently hides that part of a sweep
//!   failed. In a heatmap the cell stays, drawn grey and crossed out.
//! - A heatmap's cells are evenly spaced whatever the grid values are (η = 0.001, 0.003, 0.01 …), with the
//!   values as tick labels: the grids are small and hand-picked, and equal cells read better than cells
//!   sized by a log scale. Reference lines are mapped onto that grid by interpolating between the cell
//!   centres (logarithmically on a log axis).
//!
//! The drawing style follows `analysis::plot`: white background, the same palette, `("sans-serif", N)` fonts.

use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// Series colours (the `analysis::plot` palette, continued with the rest of matplotlib's tab10).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
/// Reference lines and notes.
const GREY: RGBColor = RGBColor(120, 120, 120);
/// Heatmap cells without a finite value.
const MISSING: RGBColor = RGBColor(222, 222, 222);
/// Size of a scatter or line figure in pixels.
const XY_SIZE: (u32, u32) = (720, 480);
/// Size of a heatmap figure in pixels.
const HEATMAP_SIZE: (u32, u32) = (760, 560);
/// A heatmap prints each cell's value when it has at most this many cells.
const MAX_PRINTED_CELLS: usize = 100;
/// At most this many tick labels per heatmap axis (every k-th value is labelled beyond that).
const MAX_HEATMAP_TICKS: usize = 12;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// An axis of a figure: its label and whether it is logarithmic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The axis label, e.g. `"learning rate η"`.
    pub label: String,
    /// Logarithmic scale. Points ≤ 0 cannot be shown on it and are counted as not shown.
    pub log: bool,
}

impl Axis {
    /// A linear axis with `label`.
    pub fn linear(label: impl Into<String>) -> Axis {
        Axis { label: label.into(), log: false }
    }

    /// A logarithmic axis with `label`.
    pub fn log(label: impl Into<String>) -> Axis {
        Axis { label: label.into(), log: true }
    }
}

/// One named set of points of a scatter or line figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Name shown in the legend.
    pub name: String,
    /// The points `(x, y)`; non-finite ones (diverged runs) are skipped and counted.
    pub points: Vec<(f64, f64)>,
    /// Optional error bars: the ± half-width of each point's y (one per point); a non-finite or negative
    /// half-width draws no bar.
    pub errors: Option<Vec<f64>>,
    /// Draw the line dashed (line figures only).
    pub dashed: bool,
}

impl Series {
    /// A solid series without error bars.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, errors: None, dashed: false }
    }
}

/// A labelled grey reference line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefLine {
    /// Text drawn next to the line, e.g. `"η/B = 1e-4"`.
    pub label: String,
    /// Where the line lies.
    pub kind: RefKind,
}

/// Where a reference line lies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RefKind {
    /// `y = value` across the plot.
    Horizontal(f64),
    /// `x = value` across the plot.
    Vertical(f64),
    /// `y = slope·x`, i.e. an iso-ratio line (η/B = slope) on a log-log η × B plot; drawn over the visible
    /// x range and clipped to the plot.
    Proportional(f64),
}

fn plot_err<E: std::fmt::Display>(e: E) -> LabError {
    LabError::Io(format!("drawing the figure failed: {e}"))
}

/// Formats a number compactly with 3 significant digits: `0.005`, `128`, `2.5e-4`, `1e6`.
fn compact(v: f64) -> String {
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        trim(&format!("{v:.decimals$}")).to_string()
    } else {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').expect("{:e} writes an exponent");
        format!("{}e{exponent}", trim(mantissa))
    }
}

/// `"1 point"`, `"3 points"`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A position on an axis in the coordinates where the axis is linear (log₁₀ on a log axis).
fn to_axis(v: f64, log: bool) -> f64 {
    if log {
        v.log10()
    } else {
        v
    }
}

fn from_axis(t: f64, log: bool) -> f64 {
    if log {
        10f64.powf(t)
    } else {
        t
    }
}

/// Whether `v` can be drawn on an axis.
fn drawable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// The range `lo..hi` widened by 5% on each side (of the log range on a log axis); a single value gets
/// half a decade (log) or 10% of itself (linear) on each side.
fn padded(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    let (a, b) = (to_axis(lo, log), to_axis(hi, log));
    let (a, b) = if b > a {
        let m = 0.05 * (b - a);
        (a - m, b + m)
    } else if log {
        (a - 0.5, b + 0.5)
    } else {
        let m = if a == 0.0 { 1.0 } else { 0.1 * a.abs() };
        (a - m, b + m)
    };
    (from_axis(a, log), from_axis(b, log))
}

/// The note written under a title when points were left out.
fn not_shown_note(non_finite: usize, non_positive: usize) -> Option<String> {
    let total = non_finite + non_positive;
    match (non_finite, non_positive) {
        (0, 0) => None,
        (_, 0) => Some(format!("{} not shown: diverged or non-finite", count(total, "point"))),
        (0, _) => Some(format!("{} not shown: ≤ 0 on a log axis", count(total, "point"))),
        _ => Some(format!("{} not shown: {non_finite} diverged or non-finite, {non_positive} ≤ 0 on a log axis", count(total, "point"))),
    }
}

/// Draws `note` (if any) in grey in a strip at the top of `area` and returns the rest of the area.
fn with_note<'a>(area: Area<'a>, note: Option<&str>) -> Result<Area<'a>> {
    let Some(note) = note else { return Ok(area) };
    let (strip, rest) = area.split_vertically(20);
    let w = strip.dim_in_pixel().0 as i32;
    let style = ("sans-serif", 13).into_font().color(&GREY).pos(Pos::new(HPos::Center, VPos::Top));
    strip.draw(&Text::new(note.to_string(), (w / 2, 2), style)).map_err(plot_err)?;
    Ok(rest)
}

/// Marker shape of a figure of points.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Scatter,
    Lines,
}

/// What an x-y figure will draw, decided before any drawing.
struct XyPlan<'s> {
    series: &'s [Series],
    /// Per series and point: whether it is drawn.
    shown: Vec<Vec<bool>>,
    x: (f64, f64),
    y: (f64, f64),
    x_log: bool,
    y_log: bool,
}

impl XyPlan<'_> {
    /// The runs of consecutive drawn points of series `k` (a line breaks where a point is not drawn).
    fn runs(&self, k: usize) -> Vec<Vec<(f64, f64)>> {
        let mut runs = vec![Vec::new()];
        for (&p, &shown) in self.series[k].points.iter().zip(&self.shown[k]) {
            if shown {
                runs.last_mut().expect("never empty").push(p);
            } else if !runs.last().expect("never empty").is_empty() {
                runs.push(Vec::new());
            }
        }
        runs.retain(|r| !r.is_empty());
        runs
    }

    fn points(&self, k: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series[k].points.iter().zip(&self.shown[k]).filter(|(_, &s)| s).map(|(&p, _)| p)
    }

    /// Error bars of series `k` as `(x, low, high)`, the low end clipped to the plot on a log axis.
    fn bars(&self, k: usize) -> Vec<(f64, f64, f64)> {
        let Some(errors) = &self.series[k].errors else { return Vec::new() };
        let pts = self.series[k].points.iter().zip(&self.shown[k]).zip(errors);
        pts.filter(|((_, &s), e)| s && e.is_finite() && **e >= 0.0)
            .map(|((&(x, y), _), &e)| {
                let lo = if self.y_log && y - e <= 0.0 { self.y.0 } else { y - e };
                (x, lo, y + e)
            })
            .collect()
    }

    /// The corner of the plot where the legend hides the fewest points (the outer 40% × 40% of each corner,
    /// in axis coordinates), preferring the upper right, upper left, lower right, lower left in that order.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let frac = |v: f64, (lo, hi): (f64, f64), log: bool| (to_axis(v, log) - to_axis(lo, log)) / (to_axis(hi, log) - to_axis(lo, log));
        let mut hidden = [0usize; 4];
        for (x, y) in (0..self.series.len()).flat_map(|k| self.points(k)) {
            let (fx, fy) = (frac(x, self.x, self.x_log), frac(y, self.y, self.y_log));
            let (left, right, low, high) = (fx < 0.4, fx > 0.6, fy < 0.4, fy > 0.6);
            for (n, hit) in hidden.iter_mut().zip([high && right, high && left, low && right, low && left]) {
                *n += usize::from(hit);
            }
        }
        let best = (0..4).min_by_key(|&i| hidden[i]).expect("four corners");
        [SeriesLabelPosition::UpperRight, SeriesLabelPosition::UpperLeft, SeriesLabelPosition::LowerRight, SeriesLabelPosition::LowerLeft][best].clone()
    }

    /// The polyline of a reference line within the plot, if any of it is visible.
    fn ref_path(&self, kind: &RefKind) -> Option<Vec<(f64, f64)>> {
        let ((x0, x1), (y0, y1)) = (self.x, self.y);
        match *kind {
            RefKind::Horizontal(v) => (drawable(v, self.y_log) && (y0..=y1).contains(&v)).then(|| vec![(x0, v), (x1, v)]),
            RefKind::Vertical(v) => (drawable(v, self.x_log) && (x0..=x1).contains(&v)).then(|| vec![(v, y0), (v, y1)]),
            RefKind::Proportional(s) => {
                // y = s·x is monotone in x: the visible part is the x interval where s·x lies in [y0, y1]
                let (lo, hi) = if s == 0.0 {
                    if (y0..=y1).contains(&0.0) {
                        (x0, x1)
                    } else {
                        return None;
                    }
                } else {
                    let (a, b) = (y0 / s, y1 / s);
                    (x0.max(a.min(b)), x1.min(a.max(b)))
                };
                if lo >= hi || !drawable(lo, self.x_log) {
                    return None;
                }
                // a straight line when both axes are alike, a curve (sampled) otherwise
                let steps = if self.x_log == self.y_log { 1 } else { 64 };
                let (a, b) = (to_axis(lo, self.x_log), to_axis(hi, self.x_log));
                let path: Vec<(f64, f64)> = (0..=steps)
                    .map(|i| from_axis(a + (b - a) * i as f64 / steps as f64, self.x_log))
                    .map(|x| (x, (s * x).clamp(y0, y1)))
                    .filter(|&(_, y)| drawable(y, self.y_log))
                    .collect();
                (path.len() >= 2).then_some(path)
            }
        }
    }
}

/// "Nice" ticks of a linear range: multiples of 1, 2 or 5 × 10ᵏ, about `n` of them.
fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let raw = (hi - lo) / n.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return vec![lo];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A logarithmic axis over `lo..hi` (both > 0) with readable ticks: powers of 10, then 1-2-5 or 1…9 times
/// them as the range narrows, and plain linear ticks for a range within a factor of a few. (plotters' own
/// log axis labels nothing on a range without a power of 10, and every 1…9 multiple on a wider one.)
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        limit.0 + ((limit.1 - limit.0) as f64 * f).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        let max = hint.max_num_points().max(2);
        let (a, b) = (self.lo.log10().ceil() as i32, self.hi.log10().floor() as i32);
        let decades = (b - a + 1).max(0) as usize;
        if decades > max {
            let every = decades.div_ceil(max) as i32;
            return (a..=b).filter(|e| (e - a) % every == 0).map(|e| 10f64.powi(e)).collect();
        }
        let within = |mantissas: &[f64]| -> Vec<f64> {
            let exponents = (self.lo.log10().floor() as i32)..=(self.hi.log10().floor() as i32);
            exponents.flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e))).filter(|v| (self.lo..=self.hi).contains(v)).collect()
        };
        let candidates = [within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]), within(&[1.0, 2.0, 5.0]), within(&[1.0])];
        match candidates.into_iter().find(|t| t.len() <= max) {
            Some(t) if t.len() >= 3 => t,
            _ => linear_ticks(self.lo, self.hi, max.min(5)),
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Validates the series and decides what is drawn and over which ranges.
fn plan<'s>(x: &Axis, y: &Axis, series: &'s [Series], refs: &[RefLine]) -> Result<(XyPlan<'s>, Option<String>)> {
    if series.is_empty() {
        return Err(LabError::config("figure.series", "no series to draw"));
    }
    for (k, s) in series.iter().enumerate() {
        if let Some(e) = &s.errors {
            if e.len() != s.points.len() {
                return Err(LabError::config(format!("figure.series[{k}].errors"), format!("{} error half-widths for {} points", e.len(), s.points.len())));
            }
        }
    }
    for (k, r) in refs.iter().enumerate() {
        let (RefKind::Horizontal(v) | RefKind::Vertical(v) | RefKind::Proportional(v)) = r.kind;
        if !v.is_finite() {
            return Err(LabError::config(format!("figure.refs[{k}]"), format!("reference line `{}` has the non-finite value {v}", r.label)));
        }
    }
    let (mut non_finite, mut non_positive) = (0, 0);
    let shown: Vec<Vec<bool>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|&(px, py)| {
                    let ok = drawable(px, x.log) && drawable(py, y.log);
                    if !(px.is_finite() && py.is_finite()) {
                        non_finite += 1;
                    } else if !ok {
                        non_positive += 1;
                    }
                    ok
                })
                .collect()
        })
        .collect();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (s, shown) in series.iter().zip(&shown) {
        for (k, (&(px, py), _)) in s.points.iter().zip(shown).enumerate().filter(|(_, (_, &ok))| ok) {
            xs.push(px);
            ys.push(py);
            if let Some(e) = s.errors.as_ref().map(|e| e[k]).filter(|e| e.is_finite() && *e >= 0.0) {
                ys.extend([py - e, py + e].into_iter().filter(|&v| drawable(v, y.log)));
            }
        }
    }
    if xs.is_empty() {
        let total: usize = series.iter().map(|s| s.points.len()).sum();
        if total == 0 {
            return Err(LabError::config("figure.series", "no points to draw: every series is empty"));
        }
        let why = if x.log || y.log { "non-finite or ≤ 0 on a log axis" } else { "non-finite" };
        return Err(LabError::config("figure.series", format!("no finite points to draw: all {} are {why}", count(total, "point"))));
    }
    for r in refs {
        match r.kind {
            RefKind::Horizontal(v) if drawable(v, y.log) => ys.push(v),
            RefKind::Vertical(v) if drawable(v, x.log) => xs.push(v),
            _ => {}
        }
    }
    let range = |v: &[f64], log| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        padded(lo, hi, log)
    };
    let plan = XyPlan { series, shown, x: range(&xs, x.log), y: range(&ys, y.log), x_log: x.log, y_log: y.log };
    Ok((plan, not_shown_note(non_finite, non_positive)))
}

/// Scatter plot: one colour of filled circles per series, error bars where given, a legend of series names,
/// and grey labelled reference lines. See the [module docs](self) for how non-finite points are handled.
///
/// Errors: no series, error bars of the wrong length, a non-finite reference value, or no drawable point.
pub fn scatter_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine]) -> Result<String> {
    xy_svg(title, x, y, series, refs, Style::Scatter)
}

/// Line plot: one colour per series, a polyline (dashed when [`Series::dashed`]) through small markers,
/// broken where a point is not drawn; error bars, legend and reference lines as in [`scatter_svg`].
///
/// Errors: as [`scatter_svg`].
pub fn lines_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine]) -> Result<String> {
    xy_svg(title, x, y, series, refs, Style::Lines)
}

fn xy_svg(title: &str, x: &Axis, y: &Axis, series: &[Series], refs: &[RefLine], style: Style) -> Result<String> {
    let (plan, note) = plan(x, y, series, refs)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, XY_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let area = root.titled(title, ("sans-serif", 18)).map_err(plot_err)?;
        let area = with_note(area, note.as_deref())?;
        let ((x0, x1), (y0, y1)) = (plan.x, plan.y);
        match (x.log, y.log) {
            (false, false) => draw_xy(&area, x0..x1, y0..y1, &plan, x, y, refs, style)?,
            (true, false) => draw_xy(&area, LogAxis { lo: x0, hi: x1 }, y0..y1, &plan, x, y, refs, style)?,
            (false, true) => draw_xy(&area, x0..x1, LogAxis { lo: y0, hi: y1 }, &plan, x, y, refs, style)?,
            (true, true) => draw_xy(&area, LogAxis { lo: x0, hi: x1 }, LogAxis { lo: y0, hi: y1 }, &plan, x, y, refs, style)?,
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Draws an x-y figure on `area` with the coordinate specs `xr`, `yr` (linear or log ranges).
#[allow(clippy::too_many_arguments)]
fn draw_xy<X, Y>(area: &Area<'_>, xr: X, yr: Y, plan: &XyPlan<'_>, x: &Axis, y: &Axis, refs: &[RefLine], style: Style) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart =
        ChartBuilder::on(area).margin(12).margin_right(28).x_label_area_size(40).y_label_area_size(64).build_cartesian_2d(xr, yr).map_err(plot_err)?;
    // a tick a rounding error away from zero would print as 1e-17
    let snap = |v: f64, (lo, hi): (f64, f64), log: bool| if !log && v.abs() < 1e-9 * (hi - lo) { 0.0 } else { v };
    let x_fmt = |v: &f64| compact(snap(*v, plan.x, x.log));
    let y_fmt = |v: &f64| compact(snap(*v, plan.y, y.log));
    chart
        .configure_mesh()
        .x_desc(x.label.as_str())
        .y_desc(y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_labels(8)
        .y_labels(8)
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(plot_err)?;
    let label_style = ("sans-serif", 12).into_font().color(&GREY);
    for r in refs {
        let Some(path) = plan.ref_path(&r.kind) else { continue };
        let (&first, &last) = (path.first().expect("≥ 2 points"), path.last().expect("≥ 2 points"));
        chart.draw_series(LineSeries::new(path, GREY.stroke_width(1))).map_err(plot_err)?;
        let text = |at, offset, pos| EmptyElement::at(at) + Text::new(r.label.clone(), offset, label_style.pos(pos));
        let label = match r.kind {
            RefKind::Horizontal(_) => text(first, (4, -3), Pos::new(HPos::Left, VPos::Bottom)),
            RefKind::Vertical(_) => text(last, (4, 4), Pos::new(HPos::Left, VPos::Top)),
            RefKind::Proportional(_) => text(last, (-4, 4), Pos::new(HPos::Right, VPos::Top)),
        };
        chart.draw_series(std::iter::once(label)).map_err(plot_err)?;
    }
    for (k, s) in plan.series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        for (bx, lo, hi) in plan.bars(k) {
            let cap = |at| EmptyElement::at(at) + PathElement::new(vec![(-3, 0), (3, 0)], c.stroke_width(1));
            chart.draw_series([PathElement::new(vec![(bx, lo), (bx, hi)], c.stroke_width(1))]).map_err(plot_err)?;
            chart.draw_series([cap((bx, lo)), cap((bx, hi))]).map_err(plot_err)?;
        }
        let markers = match style {
            Style::Scatter => chart.draw_series(plan.points(k).map(|p| Circle::new(p, 4, c.mix(0.85).filled()))).map_err(plot_err)?,
            Style::Lines => {
                for run in plan.runs(k).into_iter().filter(|r| r.len() >= 2) {
                    if s.dashed {
                        chart.draw_series(DashedLineSeries::new(run, 7, 5, c.stroke_width(2))).map_err(plot_err)?;
                    } else {
                        chart.draw_series(LineSeries::new(run, c.stroke_width(2))).map_err(plot_err)?;
                    }
                }
                chart.draw_series(plan.points(k).map(|p| Circle::new(p, 2, c.filled()))).map_err(plot_err)?
            }
        };
        // legend glyphs are squares or line pieces, never circles: a figure's circles are its data points
        let anno = markers.label(s.name.clone());
        match style {
            Style::Scatter => anno.legend(move |(lx, ly)| Rectangle::new([(lx + 6, ly - 4), (lx + 14, ly + 4)], c.filled())),
            Style::Lines => {
                let (a, b) = if s.dashed { ((0, 7), (12, 20)) } else { ((0, 10), (10, 20)) };
                anno.legend(move |(lx, ly)| {
                    let seg = |(u, v): (i32, i32)| PathElement::new(vec![(u, 0), (v, 0)], c.stroke_width(2));
                    EmptyElement::at((lx, ly)) + seg(a) + seg(b)
                })
            }
        };
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .position(plan.legend_corner())
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// Viridis, sampled at 9 points and linearly interpolated (t in [0, 1]); perceptually even, and readable
/// in grey-scale print.
fn viridis(t: f64) -> RGBColor {
    const V: [(u8, u8, u8); 9] =
        [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)];
    let x = t.clamp(0.0, 1.0) * (V.len() - 1) as f64;
    let i = (x.floor() as usize).min(V.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(mix(V[i].0, V[i + 1].0), mix(V[i].1, V[i + 1].1), mix(V[i].2, V[i + 1].2))
}

/// The grid values along one heatmap axis, for mapping values to positions in cell space (cell `i` spans
/// `[i, i + 1]`, its centre `i + 0.5` stands for `vals[i]`; between centres the position is interpolated
/// linearly, in log₁₀ on a log axis, and extrapolated beyond the outer centres).
struct GridAxis {
    t: Vec<f64>,
    log: bool,
}

impl GridAxis {
    /// `None` unless the values are ≥ 2, finite, strictly monotone, and positive on a log axis.
    fn new(vals: &[f64], log: bool) -> Option<GridAxis> {
        if vals.len() < 2 || !vals.iter().all(|&v| drawable(v, log)) {
            return None;
        }
        let t: Vec<f64> = vals.iter().map(|&v| to_axis(v, log)).collect();
        let up = t[1] > t[0];
        t.windows(2).all(|w| if up { w[1] > w[0] } else { w[1] < w[0] }).then_some(GridAxis { t, log })
    }

    /// Position of value `v` in cell space; `None` when `v` cannot lie on the axis (≤ 0 on a log axis).
    fn position(&self, v: f64) -> Option<f64> {
        if !drawable(v, self.log) {
            return None;
        }
        let (t, n) = (to_axis(v, self.log), self.t.len());
        let k = (0..n - 1).find(|&k| (self.t[k].min(self.t[k + 1])..=self.t[k].max(self.t[k + 1])).contains(&t));
        let k = k.unwrap_or(if (t - self.t[0]) * (self.t[1] - self.t[0]) < 0.0 { 0 } else { n - 2 });
        Some(k as f64 + 0.5 + (t - self.t[k]) / (self.t[k + 1] - self.t[k]))
    }

    /// The value at position `u` in cell space (the inverse of [`position`](Self::position)).
    fn value(&self, u: f64) -> f64 {
        let n = self.t.len();
        let k = ((u - 0.5).floor().max(0.0) as usize).min(n - 2);
        let f = u - 0.5 - k as f64;
        from_axis(self.t[k] + f * (self.t[k + 1] - self.t[k]), self.log)
    }
}

/// A heatmap axis in cell space, `0..n`, with ticks only at the given cell centres (plotters' own linear
/// axes would put them at round numbers).
struct CellAxis {
    n: f64,
    ticks: Vec<f64>,
}

impl Ranged for CellAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        limit.0 + ((limit.1 - limit.0) as f64 * v / self.n).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.n
    }
}

/// Clips the segment p–q to the box [0, w] × [0, h] (Liang–Barsky).
fn clip_segment(p: (f64, f64), q: (f64, f64), w: f64, h: f64) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (denom, dist) in [(-dx, p.0), (dx, w - p.0), (-dy, p.1), (dy, h - p.1)] {
        if denom == 0.0 {
            if dist < 0.0 {
                return None;
            }
        } else {
            let r = dist / denom;
            if denom < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some(((p.0 + t0 * dx, p.1 + t0 * dy), (p.0 + t1 * dx, p.1 + t1 * dy)))
}

/// Clips a polyline (with gaps where a point is `None`) to the box [0, w] × [0, h]: the visible runs.
fn clip_polyline(pts: &[Option<(f64, f64)>], w: f64, h: f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for pair in pts.windows(2) {
        let (Some(p), Some(q)) = (pair[0], pair[1]) else {
            open = false;
            continue;
        };
        match clip_segment(p, q, w, h) {
            Some((a, b)) => {
                if !open {
                    runs.push(vec![a]);
                }
                runs.last_mut().expect("just pushed").push(b);
                // the run continues only if the segment left the box at its own end
                open = b == q;
            }
            None => open = false,
        }
    }
    runs.retain(|r| r.len() >= 2);
    runs
}

/// A reference line on a heatmap grid of `nx` × `ny` cells: its visible runs in cell space.
fn heatmap_ref_runs(r: &RefLine, k: usize, xs: &[f64], x: &Axis, ys: &[f64], y: &Axis) -> Result<Vec<Vec<(f64, f64)>>> {
    let need = |vals: &[f64], axis: &Axis, name: &str| {
        GridAxis::new(vals, axis.log).ok_or_else(|| {
            LabError::config(
                format!("figure.refs[{k}]"),
                format!(
                    "reference line `{}` needs at least 2 strictly monotone, finite {name}{}",
                    r.label,
                    if axis.log { ", all > 0 on the log axis" } else { "" }
                ),
            )
        })
    };
    let (w, h) = (xs.len() as f64, ys.len() as f64);
    let pts: Vec<Option<(f64, f64)>> = match r.kind {
        RefKind::Horizontal(v) => {
            let gy = need(ys, y, "ys")?;
            let p = gy.position(v);
            vec![p.map(|p| (0.0, p)), p.map(|p| (w, p))]
        }
        RefKind::Vertical(v) => {
            let gx = need(xs, x, "xs")?;
            let p = gx.position(v);
            vec![p.map(|p| (p, 0.0)), p.map(|p| (p, h))]
        }
        RefKind::Proportional(s) => {
            let (gx, gy) = (need(xs, x, "xs")?, need(ys, y, "ys")?);
            // the mapped line is straight between column centres and between the places where it meets a
            // row centre's value; between those it bends only when one axis is log and the other is not
            let mut us: Vec<f64> = (0..xs.len()).map(|i| i as f64 + 0.5).chain([0.0, w]).collect();
            if s != 0.0 {
                us.extend(ys.iter().filter_map(|&v| gx.position(v / s)).filter(|u| (0.0..=w).contains(u)));
            }
            if x.log != y.log {
                let steps = 16 * xs.len();
                us.extend((0..steps).map(|i| w * i as f64 / steps as f64));
            }
            us.sort_by(f64::total_cmp);
            us.dedup();
            us.into_iter().map(|u| gy.position(s * gx.value(u)).map(|v| (u, v))).collect()
        }
    };
    Ok(clip_polyline(&pts, w, h))
}

/// Heatmap of `values` over a grid: `ys.len()` rows (the first at the bottom) × `xs.len()` columns,
/// `values` row-major (`values[j·xs.len() + i]` belongs to `ys[j]`, `xs[i]`). Cells are evenly spaced and
/// labelled with the grid values; colours follow viridis over the finite values' range, with a colour bar
/// labelled `value_label`. Non-finite cells are light grey with a cross and counted in a note under the
/// title; each cell's value is printed when there are at most 100 cells.
///
/// `refs` are drawn as labelled white lines over the cells: [`RefKind::Proportional`] is `y = slope·x`
/// (with rows η and columns B, the iso-ratio line η/B = slope), mapped onto the grid by interpolating
/// between cell centres — log-linearly on an axis with [`Axis::log`] (the only thing `log` changes here).
/// Such lines need at least 2 strictly monotone values (positive on a log axis) on the axes they use.
///
/// Errors: no xs or no ys, `values.len() != xs.len()·ys.len()` (the message names both), a non-finite
/// reference value, or a reference line the grid cannot place.
#[allow(clippy::too_many_arguments)]
pub fn heatmap_svg(title: &str, x: &Axis, xs: &[f64], y: &Axis, ys: &[f64], values: &[f64], value_label: &str, refs: &[RefLine]) -> Result<String> {
    let (nx, ny) = (xs.len(), ys.len());
    if nx == 0 || ny == 0 {
        return Err(LabError::config(
            if nx == 0 { "figure.xs" } else { "figure.ys" },
            format!("a heatmap needs at least 1 column and 1 row, got {nx} xs and {ny} ys"),
        ));
    }
    if values.len() != nx * ny {
        return Err(LabError::config("figure.values", format!("{} values for a grid of {ny} ys × {nx} xs, which needs {}", values.len(), nx * ny)));
    }
    for (k, r) in refs.iter().enumerate() {
        let (RefKind::Horizontal(v) | RefKind::Vertical(v) | RefKind::Proportional(v)) = r.kind;
        if !v.is_finite() {
            return Err(LabError::config(format!("figure.refs[{k}]"), format!("reference line `{}` has the non-finite value {v}", r.label)));
        }
    }
    let ref_runs = refs.iter().enumerate().map(|(k, r)| heatmap_ref_runs(r, k, xs, x, ys, y)).collect::<Result<Vec<_>>>()?;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let missing = values.len() - finite.len();
    let (zmin, zmax) = match (finite.iter().copied().reduce(f64::min), finite.iter().copied().reduce(f64::max)) {
        (Some(lo), Some(hi)) if hi > lo => (lo, hi),
        (Some(v), _) => padded(v, v, false),
        _ => (0.0, 1.0),
    };
    let t = |v: f64| (v - zmin) / (zmax - zmin);
    let note = match missing {
        0 => None,
        m if m == values.len() => Some("every cell diverged or is non-finite (grey, crossed out)".to_string()),
        m => Some(format!("{} diverged or non-finite (grey, crossed out)", count(m, "cell"))),
    };
    let key_points = |n: usize| (0..n).step_by(n.div_ceil(MAX_HEATMAP_TICKS)).map(|i| i as f64 + 0.5).collect::<Vec<f64>>();
    let tick = |vals: &[f64], v: f64| {
        let i = (v - 0.5).round();
        if i >= 0.0 && (i as usize) < vals.len() && (v - 0.5 - i).abs() < 1e-6 {
            compact(vals[i as usize])
        } else {
            String::new()
        }
    };
    let (x_fmt, y_fmt) = (|v: &f64| tick(xs, *v), |v: &f64| tick(ys, *v));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, HEATMAP_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let area = root.titled(title, ("sans-serif", 18)).map_err(plot_err)?;
        let area = with_note(area, note.as_deref())?;
        let (main, bar) = area.split_horizontally(HEATMAP_SIZE.0 - 120);
        let (w, h) = (nx as f64, ny as f64);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(CellAxis { n: w, ticks: key_points(nx) }, CellAxis { n: h, ticks: key_points(ny) })
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x.label.as_str())
            .y_desc(y.label.as_str())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .axis_desc_style(("sans-serif", 14))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(plot_err)?;
        let cells = || (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j, values[j * nx + i])));
        chart
            .draw_series(cells().map(|(i, j, v)| {
                let colour = if v.is_finite() { viridis(t(v)) } else { MISSING };
                Rectangle::new([(i as f64, j as f64), (i as f64 + 1.0, j as f64 + 1.0)], colour.filled())
            }))
            .map_err(plot_err)?;
        for (i, j, _) in cells().filter(|c| !c.2.is_finite()) {
            let (a, b) = ((i as f64 + 0.2, j as f64 + 0.2), (i as f64 + 0.8, j as f64 + 0.8));
            let cross = [PathElement::new(vec![a, b], GREY.stroke_width(1)), PathElement::new(vec![(a.0, b.1), (b.0, a.1)], GREY.stroke_width(1))];
            chart.draw_series(cross).map_err(plot_err)?;
        }
        if nx * ny <= MAX_PRINTED_CELLS {
            let font = ("sans-serif", 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(cells().filter(|c| c.2.is_finite()).map(|(i, j, v)| {
                    let ink = if t(v) > 0.6 { &BLACK } else { &WHITE };
                    Text::new(compact(v), (i as f64 + 0.5, j as f64 + 0.5), font.color(ink))
                }))
                .map_err(plot_err)?;
        }
        let label_font = ("sans-serif", 12).into_font().color(&BLACK);
        for (r, runs) in refs.iter().zip(&ref_runs) {
            for run in runs {
                chart.draw_series(LineSeries::new(run.iter().copied(), BLACK.mix(0.55).stroke_width(4))).map_err(plot_err)?;
                chart.draw_series(LineSeries::new(run.iter().copied(), WHITE.stroke_width(2))).map_err(plot_err)?;
            }
            // the label sits inside the grid, below and left of the line's last (rightmost) point
            let Some(&end) = runs.iter().flatten().max_by(|a, b| a.0.total_cmp(&b.0)) else { continue };
            let width = 7 * r.label.chars().count() as i32;
            let label = EmptyElement::at(end)
                + Rectangle::new([(-width - 8, 4), (-4, 20)], WHITE.mix(0.8).filled())
                + Text::new(r.label.clone(), (-6, 5), label_font.pos(Pos::new(HPos::Right, VPos::Top)));
            chart.draw_series(std::iter::once(label)).map_err(plot_err)?;
        }
        // colour bar, drawn as thick horizontal strokes so that the only rectangles are the cells
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(12)
            .margin_bottom(56)
            .margin_right(24)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..1.0, zmin..zmax)
            .map_err(plot_err)?;
        let zspan = zmax - zmin;
        let z_fmt = |v: &f64| compact(if v.abs() < 1e-9 * zspan { 0.0 } else { *v });
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(value_label)
            .y_labels(8)
            .axis_desc_style(("sans-serif", 14))
            .y_label_style(("sans-serif", 12))
            .y_label_formatter(&z_fmt)
            .draw()
            .map_err(plot_err)?;
        if !finite.is_empty() {
            let steps = 64;
            let stroke = cb.plotting_area().dim_in_pixel().1.div_ceil(steps) + 1;
            cb.draw_series((0..steps).map(|k| {
                let f = (k as f64 + 0.5) / steps as f64;
                let z = zmin + zspan * f;
                PathElement::new(vec![(0.0, z), (1.0, z)], viridis(f).stroke_width(stroke))
            }))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Reads the `width` and `height` of the root `<svg …>` tag; returns them with the tag's offset.
fn svg_size(svg: &str) -> Option<(f64, f64, usize)> {
    let start = svg.find("<svg")?;
    let tag = &svg[start..start + svg[start..].find('>')?];
    let attr = |name: &str| {
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[at..at + tag[at..].find('"')?].trim_end_matches("px").parse::<f64>().ok()
    };
    Some((attr("width")?, attr("height")?, start))
}

/// Lays figures (SVG documents such as those of [`scatter_svg`]) out in a grid of `columns` columns, left
/// to right and top to bottom, by nesting each `<svg>` in one outer `<svg>` at an x/y offset. Every grid
/// cell is as large as the largest figure.
///
/// Errors: no panels, 0 columns, or a panel without a root `<svg>` tag with numeric width and height.
pub fn panels_svg(panels: &[String], columns: usize) -> Result<String> {
    if panels.is_empty() {
        return Err(LabError::config("figure.panels", "no panels to lay out"));
    }
    if columns == 0 {
        return Err(LabError::config("figure.columns", "a grid of panels needs at least 1 column"));
    }
    let sizes = panels
        .iter()
        .enumerate()
        .map(|(k, p)| svg_size(p).ok_or_else(|| LabError::config(format!("figure.panels[{k}]"), "not an SVG document with a numeric width and height")))
        .collect::<Result<Vec<_>>>()?;
    let cw = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
    let ch = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
    let rows = panels.len().div_ceil(columns);
    let (w, h) = (cw * columns.min(panels.len()) as f64, ch * rows as f64);
    let mut out = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (k, (panel, &(_, _, at))) in panels.iter().zip(&sizes).enumerate() {
        let (x, y) = (cw * (k % columns) as f64, ch * (k / columns) as f64);
        // `<svg x=".." y=".."` followed by the rest of the panel after its own `<svg` (any prolog is dropped)
        let rest = &panel[at + "<svg".len()..];
        out.push_str(&format!("<svg x=\"{x}\" y=\"{y}\"{rest}"));
        if !rest.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("</svg>\n");
    Ok(out)
}
