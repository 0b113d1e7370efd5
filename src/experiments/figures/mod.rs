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
//! The drawing style (palette, colour map, greys, fonts, stroke widths, marker sizes) is the one of every
//! figure, [`crate::analysis::figure_style`]; `analysis::plot` draws the landscapes with it too.
//!
//! The files: this one holds the figures' vocabulary ([`Axis`], [`Series`], [`RefLine`]) and what every kind
//! shares (number format, axis mapping, padding, the note under a title); `xy` draws scatter and line plots
//! (the two differ only in their marks) from the decisions of `xy_plan` on a linear or `log_axis`;
//! `heatmap` draws η × B heatmaps on the cell grid of `heatmap_grid`; `panels` lays figures out in a grid.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::analysis::figure_style::style;
use crate::error::{LabError, Result};

mod heatmap;
mod heatmap_grid;
mod log_axis;
mod panels;
mod xy;
mod xy_plan;

pub use heatmap::heatmap_svg;
pub use panels::panels_svg;
pub use xy::{lines_svg, scatter_svg};

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

/// Draws `note` (if any) in grey in a strip at the top of `area` and returns the rest of the area.
fn with_note<'a>(area: Area<'a>, note: Option<&str>) -> Result<Area<'a>> {
    let Some(note) = note else { return Ok(area) };
    let (strip, rest) = area.split_vertically(20);
    let w = strip.dim_in_pixel().0 as i32;
    let s = style();
    let font = s.font(s.font.note).into_font().color(&s.reference.0).pos(Pos::new(HPos::Center, VPos::Top));
    strip.draw(&Text::new(note.to_string(), (w / 2, 2), font)).map_err(plot_err)?;
    Ok(rest)
}
