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
    /// Also estimate the trace (Hutchinson, at most `iterations` samples).
    #[serde(default)]
    pub trace: bool,
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
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: TrainConfig = serde_json::from_str(text).map_err(|e| {
            LabError::config("(json)", format!("{e} (line {}, column {})", e.line(), e.column()))
        })?;
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
        if let Some(d) = &self.dataset {
            if d.name.dim() != model_input || d.name.classes() != self.model.classes {
                return Err(LabError::config(
                    "model",
                    format!("{} needs input {} and classes {}, got {} and {}", d.name.name(), d.name.dim(), d.name.classes(), model_input, self.model.classes),
                ));
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
        if !(self.divergence_threshold > 0.0) {
            return Err(LabError::config("divergence_threshold", format!("must be > 0, got {}", self.divergence_threshold)));
        }
        if let Some(sh) = &self.sharpness {
            range("sharpness.every", sh.every, 1, MAX_STEPS)?;
            range("sharpness.examples", sh.examples, 1, usize::MAX)?;
            range("sharpness.iterations", sh.iterations, 1, 1000)?;
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
