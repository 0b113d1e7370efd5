//! Analyses built on batches of models.
//!
//! Curvature of the loss at a point: exact Hessian-vector products (`backend::curvature`, CPU and GPU halves in `backend::{cpu,gpu}::hvp`), the top eigenvalues by
//! Lanczos and power iteration ([`eigen`]), the trace by Hutchinson's estimator ([`hutchinson`]); Keskar's
//! ε-sharpness by projected gradient ascent in a box ([`sharpness`]); the gradient-noise scale B_simple ([`noise`]).
//! Design notes: `docs/hessian.md`.
//!
//! Loss landscapes ([`landscape`]): interpolations between two parameter sets and 1-D / 2-D slices along
//! filter-normalised random directions (`docs/landscape.md`) and their figures ([`plot`], in the style of every figure: [`figure_style`]). The page's 2-D
//! landscape of a running trainer lives in `train::landscape2d`, the CLI's landscape runs in `cli::landscape`:
//! this folder uses only the backends, the model and the data, nothing above them.
//!
//! Everything above the HVP is generic over an [`HvpOperator`]: K symmetric operators of one dimension,
//! applied together (K models share one GPU pass), in f64 on the host. [`BackendOperator`] adapts any
//! [`Curvature`] backend; tests use dense matrices.

#![allow(async_fn_in_trait)]

pub mod eigen;
pub mod figure_style;
pub mod hutchinson;
pub mod landscape;
pub mod noise;
pub mod plot;
pub mod sharpness;

use crate::backend::curvature::Curvature;
use crate::backend::DataHandle;
use crate::error::Result;

/// K symmetric linear operators of the same dimension, applied side by side.
pub trait HvpOperator {
    /// Number of operators (models) K.
    fn models(&self) -> usize;
    /// Dimension of each operator (parameters per model P).
    fn dim(&self) -> usize;
    /// `H_m·v_m` for each m; `v` and the result are `K × dim`, model after model.
    async fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>>;
}

/// Where the Hessian is taken: the examples of a data set whose mean loss it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subset {
    /// The uploaded data set.
    pub data: DataHandle,
    /// First example.
    pub start: usize,
    /// Number of examples.
    pub count: usize,
}

/// Default number of examples the Hessian is taken over (the first 5000, or all if fewer).
pub const DEFAULT_EXAMPLES: usize = 5000;

impl Subset {
    /// The first `min(examples, n)` examples of a data set of `n`.
    pub fn first(data: DataHandle, n: usize, examples: usize) -> Self {
        Subset { data, start: 0, count: examples.min(n) }
    }
}

/// The Hessians of a [`Curvature`] backend's K models at their current parameters, over a subset.
/// Vectors travel as f32 (the GPU's precision); the analyses keep their own state in f64.
pub struct BackendOperator<'a, B: Curvature> {
    /// The backend holding the parameters.
    pub backend: &'a mut B,
    /// The examples whose mean loss is differentiated.
    pub subset: Subset,
    /// HVPs computed so far (for reports and tests).
    pub products: usize,
}

impl<'a, B: Curvature> BackendOperator<'a, B> {
    /// The operator of `backend`'s models over `subset`.
    pub fn new(backend: &'a mut B, subset: Subset) -> Self {
        BackendOperator { backend, subset, products: 0 }
    }
}

impl<B: Curvature> HvpOperator for BackendOperator<'_, B> {
    fn models(&self) -> usize {
        self.backend.models()
    }
    fn dim(&self) -> usize {
        self.backend.layout().params_per_model
    }
    async fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let s = self.subset;
        let out = self.backend.hvp(s.data, s.start, s.count, &v32).await?;
        self.products += 1;
        Ok(out.into_iter().map(f64::from).collect())
    }
}

/// Dense symmetric matrices as an operator (tests, and tiny nets whose Hessian was built explicitly).
#[derive(Clone, Debug)]
pub struct DenseOperator {
    /// Dimension n.
    pub n: usize,
    /// K row-major n×n matrices, model after model.
    pub matrices: Vec<f64>,
}

impl HvpOperator for DenseOperator {
    fn models(&self) -> usize {
        self.matrices.len() / (self.n * self.n)
    }
    fn dim(&self) -> usize {
        self.n
    }
    async fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        let n = self.n;
        let mut out = vec![0.0; v.len()];
        for m in 0..self.models() {
            let a = &self.matrices[m * n * n..(m + 1) * n * n];
            for i in 0..n {
                out[m * n + i] = (0..n).map(|j| a[i * n + j] * v[m * n + j]).sum();
            }
        }
        Ok(out)
    }
}

/// Stream of a model's probe seed that [`eigen::lanczos`] draws its start vector from.
pub const LANCZOS_STREAM: u64 = 0;
/// Stream of a model's probe seed that [`hutchinson::hutchinson`] draws its Rademacher vectors from.
pub const HUTCHINSON_STREAM: u64 = 1;

/// The random generator of one model's probes: ChaCha8 seeded with `seed` (rand_chacha's `seed_from_u64`),
/// on `stream` ([`LANCZOS_STREAM`] or [`HUTCHINSON_STREAM`]), so the Lanczos start and the Hutchinson
/// vectors of one seed are independent.
pub fn probe_rng(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A seed made of `parts` in order: SplitMix64's finaliser applied to `h ^ part` for each part, starting
/// from `h = 0x9E37_79B9_7F4A_7C15`, and the low 53 bits of the last `h` kept — so the seed is exact as a
/// JavaScript number (the page's results, `JSON.parse`). Written out so another implementation can rebuild a
/// recorded probe seed from what it is made of (docs/hessian.md).
pub fn mix_seed(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        let mut z = h ^ p;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h & ((1 << 53) - 1)
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
