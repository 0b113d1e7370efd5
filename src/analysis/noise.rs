//! The simple gradient-noise scale `B_simple = tr(Σ)/|G|²` of McCandlish et al. (2018, "An Empirical Model of
//! Large-Batch Training", Appendix A), from gradient norms at two batch sizes.
//!
//! For a batch of B examples drawn uniformly with replacement, `E|G_B|² = |G|² + tr(Σ)/B` (G the full
//! gradient, Σ the per-example gradient covariance). With mean squared norms at `B_small < B_big`:
//! `|G|² ≈ (B_big·|G_big|² − B_small·|G_small|²)/(B_big − B_small)`,
//! `tr Σ ≈ (|G_small|² − |G_big|²)/(1/B_small − 1/B_big)`: both unbiased; their ratio is `B_simple`.
//! Generic over [`Backend`] (its `gradients`, no weight decay); all K models at once, each on its own batches.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::Subset;
use crate::backend::Backend;
use crate::error::{LabError, Result};

/// Settings of [`gradient_noise_scale`].
#[derive(Clone, Copy, Debug)]
pub struct NoiseOptions {
    /// The small batch size (≥ 1).
    pub small: usize,
    /// The big batch size (> small, ≤ the backend's `max_batch`).
    pub big: usize,
    /// Batches of each size whose squared gradient norms are averaged.
    pub repeats: usize,
    /// Seed of the batch draws (model m uses stream m).
    pub seed: u64,
}

/// One model's estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoiseScale {
    /// `tr Σ / |G|²` (meaningless when the noisy `grad_sq` estimate is ≤ 0, as it can be near a minimum).
    pub b_simple: f64,
    /// Estimate of `|G|²`.
    pub grad_sq: f64,
    /// Estimate of `tr Σ`.
    pub trace_sigma: f64,
    /// Mean `|G_B|²` at the small and big batch sizes.
    pub mean_sq_small: f64,
    /// See `mean_sq_small`.
    pub mean_sq_big: f64,
}

/// `B_simple` of every model at its current parameters, batches drawn with replacement from `subset`.
pub async fn gradient_noise_scale<B: Backend>(backend: &mut B, subset: Subset, opts: &NoiseOptions) -> Result<Vec<NoiseScale>> {
    let (k, p) = (backend.models(), backend.layout().params_per_model);
    if opts.small == 0 || opts.big <= opts.small || opts.big > backend.max_batch() {
        return Err(LabError::config("batch sizes", format!("need 1 ≤ small < big ≤ {}, got {} and {}", backend.max_batch(), opts.small, opts.big)));
    }
    if opts.repeats == 0 || subset.count == 0 {
        return Err(LabError::config("repeats", "repeats and the subset must be non-empty"));
    }
    let mut rngs: Vec<ChaCha8Rng> = (0..k)
        .map(|m| {
            let mut r = ChaCha8Rng::seed_from_u64(opts.seed);
            r.set_stream(m as u64);
            r
        })
        .collect();
    let mut mean_sq = [vec![0f64; k], vec![0f64; k]];
    for (which, b) in [opts.small, opts.big].into_iter().enumerate() {
        for _ in 0..opts.repeats {
            let idx: Vec<u32> = rngs.iter_mut().flat_map(|r| (0..b).map(|_| (subset.start + r.random_range(0..subset.count)) as u32).collect::<Vec<_>>()).collect();
            let g = backend.gradients(subset.data, &idx, b).await?;
            for (m, acc) in mean_sq[which].iter_mut().enumerate() {
                let sq: f64 = g.grads[m * p..(m + 1) * p].iter().map(|&x| f64::from(x) * f64::from(x)).sum();
                *acc += sq / opts.repeats as f64;
            }
        }
    }
    let (bs, bb) = (opts.small as f64, opts.big as f64);
    Ok((0..k)
        .map(|m| {
            let (s, l) = (mean_sq[0][m], mean_sq[1][m]);
            let grad_sq = (bb * l - bs * s) / (bb - bs);
            let trace_sigma = (s - l) / (1.0 / bs - 1.0 / bb);
            NoiseScale { b_simple: trace_sigma / grad_sq, grad_sq, trace_sigma, mean_sq_small: s, mean_sq_big: l }
        })
        .collect())
}
