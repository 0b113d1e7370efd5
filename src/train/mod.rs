//! Training: a [`Trainer`] runs SGD on K models on any [`Backend`], chunk by chunk, and reports
//! [`Event`]s. Each chunk is encoded in one go and costs exactly one readback (step losses and
//! divergence flags), plus one evaluation readback when an evaluation falls due.
//!
//! The trainer records a [`TrainTrace`] — the initial parameters and every step's mini-batch
//! indices — so that, with the final parameters, any run can be replayed elsewhere.

pub mod config;
pub mod sampler;
pub mod trace;

use serde::Serialize;

pub use config::{ModelSettings, Sampling, TrainConfig};
pub use sampler::Sampler;

use crate::backend::{Backend, DataHandle, EvalMetrics};
use crate::data::Dataset;
use crate::error::{LabError, Result};
use crate::model::ModelBatch;

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
    /// Loss and accuracy of every model on the whole training set after `step` steps.
    Eval {
        /// Steps done.
        step: usize,
        /// Per model.
        train: Vec<EvalMetrics>,
    },
    /// A model's loss became non-finite or exceeded the threshold at `step`; it is frozen from then on.
    Diverged {
        /// Which model.
        model: usize,
        /// The step (0-based) whose loss tripped the check.
        step: usize,
    },
    /// The run is over.
    Finished {
        /// Steps done.
        steps: usize,
        /// Final loss and accuracy of every model on the training set.
        train: Vec<EvalMetrics>,
    },
}

/// What is needed to replay a run: initial parameters and every step's mini-batch indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainTrace {
    /// `K × P` parameters before the first step.
    pub initial_params: Vec<f32>,
    /// `[step][model][row]` indices into the training set.
    pub batches: Vec<u32>,
}

/// Runs one [`TrainConfig`] on one backend.
pub struct Trainer<B: Backend> {
    config: TrainConfig,
    backend: B,
    data: Dataset,
    handle: DataHandle,
    sampler: Sampler,
    step: usize,
    started: bool,
    finished: bool,
    diverged_reported: Vec<bool>,
    indices: Vec<u32>,
    trace: TrainTrace,
}

impl<B: Backend> Trainer<B> {
    /// Validates the config, generates the data, initialises the models (model m from `models[m].seed`)
    /// and loads everything into the backend, which must have been built for this layout and K.
    pub fn new(config: TrainConfig, mut backend: B) -> Result<Self> {
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
        if backend.max_batch() < config.batch_size {
            return Err(LabError::Backend(format!("backend holds batches of {} rows, the config needs {}", backend.max_batch(), config.batch_size)));
        }
        let data = config.data.generate()?;
        let seeds: Vec<u64> = config.models.iter().map(|m| m.seed).collect();
        let batch = ModelBatch::init(&config.model, &seeds);
        let handle = backend.upload_dataset(&data)?;
        backend.write_params(&batch.params)?;
        backend.write_hyper(&config.hypers())?;
        backend.set_divergence_threshold(config.divergence_threshold);
        backend.reset_state();
        let sampler = Sampler::new(config.sampling, data.n, config.batch_size, &seeds);
        Ok(Trainer {
            diverged_reported: vec![false; k],
            trace: TrainTrace { initial_params: batch.params, batches: Vec::new() },
            config,
            backend,
            data,
            handle,
            sampler,
            step: 0,
            started: false,
            finished: false,
            indices: Vec::new(),
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
                dataset: self.data.name.clone(),
                examples: self.data.n,
            });
        }
        let mut steps = cfg.chunk_steps.min(cfg.steps - self.step);
        if cfg.eval_every > 0 {
            steps = steps.min(cfg.eval_every - self.step % cfg.eval_every);
        }
        self.indices.clear();
        for _ in 0..steps {
            self.sampler.next_step(&mut self.indices);
        }
        self.trace.batches.extend_from_slice(&self.indices);
        self.backend.train_steps(self.handle, &self.indices, cfg.batch_size)?;
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
        let n = self.data.n;
        if self.step == self.config.steps {
            let train = self.backend.evaluate(self.handle, 0, n).await?;
            events.push(Event::Finished { steps: self.step, train });
            self.finished = true;
        } else if self.config.eval_every > 0 && self.step % self.config.eval_every == 0 {
            let train = self.backend.evaluate(self.handle, 0, n).await?;
            events.push(Event::Eval { step: self.step, train });
        }
        Ok(events)
    }
}
