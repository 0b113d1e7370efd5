//! The `sgd-lab landscape …` commands as library functions (native only): read parameters and a config,
//! compute the landscape on the chosen backend, write `landscape.json`, `landscape.csv` and SVG figures.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::landscape::{interpolate, linspace, pick_model, random_direction, slice_1d, slice_2d, BiasMode, EvalSet, Landscape};
use super::plot;
use crate::backend::any::{make_backend, AnyBackend, BackendChoice};
use crate::backend::Backend;
use crate::error::{LabError, Result};
use crate::model::Layout;
use crate::train::trace::{params_from_safetensors, params_to_safetensors};
use crate::train::TrainConfig;

/// What every landscape command shares.
#[derive(Clone, Debug)]
pub struct Common {
    /// The run's config (architecture and data sets).
    pub config: PathBuf,
    /// Where the real data sets live (`www/data`).
    pub data_dir: PathBuf,
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

/// `sgd-lab landscape slice`.
#[derive(Clone, Debug)]
pub struct SliceArgs {
    /// Parameter file and model index in it (the centre θ*).
    pub params: (PathBuf, usize),
    /// 1 or 2 dimensions.
    pub dims: usize,
    /// Points per axis.
    pub grid: usize,
    /// Range of α (and β).
    pub range: (f64, f64),
    /// Seed of the random directions (δ: stream 0, η: stream 1).
    pub seed: u64,
    /// Bias directions.
    pub bias: BiasMode,
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
    let data = config.load_data(&c.data_dir)?;
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

fn report(l: &Landscape, backend: &AnyBackend, start: Instant, sources: Vec<String>, seed: Option<u64>, bias: Option<BiasMode>) -> String {
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
    write(&c.out, "landscape.json", report(&l, &backend, start, sources, None, None).as_bytes())?;
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

/// A 1-D or 2-D slice around one model along seeded filter-normalised directions; writes
/// `landscape.{json,csv}`, `directions.safetensors` and one SVG per data set into `c.out`.
pub fn run_slice(c: &Common, a: &SliceArgs) -> Result<Landscape> {
    if a.dims != 1 && a.dims != 2 {
        return Err(LabError::config("dims", format!("must be 1 or 2, got {}", a.dims)));
    }
    let (config, mut backend, sets) = prepare(c)?;
    let layout = config.model.layout();
    let theta = load_model(&a.params.0, a.params.1, &layout)?;
    let d1 = random_direction(&layout, &theta, a.seed, 0, a.bias);
    let d2 = random_direction(&layout, &theta, a.seed, 1, a.bias);
    let axis = linspace(a.range.0, a.range.1, a.grid);
    let start = Instant::now();
    let l = if a.dims == 1 {
        pollster::block_on(slice_1d(&mut backend, &theta, &d1, &axis, &sets))?
    } else {
        pollster::block_on(slice_2d(&mut backend, &theta, &d1, &d2, &axis, &axis, &sets))?
    };
    fs::create_dir_all(&c.out).map_err(io(&c.out))?;
    let sources = vec![format!("{}#{}", a.params.0.display(), a.params.1)];
    write(&c.out, "landscape.json", report(&l, &backend, start, sources, Some(a.seed), Some(a.bias)).as_bytes())?;
    write(&c.out, "landscape.csv", l.to_csv().as_bytes())?;
    let dirs = if a.dims == 1 { d1.clone() } else { [d1, d2].concat() };
    write(&c.out, "directions.safetensors", &params_to_safetensors(&layout, &dirs, None)?)?;
    let who = format!("model {} of {}", a.params.1, file_name(&a.params.0));
    if a.dims == 1 {
        write(&c.out, "landscape.svg", plot::line_svg(&l, &format!("θ* + α·δ   θ* = {who}, seed {}", a.seed), &[(0.0, "θ*")])?.as_bytes())?;
    } else {
        for (i, s) in l.sets.iter().enumerate() {
            let title = format!("{} loss at θ* + α·δ + β·η   ({who}, {} examples)", s.name, s.examples);
            write(&c.out, &format!("landscape_{}.svg", s.name), plot::heatmap_svg(&l, i, &title, 12)?.as_bytes())?;
        }
    }
    Ok(l)
}
