//! Run-time choice between the GPU and CPU backends (the page and the CLI pick one when they start).

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{GpuBackend, GpuContext};
use crate::backend::{Backend, DataHandle, EvalMetrics, Gradients, Hyper, OptimizerState, Progress};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Layout;

/// Which engine to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The f32 CPU backend.
    Cpu,
    /// The GPU backend; an error if no adapter can be obtained.
    Gpu,
    /// The GPU backend when an adapter is really obtained, otherwise the CPU backend.
    Auto,
}

/// Either backend, chosen at run time. (One per run, so the size difference of the variants does not matter.)
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    /// The f32 CPU backend.
    Cpu(CpuBackend<f32>),
    /// The wgpu backend.
    Gpu(GpuBackend),
}

/// Builds a backend for `k` models of `layout` with batches up to `max_batch` rows.
/// With [`BackendChoice::Auto`] a GPU failure is not an error: the second value says why the CPU was used.
pub async fn make_backend(layout: &Layout, k: usize, max_batch: usize, choice: BackendChoice) -> Result<(AnyBackend, Option<String>)> {
    if choice == BackendChoice::Cpu {
        return Ok((AnyBackend::Cpu(CpuBackend::new(layout, k, max_batch)?), None));
    }
    let gpu = async {
        let ctx = GpuContext::new().await?;
        GpuBackend::new(&ctx, layout, k, max_batch)
    }
    .await;
    match (gpu, choice) {
        (Ok(g), _) => Ok((AnyBackend::Gpu(g), None)),
        (Err(e), BackendChoice::Gpu) => Err(e),
        (Err(e), _) => Ok((AnyBackend::Cpu(CpuBackend::new(layout, k, max_batch)?), Some(e.to_string()))),
    }
}

macro_rules! each {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Cpu($b) => $e,
            AnyBackend::Gpu($b) => $e,
        }
    };
}

impl Backend for AnyBackend {
    fn describe(&self) -> String {
        each!(self, b => b.describe())
    }
    fn layout(&self) -> &Layout {
        each!(self, b => b.layout())
    }
    fn models(&self) -> usize {
        each!(self, b => b.models())
    }
    fn max_batch(&self) -> usize {
        each!(self, b => b.max_batch())
    }
    fn upload_dataset(&mut self, data: &Dataset) -> Result<DataHandle> {
        each!(self, b => b.upload_dataset(data))
    }
    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        each!(self, b => b.write_params(params))
    }
    fn write_hyper(&mut self, hyper: &[Hyper]) -> Result<()> {
        each!(self, b => b.write_hyper(hyper))
    }
    fn set_divergence_threshold(&mut self, threshold: f32) {
        each!(self, b => b.set_divergence_threshold(threshold))
    }
    fn reset_state(&mut self) {
        each!(self, b => b.reset_state())
    }
    fn train_steps(&mut self, data: DataHandle, indices: &[u32], batch: usize) -> Result<()> {
        each!(self, b => b.train_steps(data, indices, batch))
    }
    async fn read_progress(&mut self) -> Result<Progress> {
        each!(self, b => b.read_progress().await)
    }
    async fn read_params(&mut self) -> Result<Vec<f32>> {
        each!(self, b => b.read_params().await)
    }
    async fn read_optimizer_state(&mut self) -> Result<OptimizerState> {
        each!(self, b => b.read_optimizer_state().await)
    }
    fn write_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        each!(self, b => b.write_optimizer_state(state))
    }
    async fn evaluate(&mut self, data: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>> {
        each!(self, b => b.evaluate(data, start, count).await)
    }
    async fn gradients(&mut self, data: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients> {
        each!(self, b => b.gradients(data, indices, batch).await)
    }
}

impl crate::backend::curvature::Curvature for AnyBackend {
    async fn hvp(&mut self, data: DataHandle, start: usize, count: usize, v: &[f32]) -> Result<Vec<f32>> {
        each!(self, b => b.hvp(data, start, count, v).await)
    }
}

impl crate::backend::perturb::Perturb for AnyBackend {
    fn set_perturb_basis(&mut self, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()> {
        each!(self, b => b.set_perturb_basis(base, d1, d2))
    }
    fn perturb(&mut self, coeffs: &[[f32; 3]]) -> Result<()> {
        each!(self, b => b.perturb(coeffs))
    }
}

/// Builds backends of any K and batch size for one engine, sharing a single GPU device: an experiment
/// builds one backend per group of models, and a device is slow to create (and in a browser, limited).
#[derive(Clone, Debug)]
pub struct BackendFactory {
    gpu: Option<GpuContext>,
    fallback_reason: Option<String>,
}

impl BackendFactory {
    /// Obtains the GPU device once when `choice` asks for it (with [`BackendChoice::Auto`], a failure means
    /// the CPU, with the reason kept in [`BackendFactory::fallback_reason`]).
    pub async fn new(choice: BackendChoice) -> Result<Self> {
        if choice == BackendChoice::Cpu {
            return Ok(BackendFactory { gpu: None, fallback_reason: None });
        }
        match (GpuContext::new().await, choice) {
            (Ok(ctx), _) => Ok(BackendFactory { gpu: Some(ctx), fallback_reason: None }),
            (Err(e), BackendChoice::Gpu) => Err(e),
            (Err(e), _) => Ok(BackendFactory { gpu: None, fallback_reason: Some(e.to_string()) }),
        }
    }

    /// A factory on an existing GPU context.
    pub fn with_gpu(ctx: GpuContext) -> Self {
        BackendFactory { gpu: Some(ctx), fallback_reason: None }
    }

    /// Why the CPU is used although the GPU was asked for (Auto only).
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The engine, e.g. `"GPU: llvmpipe (Vulkan)"` or `"CPU (f32)"`.
    pub fn describe(&self) -> String {
        match &self.gpu {
            Some(ctx) => ctx.describe(),
            None => "CPU (f32)".to_string(),
        }
    }

    /// A backend for `k` models of `layout` with batches up to `max_batch` rows.
    pub fn build(&self, layout: &Layout, k: usize, max_batch: usize) -> Result<AnyBackend> {
        Ok(match &self.gpu {
            Some(ctx) => AnyBackend::Gpu(GpuBackend::new(ctx, layout, k, max_batch)?),
            None => AnyBackend::Cpu(CpuBackend::new(layout, k, max_batch)?),
        })
    }
}
