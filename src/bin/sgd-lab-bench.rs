//! `sgd-lab-bench`: training throughput of the backends, for `docs/BENCHMARKS.md`.
//!
//! Measures samples·models per second of SGD (momentum 0.9) on a 784-256-256-10 ReLU MLP at a
//! given batch size for several K, on u8 inputs shaped like Fashion-MNIST (random bytes and labels:
//! throughput does not depend on the values). Each configuration is warmed up with one chunk, then
//! timed over `--reps` chunks of `--steps` steps, each chunk ending with its readback (as the trainer
//! does); the median chunk is reported. Prints a Markdown table.

// The CLI is native-only. `wasm-pack test` builds every target for wasm32: there this binary is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::time::Instant;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::backend::any::{make_backend, AnyBackend, BackendChoice};
use sgd_lab::backend::{Backend, Hyper};
use sgd_lab::data::{Dataset, Features};
use sgd_lab::model::{Activation, Init, MlpSpec, ModelBatch};
use sgd_lab::LabError;

#[derive(Parser)]
#[command(about = "Benchmark sgd-lab's training throughput")]
struct Args {
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
    backends: Vec<String>,
    /// Numbers of models K.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    models: Vec<usize>,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Hidden widths.
    #[arg(long, value_delimiter = ',', default_value = "256,256")]
    hidden: Vec<usize>,
    /// Steps per timed chunk (one readback each).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Timed chunks; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("sgd-lab-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), LabError> {
    let spec = MlpSpec { input: 784, hidden: args.hidden.clone(), classes: 10, activation: Activation::Relu, init: Init::He };
    spec.validate("model")?;
    let n = 4096;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let bytes: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::new("random u8 784", 784, 10, Features::u8_uniform(bytes, 784, 1.0 / 255.0, 0.0), labels)?;
    println!("| backend | widths | B | K | steps/s | samples·models/s | dispatches/step | submits/chunk | readbacks/chunk |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in &args.backends {
        let choice = match name.as_str() {
            "cpu" => BackendChoice::Cpu,
            "gpu" => BackendChoice::Gpu,
            other => return Err(LabError::config("--backends", format!("unknown backend {other:?} (use cpu or gpu)"))),
        };
        for &k in &args.models {
            let (mut backend, _) = pollster::block_on(make_backend(&spec.layout(), k, args.batch, choice))?;
            let seeds: Vec<u64> = (0..k as u64).collect();
            backend.write_params(&ModelBatch::init(&spec, &seeds).params)?;
            backend.write_hyper(&vec![Hyper { lr: 0.01, momentum: 0.9, weight_decay: 0.0 }; k])?;
            backend.reset_state();
            let h = backend.upload_dataset(&data)?;
            let indices: Vec<u32> = (0..args.steps * k * args.batch).map(|_| rng.random_range(0..n as u32)).collect();
            let mut chunk = || -> Result<f64, LabError> {
                let t = Instant::now();
                backend.train_steps(h, &indices, args.batch)?;
                pollster::block_on(backend.read_progress())?;
                Ok(t.elapsed().as_secs_f64())
            };
            chunk()?; // warm-up: pipelines, caches, first-touch of buffers
            let mut times: Vec<f64> = (0..args.reps).map(|_| chunk()).collect::<Result<_, _>>()?;
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let steps_per_s = args.steps as f64 / median;
            let (dispatches, submits) = match &backend {
                AnyBackend::Gpu(g) => (g.dispatches_per_step().to_string(), g.submits_last_call().to_string()),
                AnyBackend::Cpu(_) => ("–".into(), "–".into()),
            };
            println!(
                "| {} | {:?} | {} | {} | {:.2} | {:.0} | {} | {} | 1 |",
                backend.describe(),
                spec.widths(),
                args.batch,
                k,
                steps_per_s,
                steps_per_s * (args.batch * k) as f64,
                dispatches,
                submits
            );
        }
    }
    Ok(())
}
