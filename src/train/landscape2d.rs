//! The 2-D loss landscape around one model of a running [`Trainer`], as the page's free play shows it
//! (`FreePlay.landscape2d` in `src/web/free_play.rs` is a thin wrapper around [`landscape_2d`]; this module exists so
//! that the wasm method and its native tests run the same code).
//!
//! The plane is spanned either by the top-2 principal directions of the model's training trajectory around
//! its current parameters θ* (Li et al. 2018, §7; needs a [`SnapshotLog`]) or by two seeded filter-normalised
//! random directions. The grid `θ* + α·d₁ + β·d₂` is evaluated K points at a time with
//! [`slice_2d`] on the first `examples` training examples, then drawn by [`plot::heatmap_figure`], the CLI's
//! heatmap (contours, the trajectory overlaid). The trained parameters are written back afterwards.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::analysis::landscape::{pca_directions, pick_model, random_direction, slice_2d, BiasMode, EvalSet, Landscape};
use crate::analysis::plot::{self, PlotBox};
use crate::backend::perturb::Perturb;
use crate::backend::Backend;
use crate::error::{LabError, Result};
use crate::train::Trainer;

/// Points per axis when the options do not say.
pub const DEFAULT_GRID: usize = 21;
/// Allowed points per axis (a 61 × 61 grid is 3721 evaluations: already slow on the CPU in a tab).
pub const GRID_RANGE: RangeInclusive<usize> = 3..=61;
/// Allowed snapshot capacities of a [`SnapshotLog`].
pub const SNAPSHOT_MAX_RANGE: RangeInclusive<usize> = 3..=1024;
/// Contour lines of the figure.
const LEVELS: usize = 12;

/// Where the plane's directions come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaneDirections {
    /// The top-2 principal directions of the training trajectory (needs snapshots).
    #[default]
    Pca,
    /// Two seeded Gaussian directions, filter-normalised against θ* (biases not perturbed).
    Random,
}

fn default_grid() -> usize {
    DEFAULT_GRID
}

/// What `FreePlay.landscape2d(options)` accepts (every field optional; unknown fields are refused).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Landscape2dOptions {
    /// Points per axis ([`GRID_RANGE`], default [`DEFAULT_GRID`]).
    #[serde(default = "default_grid")]
    pub grid: usize,
    /// The axes run over `[−span, span]`. Default: 1 for random directions; for PCA, per axis 1.25 × the
    /// largest |coordinate| of the trajectory.
    #[serde(default)]
    pub span: Option<f64>,
    /// `"pca"` (default) or `"random"`.
    #[serde(default)]
    pub directions: PlaneDirections,
    /// Seed of the random directions (d₁: stream 0, d₂: stream 1).
    #[serde(default)]
    pub seed: u64,
    /// Which of the run's models (default 0).
    #[serde(default)]
    pub model: usize,
    /// Evaluate on the first this many training examples (default: all).
    #[serde(default)]
    pub examples: Option<usize>,
}

impl Default for Landscape2dOptions {
    fn default() -> Self {
        Landscape2dOptions { grid: DEFAULT_GRID, span: None, directions: PlaneDirections::Pca, seed: 0, model: 0, examples: None }
    }
}

impl Landscape2dOptions {
    /// Parses the options' JSON (`{}` gives the defaults); a wrong type or unknown field names the option.
    pub fn from_json(text: &str) -> Result<Self> {
        crate::error::from_json_str(text)
    }

    /// Checks the options against a run of `models` models and `train` training examples.
    pub fn validate(&self, models: usize, train: usize) -> Result<()> {
        if !GRID_RANGE.contains(&self.grid) {
            return Err(LabError::config("grid", format!("must be in {}..={} points per axis, got {}", GRID_RANGE.start(), GRID_RANGE.end(), self.grid)));
        }
        if let Some(s) = self.span {
            if !(s.is_finite() && s > 0.0) {
                return Err(LabError::config("span", format!("must be a finite number > 0, got {s}")));
            }
        }
        if self.model >= models {
            return Err(LabError::config("model", format!("model {} does not exist: the run has {models}", self.model)));
        }
        if let Some(e) = self.examples {
            if e == 0 || e > train {
                return Err(LabError::config("examples", format!("must be in 1..={train} (the training set), got {e}")));
            }
        }
        Ok(())
    }
}

/// Parameter snapshots of a training run, bounded: recorded every `every` steps; when more than `max` are
/// held, every second one is dropped (the first is kept) and `every` doubles, so a run of any length keeps
/// between `max/2` and `max` snapshots spread over its whole trajectory.
#[derive(Clone, Debug)]
pub struct SnapshotLog {
    every: usize,
    max: usize,
    steps: Vec<usize>,
    params: Vec<Vec<f32>>,
}

impl SnapshotLog {
    /// An empty log recording every `every` (≥ 1) steps, holding at most `max` ([`SNAPSHOT_MAX_RANGE`]) snapshots.
    pub fn new(every: usize, max: usize) -> Result<Self> {
        if every == 0 {
            return Err(LabError::config("every", "must be at least 1 step"));
        }
        if !SNAPSHOT_MAX_RANGE.contains(&max) {
            return Err(LabError::config("max", format!("must be in {}..={} snapshots, got {max}", SNAPSHOT_MAX_RANGE.start(), SNAPSHOT_MAX_RANGE.end())));
        }
        Ok(SnapshotLog { every, max, steps: Vec::new(), params: Vec::new() })
    }

    /// The current recording interval in steps (doubles each time the log is thinned).
    pub fn every(&self) -> usize {
        self.every
    }

    /// True when a snapshot should be recorded after `step` steps.
    pub fn due(&self, step: usize) -> bool {
        step % self.every == 0 && self.steps.last() != Some(&step)
    }

    /// Records all K models' parameters after `step` steps (ignored if that step is already held), thinning
    /// the log when it is over capacity.
    pub fn record(&mut self, step: usize, params: Vec<f32>) {
        if self.steps.last() == Some(&step) {
            return;
        }
        self.steps.push(step);
        self.params.push(params);
        if self.steps.len() > self.max {
            fn every_second<T>(v: &mut Vec<T>) {
                let mut i = 0;
                v.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
            every_second(&mut self.steps);
            every_second(&mut self.params);
            self.every *= 2;
        }
    }

    /// Steps of the held snapshots, increasing.
    pub fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Starts a log for `trainer` (see [`SnapshotLog::new`]): records its initial parameters if it has not
    /// stepped yet, and makes its chunks end on the recording steps.
    pub fn start<B: Backend>(trainer: &mut Trainer<B>, every: usize, max: usize) -> Result<Self> {
        let mut log = SnapshotLog::new(every, max)?;
        if trainer.steps_done() == 0 {
            log.record(0, trainer.trace().initial_params.clone());
        }
        trainer.set_snapshot_every(log.every());
        Ok(log)
    }

    /// Call after each chunk of `trainer`: records its parameters if a snapshot is due (or the run just
    /// ended), and keeps the trainer's chunks on the (possibly doubled) interval. One parameter readback
    /// when it records, none otherwise.
    pub async fn after_chunk<B: Backend>(&mut self, trainer: &mut Trainer<B>) -> Result<()> {
        let step = trainer.steps_done();
        if self.due(step) || (trainer.is_done() && self.steps.last() != Some(&step)) {
            let params = trainer.backend_mut().read_params().await?;
            self.record(step, params);
            trainer.set_snapshot_every(self.every);
        }
        Ok(())
    }

    /// The held snapshots of all K models, `(step, K × P parameters)`, oldest first.
    pub fn snapshots(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.steps.iter().copied().zip(self.params.iter().map(Vec::as_slice))
    }
}

/// What [`landscape_2d`] computes (`Landscape2d` in TypeScript; the directions stay on the Rust side).
#[derive(Clone, Debug, Serialize)]
pub struct Landscape2d {
    /// `"pca"` or `"random"`.
    pub directions: PlaneDirections,
    /// The model.
    pub model: usize,
    /// Steps the model had taken (θ* is its parameters then).
    pub step: usize,
    /// Training examples evaluated.
    pub examples: usize,
    /// The α axis.
    pub xs: Vec<f64>,
    /// The β axis.
    pub ys: Vec<f64>,
    /// Training loss, row-major by β: `loss[j·xs.len() + i]` is at `(xs[i], ys[j])`.
    pub loss: Vec<f64>,
    /// Training accuracy, same order.
    pub accuracy: Vec<f64>,
    /// `(α, β)` of each trajectory point (snapshots, then θ* = (0, 0)): for PCA its coordinates in the plane,
    /// for random directions the least-squares projection onto the plane.
    pub trajectory: Vec<(f64, f64)>,
    /// Step of each trajectory point.
    pub trajectory_steps: Vec<usize>,
    /// PCA: fraction of the trajectory's squared distance from θ* along d₁ and d₂.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained: Option<[f64; 2]>,
    /// The heatmap with contours and the trajectory (the CLI's figure).
    pub svg: String,
    /// Where the heatmap's plot area lies in `svg`, and the plane coordinates at its edges.
    pub plot_box: PlotBox,
    /// The first direction (P values).
    #[serde(skip)]
    pub d1: Vec<f32>,
    /// The second direction.
    #[serde(skip)]
    pub d2: Vec<f32>,
}

/// `n` values from −s to s, symmetric, with 0 exactly in the middle when `n` is odd.
fn symmetric_axis(s: f64, n: usize) -> Vec<f64> {
    let c = (n - 1) as f64;
    (0..n).map(|i| s * (2.0 * i as f64 - c) / c).collect()
}

/// Least-squares coordinates of `v` in the plane of `d1`, `d2` (f64): solves the 2 × 2 normal equations;
/// a degenerate plane falls back to the projection on each direction alone.
fn project(v: &[f64], d1: &[f32], d2: &[f32]) -> (f64, f64) {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>();
    let dv = |d: &[f32]| d.iter().zip(v).map(|(&x, &y)| x as f64 * y).sum::<f64>();
    let (g11, g12, g22) = (dot(d1, d1), dot(d1, d2), dot(d2, d2));
    let (b1, b2) = (dv(d1), dv(d2));
    let det = g11 * g22 - g12 * g12;
    if det > 1e-12 * g11 * g22 {
        ((b1 * g22 - b2 * g12) / det, (g11 * b2 - g12 * b1) / det)
    } else {
        (if g11 > 0.0 { b1 / g11 } else { 0.0 }, if g22 > 0.0 { b2 / g22 } else { 0.0 })
    }
}

/// The 2-D loss landscape of model `opts.model` of `trainer` around its current parameters (see the module
/// docs). `snapshots` is the run's trajectory (required for PCA directions). Validates `opts` first (errors
/// name the option); the backend's parameters are put back afterwards, even when the evaluation fails, so
/// training can go on.
pub async fn landscape_2d<B: Perturb>(trainer: &mut Trainer<B>, snapshots: Option<&SnapshotLog>, opts: &Landscape2dOptions) -> Result<Landscape2d> {
    let k = trainer.config().models.len();
    let n_train = trainer.data().n;
    opts.validate(k, n_train)?;
    let m = opts.model;
    let step = trainer.steps_done();
    let examples = opts.examples.unwrap_or(n_train);
    let layout = trainer.backend_mut().layout().clone();
    let p = layout.params_per_model;
    let current = trainer.backend_mut().read_params().await?;
    let theta = pick_model(&layout, &current, m)?;
    let centre: Vec<f64> = theta.iter().map(|&v| v as f64).collect();
    // the trajectory: the snapshots before this step, then θ* itself
    let mut traj: Vec<Vec<f64>> = Vec::new();
    let mut traj_steps = Vec::new();
    for (s, all) in snapshots.into_iter().flat_map(SnapshotLog::snapshots) {
        if s < step {
            traj.push(all[m * p..(m + 1) * p].iter().map(|&v| v as f64).collect());
            traj_steps.push(s);
        }
    }
    traj.push(centre.clone());
    traj_steps.push(step);
    let (d1, d2, coords, explained) = match opts.directions {
        PlaneDirections::Pca => {
            if traj.len() < 2 {
                return Err(LabError::config(
                    "directions",
                    "\"pca\" needs the training trajectory: keep snapshots (FreePlay.keepSnapshots) and train some steps first, or use \"random\"",
                ));
            }
            let pca = pca_directions(&traj, &centre).map_err(|e| LabError::config("directions", format!("\"pca\": {e}")))?;
            let f = |d: &[f64]| d.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            (f(&pca.d1), f(&pca.d2), pca.coords, Some(pca.explained_variance))
        }
        PlaneDirections::Random => {
            let d1 = random_direction(&layout, &theta, opts.seed, 0, BiasMode::Zero);
            let d2 = random_direction(&layout, &theta, opts.seed, 1, BiasMode::Zero);
            let coords = traj.iter().map(|t| project(&t.iter().zip(&centre).map(|(a, b)| a - b).collect::<Vec<f64>>(), &d1, &d2)).collect();
            (d1, d2, coords, None)
        }
    };
    let fitted = |c: &mut dyn Iterator<Item = f64>| 1.25 * c.fold(0f64, |a, v| a.max(v.abs()));
    let (sa, sb) = match (opts.span, opts.directions) {
        (Some(s), _) => (s, s),
        (None, PlaneDirections::Random) => (1.0, 1.0),
        (None, PlaneDirections::Pca) => {
            let sa = fitted(&mut coords.iter().map(|c| c.0));
            let sb = fitted(&mut coords.iter().map(|c| c.1));
            // a straight trajectory has no second coordinate: show β over the same span as α
            (sa, if sb > 1e-9 * sa { sb } else { sa })
        }
    };
    let (xs, ys) = (symmetric_axis(sa, opts.grid), symmetric_axis(sb, opts.grid));
    let sets = [EvalSet { name: "train".into(), data: trainer.train_handle(), start: 0, count: examples }];
    let backend = trainer.backend_mut();
    let result = slice_2d(backend, &theta, &d1, &d2, &xs, &ys, &sets).await;
    backend.write_params(&current)?; // put the trained models back, even after an error
    let landscape: Landscape = result?;
    let (x_desc, y_desc, what) = match explained {
        Some(e) => (
            format!("α: 1st PCA direction ({:.1}% of variance)", 100.0 * e[0]),
            format!("β: 2nd PCA direction ({:.1}% of variance)", 100.0 * e[1]),
            "PCA directions of the trajectory".to_string(),
        ),
        None => ("α (random direction δ)".to_string(), "β (random direction η)".to_string(), format!("random directions, seed {}", opts.seed)),
    };
    let style = plot::HeatmapStyle { x_desc, y_desc, path: Some(coords.clone()) };
    let title = format!("training loss at θ* + α·δ + β·η   (model {m} after {step} steps, {what}, {examples} examples)");
    let fig = plot::heatmap_figure(&landscape, 0, &title, LEVELS, &style)?;
    let set = landscape.sets.into_iter().next().expect("one set");
    Ok(Landscape2d {
        directions: opts.directions,
        model: m,
        step,
        examples,
        xs,
        ys,
        loss: set.loss,
        accuracy: set.accuracy,
        trajectory: coords,
        trajectory_steps: traj_steps,
        explained,
        svg: fig.svg,
        plot_box: fig.plot_box,
        d1,
        d2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_log_thins_itself_and_doubles_its_interval_when_full() {
        let mut log = SnapshotLog::new(5, 4).unwrap();
        for s in (0..=20).step_by(5) {
            assert!(log.due(s));
            log.record(s, vec![s as f32]);
        }
        // 5 snapshots > 4: keeps steps 0, 10, 20 and records every 10 steps from now on
        assert_eq!((log.steps(), log.every()), (&[0, 10, 20][..], 10));
        assert!(!log.due(25) && log.due(30) && !log.due(20));
        assert!(SnapshotLog::new(0, 10).unwrap_err().to_string().contains("every"));
        assert!(SnapshotLog::new(1, 2).unwrap_err().to_string().contains("max"));
    }

    #[test]
    fn an_odd_symmetric_axis_has_zero_exactly_in_the_middle() {
        let a = symmetric_axis(0.37, 21);
        assert_eq!((a[0], a[10], a[20]), (-0.37, 0.0, 0.37));
    }
}
