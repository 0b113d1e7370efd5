//! Expands an [`ExperimentConfig`] into groups of models that can train side by side: same data, same
//! B (schedule), same number of steps — one [`TrainConfig`] with K models each. Every model carries a
//! [`ModelTag`] saying where it sits in the preset's grid, so results can be regrouped for the report.

use serde::{Deserialize, Serialize};

use super::spec::{Budget, ExperimentConfig, ExperimentKind, Setting};
use crate::error::{LabError, Result};
use crate::train::{CyclicSchedule, ModelSettings, ScheduleTarget, SharpnessSchedule, TrainConfig};

/// Where one model sits in its preset's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelTag {
    /// Learning rate η (for a cyclic schedule: η at factor 1 of the equivalent learning-rate schedule).
    pub lr: f32,
    /// Mini-batch size B (for a cyclic schedule: B at factor 1 of the equivalent learning-rate schedule).
    pub batch_size: usize,
    /// Replicate seed.
    pub seed: u64,
    /// Momentum μ.
    pub momentum: f32,
    /// Which budget of the preset (0: `budget`, then `extra_budgets`).
    pub budget_index: usize,
    /// The budget, e.g. `"5 epochs"`.
    pub budget: String,
    /// Index of the setting (interpolation, schedules: 0 = cyclic LR, 1 = cyclic B, then the constants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<usize>,
    /// Legend label of the group this model belongs to (without the seed).
    pub label: String,
    /// Training-set size N.
    pub train_size: usize,
    /// Share of random labels.
    pub random_label_fraction: f64,
    /// The multiplier β (breakdown preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

impl ModelTag {
    /// The ratio η/B.
    pub fn ratio(&self) -> f64 {
        f64::from(self.lr) / self.batch_size as f64
    }
}

/// One group of models trained together on one backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Position in the plan (results and shards refer to it).
    pub index: usize,
    /// What the group is, e.g. `"B=128, 5 epochs"`.
    pub label: String,
    /// The training run (its `models` are the group's K models).
    pub train: TrainConfig,
    /// One tag per model, in the order of `train.models`.
    pub tags: Vec<ModelTag>,
    /// Measure λ_max (and Tr H if asked) of every model at the end.
    pub hessian_at_end: bool,
    /// Keep the final parameters (the interpolation preset needs them afterwards).
    pub keep_params: bool,
}

/// A model waiting to be grouped: its settings and tag, and the run it needs.
struct Pending {
    key: String,
    base: TrainConfig,
    model: ModelSettings,
    tag: ModelTag,
    label: String,
}

/// The jobs of an experiment, in a fixed order (the same config always gives the same plan).
pub fn plan(cfg: &ExperimentConfig) -> Result<Vec<Job>> {
    let mut pending = Vec::new();
    let budgets: Vec<Budget> = match &cfg.experiment {
        ExperimentKind::RatioSweep { extra_budgets, .. } => std::iter::once(cfg.budget).chain(extra_budgets.iter().copied()).collect(),
        _ => vec![cfg.budget],
    };
    let n0 = cfg.train_len();
    let mut add = |run: RunSpec, lr: f32, momentum: f32, seed: u64, tag: ModelTag| -> Result<()> {
        let base = base_config(cfg, &run)?;
        let key = format!("{}|{}|{:?}|{}|{:?}", run.batch_size, run.budget_index, run.schedule, base.train_len(), base.dataset.as_ref().map(|d| d.random_label_fraction));
        let model = ModelSettings { lr, momentum, weight_decay: cfg.weight_decay, seed };
        pending.push(Pending { key, base, model, tag, label: run.label.clone() });
        Ok(())
    };
    let tag = |lr: f32, b: usize, seed: u64, momentum: f32, budget_index: usize, label: String| ModelTag {
        lr,
        batch_size: b,
        seed,
        momentum,
        budget_index,
        budget: budgets[budget_index].label(),
        setting: None,
        label,
        train_size: n0,
        random_label_fraction: cfg.dataset.as_ref().map_or(0.0, |d| d.random_label_fraction),
        beta: None,
    };
    match &cfg.experiment {
        ExperimentKind::RatioSweep { lrs, batch_sizes, .. } => {
            for (bi, budget) in budgets.iter().enumerate() {
                for &b in batch_sizes {
                    let run = RunSpec::new(b, *budget, bi, format!("B={b}, {}", budget.label()));
                    for &lr in lrs {
                        for &seed in &cfg.seeds {
                            add(run.clone(), lr, cfg.momentum, seed, tag(lr, b, seed, cfg.momentum, bi, format!("η={lr}, B={b}")))?;
                        }
                    }
                }
            }
        }
        ExperimentKind::Interpolation { settings, .. } => {
            for (si, s) in settings.iter().enumerate() {
                let run = RunSpec::new(s.batch_size, cfg.budget, 0, s.name());
                for &seed in &cfg.seeds {
                    let mut t = tag(s.lr, s.batch_size, seed, cfg.momentum, 0, s.name());
                    t.setting = Some(si);
                    add(run.clone(), s.lr, cfg.momentum, seed, t)?;
                }
            }
        }
        ExperimentKind::Schedules { lr, batch_size, factors, stage_epochs, constant } => {
            let fmax = factors.iter().copied().fold(1.0f32, f32::max);
            let clr = CyclicSchedule { of: ScheduleTarget::LearningRate, factors: factors.clone(), stage_epochs: *stage_epochs };
            let cbs = CyclicSchedule { of: ScheduleTarget::BatchSize, factors: factors.clone(), stage_epochs: *stage_epochs };
            let big_b = (*batch_size as f64 * f64::from(fmax)).round() as usize;
            let mut runs = vec![
                (RunSpec { schedule: Some(clr), ..RunSpec::new(*batch_size, cfg.budget, 0, "cyclic learning rate".into()) }, *lr),
                (RunSpec { schedule: Some(cbs), ..RunSpec::new(big_b, cfg.budget, 0, "cyclic batch size".into()) }, lr * fmax),
            ];
            runs.extend(constant.iter().map(|s: &Setting| (RunSpec::new(s.batch_size, cfg.budget, 0, format!("constant {}", s.name())), s.lr)));
            for (si, (run, run_lr)) in runs.into_iter().enumerate() {
                for &seed in &cfg.seeds {
                    let (tl, tb) = if si < 2 { (*lr, *batch_size) } else { (run_lr, run.batch_size) };
                    let mut t = tag(tl, tb, seed, cfg.momentum, 0, run.label.clone());
                    t.setting = Some(si);
                    add(run.clone(), run_lr, cfg.momentum, seed, t)?;
                }
            }
        }
        ExperimentKind::Memorization { random_label_fractions, lrs, batch_sizes, momenta } => {
            for &p in random_label_fractions {
                for &b in batch_sizes {
                    let run = RunSpec { random_label_fraction: Some(p), ..RunSpec::new(b, cfg.budget, 0, format!("B={b}, {:.0}% random labels", 100.0 * p)) };
                    for &mu in momenta {
                        for &lr in lrs {
                            for &seed in &cfg.seeds {
                                let mut t = tag(lr, b, seed, mu, 0, format!("η={lr}, B={b}, μ={mu}"));
                                t.random_label_fraction = p;
                                add(run.clone(), lr, mu, seed, t)?;
                            }
                        }
                    }
                }
            }
        }
        ExperimentKind::Breakdown { lr, batch_size, betas, train_sizes } => {
            for (ni, &n) in train_sizes.iter().enumerate() {
                for (bi, &beta) in betas.iter().enumerate() {
                    let b = (*batch_size as f64 * beta).round() as usize;
                    let blr = (f64::from(*lr) * beta) as f32;
                    // Refused, not clamped: a B rounded up to 1 or an η·β that underflows would break the fixed ratio.
                    if b == 0 || !(blr.is_finite() && blr > 0.0) {
                        return Err(LabError::config(
                            format!("experiment.betas[{bi}]"),
                            format!(
                                "β = {beta} makes B = {} and η = {blr}; B must be at least 1 and η a finite number > 0, so use β ≥ {} and β ≤ {}",
                                *batch_size as f64 * beta,
                                0.5 / *batch_size as f64,
                                f64::from(f32::MAX) / f64::from(*lr)
                            ),
                        ));
                    }
                    if b > n {
                        return Err(LabError::config(
                            format!("experiment.betas[{bi}]"),
                            format!("β = {beta} makes B = {b}, more than experiment.train_sizes[{ni}] = {n} examples; use β ≤ {}", n as f64 / *batch_size as f64),
                        ));
                    }
                    let run = RunSpec { train_size: Some(n), ..RunSpec::new(b, cfg.budget, 0, format!("N={n}, β={beta}")) };
                    for &seed in &cfg.seeds {
                        let mut t = tag(blr, b, seed, cfg.momentum, 0, format!("N={n}, β={beta}"));
                        t.train_size = n;
                        t.beta = Some(beta);
                        add(run.clone(), blr, cfg.momentum, seed, t)?;
                    }
                }
            }
        }
        ExperimentKind::EdgeOfStability { lrs, batch_sizes, measurements } => {
            for &b0 in batch_sizes {
                let b = if b0 == 0 { n0 } else { b0 };
                let name = if b0 == 0 { format!("full batch (B={n0})") } else { format!("SGD, B={b}") };
                let run = RunSpec { measurements: Some(*measurements), ..RunSpec::new(b, cfg.budget, 0, name.clone()) };
                for &lr in lrs {
                    for &seed in &cfg.seeds {
                        add(run.clone(), lr, cfg.momentum, seed, tag(lr, b, seed, cfg.momentum, 0, format!("η={lr}, {name}")))?;
                    }
                }
            }
        }
    }
    group(cfg, pending)
}

/// What distinguishes one training run from another inside a preset.
#[derive(Clone, Debug)]
struct RunSpec {
    batch_size: usize,
    budget: Budget,
    budget_index: usize,
    label: String,
    schedule: Option<CyclicSchedule>,
    train_size: Option<usize>,
    random_label_fraction: Option<f64>,
    measurements: Option<usize>,
}

impl RunSpec {
    fn new(batch_size: usize, budget: Budget, budget_index: usize, label: String) -> Self {
        RunSpec { batch_size, budget, budget_index, label, schedule: None, train_size: None, random_label_fraction: None, measurements: None }
    }
}

/// The training config of one run (models still empty).
fn base_config(cfg: &ExperimentConfig, run: &RunSpec) -> Result<TrainConfig> {
    let mut dataset = cfg.dataset.clone();
    if let Some(d) = dataset.as_mut() {
        if let Some(n) = run.train_size {
            d.train_size = Some(n);
        }
        if let Some(p) = run.random_label_fraction {
            d.random_label_fraction = p;
        }
    }
    let mut t = TrainConfig {
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        dataset,
        batch_size: run.batch_size,
        steps: 1,
        sampling: cfg.sampling,
        models: Vec::new(),
        eval_every: 0,
        chunk_steps: cfg.chunk_steps,
        divergence_threshold: cfg.divergence_threshold,
        sharpness: None,
        schedule: run.schedule.clone(),
    };
    t.steps = match run.budget {
        Budget::Epochs(e) => t.steps_for_epochs(e),
        Budget::Steps(s) => s,
    };
    if let Some(every) = t.steps.checked_div(cfg.analysis.evaluations) {
        t.eval_every = every.max(1);
    }
    if let Some(m) = run.measurements {
        t.sharpness = Some(SharpnessSchedule {
            every: (t.steps / m).max(1),
            examples: cfg.analysis.hessian_examples,
            iterations: cfg.analysis.lanczos_iterations,
            trace: false,
            trace_samples: None,
        });
    }
    Ok(t)
}

/// Groups pending models by run (first-seen order), at most `max_models_per_group` per job, and checks
/// each job as a training config (errors name the job).
fn group(cfg: &ExperimentConfig, pending: Vec<Pending>) -> Result<Vec<Job>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: std::collections::HashMap<String, Vec<Pending>> = Default::default();
    for p in pending {
        if !by_key.contains_key(&p.key) {
            order.push(p.key.clone());
        }
        by_key.entry(p.key.clone()).or_default().push(p);
    }
    let hessian_at_end = !matches!(cfg.experiment, ExperimentKind::Memorization { .. } | ExperimentKind::EdgeOfStability { .. });
    let keep_params = matches!(cfg.experiment, ExperimentKind::Interpolation { .. });
    let mut jobs = Vec::new();
    for key in order {
        let members = by_key.remove(&key).expect("key seen");
        for chunk in members.chunks(cfg.max_models_per_group) {
            let mut train = chunk[0].base.clone();
            train.models = chunk.iter().map(|p| p.model.clone()).collect();
            let label = chunk[0].label.clone();
            train.validate().map_err(|e| LabError::config(format!("group {} ({label})", jobs.len()), e.to_string()))?;
            jobs.push(Job { index: jobs.len(), label, train, tags: chunk.iter().map(|p| p.tag.clone()).collect(), hessian_at_end, keep_params });
        }
    }
    Ok(jobs)
}
