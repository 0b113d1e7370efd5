//! Hutchinson's estimator of each model's Hessian trace: `tr H = E[zᵀHz]` for Rademacher `z` (±1 entries).

use rand::Rng;
use serde::Serialize;

use super::{dot, HvpOperator};
use crate::error::Result;

/// Settings of [`hutchinson`].
#[derive(Clone, Debug)]
pub struct HutchinsonOptions {
    /// At most this many samples (HVPs).
    pub max_samples: usize,
    /// Stop a model once its standard error is below `tolerance · |estimate|` …
    pub tolerance: f64,
    /// … and at least this many samples were taken (a standard error from 2–3 samples means little).
    pub min_samples: usize,
    /// Seed of the Rademacher vectors when `model_seeds` is empty: model m then uses the probe seed
    /// `mix_seed([seed, m])` (see [`super::mix_seed`]), so its vectors depend on its slot in the batch.
    pub seed: u64,
    /// One probe seed per model (its [`super::HUTCHINSON_STREAM`]): a model's vectors, and so its
    /// estimate, then follow the model whatever else shares its batch. Empty: derived from `seed` by slot.
    pub model_seeds: Vec<u64>,
}

impl Default for HutchinsonOptions {
    fn default() -> Self {
        HutchinsonOptions { max_samples: 100, tolerance: 1e-3, min_samples: 10, seed: 0, model_seeds: Vec::new() }
    }
}

impl HutchinsonOptions {
    /// The probe seed of model `m`.
    pub fn model_seed(&self, m: usize) -> u64 {
        self.model_seeds.get(m).copied().unwrap_or_else(|| super::mix_seed(&[self.seed, m as u64]))
    }
}

/// One model's trace estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEstimate {
    /// Mean of `zᵀHz` over the samples.
    pub trace: f64,
    /// Standard error of that mean (sample standard deviation / √samples).
    pub std_error: f64,
    /// Samples used.
    pub samples: usize,
}

/// Hutchinson's trace estimate of each operator, sampled in lock-step; a model stops sampling once its
/// relative standard error is below the tolerance (and `min_samples` were taken) or at `max_samples`.
/// Model m's vectors come from its own generator ([`HutchinsonOptions::model_seed`]), n draws per sample.
pub async fn hutchinson<H: HvpOperator>(op: &mut H, opts: &HutchinsonOptions) -> Result<Vec<TraceEstimate>> {
    let (k, n) = (op.models(), op.dim());
    if !opts.model_seeds.is_empty() && opts.model_seeds.len() != k {
        return Err(crate::error::LabError::config("model_seeds", format!("give one seed per model ({k}), got {}", opts.model_seeds.len())));
    }
    let mut rngs: Vec<_> = (0..k).map(|m| super::probe_rng(opts.model_seed(m), super::HUTCHINSON_STREAM)).collect();
    // Welford's running mean and sum of squared deviations.
    let mut mean = vec![0f64; k];
    let mut m2 = vec![0f64; k];
    let mut count = vec![0usize; k];
    let mut done = vec![false; k];
    let se = |m2: f64, c: usize| if c > 1 { (m2 / (c - 1) as f64 / c as f64).sqrt() } else { f64::INFINITY };
    for _ in 0..opts.max_samples.max(1) {
        if done.iter().all(|&d| d) {
            break;
        }
        // A stopped model draws no more: the vectors of the others do not depend on when it stopped.
        let mut z = vec![0.0; k * n];
        for m in (0..k).filter(|&m| !done[m]) {
            z[m * n..(m + 1) * n].iter_mut().for_each(|x| *x = if rngs[m].random::<bool>() { 1.0 } else { -1.0 });
        }
        let hz = op.apply(&z).await?;
        for m in (0..k).filter(|&m| !done[m]).collect::<Vec<_>>() {
            let s = dot(&z[m * n..(m + 1) * n], &hz[m * n..(m + 1) * n]);
            count[m] += 1;
            let d = s - mean[m];
            mean[m] += d / count[m] as f64;
            m2[m] += d * (s - mean[m]);
            if count[m] >= opts.min_samples.max(2) && se(m2[m], count[m]) <= opts.tolerance * mean[m].abs() {
                done[m] = true;
            }
        }
    }
    Ok((0..k).map(|m| TraceEstimate { trace: mean[m], std_error: se(m2[m], count[m]), samples: count[m] }).collect())
}
