//! What an x-y figure (scatter or lines) will draw, decided before any drawing: which points are shown (a
//! diverged run's NaN, or a value ≤ 0 on a log axis, is not, and is counted for the note under the title),
//! the padded axis ranges, the runs of a broken line, error bars, the legend's corner, and the visible part
//! of each reference line.

use plotters::prelude::SeriesLabelPosition;

use super::{count, drawable, from_axis, padded, to_axis, Axis, RefKind, RefLine, Series};
use crate::error::{LabError, Result};

/// What an x-y figure will draw, decided before any drawing.
pub(super) struct XyPlan<'s> {
    pub(super) series: &'s [Series],
    /// Per series and point: whether it is drawn.
    pub(super) shown: Vec<Vec<bool>>,
    pub(super) x: (f64, f64),
    pub(super) y: (f64, f64),
    pub(super) x_log: bool,
    pub(super) y_log: bool,
}

impl XyPlan<'_> {
    /// The runs of consecutive drawn points of series `k` (a line breaks where a point is not drawn).
    pub(super) fn runs(&self, k: usize) -> Vec<Vec<(f64, f64)>> {
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

    pub(super) fn points(&self, k: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series[k].points.iter().zip(&self.shown[k]).filter(|(_, &s)| s).map(|(&p, _)| p)
    }

    /// Error bars of series `k` as `(x, low, high)`, the low end clipped to the plot on a log axis.
    pub(super) fn bars(&self, k: usize) -> Vec<(f64, f64, f64)> {
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
    pub(super) fn legend_corner(&self) -> SeriesLabelPosition {
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
    pub(super) fn ref_path(&self, kind: &RefKind) -> Option<Vec<(f64, f64)>> {
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

/// Validates the series and decides what is drawn and over which ranges.
pub(super) fn plan<'s>(x: &Axis, y: &Axis, series: &'s [Series], refs: &[RefLine]) -> Result<(XyPlan<'s>, Option<String>)> {
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
