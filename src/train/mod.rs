//! Training: a [`Trainer`] runs SGD on K models on any [`Backend`], chunk by chunk, and reports
//! [`Event`]s. Each chunk is encoded in one go and costs exactly one readback (step losses and
//! divergence flags), plus one evaluation readback when an evaluation falls due.
//!
//! The trainer records a [`TrainTrace`] — the initial parameters and every step's mini-batch
//! indices — so that, with the final parameters, any run can be replayed elsewhere.
//!
//! Beside the trainer: its config and schedules ([`config`]), the mini-batch streams ([`sampler`]), its
//! resumable state ([`checkpoint`]), the safetensors files of parameters, batches and trajectories
//! ([`safetensors`]), and the page's 2-D landscape of a running trainer ([`landscape2d`]).

pub mod checkpoint;
pub mod config;
pub mod landscape2d;
pub mod safetensors;
pub mod sampler;

use serde::Serialize;

pub use config::{CyclicSchedule, ModelSettings, Sampling, ScheduleTarget, SharpnessSchedule, TrainConfig};
pub use checkpoint::TrainerState;
pub use sampler::{Sampler, SamplerState};

use crate::backend::{Backend, DataHandle, EvalMetrics};
use crate::data::{DataRecord, Dataset, PreparedData};
use crate::error::{LabError, Result};
use crate::model::ModelBatch;

/// Loss and accuracy of every model on each data set of the run (absent sets are skipped in JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// The training set, with its labels as trained on (random labels included).
    pub train: Vec<EvalMetrics>,
    /// Training examples whose labels were kept (only with random labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_clean: Option<Vec<EvalMetrics>>,
    /// Training examples whose labels were replaced, measured against the replaced labels (memorization).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_corrupted: Option<Vec<EvalMetrics>>,
    /// The held-out validation split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Vec<EvalMetrics>>,
    /// The test set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<EvalMetrics>>,
}

/// The data sets of one run. Built from the config ([`RunData::synthetic`]) or from a prepared real
/// data set ([`RunData::from_prepared`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunData {
    /// What SGD samples from.
    pub train: Dataset,
    /// Training examples with their original labels (only when some labels were replaced).
    pub train_clean: Option<Dataset>,
    /// Training examples with replaced labels (only when some labels were replaced).
    pub train_corrupted: Option<Dataset>,
    /// Held-out validation split.
    pub validation: Option<Dataset>,
    /// Test set.
    pub test: Option<Dataset>,
    /// Where the data came from and how it was chosen (absent for sets made in code).
    pub provenance: Option<DataRecord>,
}

impl RunData {
    /// Generates the config's synthetic training set; errors if the config names a real data set.
    pub fn synthetic(config: &TrainConfig) -> Result<Self> {
        let gen = config.data.as_ref().ok_or_else(|| {
            LabError::config("dataset", "a real data set must be loaded first (RunData::from_prepared, or TrainConfig::load_data natively)")
        })?;
        let train = gen.generate()?;
        let provenance = Some(DataRecord::of_synthetic(gen, &train));
        Ok(RunData { train, train_clean: None, train_corrupted: None, validation: None, test: None, provenance })
    }

    /// Takes the sets of a prepared real data set (clean/corrupted parts only when labels were replaced).
    pub fn from_prepared(p: PreparedData) -> Result<Self> {
        let (train_clean, train_corrupted) = if p.corrupted_count() > 0 { (Some(p.clean_train()?), p.corrupted_train()?) } else { (None, None) };
        let test = (p.test.n > 0).then_some(p.test);
        Ok(RunData { train: p.train, train_clean, train_corrupted, validation: p.validation, test, provenance: Some(p.record) })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl TrainConfig {
    /// The run's data: generated when synthetic, read from `data_dir` (e.g. `www/data`) when real, where
    /// files other than the pinned ones are refused.
    pub fn load_data(&self, data_dir: &std::path::Path) -> Result<RunData> {
        self.load_data_allowing(data_dir, false)
    }

    /// [`TrainConfig::load_data`], accepting files that are not the pinned ones when `allow_unpinned`
    /// (their SHA-256 are in the data's provenance record).
    pub fn load_data_allowing(&self, data_dir: &std::path::Path, allow_unpinned: bool) -> Result<RunData> {
        match &self.dataset {
            Some(d) => RunData::from_prepared(crate::data::load_named(d, data_dir, allow_unpinned)?),
            None => RunData::synthetic(self),
        }
    }
}

/// What a run reports, in order: `Started`, then `Steps`/`Eval`/`Diverged` as they happen, then `Finished`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run has begun.
    Started {
        /// Number of models K.
        models: usize,
        /// Total SGD steps.
        steps: usize,
        /// Mini-batch size.
        batch_size: usize,
        /// Parameters per model.
        params_per_model: usize,
        /// The backend's description.
        backend: String,
        /// Training-set name.
        dataset: String,
        /// Training-set size.
        examples: usize,
    },
    /// Mini-batch losses of consecutive steps, `losses[model][i]` for step `first_step + i` (NaN once diverged).
    Steps {
        /// Index of the first step reported.
        first_step: usize,
        /// Per model, per step.
        losses: Vec<Vec<f32>>,
    },
    /// Loss and accuracy of every model on the run's data sets after `step` steps.
    Eval {
        /// Steps done.
        step: usize,
        /// Per data set, per model.
        #[serde(flatten)]
        metrics: Evaluation,
    },
    /// A model's loss became non-finite or exceeded the threshold at `step`; it is frozen from then on.
    Diverged {
        /// Which model.
        model: usize,
        /// The step (0-based) whose loss tripped the check.
        step: usize,
    },
    /// The Hessian of every model's mean loss over the first `examples` training examples after `step` steps
    /// (config `sharpness`, recorded by [`Trainer::run_chunk_with_curvature`]).
    Sharpness {
        /// Steps done.
        step: usize,
        /// Examples the loss is averaged over.
        examples: usize,
        /// Per model, the largest eigenvalue (Lanczos, `iterations` steps).
        lambda_max: Vec<f64>,
        /// Per model, the trace (Hutchinson), when asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        trace: Option<Vec<f64>>,
        /// Its standard error.
        #[serde(skip_serializing_if = "Option::is_none")]
        trace_std_error: Option<Vec<f64>>,
        /// Per model, the Hutchinson samples its trace took (at most `trace_samples`; fewer once converged).
        #[serde(skip_serializing_if = "Option::is_none")]
        trace_samples: Option<Vec<usize>>,
        /// Per model, the probe seed of its Lanczos start vector and Hutchinson vectors ([`Trainer::probe_seed`]).
        probe_seeds: Vec<u64>,
        /// Per model, the edge-of-stability line `2(1 + μ)/η` (2/η without momentum): full-batch GD on a
        /// quadratic diverges along directions whose curvature exceeds it (Cohen et al. 2021).
        stability_threshold: Vec<f64>,
    },
    /// The run is over.
    Finished {
        /// Steps done.
        steps: usize,
        /// Final loss and accuracy, per data set, per model.
        #[serde(flatten)]
        metrics: Evaluation,
    },
}

/// What is needed to replay a run: initial parameters and every step's mini-batch indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainTrace {
    /// `K × P` parameters before the first step.
    pub initial_params: Vec<f32>,
    /// `[step][model][row]` indices into the training set (rows per step in `batch_sizes`).
    pub batches: Vec<u32>,
    /// The mini-batch size of every step (constant unless the config has a batch-size schedule).
    pub batch_sizes: Vec<u32>,
}

/// Backend handles of the run's data sets.
struct Handles {
    train: DataHandle,
    train_clean: Option<DataHandle>,
    train_corrupted: Option<DataHandle>,
    validation: Option<DataHandle>,
    test: Option<DataHandle>,
}

/// Runs one [`TrainConfig`] on one backend.
pub struct Trainer<B: Backend> {
    config: TrainConfig,
    backend: B,
    data: RunData,
    handles: Handles,
    sampler: Sampler,
    step: usize,
    started: bool,
    finished: bool,
    diverged_reported: Vec<bool>,
    indices: Vec<u32>,
    trace: TrainTrace,
    snapshot_every: usize,
    record_batches: bool,
    /// Schedule stage of the next step, examples seen so far, and the stage whose η the backend holds.
    stage: usize,
    examples_seen: u64,
    hyper_stage: usize,
}

impl<B: Backend> Trainer<B> {
    /// [`Trainer::with_data`] on the config's synthetic data set.
    pub fn new(config: TrainConfig, backend: B) -> Result<Self> {
        let data = RunData::synthetic(&config)?;
        Self::with_data(config, backend, data)
    }

    /// Validates the config, initialises the models (model m from `models[m].seed`) and loads the
    /// parameters and every data set into the backend, which must have been built for this layout and K.
    pub fn with_data(config: TrainConfig, mut backend: B, data: RunData) -> Result<Self> {
        config.validate()?;
        let k = config.models.len();
        let layout = config.model.layout();
        if backend.layout() != &layout || backend.models() != k {
            return Err(LabError::Backend(format!(
                "backend was built for {} models of widths {:?}, the config needs {k} of {:?}",
                backend.models(),
                backend.layout().widths,
                layout.widths
            )));
        }
        if backend.max_batch() < config.max_batch() {
            return Err(LabError::Backend(format!("backend holds batches of {} rows, the config needs {}", backend.max_batch(), config.max_batch())));
        }
        if data.train.n != config.train_len() {
            return Err(LabError::Data(format!("the training set has {} examples, the config expects {}", data.train.n, config.train_len())));
        }
        let seeds: Vec<u64> = config.models.iter().map(|m| m.seed).collect();
        let batch = ModelBatch::init(&config.model, &seeds);
        let mut upload = |d: &Option<Dataset>| d.as_ref().map(|d| backend.upload_dataset(d)).transpose();
        let handles = Handles {
            train_clean: upload(&data.train_clean)?,
            train_corrupted: upload(&data.train_corrupted)?,
            validation: upload(&data.validation)?,
            test: upload(&data.test)?,
            train: backend.upload_dataset(&data.train)?,
        };
        backend.write_params(&batch.params)?;
        backend.write_hyper(&config.hypers())?;
        backend.set_divergence_threshold(config.divergence_threshold);
        backend.reset_state();
        let sampler = Sampler::new(config.sampling, data.train.n, config.batch_size, &seeds);
        Ok(Trainer {
            diverged_reported: vec![false; k],
            trace: TrainTrace { initial_params: batch.params, batches: Vec::new(), batch_sizes: Vec::new() },
            config,
            backend,
            data,
            handles,
            sampler,
            step: 0,
            started: false,
            finished: false,
            indices: Vec::new(),
            snapshot_every: 0,
            record_batches: true,
            stage: 0,
            examples_seen: 0,
            hyper_stage: 0,
        })
    }

    /// True once the `Finished` event has been emitted.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The training set.
    pub fn data(&self) -> &Dataset {
        &self.data.train
    }

    /// All data sets of the run.
    pub fn run_data(&self) -> &RunData {
        &self.data
    }

    /// The backend (e.g. to read parameters).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The trace recorded so far.
    pub fn trace(&self) -> &TrainTrace {
        &self.trace
    }

    /// Whether the trace records each step's mini-batch indices and size (default: yes). The indices cost
    /// K × B × 4 bytes per step, so a long run that does not need the trace (the experiments runner) turns
    /// them off and keeps its memory flat; the initial parameters are always kept.
    pub fn set_record_batches(&mut self, on: bool) {
        self.record_batches = on;
    }

    /// Training examples seen so far by each model (the sum of the batch sizes of all steps taken).
    pub fn examples_seen(&self) -> u64 {
        self.examples_seen
    }

    /// Makes every chunk end on a multiple of `n` steps (0: no constraint), so that the caller can
    /// snapshot the parameters every `n` steps (`sgd-lab train --snapshot-every`).
    pub fn set_snapshot_every(&mut self, n: usize) {
        self.snapshot_every = n;
    }

    /// The backend's handle of the training set (e.g. to evaluate a landscape on it).
    pub fn train_handle(&self) -> DataHandle {
        self.handles.train
    }

    /// Runs up to `chunk_steps` steps (fewer to land on an evaluation or the end) and returns what happened.
    pub async fn run_chunk(&mut self) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        if self.finished {
            return Ok(events);
        }
        let cfg = &self.config;
        let k = cfg.models.len();
        if !self.started {
            self.started = true;
            events.push(Event::Started {
                models: k,
                steps: cfg.steps,
                batch_size: cfg.batch_size,
                params_per_model: self.backend.layout().params_per_model,
                backend: self.backend.describe(),
                dataset: self.data.train.name.clone(),
                examples: self.data.train.n,
            });
        }
        let mut steps = cfg.chunk_steps.min(cfg.steps - self.step);
        if cfg.eval_every > 0 {
            steps = steps.min(cfg.eval_every - self.step % cfg.eval_every);
        }
        if let Some(sh) = &cfg.sharpness {
            steps = steps.min(sh.every - self.step % sh.every);
        }
        if self.snapshot_every > 0 {
            steps = steps.min(self.snapshot_every - self.step % self.snapshot_every);
        }
        let batch = cfg.batch_at_stage(self.stage);
        if let Some(sc) = &cfg.schedule {
            let stage_end = (self.stage as u64 + 1) * sc.stage_examples(self.data.train.n);
            steps = steps.min((stage_end - self.examples_seen).div_ceil(batch as u64) as usize);
            if self.hyper_stage != self.stage {
                self.write_stage_hypers(self.stage)?;
                self.hyper_stage = self.stage;
            }
        }
        self.indices.clear();
        for _ in 0..steps {
            self.sampler.next_step_with(&mut self.indices, batch);
        }
        if self.record_batches {
            self.trace.batches.extend_from_slice(&self.indices);
            self.trace.batch_sizes.extend(std::iter::repeat_n(batch as u32, steps));
        }
        self.backend.train_steps(self.handles.train, &self.indices, batch)?;
        let progress = self.backend.read_progress().await?;
        let losses = (0..k).map(|m| (0..steps).map(|s| progress.losses[s * k + m]).collect()).collect();
        events.push(Event::Steps { first_step: self.step, losses });
        for (m, at) in progress.diverged_at.iter().enumerate() {
            if let (Some(s), false) = (at, self.diverged_reported[m]) {
                self.diverged_reported[m] = true;
                events.push(Event::Diverged { model: m, step: *s as usize });
            }
        }
        self.step += steps;
        self.examples_seen += (steps * batch) as u64;
        if let Some(sc) = &self.config.schedule {
            let stage_len = sc.stage_examples(self.data.train.n);
            while self.examples_seen >= (self.stage as u64 + 1) * stage_len {
                self.stage += 1;
            }
        }
        if self.step == self.config.steps {
            let metrics = self.evaluate_all().await?;
            events.push(Event::Finished { steps: self.step, metrics });
            self.finished = true;
        } else if self.config.eval_every > 0 && self.step % self.config.eval_every == 0 {
            let metrics = self.evaluate_all().await?;
            events.push(Event::Eval { step: self.step, metrics });
        }
        Ok(events)
    }

    /// Gives the backend every model's hyper-parameters with the learning rates of schedule stage `stage`.
    fn write_stage_hypers(&mut self, stage: usize) -> Result<()> {
        let f = self.config.lr_factor_at_stage(stage);
        let hypers: Vec<_> = self.config.hypers().into_iter().map(|mut h| {
            h.lr *= f;
            h
        }).collect();
        self.backend.write_hyper(&hypers)
    }

    /// Everything the next step depends on (one parameter and one optimiser-state readback), for a
    /// checkpoint between chunks; [`Trainer::restore`] on a fresh trainer of the same config continues from it.
    pub async fn state(&mut self) -> Result<TrainerState> {
        Ok(TrainerState {
            config: self.config.clone(),
            step: self.step,
            stage: self.stage,
            examples_seen: self.examples_seen,
            hyper_stage: self.hyper_stage,
            params: self.backend.read_params().await?,
            optimizer: self.backend.read_optimizer_state().await?,
            sampler: self.sampler.state(),
        })
    }

    /// Continues a run from a [`TrainerState`] of the same config taken before its last step: this trainer
    /// (fresh, no chunk run yet) then takes the very steps the saved one would have taken next. It does not
    /// report `Started` again, and its trace records batches from the saved step on.
    pub fn restore(&mut self, state: &TrainerState) -> Result<()> {
        if state.config != self.config {
            return Err(LabError::config("checkpoint", "the checkpoint is of a different training config (another group, preset or scale)"));
        }
        if self.started {
            return Err(LabError::config("checkpoint", "a trainer can only be restored before its first chunk"));
        }
        if state.step >= self.config.steps {
            return Err(LabError::config("checkpoint", format!("its step {} is not before the run's last ({})", state.step, self.config.steps)));
        }
        let stage = match &self.config.schedule {
            Some(sc) => (state.examples_seen / sc.stage_examples(self.data.train.n)) as usize,
            None => 0,
        };
        if state.stage != stage || state.hyper_stage > state.stage || state.optimizer.step as usize != state.step {
            return Err(LabError::config(
                "checkpoint",
                format!("its counters disagree (step {}, backend step {}, stage {}, learning-rate stage {}, {} examples seen: stage {stage} expected)", state.step, state.optimizer.step, state.stage, state.hyper_stage, state.examples_seen),
            ));
        }
        self.sampler.restore(&state.sampler)?;
        self.backend.write_params(&state.params)?;
        self.backend.write_optimizer_state(&state.optimizer)?;
        if self.config.schedule.is_some() && state.hyper_stage != 0 {
            self.write_stage_hypers(state.hyper_stage)?;
        }
        self.step = state.step;
        self.stage = state.stage;
        self.examples_seen = state.examples_seen;
        self.hyper_stage = state.hyper_stage;
        self.diverged_reported = state.optimizer.diverged_at.iter().map(Option::is_some).collect();
        self.started = true;
        Ok(())
    }

    /// True when the schedule asks for a sharpness measurement at the current step.
    fn sharpness_due(&self) -> bool {
        self.config.sharpness.as_ref().is_some_and(|sh| self.step > 0 && self.step % sh.every == 0)
    }

    /// Evaluates every model on every data set of the run (one readback per set).
    pub async fn evaluate_all(&mut self) -> Result<Evaluation> {
        let h = &self.handles;
        let d = &self.data;
        let pairs = [(Some(h.train), Some(&d.train)), (h.train_clean, d.train_clean.as_ref()), (h.train_corrupted, d.train_corrupted.as_ref()), (h.validation, d.validation.as_ref()), (h.test, d.test.as_ref())];
        let mut out: Vec<Option<Vec<EvalMetrics>>> = Vec::with_capacity(pairs.len());
        for (handle, set) in pairs {
            out.push(match (handle, set) {
                (Some(h), Some(set)) => Some(self.backend.evaluate(h, 0, set.n).await?),
                _ => None,
            });
        }
        let mut it = out.into_iter();
        Ok(Evaluation {
            train: it.next().flatten().expect("the training set is always evaluated"),
            train_clean: it.next().flatten(),
            train_corrupted: it.next().flatten(),
            validation: it.next().flatten(),
            test: it.next().flatten(),
        })
    }
}

impl<B: crate::backend::curvature::Curvature> Trainer<B> {
    /// [`Trainer::run_chunk`], plus an [`Event::Sharpness`] (before `Eval`/`Finished`) whenever the config's
    /// `sharpness` schedule falls due. Without a schedule it is exactly `run_chunk`.
    pub async fn run_chunk_with_curvature(&mut self) -> Result<Vec<Event>> {
        let before = self.step;
        let mut events = self.run_chunk().await?;
        if self.step != before && self.sharpness_due() {
            let event = self.measure_sharpness().await?;
            let at = events.iter().position(|e| matches!(e, Event::Eval { .. } | Event::Finished { .. })).unwrap_or(events.len());
            events.insert(at, event);
        }
        Ok(events)
    }

    /// λ_max (and the trace, if the schedule asks) of every model at the current parameters, as an event.
    pub async fn measure_sharpness(&mut self) -> Result<Event> {
        let sh = self.config.sharpness.clone().ok_or_else(|| LabError::config("sharpness", "no sharpness schedule in the config"))?;
        self.measure_curvature(&sh).await
    }

    /// The probe seed of model `m` at the current step: what its Lanczos start vector and its Hutchinson
    /// vectors are drawn from (`analysis::probe_rng`). It is made of the model's own settings — its seed, η,
    /// μ and weight decay (as f32 bits) —, the batch size, the training-set size and the step, in that
    /// order, by `analysis::mix_seed`; so it does not depend on the model's slot or on the other models of
    /// its batch, and a recorded seed can be rebuilt from the config.
    pub fn probe_seed(&self, m: usize) -> u64 {
        let s = &self.config.models[m];
        crate::analysis::mix_seed(&[
            s.seed,
            u64::from(s.lr.to_bits()),
            u64::from(s.momentum.to_bits()),
            u64::from(s.weight_decay.to_bits()),
            self.config.batch_size as u64,
            self.data.train.n as u64,
            self.step as u64,
        ])
    }

    /// [`Event::Sharpness`] at the current parameters as `sh` says (its `every` is not used). Each model's
    /// Lanczos start and Hutchinson vectors come from its own [`Trainer::probe_seed`].
    pub async fn measure_curvature(&mut self, sh: &SharpnessSchedule) -> Result<Event> {
        use crate::analysis::eigen::{lanczos, LanczosOptions};
        use crate::analysis::hutchinson::{hutchinson, HutchinsonOptions};
        use crate::analysis::{BackendOperator, Subset};
        if sh.examples == 0 || sh.iterations == 0 {
            return Err(LabError::config("sharpness", "examples and iterations must be at least 1"));
        }
        let probe_seeds: Vec<u64> = (0..self.config.models.len()).map(|m| self.probe_seed(m)).collect();
        let subset = Subset::first(self.handles.train, self.data.train.n, sh.examples);
        let mut op = BackendOperator::new(&mut self.backend, subset);
        let lanczos_opts = LanczosOptions { top_k: 1, iterations: sh.iterations, model_seeds: probe_seeds.clone(), ..Default::default() };
        let eig = lanczos(&mut op, &lanczos_opts).await?;
        let tr = if sh.trace {
            let opts = HutchinsonOptions { max_samples: sh.max_trace_samples(), model_seeds: probe_seeds.clone(), ..Default::default() };
            Some(hutchinson(&mut op, &opts).await?)
        } else {
            None
        };
        Ok(Event::Sharpness {
            step: self.step,
            examples: subset.count,
            lambda_max: eig.iter().map(|r| r.eigenvalues.first().copied().unwrap_or(f64::NAN)).collect(),
            trace: tr.as_ref().map(|t| t.iter().map(|e| e.trace).collect()),
            trace_std_error: tr.as_ref().map(|t| t.iter().map(|e| e.std_error).collect()),
            trace_samples: tr.as_ref().map(|t| t.iter().map(|e| e.samples).collect()),
            probe_seeds,
            stability_threshold: {
                let f = f64::from(self.config.lr_factor_at_stage(self.hyper_stage));
                self.config.models.iter().map(|m| 2.0 * (1.0 + f64::from(m.momentum)) / (f * f64::from(m.lr))).collect()
            },
        })
    }
}
