//! `sgd-lab landscape interpolate|slice`: read parameters and a config, compute the landscape on the chosen
//! backend, write `landscape.json`, `landscape.csv` and SVG figures (docs/landscape.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::args::{DirectionsArg, LandscapeCommand, LandscapeCommon};
use crate::analysis::landscape::{interpolate, linspace, pca_directions, pick_model, random_direction, slice_1d, slice_2d, BiasMode, EvalSet, Landscape};
use crate::analysis::plot;
use crate::backend::any::{make_backend, AnyBackend, BackendChoice};
use crate::backend::Backend;
use crate::error::{LabError, Result};
use crate::model::Layout;
use crate::train::safetensors::{params_from_safetensors, params_to_safetensors, trajectory_from_safetensors};
use crate::train::TrainConfig;

/// What every landscape command shares.
#[derive(Clone, Debug)]
pub struct Common {
    /// The run's config (architecture and data sets).
    pub config: PathBuf,
    /// Where the real data sets live (`www/data`).
    pub data_dir: PathBuf,
    /// Accept data files that are not the pinned ones.
    pub allow_unpinned_data: bool,
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// CPU, GPU or automatic.
    pub backend: BackendChoice,
    /// Models per tile (the backend's K).
    pub tile: usize,
    /// Evaluation chunk (the backend's max_batch).
    pub chunk: usize,
    /// Data sets to evaluate, among `train`, `validation`, `test` (missing ones are skipped).
    pub sets: Vec<String>,
    /// Evaluate the first this many examples of each set (None: all).
    pub examples: Option<usize>,
}

/// `sgd-lab landscape interpolate`.
#[derive(Clone, Debug)]
pub struct InterpolateArgs {
    /// First parameter file and model index in it.
    pub a: (PathBuf, usize),
    /// Second parameter file and model index in it.
    pub b: (PathBuf, usize),
    /// Number of α values.
    pub points: usize,
    /// α range.
    pub range: (f64, f64),
}

/// Where the directions of a slice come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Directions {
    /// Seeded Gaussian directions, filter-normalised against θ*.
    Random,
    /// The top-2 principal components of a trajectory file's snapshots around θ* (Li et al. 2018, §7).
    Pca {
        /// `trajectory.safetensors` of `sgd-lab train --snapshot-every N`.
        trajectory: PathBuf,
    },
}

/// `sgd-lab landscape slice`.
#[derive(Clone, Debug)]
pub struct SliceArgs {
    /// Parameter file (None: the trajectory's last snapshot, PCA only) and model index (the centre θ*).
    pub params: (Option<PathBuf>, usize),
    /// Random or PCA directions.
    pub directions: Directions,
    /// 1 or 2 dimensions.
    pub dims: usize,
    /// Points per axis.
    pub grid: usize,
    /// Range of α (and β). None: [−1, 1] for random directions; for PCA, the trajectory's bounding box
    /// with a margin of 25% of its extent (each axis on its own).
    pub range: Option<(f64, f64)>,
    /// Seed of the random directions (δ: stream 0, η: stream 1).
    pub seed: u64,
    /// Bias directions.
    pub bias: BiasMode,
}

impl LandscapeCommon {
    /// The flags as the runs take them, with the command's default data sets and number of examples.
    fn into_common(self, sets: &[&str], examples: Option<usize>) -> Common {
        Common {
            config: self.config,
            data_dir: self.data.data_dir,
            allow_unpinned_data: self.data.allow_unpinned_data,
            out: self.out,
            backend: self.engine.choice(),
            tile: self.tile,
            chunk: self.chunk,
            sets: self.sets.unwrap_or_else(|| sets.iter().map(|s| s.to_string()).collect()),
            examples: self.examples.or(examples),
        }
    }
}

/// `sgd-lab landscape …`: runs the command, then says where it wrote.
pub fn landscape(command: LandscapeCommand) -> Result<()> {
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

/// `landscape.json`: the landscape and how it was computed.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    landscape: &'a Landscape,
    backend: String,
    models_per_tile: usize,
    seconds: f64,
    points_per_second: f64,
    sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bias: Option<BiasMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pca: Option<PcaReport>,
}

/// What `landscape.json` says about PCA directions.
#[derive(Serialize)]
struct PcaReport {
    trajectory: String,
    explained_variance: [f64; 2],
    steps: Vec<u64>,
    /// (α, β) of every snapshot.
    coords: Vec<(f64, f64)>,
}

fn io<E: std::fmt::Display>(what: &Path) -> impl FnOnce(E) -> LabError + '_ {
    move |e| LabError::Io(format!("{}: {e}", what.display()))
}

fn load_model(path: &Path, m: usize, want: &Layout) -> Result<Vec<f32>> {
    let bytes = fs::read(path).map_err(io(path))?;
    let (layout, params) = params_from_safetensors(&bytes)?;
    if &layout != want {
        return Err(LabError::Io(format!("{}: its layout (widths {:?}) differs from the config's model (widths {:?})", path.display(), layout.widths, want.widths)));
    }
    pick_model(&layout, &params, m).map_err(|e| LabError::Io(format!("{}: {e}", path.display())))
}

/// Loads the config and data, builds the backend, uploads the chosen sets.
fn prepare(c: &Common) -> Result<(TrainConfig, AnyBackend, Vec<EvalSet>)> {
    let text = fs::read_to_string(&c.config).map_err(io(&c.config))?;
    let config = TrainConfig::from_json(&text)?;
    let data = config.load_data_allowing(&c.data_dir, c.allow_unpinned_data)?;
    let (mut backend, why) = pollster::block_on(make_backend(&config.model.layout(), c.tile, c.chunk, c.backend))?;
    if let Some(why) = why {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    let mut sets = Vec::new();
    for name in &c.sets {
        let d = match name.as_str() {
            "train" => Some(&data.train),
            "validation" => data.validation.as_ref(),
            "test" => data.test.as_ref(),
            other => return Err(LabError::config("sets", format!("unknown data set `{other}`: use train, validation, test"))),
        };
        if let Some(d) = d {
            let h = backend.upload_dataset(d)?;
            sets.push(EvalSet { name: name.clone(), data: h, start: 0, count: c.examples.map_or(d.n, |e| e.min(d.n)) });
        }
    }
    Ok((config, backend, sets))
}

fn write(out: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let p = out.join(name);
    fs::write(&p, bytes).map_err(io(&p))
}

fn report(l: &Landscape, backend: &AnyBackend, start: Instant, sources: Vec<String>, seed: Option<u64>, bias: Option<BiasMode>, pca: Option<PcaReport>) -> String {
    let seconds = start.elapsed().as_secs_f64();
    let r = Report {
        landscape: l,
        backend: backend.describe(),
        models_per_tile: backend.models(),
        seconds,
        points_per_second: l.points() as f64 / seconds,
        sources,
        seed,
        bias,
        pca,
    };
    eprintln!("sgd-lab: {} points in {seconds:.2} s ({:.1} points/s) on {}", l.points(), r.points_per_second, r.backend);
    serde_json::to_string_pretty(&r).expect("report serialises")
}

/// Interpolates between two models and writes `landscape.{json,csv,svg}` into `c.out`.
pub fn run_interpolate(c: &Common, a: &InterpolateArgs) -> Result<Landscape> {
    let (config, mut backend, sets) = prepare(c)?;
    let layout = config.model.layout();
    let t1 = load_model(&a.a.0, a.a.1, &layout)?;
    let t2 = load_model(&a.b.0, a.b.1, &layout)?;
    let alphas = linspace(a.range.0, a.range.1, a.points);
    let start = Instant::now();
    let l = pollster::block_on(interpolate(&mut backend, &t1, &t2, &alphas, &sets))?;
    fs::create_dir_all(&c.out).map_err(io(&c.out))?;
    let sources = vec![format!("{}#{}", a.a.0.display(), a.a.1), format!("{}#{}", a.b.0.display(), a.b.1)];
    write(&c.out, "landscape.json", report(&l, &backend, start, sources, None, None, None).as_bytes())?;
    write(&c.out, "landscape.csv", l.to_csv().as_bytes())?;
    let title = format!("(1−α)·θ₁ + α·θ₂   θ₁ = model {} of {}, θ₂ = model {} of {}", a.a.1, file_name(&a.a.0), a.b.1, file_name(&a.b.0));
    write(&c.out, "landscape.svg", plot::line_svg(&l, &title, &[(0.0, "θ₁"), (1.0, "θ₂")])?.as_bytes())?;
    Ok(l)
}

fn file_name(p: &Path) -> String {
    let parent = p.parent().and_then(Path::file_name).map(|s| s.to_string_lossy().into_owned());
    let name = p.file_name().map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned());
    parent.map_or(name.clone(), |d| format!("{d}/{name}"))
}

/// The α (or β) axis covering `values` with a margin of 25% of their extent (at least ±0.1·max|v|).
fn fitted_axis(values: impl Iterator<Item = f64>, n: usize) -> Vec<f64> {
    let (lo, hi) = values.fold((0f64, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let m = (0.25 * (hi - lo)).max(0.1 * lo.abs().max(hi.abs())).max(1e-6);
    linspace(lo - m, hi + m, n)
}

/// A 1-D or 2-D slice around one model along seeded filter-normalised random directions or the PCA
/// directions of a trajectory; writes `landscape.{json,csv}`, `directions.safetensors` and one SVG per
/// data set into `c.out` (2-D PCA figures show the projected trajectory).
pub fn run_slice(c: &Common, a: &SliceArgs) -> Result<Landscape> {
    if a.dims != 1 && a.dims != 2 {
        return Err(LabError::config("dims", format!("must be 1 or 2, got {}", a.dims)));
    }
    let (config, mut backend, sets) = prepare(c)?;
    let layout = config.model.layout();
    let traj = match &a.directions {
        Directions::Random => None,
        Directions::Pca { trajectory } => {
            let t = trajectory_from_safetensors(&fs::read(trajectory).map_err(io(trajectory))?).map_err(|e| LabError::Io(format!("{}: {e}", trajectory.display())))?;
            if t.layout != layout {
                return Err(LabError::Io(format!("{}: its layout (widths {:?}) differs from the config's model (widths {:?})", trajectory.display(), t.layout.widths, layout.widths)));
            }
            Some((trajectory, t))
        }
    };
    let theta = match (&a.params.0, &traj) {
        (Some(p), _) => load_model(p, a.params.1, &layout)?,
        (None, Some((_, t))) => t.model(a.params.1)?.last().expect("a trajectory has snapshots").iter().map(|&v| v as f32).collect(),
        (None, None) => return Err(LabError::config("params", "a slice along random directions needs --params")),
    };
    let (d1, d2, pca) = match &traj {
        None => (random_direction(&layout, &theta, a.seed, 0, a.bias), random_direction(&layout, &theta, a.seed, 1, a.bias), None),
        Some((path, t)) => {
            let centre: Vec<f64> = theta.iter().map(|&v| v as f64).collect();
            let p = pca_directions(&t.model(a.params.1)?, &centre)?;
            let f = |d: &[f64]| d.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            eprintln!("sgd-lab: PCA of {} snapshots: explained variance {:.1}% + {:.1}%", t.steps.len(), 100.0 * p.explained_variance[0], 100.0 * p.explained_variance[1]);
            (f(&p.d1), f(&p.d2), Some((path.display().to_string(), t.steps.clone(), p)))
        }
    };
    let (alphas, betas) = match (a.range, &pca) {
        (Some((lo, hi)), _) => (linspace(lo, hi, a.grid), linspace(lo, hi, a.grid)),
        (None, None) => (linspace(-1.0, 1.0, a.grid), linspace(-1.0, 1.0, a.grid)),
        (None, Some((_, _, p))) => (fitted_axis(p.coords.iter().map(|c| c.0), a.grid), fitted_axis(p.coords.iter().map(|c| c.1), a.grid)),
    };
    let start = Instant::now();
    let l = if a.dims == 1 {
        pollster::block_on(slice_1d(&mut backend, &theta, &d1, &alphas, &sets))?
    } else {
        pollster::block_on(slice_2d(&mut backend, &theta, &d1, &d2, &alphas, &betas, &sets))?
    };
    fs::create_dir_all(&c.out).map_err(io(&c.out))?;
    let source = a.params.0.as_ref().map_or_else(|| pca.as_ref().map_or(String::new(), |p| p.0.clone()), |p| p.display().to_string());
    let sources = vec![format!("{source}#{}", a.params.1)];
    let pca_report = pca.as_ref().map(|(path, steps, p)| PcaReport { trajectory: path.clone(), explained_variance: p.explained_variance, steps: steps.clone(), coords: p.coords.clone() });
    let (seed, bias) = if pca.is_some() { (None, None) } else { (Some(a.seed), Some(a.bias)) };
    write(&c.out, "landscape.json", report(&l, &backend, start, sources, seed, bias, pca_report).as_bytes())?;
    write(&c.out, "landscape.csv", l.to_csv().as_bytes())?;
    let dirs = if a.dims == 1 { d1.clone() } else { [d1, d2].concat() };
    write(&c.out, "directions.safetensors", &params_to_safetensors(&layout, &dirs, None)?)?;
    let who = format!("model {} of {}", a.params.1, a.params.0.as_deref().map_or_else(|| "the trajectory's end".to_string(), file_name));
    let what = if pca.is_some() { "PCA directions".to_string() } else { format!("seed {}", a.seed) };
    if a.dims == 1 {
        write(&c.out, "landscape.svg", plot::line_svg(&l, &format!("θ* + α·δ   θ* = {who}, {what}"), &[(0.0, "θ*")])?.as_bytes())?;
    } else {
        let style = match &pca {
            None => plot::HeatmapStyle::default(),
            Some((_, _, p)) => plot::HeatmapStyle {
                x_desc: format!("α: 1st PCA direction ({:.1}% of variance)", 100.0 * p.explained_variance[0]),
                y_desc: format!("β: 2nd PCA direction ({:.1}% of variance)", 100.0 * p.explained_variance[1]),
                path: Some(p.coords.clone()),
            },
        };
        for (i, s) in l.sets.iter().enumerate() {
            let title = format!("{} loss at θ* + α·δ + β·η   ({who}, {what}, {} examples)", s.name, s.examples);
            write(&c.out, &format!("landscape_{}.svg", s.name), plot::heatmap_svg_with(&l, i, &title, 12, &style)?.as_bytes())?;
        }
    }
    Ok(l)
}
