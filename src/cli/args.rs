//! The command line's grammar: the clap structs of `sgd-lab` (its commands, their flags, defaults, env
//! variables and value parsers). Each flag that several commands share is declared once: the engine choice
//! in [`EngineArgs`], where the real data sets are in [`DataArgs`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::any::BackendChoice;

/// `sgd-lab`'s command line: one command.
#[derive(Parser)]
#[command(long_about = None)]
#[command(name = "sgd-lab", version, about = "Reproduce 'Three Factors Influencing Minima in SGD' on your GPU or CPU")]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `sgd-lab`.
#[derive(Subcommand)]
pub enum Command {
    /// Train the K models of a config and write metrics and the trace.
    Train {
        /// The run's JSON config (see README for the fields).
        #[arg(long)]
        config: PathBuf,
        /// `--backend`.
        #[command(flatten)]
        engine: EngineArgs,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// `--data-dir`, `--allow-unpinned-data`.
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
    #[command(mut_arg("backend", |a| a.help("Which engine computes the Hessian-vector products")))]
    Hessian {
        /// Parameters of the K models (e.g. `params_final.safetensors` of a `train` run).
        #[arg(long)]
        params: PathBuf,
        /// The run's JSON config (its data set is the one the Hessian is taken on).
        #[arg(long)]
        config: PathBuf,
        /// `--backend`.
        #[command(flatten)]
        engine: EngineArgs,
        /// The Hessian of the mean loss over the first N training examples (all if fewer).
        #[arg(long, default_value_t = crate::analysis::DEFAULT_EXAMPLES)]
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
        #[arg(long, default_value_t = crate::analysis::sharpness::DEFAULT_EPSILON)]
        epsilon: f64,
        /// Projected sign-gradient ascent steps of the ε-sharpness (0: skip it).
        #[arg(long, default_value_t = crate::analysis::sharpness::DEFAULT_ASCENT_STEPS)]
        ascent_steps: usize,
        /// `--data-dir`, `--allow-unpinned-data`.
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
        /// Interpolate or slice.
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
        /// `--backend`.
        #[command(flatten)]
        engine: EngineArgs,
        /// Run only the groups with index ≡ i (mod n), e.g. `--shard 0/4`; combine with `sgd-lab merge`.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// A JSON merge patch applied to the preset, e.g. '{"budget": {"epochs": 1}, "seeds": [1]}'.
        #[arg(long = "override")]
        patch: Option<String>,
        /// `--data-dir`, `--allow-unpinned-data`.
        #[command(flatten)]
        data: DataArgs,
        /// Print no progress.
        #[arg(long)]
        quiet: bool,
        /// Seconds between mid-group checkpoints (checkpoint.safetensors in the run directory, written at the
        /// next chunk boundary, resumed from on a rerun); fractions allowed; 0 turns them off.
        #[arg(long, value_name = "SECONDS", default_value = "60", allow_negative_numbers = true, value_parser = parse_checkpoint_every)]
        checkpoint_every: std::time::Duration,
        /// Delete the run directory's mid-group checkpoint instead of resuming from it.
        #[arg(long)]
        discard_checkpoint: bool,
    },
    /// Merge the run directories of the shards of one experiment, finish it and write its report.
    #[command(mut_arg("backend", |a| a.help("Which engine runs what remains (interpolations)")))]
    Merge {
        /// The shards' run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged results and report go.
        #[arg(long)]
        out: PathBuf,
        /// `--backend`.
        #[command(flatten)]
        engine: EngineArgs,
        /// `--data-dir`, `--allow-unpinned-data`.
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
        /// Export or indices.
        #[command(subcommand)]
        command: DataCommand,
    },
}

/// `sgd-lab data …`.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Print, as JSON, the exact training and validation rows (in their files), the replaced labels and the
    /// provenance record of every real data set of a run directory / results.json, a preset or a config;
    /// for a saved run also whether the rebuilt data match what it recorded (docs/data.md).
    Indices {
        /// A run directory, its results.json, a preset id or file, or a training config.
        input: String,
        /// `--data-dir`, `--allow-unpinned-data`.
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
pub struct DataArgs {
    /// Where `scripts/fetch-data` put the real data sets (`<dir>/fashion-mnist/`, `<dir>/mnist/`).
    #[arg(long, env = "SGD_LAB_DATA_DIR", default_value = "www/data")]
    pub data_dir: PathBuf,
    /// Use data files whose SHA-256 differs from the one the lab pins (src/data/pinned-idx.sha256): the
    /// results record their hashes, and that they are not the pinned files.
    #[arg(long)]
    pub allow_unpinned_data: bool,
}

/// `i/n` with i < n.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not i/n (e.g. 0/4)"))?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| format!("`{i}` is not a number"))?, n.trim().parse().map_err(|_| format!("`{n}` is not a number"))?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: needs 0 ≤ i < n"));
    }
    Ok((i, n))
}

/// `--backend`: which engine.
#[derive(Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// The f32 CPU backend.
    Cpu,
    /// The wgpu backend; fails if no GPU adapter is found.
    Gpu,
    /// The GPU if one is found, else the CPU (the reason is printed).
    Auto,
}


/// `sgd-lab landscape …`.
#[derive(Subcommand)]
pub enum LandscapeCommand {
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
        /// What both landscape commands take.
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
        /// What both landscape commands take.
        #[command(flatten)]
        common: LandscapeCommon,
    },
}

/// `--directions` of `sgd-lab landscape slice`.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum DirectionsArg {
    /// Seeded Gaussian directions, filter-normalised (Li et al. 2018).
    Random,
    /// The top-2 principal components of a training trajectory (Li et al. 2018, §7).
    Pca,
}

/// What both landscape commands take.
#[derive(clap::Args)]
#[command(mut_arg("backend", |a| a.help("Which engine evaluates the models")))]
pub struct LandscapeCommon {
    /// The run's JSON config (architecture and data sets).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// `--backend`.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Where the real data sets are.
    #[command(flatten)]
    pub data: DataArgs,
    /// Models evaluated together (one tile of points).
    #[arg(long, default_value_t = 32)]
    pub tile: usize,
    /// Examples per evaluation chunk.
    #[arg(long, default_value_t = 256)]
    pub chunk: usize,
    /// Data sets, comma-separated, among train, validation, test (default: all for interpolate, train for slice).
    #[arg(long, value_delimiter = ',')]
    pub sets: Option<Vec<String>>,
    /// Evaluate only the first N examples of each set (default: all for interpolate, 2000 for slice).
    #[arg(long)]
    pub examples: Option<usize>,
}

/// `--backend`, declared once for every command that runs the kernels (its help names what the engine does
/// in each command).
#[derive(clap::Args, Clone, Copy)]
pub struct EngineArgs {
    /// Which engine runs the kernels.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
}

impl EngineArgs {
    /// The engine the library understands.
    pub fn choice(self) -> BackendChoice {
        match self.backend {
            BackendArg::Cpu => BackendChoice::Cpu,
            BackendArg::Gpu => BackendChoice::Gpu,
            BackendArg::Auto => BackendChoice::Auto,
        }
    }
}

/// Parses `--checkpoint-every`: seconds ≥ 0 (fractions allowed); zero means no checkpoints.
pub fn parse_checkpoint_every(s: &str) -> std::result::Result<std::time::Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds (e.g. 60, or 0.5; 0 turns checkpoints off)"))?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("must be between 0 and 1e9 seconds (0 turns checkpoints off), got {s}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
