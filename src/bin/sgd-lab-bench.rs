//! `sgd-lab-bench`: training and evaluation throughput of the backends, for `docs/BENCHMARKS.md`.
//!
//! For every backend × architecture × batch size B × number of models K it measures
//! - **training**: samples·models per second of SGD (momentum 0.9) on u8 inputs shaped like Fashion-MNIST
//!   (random bytes and labels: throughput does not depend on the values). Each configuration is warmed up
//!   with one chunk, then timed over `--reps` chunks of `--steps` steps, each chunk ending with its readback
//!   (as the trainer does); the median chunk is reported;
//! - **evaluation**: examples·models per second of [`Backend::evaluate`] over `--eval-examples` examples
//!   (chunks of B rows, one readback), median of `--reps` after one warm-up call.
//!
//! Architectures: `e1` = 784-256-256-10 (the E1 MLP), `deep` = the paper's 20-layer MLP (19 hidden layers
//! of 50 units); `--hidden` measures one custom architecture instead. Prints a Markdown table, or one JSON
//! object per row with `--format json` (read by `scripts/bench-jax`).

// The CLI is native-only. `wasm-pack test` builds every target for wasm32: there this binary is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::time::Instant;

use clap::{Parser, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::backend::any::{make_backend, AnyBackend, BackendChoice};
use sgd_lab::backend::{Backend, Hyper};
use sgd_lab::data::{Dataset, Features};
use sgd_lab::model::{Activation, Init, MlpSpec, ModelBatch};
use sgd_lab::LabError;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A Markdown table (header first, one row per configuration as it is measured).
    Md,
    /// One JSON object per line and configuration.
    Json,
}

#[derive(Parser)]
#[command(about = "Benchmark sgd-lab's training and evaluation throughput")]
struct Args {
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
    backends: Vec<String>,
    /// Architectures: `e1` (784-256-256-10) and/or `deep` (784, 19 × 50, 10).
    #[arg(long, value_delimiter = ',', default_value = "e1")]
    arch: Vec<String>,
    /// Hidden widths of one custom architecture (replaces `--arch`).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Numbers of models K.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    models: Vec<usize>,
    /// Mini-batch sizes B (also the evaluation chunk).
    #[arg(long, value_delimiter = ',', default_value = "128")]
    batch: Vec<usize>,
    /// Steps per timed chunk (one readback each).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// If set, the steps per chunk are chosen from the warm-up so that a chunk lasts about this long
    /// (at least `--steps`); steady timings for the small configurations of a matrix.
    #[arg(long)]
    chunk_seconds: Option<f64>,
    /// Timed chunks (and evaluation calls); the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Examples per timed evaluation call; 0 skips the evaluation.
    #[arg(long, default_value_t = 2048)]
    eval_examples: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("sgd-lab-bench: {e}");
        std::process::exit(1);
    }
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

fn run(args: &Args) -> Result<(), LabError> {
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
    let n = 4096.max(args.eval_examples);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let bytes: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::new("random u8 784", 784, 10, Features::u8_uniform(bytes, 784, 1.0 / 255.0, 0.0), labels)?;
    if args.format == Format::Md {
        println!("| backend | widths | B | K | steps/s | samples·models/s | eval examples·models/s | dispatches/step | submits/chunk | readbacks/chunk |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
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
                    let times: Vec<f64> = (0..args.reps).map(|_| chunk(&mut backend, &idx)).collect::<Result<_, _>>()?;
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
                    let (dispatches, submits, threads) = match &backend {
                        AnyBackend::Gpu(g) => (Some(g.dispatches_per_step()), Some(g.submits_last_call()), None),
                        AnyBackend::Cpu(c) => (None, None, Some(c.threads())),
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
                                "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | 1 |",
                                label,
                                widths_label(&widths),
                                batch,
                                k,
                                steps_per_s,
                                samples,
                                opt(eval.map(|e| format!("{e:.0}"))),
                                opt(dispatches.map(|d| d.to_string())),
                                opt(submits.map(|s| s.to_string())),
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
                                "dispatches_per_step": dispatches,
                                "submits_per_chunk": submits,
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
