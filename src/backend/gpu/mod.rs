//! The GPU backend: K MLPs trained side by side in WGSL compute shaders through wgpu (WebGPU in browsers).
//!
//! * [`GpuContext`] — adapter, device, queue and the compiled kernels (`shaders/*.wgsl`), built once.
//! * [`shaders`] — the kernel table: each kernel's composed WGSL source and its bindings, with the sizes of
//!   the Rust structs written into its uniforms (the contract `tests/kernel_contract.rs` checks).
//! * [`GpuBackend`] — the [`Backend`] implementation: buffers, uniforms and bind groups (`buffers.rs`) are
//!   created in [`GpuBackend::new`] / [`Backend::upload_dataset`]; a training step only records dispatches.
//! * [`kernel_harness`] — each kernel run alone on given inputs (NaN-prefilled outputs), for the parity tests.
//!
//! One SGD step of a net with L layers is `3L + 3` dispatches (see [`GpuBackend::dispatches_per_step`]):
//! gather, L forward GEMMs, fused softmax-CE + loss/divergence, L weight-gradient GEMMs, L−1
//! input-gradient GEMMs, one bias-gradient reduction for all layers, one SGD pass over K×P.
//! [`Backend::train_steps`] records all its steps and submits once; nothing is read back until
//! [`Backend::read_progress`]. See `docs/gpu-backend.md`.

mod buffers;
mod context;
mod hvp;
pub mod kernel_harness;
mod params;
mod perturb;
pub mod shaders;
#[cfg(not(target_arch = "wasm32"))]
pub mod throughput;

pub use context::{GpuContext, GpuCounters};

use crate::backend::cpu::check_dataset_fits;
use crate::backend::{check_indices, Backend, DataHandle, EvalMetrics, Gradients, Hyper, OptimizerState, Progress, DEFAULT_DIVERGENCE_THRESHOLD};
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::Layout;
use buffers::{fill_words, gather_bind_groups, mib, slot_of, write_gather_uniforms, GpuData, Growable, TrainBuffers};
use context::{Kernel, Recorder};
use params::{mode, ElementwiseParams, StepSlot, WorkLayout, HEALTHY, SLOT};

/// Steps recorded per command buffer (all of a call's command buffers go in one submit).
const STEPS_PER_ENCODER: usize = 256;

/// K models of one layout trained by SGD on the GPU (see the module docs).
pub struct GpuBackend {
    ctx: GpuContext,
    layout: Layout,
    k: usize,
    max_batch: usize,
    work_layout: WorkLayout,
    threshold: f32,
    /// Steps since `reset_state` (the divergence step recorded in the flags).
    step: u32,
    /// Steps of the last `train_steps` call (what `read_progress` reads).
    last_steps: usize,
    /// Rows the static uniforms are currently written for.
    rows: Option<usize>,
    last_dispatches: usize,
    last_submits: usize,

    params: wgpu::Buffer,
    velocity: wgpu::Buffer,
    grads: wgpu::Buffer,
    hyper: wgpu::Buffer,
    flags: wgpu::Buffer,
    work: wgpu::Buffer,
    batch_labels: wgpu::Buffer,
    row_loss: wgpu::Buffer,
    row_correct: wgpu::Buffer,
    statics: wgpu::Buffer,
    grow: Growable,

    /// GEMM bind groups: forward l, weight-gradient l, input-gradient l (None for l = 0).
    gemm_fwd: Vec<wgpu::BindGroup>,
    gemm_dw: Vec<wgpu::BindGroup>,
    gemm_da: Vec<Option<wgpu::BindGroup>>,
    bias_bg: wgpu::BindGroup,
    sgd_bg: wgpu::BindGroup,
    /// Softmax bind groups for the train, eval and grad slots (rebuilt when step buffers grow).
    softmax_bg: Vec<wgpu::BindGroup>,
    datasets: Vec<GpuData>,
    /// Buffers of the Hessian-vector product, made on its first use (see `hvp.rs`).
    hvp: Option<hvp::HvpBuffers>,
    /// Buffers of the landscape perturbation (`perturb.rs`), created on first use.
    perturb: Option<perturb::PerturbState>,
}

impl GpuBackend {
    /// A backend for `k` models of `layout`, batches (and evaluation chunks) of up to `max_batch` rows.
    /// Refuses, before allocating, sizes beyond the device's limits, naming the limit and a setting that fits.
    pub fn new(ctx: &GpuContext, layout: &Layout, k: usize, max_batch: usize) -> Result<Self> {
        let work_layout = buffers::check_fits(ctx, layout, k, max_batch)?;
        let bufs = buffers::allocate(ctx, layout, k, max_batch, &work_layout);
        let bgs = buffers::static_bind_groups(ctx, layout.layers.len(), &bufs);
        let TrainBuffers { params, velocity, grads, hyper, flags, work, batch_labels, row_loss, row_correct, statics, grow } = bufs;
        let mut b = GpuBackend {
            ctx: ctx.clone(),
            layout: layout.clone(),
            k,
            max_batch,
            work_layout,
            threshold: DEFAULT_DIVERGENCE_THRESHOLD,
            step: 0,
            last_steps: 0,
            rows: None,
            last_dispatches: 0,
            last_submits: 0,
            params,
            velocity,
            grads,
            hyper,
            flags,
            work,
            batch_labels,
            row_loss,
            row_correct,
            statics,
            grow,
            gemm_fwd: bgs.gemm_fwd,
            gemm_dw: bgs.gemm_dw,
            gemm_da: bgs.gemm_da,
            bias_bg: bgs.bias,
            sgd_bg: bgs.sgd,
            softmax_bg: Vec::new(),
            datasets: Vec::new(),
            hvp: None,
            perturb: None,
        };
        b.rebuild_dynamic_bind_groups();
        Ok(b)
    }

    /// The context this backend runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Compute dispatches one SGD step records: `3L + 3` for L layers (gather, L forward GEMMs, softmax-CE,
    /// L weight-gradient and L−1 input-gradient GEMMs, bias gradients, SGD). After a `train_steps`
    /// call this is the count actually recorded divided by its steps.
    pub fn dispatches_per_step(&self) -> usize {
        self.last_dispatches.checked_div(self.last_steps).unwrap_or(3 * self.layout.layers.len() + 3)
    }

    /// Bytes of the GPU buffers this backend holds now: parameters, velocity, gradients, work, uniforms,
    /// step-sized buffers at their current capacity, every uploaded data set, and the HVP and perturbation
    /// buffers once made. Not counted: per-call transients (readback staging, the HVP's per-call uniforms)
    /// and what the driver adds (alignment, pipelines).
    pub fn buffer_bytes(&self) -> u64 {
        let g = &self.grow;
        let mut bufs: Vec<&wgpu::Buffer> = vec![
            &self.params, &self.velocity, &self.grads, &self.hyper, &self.flags, &self.work, &self.batch_labels,
            &self.row_loss, &self.row_correct, &self.statics, &g.slots, &g.indices, &g.losses, &g.partials,
        ];
        for d in &self.datasets {
            bufs.extend([&d.words, &d.labels, &d.uniforms]);
        }
        if let Some(h) = &self.hvp {
            bufs.extend(h.buffers());
        }
        if let Some(p) = &self.perturb {
            bufs.extend(p.buffers());
        }
        bufs.iter().map(|b| b.size()).sum()
    }

    /// Queue submits of the last `train_steps` call (1: all its steps go in one submit).
    pub fn submits_last_call(&self) -> usize {
        self.last_submits
    }

    fn data(&self, h: DataHandle) -> Result<&GpuData> {
        self.datasets.get(h.0).ok_or_else(|| LabError::Backend(format!("unknown data handle {}", h.0)))
    }

    /// Writes every static uniform for batches of `rows` rows (only when `rows` changes). Uniform writes
    /// are ordered before the next submit, so each public operation submits before the rows change again.
    fn configure(&mut self, rows: usize) {
        if self.rows == Some(rows) {
            return;
        }
        let (lay, wl, k) = (&self.layout, &self.work_layout, self.k);
        let p = lay.params_per_model;
        let layers = lay.layers.len();
        let mut bytes = vec![0u8; (slot_of::GEMM0 + 3 * layers) * SLOT as usize];
        let mut put = |slot: usize, data: &[u8]| bytes[slot * SLOT as usize..slot * SLOT as usize + data.len()].copy_from_slice(data);
        for (s, m) in [(slot_of::SOFTMAX_TRAIN, mode::TRAIN), (slot_of::SOFTMAX_EVAL, mode::EVAL), (slot_of::SOFTMAX_GRAD, mode::GRAD)] {
            put(s, bytemuck::bytes_of(&params::softmax(lay, wl, k, rows, m, self.threshold)));
        }
        put(slot_of::BIAS, bytemuck::bytes_of(&params::bias(lay, wl, k, rows)));
        put(slot_of::SGD, bytemuck::bytes_of(&ElementwiseParams { total: (k * p) as u32, p: p as u32, _pad: [0; 2] }));
        for (l, lo) in lay.layers.iter().enumerate() {
            put(slot_of::GEMM0 + l, bytemuck::bytes_of(&params::gemm_forward(lo, p, wl, l, rows, lay.activation_after(l))));
            put(slot_of::GEMM0 + layers + l, bytemuck::bytes_of(&params::gemm_weight_grad(lo, p, wl, l, rows)));
            if l > 0 {
                put(slot_of::GEMM0 + 2 * layers + l, bytemuck::bytes_of(&params::gemm_input_grad(lo, p, wl, l, rows, lay.activation_after(l - 1))));
            }
        }
        self.ctx.queue.write_buffer(&self.statics, 0, &bytes);
        for d in &self.datasets {
            write_gather_uniforms(&self.ctx, d, k, rows, self.max_batch, wl.acts[0]);
        }
        self.rows = Some(rows);
    }

    fn gemm_params(&self, slot: usize) -> params::GemmParams {
        let (lay, wl, rows) = (&self.layout, &self.work_layout, self.rows.expect("configured"));
        let p = lay.params_per_model;
        let layers = lay.layers.len();
        let (kind, l) = ((slot - slot_of::GEMM0) / layers, (slot - slot_of::GEMM0) % layers);
        let lo = &lay.layers[l];
        match kind {
            0 => params::gemm_forward(lo, p, wl, l, rows, lay.activation_after(l)),
            1 => params::gemm_weight_grad(lo, p, wl, l, rows),
            _ => params::gemm_input_grad(lo, p, wl, l, rows, lay.activation_after(l - 1)),
        }
    }

    fn record_gather(&self, rec: &mut Recorder, data: usize, contiguous: bool, slot: usize, rows: usize) {
        let d = &self.datasets[data];
        let bg = &d.bind.as_ref().expect("gather bind groups are built with the data set")[contiguous as usize];
        rec.flat(&self.ctx.kernels.gather, bg, &[(slot as u64 * SLOT) as u32], self.k * rows * d.dim);
    }

    fn record_forward(&self, rec: &mut Recorder) {
        for l in 0..self.layout.layers.len() {
            let grid = params::gemm_grid(&self.gemm_params(slot_of::GEMM0 + l), self.k);
            rec.grid(&self.ctx.kernels.gemm, &self.gemm_fwd[l], &[], grid);
        }
    }

    fn record_softmax(&self, rec: &mut Recorder, which: usize, slot: usize) {
        rec.grid(&self.ctx.kernels.softmax, &self.softmax_bg[which], &[(slot as u64 * SLOT) as u32], [self.k as u32, 1, 1]);
    }

    /// Weight gradients, input gradients (from the last layer down) and all bias gradients into `grads`.
    fn record_backward(&self, rec: &mut Recorder) {
        let layers = self.layout.layers.len();
        let gemm: &Kernel = &self.ctx.kernels.gemm;
        for l in (0..layers).rev() {
            rec.grid(gemm, &self.gemm_dw[l], &[], params::gemm_grid(&self.gemm_params(slot_of::GEMM0 + layers + l), self.k));
            if let Some(bg) = &self.gemm_da[l] {
                rec.grid(gemm, bg, &[], params::gemm_grid(&self.gemm_params(slot_of::GEMM0 + 2 * layers + l), self.k));
            }
        }
        let biases = self.layout.widths[1..].iter().sum::<usize>();
        rec.flat(&self.ctx.kernels.bias, &self.bias_bg, &[], self.k * biases);
    }

    /// Records `steps` passes of `body` into command buffers of at most [`STEPS_PER_ENCODER`] steps each.
    fn record<F: Fn(&Self, &mut Recorder, usize)>(&self, label: &str, steps: usize, body: F) -> (Vec<wgpu::CommandBuffer>, usize) {
        let mut buffers = Vec::new();
        let mut dispatches = 0;
        let mut s = 0;
        while s < steps {
            let end = (s + STEPS_PER_ENCODER).min(steps);
            let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
            {
                let pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
                let mut rec = Recorder::new(pass, &self.ctx);
                for i in s..end {
                    body(self, &mut rec, i);
                }
                dispatches += rec.dispatches;
            }
            buffers.push(enc.finish());
            s = end;
        }
        (buffers, dispatches)
    }

    fn write_slots(&self, slots: &[StepSlot]) {
        self.ctx.queue.write_buffer(&self.grow.slots, 0, &params::slot_bytes(slots));
    }
}


impl Backend for GpuBackend {
    fn describe(&self) -> String {
        self.ctx.describe()
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
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        let wpr = data.words_per_row();
        let table = data.normalisation().map_or(0, |(s, _)| 2 * s.len());
        let bytes = ((data.n * wpr + table) * 4) as u64;
        if bytes > limit {
            let fit = limit / (wpr as u64 * 4);
            return Err(LabError::Gpu(format!(
                "data set '{}' needs {:.1} MiB on the GPU, more than max_storage_buffer_binding_size ({:.0} MiB); {}use a subset of at most {fit} examples",
                data.name, mib(bytes), mib(limit),
                if data.format() == crate::data::format::F32 { "store the features as u8 (4× smaller) or " } else { "" }
            )));
        }
        if data.n * wpr + table > u32::MAX as usize / 2 {
            return Err(LabError::Gpu(format!("data set '{}' is too large for 32-bit indices", data.name)));
        }
        let ctx = &self.ctx;
        let mut d = GpuData {
            n: data.n,
            dim: data.dim,
            words_per_row: wpr,
            format: data.format(),
            words: ctx.storage_init("data words", bytemuck::cast_slice(&data.gpu_words())),
            labels: ctx.storage_init("data labels", bytemuck::cast_slice(&data.labels)),
            uniforms: ctx.uniform("gather uniforms", 2 * SLOT),
            bind: None,
        };
        d.bind = Some(gather_bind_groups(ctx, &d, &self.grow, &self.work, &self.batch_labels));
        if let Some(rows) = self.rows {
            write_gather_uniforms(ctx, &d, self.k, rows, self.max_batch, self.work_layout.acts[0]);
        }
        self.datasets.push(d);
        Ok(DataHandle(self.datasets.len() - 1))
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        let want = self.k * self.layout.params_per_model;
        if params.len() != want {
            return Err(LabError::Backend(format!("expected {want} parameters (K × P), got {}", params.len())));
        }
        self.ctx.queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    fn write_hyper(&mut self, hyper: &[Hyper]) -> Result<()> {
        if hyper.len() != self.k {
            return Err(LabError::Backend(format!("expected {} hyper-parameter sets (one per model), got {}", self.k, hyper.len())));
        }
        self.ctx.queue.write_buffer(&self.hyper, 0, bytemuck::cast_slice(hyper));
        Ok(())
    }

    fn set_divergence_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
        self.rows = None; // the threshold lives in the softmax uniforms: rewrite them before the next use
    }

    fn reset_state(&mut self) {
        fill_words(&self.ctx, &self.velocity, self.k * self.layout.params_per_model, 0);
        fill_words(&self.ctx, &self.flags, self.k, HEALTHY);
        self.step = 0;
    }

    fn train_steps(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<()> {
        let n = self.data(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        if self.step as u64 + steps as u64 >= HEALTHY as u64 {
            return Err(LabError::Backend("the step counter would overflow; call reset_state".into()));
        }
        let partials = self.grow.partials_cap;
        self.ensure_capacity(steps, indices.len(), steps * self.k, partials)?;
        self.ctx.queue.write_buffer(&self.grow.indices, 0, bytemuck::cast_slice(indices));
        let slots: Vec<StepSlot> = (0..steps).map(|s| StepSlot { step_local: s as u32, step_global: self.step + s as u32, base: 0, _pad: 0 }).collect();
        self.write_slots(&slots);
        self.configure(batch);
        let (buffers, dispatches) = self.record("train steps", steps, |b, rec, s| {
            b.record_gather(rec, h.0, false, s, batch);
            b.record_forward(rec);
            b.record_softmax(rec, 0, s);
            b.record_backward(rec);
            rec.flat(&b.ctx.kernels.sgd, &b.sgd_bg, &[], b.k * b.layout.params_per_model);
        });
        self.ctx.queue.submit(buffers);
        self.step += steps as u32;
        self.last_steps = steps;
        self.last_dispatches = dispatches;
        self.last_submits = 1;
        Ok(())
    }

    async fn read_progress(&mut self) -> Result<Progress> {
        let k = self.k;
        let bytes = (self.last_steps * k * 4) as u64;
        let out = self.ctx.read_back(&[(&self.grow.losses, 0, bytes), (&self.flags, 0, (k * 4) as u64)]).await?;
        let losses = bytemuck::cast_slice::<u8, u32>(&out[0]).iter().map(|&b| f32::from_bits(b)).collect();
        let diverged_at = bytemuck::cast_slice::<u8, u32>(&out[1]).iter().map(|&f| (f != HEALTHY).then_some(f)).collect();
        Ok(Progress { losses, diverged_at })
    }

    async fn read_params(&mut self) -> Result<Vec<f32>> {
        let bytes = (self.k * self.layout.params_per_model * 4) as u64;
        let out = self.ctx.read_back(&[(&self.params, 0, bytes)]).await?;
        Ok(bytemuck::cast_slice(&out[0]).to_vec())
    }

    async fn read_optimizer_state(&mut self) -> Result<OptimizerState> {
        let (k, p) = (self.k, self.layout.params_per_model);
        let out = self.ctx.read_back(&[(&self.velocity, 0, (k * p * 4) as u64), (&self.flags, 0, (k * 4) as u64)]).await?;
        let velocity = bytemuck::cast_slice::<u8, u32>(&out[0]).iter().map(|&b| f32::from_bits(b)).collect();
        let diverged_at = bytemuck::cast_slice::<u8, u32>(&out[1]).iter().map(|&f| (f != HEALTHY).then_some(f)).collect();
        Ok(OptimizerState { velocity, diverged_at, step: self.step })
    }

    fn write_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check(self.k, self.layout.params_per_model)?;
        if state.step == HEALTHY {
            return Err(LabError::Backend(format!("step {} is beyond the GPU's step counter (below {HEALTHY})", state.step)));
        }
        let flags: Vec<u32> = state.diverged_at.iter().map(|d| d.unwrap_or(HEALTHY)).collect();
        self.ctx.queue.write_buffer(&self.velocity, 0, bytemuck::cast_slice(&state.velocity));
        self.ctx.queue.write_buffer(&self.flags, 0, bytemuck::cast_slice(&flags));
        self.step = state.step;
        Ok(())
    }

    async fn evaluate(&mut self, h: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>> {
        let n = self.data(h)?.n;
        if count == 0 || start + count > n {
            return Err(LabError::Backend(format!("evaluation range {start}..{} is empty or beyond the {n} examples", start + count)));
        }
        let (k, mb) = (self.k, self.max_batch);
        let chunks = count.div_ceil(mb);
        let (indices, losses) = (self.grow.indices_cap, self.grow.losses_cap);
        self.ensure_capacity(chunks, indices, losses, 2 * k * chunks)?;
        let slots: Vec<StepSlot> = (0..chunks).map(|c| StepSlot { step_local: c as u32, step_global: 0, base: (start + c * mb) as u32, _pad: 0 }).collect();
        self.write_slots(&slots);
        // Full chunks with the uniforms for mb rows, then the remainder with its own (one submit each).
        let full = count / mb;
        let eval = |b: &Self, rec: &mut Recorder, c: usize, rows: usize| {
            b.record_gather(rec, h.0, true, c, rows);
            b.record_forward(rec);
            b.record_softmax(rec, 1, c);
        };
        if full > 0 {
            self.configure(mb);
            let (bufs, _) = self.record("evaluate", full, |b, rec, c| eval(b, rec, c, mb));
            self.ctx.queue.submit(bufs);
        }
        let rest = count - full * mb;
        if rest > 0 {
            self.configure(rest);
            let (bufs, _) = self.record("evaluate (last chunk)", 1, |b, rec, _| eval(b, rec, full, rest));
            self.ctx.queue.submit(bufs);
        }
        let out = self.ctx.read_back(&[(&self.grow.partials, 0, (2 * k * chunks * 4) as u64)]).await?;
        let words: &[u32] = bytemuck::cast_slice(&out[0]);
        let mut loss = vec![0f64; k];
        let mut correct = vec![0u64; k];
        for c in 0..chunks {
            for m in 0..k {
                let at = 2 * (c * k + m);
                loss[m] += f32::from_bits(words[at]) as f64;
                correct[m] += words[at + 1] as u64;
            }
        }
        Ok((0..k).map(|m| EvalMetrics { loss: loss[m] / count as f64, accuracy: correct[m] as f64 / count as f64 }).collect())
    }

    async fn gradients(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients> {
        let n = self.data(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        if steps != 1 {
            return Err(LabError::Backend(format!("gradients take one batch per model ({} indices), got {}", self.k * batch, indices.len())));
        }
        let (k, p) = (self.k, self.layout.params_per_model);
        let (losses, partials) = (self.grow.losses_cap, self.grow.partials_cap);
        self.ensure_capacity(1, indices.len(), losses, partials.max(2 * k))?;
        self.ctx.queue.write_buffer(&self.grow.indices, 0, bytemuck::cast_slice(indices));
        self.write_slots(&[StepSlot { step_local: 0, step_global: self.step, base: 0, _pad: 0 }]);
        self.configure(batch);
        let (bufs, _) = self.record("gradients", 1, |b, rec, _| {
            b.record_gather(rec, h.0, false, 0, batch);
            b.record_forward(rec);
            b.record_softmax(rec, 2, 0);
            b.record_backward(rec);
        });
        self.ctx.queue.submit(bufs);
        let out = self.ctx.read_back(&[(&self.grads, 0, (k * p * 4) as u64), (&self.grow.partials, 0, (2 * k * 4) as u64)]).await?;
        let words: &[u32] = bytemuck::cast_slice(&out[1]);
        let losses = (0..k).map(|m| (f32::from_bits(words[2 * m]) as f64 / batch as f64) as f32).collect();
        Ok(Gradients { losses, grads: bytemuck::cast_slice(&out[0]).to_vec() })
    }
}
