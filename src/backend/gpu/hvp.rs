//! Hessian-vector products of K models on the GPU (the [`Curvature`] implementation of [`GpuBackend`]).
//!
//! The same R-operator passes as the CPU reference (`backend/cpu/hvp.rs`), built from the lab's kernels:
//! the batched GEMM (`gemm.wgsl`, with epilogues 3–7 for the tangent parts), `r_softmax.wgsl` (δ and R(δ)
//! of the logits), `bias_grad.wgsl` (accumulating mode) and `gather.wgsl` (contiguous rows). Buffers of
//! their own: a work buffer with the primal *and* tangent activations/deltas of a chunk, the vectors `v`,
//! the result, the chunk's labels. A call records every chunk of the subset in one submit and reads the
//! result back once; chunk c's weight-block products add onto chunk c−1's (epilogue 7), the first chunk
//! stores, so an element no kernel writes stays NaN (the result buffer is NaN-filled before each call).

use super::context::{flat_grid, Recorder};
use super::params::{self, BiasParams, GatherParams, GemmParams, StepSlot, WorkLayout, SLOT};
use super::{fill_words, mib, GpuBackend};
use crate::backend::curvature::{check_hvp_request, Curvature};
use crate::backend::DataHandle;
use crate::error::{LabError, Result};
use crate::model::{Activation, Layout};

fn u(x: usize) -> u32 {
    u32::try_from(x).expect("sizes are checked against the device limits before use")
}

/// The HVP's work buffer: the primal regions of [`WorkLayout`] followed by the tangents
/// `racts[l]` = R(a_l) (l ≥ 1; `racts[0]` is unused, R(input) = 0) and `rdeltas[l]` = R(δ_l).
#[derive(Clone, Debug)]
pub(crate) struct HvpLayout {
    pub wl: WorkLayout,
    pub racts: Vec<usize>,
    pub rdeltas: Vec<usize>,
    pub total: usize,
}

impl HvpLayout {
    pub fn new(layout: &Layout, k: usize, mb: usize) -> Self {
        let wl = WorkLayout::new(layout, k, mb);
        let mut at = wl.total;
        let mut racts = vec![usize::MAX];
        for &w in &layout.widths[1..] {
            racts.push(at);
            at += k * mb * w;
        }
        let mut rdeltas = Vec::new();
        for &w in &layout.widths[1..] {
            rdeltas.push(at);
            at += k * mb * w;
        }
        HvpLayout { wl, racts, rdeltas, total: at }
    }

    /// Floats per example row of one model.
    pub fn floats_per_row(layout: &Layout) -> usize {
        WorkLayout::floats_per_row(layout) + 2 * layout.hidden_and_output_units()
    }
}

/// `RSoftmaxParams` of r_softmax.wgsl.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct RSoftmaxParams {
    pub k: u32, pub rows: u32, pub classes: u32, pub mb: u32,
    pub logits_off: u32, pub rlogits_off: u32, pub delta_off: u32, pub rdelta_off: u32,
    pub scale: f32, pub _pad: [u32; 3],
}

/// GPU buffers of the HVP, made on first use and remade when the chunk size changes.
pub(crate) struct HvpBuffers {
    mb: usize,
    hl: HvpLayout,
    work: wgpu::Buffer,
    v: wgpu::Buffer,
    out: wgpu::Buffer,
    labels: wgpu::Buffer,
}

impl HvpBuffers {
    /// Every buffer held (for [`GpuBackend::buffer_bytes`]).
    pub(crate) fn buffers(&self) -> [&wgpu::Buffer; 4] {
        [&self.work, &self.v, &self.out, &self.labels]
    }
}

/// Which buffer a GEMM reads as its `params` binding (B operand and bias): the weights or the vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Params,
    V,
}

/// One dispatch of a chunk's program. (A few dozen per program: their size does not matter.)
#[derive(Clone, Copy, Debug)]
#[allow(clippy::large_enum_variant)]
enum Op {
    Gather(GatherParams),
    Gemm(GemmParams, Src),
    RSoftmax(RSoftmaxParams),
    Bias(BiasParams),
}

impl Op {
    fn bytes(&self) -> &[u8] {
        match self {
            Op::Gather(g) => bytemuck::bytes_of(g),
            Op::Gemm(g, _) => bytemuck::bytes_of(g),
            Op::RSoftmax(r) => bytemuck::bytes_of(r),
            Op::Bias(b) => bytemuck::bytes_of(b),
        }
    }
}

/// The dispatches of one chunk of `rows` rows; `first`: the chunk stores its weight and bias blocks
/// instead of adding them to the previous chunks'.
#[allow(clippy::too_many_arguments)]
fn program(layout: &Layout, k: usize, hl: &HvpLayout, rows: usize, first: bool, scale: f32, data: (u32, u32, u32, u32)) -> Vec<Op> {
    let p = layout.params_per_model;
    let (mb, wl) = (hl.wl.mb, &hl.wl);
    let layers = layout.layers.len();
    let (dim, wpr, format, norm_off) = data;
    let mut ops = vec![Op::Gather(GatherParams {
        k: u(k), rows: u(rows), dim, words_per_row: wpr, format, norm_off, _pad2: 0, mb: u(mb),
        contiguous: 1, x_off: u(wl.acts[0]), _pad: [0; 2],
    })];
    // Primal forward pass.
    for (l, lo) in layout.layers.iter().enumerate() {
        ops.push(Op::Gemm(params::gemm_forward(lo, p, wl, l, rows, layout.activation_after(l)), Src::Params));
    }
    // Tangent forward: R(a_l) = act'(a_l) ⊙ (R(a_{l-1})·Wᵀ + a_{l-1}·Vᵀ + Vb).
    for (l, lo) in layout.layers.iter().enumerate() {
        let fwd = params::gemm_forward(lo, p, wl, l, rows, layout.activation_after(l));
        if l > 0 {
            let g = GemmParams { a_base: u(hl.racts[l]), c_base: u(hl.racts[l + 1]), epilogue: 0, ..fwd };
            ops.push(Op::Gemm(g, Src::Params));
        }
        let g = GemmParams {
            c_base: u(hl.racts[l + 1]),
            epilogue: if l == 0 { 3 } else { 4 },
            aux_base: u(wl.acts[l + 1]),
            aux_ms: u(mb * lo.fan_out),
            aux2_base: u(lo.b),
            aux2_ms: u(p),
            ..fwd
        };
        ops.push(Op::Gemm(g, Src::V));
    }
    ops.push(Op::RSoftmax(RSoftmaxParams {
        k: u(k), rows: u(rows), classes: u(layout.classes()), mb: u(mb),
        logits_off: u(wl.acts[layers]), rlogits_off: u(hl.racts[layers]),
        delta_off: u(wl.deltas[layers - 1]), rdelta_off: u(hl.rdeltas[layers - 1]),
        scale, _pad: [0; 3],
    }));
    // Tangent backward, from the last layer down.
    for l in (0..layers).rev() {
        let lo = &layout.layers[l];
        let wg = params::gemm_weight_grad(lo, p, wl, l, rows);
        // R(∇W_l) = R(δ_l)ᵀ·a_{l-1} (+ δ_lᵀ·R(a_{l-1}))
        ops.push(Op::Gemm(GemmParams { a_base: u(hl.rdeltas[l]), epilogue: if first { 0 } else { 7 }, ..wg }, Src::Params));
        if l > 0 {
            ops.push(Op::Gemm(GemmParams { b_base: u(hl.racts[l]), epilogue: 7, ..wg }, Src::Params));
            let act = layout.activation_after(l - 1);
            let ig = params::gemm_input_grad(lo, p, wl, l, rows, act);
            ops.push(Op::Gemm(ig, Src::Params)); // primal δ_{l-1}
            let rd = u(hl.rdeltas[l - 1]);
            let tanh = act == Activation::Tanh;
            if tanh {
                // (δ_l·W_l) ⊙ (−2a·R(a))
                let g = GemmParams { c_base: rd, epilogue: 6, aux2_base: u(hl.racts[l]), aux2_ms: u(mb * lo.fan_in), ..ig };
                ops.push(Op::Gemm(g, Src::Params));
            }
            // + R(δ_l)·W_l ⊙ act'(a), + δ_l·V_l ⊙ act'(a)
            ops.push(Op::Gemm(GemmParams { a_base: u(hl.rdeltas[l]), c_base: rd, epilogue: if tanh { 5 } else { 2 }, ..ig }, Src::Params));
            ops.push(Op::Gemm(GemmParams { c_base: rd, epilogue: 5, ..ig }, Src::V));
        }
    }
    let mut b = params::bias(layout, wl, k, rows);
    for l in 0..layers {
        b.table[l][0] = u(hl.rdeltas[l]);
    }
    b.accumulate = (!first) as u32;
    ops.push(Op::Bias(b));
    ops
}

impl GpuBackend {
    /// Makes (or keeps) the HVP buffers for chunks of `mb` rows, refusing sizes beyond the device limits.
    fn ensure_hvp_buffers(&mut self, count: usize) -> Result<()> {
        let (k, p) = (self.k, self.layout.params_per_model);
        let limits = self.ctx.limits();
        let bind_limit = limits.max_storage_buffer_binding_size;
        let per_row = HvpLayout::floats_per_row(&self.layout) as u64 * 4 * k as u64;
        let fit = (bind_limit / per_row) as usize;
        if fit == 0 {
            return Err(LabError::Gpu(format!(
                "one example row of {k} models needs {:.1} MiB of activations and tangents for the Hessian, more than \
                 max_storage_buffer_binding_size ({:.0} MiB); use fewer models or narrower layers",
                mib(per_row), mib(bind_limit)
            )));
        }
        let mb = self.max_batch.min(count).min(fit);
        if self.hvp.as_ref().is_some_and(|b| b.mb == mb) {
            return Ok(());
        }
        let hl = HvpLayout::new(&self.layout, k, mb);
        if hl.total > u32::MAX as usize / 2 {
            return Err(LabError::Gpu("the Hessian work buffer is too large for 32-bit indices; use a smaller max_batch".into()));
        }
        let ctx = &self.ctx;
        let work = ctx.storage("hvp work (primal + tangent)", hl.total as u64 * 4);
        fill_words(ctx, &work, hl.total, f32::NAN.to_bits());
        let bufs = HvpBuffers {
            mb,
            work,
            v: ctx.storage("hvp vectors", (k * p * 4) as u64),
            out: ctx.storage("hvp result", (k * p * 4) as u64),
            labels: ctx.storage("hvp labels", (k * mb * 4) as u64),
            hl,
        };
        self.hvp = Some(bufs);
        Ok(())
    }
}

impl Curvature for GpuBackend {
    async fn hvp(&mut self, data: DataHandle, start: usize, count: usize, v: &[f32]) -> Result<Vec<f32>> {
        let (k, p) = (self.k, self.layout.params_per_model);
        let d = self.data(data)?;
        check_hvp_request(k, p, d.n, start, count, v.len())?;
        let dinfo = (u(d.dim), u(d.words_per_row), d.format, u(d.n * d.words_per_row));
        self.ensure_hvp_buffers(count)?;
        let ctx = &self.ctx;
        let b = self.hvp.as_ref().expect("made above");
        let mb = b.mb;
        let chunks = count.div_ceil(mb);
        let last_rows = count - (chunks - 1) * mb;
        let scale = 1.0 / count as f32;
        // One program per distinct (rows, first) among the chunks.
        let mut keys: Vec<(usize, bool)> = Vec::new();
        let chunk_key: Vec<usize> = (0..chunks)
            .map(|c| {
                let key = (if c + 1 == chunks { last_rows } else { mb }, c == 0);
                keys.iter().position(|&x| x == key).unwrap_or_else(|| {
                    keys.push(key);
                    keys.len() - 1
                })
            })
            .collect();
        let programs: Vec<Vec<Op>> = keys.iter().map(|&(rows, first)| program(&self.layout, k, &b.hl, rows, first, scale, dinfo)).collect();
        // Every op's uniforms at its own 256-byte-aligned offset.
        let mut offsets: Vec<Vec<u64>> = Vec::new();
        let mut at = 0u64;
        for prog in &programs {
            offsets.push(prog.iter().map(|op| {
                let o = at;
                at += (op.bytes().len() as u64).next_multiple_of(SLOT);
                o
            }).collect());
        }
        let statics = ctx.uniform("hvp uniforms", at);
        let mut bytes = vec![0u8; at as usize];
        for (prog, offs) in programs.iter().zip(&offsets) {
            for (op, &o) in prog.iter().zip(offs) {
                bytes[o as usize..o as usize + op.bytes().len()].copy_from_slice(op.bytes());
            }
        }
        ctx.queue.write_buffer(&statics, 0, &bytes);
        let slots = ctx.uniform("hvp chunk slots", chunks as u64 * SLOT);
        let slot_list: Vec<StepSlot> = (0..chunks).map(|c| StepSlot { step_local: c as u32, step_global: 0, base: (start + c * mb) as u32, _pad: 0 }).collect();
        ctx.queue.write_buffer(&slots, 0, &params::slot_bytes(&slot_list));
        ctx.queue.write_buffer(&b.v, 0, bytemuck::cast_slice(v));
        fill_words(ctx, &b.out, k * p, f32::NAN.to_bits());

        let kn = &ctx.kernels;
        let gd = &self.datasets[data.0];
        let bind_groups: Vec<Vec<wgpu::BindGroup>> = programs
            .iter()
            .zip(&offsets)
            .map(|(prog, offs)| {
                prog.iter()
                    .zip(offs)
                    .map(|(op, &o)| {
                        let size = Some(op.bytes().len() as u64);
                        match op {
                            Op::Gather(_) => ctx.bind_group(
                                "hvp gather",
                                &kn.gather,
                                &[(&statics, o, size), (&slots, 0, Some(16)), (&gd.words, 0, None), (&gd.labels, 0, None), (&self.grow.indices, 0, None), (&b.work, 0, None), (&b.labels, 0, None)],
                            ),
                            Op::Gemm(_, src) => {
                                let bsrc = if *src == Src::V { &b.v } else { &self.params };
                                ctx.bind_group("hvp gemm", &kn.gemm, &[(&statics, o, size), (bsrc, 0, None), (&b.work, 0, None), (&b.out, 0, None)])
                            }
                            Op::RSoftmax(_) => ctx.bind_group("hvp r_softmax", &kn.r_softmax, &[(&statics, o, size), (&b.work, 0, None), (&b.labels, 0, None)]),
                            Op::Bias(_) => ctx.bind_group("hvp bias", &kn.bias, &[(&statics, o, size), (&b.work, 0, None), (&b.out, 0, None)]),
                        }
                    })
                    .collect()
            })
            .collect();
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("hvp") });
        {
            let pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("hvp"), timestamp_writes: None });
            let mut rec = Recorder::new(pass, ctx);
            for (c, &key) in chunk_key.iter().enumerate() {
                let rows = keys[key].0;
                for (op, bg) in programs[key].iter().zip(&bind_groups[key]) {
                    match op {
                        Op::Gather(g) => rec.flat(&kn.gather, bg, &[(c as u64 * SLOT) as u32], k * rows * g.dim as usize),
                        Op::Gemm(g, _) => rec.grid(&kn.gemm, bg, &[], params::gemm_grid(g, k)),
                        Op::RSoftmax(_) => rec.flat(&kn.r_softmax, bg, &[], k * rows),
                        Op::Bias(bp) => rec.grid(&kn.bias, bg, &[], flat_grid(k * bp.total as usize)),
                    }
                }
            }
        }
        ctx.queue.submit([enc.finish()]);
        let out = ctx.read_back(&[(&b.out, 0, (k * p * 4) as u64)]).await?;
        Ok(bytemuck::cast_slice(&out[0]).to_vec())
    }
}
