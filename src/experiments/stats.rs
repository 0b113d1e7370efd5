//! Statistics for the claims reports: rank correlation with honest p-values, ordinary least squares with
//! confidence intervals for linear combinations of coefficients, and small descriptive helpers.
//!
//! Why these and why by hand: the paper's claims are about *monotone* relations (sharper minima at a
//! larger η/B) and about *ratios* (that η and B matter only through η/B, which in a log-linear fit
//! `log y = a + b·log η + c·log B` is the hypothesis `b + c = 0`). Spearman's ρ tests the first without
//! assuming linearity; an OLS fit with the covariance of its coefficients tests the second through the
//! estimate and interval of `b + c`. The experiment grids are small (a handful of learning rates and
//! batch sizes, a few seeds), so the p-value for Spearman's ρ is exact (a full permutation enumeration)
//! whenever that is affordable rather than always leaning on an asymptotic formula. The algebra is a
//! few dozen lines; writing it here keeps the dependency list to `statrs` (for the Student-t
//! distribution) and keeps everything compiling for wasm32, where the reports are also built.
//!
//! Conventions: every function takes `f64` slices; pairs or rows holding a non-finite value (a run that
//! diverged reports NaN or ∞) are dropped by the functions that say so, and the functions return `None`
//! (or NaN) instead of a number that would mean nothing.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Ranks of `x`, 1-based: the smallest value gets rank 1. Tied values all get the average of the ranks
/// they span (`[10, 20, 20, 30]` → `[1, 2.5, 2.5, 4]`).
///
/// Values are ordered by [`f64::total_cmp`], so a NaN ranks above +∞; callers that care (e.g.
/// [`spearman`]) drop non-finite values first.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]].total_cmp(&x[order[start]]).is_eq() {
            end += 1;
        }
        // positions start..end (0-based) hold ranks start+1..=end; their average is (start + 1 + end) / 2
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

/// A correlation coefficient with its two-sided p-value and the number of pairs it was computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// The coefficient, in [−1, 1].
    pub rho: f64,
    /// Two-sided p-value of the hypothesis "no association" (see [`spearman`] for how it is computed).
    pub p_value: f64,
    /// Number of pairs used (after dropping non-finite ones).
    pub n: usize,
}

/// Largest sample for which [`spearman`] enumerates all n! permutations for the exact p-value
/// (8! = 40 320 permutations, a few milliseconds).
pub const EXACT_SPEARMAN_MAX_N: usize = 8;

/// Keeps the pairs `(x[i], y[i])` where both values are finite; `None` when the lengths differ.
fn finite_pairs(x: &[f64], y: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    if x.len() != y.len() {
        return None;
    }
    Some(x.iter().zip(y).filter(|(a, b)| a.is_finite() && b.is_finite()).map(|(&a, &b)| (a, b)).unzip())
}

/// Pearson correlation of already-cleaned data; `None` when either side is constant.
fn pearson_clean(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    // sqrt of one product (not a product of two square roots) so that identical ranks give exactly 1
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Pearson's product-moment correlation of `x` and `y`.
///
/// Pairs where either value is non-finite are dropped first. `None` when the lengths differ, fewer
/// than 2 pairs remain, or either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let (x, y) = finite_pairs(x, y)?;
    if x.len() < 2 {
        return None;
    }
    pearson_clean(&x, &y)
}

/// Spearman's rank correlation ρ of `x` and `y`: the Pearson correlation of their ranks (ties get
/// average ranks), with a two-sided p-value.
///
/// Pairs where either value is non-finite are dropped first. `None` when the lengths differ, fewer than
/// 3 pairs remain, or either side is constant.
///
/// The p-value is
/// - for n ≤ [`EXACT_SPEARMAN_MAX_N`]: **exact** — the fraction of all n! permutations of the ranks of `y`
///   whose |ρ| is at least the observed |ρ| (ties are kept as they are, so this is the exact conditional
///   permutation test). A perfect correlation gets `2/n!` (for distinct values), never 0;
/// - for larger n: the usual **t approximation**, t = ρ·√((n−2)/(1−ρ²)) on n−2 degrees of freedom.
///   |ρ| = 1 gives p = 0 there.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<Correlation> {
    let (x, y) = finite_pairs(x, y)?;
    let n = x.len();
    if n < 3 {
        return None;
    }
    let (rx, ry) = (ranks(&x), ranks(&y));
    let rho = pearson_clean(&rx, &ry)?;
    let p_value = if n <= EXACT_SPEARMAN_MAX_N { exact_spearman_p(&rx, &ry) } else { t_test_p(rho, n) };
    Some(Correlation { rho, p_value, n })
}

/// Exact two-sided permutation p-value of Spearman's ρ: every permutation of `ry` is visited (Heap's
/// algorithm). The denominator of ρ is the same for every permutation, so comparing |Σ dx·dy| suffices.
fn exact_spearman_p(rx: &[f64], ry: &[f64]) -> f64 {
    let n = rx.len();
    let centre = (n as f64 + 1.0) / 2.0; // the mean of any set of n (average) ranks
    let dx: Vec<f64> = rx.iter().map(|r| r - centre).collect();
    let mut dy: Vec<f64> = ry.iter().map(|r| r - centre).collect();
    let stat = |dy: &[f64]| dx.iter().zip(dy).map(|(a, b)| a * b).sum::<f64>().abs();
    // ranks are multiples of 1/2, so the sums are exact up to tiny rounding: compare with a tolerance
    let observed = stat(&dy) - 1e-9;
    let (mut count, mut total) = (0u64, 0u64);
    let mut visit = |dy: &[f64]| {
        total += 1;
        if stat(dy) >= observed {
            count += 1;
        }
    };
    // Heap's algorithm, iterative form
    let mut c = vec![0usize; n];
    visit(&dy);
    let mut i = 1;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                dy.swap(0, i);
            } else {
                dy.swap(c[i], i);
            }
            visit(&dy);
            c[i] += 1;
            i = 1;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    count as f64 / total as f64
}

/// Two-sided p-value of a correlation `r` from `n` pairs through t = r·√((n−2)/(1−r²)) on n−2 dof.
fn t_test_p(r: f64, n: usize) -> f64 {
    if r.abs() >= 1.0 {
        return 0.0;
    }
    let dof = (n - 2) as f64;
    let t = r * (dof / (1.0 - r * r)).sqrt();
    let dist = StudentsT::new(0.0, 1.0, dof).expect("n ≥ 3 gives positive degrees of freedom");
    (2.0 * dist.sf(t.abs())).clamp(0.0, 1.0)
}

/// The two-sided Student-t quantile for a confidence `level` (e.g. 2.262 for 0.95 and 9 dof); NaN when
/// `dof` is 0 or `level` is not strictly between 0 and 1.
fn t_quantile(level: f64, dof: usize) -> f64 {
    if dof == 0 || level.is_nan() || level <= 0.0 || level >= 1.0 {
        return f64::NAN;
    }
    let dist = StudentsT::new(0.0, 1.0, dof as f64).expect("positive degrees of freedom");
    dist.inverse_cdf((1.0 + level) / 2.0)
}

/// An ordinary least-squares fit `y ≈ X·β` (see [`ols`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// β, one coefficient per column of the design, in the caller's column order.
    pub coefficients: Vec<f64>,
    /// Estimated covariance of β, s²·(XᵀX)⁻¹, p×p row-major.
    pub covariance: Vec<f64>,
    /// Residual degrees of freedom, n − p.
    pub residual_dof: usize,
    /// Residual standard deviation s = √(RSS / (n − p)).
    pub residual_std: f64,
    /// Centred R² = 1 − RSS/TSS (meaningful when the design has an intercept); NaN when y is constant.
    pub r_squared: f64,
    /// Number of rows used (after dropping non-finite ones).
    pub n: usize,
}

/// A point estimate with its standard error and a two-sided Student-t confidence interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Lower end of the confidence interval (NaN when it cannot be formed, e.g. 0 degrees of freedom).
    pub ci_low: f64,
    /// Upper end of the confidence interval (NaN when it cannot be formed).
    pub ci_high: f64,
    /// Confidence level of the interval, e.g. 0.95.
    pub level: f64,
    /// Degrees of freedom of the t distribution used for the interval.
    pub dof: usize,
}

impl Estimate {
    /// `value ± t·std_error` with the t quantile for `level` and `dof`.
    fn with_t_interval(value: f64, std_error: f64, level: f64, dof: usize) -> Estimate {
        let half = t_quantile(level, dof) * std_error;
        Estimate { value, std_error, ci_low: value - half, ci_high: value + half, level, dof }
    }
}

impl LinearFit {
    /// The estimate of the linear combination wᵀβ (e.g. `w = [0, 1, 1]` for `b + c` in
    /// `y = a + b·x₁ + c·x₂`), with standard error √(wᵀΣw) and a `level` confidence interval from the
    /// Student-t quantile at (1 + level)/2 on [`residual_dof`](Self::residual_dof) degrees of freedom.
    /// The bounds are NaN when there are no residual degrees of freedom or `level` is outside (0, 1).
    ///
    /// # Panics
    /// When `weights` does not have one entry per coefficient (a programming error).
    pub fn combination(&self, weights: &[f64], level: f64) -> Estimate {
        let p = self.coefficients.len();
        assert_eq!(weights.len(), p, "combination: {} weights for {} coefficients", weights.len(), p);
        let value = weights.iter().zip(&self.coefficients).map(|(w, b)| w * b).sum();
        let mut var = 0.0;
        for i in 0..p {
            for j in 0..p {
                var += weights[i] * self.covariance[i * p + j] * weights[j];
            }
        }
        Estimate::with_t_interval(value, var.max(0.0).sqrt(), level, self.residual_dof)
    }
}

/// Relative size below which a diagonal entry of R (with unit-norm columns) marks the design as
/// rank-deficient: a condition number beyond ~10¹⁰ leaves no meaningful coefficients in f64.
const RANK_TOLERANCE: f64 = 1e-10;

/// Ordinary least squares: the β minimising ‖y − Xβ‖² for the design rows `rows` (the caller supplies
/// every column, including an intercept column of 1s when one is wanted).
///
/// Rows where `y` or any regressor is non-finite are dropped. `None` when the rows differ in length or
/// are empty, the lengths of `rows` and `y` differ, n ≤ p after dropping, or the design is
/// rank-deficient (a column that is a linear combination of others, to a relative tolerance of 1e-10).
///
/// Method: the columns are scaled to unit norm (so that a column of learning rates ~1e-3 next to an
/// intercept is not mistaken for a zero column), then a Householder QR factorisation gives β by back
/// substitution and (XᵀX)⁻¹ = R⁻¹R⁻ᵀ without ever forming XᵀX, whose condition number is the square of X's.
pub fn ols(rows: &[Vec<f64>], y: &[f64]) -> Option<LinearFit> {
    if rows.len() != y.len() || rows.is_empty() {
        return None;
    }
    let p = rows[0].len();
    if p == 0 || rows.iter().any(|r| r.len() != p) {
        return None;
    }
    let keep: Vec<usize> = (0..rows.len()).filter(|&i| y[i].is_finite() && rows[i].iter().all(|v| v.is_finite())).collect();
    let n = keep.len();
    if n <= p {
        return None;
    }
    let yv: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
    // column-major copy of the design, each column scaled to unit norm
    let mut a: Vec<Vec<f64>> = (0..p).map(|j| keep.iter().map(|&i| rows[i][j]).collect()).collect();
    let mut scale = vec![0.0; p];
    for (j, col) in a.iter_mut().enumerate() {
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            return None;
        }
        col.iter_mut().for_each(|v| *v /= norm);
        scale[j] = norm;
    }
    let mut qty = yv.clone();
    // Householder QR: after step k, column k holds R[..=k][k] above the diagonal and zeros below it
    for k in 0..p {
        let norm = a[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= RANK_TOLERANCE {
            return None;
        }
        let alpha = if a[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = a[k][k..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        let reflect = |col: &mut [f64]| {
            let dot: f64 = v.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
            let f = 2.0 * dot / vnorm2;
            col.iter_mut().zip(&v).for_each(|(c, vi)| *c -= f * vi);
        };
        for col in a.iter_mut().skip(k + 1) {
            reflect(&mut col[k..]);
        }
        reflect(&mut qty[k..]);
        a[k][k] = alpha;
        a[k][k + 1..].iter_mut().for_each(|x| *x = 0.0);
    }
    let r = |i: usize, j: usize| a[j][i]; // R[i][j], i ≤ j
                                          // β (scaled) by back substitution of R·β = (Qᵀy)[..p]
    let mut beta = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|j| r(i, j) * beta[j]).sum();
        beta[i] = (qty[i] - s) / r(i, i);
    }
    // R⁻¹ (upper triangular), column by column
    let mut rinv = vec![0.0; p * p];
    for c in 0..p {
        for i in (0..=c).rev() {
            let rhs = if i == c { 1.0 } else { 0.0 };
            let s: f64 = (i + 1..=c).map(|j| r(i, j) * rinv[j * p + c]).sum();
            rinv[i * p + c] = (rhs - s) / r(i, i);
        }
    }
    // undo the column scaling: β = D⁻¹β̃, (XᵀX)⁻¹ = D⁻¹R⁻¹R⁻ᵀD⁻¹
    let coefficients: Vec<f64> = beta.iter().zip(&scale).map(|(b, s)| b / s).collect();
    let residuals: Vec<f64> = keep.iter().zip(&yv).map(|(&i, &yi)| yi - rows[i].iter().zip(&coefficients).map(|(x, b)| x * b).sum::<f64>()).collect();
    let rss: f64 = residuals.iter().map(|e| e * e).sum();
    let residual_dof = n - p;
    let s2 = rss / residual_dof as f64;
    let mut covariance = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            let g: f64 = (i.max(j)..p).map(|k| rinv[i * p + k] * rinv[j * p + k]).sum();
            covariance[i * p + j] = s2 * g / (scale[i] * scale[j]);
        }
    }
    let my = mean(&yv);
    let tss: f64 = yv.iter().map(|v| (v - my) * (v - my)).sum();
    let r_squared = if tss > 0.0 { 1.0 - rss / tss } else { f64::NAN };
    Some(LinearFit { coefficients, covariance, residual_dof, residual_std: s2.sqrt(), r_squared, n })
}

/// Arithmetic mean; NaN for an empty slice, and non-finite values propagate.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (divisor n − 1); NaN when there are fewer than 2 values. Non-finite values
/// propagate.
pub fn sample_std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Median of the finite values of `x` (the mean of the middle two for an even count). Non-finite values
/// are ignored, unlike in [`mean`]: a median of final losses should not be moved by which runs diverged
/// to NaN versus ∞. NaN when no finite value is left.
pub fn median(x: &[f64]) -> f64 {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The mean of `x` with a `level` Student-t confidence interval: mean ± t·s/√n on n − 1 degrees of
/// freedom. With fewer than 2 values the standard error and bounds are NaN. Non-finite values propagate.
pub fn mean_ci(x: &[f64], level: f64) -> Estimate {
    let n = x.len();
    let se = sample_std(x) / (n as f64).sqrt();
    Estimate::with_t_interval(mean(x), se, level, n.saturating_sub(1))
}

/// Geometric mean exp(mean(ln x)), the natural average of ratios and of log-spaced quantities such as
/// learning rates. NaN for an empty slice or when any value is ≤ 0 or NaN.
pub fn geometric_mean(x: &[f64]) -> f64 {
    if x.is_empty() || x.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return f64::NAN;
    }
    mean(&x.iter().map(|v| v.ln()).collect::<Vec<_>>()).exp()
}
