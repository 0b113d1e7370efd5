//! The command line, native only: `sgd-lab` (its grammar in [`args`], each command in a module of its own,
//! [`run`] dispatches) and `sgd-lab-bench` ([`bench`]). `src/bin/*.rs` only parse and hand over.
//!
//! `sgd-lab` is the native command-line face of the lab.
//!
//! `sgd-lab train --config run.json --backend cpu|gpu|auto --out DIR` trains the config's K models and
//! writes into DIR (real data sets are read from `--data-dir`, default `www/data`, filled by `scripts/fetch-data`): `config.json` (the validated config), `metrics.jsonl` (one event per line),
//! `params_initial.safetensors`, `params_final.safetensors` and `batches.safetensors` (the trace); with
//! `--snapshot-every N` also `trajectory.safetensors` (parameters at step 0, every N steps and at the end).
//!
//! `sgd-lab run PRESET --out DIR [--backend] [--shard i/n] [--override JSON]` runs one of the paper's
//! experiments (presets/*.json) and writes results, figures and a claims report; `sgd-lab merge` combines
//! shards; `sgd-lab report DIR` rewrites a report (docs/experiments.md).
//!
//! `sgd-lab hessian --params P.safetensors --config C.json [--backend cpu|gpu|auto] [--examples 5000]` prints
//! JSON: per model λ_max (Lanczos, 20 steps) and the Hessian trace ± standard error (Hutchinson), of the
//! mean loss over the first `--examples` training examples, and Keskar's ε-sharpness (`--epsilon 1e-3`,
//! `--ascent-steps 10`, 0 skips it), with wall-clock seconds of each part (see docs/hessian.md). `--seed S`
//! (default 0) seeds the probes, printed per model so they can be rebuilt; `--eigenvectors E.safetensors`
//! writes the top-k Ritz vectors and `--epsilon-maximiser Y.safetensors` the ε-sharpness maximiser of each
//! model, F64 in the params files' per-layer layout (docs/hessian.md, "Re-deriving the numbers").
//!
//! `sgd-lab data export --config FILE|PRESET | --data JSON --out DIR [--format idx|npy] [--force]` writes a
//! synthetic set (two spirals, circles, XOR, blobs) as IDX (`train-features-idx2-f32`,
//! `train-labels-idx1-ubyte`) or NPY (`x.npy`, `y.npy`) files plus `data.json` (its config, sizes and
//! SHA-256s), so a run on it can be replayed elsewhere (docs/data.md). `sgd-lab data indices RUN|PRESET|CONFIG`
//! prints the exact training and validation rows, replaced labels and provenance record of a run's data.
//! Every command that reads real data refuses files other than the pinned ones unless `--allow-unpinned-data`.

pub mod args;
pub mod bench;
pub mod data;
pub mod experiments;
pub mod hessian;
pub mod landscape;
pub mod train;

pub use args::Cli;

use args::{Command, DataCommand};
use crate::error::Result;

/// Runs one parsed `sgd-lab` command; the error is what `sgd-lab` prints (after `sgd-lab: `) before exiting with 1.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train { config, engine, out, data, quiet, snapshot_every } => train::train(&config, engine.choice(), &out, &data, quiet, snapshot_every),
        Command::Hessian { params, config, engine, examples, top_k, lanczos_iterations, trace_samples, epsilon, ascent_steps, data, seed, eigenvectors, epsilon_maximiser } => {
            let sharp = crate::analysis::sharpness::SharpnessOptions { epsilon, steps: ascent_steps };
            let exports = hessian::HessianExports { seed, eigenvectors, epsilon_maximiser };
            hessian::hessian(&params, &config, engine.choice(), examples, (top_k, lanczos_iterations, trace_samples), sharp, &data, &exports)
        }
        Command::Landscape { command } => landscape::landscape(command),
        Command::Run { preset, out, engine, shard, patch, data, quiet, checkpoint_every, discard_checkpoint } => {
            let checkpoint_every = (!checkpoint_every.is_zero()).then_some(checkpoint_every);
            let args = experiments::RunArgs { preset, out, backend: engine.choice(), shard, patch, data_dir: data.data_dir, allow_unpinned_data: data.allow_unpinned_data, quiet, checkpoint_every, discard_checkpoint };
            experiments::run(&args).map(|_| ())
        }
        Command::Merge { dirs, out, engine, data, quiet } => experiments::merge(&dirs, &out, engine.choice(), (&data.data_dir, data.allow_unpinned_data), quiet).map(|_| ()),
        Command::Report { dir } => experiments::report_dir(&dir),
        Command::Data { command: DataCommand::Export { config, data, out, format, force } } => data::data_export(config.as_deref(), data.as_deref(), &out, &format, force),
        Command::Data { command: DataCommand::Indices { input, data } } => data::data_indices(&input, &data.data_dir, data.allow_unpinned_data).map(|json| println!("{json}")),
    }
}
