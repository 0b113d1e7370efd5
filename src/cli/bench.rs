//! `sgd-lab-bench`: training and evaluation throughput of the backends, for `docs/BENCHMARKS.md`
//! (`src/bin/sgd-lab-bench.rs` parses [`BenchArgs`] and calls [`run`]).
//!
//! For every backend × architecture × batch size B × number of models K it measures
//! - **training**: samples·models per second of SGD (momentum 0.9) on u8 inputs shaped like Fashion-MNIST
//!   (random bytes and labels: throughput does not depend on the values). Each configuration is warmed up
//!   with one chunk, then timed over `--reps` chunks of `--steps` steps, each chunk ending with its readback
//!   (as the trainer does); the median chunk is reported;
//! - **evaluation**: examples·models per second of [`Backend::evaluate`] over `--eval-examples` examples
//!   (chunks of B rows, one readback), median of `--reps` after one warm-up call;
//! - **λ_max time**: seconds of one Lanczos run (top eigenvalue, the default 20 iterations, i.e. 20 HVPs)
//!   for all K models at once over the first `--lambda-examples` examples, after one warm-up HVP; median of
//!   `--lambda-reps`;
//! - **2-D slice points/s**: a `--slice-grid`² filter-normalised slice around model 0 (tiles of K points,
//!   each one perturbation plus one evaluation over `--slice-examples` examples), after a warm-up tile;
//! - on the GPU, **dispatches and readbacks**, counted where the backend records them
//!   ([`GpuContext::counters`]: one atomic add per dispatch and per readback) around a timed training chunk,
//!   one λ_max run and the slice; and **GPU memory**: bytes of the buffers the backend holds at the end
//!   ([`GpuBackend::buffer_bytes`]: training, data set, HVP and perturbation buffers; not per-call transients).
//!
//! Architectures: `e1` = 784-256-256-10 (the E1 MLP), `deep` = the paper's 20-layer MLP (19 hidden layers
//! of 50 units); `--hidden` measures one custom architecture instead. Prints a Markdown table, or one JSON
//! object per row with `--format json` (read by `scripts/bench-jax`).

use std::time::Instant;

use clap::{Parser, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::analysis::eigen::{lanczos, LanczosOptions};
use crate::analysis::landscape::{linspace, pick_model, random_direction, slice_2d, BiasMode, EvalSet};
use crate::analysis::{BackendOperator, Subset};
use crate::backend::curvature::Curvature;
use crate::backend::any::{make_backend, AnyBackend, BackendChoice};
#[cfg(doc)]
use crate::backend::gpu::{GpuBackend, GpuContext};
use crate::backend::gpu::GpuCounters;
use crate::backend::{Backend, DataHandle, Hyper};
use crate::data::{Dataset, Features};
use crate::model::{Activation, Init, MlpSpec, ModelBatch};
use crate::LabError;

/// `--format` of `sgd-lab-bench`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Markdown table (header first, one row per configuration as it is measured).
    Md,
    /// One JSON object per line and configuration.
    Json,
}

/// `sgd-lab-bench`'s command line.
#[derive(Parser)]
#[command(long_about = None)]
#[command(about = "Benchmark sgd-lab's training and evaluation throughput")]
pub struct BenchArgs {
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
    pub backends: Vec<String>,
    /// Architectures: `e1` (784-256-256-10) and/or `deep` (784, 19 × 50, 10).
    #[arg(long, value_delimiter = ',', default_value = "e1")]
    pub arch: Vec<String>,
    /// Hidden widths of one custom architecture (replaces `--arch`).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Numbers of models K.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub models: Vec<usize>,
    /// Mini-batch sizes B (also the evaluation chunk).
    #[arg(long, value_delimiter = ',', default_value = "128")]
    pub batch: Vec<usize>,
    /// Steps per timed chunk (one readback each).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// If set, the steps per chunk are chosen from the warm-up so that a chunk lasts about this long
    /// (at least `--steps`); steady timings for the small configurations of a matrix.
    #[arg(long)]
    pub chunk_seconds: Option<f64>,
    /// Timed chunks (and evaluation calls); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Examples per timed evaluation call; 0 skips the evaluation.
    #[arg(long, default_value_t = 2048)]
    pub eval_examples: usize,
    /// Examples the λ_max Hessian is taken over; 0 skips the λ_max timing.
    #[arg(long, default_value_t = 1024)]
    pub lambda_examples: usize,
    /// Timed λ_max runs (Lanczos, 20 HVPs each); the median is reported.
    #[arg(long, default_value_t = 1)]
    pub lambda_reps: usize,
    /// Points per side of the timed 2-D slice (G × G points); 0 skips it.
    #[arg(long, default_value_t = 8)]
    pub slice_grid: usize,
    /// Examples each slice point is evaluated on.
    #[arg(long, default_value_t = 1024)]
    pub slice_examples: usize,
    /// Instead of the training matrix: time the lab's GEMM kernel alone on n×n·n×n products of these sizes
    /// and the device's measured FMA peak (`shaders/peak_fma.wgsl`); GFLOP/s and the fraction of the peak.
    #[arg(long, value_delimiter = ',')]
    pub gemm_sizes: Option<Vec<usize>>,
    /// Dispatches of each GEMM probe in its timed pass.
    #[arg(long, default_value_t = 10)]
    pub gemm_reps: usize,
    /// Threads of the peak probe (256 per workgroup).
    #[arg(long, default_value_t = 1 << 20)]
    pub peak_threads: usize,
    /// FMA-loop iterations of each peak-probe thread (64 FLOP each).
    #[arg(long, default_value_t = 4096)]
    pub peak_iterations: u32,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
}

/// `"784, 19 × 50, 10"` for long runs of equal widths, else `"[784, 256, 256, 10]"` (as earlier tables).
fn widths_label(w: &[usize]) -> String {
    let hidden = &w[1..w.len() - 1];
    if hidden.len() > 2 && hidden.iter().all(|&h| h == hidden[0]) {
        format!("{}, {} × {}, {}", w[0], hidden.len(), hidden[0], w[w.len() - 1])
    } else {
        format!("{w:?}")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures the matrix of `args` (or, with `--gemm-sizes`, the GEMM and peak probes) and prints its rows.
pub fn run(args: &BenchArgs) -> Result<(), LabError> {
    if let Some(sizes) = &args.gemm_sizes {
        return run_probes(args, sizes);
    }
    if args.reps == 0 || args.steps == 0 {
        return Err(LabError::config("--reps", "--reps and --steps must be at least 1"));
    }
    let archs: Vec<Vec<usize>> = match &args.hidden {
        Some(h) => vec![h.clone()],
        None => args
            .arch
            .iter()
            .map(|a| match a.as_str() {
                "e1" => Ok(vec![256, 256]),
                "deep" => Ok(vec![50; 19]),
                other => Err(LabError::config("--arch", format!("unknown architecture {other:?} (use e1 or deep)"))),
            })
            .collect::<Result<_, _>>()?,
    };
    if args.lambda_reps == 0 {
        return Err(LabError::config("--lambda-reps", "must be at least 1 (use --lambda-examples 0 to skip λ_max)"));
    }
    if args.slice_grid == 1 {
        return Err(LabError::config("--slice-grid", "must be 0 (skip) or at least 2 points per side"));
    }
    if args.slice_grid > 0 && args.slice_examples == 0 {
        return Err(LabError::config("--slice-examples", "must be at least 1 (use --slice-grid 0 to skip the slice)"));
    }
    let n = 4096.max(args.eval_examples).max(args.lambda_examples).max(args.slice_examples);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let bytes: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::new("random u8 784", 784, 10, Features::u8_uniform(bytes, 784, 1.0 / 255.0, 0.0), labels)?;
    if args.format == Format::Md {
        println!(
            "| backend | widths | B | K | steps/s | samples·models/s | eval examples·models/s | λ_max s ({} ex.) | slice points/s ({} ex.) | dispatches/step | readbacks/step | dispatches, readbacks per λ_max | GPU buffers MiB |",
            args.lambda_examples, args.slice_examples
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    for name in &args.backends {
        let choice = match name.as_str() {
            "cpu" => BackendChoice::Cpu,
            "gpu" => BackendChoice::Gpu,
            other => return Err(LabError::config("--backends", format!("unknown backend {other:?} (use cpu or gpu)"))),
        };
        for hidden in &archs {
            let spec = MlpSpec { input: 784, hidden: hidden.clone(), classes: 10, activation: Activation::Relu, init: Init::He };
            spec.validate("model")?;
            for &batch in &args.batch {
                for &k in &args.models {
                    let (mut backend, _) = pollster::block_on(make_backend(&spec.layout(), k, batch, choice))?;
                    let seeds: Vec<u64> = (0..k as u64).collect();
                    backend.write_params(&ModelBatch::init(&spec, &seeds).params)?;
                    backend.write_hyper(&vec![Hyper { lr: 0.01, momentum: 0.9, weight_decay: 0.0 }; k])?;
                    backend.reset_state();
                    let h = backend.upload_dataset(&data)?;
                    let mut indices = |steps: usize| -> Vec<u32> { (0..steps * k * batch).map(|_| rng.random_range(0..n as u32)).collect() };
                    let chunk = |backend: &mut AnyBackend, idx: &[u32]| -> Result<f64, LabError> {
                        let t = Instant::now();
                        backend.train_steps(h, idx, batch)?;
                        pollster::block_on(backend.read_progress())?;
                        Ok(t.elapsed().as_secs_f64())
                    };
                    // Warm-up: pipelines, caches, first touch of buffers; it also sizes adaptive chunks.
                    let warm = chunk(&mut backend, &indices(args.steps))?;
                    let steps = match args.chunk_seconds {
                        Some(s) => args.steps.max((s / (warm / args.steps as f64)).ceil() as usize),
                        None => args.steps,
                    };
                    let idx = indices(steps);
                    let before = counters(&backend);
                    let times: Vec<f64> = (0..args.reps).map(|_| chunk(&mut backend, &idx)).collect::<Result<_, _>>()?;
                    let train_counts = per(counters(&backend), before, (args.reps * steps) as f64);
                    let steps_per_s = steps as f64 / median(times.clone());
                    let eval = if args.eval_examples > 0 {
                        let mut call = || -> Result<f64, LabError> {
                            let t = Instant::now();
                            pollster::block_on(backend.evaluate(h, 0, args.eval_examples))?;
                            Ok(t.elapsed().as_secs_f64())
                        };
                        call()?;
                        let eval_times: Vec<f64> = (0..args.reps).map(|_| call()).collect::<Result<_, _>>()?;
                        Some(((args.eval_examples * k) as f64 / median(eval_times.clone()), eval_times))
                    } else {
                        None
                    };
                    let (eval, eval_times) = match eval {
                        Some((e, t)) => (Some(e), t),
                        None => (None, Vec::new()),
                    };
                    let lambda = if args.lambda_examples > 0 { Some(time_lambda_max(&mut backend, h, n, args)?) } else { None };
                    let slice = if args.slice_grid > 0 { Some(time_slice(&mut backend, &spec, h, args)?) } else { None };
                    let (submits, threads, memory) = match &backend {
                        AnyBackend::Gpu(g) => (Some(g.submits_last_call()), None, Some(g.buffer_bytes())),
                        AnyBackend::Cpu(c) => (None, Some(c.threads()), None),
                    };
                    let label = match threads {
                        Some(t) => format!("{}, {t} thread{}", backend.describe(), if t == 1 { "" } else { "s" }),
                        None => backend.describe(),
                    };
                    let samples = steps_per_s * (batch * k) as f64;
                    let widths = spec.widths();
                    match args.format {
                        Format::Md => {
                            let opt = |v: Option<String>| v.unwrap_or_else(|| "–".into());
                            println!(
                                "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                                label,
                                widths_label(&widths),
                                batch,
                                k,
                                steps_per_s,
                                samples,
                                opt(eval.map(|e| format!("{e:.0}"))),
                                opt(lambda.as_ref().map(|l| format!("{:.3}", l.seconds))),
                                opt(slice.as_ref().map(|s| format!("{:.1}", s.points_per_s))),
                                opt(train_counts.map(|c| format!("{}", c.0))),
                                opt(train_counts.map(|c| format!("{:.3}", c.1))),
                                opt(lambda.as_ref().and_then(|l| l.counts).map(|c| format!("{}, {}", c.dispatches, c.readbacks))),
                                opt(memory.map(|m| format!("{:.2}", m as f64 / (1024.0 * 1024.0)))),
                            );
                        }
                        Format::Json => {
                            let row = serde_json::json!({
                                "backend": backend.describe(),
                                "threads": threads,
                                "widths": widths,
                                "widths_label": widths_label(&widths),
                                "batch": batch,
                                "models": k,
                                "steps_per_chunk": steps,
                                "reps": args.reps,
                                "steps_per_s": steps_per_s,
                                "samples_models_per_s": samples,
                                "eval_examples": args.eval_examples,
                                "eval_examples_models_per_s": eval,
                                "chunk_seconds": times,
                                "eval_seconds": eval_times,
                                "dispatches_per_step": train_counts.map(|c| c.0),
                                "readbacks_per_step": train_counts.map(|c| c.1),
                                "submits_per_chunk": submits,
                                "lambda_examples": args.lambda_examples,
                                "lambda_max_seconds": lambda.as_ref().map(|l| l.seconds),
                                "lambda_max_runs_seconds": lambda.as_ref().map(|l| l.runs.clone()),
                                "lambda_max_values": lambda.as_ref().map(|l| l.values.clone()),
                                "lambda_max_dispatches": lambda.as_ref().and_then(|l| l.counts).map(|c| c.dispatches),
                                "lambda_max_readbacks": lambda.as_ref().and_then(|l| l.counts).map(|c| c.readbacks),
                                "slice_points": slice.as_ref().map(|s| s.points),
                                "slice_examples": args.slice_examples,
                                "slice_points_per_s": slice.as_ref().map(|s| s.points_per_s),
                                "slice_dispatches": slice.as_ref().and_then(|s| s.counts).map(|c| c.dispatches),
                                "slice_readbacks": slice.as_ref().and_then(|s| s.counts).map(|c| c.readbacks),
                                "gpu_buffer_bytes": memory,
                            });
                            println!("{row}");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The GPU backend's counters (None on the CPU, which records no dispatches and reads nothing back).
fn counters(b: &AnyBackend) -> Option<GpuCounters> {
    match b {
        AnyBackend::Gpu(g) => Some(g.context().counters()),
        AnyBackend::Cpu(_) => None,
    }
}

/// Dispatches (exact: an integer when every step records the same) and readbacks per step between two snapshots.
fn per(after: Option<GpuCounters>, before: Option<GpuCounters>, steps: f64) -> Option<(f64, f64)> {
    let d = after? - before?;
    Some((d.dispatches as f64 / steps, d.readbacks as f64 / steps))
}

/// One λ_max measurement: the median seconds, every run, the eigenvalues found, the GPU work of one run.
struct LambdaTiming {
    seconds: f64,
    runs: Vec<f64>,
    values: Vec<f64>,
    counts: Option<GpuCounters>,
}

/// Times Lanczos (top-1, default iterations) over the first `--lambda-examples` examples for all K models.
fn time_lambda_max(backend: &mut AnyBackend, h: DataHandle, n: usize, args: &BenchArgs) -> Result<LambdaTiming, LabError> {
    let subset = Subset::first(h, n, args.lambda_examples);
    // Warm-up: one HVP makes the HVP buffers and pipelines' first use (not part of a λ_max call's cost).
    let p = backend.layout().params_per_model;
    pollster::block_on(backend.hvp(h, 0, subset.count, &vec![0.0; backend.models() * p]))?;
    let opts = LanczosOptions::default();
    let (mut runs, mut values, mut counts) = (Vec::new(), Vec::new(), None);
    for _ in 0..args.lambda_reps {
        let before = counters(backend);
        let t = Instant::now();
        let res = pollster::block_on(lanczos(&mut BackendOperator::new(&mut *backend, subset), &opts))?;
        runs.push(t.elapsed().as_secs_f64());
        counts = counters(backend).zip(before).map(|(a, b)| a - b);
        values = res.iter().map(|r| r.eigenvalues[0]).collect();
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(LabError::Backend(format!("λ_max came out {bad}: the timing would not be of a real run")));
    }
    Ok(LambdaTiming { seconds: median(runs.clone()), runs, values, counts })
}

/// One slice measurement: points, points per second, the GPU work of the timed slice.
struct SliceTiming {
    points: usize,
    points_per_s: f64,
    counts: Option<GpuCounters>,
}

/// Times a `--slice-grid`² filter-normalised 2-D slice around model 0 over `--slice-examples` examples.
fn time_slice(backend: &mut AnyBackend, spec: &MlpSpec, h: DataHandle, args: &BenchArgs) -> Result<SliceTiming, LabError> {
    let layout = spec.layout();
    let params = pollster::block_on(backend.read_params())?;
    let center = pick_model(&layout, &params, 0)?;
    let d1 = random_direction(&layout, &center, 11, 0, BiasMode::Zero);
    let d2 = random_direction(&layout, &center, 11, 1, BiasMode::Zero);
    let sets = [EvalSet { name: "train".into(), data: h, start: 0, count: args.slice_examples }];
    let axis = linspace(-1.0, 1.0, args.slice_grid);
    // Warm-up: one tile (the perturbation buffers, first evaluation of this size).
    pollster::block_on(slice_2d(backend, &center, &d1, &d2, &axis[..1], &axis[..1], &sets))?;
    let before = counters(backend);
    let t = Instant::now();
    let l = pollster::block_on(slice_2d(backend, &center, &d1, &d2, &axis, &axis, &sets))?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(bad) = l.sets[0].loss.iter().find(|v| !v.is_finite()) {
        return Err(LabError::Backend(format!("a slice point's loss came out {bad}: the timing would not be of a real slice")));
    }
    Ok(SliceTiming { points: l.points(), points_per_s: l.points() as f64 / secs, counts: counters(backend).zip(before).map(|(a, b)| a - b) })
}

/// The GEMM and peak probes (`--gemm-sizes`): one row per size, then the peak.
fn run_probes(args: &BenchArgs, sizes: &[usize]) -> Result<(), LabError> {
    use crate::backend::gpu::{throughput, GpuContext};
    if let Some(bad) = sizes.iter().find(|&&s| s == 0) {
        return Err(LabError::config("--gemm-sizes", format!("sizes must be ≥ 1 (got {bad})")));
    }
    if args.gemm_reps == 0 || args.peak_threads == 0 || args.peak_iterations == 0 {
        return Err(LabError::config("--gemm-reps", "--gemm-reps, --peak-threads and --peak-iterations must be at least 1"));
    }
    let ctx = pollster::block_on(GpuContext::new())?;
    let peak = pollster::block_on(throughput::peak_fma(&ctx, args.peak_threads, args.peak_iterations))?;
    let rows: Vec<(usize, throughput::Timing)> =
        sizes.iter().map(|&n| Ok((n, pollster::block_on(throughput::gemm(&ctx, n, n, n, 1, args.gemm_reps))?))).collect::<Result<_, LabError>>()?;
    match args.format {
        Format::Md => {
            println!("Device: {} · driver {} · timer: {}", ctx.describe(), ctx.driver(), peak.timer);
            println!();
            println!("| probe | GFLOP/s | of measured peak |");
            println!("|---|---|---|");
            println!("| FMA peak (peak_fma.wgsl, {} threads × {} iterations) | {:.1} | 100 % |", args.peak_threads, args.peak_iterations, peak.gflops());
            for (n, t) in &rows {
                println!("| GEMM {n}×{n}·{n}×{n} ({} dispatches) | {:.1} | {:.1} % |", args.gemm_reps, t.gflops(), 100.0 * t.gflops() / peak.gflops());
            }
        }
        Format::Json => {
            println!("{}", serde_json::json!({"probe": "peak_fma", "device": ctx.describe(), "driver": ctx.driver(), "gflops": peak.gflops(), "seconds": peak.seconds, "timer": peak.timer}));
            for (n, t) in &rows {
                println!("{}", serde_json::json!({"probe": "gemm", "size": n, "reps": args.gemm_reps, "gflops": t.gflops(), "seconds": t.seconds, "timer": t.timer, "fraction_of_peak": t.gflops() / peak.gflops()}));
            }
        }
    }
    Ok(())
}
