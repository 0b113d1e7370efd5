//! A logarithmic axis for plotters with readable ticks on any range (plotters' own log axis labels nothing
//! on a range without a power of 10, and every 1…9 multiple on a wide one).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

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
pub(super) struct LogAxis {
    /// The lower end (> 0).
    pub(super) lo: f64,
    /// The upper end (> lo).
    pub(super) hi: f64,
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
