//! The training configuration: a serde struct read from JSON, every field validated with its name.

use serde::{Deserialize, Serialize};

use crate::backend::{Hyper, DEFAULT_DIVERGENCE_THRESHOLD};
use crate::data::{DatasetConfig, SyntheticData};
use crate::error::{LabError, Result};
use crate::model::MlpSpec;

/// How mini-batches are drawn from the training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Each epoch visits a fresh permutation in consecutive batches (without replacement); the last
    /// `n mod B` examples of a permutation are left out of that epoch (every step has exactly B rows).
    #[default]
    Shuffle,
    /// Every row of every batch is drawn uniformly with replacement: the paper's definition of SGD.
    WithReplacement,
}

/// One model of the batch: its optimiser settings and its seed (initialisation and sampling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Learning rate η (> 0).
    pub lr: f32,
    /// Heavy-ball momentum μ in [0, 1).
    #[serde(default)]
    pub momentum: f32,
    /// L2 weight decay (≥ 0).
    #[serde(default)]
    pub weight_decay: f32,
    /// Seed of this model's initial parameters and of its mini-batch order.
    #[serde(default)]
    pub seed: u64,
}

impl ModelSettings {
    /// The optimiser part, as the backends store it.
    pub fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.momentum, weight_decay: self.weight_decay }
    }
}

/// Everything a training run needs. Read with [`TrainConfig::from_json`], which also validates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The architecture shared by all models.
    pub model: MlpSpec,
    /// A synthetic training set (generated anywhere, instantly). Exactly one of `data` and `dataset` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<SyntheticData>,
    /// A real data set (Fashion-MNIST, MNIST) with its train size, validation split and random labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetConfig>,
    /// Mini-batch size B shared by all models (models with other B belong to another run).
    pub batch_size: usize,
    /// Number of SGD steps.
    pub steps: usize,
    /// Mini-batch sampling scheme.
    #[serde(default)]
    pub sampling: Sampling,
    /// One entry per model (K = its length).
    pub models: Vec<ModelSettings>,
    /// Evaluate on the whole training set every this many steps (0: only at the end).
    #[serde(default)]
    pub eval_every: usize,
    /// Steps encoded per readback (the progress granularity).
    #[serde(default = "default_chunk")]
    pub chunk_steps: usize,
    /// Mini-batch loss above which a model is declared diverged.
    #[serde(default = "default_threshold")]
    pub divergence_threshold: f32,
    /// Record λ_max (and optionally the trace) of every model's Hessian every `every` steps (absent: never).
    /// Needs a backend with Hessian-vector products (`Trainer::run_chunk_with_curvature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<SharpnessSchedule>,
    /// A cyclic learning-rate or batch-size schedule (absent: η and B stay constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CyclicSchedule>,
}

/// What a [`CyclicSchedule`] varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleTarget {
    /// η_t = η · f_t for every model (B constant).
    LearningRate,
    /// B_t = round(B / f_t) for every model (η constant), so η/B_t = (η/B) · f_t: the same ratio path as
    /// a learning-rate schedule with the same factors, when `lr` and `batch_size` are both scaled by max f.
    BatchSize,
}

/// A piecewise-constant cyclic schedule (paper §4.3: a cyclic learning rate against the matching cyclic
/// batch size). Stage s lasts `stage_epochs` epochs *of examples seen*, so a learning-rate and a
/// batch-size schedule with the same factors stay aligned in epochs although their step counts differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CyclicSchedule {
    /// What the factors act on.
    pub of: ScheduleTarget,
    /// The factor of each stage of one cycle, e.g. `[1, 2, 3, 4, 5, 4, 3, 2]`; the cycle repeats.
    pub factors: Vec<f32>,
    /// Length of every stage in epochs (examples seen divided by the training-set size).
    pub stage_epochs: f64,
}

impl CyclicSchedule {
    /// Examples seen during one stage on a training set of `n` examples (at least 1).
    pub fn stage_examples(&self, n: usize) -> u64 {
        ((self.stage_epochs * n as f64).round() as u64).max(1)
    }

    /// The factor of stage `stage` (cycles repeat).
    pub fn factor(&self, stage: usize) -> f32 {
        self.factors[stage % self.factors.len()]
    }
}

/// Mini-batch size `base / factor`, rounded, at least 1.
fn scaled_batch(base: usize, factor: f32) -> usize {
    ((base as f64 / f64::from(factor)).round() as usize).max(1)
}

/// When and how the trainer measures the Hessian during training (`Event::Sharpness`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessSchedule {
    /// Measure after every `every` steps (at steps every, 2·every, …).
    pub every: usize,
    /// The Hessian of the mean loss over the first `examples` training examples (all if fewer).
    #[serde(default = "default_sharpness_examples")]
    pub examples: usize,
    /// Lanczos iterations (HVPs) for λ_max.
    #[serde(default = "default_sharpness_iterations")]
    pub iterations: usize,
    /// Also estimate the trace (Hutchinson).
    #[serde(default)]
    pub trace: bool,
    /// Most Hutchinson samples per model for the trace (absent: `iterations`, at least 2); a model stops earlier once
    /// its standard error is below 0.1 % of its estimate after at least 10 samples. Each model's count is
    /// reported with its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_samples: Option<usize>,
}

impl SharpnessSchedule {
    /// The most Hutchinson samples a model takes.
    pub fn max_trace_samples(&self) -> usize {
        self.trace_samples.unwrap_or(self.iterations.max(2))
    }
}

fn default_sharpness_examples() -> usize {
    1000
}

fn default_sharpness_iterations() -> usize {
    20
}

fn default_chunk() -> usize {
    50
}

fn default_threshold() -> f32 {
    DEFAULT_DIVERGENCE_THRESHOLD
}

/// Upper bounds that keep a run inside what a browser tab can hold.
pub mod limits {
    /// Most models in one batch.
    pub const MAX_MODELS: usize = 256;
    /// Largest mini-batch.
    pub const MAX_BATCH: usize = 65_536;
    /// Most steps in one run.
    pub const MAX_STEPS: usize = 10_000_000;
    /// Most steps per readback.
    pub const MAX_CHUNK: usize = 10_000;
}

impl TrainConfig {
    /// Parses JSON and validates every field; errors name the field.
    /// Natively, IDX files of your own are read first to learn what they hold ([`DatasetConfig::resolve`]).
    pub fn from_json(text: &str) -> Result<Self> {
        #[allow(unused_mut)]
        let mut cfg: TrainConfig = crate::error::from_json_str(text)?;
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(d) = cfg.dataset.as_mut() {
            d.resolve()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as pretty JSON (round-trips through [`TrainConfig::from_json`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        self.model.validate("model")?;
        match (&self.data, &self.dataset) {
            (Some(d), None) => d.validate("data")?,
            (None, Some(d)) => d.validate("dataset")?,
            (Some(_), Some(_)) => return Err(LabError::config("dataset", "give either `data` (synthetic) or `dataset` (real), not both")),
            (None, None) => {
                return Err(LabError::config(
                    "data",
                    "missing: give `data` (e.g. {\"kind\": \"two_spirals\", \"n\": 512}) or `dataset` (e.g. {\"name\": \"fashion-mnist\", \"train_size\": 10000})",
                ))
            }
        }
        let model_input = self.model.input;
        if let Some(shape) = self.dataset.as_ref().and_then(|d| d.shape()) {
            if shape.dim != model_input || shape.classes != self.model.classes {
                let name = self.dataset.as_ref().map_or("", |d| d.name.name());
                return Err(LabError::config("model", format!("{name} needs input {} and classes {}, got {} and {}", shape.dim, shape.classes, model_input, self.model.classes)));
            }
        }
        if let Some(d) = &self.data {
            if d.dim() != model_input || d.classes() > self.model.classes {
                return Err(LabError::config(
                    "model",
                    format!("the synthetic data has {} features and {} classes; model.input must be {} and model.classes at least {}", d.dim(), d.classes(), d.dim(), d.classes()),
                ));
            }
        }
        let range = |field: &str, v: usize, lo: usize, hi: usize| -> Result<()> {
            if v < lo || v > hi {
                return Err(LabError::config(field, format!("must be between {lo} and {hi}, got {v}")));
            }
            Ok(())
        };
        range("batch_size", self.batch_size, 1, MAX_BATCH)?;
        range("steps", self.steps, 1, MAX_STEPS)?;
        range("chunk_steps", self.chunk_steps, 1, MAX_CHUNK)?;
        range("models", self.models.len(), 1, MAX_MODELS)?;
        let n = self.train_len();
        if self.sampling == Sampling::Shuffle && self.batch_size > n {
            return Err(LabError::config(
                "batch_size",
                format!("{} is larger than the {n} training examples; use at most {n}, or sampling \"with_replacement\"", self.batch_size),
            ));
        }
        // Written so that NaN is refused too.
        if self.divergence_threshold.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(LabError::config("divergence_threshold", format!("must be > 0, got {}", self.divergence_threshold)));
        }
        if let Some(sh) = &self.sharpness {
            range("sharpness.every", sh.every, 1, MAX_STEPS)?;
            range("sharpness.examples", sh.examples, 1, usize::MAX)?;
            range("sharpness.iterations", sh.iterations, 1, 1000)?;
            if let Some(t) = sh.trace_samples {
                range("sharpness.trace_samples", t, 1, 10_000)?;
            }
        }
        if let Some(sc) = &self.schedule {
            if sc.factors.is_empty() || sc.factors.len() > 10_000 {
                return Err(LabError::config("schedule.factors", format!("needs between 1 and 10000 factors, got {}", sc.factors.len())));
            }
            if let Some((i, f)) = sc.factors.iter().enumerate().find(|(_, f)| !f.is_finite() || **f <= 0.0) {
                return Err(LabError::config(format!("schedule.factors[{i}]"), format!("must be a finite number > 0, got {f}")));
            }
            if !sc.stage_epochs.is_finite() || sc.stage_epochs <= 0.0 {
                return Err(LabError::config("schedule.stage_epochs", format!("must be a finite number > 0, got {}", sc.stage_epochs)));
            }
            if sc.of == ScheduleTarget::BatchSize {
                let (lo, hi) = (self.min_batch(), self.max_batch());
                if hi > MAX_BATCH || (self.sampling == Sampling::Shuffle && hi > n) {
                    return Err(LabError::config(
                        "schedule.factors",
                        format!("the batch size reaches {hi} (batch_size {} / smallest factor), above the limit of {}", self.batch_size, if hi > MAX_BATCH { MAX_BATCH } else { n }),
                    ));
                }
                debug_assert!(lo >= 1);
            }
        }
        for (i, m) in self.models.iter().enumerate() {
            if !m.lr.is_finite() || m.lr <= 0.0 {
                return Err(LabError::config(format!("models[{i}].lr"), format!("must be a finite number > 0, got {}", m.lr)));
            }
            if !m.momentum.is_finite() || !(0.0..1.0).contains(&m.momentum) {
                return Err(LabError::config(format!("models[{i}].momentum"), format!("must be in [0, 1), got {}", m.momentum)));
            }
            if !m.weight_decay.is_finite() || m.weight_decay < 0.0 {
                return Err(LabError::config(format!("models[{i}].weight_decay"), format!("must be finite and ≥ 0, got {}", m.weight_decay)));
            }
        }
        Ok(())
    }

    /// Number of training examples N.
    pub fn train_len(&self) -> usize {
        match (&self.data, &self.dataset) {
            (Some(d), _) => d.len(),
            (None, Some(d)) => d.len(),
            (None, None) => 0,
        }
    }

    /// The mini-batch size during schedule stage `stage` (`batch_size` without a batch-size schedule).
    pub fn batch_at_stage(&self, stage: usize) -> usize {
        match &self.schedule {
            Some(sc) if sc.of == ScheduleTarget::BatchSize => scaled_batch(self.batch_size, sc.factor(stage)),
            _ => self.batch_size,
        }
    }

    /// The factor on every model's learning rate during schedule stage `stage` (1 without a learning-rate schedule).
    pub fn lr_factor_at_stage(&self, stage: usize) -> f32 {
        match &self.schedule {
            Some(sc) if sc.of == ScheduleTarget::LearningRate => sc.factor(stage),
            _ => 1.0,
        }
    }

    /// The largest mini-batch any step uses (what a backend must be built for).
    pub fn max_batch(&self) -> usize {
        match &self.schedule {
            Some(sc) if sc.of == ScheduleTarget::BatchSize => sc.factors.iter().map(|&f| scaled_batch(self.batch_size, f)).max().unwrap_or(self.batch_size),
            _ => self.batch_size,
        }
    }

    /// The smallest mini-batch any step uses.
    pub fn min_batch(&self) -> usize {
        match &self.schedule {
            Some(sc) if sc.of == ScheduleTarget::BatchSize => sc.factors.iter().map(|&f| scaled_batch(self.batch_size, f)).min().unwrap_or(self.batch_size),
            _ => self.batch_size,
        }
    }

    /// Steps needed to see `epochs × N` examples (rounded to the nearest step; at least 1), following the
    /// batch-size schedule when there is one. Used to give runs with different B the same epoch budget.
    pub fn steps_for_epochs(&self, epochs: f64) -> usize {
        let n = self.train_len();
        let target = (epochs * n as f64).max(0.0);
        match &self.schedule {
            Some(sc) if sc.of == ScheduleTarget::BatchSize => {
                let stage_len = sc.stage_examples(n) as f64;
                let (mut seen, mut steps, mut stage) = (0f64, 0usize, 0usize);
                while seen + 0.5 * self.batch_at_stage(stage) as f64 <= target && steps < limits::MAX_STEPS {
                    let b = self.batch_at_stage(stage) as f64;
                    let end = (stage as f64 + 1.0) * stage_len;
                    let in_stage = ((end - seen) / b).ceil().max(1.0);
                    let wanted = ((target - seen) / b).round().max(1.0);
                    let take = in_stage.min(wanted);
                    seen += take * b;
                    steps += take as usize;
                    stage += 1;
                }
                steps.max(1)
            }
            _ => ((target / self.batch_size as f64).round() as usize).max(1),
        }
    }

    /// The optimiser settings of every model.
    pub fn hypers(&self) -> Vec<Hyper> {
        self.models.iter().map(ModelSettings::hyper).collect()
    }
}

impl SyntheticData {
    /// Number of examples the generator produces.
    pub fn len(&self) -> usize {
        match self {
            SyntheticData::TwoSpirals { n, .. }
            | SyntheticData::Circles { n, .. }
            | SyntheticData::Xor { n, .. }
            | SyntheticData::Blobs { n, .. } => *n,
        }
    }

    /// True when the generator would produce no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per example (every synthetic set is 2-D, so it can be drawn).
    pub fn dim(&self) -> usize {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "model": {"input": 2, "hidden": [16], "classes": 2, "activation": "tanh", "init": "xavier"},
        "data": {"kind": "two_spirals", "n": 64, "noise": 0.1, "seed": 1},
        "batch_size": 8, "steps": 10,
        "models": [{"lr": 0.1, "momentum": 0.9, "seed": 1}, {"lr": 0.05}]
    }"#;

    #[test]
    fn a_good_config_parses_with_defaults() {
        let c = TrainConfig::from_json(GOOD).unwrap();
        assert_eq!(c.sampling, Sampling::Shuffle);
        assert_eq!(c.chunk_steps, 50);
        assert_eq!(c.models[1].momentum, 0.0);
        assert_eq!(TrainConfig::from_json(&c.to_json()).unwrap(), c);
    }

    fn error_for(edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        edit(&mut v);
        TrainConfig::from_json(&v.to_string()).unwrap_err().to_string()
    }

    #[test]
    fn each_bad_field_is_named_in_the_error() {
        assert!(error_for(|v| v["models"][1]["lr"] = (-1.0).into()).contains("models[1].lr"));
        assert!(error_for(|v| v["models"][0]["momentum"] = 1.0.into()).contains("models[0].momentum"));
        assert!(error_for(|v| v["batch_size"] = 0.into()).contains("`batch_size`"));
        assert!(error_for(|v| v["batch_size"] = 65.into()).contains("larger than the 64"));
        assert!(error_for(|v| v["model"]["hidden"][0] = 0.into()).contains("model.hidden[0]"));
        assert!(error_for(|v| v["data"]["n"] = 1.into()).contains("data.n"));
        assert!(error_for(|v| v["models"] = serde_json::json!([])).contains("`models`"));
        assert!(error_for(|v| v["model"]["input"] = 3.into()).contains("`model`"));
        assert!(error_for(|v| v["dataset"] = serde_json::json!({"name": "mnist"})).contains("not both"));
        assert!(error_for(|v| { v.as_object_mut().unwrap().remove("data"); }).contains("`data`: missing"));
        assert!(error_for(|v| v["sharpness"] = serde_json::json!({"every": 0})).contains("sharpness.every"));
        assert!(error_for(|v| v["sharpness"] = serde_json::json!({"every": 5, "examples": 0})).contains("sharpness.examples"));
        assert!(error_for(|v| v["sharpness"] = serde_json::json!({"every": 5, "iterations": 0})).contains("sharpness.iterations"));
        assert!(error_for(|v| v["sharpness"] = serde_json::json!({"every": 5, "iters": 3})).contains("iters"));
        assert!(error_for(|v| v["schedule"] = serde_json::json!({"of": "learning_rate", "factors": [], "stage_epochs": 1})).contains("schedule.factors"));
        assert!(error_for(|v| v["schedule"] = serde_json::json!({"of": "batch_size", "factors": [1, 0], "stage_epochs": 1})).contains("schedule.factors[1]"));
        assert!(error_for(|v| v["schedule"] = serde_json::json!({"of": "batch_size", "factors": [1], "stage_epochs": 0})).contains("schedule.stage_epochs"));
        assert!(error_for(|v| v["schedule"] = serde_json::json!({"of": "batch_size", "factors": [0.1], "stage_epochs": 1})).contains("reaches 80"));
    }

    #[test]
    fn a_batch_size_schedule_keeps_the_ratio_path_of_the_matching_learning_rate_schedule() {
        let mut clr = TrainConfig::from_json(GOOD).unwrap();
        clr.schedule = Some(CyclicSchedule { of: ScheduleTarget::LearningRate, factors: vec![1.0, 2.0, 4.0, 2.0], stage_epochs: 1.0 });
        let mut cbs = clr.clone();
        cbs.batch_size = 32;
        cbs.models[0].lr = 0.4;
        cbs.schedule.as_mut().unwrap().of = ScheduleTarget::BatchSize;
        cbs.validate().unwrap();
        for stage in 0..8 {
            let r1 = clr.models[0].lr * clr.lr_factor_at_stage(stage) / clr.batch_at_stage(stage) as f32;
            let r2 = cbs.models[0].lr * cbs.lr_factor_at_stage(stage) / cbs.batch_at_stage(stage) as f32;
            assert!((r1 - r2).abs() < 1e-7, "stage {stage}: η/B {r1} vs {r2}");
        }
        assert_eq!((cbs.min_batch(), cbs.max_batch()), (8, 32));
        // Five epochs of 64 examples: 40 steps of 8, and for B = 32, 16, 8, 16, 32: 2 + 4 + 8 + 4 + 2 = 20 steps.
        assert_eq!(clr.steps_for_epochs(5.0), 40);
        assert_eq!(cbs.steps_for_epochs(5.0), 20);
    }

    #[test]
    fn a_real_dataset_needs_a_matching_model() {
        let e = error_for(|v| {
            v.as_object_mut().unwrap().remove("data");
            v["dataset"] = serde_json::json!({"name": "fashion-mnist", "train_size": 1000});
        });
        assert!(e.contains("fashion-mnist needs input 784 and classes 10"), "{e}");
        let e = error_for(|v| {
            v.as_object_mut().unwrap().remove("data");
            v["dataset"] = serde_json::json!({"name": "mnist", "train_size": 0});
        });
        assert!(e.contains("dataset.train_size"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused_not_ignored() {
        let e = error_for(|v| v["learning_rate"] = 0.1.into());
        assert!(e.contains("unknown field `learning_rate`"), "{e}");
    }
}
