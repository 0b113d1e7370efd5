//! TEMPORARY stand-in for the lead's `sgd_lab::train` API (TrainConfig, Event, Trainer, make_backend),
//! with the same names and signatures, so the web face can be built and tested before that API lands.
//!
//! It trains on the CPU backend only. It does probe WebGPU for a real adapter, so the page can already
//! say which adapter it would use. When `crate::train` provides these items, delete this file, drop
//! `mod shim;` in `src/web.rs` and switch its `use self::shim::…` line to `use crate::train::…`.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, DataHandle, EvalMetrics, Hyper};
use crate::data::SyntheticData;
use crate::error::{LabError, Result};
use crate::model::{MlpSpec, ModelBatch};

/// Whether this build can train on the GPU. The shim cannot; the real API can.
pub const GPU_TRAINING: bool = false;

/// Stand-in for `sgd_lab::backend::any::AnyBackend`.
pub type AnyBackend = CpuBackend<f32>;

/// How mini-batches are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// A fresh permutation every epoch, cut into batches.
    Shuffle,
    /// Each batch drawn uniformly with replacement.
    WithReplacement,
}

/// One model's optimiser settings and initialisation seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub lr: f32,
    #[serde(default)]
    pub momentum: f32,
    #[serde(default)]
    pub weight_decay: f32,
    #[serde(default)]
    pub seed: u64,
}

/// A training run of K models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: MlpSpec,
    pub data: SyntheticData,
    pub batch_size: usize,
    pub steps: usize,
    pub sampling: Sampling,
    pub models: Vec<ModelConfig>,
    pub eval_every: usize,
    pub chunk_steps: usize,
}

impl TrainConfig {
    /// Parses and validates a JSON config.
    pub fn from_json(s: &str) -> Result<Self> {
        let c: TrainConfig = serde_json::from_str(s).map_err(|e| LabError::config("(json)", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.model.validate("model")?;
        self.data.validate("data")?;
        if self.models.is_empty() {
            return Err(LabError::config("models", "needs at least one model"));
        }
        if self.batch_size == 0 {
            return Err(LabError::config("batch_size", "must be at least 1"));
        }
        if self.steps == 0 {
            return Err(LabError::config("steps", "must be at least 1"));
        }
        if self.chunk_steps == 0 {
            return Err(LabError::config("chunk_steps", "must be at least 1"));
        }
        for (i, m) in self.models.iter().enumerate() {
            if !(m.lr.is_finite() && m.lr > 0.0) {
                return Err(LabError::config(format!("models[{i}].lr"), format!("must be finite and > 0, got {}", m.lr)));
            }
        }
        Ok(())
    }
}

/// Progress reported by [`Trainer::run_chunk`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Started { models: usize, steps: usize, backend: String },
    Steps { first_step: usize, losses: Vec<Vec<f32>> },
    Eval { step: usize, train: Vec<EvalMetrics> },
    Diverged { model: usize, step: usize },
    Finished { steps: usize },
}

/// Picks the backend. The shim always trains on the CPU; it says why, naming the adapter it found.
pub async fn make_backend(config: &TrainConfig, prefer_gpu: bool) -> (AnyBackend, String) {
    let why = if !prefer_gpu {
        "the GPU was not requested".to_string()
    } else {
        match probe_adapter().await {
            Ok(name) => format!("WebGPU adapter \"{name}\" found, but this build has no GPU trainer yet"),
            Err(e) => e,
        }
    };
    let layout = config.model.layout();
    let cpu = CpuBackend::new(&layout, config.models.len(), config.batch_size).expect("validated config");
    (cpu, why)
}

/// Asks WebGPU for an adapter; returns its name, or why there is none.
async fn probe_adapter() -> std::result::Result<String, String> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::BROWSER_WEBGPU;
    if !wgpu::util::is_browser_webgpu_supported().await {
        return Err("WebGPU is not available in this browser (no navigator.gpu, or it gave no adapter)".into());
    }
    let instance = wgpu::Instance::new(desc);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .map_err(|e| format!("WebGPU gave no adapter: {e}"))?;
    let name = adapter.get_info().name;
    Ok(if name.is_empty() { "(name hidden by the browser)".into() } else { name })
}

/// Trains the K models of a config, a chunk at a time.
pub struct Trainer<B: Backend> {
    config: TrainConfig,
    backend: B,
    data: DataHandle,
    n: usize,
    rng: ChaCha8Rng,
    order: Vec<u32>,
    cursor: usize,
    step: usize,
    started: bool,
    finished: bool,
    diverged: Vec<bool>,
}

impl<B: Backend> Trainer<B> {
    /// Generates the data, initialises the models and uploads both.
    pub fn new(config: TrainConfig, mut backend: B) -> Result<Self> {
        config.validate()?;
        let data = config.data.generate()?;
        let seeds: Vec<u64> = config.models.iter().map(|m| m.seed).collect();
        let batch = ModelBatch::init(&config.model, &seeds);
        let handle = backend.upload_dataset(&data)?;
        backend.write_params(&batch.params)?;
        let hyper: Vec<Hyper> =
            config.models.iter().map(|m| Hyper { lr: m.lr, momentum: m.momentum, weight_decay: m.weight_decay }).collect();
        backend.write_hyper(&hyper)?;
        backend.reset_state();
        let k = config.models.len();
        Ok(Trainer {
            n: data.n,
            rng: ChaCha8Rng::seed_from_u64(seeds[0] ^ 0x5eed),
            order: (0..data.n as u32).collect(),
            cursor: data.n,
            step: 0,
            started: false,
            finished: false,
            diverged: vec![false; k],
            data: handle,
            backend,
            config,
        })
    }

    /// True once every step has run.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    fn draw(&mut self, out: &mut Vec<u32>) {
        let b = self.config.batch_size;
        match self.config.sampling {
            Sampling::WithReplacement => out.extend((0..b).map(|_| self.rng.random_range(0..self.n as u32))),
            Sampling::Shuffle => {
                for _ in 0..b {
                    if self.cursor >= self.n {
                        self.order.shuffle(&mut self.rng);
                        self.cursor = 0;
                    }
                    out.push(self.order[self.cursor]);
                    self.cursor += 1;
                }
            }
        }
    }

    /// Runs up to `chunk_steps` steps with one readback and reports what happened.
    pub async fn run_chunk(&mut self) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        if self.finished {
            return Ok(events);
        }
        let k = self.config.models.len();
        if !self.started {
            self.started = true;
            events.push(Event::Started { models: k, steps: self.config.steps, backend: self.backend.describe() });
        }
        let steps = self.config.chunk_steps.min(self.config.steps - self.step);
        let mut indices = Vec::with_capacity(steps * k * self.config.batch_size);
        for _ in 0..steps * k {
            self.draw(&mut indices);
        }
        self.backend.train_steps(self.data, &indices, self.config.batch_size)?;
        let progress = self.backend.read_progress().await?;
        let losses = (0..k).map(|m| (0..steps).map(|s| progress.losses[s * k + m]).collect()).collect();
        events.push(Event::Steps { first_step: self.step, losses });
        for (m, d) in progress.diverged_at.iter().enumerate() {
            if let (Some(s), false) = (d, self.diverged[m]) {
                self.diverged[m] = true;
                events.push(Event::Diverged { model: m, step: *s as usize });
            }
        }
        let before = self.step;
        self.step += steps;
        let every = self.config.eval_every;
        if every > 0 && (self.step / every > before / every || self.step == self.config.steps) {
            let train = self.backend.evaluate(self.data, 0, self.n).await?;
            events.push(Event::Eval { step: self.step, train });
        }
        if self.step == self.config.steps {
            self.finished = true;
            events.push(Event::Finished { steps: self.step });
        }
        Ok(events)
    }
}
