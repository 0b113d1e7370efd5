//! The experiments layer: configs refuse bad fields by name, presets plan into the groups they promise,
//! runs resume and shard without changing a single number, interpolations join the right minima, and the
//! claims reports are well-formed and can say "does not hold" as readily as "holds".
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;

use sgd_lab::backend::any::{BackendChoice, BackendFactory};
use sgd_lab::experiments::plan::plan;
use sgd_lab::experiments::presets::{preset, PRESETS};
use sgd_lab::experiments::report::{build, Verdict};
use sgd_lab::experiments::spec::merge_patch;
use sgd_lab::experiments::{AnalysisSettings, CurvePoint, ExperimentConfig, ExperimentKind, ExperimentResults, ExperimentRun, InterpolationResult, JobResult, ModelResult, ModelTag, RunEvent, SharpnessPoint};
use sgd_lab::train::{RunData, ScheduleTarget, TrainConfig};

/// A ratio sweep small enough to run in a second on synthetic data.
const TINY_SWEEP: &str = r#"{
    "id": "tiny-sweep", "title": "tiny sweep",
    "model": {"input": 2, "hidden": [12], "classes": 2, "activation": "tanh", "init": "xavier"},
    "data": {"kind": "two_spirals", "n": 96, "noise": 0.1, "seed": 3},
    "budget": {"steps": 24}, "seeds": [1, 2], "chunk_steps": 10,
    "analysis": {"hessian_examples": 48, "lanczos_iterations": 6, "trace_samples": 3, "evaluations": 2},
    "experiment": {"kind": "ratio_sweep", "lrs": [0.05, 0.2], "batch_sizes": [8, 16], "extra_budgets": [{"epochs": 1}]}
}"#;

const TINY_INTERPOLATION: &str = r#"{
    "id": "tiny-interp", "title": "tiny interpolation",
    "model": {"input": 2, "hidden": [12], "classes": 2, "activation": "relu", "init": "he"},
    "data": {"kind": "circles", "n": 80, "seed": 2},
    "budget": {"steps": 30}, "seeds": [4, 5],
    "analysis": {"hessian_examples": 40, "lanczos_iterations": 5},
    "experiment": {"kind": "interpolation", "settings": [{"lr": 0.2, "batch_size": 8}, {"lr": 0.05, "batch_size": 16}],
                   "alphas": {"from": -1, "to": 2, "points": 7}}
}"#;

fn synthetic() -> Box<dyn sgd_lab::experiments::DataSource> {
    Box::new(|t: &TrainConfig| RunData::synthetic(t))
}

fn cpu() -> BackendFactory {
    pollster::block_on(BackendFactory::new(BackendChoice::Cpu)).unwrap()
}

/// Steps a run to the end (or until `stop_after_jobs` jobs finished) and returns its events.
fn drive(run: &mut ExperimentRun, stop_after_jobs: Option<usize>) -> Vec<RunEvent> {
    let mut events = Vec::new();
    while !run.is_done() {
        let ev = pollster::block_on(run.step()).unwrap();
        let finished = ev.iter().any(|e| matches!(e, RunEvent::JobFinished { .. }));
        events.extend(ev);
        if finished && stop_after_jobs.is_some_and(|n| run.results().jobs.len() >= n) {
            break;
        }
    }
    events
}

fn whole_run(json: &str) -> ExperimentRun {
    let cfg = ExperimentConfig::from_json(json).unwrap();
    let mut run = ExperimentRun::new(cfg, None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    drive(&mut run, None);
    run
}

/// The per-model results, without wall-clock seconds (which differ run to run).
fn models_json(r: &ExperimentResults) -> String {
    serde_json::to_string(&r.jobs.iter().map(|j| (&j.job, &j.models)).collect::<Vec<_>>()).unwrap()
}

#[test]
fn every_shipped_preset_parses_and_plans_into_valid_groups() {
    for (id, _) in PRESETS {
        let cfg = preset(id, None).unwrap_or_else(|e| panic!("{id}: {e}"));
        let jobs = plan(&cfg).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(!jobs.is_empty(), "{id}");
        for j in &jobs {
            assert!(j.train.models.len() <= cfg.max_models_per_group, "{id}: group of {}", j.train.models.len());
            assert_eq!(j.tags.len(), j.train.models.len());
            j.train.validate().unwrap();
        }
        assert!(!cfg.claim.is_empty() && !cfg.description.is_empty(), "{id} explains itself");
    }
}

#[test]
fn each_bad_field_is_refused_with_its_name() {
    let cases = [
        (r#"{"seeds": []}"#, "`seeds`"),
        (r#"{"seeds": [1, 1]}"#, "distinct"),
        (r#"{"id": "has space"}"#, "`id`"),
        (r#"{"budget": {"steps": null, "epochs": 0}}"#, "budget.epochs"),
        (r#"{"budget": {"steps": 0}}"#, "budget.steps"),
        (r#"{"momentum": 1.0}"#, "`momentum`"),
        (r#"{"analysis": {"confidence": 1.5}}"#, "analysis.confidence"),
        (r#"{"analysis": {"lanczos_iterations": 0}}"#, "analysis.lanczos_iterations"),
        (r#"{"max_models_per_group": 0}"#, "max_models_per_group"),
        (r#"{"experiment": {"lrs": [0.1, -1]}}"#, "experiment.lrs[1]"),
        (r#"{"experiment": {"batch_sizes": []}}"#, "experiment.batch_sizes"),
        (r#"{"experiment": {"extra_budgets": [{"steps": 0}]}}"#, "experiment.extra_budgets[0]"),
        (r#"{"experiment": {"learning_rates": [0.1]}}"#, "unknown field `learning_rates`"),
        (r#"{"data": {"kind": "two_spirals", "n": 1}}"#, "data.n"),
    ];
    for (patch, field) in cases {
        let e = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(patch)).unwrap_err().to_string();
        assert!(e.contains(field), "patch {patch}: expected {field} in: {e}");
    }
    let e = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some("{not json")).unwrap_err().to_string();
    assert!(e.contains("(override)"), "{e}");
    let e = preset("e6-breakdown", Some(r#"{"experiment": {"betas": [1, 64]}}"#)).and_then(|c| plan(&c)).unwrap_err().to_string();
    assert!(e.contains("experiment.betas[1]") && e.contains("more than"), "{e}");
    let e = preset("e5-memorization", Some(r#"{"dataset": null, "data": {"kind": "xor", "n": 64}}"#)).unwrap_err().to_string();
    assert!(e.contains("real data set"), "{e}");
}

#[test]
fn a_merge_patch_merges_objects_replaces_arrays_and_deletes_nulls() {
    let mut v = serde_json::json!({"a": {"b": 1, "c": [1, 2]}, "d": 4});
    merge_patch(&mut v, &serde_json::json!({"a": {"c": [3], "e": 5}, "d": null}));
    assert_eq!(v, serde_json::json!({"a": {"b": 1, "c": [3], "e": 5}}));
}

#[test]
fn the_ratio_sweep_plans_one_model_per_cell_seed_and_budget_grouped_by_batch_size() {
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let jobs = plan(&cfg).unwrap();
    assert_eq!(jobs.len(), 4, "2 batch sizes × 2 budgets");
    let mut cells: Vec<(u32, usize, u64, usize)> = jobs.iter().flat_map(|j| j.tags.iter().map(|t| (t.lr.to_bits(), t.batch_size, t.seed, t.budget_index))).collect();
    cells.sort();
    cells.dedup();
    assert_eq!(cells.len(), 2 * 2 * 2 * 2);
    for j in &jobs {
        assert!(j.tags.iter().all(|t| t.batch_size == j.train.batch_size));
        let expected = if j.tags[0].budget_index == 0 { 24 } else { (96.0 / j.train.batch_size as f64).round() as usize };
        assert_eq!(j.train.steps, expected, "{}", j.label);
        assert_eq!(j.train.eval_every, j.train.steps / 2);
    }
}

#[test]
fn the_schedules_preset_pairs_a_cyclic_learning_rate_with_the_matching_cyclic_batch_size() {
    let cfg = preset("e4-schedules", None).unwrap();
    let jobs = plan(&cfg).unwrap();
    let clr = jobs.iter().find(|j| j.label == "cyclic learning rate").unwrap();
    let cbs = jobs.iter().find(|j| j.label == "cyclic batch size").unwrap();
    assert_eq!(clr.train.schedule.as_ref().unwrap().of, ScheduleTarget::LearningRate);
    assert_eq!(cbs.train.schedule.as_ref().unwrap().of, ScheduleTarget::BatchSize);
    for stage in 0..8 {
        let ratio = |j: &sgd_lab::experiments::Job| f64::from(j.train.models[0].lr * j.train.lr_factor_at_stage(stage)) / j.train.batch_at_stage(stage) as f64;
        // Equal up to rounding the batch size to whole examples (B·max f / f).
        assert!((ratio(clr) / ratio(cbs) - 1.0).abs() < 5e-3, "stage {stage}");
    }
    assert!(cbs.train.steps < clr.train.steps, "the cyclic batch size takes fewer steps for the same epochs");
}

#[test]
fn edge_of_stability_uses_the_whole_training_set_as_the_full_batch_and_measures_during_training() {
    let cfg = preset("edge-of-stability", None).unwrap();
    let jobs = plan(&cfg).unwrap();
    let full = jobs.iter().find(|j| j.label.starts_with("full batch")).unwrap();
    assert_eq!(full.train.batch_size, 1000);
    let sh = full.train.sharpness.as_ref().unwrap();
    assert_eq!(sh.every, 1000 / 20);
}

#[test]
fn a_sweep_runs_to_the_end_with_every_model_measured_and_progress_reaching_one() {
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut run = ExperimentRun::new(cfg, None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    let events = drive(&mut run, None);
    let fractions: Vec<f64> = events.iter().filter_map(|e| if let RunEvent::Progress { fraction, .. } = e { Some(*fraction) } else { None }).collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "progress never goes back");
    assert!((fractions.last().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(events.iter().filter(|e| matches!(e, RunEvent::JobStarted { .. })).count(), 4);
    assert!(matches!(events.last(), Some(RunEvent::Finished)));
    let r = run.results();
    assert!(r.complete());
    assert_eq!(r.models().count(), 16);
    for m in r.models() {
        assert!(m.lambda_max.unwrap() > 0.0 && m.trace.unwrap().is_finite(), "{:?}", m.tag);
        assert_eq!(m.curve.len(), 2, "two evaluations, evenly spaced, the last at the end");
        assert_eq!(m.curve.last(), Some(&m.last));
        assert!(m.last.train_loss.is_finite() && m.steps == m.last.step);
    }
    let csv = r.to_csv();
    assert_eq!(csv.lines().count(), 17, "a header and one row per model");
}

#[test]
fn a_run_resumed_from_saved_results_ends_bit_identical_to_an_uninterrupted_one() {
    let whole = whole_run(TINY_SWEEP);
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut first = ExperimentRun::new(cfg.clone(), None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    drive(&mut first, Some(2));
    assert_eq!(first.results().jobs.len(), 2);
    let saved = ExperimentResults::from_json(&first.results().to_json()).unwrap();
    drop(first);
    let mut resumed = ExperimentRun::new(cfg, None, cpu(), synthetic(), Some(saved), HashMap::new()).unwrap();
    let events = drive(&mut resumed, None);
    assert_eq!(events.iter().filter(|e| matches!(e, RunEvent::JobStarted { .. })).count(), 2, "only the missing groups run");
    assert_eq!(models_json(resumed.results()), models_json(whole.results()));
}

#[test]
fn results_with_diverged_models_are_saved_and_read_back_for_resuming() {
    let json = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"experiment": {"lrs": [0.05, 1e6], "extra_budgets": []}}"#)).unwrap().to_json();
    let run = whole_run(&json);
    let r = run.results();
    let diverged: Vec<&ModelResult> = r.models().filter(|m| !m.ok()).collect();
    assert_eq!(diverged.len(), 4, "η = 1e6 diverges for both seeds and both batch sizes");
    assert!(diverged.iter().all(|m| m.diverged_at.is_some() && m.tag.lr == 1e6));
    assert!(r.models().filter(|m| m.ok()).all(|m| m.last.train_loss.is_finite()));
    let back = ExperimentResults::from_json(&r.to_json()).unwrap();
    assert_eq!(models_json(&back), models_json(r));
    let rep = build(&back).unwrap();
    assert!(rep.tables[0].contains("| 1 of 2 |") || rep.tables[0].contains("| 2 of 2 |"), "diverged models are counted: {}", rep.tables[0]);
}

#[test]
fn resuming_with_another_config_is_refused() {
    let whole = whole_run(TINY_SWEEP);
    let other = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"seeds": [7]}"#)).unwrap();
    let e = ExperimentRun::new(other, None, cpu(), synthetic(), Some(whole.results().clone()), HashMap::new()).err().unwrap().to_string();
    assert!(e.contains("different configuration"), "{e}");
}

#[test]
fn shards_merge_into_the_results_of_the_whole_run() {
    let whole = whole_run(TINY_SWEEP);
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut parts = Vec::new();
    for i in 0..3 {
        let mut run = ExperimentRun::new(cfg.clone(), Some((i, 3)), cpu(), synthetic(), None, HashMap::new()).unwrap();
        drive(&mut run, None);
        assert!(run.results().jobs.iter().all(|j| j.job % 3 == i));
        parts.push(run.results().clone());
    }
    assert!(!parts[0].complete());
    let merged = ExperimentResults::merge(parts).unwrap();
    assert!(merged.complete());
    assert_eq!(models_json(&merged), models_json(whole.results()));
    let e = ExperimentResults::merge(vec![merged.clone(), ExperimentResults::new(ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"seeds": [9]}"#)).unwrap(), 4, None)]).unwrap_err();
    assert!(e.to_string().contains("different"), "{e}");
}

#[test]
fn interpolations_join_the_minima_of_each_seed_so_their_ends_match_the_final_losses() {
    let run = whole_run(TINY_INTERPOLATION);
    let r = run.results();
    assert_eq!(r.interpolations.len(), 2, "one pair × two seeds");
    for i in &r.interpolations {
        assert_eq!(i.alphas, vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]);
        for (end, alpha_index) in [(0, 2), (1, 4)] {
            let m = r.models().find(|m| m.tag.setting == Some(i.settings[end]) && m.tag.seed == i.seed).unwrap();
            let (a, b) = (i.train_loss[alpha_index], m.last.train_loss);
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "seed {} end {end}: {a} vs final {b}", i.seed);
        }
    }
}

#[test]
fn an_interpolation_without_the_kept_parameters_says_where_they_should_have_been() {
    let done = whole_run(TINY_INTERPOLATION);
    let mut saved = done.results().clone();
    saved.interpolations.clear();
    let cfg = saved.config.clone();
    let mut run = ExperimentRun::new(cfg, None, cpu(), synthetic(), Some(saved), HashMap::new()).unwrap();
    let e = pollster::block_on(run.step()).unwrap_err().to_string();
    assert!(e.contains("params/job-"), "{e}");
}

#[test]
fn each_jobs_exported_parameters_are_the_bits_an_independent_training_of_that_job_ends_with() {
    use sgd_lab::backend::Backend;
    use sgd_lab::train::safetensors::params_from_safetensors;
    use sgd_lab::train::Trainer;
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut run = ExperimentRun::new(cfg, None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    run.keep_all_params(1 << 20);
    let e = run.params_safetensors(0).unwrap_err().to_string();
    assert!(e.contains("job 0") && e.contains("not finished yet"), "{e}");
    drive(&mut run, None);
    for job in run.jobs().to_vec() {
        let bytes = run.params_safetensors(job.index).unwrap();
        let (layout, values) = params_from_safetensors(&bytes).unwrap();
        assert_eq!(layout, job.train.model.layout());
        assert_eq!(values.len(), job.train.models.len() * layout.params_per_model);
        // The same job trained alone, outside the experiment, must end with exactly these parameters.
        let backend = cpu().build(&layout, job.train.models.len(), job.train.max_batch().max(512)).unwrap();
        let mut t = Trainer::with_data(job.train.clone(), backend, RunData::synthetic(&job.train).unwrap()).unwrap();
        while !t.is_done() {
            pollster::block_on(t.run_chunk()).unwrap();
        }
        let alone = pollster::block_on(t.backend_mut().read_params()).unwrap();
        assert!(alone.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()), "job {}", job.index);
    }
    let e = run.params_safetensors(99).unwrap_err().to_string();
    assert!(e.contains("job") && e.contains("below 4"), "{e}");
}

#[test]
fn kept_parameters_stay_under_their_memory_bound_by_dropping_the_oldest_jobs_first() {
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut run = ExperimentRun::new(cfg.clone(), None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    // One job holds 4 models × 62 parameters × 4 bytes = 992 bytes: 1500 bytes keep only the newest job.
    run.keep_all_params(1500);
    drive(&mut run, None);
    for j in 0..3 {
        let e = run.params_safetensors(j).unwrap_err().to_string();
        assert!(e.contains(&format!("job {j}")) && e.contains("dropped"), "{e}");
    }
    assert!(run.params_safetensors(3).is_ok());
    assert_eq!(run.kept_params().len(), 1);
    // Without keep_all_params, a sweep keeps nothing and says so.
    let plain = whole_run(TINY_SWEEP);
    let e = plain.params_safetensors(0).unwrap_err().to_string();
    assert!(e.contains("does not keep parameters"), "{e}");
}

#[test]
fn every_report_of_a_tiny_run_is_well_formed() {
    for json in [TINY_SWEEP, TINY_INTERPOLATION] {
        let run = whole_run(json);
        let rep = build(run.results()).unwrap();
        assert!(!rep.claims.is_empty() && rep.caveats.len() >= 5);
        for c in &rep.claims {
            assert!(!c.statement.is_empty() && !c.statistic.is_empty() && !c.value.is_empty(), "{c:?}");
        }
        let md = rep.to_markdown("figures");
        for f in &rep.figures {
            assert!(f.svg.starts_with("<svg") && f.svg.trim_end().ends_with("</svg>"), "{}", f.name);
            assert!(md.contains(&format!("figures/{}.svg", f.name)));
        }
        assert!(md.contains("Dinh et al., 2017") && md.contains("(1 − B/N)") && md.contains("Luo et al., 2020"));
    }
}

#[test]
fn a_report_of_unfinished_results_is_refused() {
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let e = build(&ExperimentResults::new(cfg, 4, None)).unwrap_err().to_string();
    assert!(e.contains("0 of 4 groups"), "{e}");
}

/// Results of a sweep whose λ_max is `f(η, B)` exactly, one model per cell and seed (seed noise ×(1 ± 1 %));
/// training and validation accuracy are 1/λ_max, as if from a real data set with a validation split.
fn synthetic_sweep(f: impl Fn(f64, f64) -> f64) -> ExperimentResults {
    let lrs = [0.00625f32, 0.0125, 0.025, 0.05];
    let bs = [62usize, 125, 250, 500, 1000];
    let cfg = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"experiment": {"lrs": [0.00625, 0.0125, 0.025, 0.05], "batch_sizes": [62, 125, 250, 500, 1000], "extra_budgets": []}, "seeds": [1, 2, 3]}"#)).unwrap();
    let mut models = Vec::new();
    for &lr in &lrs {
        for &b in &bs {
            for seed in 1..=3u64 {
                let noise = 1.0 + 0.01 * (seed as f64 - 2.0);
                let lam = f(f64::from(lr), b as f64) * noise;
                models.push(ModelResult {
                    tag: ModelTag { lr, batch_size: b, seed, momentum: 0.0, budget_index: 0, budget: "24 steps".into(), setting: None, label: String::new(), train_size: 96, random_label_fraction: 0.0, beta: None },
                    job: 0,
                    slot: models.len(),
                    steps: 24,
                    epochs: 1.0,
                    diverged_at: None,
                    last: CurvePoint { train_accuracy: 1.0 / lam, validation_accuracy: Some(1.0 / lam), ..Default::default() },
                    curve: Vec::new(),
                    lambda_max: Some(lam),
                    trace: None,
                    trace_std_error: None,
                    trace_samples: None,
                    probe_seed: None,
                    sharpness: Vec::new(),
                });
            }
        }
    }
    let mut r = ExperimentResults::new(cfg, 1, None);
    r.jobs.push(JobResult { job: 0, backend: "made up".into(), seconds: 0.0, models });
    r
}

fn verdict_of(r: &ExperimentResults, starts: &str) -> Verdict {
    build(r).unwrap().claims.iter().find(|c| c.statement.starts_with(starts)).unwrap_or_else(|| panic!("no claim starting {starts}")).verdict
}

#[test]
fn when_lambda_max_is_a_function_of_the_ratio_alone_the_sweep_claims_hold() {
    let r = synthetic_sweep(|lr, b| 10.0 * (lr / b).powf(-0.5));
    assert_eq!(verdict_of(&r, "Higher η/B gives smaller λ_max"), Verdict::Holds);
    assert_eq!(verdict_of(&r, "λ_max depends on η and B only through η/B"), Verdict::Holds);
    assert_eq!(verdict_of(&r, "Cells with the same η/B"), Verdict::Holds);
}

#[test]
fn when_lambda_max_depends_on_the_learning_rate_alone_exchangeability_does_not_hold() {
    let r = synthetic_sweep(|lr, _| 10.0 * lr.powf(-0.5));
    assert_eq!(verdict_of(&r, "λ_max depends on η and B only through η/B"), Verdict::DoesNotHold);
    assert_eq!(verdict_of(&r, "Cells with the same η/B"), Verdict::DoesNotHold);
}

#[test]
fn when_sharpness_grows_with_the_ratio_the_direction_claim_does_not_hold() {
    let r = synthetic_sweep(|lr, b| 10.0 * (lr / b).powf(0.5));
    assert_eq!(verdict_of(&r, "Higher η/B gives smaller λ_max"), Verdict::DoesNotHold);
    assert_eq!(verdict_of(&r, "Higher η/B gives better"), Verdict::DoesNotHold);
}

/// The same tiny sweep on the GPU: every model ends where the CPU's does (f32 on both; the trajectories
/// agree to rounding), and λ_max agrees to the Lanczos estimate's own rounding.
async fn a_sweep_on_the_gpu_matches_the_cpu_model_by_model() {
    let cfg = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"analysis": {"trace_samples": 0}, "experiment": {"extra_budgets": []}}"#)).unwrap();
    let gpu = BackendFactory::with_gpu(common::ctx().await);
    let mut on_gpu = ExperimentRun::new(cfg.clone(), None, gpu, synthetic(), None, HashMap::new()).unwrap();
    while !on_gpu.is_done() {
        on_gpu.step().await.unwrap();
    }
    let mut on_cpu = ExperimentRun::new(cfg, None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    while !on_cpu.is_done() {
        on_cpu.step().await.unwrap();
    }
    let (g, c): (Vec<&ModelResult>, Vec<&ModelResult>) = (on_gpu.results().models().collect(), on_cpu.results().models().collect());
    assert_eq!(g.len(), 8);
    assert!(on_gpu.results().jobs[0].backend.starts_with("GPU"));
    for (g, c) in g.iter().zip(&c) {
        assert_eq!(g.tag, c.tag);
        let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs().max(1e-3);
        assert!(close(g.last.train_loss, c.last.train_loss, 1e-3), "{:?}: loss {} vs {}", g.tag, g.last.train_loss, c.last.train_loss);
        assert!(close(g.lambda_max.unwrap(), c.lambda_max.unwrap(), 1e-2), "{:?}: λ_max {:?} vs {:?}", g.tag, g.lambda_max, c.lambda_max);
    }
}
common::gpu_test!(a_sweep_on_the_gpu_matches_the_cpu_model_by_model);

/// Steps a run until group `job` has done at least one chunk and is still training, then checkpoints it.
fn checkpoint_inside(run: &mut ExperimentRun, job: usize) -> Vec<u8> {
    loop {
        let ev = pollster::block_on(run.step()).unwrap();
        if ev.iter().any(|e| matches!(e, RunEvent::Progress { job: j, step, steps, .. } if *j == job && step < steps)) {
            return pollster::block_on(run.checkpoint()).unwrap().expect("a group between two chunks");
        }
        assert!(!run.is_done(), "group {job} never ran a chunk");
    }
}

#[test]
fn a_group_resumed_from_a_mid_group_checkpoint_ends_bit_identical_to_an_uninterrupted_run() {
    let whole = whole_run(TINY_SWEEP);
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    for job in [0, 2] {
        let mut first = ExperimentRun::new(cfg.clone(), None, cpu(), synthetic(), None, HashMap::new()).unwrap();
        let bytes = checkpoint_inside(&mut first, job);
        let saved = (job > 0).then(|| ExperimentResults::from_json(&first.results().to_json()).unwrap());
        assert_eq!(saved.as_ref().map_or(0, |s| s.jobs.len()), job, "the groups before it are finished");
        drop(first);
        let mut resumed = ExperimentRun::new(cfg.clone(), None, cpu(), synthetic(), saved, HashMap::new()).unwrap();
        let (j, step) = resumed.resume_group(&bytes).unwrap().expect("the group is not finished");
        assert_eq!(j, job);
        assert!(step > 0 && step < resumed.jobs()[job].train.steps, "resumed inside the group, at step {step}");
        let events = drive(&mut resumed, None);
        assert!(!events.iter().any(|e| matches!(e, RunEvent::JobStarted { job: s, .. } if *s == job)), "group {job} is not restarted");
        assert_eq!(models_json(resumed.results()), models_json(whole.results()), "resumed inside group {job}");
    }
}

#[test]
fn a_mid_group_checkpoint_of_another_config_or_shard_is_refused_and_one_of_a_finished_group_is_stale() {
    let cfg = ExperimentConfig::from_json(TINY_SWEEP).unwrap();
    let mut first = ExperimentRun::new(cfg.clone(), None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    let bytes = checkpoint_inside(&mut first, 1);
    let other = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"analysis": {"evaluations": 3}}"#)).unwrap();
    let e = ExperimentRun::new(other, None, cpu(), synthetic(), None, HashMap::new()).unwrap().resume_group(&bytes).unwrap_err().to_string();
    assert!(e.contains("different experiment configuration"), "{e}");
    let e = ExperimentRun::new(cfg.clone(), Some((0, 2)), cpu(), synthetic(), None, HashMap::new()).unwrap().resume_group(&bytes).unwrap_err().to_string();
    assert!(e.contains("group 1, which this run does not train"), "{e}");
    drive(&mut first, Some(2));
    let done = ExperimentResults::from_json(&first.results().to_json()).unwrap();
    let mut later = ExperimentRun::new(cfg, None, cpu(), synthetic(), Some(done), HashMap::new()).unwrap();
    assert_eq!(later.resume_group(&bytes).unwrap(), None, "group 1 finished after its checkpoint");
    let e = later.resume_group(&bytes[..bytes.len() / 2]).unwrap_err().to_string();
    assert!(e.contains("not a usable checkpoint"), "{e}");
}

fn run_patched(json: &str, patch: &str) -> ExperimentRun {
    let cfg = ExperimentConfig::from_json_with_patch(json, Some(patch)).unwrap();
    let mut run = ExperimentRun::new(cfg, None, cpu(), synthetic(), None, HashMap::new()).unwrap();
    drive(&mut run, None);
    run
}

#[test]
fn the_trace_takes_at_most_analysis_trace_samples_probes_and_each_model_records_its_count_and_probe_seed() {
    // TINY_SWEEP runs 6 Lanczos steps: the trace used to take as many probes, whatever trace_samples said.
    for samples in [3usize, 14] {
        let run = run_patched(TINY_SWEEP, &format!(r#"{{"analysis": {{"trace_samples": {samples}}}}}"#));
        for m in run.results().models() {
            let used = m.trace_samples.expect("a trace was measured");
            // A model stops early only after 10 samples (and a standard error under 0.1 %).
            assert!(used == samples || (10..samples).contains(&used), "{} took {used} of {samples} samples", m.tag.label);
            assert!(m.probe_seed.is_some() && m.trace.is_some());
        }
    }
    let json = run_patched(TINY_SWEEP, r#"{"analysis": {"trace_samples": 3}}"#).results().to_json();
    assert!(json.contains("\"trace_samples\": 3") && json.contains("\"probe_seed\""), "results.json records them");
    let none = run_patched(TINY_SWEEP, r#"{"analysis": {"trace_samples": 0}}"#);
    assert!(none.results().models().all(|m| m.trace.is_none() && m.trace_samples.is_none() && m.lambda_max.is_some()), "0 samples: no trace");
}

#[test]
fn a_models_lambda_max_and_trace_do_not_change_when_other_models_join_its_group() {
    // η = 0.2, B = 8, seed 2: alone in its group, then fourth of four (two η × two seeds).
    let alone = run_patched(TINY_SWEEP, r#"{"experiment": {"lrs": [0.2], "batch_sizes": [8], "extra_budgets": []}, "seeds": [2]}"#);
    let crowd = run_patched(TINY_SWEEP, r#"{"experiment": {"lrs": [0.05, 0.2], "batch_sizes": [8], "extra_budgets": []}, "seeds": [1, 2]}"#);
    let a = alone.results().models().next().unwrap();
    let c = crowd.results().models().find(|m| m.tag.lr == 0.2 && m.tag.seed == 2).unwrap();
    assert_eq!((a.slot, c.slot), (0, 3));
    assert_eq!(a.last, c.last, "training does not depend on the group either");
    assert_eq!((a.lambda_max, a.trace, a.trace_std_error, a.trace_samples, a.probe_seed), (c.lambda_max, c.trace, c.trace_std_error, c.trace_samples, c.probe_seed));
}

// ---- Statistics' loose ends: the matched-ratio tolerance, no silent fallback to training accuracy, one
// seed, and grids with a single η/B.

/// Made-up results of every model `cfg` plans, without training: λ_max = `lam(tag)` (×(1 ± 1 %) by seed),
/// a three-point curve (with a validation accuracy when `validation`, and an accuracy on the random labels
/// where some were replaced), λ_max during training for edge of stability, and one interpolation per pair
/// and seed for the interpolation presets.
fn made_up(cfg: ExperimentConfig, validation: bool, lam: impl Fn(&ModelTag) -> f64) -> ExperimentResults {
    let jobs = plan(&cfg).unwrap();
    let edge = matches!(cfg.experiment, ExperimentKind::EdgeOfStability { .. });
    let mut r = ExperimentResults::new(cfg.clone(), jobs.len(), None);
    for j in &jobs {
        let models = j
            .tags
            .iter()
            .enumerate()
            .map(|(slot, t)| {
                let l = lam(t) * (1.0 + 0.01 * (t.seed % 3) as f64 - 0.01);
                let point = |k: usize| CurvePoint {
                    step: (k + 1) * j.train.steps / 3,
                    epoch: (k + 1) as f64,
                    train_loss: 1.0 / (k + 2) as f64,
                    train_accuracy: 0.5 + 0.1 * k as f64,
                    validation_loss: validation.then_some(1.0),
                    validation_accuracy: validation.then(|| 0.4 + 0.05 * k as f64 - 0.01 * l.ln()),
                    corrupted_accuracy: (t.random_label_fraction > 0.0).then(|| 0.3 * (k + 1) as f64),
                    ..Default::default()
                };
                let curve: Vec<CurvePoint> = (0..3).map(point).collect();
                let threshold = 2.0 * (1.0 + f64::from(t.momentum)) / f64::from(t.lr);
                let sharpness = if edge { (0..4).map(|k| SharpnessPoint { step: 10 * k, lambda_max: threshold * (0.6 + 0.1 * k as f64), threshold, probe_seed: None }).collect() } else { Vec::new() };
                ModelResult { tag: t.clone(), job: j.index, slot, steps: j.train.steps, epochs: 3.0, diverged_at: None, last: curve[2].clone(), curve, lambda_max: Some(l), trace: None, trace_std_error: None, trace_samples: None, probe_seed: None, sharpness }
            })
            .collect();
        r.jobs.push(JobResult { job: j.index, backend: "made up".into(), seconds: 0.0, models });
    }
    if let ExperimentKind::Interpolation { settings, pairs, alphas } = &cfg.experiment {
        let pairs: Vec<[usize; 2]> = if pairs.is_empty() { (1..settings.len()).map(|i| [i - 1, i]).collect() } else { pairs.clone() };
        let a: Vec<f64> = (0..alphas.points).map(|k| alphas.from + (alphas.to - alphas.from) * k as f64 / (alphas.points - 1) as f64).collect();
        for p in pairs {
            for &seed in &cfg.seeds {
                let train_loss = a.iter().map(|x| 0.1 + (x - 0.5).powi(2)).collect();
                r.interpolations.push(InterpolationResult { settings: p, seed, alphas: a.clone(), train_loss, train_accuracy: vec![0.9; a.len()], validation_loss: Vec::new(), validation_accuracy: Vec::new() });
            }
        }
    }
    r
}

/// λ_max = 10·(η/B)^−½: a function of the ratio alone.
fn of_ratio(t: &ModelTag) -> f64 {
    10.0 * t.ratio().powf(-0.5)
}

fn claim<'a>(rep: &'a sgd_lab::experiments::report::Report, starts: &str) -> &'a sgd_lab::experiments::report::Claim {
    rep.claims.iter().find(|c| c.statement.starts_with(starts)).unwrap_or_else(|| panic!("no claim starting {starts}: {:?}", rep.claims))
}

/// A sweep whose cells η=0.01, B=25 (η/B 4e-4) and η=0.0204, B=50 (η/B 4.08e-4) differ in η/B by 1.96 %; the
/// other pairs differ by a factor of 2 or more.
fn near_miss_sweep(patch: &str) -> ExperimentResults {
    let base = r#"{"seeds": [1, 2, 3], "experiment": {"lrs": [0.01, 0.0204], "batch_sizes": [25, 50], "extra_budgets": []}}"#;
    let mut cfg = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(base)).unwrap().to_json();
    cfg = ExperimentConfig::from_json_with_patch(&cfg, Some(patch)).unwrap().to_json();
    made_up(ExperimentConfig::from_json(&cfg).unwrap(), true, of_ratio)
}

#[test]
fn the_matched_ratio_tolerance_defaults_to_two_percent_and_decides_which_cells_share_an_iso_ratio_line() {
    assert_eq!(AnalysisSettings::default().matched_ratio_tolerance, 0.02);
    assert_eq!(ExperimentConfig::from_json(TINY_SWEEP).unwrap().analysis.matched_ratio_tolerance, 0.02);
    // 1.96 % apart: inside the default 2 %, the pair is matched and the claim is decided ...
    let inside = build(&near_miss_sweep("{}")).unwrap();
    let c = claim(&inside, "Cells with the same η/B");
    assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
    assert!(c.value.contains("1 pairs") && c.statistic.contains("within 2 %"), "{c:?}");
    // ... and just outside a 1.9 % tolerance there is no pair, which the claim says, naming the closest one.
    let outside = build(&near_miss_sweep(r#"{"analysis": {"matched_ratio_tolerance": 0.019}}"#)).unwrap();
    let c = claim(&outside, "Cells with the same η/B");
    assert_eq!(c.verdict, Verdict::Inconclusive, "{c:?}");
    assert!(
        c.value.contains("no pair of cells within the 1.9 % tolerance; closest: η=0.01, B=25 vs η=0.0204, B=50 (η/B 4.00e-4 vs 4.08e-4, differ by 1.96 %)"),
        "{}",
        c.value
    );
}

#[test]
fn a_matched_ratio_tolerance_outside_zero_to_one_is_refused_by_its_name() {
    for bad in ["0", "1", "-0.1", "1.5"] {
        let patch = format!(r#"{{"analysis": {{"matched_ratio_tolerance": {bad}}}}}"#);
        let e = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(&patch)).unwrap_err().to_string();
        assert!(e.contains("analysis.matched_ratio_tolerance") && e.contains("(0, 1)"), "{bad}: {e}");
    }
}

#[test]
fn results_saved_before_the_tolerance_existed_still_load_with_its_default_and_the_default_is_not_written() {
    let r = near_miss_sweep("{}");
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(v["config"]["analysis"].get("matched_ratio_tolerance").is_none(), "written as builds before it wrote it");
    let back = ExperimentResults::from_json(&v.to_string()).unwrap();
    assert_eq!(back, r);
    let other = near_miss_sweep(r#"{"analysis": {"matched_ratio_tolerance": 0.05}}"#);
    assert!(other.to_json().contains("\"matched_ratio_tolerance\": 0.05"), "another value is written");
}

/// Every generalisation claim of `rep`: the claims whose statement or statistic is about validation accuracy.
fn generalisation_claims(rep: &sgd_lab::experiments::report::Report) -> Vec<&sgd_lab::experiments::report::Claim> {
    rep.claims.iter().filter(|c| c.statement.contains("validation accuracy") || c.statistic.contains("validation accuracy") || c.statement.contains("generalises")).collect()
}

#[test]
fn without_a_validation_split_every_generalisation_claim_refuses_and_says_how_to_get_one() {
    // Synthetic data has no validation split: a real run of the tiny sweep.
    let run = whole_run(TINY_SWEEP);
    let rep = build(run.results()).unwrap();
    let c = claim(&rep, "Higher η/B gives better validation accuracy");
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.value.starts_with("refused: no model has a validation accuracy") && c.value.contains("synthetic `data` has no validation split") && c.value.contains("validation_size"), "{}", c.value);
    assert!(rep.tables[0].contains("training accuracy (no validation split)"), "tables still show training accuracy, named: {}", rep.tables[0]);
    assert!(rep.figures.iter().any(|f| f.title.starts_with("training accuracy (no validation split) against η/B")));
    // Every preset, on a real data set without `validation_size`.
    for (id, _) in PRESETS {
        let cfg = preset(id, Some(r#"{"dataset": {"validation_size": null}}"#)).unwrap();
        let rep = build(&made_up(cfg, false, of_ratio)).unwrap();
        let claims = generalisation_claims(&rep);
        assert!(!claims.is_empty() || ["e6-breakdown", "edge-of-stability"].contains(&id), "{id} has generalisation claims");
        for c in claims {
            assert_eq!(c.verdict, Verdict::Inconclusive, "{id}: {c:?}");
            assert!(c.value.starts_with("refused: no model has a validation accuracy") && c.value.contains("set `dataset.validation_size`"), "{id}: {}", c.value);
        }
    }
}

#[test]
fn when_only_some_models_have_a_validation_accuracy_the_claim_refuses_and_counts_those_without() {
    let mut r = synthetic_sweep(|lr, b| 10.0 * (lr / b).powf(-0.5));
    for m in r.jobs[0].models.iter_mut().take(5) {
        m.last.validation_accuracy = None;
    }
    let rep = build(&r).unwrap();
    let c = claim(&rep, "Higher η/B gives better validation accuracy");
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.value.starts_with("refused: 5 of 60 finished models have no validation accuracy"), "{}", c.value);
    assert!(rep.tables[0].contains("training accuracy (5 of 60 models lack a validation accuracy)"), "{}", rep.tables[0]);
    // With every model's validation accuracy, the claim is decided on it.
    let whole = build(&synthetic_sweep(|lr, b| 10.0 * (lr / b).powf(-0.5))).unwrap();
    assert_eq!(claim(&whole, "Higher η/B gives better validation accuracy").verdict, Verdict::Holds);
    assert!(whole.tables[0].contains("| validation accuracy |"), "{}", whole.tables[0]);
}

/// `{"seeds": [1]}` and the smallest grid each preset's validation allows.
const SMALLEST: [(&str, &str); 8] = [
    ("e1-ratio-sweep", r#"{"experiment": {"lrs": [0.01], "batch_sizes": [50], "extra_budgets": []}}"#),
    ("e1-ratio-sweep-deep", r#"{"experiment": {"lrs": [0.01], "batch_sizes": [50], "extra_budgets": []}}"#),
    ("e2-interpolation-ratios", r#"{"experiment": {"settings": [{"lr": 0.1, "batch_size": 32}, {"lr": 0.01, "batch_size": 32}], "pairs": [[0, 1]]}}"#),
    ("e3-interpolation-equal-ratio", r#"{"experiment": {"settings": [{"lr": 0.1, "batch_size": 32}, {"lr": 0.2, "batch_size": 64}], "pairs": [[0, 1]]}}"#),
    ("e4-schedules", r#"{"experiment": {"factors": [1], "constant": []}}"#),
    ("e5-memorization", r#"{"experiment": {"random_label_fractions": [0.5], "lrs": [0.05], "batch_sizes": [50], "momenta": [0]}}"#),
    ("e6-breakdown", r#"{"experiment": {"betas": [1], "train_sizes": [200]}}"#),
    ("edge-of-stability", r#"{"experiment": {"lrs": [0.05], "batch_sizes": [0]}}"#),
];

fn one_seed(id: &str, grid: Option<&str>) -> ExperimentConfig {
    let mut json = preset(id, Some(r#"{"seeds": [1]}"#)).unwrap().to_json();
    if let Some(g) = grid {
        json = ExperimentConfig::from_json_with_patch(&json, Some(g)).unwrap().to_json();
    }
    ExperimentConfig::from_json(&json).unwrap()
}

#[test]
fn a_one_seed_report_prints_n_a_for_every_spread_and_never_nan() {
    // A real one-seed run of the tiny sweep ...
    let run = whole_run(&ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"seeds": [1]}"#)).unwrap().to_json());
    let rep = build(run.results()).unwrap();
    let md = rep.to_markdown("figures");
    assert!(md.contains("± n/a (1 seed)") && !md.contains("NaN"), "{md}");
    let c = claim(&rep, "Cells with the same η/B");
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.value.contains("seed-to-seed spread n/a (1 seed)"), "{}", c.value);
    // ... and every preset, at its own grid and at the smallest one, from made-up one-seed results.
    for (id, grid) in SMALLEST {
        for g in [None, Some(grid)] {
            let rep = build(&made_up(one_seed(id, g), true, of_ratio)).unwrap_or_else(|e| panic!("{id} {g:?}: {e}"));
            let md = rep.to_markdown("figures");
            assert!(!md.contains("NaN"), "{id} {g:?}: {md}");
            if md.contains(" ± ") && !id.starts_with("e5") {
                assert!(md.contains("n/a (1 seed)"), "{id} {g:?}: {md}");
            }
        }
    }
    let e4 = build(&made_up(one_seed("e4-schedules", None), true, of_ratio)).unwrap();
    assert!(e4.claims.iter().all(|c| c.value.starts_with("n/a (1 seed): a t interval needs at least 2 seed pairs")), "{:?}", e4.claims);
    let e3 = build(&made_up(one_seed("e3-interpolation-equal-ratio", None), true, of_ratio)).unwrap();
    assert!(claim(&e3, "Minima found with the same η/B").value.starts_with("n/a (1 seed)"));
}

#[test]
fn a_one_by_one_grid_finishes_with_its_report_and_notes_the_skipped_figures() {
    let one = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"experiment": {"lrs": [0.05], "batch_sizes": [8], "extra_budgets": []}}"#)).unwrap();
    let run = whole_run(&one.to_json());
    let rep = build(run.results()).unwrap();
    assert!(rep.figures.is_empty(), "{:?}", rep.figures.iter().map(|f| &f.name).collect::<Vec<_>>());
    let notes: Vec<&String> = rep.caveats.iter().filter(|c| c.starts_with("Figures not drawn")).collect();
    assert!(notes.iter().any(|n| n.contains("`lambda-max-vs-ratio-0`") && n.contains("every cell of this grid has the same η/B")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("`lambda-max-heatmap-0`, `accuracy-heatmap-0`") && n.contains("this grid has 1 × 1")), "{notes:?}");
    let c = claim(&rep, "Cells with the same η/B");
    assert!(c.verdict == Verdict::Inconclusive && c.value.contains("1 finished cell(s), so no pair of cells to compare"), "{c:?}");
    let md = rep.to_markdown("figures");
    assert!(md.contains("No figure could be drawn; the caveats say why.") && !md.contains("NaN"), "{md}");
}

#[test]
fn a_grid_with_one_learning_rate_draws_its_ratio_plots_and_skips_only_the_heatmaps() {
    let cfg = ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(r#"{"experiment": {"lrs": [0.05], "batch_sizes": [8, 16], "extra_budgets": []}}"#)).unwrap();
    let rep = build(&made_up(cfg, true, of_ratio)).unwrap();
    let names: Vec<&str> = rep.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["lambda-max-vs-ratio-0", "accuracy-vs-ratio-0"]);
    assert!(rep.caveats.iter().any(|c| c.starts_with("Figures not drawn: `lambda-max-heatmap-0`, `accuracy-heatmap-0`") && c.contains("1 × 2")), "{:?}", rep.caveats);
}

#[test]
fn a_figure_that_cannot_be_drawn_becomes_a_caveat_instead_of_costing_the_report() {
    // No model has a λ_max: the λ_max figures have nothing to draw.
    let mut r = synthetic_sweep(|lr, b| 10.0 * (lr / b).powf(-0.5));
    for m in r.jobs[0].models.iter_mut() {
        m.lambda_max = None;
    }
    let rep = build(&r).unwrap();
    assert!(rep.caveats.iter().any(|c| c.starts_with("Figure not drawn: `lambda-max-vs-ratio-0`") && c.contains("no finite points to draw")), "{:?}", rep.caveats);
    assert!(rep.figures.iter().any(|f| f.name == "accuracy-vs-ratio-0"), "the other figures are drawn");
}


#[test]
fn an_override_that_is_not_a_json_object_is_refused_rather_than_replacing_the_config() {
    for (patch, got) in [(r#""""#, "a string"), ("null", "null"), ("[1, 2]", "an array"), ("3", "a number"), ("true", "a boolean")] {
        match ExperimentConfig::from_json_with_patch(TINY_SWEEP, Some(patch)) {
            Err(sgd_lab::LabError::Config { field, message }) => {
                assert_eq!(field, "(override)", "{patch}");
                assert!(message.contains("must be a JSON object") && message.contains(got), "{patch}: {message}");
            }
            other => panic!("{patch}: {other:?}"),
        }
    }
}
