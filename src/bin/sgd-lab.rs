//! `sgd-lab`: the native command-line face of the lab.
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

// The CLI is native-only. `wasm-pack test` builds every target for wasm32: there this binary is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use sgd_lab::backend::any::{make_backend, BackendChoice};
use sgd_lab::backend::Backend;
use sgd_lab::train::trace::{batches_to_safetensors, params_to_safetensors, scheduled_batches_to_safetensors, trajectory_to_safetensors, Trajectory};
use sgd_lab::train::{Event, TrainConfig, Trainer};
use sgd_lab::LabError;

#[derive(Parser)]
#[command(name = "sgd-lab", version, about = "Reproduce 'Three Factors Influencing Minima in SGD' on your GPU or CPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the K models of a config and write metrics and the trace.
    Train {
        /// The run's JSON config (see README for the fields).
        #[arg(long)]
        config: PathBuf,
        /// Which engine runs the kernels.
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Print no progress bar.
        #[arg(long)]
        quiet: bool,
        /// Also write `trajectory.safetensors`: the K models' parameters at step 0, every N steps and at the end.
        #[arg(long)]
        snapshot_every: Option<usize>,
    },
    /// Hessian sharpness of trained models: λ_max by Lanczos and the trace by Hutchinson, as JSON on stdout.
    Hessian {
        /// Parameters of the K models (e.g. `params_final.safetensors` of a `train` run).
        #[arg(long)]
        params: PathBuf,
        /// The run's JSON config (its data set is the one the Hessian is taken on).
        #[arg(long)]
        config: PathBuf,
        /// Which engine computes the Hessian-vector products.
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// The Hessian of the mean loss over the first N training examples (all if fewer).
        #[arg(long, default_value_t = sgd_lab::analysis::DEFAULT_EXAMPLES)]
        examples: usize,
        /// Largest eigenvalues to report per model.
        #[arg(long, default_value_t = 1)]
        top_k: usize,
        /// Lanczos iterations (one HVP each).
        #[arg(long, default_value_t = 20)]
        lanczos_iterations: usize,
        /// Most Hutchinson samples for the trace (0: skip the trace).
        #[arg(long, default_value_t = 100)]
        trace_samples: usize,
        /// Keskar's ε-sharpness box size: |y_i| ≤ ε(|θ_i| + 1).
        #[arg(long, default_value_t = sgd_lab::analysis::sharpness::DEFAULT_EPSILON)]
        epsilon: f64,
        /// Projected sign-gradient ascent steps of the ε-sharpness (0: skip it).
        #[arg(long, default_value_t = sgd_lab::analysis::sharpness::DEFAULT_ASCENT_STEPS)]
        ascent_steps: usize,
        #[command(flatten)]
        data: DataArgs,
        /// Base probe seed S: model m's Lanczos start vector comes from ChaCha8(S) stream m, its Hutchinson
        /// vectors from ChaCha8(mix_seed([S, m])) stream 1 (both printed per model; docs/hessian.md).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the top-k Ritz vectors of every model to this safetensors file (F64
        /// `layers.{l}.weight [K, top_k, out, in]`, `layers.{l}.bias [K, top_k, out]`; docs/hessian.md).
        #[arg(long, value_name = "FILE.safetensors")]
        eigenvectors: Option<PathBuf>,
        /// Also write the ε-sharpness maximising perturbation y of every model to this safetensors file (F64
        /// `layers.{l}.weight [K, out, in]`, `layers.{l}.bias [K, out]`, as a params file; docs/hessian.md).
        #[arg(long, value_name = "FILE.safetensors")]
        epsilon_maximiser: Option<PathBuf>,
    },
    /// Loss landscapes: interpolation between two models, 1-D/2-D slices along random directions (docs/landscape.md).
    Landscape {
        #[command(subcommand)]
        command: LandscapeCommand,
    },
    /// Run one of the paper's experiments (a preset file or id) into a run directory, resuming if it holds
    /// earlier results; writes results.json/csv, figures/*.svg and claims.md (docs/experiments.md).
    Run {
        /// A preset file (e.g. presets/e1-ratio-sweep.json) or a shipped preset's id (e.g. e1-ratio-sweep).
        preset: String,
        /// The run directory (created if missing; an existing one with results of the same config is resumed).
        #[arg(long)]
        out: PathBuf,
        /// Which engine runs the kernels.
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// Run only the groups with index ≡ i (mod n), e.g. `--shard 0/4`; combine with `sgd-lab merge`.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// A JSON merge patch applied to the preset, e.g. '{"budget": {"epochs": 1}, "seeds": [1]}'.
        #[arg(long = "override")]
        patch: Option<String>,
        #[command(flatten)]
        data: DataArgs,
        /// Print no progress.
        #[arg(long)]
        quiet: bool,
        /// Seconds between mid-group checkpoints (checkpoint.safetensors in the run directory, written at the
        /// next chunk boundary, resumed from on a rerun); fractions allowed; 0 turns them off.
        #[arg(long, value_name = "SECONDS", default_value = "60", allow_negative_numbers = true, value_parser = sgd_lab::experiments::cli::parse_checkpoint_every)]
        checkpoint_every: std::time::Duration,
        /// Delete the run directory's mid-group checkpoint instead of resuming from it.
        #[arg(long)]
        discard_checkpoint: bool,
    },
    /// Merge the run directories of the shards of one experiment, finish it and write its report.
    Merge {
        /// The shards' run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged results and report go.
        #[arg(long)]
        out: PathBuf,
        /// Which engine runs what remains (interpolations).
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        #[command(flatten)]
        data: DataArgs,
        /// Print no progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Rewrite a finished run directory's report (claims.md, figures, results.csv) from its results.json.
    Report {
        /// The run directory.
        dir: PathBuf,
    },
    /// Data sets: export a synthetic set as IDX or NPY files; print the exact examples of a run (docs/data.md).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print, as JSON, the exact training and validation rows (in their files), the replaced labels and the
    /// provenance record of every real data set of a run directory / results.json, a preset or a config;
    /// for a saved run also whether the rebuilt data match what it recorded (docs/data.md).
    Indices {
        /// A run directory, its results.json, a preset id or file, or a training config.
        input: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write a synthetic set as IDX or NPY files plus data.json (its config, sizes, SHA-256s), so a run on it
    /// can be replayed elsewhere. Real data sets are IDX files already (www/data, from scripts/fetch-data).
    Export {
        /// A training config, an experiment config or a shipped preset's id whose `data` is synthetic.
        #[arg(long, value_name = "FILE|PRESET")]
        config: Option<String>,
        /// The synthetic set itself, e.g. '{"kind": "two_spirals", "n": 512, "noise": 0.1, "seed": 3}'.
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// idx: train-features-idx2-f32 and train-labels-idx1-ubyte; npy: x.npy and y.npy.
        #[arg(long, default_value = "idx", value_parser = ["idx", "npy"])]
        format: String,
        /// Overwrite files of an earlier export.
        #[arg(long)]
        force: bool,
    },
}

/// Where the real data sets are read from, and whether files other than the pinned ones are accepted.
#[derive(clap::Args, Clone)]
struct DataArgs {
    /// Where `scripts/fetch-data` put the real data sets (`<dir>/fashion-mnist/`, `<dir>/mnist/`).
    #[arg(long, env = "SGD_LAB_DATA_DIR", default_value = "www/data")]
    data_dir: PathBuf,
    /// Use data files whose SHA-256 differs from the one the lab pins (src/data/pinned-idx.sha256): the
    /// results record their hashes, and that they are not the pinned files.
    #[arg(long)]
    allow_unpinned_data: bool,
}

/// `i/n` with i < n.
fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not i/n (e.g. 0/4)"))?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| format!("`{i}` is not a number"))?, n.trim().parse().map_err(|_| format!("`{n}` is not a number"))?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: needs 0 ≤ i < n"));
    }
    Ok((i, n))
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// The f32 CPU backend.
    Cpu,
    /// The wgpu backend; fails if no GPU adapter is found.
    Gpu,
    /// The GPU if one is found, else the CPU (the reason is printed).
    Auto,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train { config, backend, out, data, quiet, snapshot_every } => train(&config, backend, &out, &data, quiet, snapshot_every),
        Command::Hessian { params, config, backend, examples, top_k, lanczos_iterations, trace_samples, epsilon, ascent_steps, data, seed, eigenvectors, epsilon_maximiser } => {
            let sharp = sgd_lab::analysis::sharpness::SharpnessOptions { epsilon, steps: ascent_steps };
            let exports = HessianExports { seed, eigenvectors, epsilon_maximiser };
            hessian(&params, &config, backend, examples, (top_k, lanczos_iterations, trace_samples), sharp, &data, &exports)
        }
        Command::Landscape { command } => landscape(command),
        Command::Run { preset, out, backend, shard, patch, data, quiet, checkpoint_every, discard_checkpoint } => {
            let checkpoint_every = (!checkpoint_every.is_zero()).then_some(checkpoint_every);
            let args = sgd_lab::experiments::cli::RunArgs { preset, out, backend: choice(backend), shard, patch, data_dir: data.data_dir, allow_unpinned_data: data.allow_unpinned_data, quiet, checkpoint_every, discard_checkpoint };
            sgd_lab::experiments::cli::run(&args).map(|_| ())
        }
        Command::Merge { dirs, out, backend, data, quiet } => sgd_lab::experiments::cli::merge(&dirs, &out, choice(backend), (&data.data_dir, data.allow_unpinned_data), quiet).map(|_| ()),
        Command::Report { dir } => sgd_lab::experiments::cli::report_dir(&dir),
        Command::Data { command: DataCommand::Export { config, data, out, format, force } } => data_export(config.as_deref(), data.as_deref(), &out, &format, force),
        Command::Data { command: DataCommand::Indices { input, data } } => {
            sgd_lab::experiments::cli::data_indices(&input, &data.data_dir, data.allow_unpinned_data).map(|json| println!("{json}"))
        }
    };
    if let Err(e) = result {
        eprintln!("sgd-lab: {e}");
        std::process::exit(1);
    }
}

fn choice(backend: BackendArg) -> BackendChoice {
    match backend {
        BackendArg::Cpu => BackendChoice::Cpu,
        BackendArg::Gpu => BackendChoice::Gpu,
        BackendArg::Auto => BackendChoice::Auto,
    }
}

/// What `sgd-lab hessian` can write for checking, and the seed of its probes.
struct HessianExports {
    /// Base probe seed S (`--seed`).
    seed: u64,
    /// `--eigenvectors`: where the Ritz vectors go.
    eigenvectors: Option<PathBuf>,
    /// `--epsilon-maximiser`: where the ε-sharpness maximisers go.
    epsilon_maximiser: Option<PathBuf>,
}

/// How the probes of model m are drawn from the seeds printed with it (also in docs/hessian.md).
const PROBE_RECIPE: &str = "rng(seed, stream) = rand_chacha 0.9 ChaCha8Rng::seed_from_u64(seed) then set_stream(stream). \
Lanczos: model m's start vector is P successive rng(lanczos.seed, lanczos.stream).random_range(-1.0..1.0) f64 draws \
(one next_u64 each: ((u >> 12) · 2^-52) · 2 − 1), divided by its Euclidean norm. \
Hutchinson: model m's sample s (s = 1, 2, …) is the next P rng(hutchinson.seed, hutchinson.stream).random::<bool>() draws \
(one next_u32 each: top bit 1 → +1, 0 → −1); hutchinson.seed = mix_seed([probe_seed, m]) (analysis::mix_seed). \
See docs/hessian.md, \"Re-deriving the numbers\".";

/// Refuses an export path whose folder does not exist (or that is a folder), before any work is done.
fn check_export_path(flag: &str, path: &Path) -> Result<(), LabError> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(LabError::config(flag, format!("cannot write {}: the folder {} does not exist", path.display(), parent.display())));
    }
    if path.is_dir() {
        return Err(LabError::config(flag, format!("{} is a folder; give a file name such as {}", path.display(), path.join(format!("{flag}.safetensors")).display())));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn hessian(params: &Path, config_path: &Path, backend: BackendArg, examples: usize, (top_k, iterations, trace_samples): (usize, usize, usize), sharp: sgd_lab::analysis::sharpness::SharpnessOptions, data_args: &DataArgs, exports: &HessianExports) -> Result<(), LabError> {
    use sgd_lab::analysis::eigen::{lanczos, LanczosOptions};
    use sgd_lab::analysis::trace::{hutchinson, HutchinsonOptions};
    use sgd_lab::analysis::{BackendOperator, Subset, HUTCHINSON_STREAM};
    use sgd_lab::train::trace::vectors_to_safetensors;
    if let Some(path) = &exports.eigenvectors {
        check_export_path("eigenvectors", path)?;
    }
    if let Some(path) = &exports.epsilon_maximiser {
        if sharp.steps == 0 {
            return Err(LabError::config("epsilon-maximiser", "there is no maximiser with --ascent-steps 0 (which skips the ε-sharpness): give at least 1 ascent step"));
        }
        check_export_path("epsilon-maximiser", path)?;
    }
    let text = fs::read_to_string(config_path).map_err(|e| LabError::Io(format!("cannot read {}: {e}", config_path.display())))?;
    let config = TrainConfig::from_json(&text)?;
    let bytes = fs::read(params).map_err(|e| LabError::Io(format!("cannot read {}: {e}", params.display())))?;
    let (layout, values) = sgd_lab::train::trace::params_from_safetensors(&bytes)?;
    if layout.widths != config.model.layout().widths || layout.activation != config.model.activation {
        return Err(LabError::config("model", format!("the parameters are of a {:?} {:?} net, the config's model differs", layout.widths, layout.activation)));
    }
    if examples == 0 {
        return Err(LabError::config("examples", "must be at least 1"));
    }
    let k = values.len() / layout.params_per_model;
    let data = config.load_data_allowing(&data_args.data_dir, data_args.allow_unpinned_data)?.train;
    let subset_n = examples.min(data.n);
    let (mut engine, fallback_reason) = pollster::block_on(make_backend(&layout, k, subset_n.min(256), choice(backend)))?;
    if let Some(why) = fallback_reason {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    let handle = engine.upload_dataset(&data)?;
    engine.write_params(&values)?;
    let subset = Subset::first(handle, data.n, examples);
    let describe = engine.describe();
    let timer = std::time::Instant::now();
    let mut op = BackendOperator::new(&mut engine, subset);
    let lanczos_opts = LanczosOptions { top_k: top_k.max(1), iterations, seed: exports.seed, model_seeds: Vec::new(), vectors: exports.eigenvectors.is_some() };
    let eig = pollster::block_on(lanczos(&mut op, &lanczos_opts))?;
    let lanczos_s = timer.elapsed().as_secs_f64();
    let hutchinson_opts = HutchinsonOptions { max_samples: trace_samples, seed: exports.seed, ..Default::default() };
    let tr = if trace_samples > 0 { pollster::block_on(hutchinson(&mut op, &hutchinson_opts))? } else { Vec::new() };
    let hvps = op.products;
    let hutchinson_s = timer.elapsed().as_secs_f64() - lanczos_s;
    let eps = if sharp.steps > 0 { Some(pollster::block_on(sgd_lab::analysis::sharpness::epsilon_sharpness(&mut engine, subset, &sharp))?) } else { None };
    let sharpness_s = timer.elapsed().as_secs_f64() - lanczos_s - hutchinson_s;
    // Model m's probes: with no per-model seeds Lanczos uses stream m of the base seed.
    let probes: Vec<serde_json::Value> = (0..k)
        .map(|m| {
            serde_json::json!({
                "lanczos": { "seed": exports.seed, "stream": m },
                "hutchinson": (trace_samples > 0).then(|| serde_json::json!({ "seed": hutchinson_opts.model_seed(m), "stream": HUTCHINSON_STREAM })),
            })
        })
        .collect();
    let models: Vec<serde_json::Value> = (0..k)
        .map(|m| {
            serde_json::json!({
                "lambda_max": eig[m].eigenvalues.first(),
                "eigenvalues": eig[m].eigenvalues,
                "eigenvalue_residuals": eig[m].residuals,
                "lanczos_iterations": eig[m].iterations,
                "trace": tr.get(m).map(|t| t.trace),
                "trace_std_error": tr.get(m).map(|t| t.std_error),
                "trace_samples": tr.get(m).map(|t| t.samples),
                "epsilon_sharpness": eps.as_ref().map(|e| &e.models[m]),
                "probes": probes[m],
            })
        })
        .collect();
    let config_json = config.to_json();
    let json = |v: serde_json::Value| v.to_string();
    let common = |meta: &mut std::collections::HashMap<String, String>| {
        meta.insert("config".into(), config_json.clone());
        meta.insert("dataset".into(), data.name.clone());
        meta.insert("examples".into(), subset.count.to_string());
        meta.insert("backend".into(), describe.clone());
    };
    let write = |path: &Path, bytes: Vec<u8>| -> Result<(), LabError> {
        fs::write(path, bytes).map_err(|e| LabError::Io(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("sgd-lab: wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &exports.eigenvectors {
        // [K, J] vectors, J = the most eigenvalues any model has; a model with fewer (its Krylov space was
        // exhausted) has NaN rows after its own.
        let (p, j) = (layout.params_per_model, eig.iter().map(|e| e.vectors.len()).max().unwrap_or(0));
        let mut flat = vec![f64::NAN; k * j * p];
        for (m, e) in eig.iter().enumerate() {
            for (i, v) in e.vectors.iter().enumerate() {
                flat[(m * j + i) * p..(m * j + i + 1) * p].copy_from_slice(v);
            }
        }
        let mut meta = std::collections::HashMap::new();
        common(&mut meta);
        meta.insert("eigenvalues".into(), json(serde_json::json!(eig.iter().map(|e| &e.eigenvalues).collect::<Vec<_>>())));
        meta.insert("eigenvalue_residuals".into(), json(serde_json::json!(eig.iter().map(|e| &e.residuals).collect::<Vec<_>>())));
        meta.insert("lanczos_iterations".into(), json(serde_json::json!(eig.iter().map(|e| e.iterations).collect::<Vec<_>>())));
        meta.insert("probe_seed".into(), exports.seed.to_string());
        meta.insert("probes".into(), json(serde_json::json!(probes)));
        write(path, vectors_to_safetensors(&layout, &flat, &[k, j], meta)?)?;
    }
    if let (Some(path), Some(report)) = (&exports.epsilon_maximiser, &eps) {
        let mut meta = std::collections::HashMap::new();
        common(&mut meta);
        meta.insert("epsilon".into(), json(serde_json::json!(sharp.epsilon)));
        meta.insert("ascent_steps".into(), sharp.steps.to_string());
        let per_model = |f: &dyn Fn(&sgd_lab::analysis::sharpness::EpsilonSharpness) -> serde_json::Value| json(serde_json::Value::Array(report.models.iter().map(f).collect()));
        meta.insert("best_step".into(), per_model(&|e| serde_json::json!(e.best_step)));
        meta.insert("loss".into(), per_model(&|e| serde_json::json!(e.loss)));
        meta.insert("max_loss".into(), per_model(&|e| serde_json::json!(e.max_loss)));
        meta.insert("sharpness".into(), per_model(&|e| serde_json::json!(e.sharpness)));
        write(path, vectors_to_safetensors(&layout, &report.perturbation, &[k], meta)?)?;
    }
    let seconds = serde_json::json!({ "lanczos": lanczos_s, "hutchinson": hutchinson_s, "epsilon_sharpness": sharpness_s });
    let sharp_opts = serde_json::json!({ "epsilon": sharp.epsilon, "ascent_steps": sharp.steps });
    let out = serde_json::json!({ "backend": describe, "dataset": data.name, "examples": subset.count, "hvps": hvps, "probe_seed": exports.seed, "probe_recipe": PROBE_RECIPE, "epsilon_sharpness": sharp_opts, "seconds": seconds, "models": models });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    Ok(())
}

fn train(config_path: &Path, backend: BackendArg, out: &Path, data_args: &DataArgs, quiet: bool, snapshot_every: Option<usize>) -> Result<(), LabError> {
    if snapshot_every == Some(0) {
        return Err(LabError::config("snapshot-every", "must be at least 1"));
    }
    let text = fs::read_to_string(config_path).map_err(|e| LabError::Io(format!("cannot read {}: {e}", config_path.display())))?;
    let config = TrainConfig::from_json(&text)?;
    let data = config.load_data_allowing(&data_args.data_dir, data_args.allow_unpinned_data)?;
    let (engine, fallback_reason) = pollster::block_on(make_backend(&config.model.layout(), config.models.len(), config.max_batch(), choice(backend)))?;
    if let Some(why) = fallback_reason {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    fs::create_dir_all(out).map_err(|e| LabError::Io(format!("cannot create {}: {e}", out.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), LabError> {
        let p = out.join(name);
        fs::write(&p, bytes).map_err(|e| LabError::Io(format!("cannot write {}: {e}", p.display())))
    };
    let config_json = config.to_json();
    write("config.json", config_json.as_bytes())?;
    if let Some(record) = &data.provenance {
        write("data.json", serde_json::to_string_pretty(record).expect("records serialise").as_bytes())?;
    }
    let layout = config.model.layout();
    let (k, batch, steps) = (config.models.len(), config.batch_size, config.steps);

    let mut trainer = Trainer::with_data(config, engine, data)?;
    write("params_initial.safetensors", &params_to_safetensors(&layout, &trainer.trace().initial_params, Some(&config_json))?)?;
    let mut trajectory = snapshot_every.map(|n| {
        trainer.set_snapshot_every(n);
        Trajectory { layout: layout.clone(), models: k, steps: vec![0], params: trainer.trace().initial_params.clone() }
    });
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics = fs::File::create(&metrics_path).map_err(|e| LabError::Io(format!("cannot create {}: {e}", metrics_path.display())))?;

    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(steps as u64) };
    // indicatif draws nothing when stderr is not a terminal; the event lines must still be printed then.
    let say = |line: String| if bar.is_hidden() { if !quiet { eprintln!("{line}") } } else { bar.println(line) };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps  {msg}  eta {eta}").expect("template"));
    while !trainer.is_done() {
        let events = pollster::block_on(trainer.run_chunk_with_curvature())?;
        if let (Some(t), Some(n)) = (trajectory.as_mut(), snapshot_every) {
            let done = trainer.steps_done();
            if (done % n == 0 || trainer.is_done()) && t.steps.last() != Some(&(done as u64)) {
                t.params.extend(pollster::block_on(trainer.backend_mut().read_params())?);
                t.steps.push(done as u64);
            }
        }
        for event in events {
            let line = serde_json::to_string(&event).expect("events serialise");
            writeln!(metrics, "{line}").map_err(|e| LabError::Io(format!("cannot write {}: {e}", metrics_path.display())))?;
            match &event {
                Event::Started { backend, .. } => say(format!("backend: {backend}")),
                Event::Steps { first_step, losses } => {
                    let n = losses.first().map_or(0, Vec::len);
                    bar.set_position((first_step + n) as u64);
                    let mean: Vec<String> = losses.iter().map(|l| format!("{:.3}", l.iter().sum::<f32>() / n.max(1) as f32)).collect();
                    bar.set_message(format!("loss {}", mean.join(" ")));
                }
                Event::Diverged { model, step } => say(format!("model {model} diverged at step {step}")),
                Event::Sharpness { step, lambda_max, stability_threshold, .. } => {
                    let s: Vec<String> = lambda_max.iter().zip(stability_threshold).map(|(l, t)| format!("{l:.3} (2(1+μ)/η = {t:.1})")).collect();
                    say(format!("step {step}: λ_max {}", s.join("  ")));
                }
                Event::Eval { step, metrics } | Event::Finished { steps: step, metrics } => {
                    let show = |name: &str, set: &Option<Vec<sgd_lab::backend::EvalMetrics>>| {
                        if let Some(set) = set {
                            let s: Vec<String> = set.iter().map(|m| format!("{:.4}/{:.1}%", m.loss, 100.0 * m.accuracy)).collect();
                            say(format!("step {step}: {name} loss/acc {}", s.join("  ")));
                        }
                    };
                    show("train", &Some(metrics.train.clone()));
                    show("validation", &metrics.validation);
                    show("test", &metrics.test);
                }
            }
        }
    }
    bar.finish_and_clear();
    let final_params = pollster::block_on(trainer.backend_mut().read_params())?;
    write("params_final.safetensors", &params_to_safetensors(&layout, &final_params, Some(&config_json))?)?;
    let trace = trainer.trace();
    let batches = if trace.batch_sizes.iter().all(|&b| b as usize == batch) {
        batches_to_safetensors(&trace.batches, k, batch)?
    } else {
        scheduled_batches_to_safetensors(&trace.batches, k, &trace.batch_sizes)?
    };
    write("batches.safetensors", &batches)?;
    if let Some(t) = &trajectory {
        write("trajectory.safetensors", &trajectory_to_safetensors(t, Some(&config_json))?)?;
    }
    eprintln!("sgd-lab: wrote {}", out.display());
    Ok(())
}

// ---------------------------------------------------------------- data

/// `sgd-lab data export`: the synthetic set of `--config` (a training or experiment config file, or a
/// preset id) or of `--data` (inline JSON), written into `out` as `format` plus data.json.
fn data_export(config: Option<&str>, data: Option<&str>, out: &Path, format: &str, force: bool) -> Result<(), LabError> {
    use sgd_lab::data::export::{export_synthetic, write_files};
    use sgd_lab::data::SyntheticData;
    let synthetic = match (config, data) {
        (Some(_), Some(_)) => return Err(LabError::config("--config/--data", "give one of --config FILE and --data JSON, not both")),
        (None, None) => {
            return Err(LabError::config(
                "--config/--data",
                "missing: give --config FILE (a training or experiment config, or a preset id) or --data JSON (e.g. '{\"kind\": \"two_spirals\", \"n\": 512, \"seed\": 3}')",
            ))
        }
        (None, Some(json)) => {
            let d: SyntheticData = sgd_lab::error::from_json_str(json).map_err(|e| match e {
                LabError::Config { field, message } if field == "(json)" || field == "?" => LabError::config("--data", message),
                LabError::Config { field, message } => LabError::config(format!("--data.{field}"), message),
                other => other,
            })?;
            d.validate("--data")?;
            d
        }
        (Some(c), None) => {
            let path = Path::new(c);
            let (data, dataset) = if path.exists() {
                let text = fs::read_to_string(path).map_err(|e| LabError::Io(format!("cannot read {c}: {e}")))?;
                let is_experiment = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("experiment").is_some());
                if is_experiment {
                    let e = sgd_lab::experiments::cli::load_config(c, None)?;
                    (e.data, e.dataset)
                } else {
                    let t = TrainConfig::from_json(&text).map_err(|e| match e {
                        LabError::Config { field, message } => LabError::Config { field, message: format!("{message} (in {c})") },
                        other => other,
                    })?;
                    (t.data, t.dataset)
                }
            } else {
                sgd_lab::experiments::presets::preset_json(c).map_err(|e| LabError::Io(format!("cannot read {c}: no such file, nor a shipped preset id ({e})")))?;
                let e = sgd_lab::experiments::cli::load_config(c, None)?;
                (e.data, e.dataset)
            };
            match (data, dataset) {
                (Some(d), _) => d,
                (None, Some(d)) => {
                    let name = d.name.name();
                    return Err(LabError::config(
                        "dataset",
                        format!("{c} trains on the real data set {name}, whose files are IDX already: www/data/{name}/*-ubyte.gz, fetched by scripts/fetch-data; `data export` writes synthetic sets (`data`) only"),
                    ));
                }
                (None, None) => return Err(LabError::config("data", format!("{c} names no data set"))),
            }
        }
    };
    let files = export_synthetic(&synthetic, format.parse()?)?;
    write_files(out, &files, force)?;
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    eprintln!("sgd-lab: wrote {} ({} examples of {}): {}", out.display(), synthetic.len(), serde_json::to_string(&synthetic).expect("json"), names.join(", "));
    Ok(())
}

// ---------------------------------------------------------------- landscape

#[derive(Subcommand)]
enum LandscapeCommand {
    /// Loss and accuracy along (1−α)·θ₁ + α·θ₂; writes landscape.json, landscape.csv, landscape.svg.
    Interpolate {
        /// First parameter file (safetensors written by `sgd-lab train`).
        #[arg(long)]
        a: PathBuf,
        /// Which model of the first file.
        #[arg(long, default_value_t = 0)]
        model_a: usize,
        /// Second parameter file.
        #[arg(long)]
        b: PathBuf,
        /// Which model of the second file.
        #[arg(long, default_value_t = 0)]
        model_b: usize,
        /// Number of α values.
        #[arg(long, default_value_t = 25)]
        points: usize,
        /// Smallest α.
        #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
        from: f64,
        /// Largest α.
        #[arg(long, default_value_t = 2.0, allow_hyphen_values = true)]
        to: f64,
        #[command(flatten)]
        common: LandscapeCommon,
    },
    /// Loss around one model along seeded filter-normalised random directions or the PCA directions of
    /// its training trajectory (2-D heatmap or 1-D curve).
    Slice {
        /// Parameter file (safetensors written by `sgd-lab train`); with `--directions pca` it defaults to
        /// the trajectory's last snapshot.
        #[arg(long, required_unless_present = "trajectory")]
        params: Option<PathBuf>,
        /// `random` (filter-normalised Gaussian) or `pca` (top-2 principal components of `--trajectory`).
        #[arg(long, value_enum, default_value_t = DirectionsArg::Random)]
        directions: DirectionsArg,
        /// `trajectory.safetensors` of `sgd-lab train --snapshot-every N` (for `--directions pca`).
        #[arg(long)]
        trajectory: Option<PathBuf>,
        /// Which model of the file.
        #[arg(long, default_value_t = 0)]
        model: usize,
        /// 1 (θ* + α·δ) or 2 (θ* + α·δ + β·η).
        #[arg(long, default_value_t = 2)]
        dims: usize,
        /// Points per axis.
        #[arg(long, default_value_t = 51)]
        grid: usize,
        /// Smallest α and β (default −1; with PCA the axes fit the trajectory unless --from/--to are given).
        #[arg(long, allow_hyphen_values = true, requires = "to")]
        from: Option<f64>,
        /// Largest α and β (default 1).
        #[arg(long, allow_hyphen_values = true, requires = "from")]
        to: Option<f64>,
        /// Seed of the directions.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also perturb the biases (each layer's bias direction scaled to the norm of its biases).
        #[arg(long)]
        normalize_biases: bool,
        #[command(flatten)]
        common: LandscapeCommon,
    },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum DirectionsArg {
    /// Seeded Gaussian directions, filter-normalised (Li et al. 2018).
    Random,
    /// The top-2 principal components of a training trajectory (Li et al. 2018, §7).
    Pca,
}

#[derive(clap::Args)]
struct LandscapeCommon {
    /// The run's JSON config (architecture and data sets).
    #[arg(long)]
    config: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Which engine evaluates the models.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    #[command(flatten)]
    data: DataArgs,
    /// Models evaluated together (one tile of points).
    #[arg(long, default_value_t = 32)]
    tile: usize,
    /// Examples per evaluation chunk.
    #[arg(long, default_value_t = 256)]
    chunk: usize,
    /// Data sets, comma-separated, among train, validation, test (default: all for interpolate, train for slice).
    #[arg(long, value_delimiter = ',')]
    sets: Option<Vec<String>>,
    /// Evaluate only the first N examples of each set (default: all for interpolate, 2000 for slice).
    #[arg(long)]
    examples: Option<usize>,
}

impl LandscapeCommon {
    fn into_common(self, sets: &[&str], examples: Option<usize>) -> sgd_lab::analysis::run::Common {
        sgd_lab::analysis::run::Common {
            config: self.config,
            data_dir: self.data.data_dir,
            allow_unpinned_data: self.data.allow_unpinned_data,
            out: self.out,
            backend: choice(self.backend),
            tile: self.tile,
            chunk: self.chunk,
            sets: self.sets.unwrap_or_else(|| sets.iter().map(|s| s.to_string()).collect()),
            examples: self.examples.or(examples),
        }
    }
}

fn landscape(command: LandscapeCommand) -> Result<(), LabError> {
    use sgd_lab::analysis::landscape::BiasMode;
    use sgd_lab::analysis::run::{run_interpolate, run_slice, Directions, InterpolateArgs, SliceArgs};
    let out = match command {
        LandscapeCommand::Interpolate { a, model_a, b, model_b, points, from, to, common } => {
            let c = common.into_common(&["train", "validation", "test"], None);
            run_interpolate(&c, &InterpolateArgs { a: (a, model_a), b: (b, model_b), points, range: (from, to) })?;
            c.out
        }
        LandscapeCommand::Slice { params, directions, trajectory, model, dims, grid, from, to, seed, normalize_biases, common } => {
            let c = common.into_common(&["train"], Some(2000));
            let bias = if normalize_biases { BiasMode::Normalized } else { BiasMode::Zero };
            let directions = match (directions, trajectory) {
                (DirectionsArg::Pca, Some(trajectory)) => Directions::Pca { trajectory },
                (DirectionsArg::Pca, None) => return Err(LabError::config("trajectory", "--directions pca needs --trajectory T.safetensors (from `sgd-lab train --snapshot-every N`)")),
                (DirectionsArg::Random, Some(_)) => return Err(LabError::config("trajectory", "only used with --directions pca")),
                (DirectionsArg::Random, None) => Directions::Random,
            };
            let range = from.zip(to);
            run_slice(&c, &SliceArgs { params: (params, model), directions, dims, grid, range, seed, bias })?;
            c.out
        }
    };
    eprintln!("sgd-lab: wrote {}", out.display());
    Ok(())
}
