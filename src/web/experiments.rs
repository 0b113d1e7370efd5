//! The paper's experiments from JavaScript (wasm-bindgen): list the shipped [`presets`], run one as an
//! [`Experiment`] a piece of work at a time (or with [`Experiment::run`]), read its results as objects,
//! JSON or CSV, resume from saved results, and build its claims report. Built on
//! [`crate::experiments::ExperimentRun`]; like [`FreePlay`](super::FreePlay), every fallible call returns a `JsError`
//! whose message names the field, file or data set at fault, and nothing panics across the boundary.
//!
//! ```js
//! import init, { presets, Experiment } from "./pkg/sgd_lab.js";
//! await init();
//! for (const p of presets()) console.log(p.id, p.title, p.claim);   // p.json: the preset's config
//! // a preset shrunk by a JSON merge patch, on the GPU if WebGPU gives an adapter
//! const ex = await Experiment.fromPreset("e1-ratio-sweep", JSON.stringify({ seeds: [1] }), true);
//! console.log(ex.backend, ex.onGpu, ex.fallbackReason, ex.jobs);   // jobs: [{ index, label, models, steps }]
//! for (const name of ex.neededDatasets) {                           // e.g. "fashion-mnist"
//!   const files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
//!   const bytes = await Promise.all(files.map(async f => new Uint8Array(await (await fetch(`data/${name}/${f}`)).arrayBuffer())));
//!   ex.addDataset(name, ...bytes);
//! }
//! const abort = new AbortController();                              // abort.abort() pauses; ex.cancel() ends
//! const finished = await ex.run(ev => {
//!   if (ev.type === "progress") bar.value = ev.fraction;
//!   if (ev.type === "job_finished") localStorage.setItem("e1", ex.resultsJson()); // resumable from here
//! }, abort.signal);
//! const results = ex.results();   // results.jobs[j].models[m]: tag, last, curve, lambda_max, trace, ...
//! const report = ex.report();     // claims with verdicts, figures as SVG, markdown
//! // inside a group (between two steps): its state, to continue that group where it was
//! const group = await ex.checkpoint();   // Uint8Array, or undefined when no group is mid-training
//! // later, in a new tab: finish the jobs that were not done (the group of `group` from its saved step)
//! const again = await Experiment.resume(localStorage.getItem("e1"), true, group);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::engine::{engine_getters, promise, run_data_from_raw, to_json_value, Engine};
use crate::backend::any::BackendFactory;
use crate::data::{RawData, RealDataset};
use crate::error::LabError;
use crate::experiments::presets::{preset, PRESETS};
use crate::experiments::{report, ExperimentConfig, ExperimentResults, ExperimentRun, RunEvent};
use crate::train::{RunData, TrainConfig};

#[wasm_bindgen(typescript_custom_section)]
const TS_EXPERIMENTS: &str = r#"
/** What `Experiment.step()` resolves to (an array of them) and `Experiment.run()` hands to `onEvent`. */
export type RunEvent =
  | { type: "job_started"; job: number; label: string; models: number; steps: number; backend: string }
  | { type: "progress"; job: number; step: number; steps: number; fraction: number /* of the whole run, in [0, 1] */ }
  | { type: "diverged"; job: number; model: string; step: number }
  | { type: "measuring"; job: number }
  | { type: "job_finished"; job: number; seconds: number }
  | { type: "interpolated"; settings: [number, number]; seed: number }
  | { type: "finished" };
/** A shipped preset: its config as JSON, and the fields a page lists. */
export interface PresetInfo { id: string; title: string; description: string; claim: string; kind: string; json: string }
/** One group of models trained side by side (a job of the plan). */
export interface JobSummary { index: number; label: string; models: number; steps: number }
/** An experiment's configuration (presets/*.json); see `docs/` for every field. */
export interface ExperimentConfig {
  id: string; title: string; description: string; claim: string;
  model: { input: number; hidden: number[]; classes: number; activation: string; init: string };
  data?: { kind: string; n: number; [field: string]: unknown };
  dataset?: { name: "fashion-mnist" | "mnist"; train_size?: number; validation_size?: number; random_label_fraction: number; seed: number; [field: string]: unknown };
  budget: { epochs: number } | { steps: number };
  seeds: number[];
  experiment: { kind: "ratio_sweep" | "interpolation" | "schedules" | "memorization" | "breakdown" | "edge_of_stability"; [field: string]: unknown };
  [field: string]: unknown;
}
/** Where a model sits in its preset's grid. */
export interface ModelTag {
  lr: number; batch_size: number; seed: number; momentum: number; budget_index: number; budget: string;
  setting?: number; label: string; train_size: number; random_label_fraction: number; beta?: number;
}
/** Loss and accuracy of one model at one point of training (NaN once diverged). */
export interface CurvePoint {
  step: number; epoch: number; train_loss: number; train_accuracy: number;
  validation_loss?: number; validation_accuracy?: number; corrupted_accuracy?: number; clean_accuracy?: number; test_accuracy?: number;
}
/** λ_max measured during training against the stability threshold 2(1+μ)/η. */
export interface SharpnessPoint { step: number; lambda_max: number; threshold: number }
/** Everything measured on one model. Absent: not measured (or, for `diverged_at`, did not diverge). */
export interface ModelResult {
  tag: ModelTag; job: number; slot: number; steps: number; epochs: number; diverged_at?: number;
  last: CurvePoint; curve?: CurvePoint[]; lambda_max?: number; trace?: number; trace_std_error?: number; sharpness?: SharpnessPoint[];
}
/** One finished job. */
export interface JobResult { job: number; backend: string; seconds: number; models: ModelResult[] }
/** Loss and accuracy along (1−α)θ₁ + αθ₂ between the minima of two settings of one seed. */
export interface InterpolationResult {
  settings: [number, number]; seed: number; alphas: number[]; train_loss: number[]; train_accuracy: number[];
  validation_loss?: number[]; validation_accuracy?: number[];
}
/** An experiment's results so far (what `resultsJson()` saves and `Experiment.resume()` continues). */
export interface ExperimentResults {
  config: ExperimentConfig; planned_jobs: number; shard?: [number, number]; jobs: JobResult[]; interpolations?: InterpolationResult[];
}
/** One tested claim of a report. */
export interface Claim { statement: string; statistic: string; value: string; verdict: "holds" | "does_not_hold" | "inconclusive" }
/** One figure of a report, as an SVG document. */
export interface Figure { name: string; title: string; svg: string }
/** The claims report of an experiment; `markdown` links the figures as `figures/<name>.svg`. */
export interface Report {
  id: string; title: string; paper_claim: string; scale: string; claims: Claim[]; caveats: string[];
  tables: string[] /* Markdown */; figures: Figure[]; markdown: string;
}
/** A report without its figures' SVG: figures are `[name, title]` pairs. */
export interface ReportSummary { id: string; title: string; scale: string; claims: Claim[]; figures: [string, string][] }
"#;

/// `PresetInfo` in TypeScript.
#[derive(Serialize)]
struct PresetInfo {
    id: &'static str,
    title: String,
    description: String,
    claim: String,
    kind: &'static str,
    json: &'static str,
}

/// `JobSummary` in TypeScript.
#[derive(Clone, Serialize)]
struct JobSummary {
    index: usize,
    label: String,
    models: usize,
    steps: usize,
}

/// `Report` in TypeScript: the report with its Markdown.
#[derive(Serialize)]
struct ReportWithMarkdown {
    #[serde(flatten)]
    report: report::Report,
    markdown: String,
}

/// Every shipped preset (`PresetInfo[]`), in the paper's order.
#[wasm_bindgen(unchecked_return_type = "PresetInfo[]")]
pub fn presets() -> Result<JsValue, JsError> {
    let mut out = Vec::with_capacity(PRESETS.len());
    for (id, json) in PRESETS {
        let c = ExperimentConfig::from_json(json).map_err(|e| JsError::new(&format!("preset {id}: {e}")))?;
        out.push(PresetInfo { id, title: c.title, description: c.description, claim: c.claim, kind: c.experiment.name(), json });
    }
    to_json_value(&out)
}

/// Most bytes of final parameters an `Experiment` keeps for [`Experiment::parameters_safetensors`] beyond
/// those its interpolations need (64 MiB: every quick-scale preset fits whole; at default scale the oldest
/// groups' parameters are dropped first).
const KEPT_PARAMS_BYTES: usize = 64 << 20;

/// The message for a real data set that has not been added yet.
fn missing(name: RealDataset) -> LabError {
    let n = name.name();
    LabError::config("dataset", format!("the {n} data set has not been added: fetch its four IDX files (data/{n}/) and call experiment.addDataset(\"{n}\", trainImages, trainLabels, testImages, testLabels) first"))
}

/// The state an `Experiment` shares with its pending promises.
struct Inner {
    /// The run; taken out while a step is pending (so a second step finds none: the re-entrancy guard).
    run: Cell<Option<ExperimentRun>>,
    /// The results as of the last finished job or interpolation (readable while a step is pending).
    results: RefCell<ExperimentResults>,
    /// Share of the work done after the last step.
    fraction: Cell<f64>,
    /// True once the run returned `finished`.
    finished: Cell<bool>,
    /// True once `cancel()` was called.
    cancelled: Cell<bool>,
    /// The parsed real data sets, by name (the run's data source reads them).
    raw: Rc<RefCell<HashMap<RealDataset, RawData>>>,
    /// The real data sets the config needs.
    needed: Vec<RealDataset>,
    /// A mid-group checkpoint given to `resume`, applied by the first step (once the data sets are added).
    pending_group: RefCell<Option<Vec<u8>>>,
    /// The engine's description (for the `job_started` event of a resumed group).
    backend: String,
}

impl Inner {
    fn done(&self) -> bool {
        self.cancelled.get() || self.finished.get()
    }

    /// One step of the run; `[]` once done or cancelled.
    async fn step(&self) -> Result<Vec<RunEvent>, JsError> {
        if self.done() {
            return Ok(Vec::new());
        }
        if let Some(&name) = self.needed.iter().find(|n| !self.raw.borrow().contains_key(n)) {
            return Err(missing(name).into());
        }
        let mut run = self.run.take().ok_or_else(|| JsError::new("Experiment.step() called again before the previous step finished (await it, or use run())"))?;
        if let Some(bytes) = self.pending_group.borrow_mut().take() {
            // The group of the checkpoint continues at its step: reported as its start, then its progress.
            let resumed = run.resume_group(&bytes).map(|at| {
                at.map(|(j, step)| {
                    let job = &run.jobs()[j];
                    let (label, models, steps) = (job.label.clone(), job.train.models.len(), job.train.steps);
                    vec![
                        RunEvent::JobStarted { job: j, label, models, steps, backend: self.backend.clone() },
                        RunEvent::Progress { job: j, step, steps, fraction: run.fraction() },
                    ]
                })
            });
            self.fraction.set(run.fraction());
            self.run.set(Some(run));
            match resumed {
                Ok(Some(events)) => return Ok(events),
                Ok(None) => {} // its group had finished: an ordinary step follows
                Err(e) => return Err(e.into()),
            }
            run = self.run.take().expect("just put back");
        }
        let events = run.step().await;
        self.fraction.set(run.fraction());
        self.finished.set(run.is_done());
        if events.as_ref().is_ok_and(|e| e.iter().any(|e| matches!(e, RunEvent::JobFinished { .. } | RunEvent::Interpolated { .. } | RunEvent::Finished))) {
            *self.results.borrow_mut() = run.results().clone();
        }
        self.run.set(Some(run));
        Ok(events?)
    }
}

/// Yields to the event loop (a `setTimeout(0)`), so the page can render and handle input between steps.
async fn next_tick() -> Result<(), JsValue> {
    let global = js_sys::global();
    let set_timeout: js_sys::Function = js_sys::Reflect::get(&global, &"setTimeout".into())?.dyn_into()?;
    let mut result = Ok(JsValue::UNDEFINED);
    let tick = js_sys::Promise::new(&mut |resolve, _| result = set_timeout.call2(&global, &resolve, &JsValue::from(0)));
    result?;
    wasm_bindgen_futures::JsFuture::from(tick).await.map(drop)
}

/// One of the paper's experiments (a preset, or any experiment config): a plan of jobs, each a group
/// of models trained side by side on one backend, then measured; driven a piece of work at a time.
#[wasm_bindgen]
pub struct Experiment {
    inner: Rc<Inner>,
    jobs: Vec<JobSummary>,
    engine: Engine,
}

#[wasm_bindgen]
impl Experiment {
    /// Parses `configJson`, applies the JSON merge patch `patchJson` if given (e.g. `{"seeds": [1]}` to
    /// shrink it), validates and plans it, and obtains the engine once for every job: the GPU if
    /// `preferGpu` and WebGPU really gives an adapter, else the CPU. Rejects with a message naming the
    /// offending field (or the job whose training config is invalid).
    pub async fn create(
        #[wasm_bindgen(js_name = configJson)] config_json: String,
        #[wasm_bindgen(js_name = patchJson)] patch_json: Option<String>,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
    ) -> Result<Experiment, JsError> {
        let config = ExperimentConfig::from_json_with_patch(&config_json, patch_json.as_deref())?;
        Self::start(config, None, prefer_gpu).await
    }

    /// Like [`Experiment::create`] for the shipped preset `id` (see [`presets`]).
    #[wasm_bindgen(js_name = fromPreset)]
    pub async fn from_preset(
        id: String,
        #[wasm_bindgen(js_name = patchJson)] patch_json: Option<String>,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
    ) -> Result<Experiment, JsError> {
        let config = preset(&id, patch_json.as_deref())?;
        Self::start(config, None, prefer_gpu).await
    }

    /// Continues an experiment from `resultsJson` (what [`Experiment::results_json`] returned, e.g. saved
    /// after a `job_finished` event): jobs already finished there are skipped, the others run.
    ///
    /// Limitation: the final parameters of finished jobs are not part of the results, so an
    /// interpolation preset (e2, e3) resumed with some jobs already done cannot interpolate between their
    /// minima: its interpolation step rejects with a message saying the parameters of job j are not
    /// available. Such a preset resumes usefully only from results that hold no finished job yet.
    ///
    /// `groupCheckpoint` (optional): what [`Experiment::checkpoint`] returned during the same run after
    /// those results; the first step then continues that group at its saved step (reported as its
    /// `job_started` and a `progress` at that step) instead of starting it over. Rejects a damaged one here;
    /// one of another configuration or group makes that first step reject, saying why.
    pub async fn resume(
        #[wasm_bindgen(js_name = resultsJson)] results_json: String,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: bool,
        #[wasm_bindgen(js_name = groupCheckpoint)] group_checkpoint: Option<Vec<u8>>,
    ) -> Result<Experiment, JsError> {
        let previous = ExperimentResults::from_json(&results_json)?;
        if let Some(bytes) = &group_checkpoint {
            crate::train::TrainerState::from_bytes(bytes)?;
        }
        let ex = Self::start(previous.config.clone(), Some(previous), prefer_gpu).await?;
        *ex.inner.pending_group.borrow_mut() = group_checkpoint;
        Ok(ex)
    }

    /// A checkpoint of the group being trained (`Uint8Array`: its models' parameters, momentum, divergence
    /// flags, sampler and schedule state, and what they recorded so far), or `undefined` when no group is
    /// between two chunks of training. Keep it with `resultsJson()` and pass both to [`Experiment::resume`]
    /// to continue that group where it was (the same bits on the CPU). Rejects if a step is pending.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array | undefined>")]
    pub fn checkpoint(&self) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        promise(async move {
            let mut run = inner.run.take().ok_or_else(|| JsError::new("Experiment.checkpoint() called while a step is pending (await it first)"))?;
            let bytes = run.checkpoint().await;
            inner.run.set(Some(run));
            match bytes? {
                Some(b) => Ok(js_sys::Uint8Array::from(&b[..]).into()),
                None => Ok(JsValue::UNDEFINED),
            }
        })
    }

    /// Obtains the engine and plans the run.
    async fn start(config: ExperimentConfig, previous: Option<ExperimentResults>, prefer_gpu: bool) -> Result<Experiment, JsError> {
        let factory = BackendFactory::new(Engine::choice(prefer_gpu)).await?;
        let engine = Engine::of_factory(&factory, prefer_gpu);
        // IDX files of your own (a results file made by `sgd-lab`) cannot be fetched: such a run's report can be
        // shown here, but training it needs the CLI, which the first step that needs the data says.
        let needed: Vec<RealDataset> = config.dataset.iter().map(|d| d.name).filter(|n| *n != RealDataset::Idx).collect();
        let raw: Rc<RefCell<HashMap<RealDataset, RawData>>> = Rc::default();
        let sets = Rc::clone(&raw);
        let source = move |t: &TrainConfig| match &t.dataset {
            None => RunData::synthetic(t),
            Some(d) if d.name == RealDataset::Idx => Err(LabError::config(
                "dataset.files",
                "this experiment trains on IDX files of your own, which the page cannot read: run it with `sgd-lab run` (its report can still be shown here)",
            )),
            Some(d) => run_data_from_raw(sets.borrow().get(&d.name).ok_or_else(|| missing(d.name))?, d),
        };
        let mut run = ExperimentRun::new(config, None, factory, Box::new(source), previous, HashMap::new())?;
        run.keep_all_params(KEPT_PARAMS_BYTES);
        let jobs = run.jobs().iter().map(|j| JobSummary { index: j.index, label: j.label.clone(), models: j.train.models.len(), steps: j.train.steps }).collect();
        let inner = Inner {
            results: RefCell::new(run.results().clone()),
            fraction: Cell::new(run.fraction()),
            finished: Cell::new(false),
            cancelled: Cell::new(false),
            run: Cell::new(Some(run)),
            raw,
            needed,
            pending_group: RefCell::new(None),
            backend: engine.description.clone(),
        };
        Ok(Experiment { inner: Rc::new(inner), jobs, engine })
    }

    /// The real data sets the config needs, e.g. `["fashion-mnist"]` (empty for synthetic `data`): add
    /// each with [`Experiment::add_dataset`] before stepping.
    #[wasm_bindgen(getter, js_name = neededDatasets)]
    pub fn needed_datasets(&self) -> Vec<String> {
        self.inner.needed.iter().map(|d| d.name().to_string()).collect()
    }

    /// Gives the experiment the four IDX files (gzipped or plain bytes, as fetched from `data/<name>/`) of
    /// the real data set `name` (`"fashion-mnist"` or `"mnist"`). They are parsed and checked once; each
    /// job then draws its training subset, validation split and random labels from them as its config
    /// says. Throws naming the file and what is wrong, or if the experiment does not use `name`.
    #[wasm_bindgen(js_name = addDataset)]
    pub fn add_dataset(
        &self,
        name: &str,
        #[wasm_bindgen(js_name = trainImages)] train_images: Vec<u8>,
        #[wasm_bindgen(js_name = trainLabels)] train_labels: Vec<u8>,
        #[wasm_bindgen(js_name = testImages)] test_images: Vec<u8>,
        #[wasm_bindgen(js_name = testLabels)] test_labels: Vec<u8>,
    ) -> Result<(), JsError> {
        let set = RealDataset::ALL.into_iter().find(|d| d.name() == name).ok_or_else(|| {
            let known: Vec<&str> = RealDataset::ALL.iter().map(|d| d.name()).collect();
            LabError::config("name", format!("unknown data set {name:?}; the lab knows {}", known.join(", ")))
        })?;
        if !self.inner.needed.contains(&set) {
            return Err(LabError::config("name", format!("this experiment does not use {name}; it needs {:?}", self.needed_datasets())).into());
        }
        let raw = RawData::from_files(set, &train_images, &train_labels, &test_images, &test_labels)?;
        self.inner.raw.borrow_mut().insert(set, raw);
        Ok(())
    }

    /// Does one piece of work (a training chunk of the current job, its curvature measurement, the start
    /// or end of a job, or one interpolation) and resolves to what happened (`RunEvent[]`); `[]` once
    /// done or cancelled. Rejects if a previous `step()` is still pending, if a needed data set has not
    /// been added (naming it), or if the work fails; a rejected step leaves the experiment usable.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunEvent[]>")]
    pub fn step(&self) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        promise(async move { to_json_value(&inner.step().await?) })
    }

    /// Steps until the experiment is done or `signal` aborts, calling `onEvent` with each event in
    /// order and yielding to the event loop (`setTimeout(0)`) between steps. Resolves to `true` once
    /// finished, `false` when stopped by `signal` (call `run()` again to go on) or by `cancel()`.
    /// Rejects with the error of a failed step, or with whatever `onEvent` throws (the events after it in
    /// that step are not delivered); either way the experiment stays usable.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn run(
        &self,
        #[wasm_bindgen(js_name = onEvent, unchecked_param_type = "(e: RunEvent) => void")] on_event: js_sys::Function,
        #[wasm_bindgen(unchecked_optional_param_type = "AbortSignal")] signal: Option<js_sys::Object>,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        // Not `promise`: whatever `onEvent` throws rejects the promise as it is.
        wasm_bindgen_futures::future_to_promise(async move {
            let aborted = || signal.as_ref().is_some_and(|s| js_sys::Reflect::get(s, &"aborted".into()).is_ok_and(|a| a.is_truthy()));
            loop {
                if inner.done() || aborted() {
                    return Ok(JsValue::from(inner.finished.get() && !inner.cancelled.get()));
                }
                for event in inner.step().await? {
                    on_event.call1(&JsValue::NULL, &to_json_value(&event)?)?;
                }
                next_tick().await?;
            }
        })
    }

    /// Stops the experiment: later `step()`s resolve to `[]`, `run()` resolves `false` and `done` is
    /// true. A step already pending completes. The results so far stay readable.
    pub fn cancel(&self) {
        self.inner.cancelled.set(true);
    }

    /// True once every job (and interpolation) is done, or after `cancel()`.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// Share of this run's training work done, in [0, 1] (as of the last finished step).
    #[wasm_bindgen(getter)]
    pub fn fraction(&self) -> f64 {
        self.inner.fraction.get()
    }

}

engine_getters!(Experiment);

#[wasm_bindgen]
impl Experiment {
    /// The plan (`JobSummary[]`): every job with its label, number of models and steps.
    #[wasm_bindgen(getter, unchecked_return_type = "JobSummary[]")]
    pub fn jobs(&self) -> Result<JsValue, JsError> {
        to_json_value(&self.jobs)
    }

    /// The results so far (`ExperimentResults`): finished jobs and interpolations, as plain objects
    /// (a diverged model's losses may be NaN here; `resultsJson()` writes them as `null`).
    #[wasm_bindgen(unchecked_return_type = "ExperimentResults")]
    pub fn results(&self) -> Result<JsValue, JsError> {
        to_json_value(&*self.inner.results.borrow())
    }

    /// The results so far as JSON: save it to continue later with [`Experiment::resume`].
    #[wasm_bindgen(js_name = resultsJson)]
    pub fn results_json(&self) -> String {
        self.inner.results.borrow().to_json()
    }

    /// The results so far as CSV, one row per model (grid position and final measurements).
    #[wasm_bindgen(js_name = resultsCsv)]
    pub fn results_csv(&self) -> String {
        self.inner.results.borrow().to_csv()
    }

    /// The final parameters of finished job `job`'s models as safetensors bytes: `layers.{l}.weight`
    /// `[K, out, in]` and `layers.{l}.bias` `[K, out]` (f32), metadata `layout` and `config` (the job's
    /// training config; its `models` list gives each model's η, B and seed, in order). An experiment keeps
    /// at most 64 MiB of them (the oldest jobs' are dropped first). Throws naming the job and why it has
    /// none (unknown index, not finished, finished before a resume, dropped) or if a step is pending.
    #[wasm_bindgen(js_name = parametersSafetensors)]
    pub fn parameters_safetensors(&self, job: usize) -> Result<Vec<u8>, JsError> {
        let run = self.inner.run.take().ok_or_else(|| JsError::new("Experiment.parametersSafetensors() called while a step is pending (await it first)"))?;
        let bytes = run.params_safetensors(job);
        self.inner.run.set(Some(run));
        Ok(bytes?)
    }

    /// The claims report of the results (`Report`): verdicts, tables, SVG figures and Markdown (figures
    /// linked as `figures/<name>.svg`). Throws if the results cannot be reported (e.g. jobs missing).
    #[wasm_bindgen(unchecked_return_type = "Report")]
    pub fn report(&self) -> Result<JsValue, JsError> {
        let report = report::build(&self.inner.results.borrow())?;
        let markdown = report.to_markdown("figures");
        to_json_value(&ReportWithMarkdown { report, markdown })
    }

    /// The claims report without its figures' SVG (`ReportSummary`).
    #[wasm_bindgen(js_name = reportSummary, unchecked_return_type = "ReportSummary")]
    pub fn report_summary(&self) -> Result<JsValue, JsError> {
        let report = report::build(&self.inner.results.borrow())?;
        to_json_value(&report.summary())
    }
}
