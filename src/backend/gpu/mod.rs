//! TEMPORARY placeholder until the wgpu backend branch is merged (it replaces this file).
#![allow(missing_docs)]
use crate::backend::*;
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::Layout;
#[derive(Clone)]
pub struct GpuContext;
impl GpuContext {
    pub async fn new() -> Result<Self> {
        Err(LabError::Gpu("the GPU backend is not merged yet".into()))
    }
}
pub struct GpuBackend(Layout);
impl GpuBackend {
    pub fn new(_: &GpuContext, _: &Layout, _: usize, _: usize) -> Result<Self> {
        Err(LabError::Gpu("the GPU backend is not merged yet".into()))
    }
    pub fn dispatches_per_step(&self) -> usize { 0 }
    pub fn submits_per_call(&self, _: usize) -> usize { 0 }
}
impl Backend for GpuBackend {
    fn describe(&self) -> String { unreachable!() }
    fn layout(&self) -> &Layout { &self.0 }
    fn models(&self) -> usize { unreachable!() }
    fn max_batch(&self) -> usize { unreachable!() }
    fn upload_dataset(&mut self, _: &Dataset) -> Result<DataHandle> { unreachable!() }
    fn write_params(&mut self, _: &[f32]) -> Result<()> { unreachable!() }
    fn write_hyper(&mut self, _: &[Hyper]) -> Result<()> { unreachable!() }
    fn set_divergence_threshold(&mut self, _: f32) { unreachable!() }
    fn reset_state(&mut self) { unreachable!() }
    fn train_steps(&mut self, _: DataHandle, _: &[u32], _: usize) -> Result<()> { unreachable!() }
    async fn read_progress(&mut self) -> Result<Progress> { unreachable!() }
    async fn read_params(&mut self) -> Result<Vec<f32>> { unreachable!() }
    async fn evaluate(&mut self, _: DataHandle, _: usize, _: usize) -> Result<Vec<EvalMetrics>> { unreachable!() }
    async fn gradients(&mut self, _: DataHandle, _: &[u32], _: usize) -> Result<Gradients> { unreachable!() }
}
