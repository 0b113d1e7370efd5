//! The kernel test harness: each kernel run alone on given inputs, for the parity tests
//! (`tests/gpu_parity.rs`, `tests/landscape_gpu.rs`).
//!
//! Every runner builds fresh buffers, pre-fills the outputs with NaN (so an element the kernel fails to
//! write cannot pass a comparison), places operands with the **same** builders the backend uses
//! (`params.rs`), dispatches once and reads the outputs back. Tensors are given model after model,
//! rows dense (`K × rows × width`); weights as `K × fan_out × fan_in`.

use super::context::{GpuContext, Kernel, Recorder};
use super::shaders::Bind;
use super::params::{self, ElementwiseParams, GatherParams, StepSlot, WorkLayout};
use crate::backend::Hyper;
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::{Activation, Layout};

/// One kernel argument, in binding order.
enum Arg<'a> {
    /// Uniform contents (a dynamic-offset uniform is bound at offset 0).
    Uniform(&'a [u8]),
    /// Read-only storage contents.
    Read(&'a [u8]),
    /// Read-write storage contents; read back after the dispatch.
    Rw(&'a [u8]),
}

async fn run_alone(ctx: &GpuContext, kernel: &Kernel, args: &[Arg<'_>], grid: [u32; 3]) -> Result<Vec<Vec<u8>>> {
    let buffers: Vec<(wgpu::Buffer, u64)> = args
        .iter()
        .map(|a| match a {
            Arg::Uniform(b) => {
                let u = ctx.uniform("test uniform", b.len() as u64);
                ctx.queue.write_buffer(&u, 0, b);
                (u, b.len() as u64)
            }
            Arg::Read(b) | Arg::Rw(b) => (ctx.storage_init("test storage", b), b.len() as u64),
        })
        .collect();
    let ranges: Vec<(&wgpu::Buffer, u64, Option<u64>)> = buffers.iter().map(|(b, _)| (b, 0, None)).collect();
    let bg = ctx.bind_group("kernel test", kernel, &ranges);
    let offsets: Vec<u32> = kernel.binds.iter().filter(|b| matches!(b, Bind::UniformDyn(_))).map(|_| 0).collect();
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kernel test") });
    {
        let pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        let mut rec = Recorder::new(pass, ctx);
        rec.grid(kernel, &bg, &offsets, grid);
    }
    ctx.queue.submit([enc.finish()]);
    if let Some(e) = scope.pop().await {
        return Err(LabError::Gpu(format!("kernel test dispatch failed: {e}")));
    }
    let parts: Vec<(&wgpu::Buffer, u64, u64)> =
        args.iter().zip(&buffers).filter(|(a, _)| matches!(a, Arg::Rw(_))).map(|(_, (b, n))| (b, 0, *n)).collect();
    ctx.read_back(&parts).await
}

fn floats(b: &[u8]) -> Vec<f32> {
    bytemuck::cast_slice(b).to_vec()
}

fn words(b: &[u8]) -> Vec<u32> {
    bytemuck::cast_slice(b).to_vec()
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(LabError::Backend(format!("{what}: expected {want} values, got {got}")));
    }
    Ok(())
}

/// `K × P` parameters with layer `l`'s weights (`K × fan_out × fan_in`) and optional biases placed by `layout`.
fn place_params(layout: &Layout, k: usize, l: usize, w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let (p, lo) = (layout.params_per_model, layout.layers[l]);
    let nw = lo.fan_in * lo.fan_out;
    let mut out = vec![0f32; k * p];
    for m in 0..k {
        out[m * p + lo.w..m * p + lo.w + nw].copy_from_slice(&w[m * nw..(m + 1) * nw]);
        if let Some(b) = b {
            out[m * p + lo.b..m * p + lo.b + lo.fan_out].copy_from_slice(&b[m * lo.fan_out..(m + 1) * lo.fan_out]);
        }
    }
    out
}

fn region(work: &mut [f32], at: usize, values: &[f32]) {
    work[at..at + values.len()].copy_from_slice(values);
}

fn nan_work(wl: &WorkLayout) -> Vec<f32> {
    vec![f32::NAN; wl.total]
}

/// Forward GEMM with epilogue: `y = act(x · Wᵀ + b)` for K models (`x`: K×rows×fan_in, `w`: K×fan_out×fan_in,
/// `b`: K×fan_out); returns `y` (K×rows×fan_out).
#[allow(clippy::too_many_arguments)]
pub async fn gemm_forward(ctx: &GpuContext, act: Activation, k: usize, rows: usize, fan_in: usize, fan_out: usize, x: &[f32], w: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    check_len("x", x.len(), k * rows * fan_in)?;
    check_len("w", w.len(), k * fan_in * fan_out)?;
    check_len("b", b.len(), k * fan_out)?;
    let layout = Layout::new(&[fan_in, fan_out], act);
    let wl = WorkLayout::new(&layout, k, rows);
    let g = params::gemm_forward(&layout.layers[0], layout.params_per_model, &wl, 0, rows, act);
    let mut work = nan_work(&wl);
    region(&mut work, wl.acts[0], x);
    let p = place_params(&layout, k, 0, w, Some(b));
    let grads = vec![f32::NAN; 1];
    let out = run_alone(ctx, &ctx.kernels.gemm, &[Arg::Uniform(bytemuck::bytes_of(&g)), Arg::Read(bytemuck::cast_slice(&p)), Arg::Rw(bytemuck::cast_slice(&work)), Arg::Rw(bytemuck::cast_slice(&grads))], params::gemm_grid(&g, k)).await?;
    let work = floats(&out[0]);
    Ok(work[wl.acts[1]..wl.acts[1] + k * rows * fan_out].to_vec())
}

/// Input-gradient GEMM with the slope epilogue: `δ_prev = (δ · W) ⊙ act'(a)` (`delta`: K×rows×fan_out,
/// `w`: K×fan_out×fan_in, `a`: the stored layer input, K×rows×fan_in); returns `δ_prev` (K×rows×fan_in).
#[allow(clippy::too_many_arguments)]
pub async fn gemm_input_grad(ctx: &GpuContext, act: Activation, k: usize, rows: usize, fan_in: usize, fan_out: usize, delta: &[f32], w: &[f32], a: &[f32]) -> Result<Vec<f32>> {
    check_len("delta", delta.len(), k * rows * fan_out)?;
    check_len("w", w.len(), k * fan_in * fan_out)?;
    check_len("a", a.len(), k * rows * fan_in)?;
    // The product belongs to layer 1 of a 1 → fan_in → fan_out net (layer 0 only provides the regions).
    let layout = Layout::new(&[1, fan_in, fan_out], act);
    let wl = WorkLayout::new(&layout, k, rows);
    let g = params::gemm_input_grad(&layout.layers[1], layout.params_per_model, &wl, 1, rows, act);
    let mut work = nan_work(&wl);
    region(&mut work, wl.acts[1], a);
    region(&mut work, wl.deltas[1], delta);
    let p = place_params(&layout, k, 1, w, None);
    let grads = vec![f32::NAN; 1];
    let out = run_alone(ctx, &ctx.kernels.gemm, &[Arg::Uniform(bytemuck::bytes_of(&g)), Arg::Read(bytemuck::cast_slice(&p)), Arg::Rw(bytemuck::cast_slice(&work)), Arg::Rw(bytemuck::cast_slice(&grads))], params::gemm_grid(&g, k)).await?;
    let work = floats(&out[0]);
    Ok(work[wl.deltas[0]..wl.deltas[0] + k * rows * fan_in].to_vec())
}

/// Weight-gradient GEMM: `dW = δᵀ · x` (`delta`: K×rows×fan_out, `x`: K×rows×fan_in); returns `dW` (K×fan_out×fan_in).
pub async fn gemm_weight_grad(ctx: &GpuContext, k: usize, rows: usize, fan_in: usize, fan_out: usize, delta: &[f32], x: &[f32]) -> Result<Vec<f32>> {
    check_len("delta", delta.len(), k * rows * fan_out)?;
    check_len("x", x.len(), k * rows * fan_in)?;
    let layout = Layout::new(&[fan_in, fan_out], Activation::Linear);
    let wl = WorkLayout::new(&layout, k, rows);
    let p = layout.params_per_model;
    let g = params::gemm_weight_grad(&layout.layers[0], p, &wl, 0, rows);
    let mut work = nan_work(&wl);
    region(&mut work, wl.acts[0], x);
    region(&mut work, wl.deltas[0], delta);
    let params = vec![0f32; k * p];
    let grads = vec![f32::NAN; k * p];
    let out = run_alone(ctx, &ctx.kernels.gemm, &[Arg::Uniform(bytemuck::bytes_of(&g)), Arg::Read(bytemuck::cast_slice(&params)), Arg::Rw(bytemuck::cast_slice(&work)), Arg::Rw(bytemuck::cast_slice(&grads))], params::gemm_grid(&g, k)).await?;
    let grads = floats(&out[1]);
    let nw = fan_in * fan_out;
    Ok((0..k).flat_map(|m| grads[m * p..m * p + nw].to_vec()).collect())
}

/// Inputs of [`softmax_ce`].
#[derive(Clone, Debug)]
pub struct SoftmaxCase {
    /// Models K.
    pub k: usize,
    /// Rows per model.
    pub rows: usize,
    /// Classes C.
    pub classes: usize,
    /// Logits, K × rows × C.
    pub logits: Vec<f32>,
    /// Labels, K × rows.
    pub labels: Vec<u32>,
    /// Divergence flags before the dispatch (`u32::MAX` = healthy), K.
    pub flags: Vec<u32>,
    /// Divergence threshold.
    pub threshold: f32,
    /// Step number recorded in a flag set by this dispatch.
    pub step: u32,
}

/// Outputs of [`softmax_ce`].
#[derive(Clone, Debug)]
pub struct SoftmaxOut {
    /// `(softmax − onehot) / rows`, K × rows × C.
    pub dlogits: Vec<f32>,
    /// Per-row loss, K × rows.
    pub row_loss: Vec<f32>,
    /// Per-row correct flag (arg-max, first on ties, equals the label), K × rows.
    pub row_correct: Vec<u32>,
    /// Training record: each model's mean loss (NaN for a model already diverged), K.
    pub losses: Vec<f32>,
    /// Divergence flags after the dispatch, K.
    pub flags: Vec<u32>,
}

/// Fused softmax cross-entropy in training mode (dlogits, per-row loss and correct flag, per-model mean
/// loss record and divergence flag).
pub async fn softmax_ce(ctx: &GpuContext, case: &SoftmaxCase) -> Result<SoftmaxOut> {
    let (k, rows, c) = (case.k, case.rows, case.classes);
    check_len("logits", case.logits.len(), k * rows * c)?;
    check_len("labels", case.labels.len(), k * rows)?;
    check_len("flags", case.flags.len(), k)?;
    let layout = Layout::new(&[c, c], Activation::Linear);
    let wl = WorkLayout::new(&layout, k, rows);
    let s = params::softmax(&layout, &wl, k, rows, params::mode::TRAIN, case.threshold);
    let slot = StepSlot { step_local: 0, step_global: case.step, base: 0, _pad: 0 };
    let mut work = nan_work(&wl);
    region(&mut work, wl.acts[1], &case.logits);
    let nan_k = vec![f32::NAN; k * rows];
    let out = run_alone(
        ctx,
        &ctx.kernels.softmax,
        &[
            Arg::Uniform(bytemuck::bytes_of(&s)),
            Arg::Uniform(bytemuck::bytes_of(&slot)),
            Arg::Rw(bytemuck::cast_slice(&work)),
            Arg::Read(bytemuck::cast_slice(&case.labels)),
            Arg::Rw(bytemuck::cast_slice(&nan_k)),
            Arg::Rw(bytemuck::cast_slice(&vec![u32::MAX; k * rows])),
            Arg::Rw(bytemuck::cast_slice(&vec![f32::NAN; k])),
            Arg::Rw(bytemuck::cast_slice(&case.flags)),
            Arg::Rw(bytemuck::cast_slice(&vec![u32::MAX; 2 * k])),
        ],
        [k as u32, 1, 1],
    )
    .await?;
    let work = floats(&out[0]);
    Ok(SoftmaxOut {
        dlogits: work[wl.deltas[0]..wl.deltas[0] + k * rows * c].to_vec(),
        row_loss: floats(&out[1]),
        row_correct: words(&out[2]),
        losses: floats(&out[3]),
        flags: words(&out[4]),
    })
}

/// Bias gradients of every layer of `layout` from the deltas (`deltas[l]`: K × rows × widths[l+1]);
/// returns the `K × P` gradient buffer, in which only the bias entries are written (the rest stay NaN).
pub async fn bias_grad(ctx: &GpuContext, layout: &Layout, k: usize, rows: usize, deltas: &[Vec<f32>]) -> Result<Vec<f32>> {
    check_len("deltas (layers)", deltas.len(), layout.layers.len())?;
    let wl = WorkLayout::new(layout, k, rows);
    let mut work = nan_work(&wl);
    for (l, d) in deltas.iter().enumerate() {
        check_len("delta", d.len(), k * rows * layout.widths[l + 1])?;
        region(&mut work, wl.deltas[l], d);
    }
    let bp = params::bias(layout, &wl, k, rows);
    let grads = vec![f32::NAN; k * layout.params_per_model];
    let items = k * layout.widths[1..].iter().sum::<usize>();
    let out = run_alone(ctx, &ctx.kernels.bias, &[Arg::Uniform(bytemuck::bytes_of(&bp)), Arg::Read(bytemuck::cast_slice(&work)), Arg::Rw(bytemuck::cast_slice(&grads))], super::context::flat_grid(items)).await?;
    Ok(floats(&out[0]))
}

/// One SGD update of K models of P parameters; returns the new `(params, velocity)`.
#[allow(clippy::too_many_arguments)]
pub async fn sgd(ctx: &GpuContext, k: usize, p: usize, params: &[f32], velocity: &[f32], grads: &[f32], hyper: &[Hyper], flags: &[u32]) -> Result<(Vec<f32>, Vec<f32>)> {
    for (what, n) in [("params", params.len()), ("velocity", velocity.len()), ("grads", grads.len())] {
        check_len(what, n, k * p)?;
    }
    check_len("hyper", hyper.len(), k)?;
    check_len("flags", flags.len(), k)?;
    let u = ElementwiseParams { total: (k * p) as u32, p: p as u32, _pad: [0; 2] };
    let out = run_alone(
        ctx,
        &ctx.kernels.sgd,
        &[
            Arg::Uniform(bytemuck::bytes_of(&u)),
            Arg::Rw(bytemuck::cast_slice(params)),
            Arg::Rw(bytemuck::cast_slice(velocity)),
            Arg::Read(bytemuck::cast_slice(grads)),
            Arg::Read(bytemuck::cast_slice(hyper)),
            Arg::Read(bytemuck::cast_slice(flags)),
        ],
        super::context::flat_grid(k * p),
    )
    .await?;
    Ok((floats(&out[0]), floats(&out[1])))
}

/// The landscape perturbation (`perturb.wgsl`) alone: `out[k] = (c0_k·base + c1_k·d1) + c2_k·d2` for K models
/// of P parameters (`coeffs`: K triples). The output is NaN-prefilled.
pub async fn perturb(ctx: &GpuContext, k: usize, p: usize, base: &[f32], d1: &[f32], d2: &[f32], coeffs: &[[f32; 3]]) -> Result<Vec<f32>> {
    for (what, n) in [("base", base.len()), ("d1", d1.len()), ("d2", d2.len())] {
        check_len(what, n, p)?;
    }
    check_len("coeffs", coeffs.len(), k)?;
    let u = ElementwiseParams { total: (k * p) as u32, p: p as u32, _pad: [0; 2] };
    let basis: Vec<f32> = [base, d1, d2].concat();
    let c4: Vec<[f32; 4]> = coeffs.iter().map(|c| [c[0], c[1], c[2], 0.0]).collect();
    let out = run_alone(
        ctx,
        &ctx.kernels.perturb,
        &[
            Arg::Uniform(bytemuck::bytes_of(&u)),
            Arg::Rw(bytemuck::cast_slice(&vec![f32::NAN; k * p])),
            Arg::Read(bytemuck::cast_slice(&basis)),
            Arg::Read(bytemuck::cast_slice(&c4)),
        ],
        super::context::flat_grid(k * p),
    )
    .await?;
    Ok(floats(&out[0]))
}

/// Gathers `indices` (`K × rows`, one step) from `data` as the GPU holds it; returns the decoded rows
/// (K × rows × dim) and their labels (K × rows).
pub async fn gather(ctx: &GpuContext, data: &Dataset, k: usize, rows: usize, indices: &[u32]) -> Result<(Vec<f32>, Vec<u32>)> {
    check_len("indices", indices.len(), k * rows)?;
    if let Some(&i) = indices.iter().find(|&&i| i as usize >= data.n) {
        return Err(LabError::Backend(format!("index {i} out of range")));
    }
    let layout = Layout::new(&[data.dim, 2], Activation::Linear);
    let wl = WorkLayout::new(&layout, k, rows);
    let g = GatherParams {
        k: k as u32,
        rows: rows as u32,
        dim: data.dim as u32,
        words_per_row: data.words_per_row() as u32,
        format: data.format(),
        norm_off: (data.n * data.words_per_row()) as u32,
        _pad2: 0,
        mb: rows as u32,
        contiguous: 0,
        x_off: wl.acts[0] as u32,
        _pad: [0; 2],
    };
    let slot = StepSlot::default();
    let out = run_alone(
        ctx,
        &ctx.kernels.gather,
        &[
            Arg::Uniform(bytemuck::bytes_of(&g)),
            Arg::Uniform(bytemuck::bytes_of(&slot)),
            Arg::Read(bytemuck::cast_slice(&data.gpu_words())),
            Arg::Read(bytemuck::cast_slice(&data.labels)),
            Arg::Read(bytemuck::cast_slice(indices)),
            Arg::Rw(bytemuck::cast_slice(&nan_work(&wl))),
            Arg::Rw(bytemuck::cast_slice(&vec![u32::MAX; k * rows])),
        ],
        super::context::flat_grid(k * rows * data.dim),
    )
    .await?;
    let work = floats(&out[0]);
    Ok((work[wl.acts[0]..wl.acts[0] + k * rows * data.dim].to_vec(), words(&out[1])))
}
