//! Runs an experiment's plan on any backend, one piece at a time: each call to [`ExperimentRun::step`]
//! does one training chunk (or one measurement, or one interpolation) and returns what happened, so the
//! caller shows progress, pauses (stops calling) or cancels (drops the run) between steps. Finished jobs
//! go into [`ExperimentResults`], which the caller saves; a run built from saved results resumes there.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::plan::{plan, Job};
use super::results::{CurvePoint, ExperimentResults, InterpolationResult, JobResult, ModelResult, SharpnessPoint};
use super::spec::{ExperimentConfig, ExperimentKind};
use crate::analysis::landscape::{interpolate, linspace, EvalSet};
use crate::backend::any::{AnyBackend, BackendFactory};
use crate::backend::Backend;
use crate::error::{LabError, Result};
use crate::train::{Evaluation, Event, RunData, SharpnessSchedule, TrainConfig, Trainer, TrainerState};

/// Where the data of a training config comes from (a directory natively, downloaded bytes in a browser).
pub trait DataSource {
    /// The data sets of `config` (its `data` or `dataset`).
    fn load(&mut self, config: &TrainConfig) -> Result<RunData>;
}

impl<F: FnMut(&TrainConfig) -> Result<RunData>> DataSource for F {
    fn load(&mut self, config: &TrainConfig) -> Result<RunData> {
        self(config)
    }
}

/// What a step of an experiment reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// A group of models starts training.
    JobStarted {
        /// Its index in the plan.
        job: usize,
        /// What it is.
        label: String,
        /// Its K.
        models: usize,
        /// Its steps.
        steps: usize,
        /// The engine.
        backend: String,
    },
    /// Training progress.
    Progress {
        /// The job.
        job: usize,
        /// Steps done in the job.
        step: usize,
        /// Steps of the job.
        steps: usize,
        /// Share of this run's work done, in [0, 1].
        fraction: f64,
    },
    /// A model diverged; its batch-mates go on.
    Diverged {
        /// The job.
        job: usize,
        /// The model's label and seed.
        model: String,
        /// The step whose loss tripped the check.
        step: usize,
    },
    /// The curvature of the job's models is being measured.
    Measuring {
        /// The job.
        job: usize,
    },
    /// A job has finished and its results are in [`ExperimentRun::results`] (save them now to resume later).
    JobFinished {
        /// The job.
        job: usize,
        /// Its wall-clock seconds.
        seconds: f64,
    },
    /// An interpolation between two minima is done.
    Interpolated {
        /// The two settings.
        settings: [usize; 2],
        /// The seed both share.
        seed: u64,
    },
    /// Everything of this run is done.
    Finished,
}

/// Seconds since an arbitrary origin (for durations only).
fn now() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1000.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }
}

/// A job being trained.
struct Current {
    job: usize,
    trainer: Trainer<AnyBackend>,
    models: Vec<ModelResult>,
    started: f64,
    measured: bool,
}

/// An experiment in progress.
pub struct ExperimentRun {
    jobs: Vec<Job>,
    todo: VecDeque<usize>,
    results: ExperimentResults,
    factory: BackendFactory,
    source: Box<dyn DataSource>,
    cache: HashMap<String, RunData>,
    current: Option<Current>,
    params: HashMap<usize, Vec<f32>>,
    /// Keep every finished job's final parameters too, up to this many bytes in all (`None`: only the
    /// interpolation jobs' parameters, which the run itself needs).
    keep_all: Option<usize>,
    /// Jobs kept only for export, oldest first: the first to be dropped when `keep_all` is exceeded.
    evictable: VecDeque<usize>,
    /// Jobs whose parameters were dropped to stay under `keep_all`.
    dropped: Vec<usize>,
    interpolations: VecDeque<([usize; 2], u64)>,
    total_work: f64,
    done_work: f64,
    finished: bool,
}

/// The runner's part of a group checkpoint, stored as the annex of the group trainer's [`TrainerState`]:
/// the experiment it belongs to, the group, what its models have recorded so far, and its seconds so far.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupAnnex {
    experiment: super::spec::ExperimentConfig,
    job: usize,
    seconds: f64,
    models: Vec<ModelResult>,
}

/// Rows per evaluation chunk (the backend's batch capacity is at least this).
const EVAL_ROWS: usize = 512;

impl ExperimentRun {
    /// Plans `config` and prepares to run the jobs of `shard` (`(i, n)`: indices ≡ i mod n; `None`: all)
    /// that `previous` (saved results of the same config) does not already hold. `params` are the kept
    /// final parameters of finished jobs (interpolation preset), by job index.
    pub fn new(
        config: ExperimentConfig,
        shard: Option<(usize, usize)>,
        factory: BackendFactory,
        source: Box<dyn DataSource>,
        previous: Option<ExperimentResults>,
        params: HashMap<usize, Vec<f32>>,
    ) -> Result<Self> {
        config.validate()?;
        let jobs = plan(&config)?;
        if let Some((i, n)) = shard {
            if n == 0 || i >= n {
                return Err(LabError::config("shard", format!("must be i/n with 0 ≤ i < n, got {i}/{n}")));
            }
        }
        let results = match previous {
            Some(p) => {
                if p.config != config {
                    return Err(LabError::config("resume", "the saved results are of a different configuration; use another output directory or the same config"));
                }
                if p.planned_jobs != jobs.len() {
                    return Err(LabError::config("resume", format!("the saved results plan {} jobs, this config {}", p.planned_jobs, jobs.len())));
                }
                ExperimentResults { shard, ..p }
            }
            None => ExperimentResults::new(config, jobs.len(), shard),
        };
        let mine = |j: &Job| shard.is_none_or(|(i, n)| j.index % n == i);
        let todo: VecDeque<usize> = jobs.iter().filter(|j| mine(j) && !results.has_job(j.index)).map(|j| j.index).collect();
        let work = |j: &Job| (j.train.steps * j.train.models.len()) as f64;
        let total_work = jobs.iter().filter(|j| mine(j)).map(work).sum::<f64>().max(1.0);
        let done_work = jobs.iter().filter(|j| mine(j) && results.has_job(j.index)).map(work).sum();
        Ok(ExperimentRun {
            jobs,
            todo,
            results,
            factory,
            source,
            cache: HashMap::new(),
            current: None,
            params,
            keep_all: None,
            evictable: VecDeque::new(),
            dropped: Vec::new(),
            interpolations: VecDeque::new(),
            total_work,
            done_work,
            finished: false,
        })
    }

    /// The plan.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The results so far (save them after each `JobFinished` to be able to resume).
    pub fn results(&self) -> &ExperimentResults {
        &self.results
    }

    /// Kept final parameters of finished jobs (`K × P`), by job index.
    pub fn kept_params(&self) -> &HashMap<usize, Vec<f32>> {
        &self.params
    }

    /// Also keeps the final parameters of every job that finishes from now on (not only the interpolation
    /// jobs'), for [`ExperimentRun::params_safetensors`]. Memory stays bounded: once the kept parameters
    /// that only an export needs exceed `limit_bytes` (f32, 4 bytes a value), the oldest such job's are
    /// dropped (those an interpolation still needs are never dropped). The newest job is always kept.
    pub fn keep_all_params(&mut self, limit_bytes: usize) {
        self.keep_all = Some(limit_bytes);
    }

    /// The final parameters of finished job `job`'s K models as safetensors (see [`crate::train::safetensors`]:
    /// `layers.{l}.weight` `[K, out, in]`, `layers.{l}.bias` `[K, out]`, metadata `layout` and `config`, the
    /// job's training config whose `models` list gives each model's η, B and seed in order). Errors say why
    /// a job has none: not in the plan, not finished, finished before this run was resumed, or dropped by the
    /// memory bound of [`ExperimentRun::keep_all_params`].
    pub fn params_safetensors(&self, job: usize) -> Result<Vec<u8>> {
        let Some(j) = self.jobs.get(job) else {
            return Err(LabError::config("job", format!("must be a job index below {}, got {job}", self.jobs.len())));
        };
        let Some(values) = self.params.get(&job) else {
            let why = if !self.results.has_job(job) {
                "it has not finished yet".to_string()
            } else if self.dropped.contains(&job) {
                let mib = self.keep_all.unwrap_or(0) as f64 / (1 << 20) as f64;
                format!("they were dropped to keep at most {mib:.0} MiB of parameters; later jobs' were kept")
            } else if self.keep_all.is_none() && !j.keep_params {
                "this run does not keep parameters (keep_all_params was not called)".to_string()
            } else {
                "it finished in an earlier session (results files do not hold parameters): run it again".to_string()
            };
            return Err(LabError::config("job", format!("the final parameters of job {job} are not available: {why}")));
        };
        crate::train::safetensors::params_to_safetensors(&j.train.model.layout(), values, Some(&j.train.to_json()))
    }

    /// True once `Finished` has been returned.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// Share of this run's training work done, in [0, 1].
    pub fn fraction(&self) -> f64 {
        let cur = self.current.as_ref().map_or(0, |c| c.trainer.steps_done() * c.trainer.config().models.len()) as f64;
        ((self.done_work + cur) / self.total_work).min(1.0)
    }

    /// A checkpoint of the group being trained (its trainer's [`TrainerState`] with the models' results so
    /// far; one parameter and one optimiser-state readback), or `None` when no group is between two chunks of
    /// training (none started, none begun, or its training is over). [`ExperimentRun::resume_group`] on a run
    /// of the same config continues it to the same bits.
    pub async fn checkpoint(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(cur) = self.current.as_mut() else { return Ok(None) };
        if cur.trainer.is_done() || cur.trainer.steps_done() == 0 {
            return Ok(None);
        }
        let annex = GroupAnnex { experiment: self.results.config.clone(), job: cur.job, seconds: now() - cur.started, models: cur.models.clone() };
        let annex = serde_json::to_string(&annex).map_err(|e| LabError::Backend(format!("checkpoint: {e}")))?;
        let state = cur.trainer.state().await?;
        state.to_bytes(&annex).map(Some)
    }

    /// Continues the group a checkpoint ([`ExperimentRun::checkpoint`]) was taken in, at its saved step, before
    /// anything else of this run: returns `Some((job, step))`, or `None` when that group is already among the
    /// finished ones (the checkpoint outlived its group: nothing to resume). Refuses, saying why, a damaged
    /// checkpoint, one of another configuration, or one of a group this run (shard) does not train.
    pub fn resume_group(&mut self, bytes: &[u8]) -> Result<Option<(usize, usize)>> {
        let (state, annex) = TrainerState::from_bytes(bytes)?;
        let annex: GroupAnnex = serde_json::from_str(&annex).map_err(|e| LabError::Io(format!("not a usable checkpoint: its group record: {e}")))?;
        if annex.experiment != self.results.config {
            return Err(LabError::config("checkpoint", "it is of a different experiment configuration (another preset, scale or override)"));
        }
        let j = annex.job;
        if self.results.has_job(j) {
            return Ok(None);
        }
        let Some(at) = self.todo.iter().position(|&t| t == j) else {
            return Err(LabError::config("checkpoint", format!("it is of group {j}, which this run does not train (another shard's, or beyond the plan)")));
        };
        if self.current.is_some() {
            return Err(LabError::config("checkpoint", "a group is already being trained; resume before the first step"));
        }
        if state.config != self.jobs[j].train {
            return Err(LabError::config("checkpoint", format!("its training config is not that of group {j} in this plan")));
        }
        let k = self.jobs[j].train.models.len();
        if annex.models.len() != k || annex.models.iter().enumerate().any(|(slot, m)| m.job != j || m.slot != slot || m.tag != self.jobs[j].tags[slot]) {
            return Err(LabError::config("checkpoint", format!("its model records do not match the {k} models of group {j}")));
        }
        self.todo.remove(at);
        self.start_job(j)?;
        let cur = self.current.as_mut().expect("just started");
        if let Err(e) = cur.trainer.restore(&state) {
            self.current = None;
            self.todo.push_front(j);
            return Err(e);
        }
        cur.models = annex.models;
        cur.started = now() - annex.seconds;
        Ok(Some((j, state.step)))
    }

    /// Does the next piece of work and reports it.
    pub async fn step(&mut self) -> Result<Vec<RunEvent>> {
        if self.finished {
            return Ok(Vec::new());
        }
        if self.current.is_some() {
            return self.train_step().await;
        }
        if let Some(j) = self.todo.pop_front() {
            return self.start_job(j);
        }
        if self.interpolations.is_empty() && self.results.interpolations.is_empty() {
            self.queue_interpolations();
        }
        if let Some((pair, seed)) = self.interpolations.pop_front() {
            return self.interpolate(pair, seed).await;
        }
        self.finished = true;
        Ok(vec![RunEvent::Finished])
    }

    fn data_for(&mut self, config: &TrainConfig) -> Result<RunData> {
        let key = format!("{:?}|{:?}", config.data, config.dataset);
        if !self.cache.contains_key(&key) {
            let mut d = self.source.load(config)?;
            if let Some(record) = &d.provenance {
                self.results.add_data_record(record)?;
            }
            if !self.results.config.analysis.evaluate_test {
                d.test = None;
            }
            self.cache.insert(key.clone(), d);
        }
        Ok(self.cache[&key].clone())
    }

    fn start_job(&mut self, j: usize) -> Result<Vec<RunEvent>> {
        let job = self.jobs[j].clone();
        let data = self.data_for(&job.train)?;
        let k = job.train.models.len();
        let backend = self.factory.build(&job.train.model.layout(), k, job.train.max_batch().max(EVAL_ROWS))?;
        let describe = backend.describe();
        let mut trainer = Trainer::with_data(job.train.clone(), backend, data).map_err(|e| LabError::Backend(format!("group {j} ({}): {e}", job.label)))?;
        // The batch indices are not needed here; recording them would grow memory with every step of a long group.
        trainer.set_record_batches(false);
        let models = job
            .tags
            .iter()
            .enumerate()
            .map(|(slot, tag)| ModelResult {
                tag: tag.clone(),
                job: j,
                slot,
                steps: 0,
                epochs: 0.0,
                diverged_at: None,
                last: CurvePoint::default(),
                curve: Vec::new(),
                lambda_max: None,
                trace: None,
                trace_std_error: None,
                trace_samples: None,
                probe_seed: None,
                sharpness: Vec::new(),
            })
            .collect();
        self.current = Some(Current { job: j, trainer, models, started: now(), measured: false });
        Ok(vec![RunEvent::JobStarted { job: j, label: job.label, models: k, steps: job.train.steps, backend: describe }])
    }

    async fn train_step(&mut self) -> Result<Vec<RunEvent>> {
        let cur = self.current.as_mut().expect("a job is running");
        let j = cur.job;
        let mut out = Vec::new();
        if !cur.trainer.is_done() {
            let events = cur.trainer.run_chunk_with_curvature().await?;
            // Evaluations fall at the end of a chunk, so the examples seen so far are those up to `step`
            // (an integer below 2⁵³: the same f64 as summing the batch sizes).
            let epoch_now = cur.trainer.examples_seen() as f64 / cur.trainer.data().n as f64;
            for e in events {
                match e {
                    Event::Eval { step, metrics } | Event::Finished { steps: step, metrics } => {
                        debug_assert_eq!(step, cur.trainer.steps_done());
                        let epoch = epoch_now;
                        for (m, r) in cur.models.iter_mut().enumerate() {
                            let p = curve_point(&metrics, m, step, epoch);
                            r.curve.push(p.clone());
                            r.last = p;
                            r.steps = step;
                            r.epochs = epoch;
                        }
                    }
                    Event::Diverged { model, step } => {
                        let r = &mut cur.models[model];
                        r.diverged_at = Some(step);
                        out.push(RunEvent::Diverged { job: j, model: format!("{} (seed {})", r.tag.label, r.tag.seed), step });
                    }
                    Event::Sharpness { step, lambda_max, stability_threshold, probe_seeds, .. } => {
                        for (m, r) in cur.models.iter_mut().enumerate() {
                            r.sharpness.push(SharpnessPoint { step, lambda_max: lambda_max[m], threshold: stability_threshold[m], probe_seed: Some(probe_seeds[m]) });
                        }
                    }
                    Event::Started { .. } | Event::Steps { .. } => {}
                }
            }
            let (step, steps) = (cur.trainer.steps_done(), cur.trainer.config().steps);
            out.push(RunEvent::Progress { job: j, step, steps, fraction: self.fraction() });
            let cur = self.current.as_ref().expect("still running");
            if cur.trainer.is_done() && self.jobs[j].hessian_at_end && !cur.measured {
                out.push(RunEvent::Measuring { job: j });
            }
            return Ok(out);
        }
        if self.jobs[j].hessian_at_end && !cur.measured {
            let a = &self.results.config.analysis;
            let sh = SharpnessSchedule {
                every: 1,
                examples: a.hessian_examples,
                iterations: a.lanczos_iterations,
                trace: a.trace_samples > 0,
                trace_samples: (a.trace_samples > 0).then_some(a.trace_samples),
            };
            if let Event::Sharpness { lambda_max, trace, trace_std_error, trace_samples, probe_seeds, .. } = cur.trainer.measure_curvature(&sh).await? {
                for (m, r) in cur.models.iter_mut().enumerate() {
                    r.lambda_max = finite(lambda_max[m]);
                    r.trace = trace.as_ref().and_then(|t| finite(t[m]));
                    r.trace_std_error = trace_std_error.as_ref().and_then(|t| finite(t[m]));
                    r.trace_samples = trace_samples.as_ref().map(|t| t[m]);
                    r.probe_seed = Some(probe_seeds[m]);
                }
            }
            cur.measured = true;
            return Ok(out);
        }
        let mut cur = self.current.take().expect("a job is running");
        if self.jobs[j].keep_params || self.keep_all.is_some() {
            let p = cur.trainer.backend_mut().read_params().await?;
            self.params.insert(j, p);
            if !self.jobs[j].keep_params {
                self.evictable.push_back(j);
            }
            self.evict_params();
        }
        let seconds = now() - cur.started;
        self.done_work += (self.jobs[j].train.steps * self.jobs[j].train.models.len()) as f64;
        self.results.jobs.push(JobResult { job: j, backend: cur.trainer.backend_mut().describe(), seconds, models: cur.models });
        self.results.jobs.sort_by_key(|r| r.job);
        out.push(RunEvent::JobFinished { job: j, seconds });
        Ok(out)
    }

    /// Drops the oldest export-only parameters while they exceed the `keep_all` bound (never the newest).
    fn evict_params(&mut self) {
        let Some(limit) = self.keep_all else { return };
        let bytes = |run: &Self| run.evictable.iter().map(|j| run.params.get(j).map_or(0, |p| p.len() * 4)).sum::<usize>();
        while self.evictable.len() > 1 && bytes(self) > limit {
            let old = self.evictable.pop_front().expect("more than one");
            self.params.remove(&old);
            self.dropped.push(old);
        }
    }

    /// Queues one interpolation per pair of settings and seed, once every job of the plan is done.
    fn queue_interpolations(&mut self) {
        let ExperimentKind::Interpolation { settings, pairs, .. } = &self.results.config.experiment else { return };
        if !self.results.complete() {
            return;
        }
        let pairs: Vec<[usize; 2]> = if pairs.is_empty() { (1..settings.len()).map(|i| [i - 1, i]).collect() } else { pairs.clone() };
        for p in pairs {
            for &seed in &self.results.config.seeds {
                self.interpolations.push_back((p, seed));
            }
        }
    }

    /// The kept parameters of the model of `setting` and `seed`, with its job's training config.
    fn minimum(&self, setting: usize, seed: u64) -> Result<(Vec<f32>, TrainConfig)> {
        let m = self
            .results
            .models()
            .find(|m| m.tag.setting == Some(setting) && m.tag.seed == seed)
            .ok_or_else(|| LabError::Backend(format!("no result for setting {setting}, seed {seed}")))?;
        let params = self.params.get(&m.job).ok_or_else(|| {
            LabError::Io(format!("the final parameters of job {} are not available (saved as params/job-{}.safetensors in the run directory)", m.job, m.job))
        })?;
        let job = &self.jobs[m.job];
        let p = job.train.model.layout().params_per_model;
        Ok((params[m.slot * p..(m.slot + 1) * p].to_vec(), job.train.clone()))
    }

    async fn interpolate(&mut self, pair: [usize; 2], seed: u64) -> Result<Vec<RunEvent>> {
        let ExperimentKind::Interpolation { alphas, .. } = self.results.config.experiment.clone() else {
            return Err(LabError::Backend("interpolation asked of a preset that has none".into()));
        };
        let (t1, train) = self.minimum(pair[0], seed)?;
        let (t2, _) = self.minimum(pair[1], seed)?;
        let data = self.data_for(&train)?;
        let grid = linspace(alphas.from, alphas.to, alphas.points);
        let mut backend = self.factory.build(&train.model.layout(), alphas.points.min(16), EVAL_ROWS)?;
        let mut sets = vec![EvalSet { name: "train".into(), data: backend.upload_dataset(&data.train)?, start: 0, count: data.train.n }];
        if let Some(v) = &data.validation {
            sets.push(EvalSet { name: "validation".into(), data: backend.upload_dataset(v)?, start: 0, count: v.n });
        }
        let l = interpolate(&mut backend, &t1, &t2, &grid, &sets).await?;
        let (train_set, val) = (&l.sets[0], l.sets.get(1));
        self.results.interpolations.push(InterpolationResult {
            settings: pair,
            seed,
            alphas: grid,
            train_loss: train_set.loss.clone(),
            train_accuracy: train_set.accuracy.clone(),
            validation_loss: val.map(|v| v.loss.clone()).unwrap_or_default(),
            validation_accuracy: val.map(|v| v.accuracy.clone()).unwrap_or_default(),
        });
        Ok(vec![RunEvent::Interpolated { settings: pair, seed }])
    }
}

/// `Some(x)` for a finite x: a non-finite measurement (a diverged model's) is recorded as absent.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Model `m`'s metrics from an evaluation.
fn curve_point(e: &Evaluation, m: usize, step: usize, epoch: f64) -> CurvePoint {
    let pick = |v: &Option<Vec<crate::backend::EvalMetrics>>| v.as_ref().map(|v| v[m]);
    CurvePoint {
        step,
        epoch,
        train_loss: e.train[m].loss,
        train_accuracy: e.train[m].accuracy,
        validation_loss: pick(&e.validation).and_then(|x| finite(x.loss)),
        validation_accuracy: pick(&e.validation).and_then(|x| finite(x.accuracy)),
        corrupted_accuracy: pick(&e.train_corrupted).and_then(|x| finite(x.accuracy)),
        clean_accuracy: pick(&e.train_clean).and_then(|x| finite(x.accuracy)),
        test_accuracy: pick(&e.test).and_then(|x| finite(x.accuracy)),
    }
}
