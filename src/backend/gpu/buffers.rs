//! The GPU backend's buffers and the bind groups over them: the size checks made before anything is
//! allocated, the training buffers, the static bind groups, the data sets' buffers, and the step-sized
//! buffers that grow with a call (see the buffer table in `docs/gpu-backend.md`).

use super::context::GpuContext;
use super::params::{self, GatherParams, WorkLayout, HEALTHY, SLOT};
use super::GpuBackend;
use crate::backend::Hyper;
use crate::error::{LabError, Result};
use crate::model::{Layout, MAX_LAYERS};

/// A data set on the GPU: its words and labels, and the gather uniforms and bind groups that read it.
pub(crate) struct GpuData {
    pub n: usize,
    pub dim: usize,
    pub words_per_row: usize,
    pub format: u32,
    pub words: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    /// Two uniform slots: indexed gather (training) and contiguous gather (evaluation).
    pub uniforms: wgpu::Buffer,
    /// Bind groups for the two slots (rebuilt when the index or slot buffers grow).
    pub bind: Option<[wgpu::BindGroup; 2]>,
}

/// Buffers whose size depends on the number of steps (or chunks) of a call; grown, never per step.
pub(crate) struct Growable {
    pub slots: wgpu::Buffer,
    pub slots_cap: usize,
    pub indices: wgpu::Buffer,
    pub indices_cap: usize,
    pub losses: wgpu::Buffer,
    pub losses_cap: usize,
    pub partials: wgpu::Buffer,
    pub partials_cap: usize,
}

/// Static uniform slots in `statics` (each 256 bytes apart). The bias parameters carry a per-layer
/// table larger than one slot, so they get as many consecutive slots as they need.
pub(super) mod slot_of {
    use super::super::params::{BiasParams, SLOT};
    pub const SOFTMAX_TRAIN: usize = 0;
    pub const SOFTMAX_EVAL: usize = 1;
    pub const SOFTMAX_GRAD: usize = 2;
    pub const SGD: usize = 3;
    pub const BIAS: usize = 4;
    pub const GEMM0: usize = BIAS + size_of::<BiasParams>().div_ceil(SLOT as usize);
}

/// Bytes as MiB, for the messages that refuse a size.
pub(super) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Fills a buffer with one 32-bit value, 1 MiB at a time (bounded host memory, also in a browser).
pub(super) fn fill_words(ctx: &GpuContext, buf: &wgpu::Buffer, words: usize, value: u32) {
    let chunk = vec![value; words.min(1 << 18)];
    let mut at = 0;
    while at < words {
        let n = (words - at).min(chunk.len());
        ctx.queue.write_buffer(buf, (at * 4) as u64, bytemuck::cast_slice(&chunk[..n]));
        at += n;
    }
}

/// Refuses, before anything is allocated, a backend beyond the device's limits (naming the limit and a
/// setting that fits); otherwise returns where the activations and deltas live in `work`.
pub(super) fn check_fits(ctx: &GpuContext, layout: &Layout, k: usize, max_batch: usize) -> Result<WorkLayout> {
    if k == 0 || max_batch == 0 {
        return Err(LabError::Backend(format!("a GPU backend needs K ≥ 1 models and max_batch ≥ 1 (got K = {k}, max_batch = {max_batch})")));
    }
    let limits = ctx.limits();
    let bind_limit = limits.max_storage_buffer_binding_size;
    let groups_limit = limits.max_compute_workgroups_per_dimension as usize;
    if layout.layers.len() > MAX_LAYERS {
        return Err(LabError::Gpu(format!("{} layers exceed the {MAX_LAYERS} the bias kernel's table holds", layout.layers.len())));
    }
    if k > groups_limit {
        return Err(LabError::Gpu(format!("K = {k} models exceed max_compute_workgroups_per_dimension ({groups_limit}); use at most {groups_limit} models per backend")));
    }
    let p = layout.params_per_model;
    // u64: on wasm32 K × P × 4 can overflow usize before the check.
    let param_bytes = k as u64 * p as u64 * 4;
    if param_bytes > bind_limit {
        return Err(LabError::Gpu(format!(
            "{k} models × {p} parameters need {:.1} MiB, more than max_storage_buffer_binding_size ({:.0} MiB); use at most {} models per backend",
            mib(param_bytes), mib(bind_limit), (bind_limit / (p as u64 * 4)).max(1)
        )));
    }
    let per_row = WorkLayout::floats_per_row(layout) as u64 * 4 * k as u64;
    let work_bytes = per_row * max_batch as u64;
    if work_bytes > bind_limit {
        let fit = bind_limit / per_row;
        return Err(LabError::Gpu(format!(
            "activations and deltas of {k} models × {max_batch} rows need {:.1} MiB, more than max_storage_buffer_binding_size ({:.0} MiB); {}",
            mib(work_bytes), mib(bind_limit),
            if fit > 0 { format!("use max_batch ≤ {fit}") } else { "use fewer models or narrower layers".into() }
        )));
    }
    // Every index and offset the shaders compute must fit in u32.
    let wl = WorkLayout::new(layout, k, max_batch);
    if wl.total > u32::MAX as usize / 2 {
        return Err(LabError::Gpu("the work buffer is too large for 32-bit indices; use a smaller max_batch".into()));
    }
    Ok(wl)
}

/// The backend's training buffers (all but the data sets'), as first allocated.
pub(super) struct TrainBuffers {
    pub params: wgpu::Buffer,
    pub velocity: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub hyper: wgpu::Buffer,
    pub flags: wgpu::Buffer,
    pub work: wgpu::Buffer,
    pub batch_labels: wgpu::Buffer,
    pub row_loss: wgpu::Buffer,
    pub row_correct: wgpu::Buffer,
    pub statics: wgpu::Buffer,
    pub grow: Growable,
}

/// Allocates the training buffers of `k` models of `layout` with batches of up to `max_batch` rows
/// (sizes already checked by [`check_fits`]); `grads` and `work` are NaN-filled, every model is healthy.
pub(super) fn allocate(ctx: &GpuContext, layout: &Layout, k: usize, max_batch: usize, wl: &WorkLayout) -> TrainBuffers {
    let p = layout.params_per_model;
    let param_bytes = k as u64 * p as u64 * 4;
    let nan = f32::NAN.to_bits();
    let params = ctx.storage("params", param_bytes);
    let velocity = ctx.storage("velocity", param_bytes);
    let grads = ctx.storage("grads", param_bytes);
    // NaN-filled so that any element a kernel fails to write shows up in the parity tests.
    fill_words(ctx, &grads, k * p, nan);
    let work = ctx.storage("work (activations + deltas)", wl.total as u64 * 4);
    fill_words(ctx, &work, wl.total, nan);
    let hyper = ctx.storage_init("hyper", bytemuck::cast_slice(&vec![Hyper { lr: 0.0, momentum: 0.0, weight_decay: 0.0 }; k]));
    let flags = ctx.storage_init("divergence flags", bytemuck::cast_slice(&vec![HEALTHY; k]));
    let batch_labels = ctx.storage("batch labels", (k * max_batch * 4) as u64);
    let row_loss = ctx.storage("row loss", (k * max_batch * 4) as u64);
    let row_correct = ctx.storage("row correct", (k * max_batch * 4) as u64);
    let statics = ctx.uniform("static uniforms", (slot_of::GEMM0 + 3 * layout.layers.len()) as u64 * SLOT);
    let grow = Growable {
        slots: ctx.uniform("step slots", SLOT),
        slots_cap: 1,
        indices: ctx.storage("indices", 4),
        indices_cap: 1,
        losses: ctx.storage("step losses", (k * 4) as u64),
        losses_cap: k,
        partials: ctx.storage("eval partials", (2 * k * 4) as u64),
        partials_cap: 2 * k,
    };
    TrainBuffers { params, velocity, grads, hyper, flags, work, batch_labels, row_loss, row_correct, statics, grow }
}

/// The bind groups over buffers that never change: one per GEMM of a step, the bias gradients, SGD.
pub(super) struct StaticBindGroups {
    /// Forward GEMM of layer l.
    pub gemm_fwd: Vec<wgpu::BindGroup>,
    /// Weight-gradient GEMM of layer l.
    pub gemm_dw: Vec<wgpu::BindGroup>,
    /// Input-gradient GEMM of layer l (None for l = 0).
    pub gemm_da: Vec<Option<wgpu::BindGroup>>,
    pub bias: wgpu::BindGroup,
    pub sgd: wgpu::BindGroup,
}

/// Binds each static kernel of a step of `layers` layers to its uniform slot in `statics` and its buffers.
pub(super) fn static_bind_groups(ctx: &GpuContext, layers: usize, b: &TrainBuffers) -> StaticBindGroups {
    let kn = &ctx.kernels;
    let gemm_bg = |slot: usize| {
        ctx.bind_group(
            "gemm",
            &kn.gemm,
            &[(&b.statics, slot as u64 * SLOT, Some(size_of::<params::GemmParams>() as u64)), (&b.params, 0, None), (&b.work, 0, None), (&b.grads, 0, None)],
        )
    };
    let gemm_fwd = (0..layers).map(|l| gemm_bg(slot_of::GEMM0 + l)).collect();
    let gemm_dw = (0..layers).map(|l| gemm_bg(slot_of::GEMM0 + layers + l)).collect();
    let gemm_da = (0..layers).map(|l| (l > 0).then(|| gemm_bg(slot_of::GEMM0 + 2 * layers + l))).collect();
    let bias = ctx.bind_group(
        "bias grad",
        &kn.bias,
        &[(&b.statics, slot_of::BIAS as u64 * SLOT, Some(size_of::<params::BiasParams>() as u64)), (&b.work, 0, None), (&b.grads, 0, None)],
    );
    let sgd = ctx.bind_group(
        "sgd",
        &kn.sgd,
        &[(&b.statics, slot_of::SGD as u64 * SLOT, Some(16)), (&b.params, 0, None), (&b.velocity, 0, None), (&b.grads, 0, None), (&b.hyper, 0, None), (&b.flags, 0, None)],
    );
    StaticBindGroups { gemm_fwd, gemm_dw, gemm_da, bias, sgd }
}

/// Writes a data set's two gather uniforms (indexed, contiguous) for batches of `rows` rows.
pub(super) fn write_gather_uniforms(ctx: &GpuContext, d: &GpuData, k: usize, rows: usize, mb: usize, x_off: usize) {
    let mut bytes = vec![0u8; 2 * SLOT as usize];
    for contiguous in 0..2u32 {
        let p = GatherParams {
            k: k as u32,
            rows: rows as u32,
            dim: d.dim as u32,
            words_per_row: d.words_per_row as u32,
            format: d.format,
            norm_off: (d.n * d.words_per_row) as u32,
            _pad2: 0,
            mb: mb as u32,
            contiguous,
            x_off: x_off as u32,
            _pad: [0; 2],
        };
        let at = contiguous as usize * SLOT as usize;
        bytes[at..at + size_of::<GatherParams>()].copy_from_slice(bytemuck::bytes_of(&p));
    }
    ctx.queue.write_buffer(&d.uniforms, 0, &bytes);
}

/// The gather bind groups of a data set: indexed (training) and contiguous (evaluation) rows.
pub(super) fn gather_bind_groups(ctx: &GpuContext, d: &GpuData, g: &Growable, work: &wgpu::Buffer, batch_labels: &wgpu::Buffer) -> [wgpu::BindGroup; 2] {
    let gp = size_of::<GatherParams>() as u64;
    [0u64, 1].map(|c| {
        ctx.bind_group(
            "gather",
            &ctx.kernels.gather,
            &[
                (&d.uniforms, c * SLOT, Some(gp)),
                (&g.slots, 0, Some(16)),
                (&d.words, 0, None),
                (&d.labels, 0, None),
                (&g.indices, 0, None),
                (work, 0, None),
                (batch_labels, 0, None),
            ],
        )
    })
}

impl GpuBackend {
    /// Rebuilds the bind groups that reference the growable buffers.
    pub(super) fn rebuild_dynamic_bind_groups(&mut self) {
        let ctx = &self.ctx;
        let g = &self.grow;
        let sm = size_of::<params::SoftmaxParams>() as u64;
        self.softmax_bg = [slot_of::SOFTMAX_TRAIN, slot_of::SOFTMAX_EVAL, slot_of::SOFTMAX_GRAD]
            .iter()
            .map(|&s| {
                ctx.bind_group(
                    "softmax ce",
                    &ctx.kernels.softmax,
                    &[
                        (&self.statics, s as u64 * SLOT, Some(sm)),
                        (&g.slots, 0, Some(16)),
                        (&self.work, 0, None),
                        (&self.batch_labels, 0, None),
                        (&self.row_loss, 0, None),
                        (&self.row_correct, 0, None),
                        (&g.losses, 0, None),
                        (&self.flags, 0, None),
                        (&g.partials, 0, None),
                    ],
                )
            })
            .collect();
        for d in &mut self.datasets {
            d.bind = Some(gather_bind_groups(ctx, d, g, &self.work, &self.batch_labels));
        }
    }

    /// Grows the step-sized buffers to hold at least the given counts (doubling, so a run of growing
    /// calls reallocates O(log n) times). Fails with the limit's name when a call is too large.
    pub(super) fn ensure_capacity(&mut self, slots: usize, indices: usize, losses: usize, partials: usize) -> Result<()> {
        let limits = self.ctx.limits();
        let bind_limit = limits.max_storage_buffer_binding_size;
        let buf_limit = limits.max_buffer_size;
        let per_slot_indices = (indices / slots.max(1)).max(1) as u64;
        if indices as u64 * 4 > bind_limit || slots as u64 * SLOT > buf_limit {
            let fit = (bind_limit / (4 * per_slot_indices)).min(buf_limit / SLOT);
            return Err(LabError::Gpu(format!(
                "{slots} steps in one call need {:.1} MiB of indices and {:.1} MiB of step uniforms, beyond max_storage_buffer_binding_size \
                 ({:.0} MiB) or max_buffer_size ({:.0} MiB); split the call into chunks of at most {fit} steps",
                mib(indices as u64 * 4), mib(slots as u64 * SLOT), mib(bind_limit), mib(buf_limit)
            )));
        }
        let grow_to = |need: usize, cap: usize, max: u64, unit: u64| -> Option<usize> {
            (need > cap).then(|| (need.next_power_of_two() as u64).min(max / unit).max(need as u64) as usize)
        };
        let mut changed = false;
        let ctx = self.ctx.clone();
        let g = &mut self.grow;
        if let Some(n) = grow_to(slots, g.slots_cap, buf_limit, SLOT) {
            g.slots = ctx.uniform("step slots", n as u64 * SLOT);
            g.slots_cap = n;
            changed = true;
        }
        if let Some(n) = grow_to(indices, g.indices_cap, bind_limit, 4) {
            g.indices = ctx.storage("indices", n as u64 * 4);
            g.indices_cap = n;
            changed = true;
        }
        if let Some(n) = grow_to(losses, g.losses_cap, bind_limit, 4) {
            g.losses = ctx.storage("step losses", n as u64 * 4);
            g.losses_cap = n;
            changed = true;
        }
        if let Some(n) = grow_to(partials, g.partials_cap, bind_limit, 4) {
            g.partials = ctx.storage("eval partials", n as u64 * 4);
            g.partials_cap = n;
            changed = true;
        }
        if changed {
            self.rebuild_dynamic_bind_groups();
        }
        Ok(())
    }
}
