//! The few operations everything else needs, behind one trait with two implementations:
//! [`cpu::CpuBackend`] (the f64/f32 reference and the fallback engine) and [`gpu::GpuBackend`] (WGSL on wgpu).
//!
//! A backend owns the state of K models of one [`Layout`]: parameters, momentum buffers,
//! per-model hyper-parameters and divergence flags. Work is *encoded* by the synchronous methods
//! ([`Backend::train_steps`]) and results come back only through the `async` read methods, because a
//! browser can read GPU memory only asynchronously. A training chunk therefore costs one readback.
//!
//! ## Semantics of one SGD step (both backends)
//! For each model m that has not diverged, with its mini-batch `indices[step][m][0..batch]`:
//! 1. forward pass, mean softmax cross-entropy `L` over the batch;
//! 2. if `L` is not finite or `L > divergence_threshold`, the model is flagged as diverged at this
//!    step (0-based count since [`Backend::reset_state`]) and is never updated again;
//! 3. otherwise, with `g = ∇L + wd·θ`: `v ← μ·v + g`, `θ ← θ − η·v` (PyTorch's SGD, dampening 0, no Nesterov).
//!
//! Diverged models report NaN as their loss for the steps after the one that flagged them.

#![allow(async_fn_in_trait)]

pub mod any;
pub mod cpu;
pub mod curvature;
pub mod gpu;
pub mod perturb;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::Result;
use crate::model::Layout;

/// Per-model optimiser settings, stored in one array so a single dispatch updates K models.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Hyper {
    /// Learning rate η.
    pub lr: f32,
    /// Heavy-ball momentum μ (PyTorch convention).
    pub momentum: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
}

/// Default loss above which a model is declared diverged.
pub const DEFAULT_DIVERGENCE_THRESHOLD: f32 = 1.0e3;

/// An uploaded data set, valid for the backend that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHandle(pub usize);

/// Mean loss and accuracy of one model over a range of examples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Fraction of examples whose arg-max logit (first index on ties) equals the label.
    pub accuracy: f64,
}

/// What one readback after [`Backend::train_steps`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Mini-batch loss of every step of the last `train_steps` call, `[step][model]`; NaN once diverged.
    pub losses: Vec<f32>,
    /// For each model, the step at which it diverged, if it did.
    pub diverged_at: Vec<Option<u32>>,
}

/// Mini-batch loss and gradient of each model, at the current parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// Mean cross-entropy of each model on its batch.
    pub losses: Vec<f32>,
    /// `K × P` gradient in the parameter layout (no weight decay).
    pub grads: Vec<f32>,
}

/// What an SGD step depends on besides the parameters and hyper-parameters: every model's momentum buffer,
/// its divergence flag, and the step count the flags are numbered by. A checkpoint saves it
/// ([`Backend::read_optimizer_state`]) and a resumed run puts it back ([`Backend::write_optimizer_state`]),
/// so the next step is the one an uninterrupted run would have taken.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// `K × P` momentum (velocity) values in the parameter layout.
    pub velocity: Vec<f32>,
    /// For each model, the step at which it diverged, if it did.
    pub diverged_at: Vec<Option<u32>>,
    /// Steps since [`Backend::reset_state`].
    pub step: u32,
}

impl OptimizerState {
    /// Checks the sizes against a backend of `k` models of `p` parameters each.
    pub(crate) fn check(&self, k: usize, p: usize) -> Result<()> {
        use crate::error::LabError;
        if self.velocity.len() != k * p || self.diverged_at.len() != k {
            return Err(LabError::Backend(format!(
                "optimiser state of {} velocity values and {} divergence flags does not fit {k} models of {p} parameters",
                self.velocity.len(),
                self.diverged_at.len()
            )));
        }
        if let Some(at) = self.diverged_at.iter().flatten().find(|&&at| at >= self.step) {
            return Err(LabError::Backend(format!("a model diverged at step {at}, not before the state's step {}", self.step)));
        }
        Ok(())
    }
}

/// The operations the trainer (and later the analyses) need, implemented by the CPU and GPU backends.
pub trait Backend {
    /// Human-readable description, e.g. `"GPU: llvmpipe (Vulkan)"` or `"CPU (f32)"`.
    fn describe(&self) -> String;
    /// The layout every model of this backend shares.
    fn layout(&self) -> &Layout;
    /// Number of models K.
    fn models(&self) -> usize;
    /// Largest batch (rows per model) this backend was sized for.
    fn max_batch(&self) -> usize;

    /// Uploads a data set once; later calls refer to it by handle. Its widths must match the layout.
    fn upload_dataset(&mut self, data: &Dataset) -> Result<DataHandle>;
    /// Replaces all parameters (`K × P` values, model after model).
    fn write_params(&mut self, params: &[f32]) -> Result<()>;
    /// Sets each model's learning rate, momentum and weight decay (`K` entries).
    fn write_hyper(&mut self, hyper: &[Hyper]) -> Result<()>;
    /// Sets the loss above which a model is declared diverged.
    fn set_divergence_threshold(&mut self, threshold: f32);
    /// Zeroes momentum buffers, clears divergence flags and restarts the step count.
    fn reset_state(&mut self);
    /// Encodes `indices.len() / (K·batch)` SGD steps; `indices` is `[step][model][row]` into `data`.
    /// Nothing is read back: call [`Backend::read_progress`] afterwards.
    fn train_steps(&mut self, data: DataHandle, indices: &[u32], batch: usize) -> Result<()>;

    /// Step losses of the last `train_steps` call and the divergence flags (one readback).
    async fn read_progress(&mut self) -> Result<Progress>;
    /// Reads all parameters back (`K × P`).
    async fn read_params(&mut self) -> Result<Vec<f32>>;
    /// Reads the momentum buffers, divergence flags and step count back (one readback on the GPU).
    async fn read_optimizer_state(&mut self) -> Result<OptimizerState>;
    /// Replaces the momentum buffers, divergence flags and step count (sizes checked).
    fn write_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;
    /// Mean loss and accuracy of every model over examples `start..start+count` of `data`.
    async fn evaluate(&mut self, data: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>>;
    /// Loss and gradient of each model on its own batch `indices[model][row]` (no update, no weight decay).
    async fn gradients(&mut self, data: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients>;
}

/// Checks a `[step][model][row]` index array against a backend's sizes; returns the number of steps.
pub(crate) fn check_indices(indices: &[u32], k: usize, batch: usize, max_batch: usize, n: usize) -> Result<usize> {
    use crate::error::LabError;
    if batch == 0 || batch > max_batch {
        return Err(LabError::Backend(format!("batch size {batch} must be between 1 and {max_batch} (the size the backend was built for)")));
    }
    if indices.is_empty() || indices.len() % (k * batch) != 0 {
        return Err(LabError::Backend(format!(
            "{} indices is not a whole number of steps of {k} models × {batch} rows",
            indices.len()
        )));
    }
    if let Some(&i) = indices.iter().find(|&&i| i as usize >= n) {
        return Err(LabError::Backend(format!("example index {i} is out of range for a data set of {n} examples")));
    }
    Ok(indices.len() / (k * batch))
}
