//! An experiment's configuration: the shared model, data and budget, the seeds that give error bars,
//! and one [`ExperimentKind`] with the grid or pairs that preset varies. Read from JSON (presets live in
//! `presets/*.json`), optionally after a JSON merge patch (RFC 7396) that rescales it, and validated field by
//! field: every error names the field.

use serde::{Deserialize, Serialize};

use crate::data::{DatasetConfig, SyntheticData};
use crate::error::{LabError, Result};
use crate::model::MlpSpec;
use crate::train::config::limits;
use crate::train::Sampling;

/// How long every model trains.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// A fixed number of epochs (examples seen / N): runs with larger B take fewer steps, so η/B ∝ η × steps
    /// and a ratio effect cannot be told from a training-length effect.
    Epochs(f64),
    /// A fixed number of SGD steps for every model, whatever its B.
    Steps(usize),
}

impl Budget {
    /// A short label, e.g. `"5 epochs"` or `"2000 steps"`.
    pub fn label(&self) -> String {
        match self {
            Budget::Epochs(e) => format!("{e} epochs"),
            Budget::Steps(s) => format!("{s} steps"),
        }
    }
}

/// One (η, B) setting with a name, as the interpolation and schedule presets list them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Shown in legends, e.g. `"η=0.1, B=128"` (default: built from η and B).
    #[serde(default)]
    pub label: String,
    /// Learning rate η.
    pub lr: f32,
    /// Mini-batch size B.
    pub batch_size: usize,
}

impl Setting {
    /// The label, or `η=…, B=…` when none was given.
    pub fn name(&self) -> String {
        if self.label.is_empty() {
            format!("η={}, B={}", self.lr, self.batch_size)
        } else {
            self.label.clone()
        }
    }
}

/// Points α of an interpolation `(1−α)θ₁ + αθ₂`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlphaRange {
    /// First α (e.g. −1).
    pub from: f64,
    /// Last α (e.g. 2).
    pub to: f64,
    /// Number of points (≥ 3).
    pub points: usize,
}

/// What the preset varies, and so which claim its report tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExperimentKind {
    /// E1: every η × every B; λ_max, Tr H and accuracy against η/B.
    RatioSweep {
        /// Learning rates of the grid.
        lrs: Vec<f32>,
        /// Batch sizes of the grid.
        batch_sizes: Vec<usize>,
        /// The grid again under each of these budgets (E1 shows fixed epochs and fixed steps).
        #[serde(default)]
        extra_budgets: Vec<Budget>,
    },
    /// E2/E3: minima from a few (η, B) settings, interpolated pairwise over α.
    Interpolation {
        /// The settings; equal η/B everywhere makes it the E3 ("only the ratio matters") test.
        settings: Vec<Setting>,
        /// Pairs of indices into `settings` to interpolate between (default: consecutive settings).
        #[serde(default)]
        pairs: Vec<[usize; 2]>,
        /// The α grid.
        alphas: AlphaRange,
    },
    /// E4: a cyclic learning rate against the matching cyclic batch size, plus constant pairs of equal η/B.
    Schedules {
        /// η of the cyclic learning-rate run at factor 1.
        lr: f32,
        /// B of both schedules at factor 1 (the cyclic batch size runs at B·max f / f_t with η·max f).
        batch_size: usize,
        /// Factors of one cycle, e.g. [1, 2, 3, 4, 5, 4, 3, 2].
        factors: Vec<f32>,
        /// Length of each stage in epochs.
        stage_epochs: f64,
        /// Constant settings compared pairwise (consecutive pairs should share η/B).
        #[serde(default)]
        constant: Vec<Setting>,
    },
    /// E5: random labels; accuracy on the corrupted training labels against clean validation accuracy.
    Memorization {
        /// Shares of training labels replaced by a wrong class.
        random_label_fractions: Vec<f64>,
        /// Learning rates.
        lrs: Vec<f32>,
        /// Batch sizes.
        batch_sizes: Vec<usize>,
        /// Momentum values (each gets its own grid).
        momenta: Vec<f32>,
    },
    /// E6: η and B both multiplied by β at a fixed ratio, for several training-set sizes.
    Breakdown {
        /// η at β = 1.
        lr: f32,
        /// B at β = 1.
        batch_size: usize,
        /// The multipliers β.
        betas: Vec<f64>,
        /// Training-set sizes N (real data sets only).
        train_sizes: Vec<usize>,
    },
    /// Edge of stability: λ_max measured during training against 2(1+μ)/η, full-batch GD and SGD.
    EdgeOfStability {
        /// Learning rates.
        lrs: Vec<f32>,
        /// Batch sizes; 0 means full batch (B = N, gradient descent).
        batch_sizes: Vec<usize>,
        /// Measurements of λ_max during the run.
        measurements: usize,
    },
}

impl ExperimentKind {
    /// The preset's kind as written in JSON, e.g. `"ratio_sweep"`.
    pub fn name(&self) -> &'static str {
        match self {
            ExperimentKind::RatioSweep { .. } => "ratio_sweep",
            ExperimentKind::Interpolation { .. } => "interpolation",
            ExperimentKind::Schedules { .. } => "schedules",
            ExperimentKind::Memorization { .. } => "memorization",
            ExperimentKind::Breakdown { .. } => "breakdown",
            ExperimentKind::EdgeOfStability { .. } => "edge_of_stability",
        }
    }
}

/// How the Hessian and the evaluations of every model are measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSettings {
    /// λ_max (and Tr H) are of the mean loss over the first this many training examples.
    #[serde(default = "default_hessian_examples")]
    pub hessian_examples: usize,
    /// Lanczos iterations (Hessian-vector products) for λ_max.
    #[serde(default = "default_lanczos")]
    pub lanczos_iterations: usize,
    /// Hutchinson samples for Tr H (0: no trace).
    #[serde(default)]
    pub trace_samples: usize,
    /// Evaluations during training, evenly spaced, the last at the end (0: only at the end). Curves need them.
    #[serde(default)]
    pub evaluations: usize,
    /// Also evaluate on the test set (costs time; validation is what the claims use).
    #[serde(default)]
    pub evaluate_test: bool,
    /// Confidence level of the reported intervals.
    #[serde(default = "default_level")]
    pub confidence: f64,
    /// Relative tolerance under which two settings count as having the same η/B (on one iso-η/B line):
    /// `|r₁ − r₂| / max(r₁, r₂)` below it. Learning rates are f32 and grids are hand-written, so exactly
    /// equal ratios rarely are; 0.02 treats 0.1/48 and 0.4/192 as equal but 0.01/50 and 0.02/128 not.
    /// (Not written when it is the default, so configs and results read the same by builds before it.)
    #[serde(default = "default_matched_ratio_tolerance", skip_serializing_if = "is_default_matched_ratio_tolerance")]
    pub matched_ratio_tolerance: f64,
}

impl AnalysisSettings {
    /// `|a − b| / max(a, b)`: how far apart two η/B are, relative to the larger (symmetric, so the order
    /// in which a grid lists its cells does not matter).
    pub fn ratio_mismatch(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs())
    }

    /// Whether two η/B count as the same under [`Self::matched_ratio_tolerance`].
    pub fn same_ratio(&self, a: f64, b: f64) -> bool {
        Self::ratio_mismatch(a, b) < self.matched_ratio_tolerance
    }
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            hessian_examples: default_hessian_examples(),
            lanczos_iterations: default_lanczos(),
            trace_samples: 0,
            evaluations: 0,
            evaluate_test: false,
            confidence: default_level(),
            matched_ratio_tolerance: default_matched_ratio_tolerance(),
        }
    }
}

fn default_hessian_examples() -> usize {
    1000
}
fn default_lanczos() -> usize {
    20
}
fn default_level() -> f64 {
    0.95
}
fn default_matched_ratio_tolerance() -> f64 {
    0.02
}
fn is_default_matched_ratio_tolerance(t: &f64) -> bool {
    *t == default_matched_ratio_tolerance()
}
fn default_group() -> usize {
    16
}
fn default_chunk() -> usize {
    100
}
fn default_threshold() -> f32 {
    crate::backend::DEFAULT_DIVERGENCE_THRESHOLD
}

/// A whole experiment: what every model shares, plus the preset's [`ExperimentKind`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short identifier, e.g. `"e1-ratio-sweep"` (letters, digits, `-`, `_`).
    pub id: String,
    /// Title shown on figures and reports.
    pub title: String,
    /// What the preset shows and what to look for, in plain words.
    #[serde(default)]
    pub description: String,
    /// The paper's claim this preset tests, in one sentence.
    #[serde(default)]
    pub claim: String,
    /// The architecture every model shares.
    pub model: MlpSpec,
    /// A synthetic data set (exclusive with `dataset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<SyntheticData>,
    /// A real data set (exclusive with `data`); presets that vary N or the label noise override those fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetConfig>,
    /// Training length of every model.
    pub budget: Budget,
    /// One replicate per seed (initialisation and batch order); several seeds give error bars.
    pub seeds: Vec<u64>,
    /// Mini-batch sampling.
    #[serde(default)]
    pub sampling: Sampling,
    /// Heavy-ball momentum of every model (the memorization preset lists its own).
    #[serde(default)]
    pub momentum: f32,
    /// L2 weight decay of every model.
    #[serde(default)]
    pub weight_decay: f32,
    /// Loss above which a model is declared diverged.
    #[serde(default = "default_threshold")]
    pub divergence_threshold: f32,
    /// Hessian and evaluation settings.
    #[serde(default)]
    pub analysis: AnalysisSettings,
    /// Most models trained side by side in one group (one backend, one K).
    #[serde(default = "default_group")]
    pub max_models_per_group: usize,
    /// Steps per readback (progress granularity).
    #[serde(default = "default_chunk")]
    pub chunk_steps: usize,
    /// What the preset varies.
    pub experiment: ExperimentKind,
}

/// Applies a JSON merge patch (RFC 7396): objects merge key by key, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn json_err(e: serde_json::Error, what: &str) -> LabError {
    LabError::config(what, format!("{e} (line {}, column {})", e.line(), e.column()))
}

impl ExperimentConfig {
    /// Parses JSON and validates every field; errors name the field.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_json_with_patch(text, None)
    }

    /// Parses JSON, applies a JSON merge patch (e.g. `{"budget": {"epochs": 1}, "seeds": [1]}` to shrink a
    /// preset), then validates.
    pub fn from_json_with_patch(text: &str, patch: Option<&str>) -> Result<Self> {
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| json_err(e, "(json)"))?;
        if let Some(p) = patch {
            let p: serde_json::Value = serde_json::from_str(p).map_err(|e| json_err(e, "(override)"))?;
            // Any other JSON value would replace the whole config (RFC 7396): never what a patch means here.
            if !p.is_object() {
                let got = match &p {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::String(_) => "a string",
                    serde_json::Value::Array(_) => "an array",
                    serde_json::Value::Object(_) => unreachable!("checked"),
                };
                return Err(LabError::config("(override)", format!("must be a JSON object, a merge patch (RFC 7396) such as `{{\"seeds\": [1]}}`; got {got}")));
            }
            merge_patch(&mut v, &p);
        }
        #[allow(unused_mut)]
        let mut cfg: ExperimentConfig = crate::error::from_json_value(v)?;
        // Natively, IDX files of your own are read first to learn what they hold.
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(d) = cfg.dataset.as_mut() {
            d.resolve()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as pretty JSON (round-trips through [`ExperimentConfig::from_json`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// Checks the fields the experiment adds; each planned group is then checked as a training config
    /// by [`super::plan::plan`], with errors naming the group.
    pub fn validate(&self) -> Result<()> {
        if self.id.is_empty() || self.id.len() > 64 || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(LabError::config("id", format!("must be 1 to 64 letters, digits, '-' or '_', got {:?}", self.id)));
        }
        self.model.validate("model")?;
        match (&self.data, &self.dataset) {
            (Some(d), None) => d.validate("data")?,
            (None, Some(d)) => d.validate("dataset")?,
            (Some(_), Some(_)) => return Err(LabError::config("dataset", "give either `data` (synthetic) or `dataset` (real), not both")),
            (None, None) => return Err(LabError::config("dataset", "missing: give `dataset` (e.g. {\"name\": \"fashion-mnist\", \"train_size\": 10000, \"validation_size\": 5000}) or synthetic `data`")),
        }
        match self.budget {
            Budget::Epochs(e) if !(e.is_finite() && e > 0.0 && e <= 10_000.0) => return Err(LabError::config("budget.epochs", format!("must be in (0, 10000], got {e}"))),
            Budget::Steps(s) if s == 0 || s > limits::MAX_STEPS => return Err(LabError::config("budget.steps", format!("must be between 1 and {}, got {s}", limits::MAX_STEPS))),
            _ => {}
        }
        if self.seeds.is_empty() || self.seeds.len() > 64 {
            return Err(LabError::config("seeds", format!("give between 1 and 64 seeds, got {}", self.seeds.len())));
        }
        let mut sorted = self.seeds.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(LabError::config("seeds", "seeds must be distinct (a repeated seed is the same model twice)"));
        }
        check_momentum("momentum", self.momentum)?;
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(LabError::config("weight_decay", format!("must be finite and ≥ 0, got {}", self.weight_decay)));
        }
        if self.divergence_threshold.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(LabError::config("divergence_threshold", format!("must be > 0, got {}", self.divergence_threshold)));
        }
        let a = &self.analysis;
        range("analysis.hessian_examples", a.hessian_examples, 1, 1_000_000)?;
        range("analysis.lanczos_iterations", a.lanczos_iterations, 1, 1000)?;
        range("analysis.trace_samples", a.trace_samples, 0, 10_000)?;
        range("analysis.evaluations", a.evaluations, 0, 10_000)?;
        if !(a.confidence > 0.5 && a.confidence < 1.0) {
            return Err(LabError::config("analysis.confidence", format!("must be in (0.5, 1), got {}", a.confidence)));
        }
        if !(a.matched_ratio_tolerance > 0.0 && a.matched_ratio_tolerance < 1.0) {
            return Err(LabError::config("analysis.matched_ratio_tolerance", format!("must be in (0, 1) (a share: 0.02 is 2 %), got {}", a.matched_ratio_tolerance)));
        }
        range("max_models_per_group", self.max_models_per_group, 1, limits::MAX_MODELS)?;
        range("chunk_steps", self.chunk_steps, 1, limits::MAX_CHUNK)?;
        self.validate_kind()
    }

    fn validate_kind(&self) -> Result<()> {
        let lrs = |field: &str, v: &[f32]| -> Result<()> {
            nonempty(field, v.len())?;
            for (i, &lr) in v.iter().enumerate() {
                check_lr(&format!("{field}[{i}]"), lr)?;
            }
            Ok(())
        };
        let batches = |field: &str, v: &[usize], allow_full: bool| -> Result<()> {
            nonempty(field, v.len())?;
            for (i, &b) in v.iter().enumerate() {
                if !(allow_full && b == 0) {
                    range(&format!("{field}[{i}]"), b, 1, limits::MAX_BATCH)?;
                }
            }
            Ok(())
        };
        let settings = |field: &str, v: &[Setting], min: usize| -> Result<()> {
            if v.len() < min || v.len() > 64 {
                return Err(LabError::config(field, format!("give between {min} and 64 settings, got {}", v.len())));
            }
            for (i, s) in v.iter().enumerate() {
                check_lr(&format!("{field}[{i}].lr"), s.lr)?;
                range(&format!("{field}[{i}].batch_size"), s.batch_size, 1, limits::MAX_BATCH)?;
            }
            Ok(())
        };
        let p = "experiment";
        match &self.experiment {
            ExperimentKind::RatioSweep { lrs: l, batch_sizes, extra_budgets } => {
                lrs(&format!("{p}.lrs"), l)?;
                batches(&format!("{p}.batch_sizes"), batch_sizes, false)?;
                for (i, b) in extra_budgets.iter().enumerate() {
                    let f = format!("{p}.extra_budgets[{i}]");
                    match *b {
                        Budget::Epochs(e) if !(e.is_finite() && e > 0.0 && e <= 10_000.0) => return Err(LabError::config(f, format!("epochs must be in (0, 10000], got {e}"))),
                        Budget::Steps(s) if s == 0 || s > limits::MAX_STEPS => return Err(LabError::config(f, format!("steps must be between 1 and {}, got {s}", limits::MAX_STEPS))),
                        _ => {}
                    }
                }
            }
            ExperimentKind::Interpolation { settings: s, pairs, alphas } => {
                settings(&format!("{p}.settings"), s, 2)?;
                for (i, pair) in pairs.iter().enumerate() {
                    if pair[0] >= s.len() || pair[1] >= s.len() || pair[0] == pair[1] {
                        return Err(LabError::config(format!("{p}.pairs[{i}]"), format!("needs two different indices below {}, got {pair:?}", s.len())));
                    }
                }
                if !(alphas.from.is_finite() && alphas.to.is_finite() && alphas.from < alphas.to) {
                    return Err(LabError::config(format!("{p}.alphas"), format!("needs finite from < to, got {} and {}", alphas.from, alphas.to)));
                }
                range(&format!("{p}.alphas.points"), alphas.points, 3, 1001)?;
            }
            ExperimentKind::Schedules { lr, batch_size, factors, stage_epochs, constant } => {
                check_lr(&format!("{p}.lr"), *lr)?;
                range(&format!("{p}.batch_size"), *batch_size, 1, limits::MAX_BATCH)?;
                nonempty(&format!("{p}.factors"), factors.len())?;
                if let Some((i, f)) = factors.iter().enumerate().find(|(_, f)| !f.is_finite() || **f < 1.0 || **f > 1000.0) {
                    return Err(LabError::config(format!("{p}.factors[{i}]"), format!("must be in [1, 1000], got {f}")));
                }
                if !stage_epochs.is_finite() || *stage_epochs <= 0.0 {
                    return Err(LabError::config(format!("{p}.stage_epochs"), format!("must be a finite number > 0, got {stage_epochs}")));
                }
                if !constant.is_empty() {
                    settings(&format!("{p}.constant"), constant, 2)?;
                }
            }
            ExperimentKind::Memorization { random_label_fractions, lrs: l, batch_sizes, momenta } => {
                if self.dataset.is_none() {
                    return Err(LabError::config("dataset", "random labels need a real data set (`dataset`), not synthetic `data`"));
                }
                nonempty(&format!("{p}.random_label_fractions"), random_label_fractions.len())?;
                for (i, &f) in random_label_fractions.iter().enumerate() {
                    if !(0.0..=1.0).contains(&f) {
                        return Err(LabError::config(format!("{p}.random_label_fractions[{i}]"), format!("must be in [0, 1], got {f}")));
                    }
                }
                lrs(&format!("{p}.lrs"), l)?;
                batches(&format!("{p}.batch_sizes"), batch_sizes, false)?;
                nonempty(&format!("{p}.momenta"), momenta.len())?;
                for (i, &m) in momenta.iter().enumerate() {
                    check_momentum(&format!("{p}.momenta[{i}]"), m)?;
                }
            }
            ExperimentKind::Breakdown { lr, batch_size, betas, train_sizes } => {
                if self.dataset.is_none() {
                    return Err(LabError::config("dataset", "the breakdown preset varies N, which needs a real data set (`dataset`)"));
                }
                check_lr(&format!("{p}.lr"), *lr)?;
                range(&format!("{p}.batch_size"), *batch_size, 1, limits::MAX_BATCH)?;
                nonempty(&format!("{p}.betas"), betas.len())?;
                for (i, &b) in betas.iter().enumerate() {
                    if !b.is_finite() || b <= 0.0 {
                        return Err(LabError::config(format!("{p}.betas[{i}]"), format!("must be a finite number > 0, got {b}")));
                    }
                }
                nonempty(&format!("{p}.train_sizes"), train_sizes.len())?;
                for (i, &n) in train_sizes.iter().enumerate() {
                    range(&format!("{p}.train_sizes[{i}]"), n, 1, 10_000_000)?;
                }
            }
            ExperimentKind::EdgeOfStability { lrs: l, batch_sizes, measurements } => {
                lrs(&format!("{p}.lrs"), l)?;
                batches(&format!("{p}.batch_sizes"), batch_sizes, true)?;
                range(&format!("{p}.measurements"), *measurements, 2, 1000)?;
            }
        }
        Ok(())
    }

    /// Training-set size N of the base data (before a preset overrides it).
    pub fn train_len(&self) -> usize {
        match (&self.data, &self.dataset) {
            (Some(d), _) => d.len(),
            (None, Some(d)) => d.len(),
            _ => 0,
        }
    }
}

fn range(field: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if v < lo || v > hi {
        return Err(LabError::config(field, format!("must be between {lo} and {hi}, got {v}")));
    }
    Ok(())
}

fn nonempty(field: &str, len: usize) -> Result<()> {
    if len == 0 || len > 64 {
        return Err(LabError::config(field, format!("give between 1 and 64 values, got {len}")));
    }
    Ok(())
}

fn check_lr(field: &str, lr: f32) -> Result<()> {
    if !lr.is_finite() || lr <= 0.0 {
        return Err(LabError::config(field, format!("must be a finite number > 0, got {lr}")));
    }
    Ok(())
}

fn check_momentum(field: &str, m: f32) -> Result<()> {
    if !m.is_finite() || !(0.0..1.0).contains(&m) {
        return Err(LabError::config(field, format!("must be in [0, 1), got {m}")));
    }
    Ok(())
}
