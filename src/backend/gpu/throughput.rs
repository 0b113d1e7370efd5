//! Throughput probes for `scripts/gpu-check`: the lab's GEMM kernel alone at given sizes, and the device's
//! measured f32 FMA peak (`shaders/peak_fma.wgsl`), both in GFLOP/s.
//!
//! Why: training throughput mixes the GEMM with gathers, reductions and dispatch latency; to know how far
//! the GEMM itself is from the hardware, it is timed alone and compared with a kernel that does nothing but
//! FMAs. Each probe records `reps` identical dispatches in one compute pass and times the pass: with GPU
//! timestamp queries at the pass's start and end when the adapter offers them ([`Timing::timer`] says
//! which), else by wall time around submit and the wait for completion (which includes the submit's
//! latency, so it reads low for short passes). One warm-up pass runs first.

use std::time::Instant;

use super::context::{build_kernel, flat_grid, GpuContext, Recorder};
use super::params::{self, PeakParams, WorkLayout};
use super::shaders;
use crate::error::{LabError, Result};
use crate::model::{Activation, Layout};

/// One timed probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Floating-point operations of the timed pass (an FMA counts 2).
    pub flop: f64,
    /// Seconds of the timed pass.
    pub seconds: f64,
    /// `"timestamp"` (GPU timestamp queries) or `"wall"` (submit to completion on the host).
    pub timer: &'static str,
}

impl Timing {
    /// GFLOP per second.
    pub fn gflops(&self) -> f64 {
        self.flop / self.seconds / 1e9
    }
}

/// Whether this context can time passes with GPU timestamps.
pub fn has_timestamps(ctx: &GpuContext) -> bool {
    ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
}

/// Runs `record` in one compute pass (twice: a warm-up, then timed) and returns the timed pass's seconds.
async fn time_pass(ctx: &GpuContext, record: &dyn Fn(&mut Recorder)) -> Result<(f64, &'static str)> {
    let ts = has_timestamps(ctx);
    let mut result = (0.0, "wall");
    for round in 0..2 {
        let query = ts.then(|| ctx.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("probe"), ty: wgpu::QueryType::Timestamp, count: 2 }));
        let resolve = ts.then(|| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("probe timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("probe") });
        {
            let tw = query.as_ref().map(|q| wgpu::ComputePassTimestampWrites { query_set: q, beginning_of_pass_write_index: Some(0), end_of_pass_write_index: Some(1) });
            let pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("probe"), timestamp_writes: tw });
            let mut rec = Recorder::new(pass, ctx);
            record(&mut rec);
        }
        if let (Some(q), Some(r)) = (&query, &resolve) {
            enc.resolve_query_set(q, 0..2, r, 0);
        }
        let t = Instant::now();
        ctx.queue.submit([enc.finish()]);
        ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| LabError::Gpu(format!("waiting for the GPU failed: {e}")))?;
        let wall = t.elapsed().as_secs_f64();
        if round == 1 {
            result = match &resolve {
                Some(r) => {
                    let bytes = ctx.read_back(&[(r, 0, 16)]).await?;
                    let t: &[u64] = bytemuck::cast_slice(&bytes[0]);
                    let ticks = t[1].saturating_sub(t[0]);
                    if ticks == 0 {
                        (wall, "wall")
                    } else {
                        (ticks as f64 * f64::from(ctx.queue.get_timestamp_period()) * 1e-9, "timestamp")
                    }
                }
                None => (wall, "wall"),
            };
        }
    }
    Ok(result)
}

/// The lab's GEMM (`gemm.wgsl`, the forward product with its bias epilogue: what a training step runs
/// most) on `models` independent `m × k · k × n` products, `reps` dispatches in one pass.
pub async fn gemm(ctx: &GpuContext, m: usize, n: usize, k: usize, models: usize, reps: usize) -> Result<Timing> {
    if m == 0 || n == 0 || k == 0 || models == 0 || reps == 0 {
        return Err(LabError::Backend(format!("GEMM probe sizes must be ≥ 1 (m = {m}, n = {n}, k = {k}, models = {models}, reps = {reps})")));
    }
    let layout = Layout::new(&[k, n], Activation::Linear);
    let wl = WorkLayout::new(&layout, models, m);
    let p = layout.params_per_model;
    let limit = ctx.limits().max_storage_buffer_binding_size;
    let bytes = (wl.total.max(models * p) * 4) as u64;
    if bytes > limit {
        return Err(LabError::Gpu(format!("a {m}×{k}·{k}×{n} GEMM probe over {models} models needs {bytes} bytes in one binding, above max_storage_buffer_binding_size ({limit})")));
    }
    let g = params::gemm_forward(&layout.layers[0], p, &wl, 0, m, Activation::Linear);
    let uniform = ctx.uniform("gemm probe uniforms", size_of::<params::GemmParams>() as u64);
    ctx.queue.write_buffer(&uniform, 0, bytemuck::bytes_of(&g));
    let fill = |n: usize, v: f32| -> Vec<u8> { bytemuck::cast_slice(&vec![v; n]).to_vec() };
    let params_buf = ctx.storage_init("gemm probe params", &fill(models * p, 0.01));
    let work = ctx.storage_init("gemm probe work", &fill(wl.total, 0.5));
    let grads = ctx.storage("gemm probe grads", 4);
    let bg = ctx.bind_group("gemm probe", &ctx.kernels.gemm, &[(&uniform, 0, None), (&params_buf, 0, None), (&work, 0, None), (&grads, 0, None)]);
    let grid = params::gemm_grid(&g, models);
    let (seconds, timer) = time_pass(ctx, &|rec: &mut Recorder| {
        for _ in 0..reps {
            rec.grid(&ctx.kernels.gemm, &bg, &[], grid);
        }
    })
    .await?;
    // A wrong product would make the timing meaningless: C = 0.5·0.01·k everywhere (+ bias 0.01).
    let want = 0.5 * 0.01 * k as f32 + 0.01;
    let c = ctx.read_back(&[(&work, (wl.acts[1] * 4) as u64, 4)]).await?;
    let got = bytemuck::cast_slice::<u8, f32>(&c[0])[0];
    if (got - want).abs() > 1e-3 * want {
        return Err(LabError::Gpu(format!("GEMM probe computed {got}, expected {want}: the timing is not of a correct product")));
    }
    Ok(Timing { flop: 2.0 * (m * n * k * models * reps) as f64, seconds, timer })
}

/// The device's f32 FMA throughput (`shaders/peak_fma.wgsl`): `threads` threads × `iterations` × 64 FLOP.
pub async fn peak_fma(ctx: &GpuContext, threads: usize, iterations: u32) -> Result<Timing> {
    if threads == 0 || iterations == 0 {
        return Err(LabError::Backend(format!("peak probe needs threads ≥ 1 and iterations ≥ 1 (got {threads}, {iterations})")));
    }
    let kernel = build_kernel(&ctx.device, &shaders::PEAK_FMA).await?;
    let uniform = ctx.uniform("peak uniforms", size_of::<PeakParams>() as u64);
    let u = PeakParams { iterations, threads: threads as u32, mul: 1.0f32 - 2f32.powi(-20), add: 1e-6 };
    ctx.queue.write_buffer(&uniform, 0, bytemuck::bytes_of(&u));
    let out = ctx.storage("peak out", (threads * 4) as u64);
    let bg = ctx.bind_group("peak", &kernel, &[(&uniform, 0, None), (&out, 0, None)]);
    let (seconds, timer) = time_pass(ctx, &|rec: &mut Recorder| rec.grid(&kernel, &bg, &[], flat_grid(threads))).await?;
    let v = ctx.read_back(&[(&out, 0, 4)]).await?;
    let x = bytemuck::cast_slice::<u8, f32>(&v[0])[0];
    if !x.is_finite() || x == 0.0 {
        return Err(LabError::Gpu(format!("peak probe wrote {x}: the kernel did not run its loop")));
    }
    Ok(Timing { flop: threads as f64 * f64::from(iterations) * 64.0, seconds, timer })
}
