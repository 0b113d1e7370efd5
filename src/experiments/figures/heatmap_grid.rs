//! The cell grid of a heatmap: cell `i` spans `[i, i + 1]` whatever the grid values are, ticks sit at the
//! cell centres, and reference lines are mapped onto the grid by interpolating between the centres
//! (logarithmically on a log axis), then clipped to it.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

use super::{drawable, from_axis, to_axis, Axis, RefKind, RefLine};
use crate::error::{LabError, Result};

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
pub(super) struct CellAxis {
    /// Cells along the axis.
    pub(super) n: f64,
    /// Where the ticks lie (cell centres).
    pub(super) ticks: Vec<f64>,
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
pub(super) fn heatmap_ref_runs(r: &RefLine, k: usize, xs: &[f64], x: &Axis, ys: &[f64], y: &Axis) -> Result<Vec<Vec<(f64, f64)>>> {
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
