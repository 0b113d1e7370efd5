//! The largest Hessian eigenvalues of each model: Lanczos with full reorthogonalisation, and power iteration.
//!
//! Both run the K models in lock-step (one [`HvpOperator::apply`] per iteration serves all of them) and keep
//! their vectors in f64. A model whose Krylov space is exhausted (β ≈ 0: an invariant subspace, e.g. a
//! Hessian of rank below the iteration count) stops there with exact Ritz values; the others go on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{dot, norm, HvpOperator};
use crate::backend::cpu::pool;
use crate::error::Result;

/// Settings of [`lanczos`].
#[derive(Clone, Debug)]
pub struct LanczosOptions {
    /// Eigenvalues wanted per model (largest first).
    pub top_k: usize,
    /// Lanczos steps (HVPs); capped by the dimension.
    pub iterations: usize,
    /// Seed of the random start vectors when `model_seeds` is empty: model m uses stream m of it, so its
    /// start vector depends on its slot in the batch.
    pub seed: u64,
    /// One seed per model (stream 0 of each, see [`super::probe_rng`]): a model's start vector then
    /// follows the model, whatever else shares its batch. Empty: `seed` with one stream per slot.
    pub model_seeds: Vec<u64>,
    /// Also return the Ritz vectors of the `top_k` eigenvalues ([`LanczosResult::vectors`]).
    pub vectors: bool,
}

impl Default for LanczosOptions {
    fn default() -> Self {
        LanczosOptions { top_k: 1, iterations: 20, seed: 0, model_seeds: Vec::new(), vectors: false }
    }
}

impl LanczosOptions {
    /// The generator of model `m`'s start vector.
    fn start_rng(&self, m: usize) -> ChaCha8Rng {
        match self.model_seeds.get(m) {
            Some(&s) => super::probe_rng(s, super::LANCZOS_STREAM),
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(m as u64);
                rng
            }
        }
    }
}

/// What [`lanczos`] found for one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LanczosResult {
    /// The `top_k` largest Ritz values, largest first (fewer if the Krylov space was smaller).
    pub eigenvalues: Vec<f64>,
    /// Residual bound `|β_m · s_m|` of each Ritz value (`‖H y − θ y‖` for the Ritz vector y).
    pub residuals: Vec<f64>,
    /// Lanczos steps taken for this model.
    pub iterations: usize,
    /// With [`LanczosOptions::vectors`]: the unit Ritz vector of each eigenvalue (`Q·s`, in the operator's
    /// dimension), in the same order; empty otherwise.
    #[serde(skip)]
    pub vectors: Vec<Vec<f64>>,
}

/// Relative size of β below which the Krylov space counts as exhausted.
const BREAKDOWN: f64 = 1e-10;

/// Top eigenvalues of each of the K operators by Lanczos with full reorthogonalisation (Gram–Schmidt
/// against every earlier Lanczos vector, twice), `min(iterations, dim)` steps.
pub async fn lanczos<H: HvpOperator>(op: &mut H, opts: &LanczosOptions) -> Result<Vec<LanczosResult>> {
    let (k, n) = (op.models(), op.dim());
    let steps = opts.iterations.min(n).max(1);
    if !opts.model_seeds.is_empty() && opts.model_seeds.len() != k {
        return Err(crate::error::LabError::config("model_seeds", format!("give one seed per model ({k}), got {}", opts.model_seeds.len())));
    }
    let mut models: Vec<ModelLanczos> = (0..k)
        .map(|m| {
            let mut rng = opts.start_rng(m);
            let mut v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let s = norm(&v);
            v.iter_mut().for_each(|x| *x /= s);
            let mut q = Vec::with_capacity(steps + 1);
            q.push(v);
            ModelLanczos { m, q, alpha: Vec::new(), beta: Vec::new(), active: true, scale: 0.0 }
        })
        .collect();
    for j in 0..steps {
        if !models.iter().any(|s| s.active) {
            break;
        }
        let mut v = vec![0.0; k * n];
        for s in models.iter().filter(|s| s.active) {
            v[s.m * n..(s.m + 1) * n].copy_from_slice(&s.q[j]);
        }
        let hv = op.apply(&v).await?;
        // The reorthogonalisation streams j vectors of n f64 twice per model and step — on a GPU the
        // larger part of a λ_max at K = 16 (docs/BENCHMARKS.md) — and is independent across models: one
        // model per thread of the calling rayon pool (natively; rayon's global pool outside any pool).
        // Each model's arithmetic is the same in any schedule, so results do not depend on the threads.
        pool::for_each_mut(&mut models, |s| {
            if s.active {
                s.extend(&hv[s.m * n..(s.m + 1) * n], j, steps);
            }
        });
    }
    Ok(models
        .into_iter()
        .map(|s| {
            let (alpha, beta) = (s.alpha, s.beta);
            let t = alpha.len();
            let mut tri = vec![0.0; t * t];
            for i in 0..t {
                tri[i * t + i] = alpha[i];
                if i + 1 < t {
                    tri[i * t + i + 1] = beta[i];
                    tri[(i + 1) * t + i] = beta[i];
                }
            }
            let (vals, vecs) = symmetric_eigen(&tri, t);
            let mut order: Vec<usize> = (0..t).collect();
            order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
            let last_beta = beta.last().copied().unwrap_or(0.0);
            let top: Vec<usize> = order.into_iter().take(opts.top_k).collect();
            // Ritz vector of Ritz value i: Σ_j q_j · s_{j,i} over the t Lanczos vectors that made the tridiagonal.
            let ritz = |i: usize| -> Vec<f64> {
                let mut y = vec![0.0; n];
                for (j, qj) in s.q.iter().take(t).enumerate() {
                    let c = vecs[j * t + i];
                    y.iter_mut().zip(qj).for_each(|(a, b)| *a += c * b);
                }
                let len = norm(&y).max(f64::MIN_POSITIVE);
                y.iter_mut().for_each(|a| *a /= len);
                y
            };
            LanczosResult {
                eigenvalues: top.iter().map(|&i| vals[i]).collect(),
                residuals: top.iter().map(|&i| (last_beta * vecs[(t - 1) * t + i]).abs()).collect(),
                iterations: t,
                vectors: if opts.vectors { top.iter().map(|&i| ritz(i)).collect() } else { Vec::new() },
            }
        })
        .collect())
}

/// One model's Lanczos state: its orthonormal vectors, the tridiagonal's α and β so far, and whether
/// it is still iterating.
struct ModelLanczos {
    m: usize,
    q: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    active: bool,
    scale: f64,
}

impl ModelLanczos {
    /// Step `j` given `hv` = H q_j: α_j, then w = H q_j orthogonalised twice against every q_i
    /// (modified Gram–Schmidt), β_j = ‖w‖, and q_{j+1} = w / β_j unless the space is exhausted.
    fn extend(&mut self, hv: &[f64], j: usize, steps: usize) {
        let mut w = hv.to_vec();
        let a = dot(&w, &self.q[j]);
        self.alpha.push(a);
        self.scale = self.scale.max(a.abs()).max(norm(&w));
        for _ in 0..2 {
            for qi in &self.q {
                let c = dot(&w, qi);
                w.iter_mut().zip(qi).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = norm(&w);
        self.beta.push(b);
        if b <= BREAKDOWN * self.scale.max(f64::MIN_POSITIVE) || j + 1 == steps {
            self.active = false;
        } else {
            w.iter_mut().for_each(|x| *x /= b);
            self.q.push(w);
        }
    }
}

/// Eigenvalues and eigenvectors (columns of the returned row-major n×n matrix) of a symmetric matrix by
/// cyclic Jacobi rotations: slow (O(n³) per sweep) but simple and accurate for Lanczos' small tridiagonals.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * n + j] * a[i * n + j]).sum();
        let diag: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum();
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for r in p + 1..n {
                let apr = a[p * n + r];
                if apr == 0.0 {
                    continue;
                }
                let theta = (a[r * n + r] - a[p * n + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for i in 0..n {
                    let (aip, air) = (a[i * n + p], a[i * n + r]);
                    a[i * n + p] = c * aip - s * air;
                    a[i * n + r] = s * aip + c * air;
                }
                for i in 0..n {
                    let (api, ari) = (a[p * n + i], a[r * n + i]);
                    a[p * n + i] = c * api - s * ari;
                    a[r * n + i] = s * api + c * ari;
                }
                for i in 0..n {
                    let (vip, vir) = (v[i * n + p], v[i * n + r]);
                    v[i * n + p] = c * vip - s * vir;
                    v[i * n + r] = s * vip + c * vir;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// Settings of [`power_iteration`].
#[derive(Clone, Copy, Debug)]
pub struct PowerOptions {
    /// At most this many HVPs.
    pub max_iterations: usize,
    /// Stop a model once its Rayleigh quotient changes by less than `tolerance · |λ|` between iterations.
    pub tolerance: f64,
    /// Seed of the start vectors.
    pub seed: u64,
}

impl Default for PowerOptions {
    fn default() -> Self {
        PowerOptions { max_iterations: 100, tolerance: 1e-3, seed: 0 }
    }
}

/// What [`power_iteration`] found for one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PowerResult {
    /// The Rayleigh quotient `vᵀHv` at the last iterate: the eigenvalue of largest magnitude (which may be
    /// negative at a saddle).
    pub eigenvalue: f64,
    /// Iterations (HVPs) taken.
    pub iterations: usize,
    /// Whether the relative tolerance was met before the iteration cap.
    pub converged: bool,
}

/// Eigenvalue of largest magnitude of each operator by power iteration with the Rayleigh quotient.
pub async fn power_iteration<H: HvpOperator>(op: &mut H, opts: &PowerOptions) -> Result<Vec<PowerResult>> {
    let (k, n) = (op.models(), op.dim());
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut v: Vec<f64> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    for m in 0..k {
        let s = norm(&v[m * n..(m + 1) * n]).max(f64::MIN_POSITIVE);
        v[m * n..(m + 1) * n].iter_mut().for_each(|x| *x /= s);
    }
    let mut res = vec![PowerResult { eigenvalue: f64::NAN, iterations: 0, converged: false }; k];
    for _ in 0..opts.max_iterations {
        if res.iter().all(|r| r.converged) {
            break;
        }
        let hv = op.apply(&v).await?;
        for m in (0..k).filter(|&m| !res[m].converged).collect::<Vec<_>>() {
            let (vm, hm) = (&v[m * n..(m + 1) * n], &hv[m * n..(m + 1) * n]);
            let lambda = dot(vm, hm);
            let r = &mut res[m];
            r.iterations += 1;
            if (lambda - r.eigenvalue).abs() <= opts.tolerance * lambda.abs() {
                r.converged = true;
            }
            r.eigenvalue = lambda;
            let s = norm(hm);
            if s == 0.0 {
                r.converged = true; // H v = 0: v is an eigenvector of eigenvalue 0
                continue;
            }
            let next: Vec<f64> = hm.iter().map(|x| x / s).collect();
            v[m * n..(m + 1) * n].copy_from_slice(&next);
        }
    }
    Ok(res)
}
