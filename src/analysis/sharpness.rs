//! Keskar et al.'s ε-sharpness: the largest relative rise of the loss within a small box around θ,
//!
//! `φ_ε(θ) = 100 · (max_{y∈C_ε} L(θ+y) − L(θ)) / (1 + L(θ))`, `C_ε = {y : |y_i| ≤ ε(|θ_i| + 1)}`,
//!
//! maximised by projected sign-gradient ascent (Keskar used L-BFGS-B; see `docs/hessian.md` for the exact
//! steps). Generic over any [`Backend`]: only `read_params`, `write_params`, `evaluate` and `gradients` are
//! used, all K models ascend at once, and the parameters read at the start are written back at the end.

use serde::Serialize;

use super::Subset;
use crate::backend::Backend;
use crate::error::{LabError, Result};

/// Default box size ε (Keskar et al. report 1e-3 and 5e-4).
pub const DEFAULT_EPSILON: f64 = 1e-3;
/// Default number of ascent steps.
pub const DEFAULT_ASCENT_STEPS: usize = 10;

/// Settings of [`epsilon_sharpness`].
#[derive(Clone, Copy, Debug)]
pub struct SharpnessOptions {
    /// Relative box size ε: `|y_i| ≤ ε(|θ_i| + 1)`.
    pub epsilon: f64,
    /// Projected ascent steps T (T gradients and T + 1 loss evaluations over the subset).
    pub steps: usize,
}

impl Default for SharpnessOptions {
    fn default() -> Self {
        SharpnessOptions { epsilon: DEFAULT_EPSILON, steps: DEFAULT_ASCENT_STEPS }
    }
}

/// One model's ε-sharpness.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpsilonSharpness {
    /// `100 · (max_loss − loss) / (1 + loss)`, ≥ 0 (y = 0 is one of the candidates).
    pub sharpness: f64,
    /// `L(θ)` over the subset.
    pub loss: f64,
    /// The largest `L(θ + y_t)` found.
    pub max_loss: f64,
    /// The ascent step t whose `y_t` gave `max_loss` (0: none rose above `L(θ)`).
    pub best_step: usize,
    /// The first-order prediction `100 · ε Σ_i |g_i| (|θ_i| + 1) / (1 + L(θ))` (g = ∇L(θ)): the value for a
    /// linear loss, approached by `sharpness` as ε → 0.
    pub first_order: f64,
}

/// What [`epsilon_sharpness`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct SharpnessReport {
    /// Per model.
    pub models: Vec<EpsilonSharpness>,
    /// The maximising perturbation `y` of every model (`K × P`), inside the box.
    pub perturbation: Vec<f64>,
}

/// Mean loss gradient of every model over `subset`, in chunks of the backend's `max_batch` rows
/// (each chunk weighted by its share of the rows). `K × P`.
pub async fn subset_gradient<B: Backend>(backend: &mut B, subset: Subset) -> Result<Vec<f64>> {
    let (k, p) = (backend.models(), backend.layout().params_per_model);
    let chunk = backend.max_batch().min(subset.count).max(1);
    let mut g = vec![0f64; k * p];
    let mut idx = Vec::with_capacity(k * chunk);
    let mut at = subset.start;
    while at < subset.start + subset.count {
        let rows = (subset.start + subset.count - at).min(chunk);
        idx.clear();
        for _ in 0..k {
            idx.extend((at..at + rows).map(|i| i as u32));
        }
        let out = backend.gradients(subset.data, &idx, rows).await?;
        let w = rows as f64 / subset.count as f64;
        g.iter_mut().zip(&out.grads).for_each(|(a, &b)| *a += w * f64::from(b));
        at += rows;
    }
    Ok(g)
}

async fn losses<B: Backend>(backend: &mut B, subset: Subset) -> Result<Vec<f64>> {
    Ok(backend.evaluate(subset.data, subset.start, subset.count).await?.iter().map(|e| e.loss).collect())
}

/// ε-sharpness of every model of `backend` at its current parameters, over the mean loss on `subset`.
///
/// Projected sign-gradient ascent with box half-widths `s_i = ε(|θ_i| + 1)`: `y_0 = 0`,
/// `y_t = clip(y_{t−1} + (s/t) ⊙ sign(∇L(θ + y_{t−1})), −s, s)` for t = 1..T (so `y_1` is the corner that
/// maximises the linearised loss); the maximum of `L(θ + y_t)` over t = 0..T is reported. The parameters
/// read at the start (f32, as `read_params` returns them) are written back at the end, also on error.
pub async fn epsilon_sharpness<B: Backend>(backend: &mut B, subset: Subset, opts: &SharpnessOptions) -> Result<SharpnessReport> {
    if !(opts.epsilon > 0.0 && opts.epsilon.is_finite()) {
        return Err(LabError::config("epsilon", format!("must be a positive number, got {}", opts.epsilon)));
    }
    if subset.count == 0 {
        return Err(LabError::config("examples", "must be at least 1"));
    }
    let theta = backend.read_params().await?;
    let result = ascend(backend, subset, opts, &theta).await;
    backend.write_params(&theta)?;
    result
}

async fn ascend<B: Backend>(backend: &mut B, subset: Subset, opts: &SharpnessOptions, theta: &[f32]) -> Result<SharpnessReport> {
    let (k, p) = (backend.models(), backend.layout().params_per_model);
    let half: Vec<f64> = theta.iter().map(|&t| opts.epsilon * (f64::from(t).abs() + 1.0)).collect();
    let loss0 = losses(backend, subset).await?;
    let mut g = subset_gradient(backend, subset).await?;
    let first_order: Vec<f64> = (0..k)
        .map(|m| {
            let r = m * p..(m + 1) * p;
            let lin: f64 = g[r.clone()].iter().zip(&half[r]).map(|(g, s)| g.abs() * s).sum();
            100.0 * lin / (1.0 + loss0[m])
        })
        .collect();
    let mut y = vec![0f64; k * p];
    let mut best = vec![0f64; k * p];
    let mut best_loss = loss0.clone();
    let mut best_step = vec![0usize; k];
    let mut shifted = vec![0f32; k * p];
    for t in 1..=opts.steps {
        let alpha = 1.0 / t as f64;
        for i in 0..k * p {
            let step = if g[i] > 0.0 { 1.0 } else if g[i] < 0.0 { -1.0 } else { 0.0 };
            y[i] = (y[i] + alpha * half[i] * step).clamp(-half[i], half[i]);
            shifted[i] = (f64::from(theta[i]) + y[i]) as f32;
        }
        backend.write_params(&shifted)?;
        let l = losses(backend, subset).await?;
        for m in 0..k {
            if l[m] > best_loss[m] {
                best_loss[m] = l[m];
                best_step[m] = t;
                best[m * p..(m + 1) * p].copy_from_slice(&y[m * p..(m + 1) * p]);
            }
        }
        if t < opts.steps {
            g = subset_gradient(backend, subset).await?;
        }
    }
    let models = (0..k)
        .map(|m| EpsilonSharpness {
            sharpness: 100.0 * (best_loss[m] - loss0[m]) / (1.0 + loss0[m]),
            loss: loss0[m],
            max_loss: best_loss[m],
            best_step: best_step[m],
            first_order: first_order[m],
        })
        .collect();
    Ok(SharpnessReport { models, perturbation: best })
}
