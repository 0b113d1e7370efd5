//! The CPU reference backend, generic over f32 and f64.
//!
//! In f64 it is the lab's ground truth: every GPU kernel is tested against it, and it is tested against
//! central finite differences and the independent vectors in `shared/testdata`. In f32 it is the engine
//! for browsers without WebGPU. Matrix products go through `matrixmultiply` (strided GEMM), so the three
//! products of a layer (`A·Wᵀ`, `δᵀ·A`, `δ·W`) are one call each with the operands' strides.
//! No allocation happens inside a training step: the workspace is sized once for the largest batch.

use crate::backend::{check_indices, Backend, DataHandle, EvalMetrics, Gradients, Hyper, Progress, DEFAULT_DIVERGENCE_THRESHOLD};
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::{Activation, Layout};

/// A floating-point type the reference can compute in (f32 or f64).
pub trait Real: num_traits::Float + Default + std::fmt::Debug + Send + Sync + 'static {
    /// `C ← α·A·B + β·C` for strided `A` (m×k), `B` (k×n), `C` (m×n).
    ///
    /// # Safety
    /// Every element addressed through the strides must lie inside the corresponding slice.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize, k: usize, n: usize, alpha: Self,
        a: *const Self, rsa: isize, csa: isize,
        b: *const Self, rsb: isize, csb: isize,
        beta: Self, c: *mut Self, rsc: isize, csc: isize,
    );
    /// Converts from f32 (exact for f32 and f64).
    fn from_f32(x: f32) -> Self;
    /// Converts to f64 (named apart from `NumCast::to_f64`, which returns an Option).
    fn as_f64(self) -> f64;
    /// Name for messages ("f32" / "f64").
    const NAME: &'static str;
}

impl Real for f32 {
    unsafe fn gemm_raw(m: usize, k: usize, n: usize, alpha: f32, a: *const f32, rsa: isize, csa: isize, b: *const f32, rsb: isize, csb: isize, beta: f32, c: *mut f32, rsc: isize, csc: isize) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn from_f32(x: f32) -> Self { x }
    fn as_f64(self) -> f64 { self as f64 }
    const NAME: &'static str = "f32";
}

impl Real for f64 {
    unsafe fn gemm_raw(m: usize, k: usize, n: usize, alpha: f64, a: *const f64, rsa: isize, csa: isize, b: *const f64, rsb: isize, csb: isize, beta: f64, c: *mut f64, rsc: isize, csc: isize) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn from_f32(x: f32) -> Self { x as f64 }
    fn as_f64(self) -> f64 { self }
    const NAME: &'static str = "f64";
}

/// A strided matrix view: `(slice, row stride, column stride)`.
pub type Strided<'a, T> = (&'a [T], usize, usize);

fn max_index(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs }
}

/// `C ← A·B + β·C` with bounds-checked strided operands (A m×k, B k×n, C m×n).
pub fn gemm<T: Real>(m: usize, k: usize, n: usize, a: Strided<T>, b: Strided<T>, beta: T, c: (&mut [T], usize, usize)) {
    assert!(m == 0 || k == 0 || max_index(m, k, a.1, a.2) < a.0.len(), "gemm: A out of bounds");
    assert!(k == 0 || n == 0 || max_index(k, n, b.1, b.2) < b.0.len(), "gemm: B out of bounds");
    assert!(m == 0 || n == 0 || max_index(m, n, c.1, c.2) < c.0.len(), "gemm: C out of bounds");
    // SAFETY: the asserts above keep every strided access inside its slice.
    unsafe {
        T::gemm_raw(m, k, n, T::one(), a.0.as_ptr(), a.1 as isize, a.2 as isize, b.0.as_ptr(), b.1 as isize, b.2 as isize, beta, c.0.as_mut_ptr(), c.1 as isize, c.2 as isize)
    }
}

/// `act(z)` for a hidden activation.
#[inline]
pub fn activate<T: Real>(act: Activation, z: T) -> T {
    match act {
        Activation::Linear => z,
        Activation::Relu => if z > T::zero() { z } else { T::zero() },
        Activation::Tanh => z.tanh(),
    }
}

/// `act'(z)` expressed through the output `a = act(z)` (so only outputs need storing).
#[inline]
pub fn activation_slope<T: Real>(act: Activation, a: T) -> T {
    match act {
        Activation::Linear => T::one(),
        Activation::Relu => if a > T::zero() { T::one() } else { T::zero() },
        Activation::Tanh => T::one() - a * a,
    }
}

/// Activations of every layer for a batch: `acts[0]` is the input (rows × input),
/// `acts[l]` the output of layer l (rows × widths[l]); the last holds the logits.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    /// Layer outputs, `acts[0]` = input.
    pub acts: Vec<Vec<T>>,
    /// Loss gradients w.r.t. each layer's pre-activation (`deltas[l]` for layer l, rows × widths[l+1]).
    pub deltas: Vec<Vec<T>>,
    /// Scratch for the gradient w.r.t. a layer's input, before the activation slope (rows × widest layer).
    pub scratch: Vec<T>,
}

impl<T: Real> Workspace<T> {
    /// Sizes a workspace for up to `rows` examples.
    pub fn new(layout: &Layout, rows: usize) -> Self {
        let acts = layout.widths.iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let deltas = layout.widths[1..].iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let widest = *layout.widths.iter().max().expect("widths");
        Workspace { acts, deltas, scratch: vec![T::zero(); rows * widest] }
    }
}

/// Forward pass of one model on `rows` examples already in `ws.acts[0]`.
pub fn forward<T: Real>(layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>) {
    for (l, lo) in layout.layers.iter().enumerate() {
        let (before, after) = ws.acts.split_at_mut(l + 1);
        let input = &before[l][..rows * lo.fan_in];
        let out = &mut after[0][..rows * lo.fan_out];
        let w = &params[lo.w..lo.w + lo.fan_in * lo.fan_out];
        let b = &params[lo.b..lo.b + lo.fan_out];
        for r in 0..rows {
            out[r * lo.fan_out..(r + 1) * lo.fan_out].copy_from_slice(b);
        }
        // out (rows×out) += input (rows×in) · Wᵀ (in×out)
        gemm(rows, lo.fan_in, lo.fan_out, (input, lo.fan_in, 1), (w, 1, lo.fan_in), T::one(), (out, lo.fan_out, 1));
        let act = layout.activation_after(l);
        if act != Activation::Linear {
            for v in out.iter_mut() {
                *v = activate(act, *v);
            }
        }
    }
}

/// Softmax cross-entropy of `rows` rows of logits, computed stably (log-sum-exp shifted by the row max).
/// Returns the *sum* of the per-row losses and the number of rows whose arg-max (first on ties) is the label.
/// If `dlogits` is given it receives `(softmax − onehot) / rows`, the gradient of the *mean* loss.
pub fn softmax_cross_entropy<T: Real>(logits: &[T], labels: &[u32], rows: usize, classes: usize, mut dlogits: Option<&mut [T]>) -> (T, usize) {
    let mut loss = T::zero();
    let mut correct = 0;
    let inv_rows = T::one() / T::from(rows).expect("rows as float");
    for r in 0..rows {
        let z = &logits[r * classes..(r + 1) * classes];
        let y = labels[r] as usize;
        let mut arg = 0;
        for c in 1..classes {
            if z[c] > z[arg] {
                arg = c;
            }
        }
        let max = z[arg];
        let sum = z.iter().fold(T::zero(), |s, &v| s + (v - max).exp());
        let lse = max + sum.ln();
        loss = loss + (lse - z[y]);
        if arg == y {
            correct += 1;
        }
        if let Some(d) = dlogits.as_deref_mut() {
            for c in 0..classes {
                let p = (z[c] - lse).exp();
                let t = if c == y { T::one() } else { T::zero() };
                d[r * classes + c] = (p - t) * inv_rows;
            }
        }
    }
    (loss, correct)
}

/// Backward pass: from `ws.deltas[L-1]` (gradient w.r.t. the logits) to the full parameter gradient.
/// `ws.acts` must hold the forward pass of the same batch. `grads` (length P) is overwritten.
pub fn backward<T: Real>(layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>, grads: &mut [T]) {
    for l in (0..layout.layers.len()).rev() {
        let lo = layout.layers[l];
        let delta = &ws.deltas[l][..rows * lo.fan_out];
        let input = &ws.acts[l][..rows * lo.fan_in];
        // dW (out×in) = δᵀ (out×rows) · input (rows×in)
        gemm(lo.fan_out, rows, lo.fan_in, (delta, 1, lo.fan_out), (input, lo.fan_in, 1), T::zero(), (&mut grads[lo.w..lo.w + lo.fan_in * lo.fan_out], lo.fan_in, 1));
        // db = Σ_rows δ
        let db = &mut grads[lo.b..lo.b + lo.fan_out];
        db.iter_mut().for_each(|v| *v = T::zero());
        for r in 0..rows {
            for j in 0..lo.fan_out {
                db[j] = db[j] + delta[r * lo.fan_out + j];
            }
        }
        if l > 0 {
            // dA (rows×in) = δ (rows×out) · W (out×in), then δ_{l-1} = dA ⊙ act'(A)
            let w = &params[lo.w..lo.w + lo.fan_in * lo.fan_out];
            let da = &mut ws.scratch[..rows * lo.fan_in];
            gemm(rows, lo.fan_out, lo.fan_in, (delta, lo.fan_out, 1), (w, lo.fan_in, 1), T::zero(), (&mut *da, lo.fan_in, 1));
            let act = layout.activation_after(l - 1);
            let prev = &mut ws.deltas[l - 1][..rows * lo.fan_in];
            for i in 0..rows * lo.fan_in {
                prev[i] = da[i] * activation_slope(act, input[i]);
            }
        }
    }
}

/// Mean loss and gradient of one model on a batch `x` (rows × input) with `labels`: the reference in one call.
pub fn loss_and_grad<T: Real>(layout: &Layout, params: &[T], x: &[T], labels: &[u32]) -> (T, Vec<T>) {
    let rows = labels.len();
    let mut ws = Workspace::new(layout, rows);
    ws.acts[0].copy_from_slice(&x[..rows * layout.input()]);
    forward(layout, params, rows, &mut ws);
    let last = layout.layers.len() - 1;
    let (loss, _) = softmax_cross_entropy(&ws.acts[last + 1], labels, rows, layout.classes(), Some(&mut ws.deltas[last]));
    let mut g = vec![T::zero(); layout.params_per_model];
    backward(layout, params, rows, &mut ws, &mut g);
    (loss / T::from(rows).expect("rows"), g)
}

/// Mean loss and accuracy of one model on a batch (no gradient).
pub fn loss_and_accuracy<T: Real>(layout: &Layout, params: &[T], x: &[T], labels: &[u32]) -> (T, f64) {
    let rows = labels.len();
    let mut ws = Workspace::new(layout, rows);
    ws.acts[0].copy_from_slice(&x[..rows * layout.input()]);
    forward(layout, params, rows, &mut ws);
    let (loss, correct) = softmax_cross_entropy(&ws.acts[layout.layers.len()], labels, rows, layout.classes(), None);
    (loss / T::from(rows).expect("rows"), correct as f64 / rows as f64)
}

/// One SGD step in PyTorch's convention: `g = grad + wd·θ; v ← μ·v + g; θ ← θ − η·v`
/// (`v` starts at zero, so the first step has `v = g`, as PyTorch's buffer initialisation).
pub fn sgd_update<T: Real>(params: &mut [T], grads: &[T], velocity: &mut [T], lr: T, mu: T, wd: T) {
    for i in 0..params.len() {
        let g = grads[i] + wd * params[i];
        velocity[i] = mu * velocity[i] + g;
        params[i] = params[i] - lr * velocity[i];
    }
}

/// Copies examples `idx` of `data` into `dst` (rows × dim) and their labels into `labels`.
pub fn gather<T: Real>(data: &Dataset, idx: &[u32], dst: &mut [T], labels: &mut [u32]) {
    for (r, &i) in idx.iter().enumerate() {
        let i = i as usize;
        for c in 0..data.dim {
            dst[r * data.dim + c] = T::from_f32(data.feature(i, c));
        }
        labels[r] = data.labels[i];
    }
}

/// The CPU backend: K models trained one after another with the reference routines above.
pub struct CpuBackend<T: Real> {
    layout: Layout,
    k: usize,
    max_batch: usize,
    params: Vec<T>,
    velocity: Vec<T>,
    grads: Vec<T>,
    hyper: Vec<Hyper>,
    threshold: f32,
    diverged_at: Vec<Option<u32>>,
    step: u32,
    last_losses: Vec<f32>,
    datasets: Vec<Dataset>,
    ws: Workspace<T>,
    labels: Vec<u32>,
    /// `(base, d1, d2)` of [`crate::backend::perturb::Perturb`] (3 × P once set, empty before).
    basis: Vec<T>,
}

impl<T: Real> CpuBackend<T> {
    /// A backend for `k` models of `layout`, batches of up to `max_batch` rows (also the evaluation chunk).
    pub fn new(layout: &Layout, k: usize, max_batch: usize) -> Result<Self> {
        if k == 0 {
            return Err(LabError::Backend("a backend needs at least one model (K = 0)".into()));
        }
        if max_batch == 0 {
            return Err(LabError::Backend("max_batch must be at least 1".into()));
        }
        let p = layout.params_per_model;
        Ok(CpuBackend {
            layout: layout.clone(),
            k,
            max_batch,
            params: vec![T::zero(); k * p],
            velocity: vec![T::zero(); k * p],
            grads: vec![T::zero(); p],
            hyper: vec![Hyper { lr: 0.0, momentum: 0.0, weight_decay: 0.0 }; k],
            threshold: DEFAULT_DIVERGENCE_THRESHOLD,
            diverged_at: vec![None; k],
            step: 0,
            last_losses: Vec::new(),
            datasets: Vec::new(),
            ws: Workspace::new(layout, max_batch),
            labels: vec![0; max_batch],
            basis: Vec::new(),
        })
    }

    /// Parameters in the backend's own precision (for f64 reference checks).
    pub fn params_exact(&self) -> &[T] {
        &self.params
    }

    /// Replaces the parameters with values in the backend's own precision.
    pub fn write_params_exact(&mut self, params: &[T]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(LabError::Backend(format!("expected {} parameters (K × P), got {}", self.params.len(), params.len())));
        }
        self.params.copy_from_slice(params);
        Ok(())
    }

    /// Stores the perturbation basis (3 × P, in the backend's precision).
    pub(crate) fn set_basis_exact(&mut self, basis: Vec<T>) {
        self.basis = basis;
    }

    /// The perturbation basis and the parameters, borrowed together.
    pub(crate) fn basis_and_params_mut(&mut self) -> (&[T], &mut [T]) {
        (&self.basis, &mut self.params)
    }

    /// The data set behind a handle.
    pub fn dataset(&self, h: DataHandle) -> Result<&Dataset> {
        self.datasets.get(h.0).ok_or_else(|| LabError::Backend(format!("unknown data handle {}", h.0)))
    }

    /// Loss of model `m` on rows already gathered into the workspace; optionally the gradient into `self.grads`.
    fn model_pass(&mut self, m: usize, rows: usize, with_grad: bool) -> (T, usize) {
        let p = self.layout.params_per_model;
        let params = &self.params[m * p..(m + 1) * p];
        forward(&self.layout, params, rows, &mut self.ws);
        let last = self.layout.layers.len() - 1;
        let (acts, deltas) = (&self.ws.acts, &mut self.ws.deltas);
        let d = if with_grad { Some(&mut deltas[last][..rows * self.layout.classes()]) } else { None };
        let out = softmax_cross_entropy(&acts[last + 1], &self.labels[..rows], rows, self.layout.classes(), d);
        if with_grad {
            backward(&self.layout, params, rows, &mut self.ws, &mut self.grads);
        }
        out
    }

    fn gather_rows(&mut self, h: DataHandle, idx: &[u32]) -> Result<()> {
        let data = self.datasets.get(h.0).ok_or_else(|| LabError::Backend(format!("unknown data handle {}", h.0)))?;
        let rows = idx.len();
        gather(data, idx, &mut self.ws.acts[0][..rows * data.dim], &mut self.labels[..rows]);
        Ok(())
    }
}

impl<T: Real> Backend for CpuBackend<T> {
    fn describe(&self) -> String {
        format!("CPU ({})", T::NAME)
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn models(&self) -> usize {
        self.k
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn upload_dataset(&mut self, data: &Dataset) -> Result<DataHandle> {
        check_dataset_fits(&self.layout, data)?;
        self.datasets.push(data.clone());
        Ok(DataHandle(self.datasets.len() - 1))
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(LabError::Backend(format!("expected {} parameters (K × P), got {}", self.params.len(), params.len())));
        }
        for (d, &s) in self.params.iter_mut().zip(params) {
            *d = T::from_f32(s);
        }
        Ok(())
    }

    fn write_hyper(&mut self, hyper: &[Hyper]) -> Result<()> {
        if hyper.len() != self.k {
            return Err(LabError::Backend(format!("expected {} hyper-parameter sets (one per model), got {}", self.k, hyper.len())));
        }
        self.hyper.copy_from_slice(hyper);
        Ok(())
    }

    fn set_divergence_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
    }

    fn reset_state(&mut self) {
        self.velocity.iter_mut().for_each(|v| *v = T::zero());
        self.diverged_at.iter_mut().for_each(|d| *d = None);
        self.step = 0;
    }

    fn train_steps(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<()> {
        let n = self.dataset(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        let p = self.layout.params_per_model;
        self.last_losses.clear();
        self.last_losses.reserve(steps * self.k);
        for s in 0..steps {
            for m in 0..self.k {
                if self.diverged_at[m].is_some() {
                    self.last_losses.push(f32::NAN);
                    continue;
                }
                let off = (s * self.k + m) * batch;
                self.gather_rows(h, &indices[off..off + batch])?;
                let (loss_sum, _) = self.model_pass(m, batch, true);
                let loss = loss_sum.as_f64() / batch as f64;
                self.last_losses.push(loss as f32);
                if !loss.is_finite() || loss > self.threshold as f64 {
                    self.diverged_at[m] = Some(self.step);
                    continue;
                }
                let range = m * p..(m + 1) * p;
                let h = self.hyper[m];
                let (lr, mu, wd) = (T::from_f32(h.lr), T::from_f32(h.momentum), T::from_f32(h.weight_decay));
                sgd_update(&mut self.params[range.clone()], &self.grads, &mut self.velocity[range], lr, mu, wd);
            }
            self.step += 1;
        }
        Ok(())
    }

    async fn read_progress(&mut self) -> Result<Progress> {
        Ok(Progress { losses: self.last_losses.clone(), diverged_at: self.diverged_at.clone() })
    }

    async fn read_params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.iter().map(|v| v.as_f64() as f32).collect())
    }

    async fn evaluate(&mut self, h: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>> {
        let n = self.dataset(h)?.n;
        if count == 0 || start + count > n {
            return Err(LabError::Backend(format!("evaluation range {start}..{} is empty or beyond the {n} examples", start + count)));
        }
        let mut loss = vec![0f64; self.k];
        let mut correct = vec![0usize; self.k];
        let mut idx: Vec<u32> = Vec::with_capacity(self.max_batch);
        let mut at = start;
        while at < start + count {
            let rows = (start + count - at).min(self.max_batch);
            idx.clear();
            idx.extend((at..at + rows).map(|i| i as u32));
            self.gather_rows(h, &idx)?;
            for m in 0..self.k {
                let (l, c) = self.model_pass(m, rows, false);
                loss[m] += l.as_f64();
                correct[m] += c;
            }
            at += rows;
        }
        Ok((0..self.k).map(|m| EvalMetrics { loss: loss[m] / count as f64, accuracy: correct[m] as f64 / count as f64 }).collect())
    }

    async fn gradients(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients> {
        let n = self.dataset(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        if steps != 1 {
            return Err(LabError::Backend(format!("gradients take one batch per model ({} indices), got {}", self.k * batch, indices.len())));
        }
        let p = self.layout.params_per_model;
        let mut out = Gradients { losses: Vec::with_capacity(self.k), grads: Vec::with_capacity(self.k * p) };
        for m in 0..self.k {
            self.gather_rows(h, &indices[m * batch..(m + 1) * batch])?;
            let (l, _) = self.model_pass(m, batch, true);
            out.losses.push((l.as_f64() / batch as f64) as f32);
            out.grads.extend(self.grads.iter().map(|g| g.as_f64() as f32));
        }
        Ok(out)
    }
}

/// Refuses a data set whose feature count or classes do not match the layout.
pub(crate) fn check_dataset_fits(layout: &Layout, data: &Dataset) -> Result<()> {
    if data.dim != layout.input() {
        return Err(LabError::Data(format!("data set '{}' has {} features but the model's input is {}", data.name, data.dim, layout.input())));
    }
    if data.classes > layout.classes() {
        return Err(LabError::Data(format!("data set '{}' has {} classes but the model has {} outputs", data.name, data.classes, layout.classes())));
    }
    Ok(())
}
