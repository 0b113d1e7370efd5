//! The CPU reference backend, generic over f32 and f64.
//!
//! Files: [`pool`] (the threads), [`gemm`] (strided products split into panels), [`mlp`] (the forward and
//! backward passes, the loss, the SGD update: the reference routines), [`hvp`] (the R-operator Hessian-vector
//! product), [`perturb`] (parameter combinations for landscapes); this file holds [`Real`] and the backend.
//!
//! In f64 it is the lab's ground truth: every GPU kernel is tested against it, and it is tested against
//! central finite differences and the independent vectors in `shared/testdata`. In f32 it is the engine
//! for browsers without WebGPU, and natively a fast trainer in its own right. Matrix products go through
//! `matrixmultiply` (strided GEMM), so the three products of a layer (`A·Wᵀ`, `δᵀ·A`, `δ·W`) are one call
//! each with the operands' strides.
//!
//! ## Threads (native only; wasm32 runs everything on the calling thread)
//! About 87% of a training step of the E1 MLP is GEMM (profile in `docs/BENCHMARKS.md`), and
//! `matrixmultiply`'s AVX2/FMA kernel already runs one core near its peak; the rest of the speed is in
//! the other cores. A backend runs its work inside a rayon pool ([`CpuBackend::threads`]; by default one
//! shared pool sized by `RAYON_NUM_THREADS` or the number of logical CPUs) in one of two ways:
//! - **K ≥ threads: one model per task.** Models are independent for a whole `train_steps` call, so each
//!   task runs *all* the steps of one model on its own workspace (one slot per thread): one
//!   synchronisation per call, no false sharing, and each model's arithmetic is exactly the serial one.
//! - **K < threads (K = 1 above all): models one after another, each large GEMM split into column (or
//!   row) panels** run by `rayon::join` ([`gemm`]). Only the output C is split, never the inner dimension:
//!   every element of C is still one dot product accumulated by the same kernel in the same order. In the
//!   backward pass a layer's weight gradient and input gradient (independent products) run side by side,
//!   each on half the threads, which keeps the 50-wide layers of the deep MLP parallel where splitting
//!   one small product would cost more than it saves. Small products stay whole (thresholds below): a
//!   `join` costs ~2 µs while the other thread spins, ~30 µs once it has gone to sleep.
//!
//! Measured on the dev machine (2 vCPUs): K ∈ {4, 16, 64} trains at 1.84–2.05× the single-threaded backend, K = 1 at 1.0–1.9×
//! (the 784-256-256-10 MLP at B = 128: 1.6×), ≥ 1.0× JAX on the CPU everywhere (`docs/BENCHMARKS.md`).
//!
//! ## Allocation
//! No allocation happens inside a training step in this file: workspaces (one per thread slot) are sized
//! once for the largest batch; a `train_steps` call allocates only its K-entry task list and, when it
//! grows, the loss buffer. (`matrixmultiply` itself allocates its packing buffers on each call: two
//! `malloc`s per GEMM, under 0.1% of the profile.)

pub mod gemm;
pub mod hvp;
pub mod mlp;
pub mod perturb;
pub(crate) mod pool;

pub use gemm::{gemm, Strided};
pub use mlp::{activate, activation_slope, backward, forward, gather, loss_and_accuracy, loss_and_grad, sgd_update, softmax_cross_entropy, Workspace};

use std::sync::Mutex;

use mlp::{backward_in, forward_in, sgd_update_in};
use crate::backend::{check_indices, Backend, DataHandle, EvalMetrics, Gradients, Hyper, OptimizerState, Progress, DEFAULT_DIVERGENCE_THRESHOLD};
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::Layout;

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

/// What one thread needs to run one model: activations, gradient, labels, sized for the largest batch.
struct Slot<T> {
    ws: Workspace<T>,
    grads: Vec<T>,
    labels: Vec<u32>,
}

impl<T: Real> Slot<T> {
    fn new(layout: &Layout, rows: usize) -> Self {
        Slot { ws: Workspace::new(layout, rows), grads: vec![T::zero(); layout.params_per_model], labels: vec![0; rows] }
    }

    /// Copies examples `idx` of `data` into the workspace.
    fn gather(&mut self, data: &Dataset, idx: &[u32]) {
        let rows = idx.len();
        gather(data, idx, &mut self.ws.acts[0][..rows * data.dim], &mut self.labels[..rows]);
    }

    /// Summed loss and correct count of one model on the rows already gathered; with `with_grad`, the gradient
    /// of the mean loss into `self.grads`. GEMMs split into up to `panels` panels.
    fn model_pass(&mut self, layout: &Layout, params: &[T], rows: usize, with_grad: bool, panels: usize) -> (T, usize) {
        forward_in(panels, layout, params, rows, &mut self.ws);
        let last = layout.layers.len() - 1;
        let (acts, deltas) = (&self.ws.acts, &mut self.ws.deltas);
        let d = if with_grad { Some(&mut deltas[last][..rows * layout.classes()]) } else { None };
        let out = softmax_cross_entropy(&acts[last + 1], &self.labels[..rows], rows, layout.classes(), d);
        if with_grad {
            backward_in(panels, layout, params, rows, &mut self.ws, &mut self.grads);
        }
        out
    }
}

/// A free slot: each running task holds one, and tasks never nest (a model task makes no parallel calls),
/// so one is always free; the blocking fallback only serialises if a caller breaks that.
fn take_slot<T>(slots: &[Mutex<Slot<T>>]) -> std::sync::MutexGuard<'_, Slot<T>> {
    slots.iter().find_map(|s| s.try_lock().ok()).unwrap_or_else(|| slots[0].lock().unwrap_or_else(|e| e.into_inner()))
}

/// The CPU backend: K models trained with the reference routines above, in parallel over models or
/// within GEMMs (see the module docs).
pub struct CpuBackend<T: Real> {
    layout: Layout,
    k: usize,
    max_batch: usize,
    params: Vec<T>,
    velocity: Vec<T>,
    hyper: Vec<Hyper>,
    threshold: f32,
    diverged_at: Vec<Option<u32>>,
    step: u32,
    last_losses: Vec<f32>,
    /// `[model][step]` losses of the last `train_steps` call, before they are transposed into `last_losses`.
    losses_by_model: Vec<f32>,
    datasets: Vec<Dataset>,
    /// One per thread that can run a model at once (`threads` when K ≥ threads, else 1).
    slots: Vec<Mutex<Slot<T>>>,
    pool: pool::Pool,
    /// `(base, d1, d2)` of [`crate::backend::perturb::Perturb`] (3 × P once set, empty before).
    basis: Vec<T>,
}

/// One model's share of a `train_steps` call.
struct TrainTask<'a, T> {
    m: usize,
    params: &'a mut [T],
    velocity: &'a mut [T],
    hyper: Hyper,
    diverged_at: &'a mut Option<u32>,
    losses: &'a mut [f32],
}

impl<T: Real> CpuBackend<T> {
    /// A backend for `k` models of `layout`, batches of up to `max_batch` rows (also the evaluation chunk),
    /// on the shared pool (natively: `RAYON_NUM_THREADS` threads, else one per logical CPU).
    pub fn new(layout: &Layout, k: usize, max_batch: usize) -> Result<Self> {
        Self::with_pool(layout, k, max_batch, pool::Pool::shared())
    }

    /// As [`CpuBackend::new`], on a pool of its own with `threads` threads (0: as the shared pool).
    /// The results are the same bits for every thread count.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_threads(layout: &Layout, k: usize, max_batch: usize, threads: usize) -> Result<Self> {
        Self::with_pool(layout, k, max_batch, pool::Pool::build(threads))
    }

    fn with_pool(layout: &Layout, k: usize, max_batch: usize, pool: pool::Pool) -> Result<Self> {
        if k == 0 {
            return Err(LabError::Backend("a backend needs at least one model (K = 0)".into()));
        }
        if max_batch == 0 {
            return Err(LabError::Backend("max_batch must be at least 1".into()));
        }
        let p = layout.params_per_model;
        let threads = pool.threads();
        let slots = if k >= threads { threads } else { 1 };
        Ok(CpuBackend {
            layout: layout.clone(),
            k,
            max_batch,
            params: vec![T::zero(); k * p],
            velocity: vec![T::zero(); k * p],
            hyper: vec![Hyper { lr: 0.0, momentum: 0.0, weight_decay: 0.0 }; k],
            threshold: DEFAULT_DIVERGENCE_THRESHOLD,
            diverged_at: vec![None; k],
            step: 0,
            last_losses: Vec::new(),
            losses_by_model: Vec::new(),
            datasets: Vec::new(),
            slots: (0..slots).map(|_| Mutex::new(Slot::new(layout, max_batch))).collect(),
            pool,
            basis: Vec::new(),
        })
    }

    /// Threads this backend runs on (1 in wasm32).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `f` on the backend's threads (natively: inside its rayon pool, so GEMMs called by `f` split).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// One model per task (K ≥ threads > 1), or models in turn with split GEMMs.
    fn model_parallel(&self) -> bool {
        self.slots.len() > 1
    }

    /// Panels per GEMM inside a model task: 1 when models run in parallel, else the pool's threads.
    fn panels(&self) -> usize {
        if self.model_parallel() { 1 } else { self.threads() }
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
        let (k, p, step0, threshold) = (self.k, self.layout.params_per_model, self.step, self.threshold);
        let (parallel, panels) = (self.model_parallel(), self.panels());
        self.losses_by_model.clear();
        self.losses_by_model.resize(steps * k, 0.0);
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        let mut tasks: Vec<TrainTask<T>> = self
            .params
            .chunks_mut(p)
            .zip(self.velocity.chunks_mut(p))
            .zip(self.diverged_at.iter_mut())
            .zip(self.losses_by_model.chunks_mut(steps))
            .enumerate()
            .map(|(m, (((params, velocity), diverged_at), losses))| TrainTask { m, params, velocity, hyper: self.hyper[m], diverged_at, losses })
            .collect();
        // All the steps of one model, in order, on one slot.
        let train = |t: &mut TrainTask<T>, slot: &mut Slot<T>| {
            let (lr, mu, wd) = (T::from_f32(t.hyper.lr), T::from_f32(t.hyper.momentum), T::from_f32(t.hyper.weight_decay));
            for s in 0..steps {
                if t.diverged_at.is_some() {
                    t.losses[s] = f32::NAN;
                    continue;
                }
                let off = (s * k + t.m) * batch;
                slot.gather(data, &indices[off..off + batch]);
                let (loss_sum, _) = slot.model_pass(layout, t.params, batch, true, panels);
                let loss = loss_sum.as_f64() / batch as f64;
                t.losses[s] = loss as f32;
                if !loss.is_finite() || loss > threshold as f64 {
                    *t.diverged_at = Some(step0 + s as u32);
                    continue;
                }
                sgd_update_in(panels, t.params, &slot.grads, t.velocity, lr, mu, wd);
            }
        };
        self.pool.install(|| {
            if parallel {
                pool::for_each_mut(&mut tasks, |t| train(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| train(t, &mut slot));
            }
        });
        drop(tasks);
        self.last_losses.clear();
        self.last_losses.extend((0..steps * k).map(|i| self.losses_by_model[(i % k) * steps + i / k]));
        self.step += steps as u32;
        Ok(())
    }

    async fn read_progress(&mut self) -> Result<Progress> {
        Ok(Progress { losses: self.last_losses.clone(), diverged_at: self.diverged_at.clone() })
    }

    async fn read_params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.iter().map(|v| v.as_f64() as f32).collect())
    }

    /// The velocity is rounded to f32 (exact for `CpuBackend<f32>`, the engine of the experiments).
    async fn read_optimizer_state(&mut self) -> Result<OptimizerState> {
        Ok(OptimizerState { velocity: self.velocity.iter().map(|v| v.as_f64() as f32).collect(), diverged_at: self.diverged_at.clone(), step: self.step })
    }

    fn write_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check(self.k, self.layout.params_per_model)?;
        for (d, &s) in self.velocity.iter_mut().zip(&state.velocity) {
            *d = T::from_f32(s);
        }
        self.diverged_at.copy_from_slice(&state.diverged_at);
        self.step = state.step;
        Ok(())
    }

    async fn evaluate(&mut self, h: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>> {
        let n = self.dataset(h)?.n;
        if count == 0 || start + count > n {
            return Err(LabError::Backend(format!("evaluation range {start}..{} is empty or beyond the {n} examples", start + count)));
        }
        let (p, chunk, panels) = (self.layout.params_per_model, self.max_batch, self.panels());
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        // Per model: (parameters, summed loss, correct count), accumulated chunk after chunk in order.
        let mut tasks: Vec<(&[T], f64, usize)> = self.params.chunks(p).map(|params| (params, 0.0, 0)).collect();
        let eval = |t: &mut (&[T], f64, usize), slot: &mut Slot<T>| {
            let mut idx: Vec<u32> = Vec::with_capacity(chunk);
            let mut at = start;
            while at < start + count {
                let rows = (start + count - at).min(chunk);
                idx.clear();
                idx.extend((at..at + rows).map(|i| i as u32));
                slot.gather(data, &idx);
                let (l, c) = slot.model_pass(layout, t.0, rows, false, panels);
                t.1 += l.as_f64();
                t.2 += c;
                at += rows;
            }
        };
        let parallel = self.model_parallel();
        self.pool.install(|| {
            if parallel {
                pool::for_each_mut(&mut tasks, |t| eval(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| eval(t, &mut slot));
            }
        });
        Ok(tasks.iter().map(|&(_, loss, correct)| EvalMetrics { loss: loss / count as f64, accuracy: correct as f64 / count as f64 }).collect())
    }

    async fn gradients(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients> {
        let n = self.dataset(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        if steps != 1 {
            return Err(LabError::Backend(format!("gradients take one batch per model ({} indices), got {}", self.k * batch, indices.len())));
        }
        let (k, p, panels) = (self.k, self.layout.params_per_model, self.panels());
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        let mut out = Gradients { losses: vec![0.0; k], grads: vec![0.0; k * p] };
        let mut tasks: Vec<(usize, &[T], &mut f32, &mut [f32])> =
            self.params.chunks(p).zip(out.losses.iter_mut()).zip(out.grads.chunks_mut(p)).enumerate().map(|(m, ((params, l), g))| (m, params, l, g)).collect();
        let grad = |t: &mut (usize, &[T], &mut f32, &mut [f32]), slot: &mut Slot<T>| {
            slot.gather(data, &indices[t.0 * batch..(t.0 + 1) * batch]);
            let (l, _) = slot.model_pass(layout, t.1, batch, true, panels);
            *t.2 = (l.as_f64() / batch as f64) as f32;
            t.3.iter_mut().zip(&slot.grads).for_each(|(o, g)| *o = g.as_f64() as f32);
        };
        let parallel = self.model_parallel();
        self.pool.install(|| {
            if parallel {
                pool::for_each_mut(&mut tasks, |t| grad(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| grad(t, &mut slot));
            }
        });
        drop(tasks);
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
