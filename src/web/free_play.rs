//! The JavaScript face of the lab (wasm-bindgen). Thin and typed: it parses a config, picks a backend
//! (WebGPU if an adapter is really obtained, else the CPU), and hands training events to the page.
//! Every fallible call returns `Result<_, JsError>`; nothing panics across the boundary.
//!
//! ```js
//! import init, { FreePlay } from "./pkg/sgd_lab.js";
//! await init();
//! const lab = await FreePlay.create(JSON.stringify(config), /* preferGpu */ true);   // synthetic `data`
//! // or, for a real `dataset` (Fashion-MNIST, MNIST), with the four IDX files' bytes (gzipped or not):
//! const lab = await FreePlay.createWithData(JSON.stringify(config), true, trainImages, trainLabels, testImages, testLabels);
//! console.log(lab.backend, lab.onGpu, lab.fallbackReason);
//! while (!lab.done) {
//!   for (const ev of await lab.step()) { /* ev.type: started | steps | eval | diverged | sharpness | finished */ }
//!   await new Promise(requestAnimationFrame); // let the page breathe between chunks
//! }
//! const h = await lab.sharpness(1000);   // h.lambda_max[m], h.trace[m] ± h.trace_std_error[m]
//! // after (or during) the run: loss and accuracy on the training set along (1−α)·θ₀ + α·θ, α ∈ [−0.5, 1.5]
//! const { alpha, loss, accuracy } = await lab.interpolateFromInit(25 /* points */, 0 /* model */);
//! // the 2-D landscape around the current parameters, in the plane of the trajectory (keepSnapshots before training)
//! lab.keepSnapshots(25 /* every … steps */, 64 /* at most */);
//! const l = await lab.landscape2d({ grid: 21, directions: "pca" }); // l.loss, l.trajectory, l.svg, l.plot_box
//! ```
//!
//! `FreePlay` is one training run; the paper's experiments (presets of many runs, with results and reports)
//! are driven by `Experiment` in [`super::experiments`].

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use serde::Serialize;

use super::engine::{engine_getters, promise, run_data_from_raw, to_object, Engine};
use crate::analysis::landscape::{interpolate, linspace, EvalSet};
use crate::train::landscape2d::{landscape_2d, Landscape2dOptions, SnapshotLog};
use crate::backend::any::{make_backend, AnyBackend};
use crate::backend::Backend;
use crate::data::RawData;
use crate::error::LabError;
use crate::train::{RunData, TrainConfig, Trainer};

#[wasm_bindgen(typescript_custom_section)]
const TS_EVENTS: &str = r#"
/** Metrics of one model over one data set. */
export interface EvalMetrics { loss: number; accuracy: number }
/** Per data set of the run, per model. Sets the run does not have are absent. */
export interface Evaluation {
  train: EvalMetrics[];             /* the training set, labels as trained on */
  train_clean?: EvalMetrics[];      /* training examples that kept their label (only with random labels) */
  train_corrupted?: EvalMetrics[];  /* training examples with a random label, against that label (memorisation) */
  validation?: EvalMetrics[];
  test?: EvalMetrics[];
}
/** Examples per data set of the run (same keys as `Evaluation`). */
export interface SetSizes { train: number; train_clean?: number; train_corrupted?: number; validation?: number; test?: number }
/** What `FreePlay.step()` resolves to: the events of one training chunk, in order. */
export type LabEvent =
  | { type: "started"; models: number; steps: number; batch_size: number; params_per_model: number;
      backend: string; dataset: string; examples: number }
  | { type: "steps"; first_step: number; losses: number[][] /* [model][step], NaN once diverged */ }
  | ({ type: "eval"; step: number } & Evaluation)
  | { type: "diverged"; model: number; step: number }
  | { type: "sharpness"; step: number; examples: number; lambda_max: number[]; trace?: number[];
      trace_std_error?: number[]; stability_threshold: number[] /* 2(1+μ)/η per model */ }
  | ({ type: "finished"; steps: number } & Evaluation);
/** What `FreePlay.sharpness()` resolves to: the Hessian of each model's mean loss at its current parameters. */
export type SharpnessReport = Extract<LabEvent, { type: "sharpness" }> & { trace: number[]; trace_std_error: number[] };
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_LANDSCAPE: &str = r#"
/** What `FreePlay.interpolateFromInit()` resolves to: one entry per α, on the whole training set. */
export interface Interpolation { alpha: number[]; loss: number[]; accuracy: number[] }
/** Options of `FreePlay.landscape2d()`; every field is optional. */
export interface Landscape2dOptions {
  grid?: number;                    /* points per axis, 3..=61 (default 21) */
  span?: number;                    /* axes over [−span, span]; default 1 (random) or 1.25 × the trajectory's extent (pca) */
  directions?: "pca" | "random";    /* default "pca": needs FreePlay.keepSnapshots() before training */
  seed?: number;                    /* of the random directions (default 0) */
  model?: number;                   /* default 0 */
  examples?: number;                /* first this many training examples (default: all) */
}
/** Where the heatmap's plot area lies in `svg` (pixels) and the plane coordinates at its edges (β grows upwards). */
export interface PlotBox { svg_width: number; svg_height: number; left: number; top: number; width: number; height: number;
  x_range: [number, number]; y_range: [number, number] }
/** What `FreePlay.landscape2d()` resolves to: the training loss on the grid θ* + α·d₁ + β·d₂. */
export interface Landscape2d {
  directions: "pca" | "random"; model: number; step: number; examples: number;
  xs: number[]; ys: number[];
  loss: number[];                   /* row-major by β: loss[j * xs.length + i] is at (xs[i], ys[j]) */
  accuracy: number[];
  trajectory: [number, number][];   /* snapshots then θ* = (0, 0); random: the projection onto the plane */
  trajectory_steps: number[];
  explained?: [number, number];     /* pca: variance ratios of d₁, d₂ */
  svg: string;                      /* the plotters heatmap with contours and the trajectory (the CLI's figure) */
  plot_box: PlotBox;
}
/** Keskar's ε-sharpness of one model: 100·(max_loss − loss)/(1 + loss) over the box |y_i| ≤ ε(|θ_i|+1). */
export interface EpsilonSharpness { sharpness: number; loss: number; max_loss: number; best_step: number; first_order: number }
"#;

/// `Interpolation` in TypeScript.
#[derive(Serialize)]
struct Interpolation {
    alpha: Vec<f64>,
    loss: Vec<f64>,
    accuracy: Vec<f64>,
}

/// Examples per data set of a run (`SetSizes` in TypeScript).
#[derive(Serialize)]
struct SetSizes {
    train: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    train_clean: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train_corrupted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<usize>,
}

/// One training run of K models, driven a chunk at a time from JavaScript.
#[wasm_bindgen]
pub struct FreePlay {
    trainer: Rc<RefCell<Trainer<AnyBackend>>>,
    engine: Engine,
    sets: SetSizes,
    /// Parameter snapshots for `landscape2d`'s PCA plane, once `keepSnapshots` has been called.
    snapshots: Rc<RefCell<Option<SnapshotLog>>>,
}

#[wasm_bindgen]
impl FreePlay {
    /// Parses and validates `configJson`, picks a backend (the GPU only if `preferGpu` and WebGPU really
    /// gives an adapter) and prepares the models. Rejects with a message naming the offending field.
    /// The config's data must be synthetic (`data`); a real `dataset` needs [`FreePlay::create_with_data`].
    pub async fn create(
        #[wasm_bindgen(js_name = configJson)] config_json: String,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
    ) -> Result<FreePlay, JsError> {
        let config = TrainConfig::from_json(&config_json)?;
        if let Some(d) = &config.dataset {
            return Err(LabError::config(
                "dataset",
                format!("{} is a real data set: fetch its four IDX files and call FreePlay.createWithData", d.name.name()),
            )
            .into());
        }
        let data = RunData::synthetic(&config)?;
        Self::start(config, prefer_gpu, data).await
    }

    /// Like [`FreePlay::create`], for a config whose `dataset` is a real data set (Fashion-MNIST, MNIST): the
    /// four IDX files (gzipped or plain bytes, as fetched from `data/<name>/`) are parsed and checked, then
    /// the training subset, validation split and random labels are drawn as `dataset` says
    /// (`docs/data.md`). Rejects with a message naming the config field, or the file and what is wrong.
    #[wasm_bindgen(js_name = createWithData)]
    pub async fn create_with_data(
        #[wasm_bindgen(js_name = configJson)] config_json: String,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
        #[wasm_bindgen(js_name = trainImages)] train_images: Vec<u8>,
        #[wasm_bindgen(js_name = trainLabels)] train_labels: Vec<u8>,
        #[wasm_bindgen(js_name = testImages)] test_images: Vec<u8>,
        #[wasm_bindgen(js_name = testLabels)] test_labels: Vec<u8>,
    ) -> Result<FreePlay, JsError> {
        let config = TrainConfig::from_json(&config_json)?;
        let data = {
            let dataset = config.dataset.as_ref().ok_or_else(|| {
                LabError::config("dataset", "missing: FreePlay.createWithData needs a real data set (e.g. {\"name\": \"fashion-mnist\", \"train_size\": 2000}); use FreePlay.create for synthetic `data`")
            })?;
            let raw = RawData::from_files(dataset.name, &train_images, &train_labels, &test_images, &test_labels)?;
            drop((train_images, train_labels, test_images, test_labels));
            run_data_from_raw(&raw, dataset)?
        };
        Self::start(config, prefer_gpu, data).await
    }

    /// Picks the backend and builds the trainer on `data`.
    async fn start(config: TrainConfig, prefer_gpu: bool, data: RunData) -> Result<FreePlay, JsError> {
        let (backend, why_cpu) = make_backend(&config.model.layout(), config.models.len(), config.max_batch(), Engine::choice(prefer_gpu)).await?;
        let engine = Engine::of_backend(&backend, why_cpu);
        let n = |s: &Option<crate::data::Dataset>| s.as_ref().map(|s| s.n);
        let sets = SetSizes { train: data.train.n, train_clean: n(&data.train_clean), train_corrupted: n(&data.train_corrupted), validation: n(&data.validation), test: n(&data.test) };
        let mut trainer = Trainer::with_data(config, backend, data)?;
        // Nothing here reads the recorded mini-batch indices (only the initial parameters, always kept), and at
        // K × B × 4 bytes a step they grew the wasm memory of a long free-play run without bound (the page soak,
        // docs/RELIABILITY.md §5).
        trainer.set_record_batches(false);
        Ok(FreePlay { trainer: Rc::new(RefCell::new(trainer)), engine, sets, snapshots: Rc::new(RefCell::new(None)) })
    }
}

engine_getters!(FreePlay);

#[wasm_bindgen]
impl FreePlay {
    /// Examples in each data set of the run (`SetSizes`), e.g. `{ train: 2000, validation: 1000, test: 10000 }`.
    #[wasm_bindgen(getter, unchecked_return_type = "SetSizes")]
    pub fn sets(&self) -> Result<JsValue, JsError> {
        to_object(&self.sets)
    }

    /// True once every step has run.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.trainer.try_borrow().map(|t| t.is_done()).unwrap_or(false)
    }

    /// Runs one chunk of steps (one GPU readback) and resolves to its events (`LabEvent[]`).
    /// Rejects if a previous `step()` has not finished yet.
    #[wasm_bindgen(unchecked_return_type = "Promise<LabEvent[]>")]
    pub fn step(&self) -> js_sys::Promise {
        let trainer = Rc::clone(&self.trainer);
        let snapshots = Rc::clone(&self.snapshots);
        promise(async move {
            let mut t = trainer.try_borrow_mut().map_err(|_| JsError::new("FreePlay.step() called again before the previous step finished"))?;
            let events = t.run_chunk_with_curvature().await?;
            if let Some(log) = snapshots.borrow_mut().as_mut() {
                log.after_chunk(&mut t).await?;
            }
            // Plain objects, not `Map`s: `eval`/`finished` flatten their metrics, which serde sees as a map.
            to_object(&events)
        })
    }

    /// The Hessian of every model's mean loss over the first `examples` training examples at the current
    /// parameters (`SharpnessReport`): λ_max by Lanczos (`iterations` HVPs, default 20) and the trace ± its
    /// standard error by Hutchinson (at most `iterations` samples), per model, with `2(1+μ)/η`.
    /// Rejects while a `step()` is running.
    #[wasm_bindgen(unchecked_return_type = "Promise<SharpnessReport>")]
    pub fn sharpness(&self, examples: usize, iterations: Option<usize>) -> js_sys::Promise {
        let trainer = Rc::clone(&self.trainer);
        promise(async move {
            let mut t = trainer.try_borrow_mut().map_err(|_| JsError::new("FreePlay.sharpness() called while a step is running"))?;
            let sh = crate::train::SharpnessSchedule { every: 1, examples, iterations: iterations.unwrap_or(20), trace: true, trace_samples: None };
            let event = t.measure_curvature(&sh).await?;
            to_object(&event)
        })
    }
}

#[wasm_bindgen]
impl FreePlay {
    /// Keskar's ε-sharpness of every model (`EpsilonSharpness[]`) over the first `examples` training
    /// examples at the current parameters: box `|y_i| ≤ ε(|θ_i| + 1)` (`epsilon`, default 1e-3), maximised by
    /// `steps` (default 10) projected sign-gradient ascent steps; the parameters are restored afterwards.
    /// Rejects on a bad argument or while a `step()` is running.
    #[wasm_bindgen(js_name = epsilonSharpness, unchecked_return_type = "Promise<EpsilonSharpness[]>")]
    pub fn epsilon_sharpness(&self, examples: usize, epsilon: Option<f64>, steps: Option<usize>) -> js_sys::Promise {
        use crate::analysis::sharpness::{epsilon_sharpness, SharpnessOptions, DEFAULT_ASCENT_STEPS, DEFAULT_EPSILON};
        let trainer = Rc::clone(&self.trainer);
        promise(async move {
            let mut t = trainer
                .try_borrow_mut()
                .map_err(|_| JsError::new("FreePlay.epsilonSharpness() called while a step() or another call is running"))?;
            let epsilon = epsilon.unwrap_or(DEFAULT_EPSILON);
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return Err(LabError::config("epsilon", format!("must be a finite number > 0, got {epsilon}")).into());
            }
            if examples == 0 {
                return Err(LabError::config("examples", "must be at least 1").into());
            }
            let subset = crate::analysis::Subset::first(t.train_handle(), t.data().n, examples);
            let opts = SharpnessOptions { epsilon, steps: steps.unwrap_or(DEFAULT_ASCENT_STEPS) };
            let report = epsilon_sharpness(t.backend_mut(), subset, &opts).await?;
            to_object(&report.models)
        })
    }

    /// Loss and accuracy of model `model` (default 0) on the whole training set along the line from its
    /// initial parameters θ₀ to its current ones θ (the final ones once `done`): `(1−α)·θ₀ + α·θ` for
    /// `points` values of α evenly spaced over [−0.5, 1.5] (α = 0 and 1 give θ₀ and θ exactly when they are
    /// among them, e.g. for 25 points). The points are evaluated K at a time in the backend's model slots;
    /// the trained parameters are put back afterwards, so training can go on. Resolves to an
    /// `Interpolation`; rejects if `points < 2`, the model does not exist, or a `step()` is running.
    #[wasm_bindgen(js_name = interpolateFromInit, unchecked_return_type = "Promise<Interpolation>")]
    pub fn interpolate_from_init(&self, points: usize, model: Option<usize>) -> js_sys::Promise {
        let trainer = Rc::clone(&self.trainer);
        promise(async move {
            let mut t = trainer
                .try_borrow_mut()
                .map_err(|_| JsError::new("FreePlay.interpolateFromInit() called while a step() or another call is running"))?;
            let m = model.unwrap_or(0);
            let k = t.config().models.len();
            if m >= k {
                return Err(LabError::config("model", format!("model {m} does not exist: the run has {k}")).into());
            }
            if points < 2 {
                return Err(LabError::config("points", format!("need at least 2, got {points}")).into());
            }
            let p = t.backend_mut().layout().params_per_model;
            let theta0 = t.trace().initial_params[m * p..(m + 1) * p].to_vec();
            let sets = [EvalSet { name: "train".into(), data: t.train_handle(), start: 0, count: t.data().n }];
            let backend = t.backend_mut();
            let current = backend.read_params().await?;
            let alphas = linspace(-0.5, 1.5, points);
            let result = interpolate(backend, &theta0, &current[m * p..(m + 1) * p], &alphas, &sets).await;
            backend.write_params(&current)?; // put the trained models back, even after an error
            let l = result?;
            let set = l.sets.into_iter().next().expect("one set");
            to_object(&Interpolation { alpha: l.alphas, loss: set.loss, accuracy: set.accuracy })
        })
    }

    /// Keeps snapshots of the parameters for [`FreePlay::landscape2d`]'s PCA plane: every `every` steps (the
    /// chunks then end on those steps), at most `max` (default 64, 3..=1024) — when full, every second
    /// snapshot is dropped and the interval doubles, so memory stays within `max` × K × P floats however long
    /// the run. Call it before the first `step()` to include the initial parameters. Throws on a bad argument.
    #[wasm_bindgen(js_name = keepSnapshots)]
    pub fn keep_snapshots(&self, every: usize, max: Option<usize>) -> Result<(), JsError> {
        let mut t = self.trainer.try_borrow_mut().map_err(|_| JsError::new("FreePlay.keepSnapshots() called while a step() or another call is running"))?;
        let log = SnapshotLog::start(&mut t, every, max.unwrap_or(64))?;
        *self.snapshots.borrow_mut() = Some(log);
        Ok(())
    }

    /// The 2-D landscape of one model's training loss around its current parameters θ*, on the grid
    /// `θ* + α·d₁ + β·d₂` (`Landscape2dOptions`: grid, span, directions `"pca"` of the trajectory kept by
    /// [`FreePlay::keep_snapshots`] or seeded filter-normalised `"random"`, seed, model, examples). Resolves to a
    /// `Landscape2d` with the loss and accuracy grids, the trajectory's plane coordinates, the plotters SVG
    /// (heatmap, contours, trajectory) and its plot-area box; the trained parameters are put back afterwards,
    /// so training can go on. Rejects naming the option, or while a `step()` is running.
    #[wasm_bindgen(js_name = landscape2d, unchecked_return_type = "Promise<Landscape2d>")]
    pub fn landscape2d(&self, #[wasm_bindgen(unchecked_param_type = "Landscape2dOptions")] options: JsValue) -> js_sys::Promise {
        let trainer = Rc::clone(&self.trainer);
        let snapshots = Rc::clone(&self.snapshots);
        promise(async move {
            let json = if options.is_undefined() || options.is_null() {
                "{}".to_string()
            } else {
                js_sys::JSON::stringify(&options).map_err(|_| LabError::config("options", "must be a plain object"))?.as_string().unwrap_or_default()
            };
            let opts = Landscape2dOptions::from_json(&json)?;
            let mut t = trainer
                .try_borrow_mut()
                .map_err(|_| JsError::new("FreePlay.landscape2d() called while a step() or another call is running"))?;
            let log = snapshots.borrow();
            let l = landscape_2d(&mut t, log.as_ref(), &opts).await?;
            to_object(&l)
        })
    }
}
