//! The uniform structs shared with the shaders (same field order as the WGSL structs) and the
//! builders that place every operand. The backend and the kernel test runners both use these
//! builders, so the tests exercise the addressing the backend really uses.

use crate::model::{Activation, LayerOffsets, Layout};

/// Uniform slots are placed at multiples of this (WebGPU's `minUniformBufferOffsetAlignment` default).
pub(crate) const SLOT: u64 = 256;
/// Divergence flag of a healthy model (`HEALTHY` of `shaders/common/divergence.wgsl`).
pub(crate) const HEALTHY: u32 = u32::MAX;
/// GEMM tile edge (rows and columns of C per workgroup), see `shaders/gemm.wgsl`.
pub(crate) const GEMM_TILE: usize = 64;
/// Entries of the bias kernel's layer table (`MAX_LAYERS` of the model module).
pub(crate) const MAX_TABLE: usize = 64;

/// Per-step uniform slot (`StepSlot` of `shaders/common/step_slot.wgsl`, read by gather.wgsl and
/// softmax_ce.wgsl), one per 256 bytes.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct StepSlot {
    pub step_local: u32,
    pub step_global: u32,
    pub base: u32,
    pub _pad: u32,
}

/// Packs slots at 256-byte strides for the dynamic-offset uniform buffer.
pub(crate) fn slot_bytes(slots: &[StepSlot]) -> Vec<u8> {
    let mut out = vec![0u8; slots.len() * SLOT as usize];
    for (i, s) in slots.iter().enumerate() {
        out[i * SLOT as usize..i * SLOT as usize + 16].copy_from_slice(bytemuck::bytes_of(s));
    }
    out
}

/// `GemmParams` of gemm.wgsl.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct GemmParams {
    pub m: u32, pub n: u32, pub k: u32,
    pub a_base: u32, pub a_ms: u32, pub a_rs: u32, pub a_cs: u32,
    pub b_base: u32, pub b_ms: u32, pub b_rs: u32, pub b_cs: u32,
    pub c_base: u32, pub c_ms: u32, pub c_rs: u32, pub c_cs: u32,
    pub aux_base: u32, pub aux_ms: u32,
    pub epilogue: u32, pub act: u32, pub b_src: u32, pub c_dst: u32,
    pub aux2_base: u32, pub aux2_ms: u32, pub _pad: u32,
}

/// Where the activations and deltas of K models live inside the `work` buffer.
/// Region `acts[l]` holds `K × mb × widths[l]` (layer l's output; `acts[0]` is the input),
/// `deltas[l]` holds `K × mb × widths[l+1]` (gradient w.r.t. layer l's pre-activation).
/// Rows of a model are `mb` (= max_batch) apart whatever the batch, so offsets never change.
#[derive(Clone, Debug)]
pub(crate) struct WorkLayout {
    pub acts: Vec<usize>,
    pub deltas: Vec<usize>,
    pub total: usize,
    pub mb: usize,
}

impl WorkLayout {
    pub fn new(layout: &Layout, k: usize, mb: usize) -> Self {
        let mut at = 0;
        let mut acts = Vec::new();
        for &w in &layout.widths {
            acts.push(at);
            at += k * mb * w;
        }
        let mut deltas = Vec::new();
        for &w in &layout.widths[1..] {
            deltas.push(at);
            at += k * mb * w;
        }
        WorkLayout { acts, deltas, total: at, mb }
    }

    /// Floats `work` needs per example row of every model (for the size check).
    pub fn floats_per_row(layout: &Layout) -> usize {
        layout.widths.iter().sum::<usize>() + layout.hidden_and_output_units()
    }
}

fn u(x: usize) -> u32 {
    u32::try_from(x).expect("sizes are checked against the device limits before use")
}

/// The GEMM grid for a product with `m` rows and `n` columns for `k_models` models.
pub(crate) fn gemm_grid(p: &GemmParams, k_models: usize) -> [u32; 3] {
    [(p.n as usize).div_ceil(GEMM_TILE) as u32, (p.m as usize).div_ceil(GEMM_TILE) as u32, k_models as u32]
}

/// Forward product of layer `l`: `acts[l+1] = act(acts[l] · Wᵀ + b)` (M = rows, K = fan_in, N = fan_out).
pub(crate) fn gemm_forward(lo: &LayerOffsets, p: usize, wl: &WorkLayout, l: usize, rows: usize, act: Activation) -> GemmParams {
    let (fi, fo, mb) = (lo.fan_in, lo.fan_out, wl.mb);
    GemmParams {
        m: u(rows), n: u(fo), k: u(fi),
        a_base: u(wl.acts[l]), a_ms: u(mb * fi), a_rs: u(fi), a_cs: 1,
        // B[k][n] = W[n][k]
        b_base: u(lo.w), b_ms: u(p), b_rs: 1, b_cs: u(fi),
        c_base: u(wl.acts[l + 1]), c_ms: u(mb * fo), c_rs: u(fo), c_cs: 1,
        aux_base: u(lo.b), aux_ms: u(p),
        epilogue: 1, act: act.code(), b_src: 0, c_dst: 0,
        aux2_base: 0, aux2_ms: 0, _pad: 0,
    }
}

/// Input gradient of layer `l ≥ 1`: `deltas[l-1] = (deltas[l] · W) ⊙ act'(acts[l])` (M = rows, K = fan_out, N = fan_in).
pub(crate) fn gemm_input_grad(lo: &LayerOffsets, p: usize, wl: &WorkLayout, l: usize, rows: usize, act: Activation) -> GemmParams {
    let (fi, fo, mb) = (lo.fan_in, lo.fan_out, wl.mb);
    GemmParams {
        m: u(rows), n: u(fi), k: u(fo),
        a_base: u(wl.deltas[l]), a_ms: u(mb * fo), a_rs: u(fo), a_cs: 1,
        b_base: u(lo.w), b_ms: u(p), b_rs: u(fi), b_cs: 1,
        c_base: u(wl.deltas[l - 1]), c_ms: u(mb * fi), c_rs: u(fi), c_cs: 1,
        // the stored output of layer l-1 (= input of layer l), same shape as C
        aux_base: u(wl.acts[l]), aux_ms: u(mb * fi),
        epilogue: 2, act: act.code(), b_src: 0, c_dst: 0,
        aux2_base: 0, aux2_ms: 0, _pad: 0,
    }
}

/// Weight gradient of layer `l`: `dW = deltas[l]ᵀ · acts[l]` into `grads` (M = fan_out, K = rows, N = fan_in).
pub(crate) fn gemm_weight_grad(lo: &LayerOffsets, p: usize, wl: &WorkLayout, l: usize, rows: usize) -> GemmParams {
    let (fi, fo, mb) = (lo.fan_in, lo.fan_out, wl.mb);
    GemmParams {
        m: u(fo), n: u(fi), k: u(rows),
        // A[i][k] = δ[k][i]
        a_base: u(wl.deltas[l]), a_ms: u(mb * fo), a_rs: 1, a_cs: u(fo),
        b_base: u(wl.acts[l]), b_ms: u(mb * fi), b_rs: u(fi), b_cs: 1,
        c_base: u(lo.w), c_ms: u(p), c_rs: u(fi), c_cs: 1,
        aux_base: 0, aux_ms: 0,
        epilogue: 0, act: 0, b_src: 1, c_dst: 1,
        aux2_base: 0, aux2_ms: 0, _pad: 0,
    }
}

/// `GatherParams` of gather.wgsl.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct GatherParams {
    pub k: u32, pub rows: u32, pub dim: u32, pub words_per_row: u32,
    pub format: u32, pub norm_off: u32, pub _pad2: u32, pub mb: u32,
    pub contiguous: u32, pub x_off: u32, pub _pad: [u32; 2],
}

/// Softmax modes (see softmax_ce.wgsl).
pub(crate) mod mode {
    pub const TRAIN: u32 = 0;
    pub const EVAL: u32 = 1;
    pub const GRAD: u32 = 2;
}

/// `SoftmaxParams` of softmax_ce.wgsl.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct SoftmaxParams {
    pub k: u32, pub rows: u32, pub classes: u32, pub mb: u32,
    pub logits_off: u32, pub dlogits_off: u32, pub mode: u32, pub threshold: f32,
}

pub(crate) fn softmax(layout: &Layout, wl: &WorkLayout, k: usize, rows: usize, mode: u32, threshold: f32) -> SoftmaxParams {
    let last = layout.layers.len() - 1;
    SoftmaxParams {
        k: u(k), rows: u(rows), classes: u(layout.classes()), mb: u(wl.mb),
        logits_off: u(wl.acts[last + 1]), dlogits_off: u(wl.deltas[last]), mode, threshold,
    }
}

/// `BiasParams` of bias_grad.wgsl.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct BiasParams {
    pub k: u32, pub rows: u32, pub mb: u32, pub p: u32,
    pub layers: u32, pub total: u32, pub accumulate: u32, pub _pad: u32,
    pub table: [[u32; 4]; MAX_TABLE],
}

pub(crate) fn bias(layout: &Layout, wl: &WorkLayout, k: usize, rows: usize) -> BiasParams {
    let mut table = [[0u32; 4]; MAX_TABLE];
    let mut cum = 0;
    for (l, lo) in layout.layers.iter().enumerate() {
        table[l] = [u(wl.deltas[l]), u(lo.fan_out), u(lo.b), u(cum)];
        cum += lo.fan_out;
    }
    BiasParams {
        k: u(k), rows: u(rows), mb: u(wl.mb), p: u(layout.params_per_model),
        layers: u(layout.layers.len()), total: u(cum), accumulate: 0, _pad: 0, table,
    }
}

/// `ElementwiseParams` of `shaders/common/elementwise.wgsl`: the uniform of sgd.wgsl and perturb.wgsl,
/// one thread per parameter of K models.
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct ElementwiseParams {
    pub total: u32,
    pub p: u32,
    pub _pad: [u32; 2],
}

/// `PeakParams` of peak_fma.wgsl (the FMA-peak probe of `throughput.rs`).
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct PeakParams {
    pub iterations: u32,
    pub threads: u32,
    pub mul: f32,
    pub add: f32,
}
