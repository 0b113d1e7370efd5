//! Numerical edge cases on the CPU backend: η = 0, a huge η (up to f32's largest), B > N, N < number of
//! classes, NaN/Inf features and data of one class. Each gets an error naming the field, or a per-model
//! "diverged at step k" while the rest of the batch trains bit for bit as if alone — in the trainer and
//! through the experiments runner, where one diverged model does not stop the sweep.
//! (The GPU backend's divergence flags are tested in tests/gpu_parity.rs.)
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use sgd_lab::backend::any::{BackendChoice, BackendFactory};
use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::Backend;
use sgd_lab::data::{Dataset, DatasetConfig, Features, RealDataset};
use sgd_lab::error::LabError;
use sgd_lab::experiments::runner::{ExperimentRun, RunEvent};
use sgd_lab::experiments::spec::ExperimentConfig;
use sgd_lab::train::{Event, RunData, TrainConfig, Trainer};

fn config(models: &str, batch: usize, sampling: &str, steps: usize) -> String {
    format!(
        r#"{{"model": {{"input": 2, "hidden": [16], "classes": 2, "activation": "tanh", "init": "xavier"}},
            "data": {{"kind": "xor", "n": 64, "seed": 3}},
            "batch_size": {batch}, "steps": {steps}, "sampling": "{sampling}", "chunk_steps": 7, "models": {models}}}"#
    )
}

fn config_error(json: &str) -> (String, String) {
    match TrainConfig::from_json(json) {
        Err(LabError::Config { field, message }) => (field, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Runs to the end; returns the events and every model's final parameters.
fn train(cfg: TrainConfig, data: Option<RunData>) -> (Vec<Event>, Vec<f32>) {
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), cfg.models.len(), cfg.max_batch()).unwrap();
    let mut t = match data {
        Some(d) => Trainer::with_data(cfg, backend, d).unwrap(),
        None => Trainer::new(cfg, backend).unwrap(),
    };
    let mut events = Vec::new();
    while !t.is_done() {
        events.extend(pollster::block_on(t.run_chunk()).unwrap());
    }
    let params = pollster::block_on(t.backend_mut().read_params()).unwrap();
    (events, params)
}

fn diverged(events: &[Event]) -> Vec<(usize, usize)> {
    events.iter().filter_map(|e| if let Event::Diverged { model, step } = e { Some((*model, *step)) } else { None }).collect()
}

#[test]
fn a_learning_rate_of_zero_or_below_is_refused_naming_the_model() {
    for lr in ["0", "-0.0", "-1"] {
        let (field, message) = config_error(&config(&format!(r#"[{{"lr": 0.1}}, {{"lr": {lr}}}]"#), 8, "shuffle", 10));
        assert_eq!(field, "models[1].lr");
        assert!(message.contains("finite number > 0"), "{message}");
    }
    let (field, message) = config_error(&config(r#"[{"lr": 1e39}]"#, 8, "shuffle", 10));
    assert_eq!(field, "models[0].lr", "1e39 does not fit an f32: {message}");
}

#[test]
fn learning_rates_up_to_the_largest_f32_diverge_alone_while_batch_mates_train_bit_identically_to_solo_runs() {
    for huge in ["1e6", "1e20", "3.4e38"] {
        let models = format!(r#"[{{"lr": 0.3, "seed": 1}}, {{"lr": {huge}, "seed": 2}}, {{"lr": 0.1, "momentum": 0.9, "seed": 3}}]"#);
        let (events, params) = train(TrainConfig::from_json(&config(&models, 8, "shuffle", 40)).unwrap(), None);
        let d = diverged(&events);
        assert_eq!(d.len(), 1, "η = {huge}: {d:?}");
        assert_eq!(d[0].0, 1, "η = {huge}: only model 1 diverges");
        assert!(d[0].1 < 40, "η = {huge}: diverged at step {}", d[0].1);
        let p = params.len() / 3;
        assert!(params[p..2 * p].iter().all(|v| v.is_finite()), "η = {huge}: the diverged model keeps its last finite parameters");
        match events.last() {
            Some(Event::Finished { metrics, .. }) => {
                assert!(metrics.train[0].loss.is_finite() && metrics.train[2].loss.is_finite(), "η = {huge}: {:?}", metrics.train);
            }
            other => panic!("the run finishes: {other:?}"),
        }
        for (m, solo) in [(0, r#"[{"lr": 0.3, "seed": 1}]"#), (2, r#"[{"lr": 0.1, "momentum": 0.9, "seed": 3}]"#)] {
            let (_, alone) = train(TrainConfig::from_json(&config(solo, 8, "shuffle", 40)).unwrap(), None);
            assert_eq!(&params[m * p..(m + 1) * p], &alone[..], "η = {huge}: model {m} is bit-identical to its solo run");
        }
    }
}

#[test]
fn a_batch_larger_than_the_training_set_is_refused_when_shuffling_and_allowed_with_replacement() {
    let (field, message) = config_error(&config(r#"[{"lr": 0.1}]"#, 65, "shuffle", 10));
    assert_eq!(field, "batch_size");
    assert!(message.contains("larger than the 64 training examples") && message.contains("with_replacement"), "{message}");
    let (events, params) = train(TrainConfig::from_json(&config(r#"[{"lr": 0.1}]"#, 65, "with_replacement", 10)).unwrap(), None);
    assert!(diverged(&events).is_empty() && params.iter().all(|v| v.is_finite()));
}

#[test]
fn fewer_examples_than_classes_are_refused_naming_the_size_field() {
    let blobs = r#"{"model": {"input": 2, "hidden": [8], "classes": 5, "activation": "relu", "init": "he"},
        "data": {"kind": "blobs", "n": 4, "classes": 5}, "batch_size": 2, "steps": 5, "models": [{"lr": 0.1}]}"#;
    let (field, message) = config_error(blobs);
    assert_eq!(field, "data.n", "{message}");
    let mut d = DatasetConfig::new(RealDataset::FashionMnist);
    d.train_size = Some(9);
    let e = d.validate("dataset").unwrap_err().to_string();
    assert!(e.contains("`dataset.train_size`") && e.contains("10 classes") && e.contains("at least 10"), "{e}");
    d.train_size = Some(10);
    d.validate("dataset").unwrap();
}

#[test]
fn nan_or_infinite_features_are_refused_naming_the_example_and_the_feature() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = vec![0.5f32; 8];
        x[5] = bad;
        let e = Dataset::new("custom", 2, 2, Features::F32(x), vec![0, 1, 0, 1]).unwrap_err().to_string();
        assert!(e.contains("feature 1 of example 2 is not finite"), "{e}");
    }
    let e = Dataset::new("custom", 2, 2, Features::U8 { bytes: vec![1; 8], scale: vec![1.0, f32::NAN], shift: vec![0.0; 2] }, vec![0, 1, 0, 1]).unwrap_err().to_string();
    assert!(e.contains("normalisation of feature 1 is not finite"), "{e}");
}

#[test]
fn data_of_a_single_class_trains_to_a_finite_loss_near_zero_without_diverging() {
    let cfg = TrainConfig::from_json(&config(r#"[{"lr": 0.5, "seed": 1}, {"lr": 0.05, "seed": 2}]"#, 8, "shuffle", 200)).unwrap();
    let x: Vec<f32> = (0..64 * 2).map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5).collect();
    let train = Dataset::new("one class", 2, 2, Features::F32(x), vec![1; 64]).unwrap();
    let data = RunData { train, train_clean: None, train_corrupted: None, validation: None, test: None, provenance: None };
    let (events, params) = train_with(cfg, data);
    assert!(diverged(&events).is_empty());
    assert!(params.iter().all(|v| v.is_finite()));
    match events.last() {
        Some(Event::Finished { metrics, .. }) => {
            for m in &metrics.train {
                assert!(m.loss.is_finite() && m.loss < 0.05 && m.accuracy == 1.0, "{m:?}");
            }
        }
        other => panic!("the run finishes: {other:?}"),
    }
}

fn train_with(cfg: TrainConfig, data: RunData) -> (Vec<Event>, Vec<f32>) {
    train(cfg, Some(data))
}

// ------------------------------------------------------------------------------------------ the runner

const SWEEP: &str = r#"{
    "id": "numerics", "title": "a sweep with one exploding learning rate",
    "model": {"input": 2, "hidden": [12], "classes": 2, "activation": "relu", "init": "he"},
    "data": {"kind": "circles", "n": 64, "seed": 2},
    "budget": {"steps": 30}, "seeds": [4, 5], "chunk_steps": 8,
    "analysis": {"hessian_examples": 32, "lanczos_iterations": 4},
    "experiment": {"kind": "ratio_sweep", "lrs": [0.05, 3e38, 0.1], "batch_sizes": [8]}
}"#;

fn sweep(patch: Option<&str>) -> (ExperimentRun, Vec<RunEvent>) {
    let cfg = ExperimentConfig::from_json_with_patch(SWEEP, patch).unwrap();
    let factory = pollster::block_on(BackendFactory::new(BackendChoice::Cpu)).unwrap();
    let mut run = ExperimentRun::new(cfg, None, factory, Box::new(|t: &TrainConfig| RunData::synthetic(t)), None, HashMap::new()).unwrap();
    let mut events = Vec::new();
    while !run.is_done() {
        events.extend(pollster::block_on(run.step()).unwrap());
    }
    (run, events)
}

#[test]
fn one_diverging_model_does_not_stop_a_sweep_and_the_results_say_which_and_when() {
    let (run, events) = sweep(None);
    let r = run.results();
    assert!(r.complete(), "the sweep runs to the end");
    let reported: Vec<_> = events.iter().filter_map(|e| if let RunEvent::Diverged { model, step, .. } = e { Some((model.clone(), *step)) } else { None }).collect();
    assert_eq!(reported.len(), 2, "η = 3e38 diverges for both seeds: {reported:?}");
    assert!(reported.iter().all(|(label, _)| label.contains("3")), "the event names the model: {reported:?}");
    let bad: Vec<_> = r.models().filter(|m| !m.ok()).collect();
    assert_eq!(bad.len(), 2);
    assert!(bad.iter().all(|m| m.tag.lr == 3e38 && m.diverged_at.is_some_and(|s| s < 30)), "the results name the model and the step");
    // The healthy models equal those of the same sweep without the exploding learning rate, bit for bit.
    let (clean, _) = sweep(Some(r#"{"experiment": {"lrs": [0.05, 0.1]}}"#));
    let key = |m: &sgd_lab::experiments::results::ModelResult| (m.tag.lr.to_bits(), m.tag.seed);
    let healthy: HashMap<_, _> = r.models().filter(|m| m.ok()).map(|m| (key(m), serde_json::to_string(&m.last).unwrap())).collect();
    let alone: HashMap<_, _> = clean.results().models().map(|m| (key(m), serde_json::to_string(&m.last).unwrap())).collect();
    assert_eq!(healthy.len(), 4);
    assert_eq!(healthy, alone);
}
