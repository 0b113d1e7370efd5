//! The trainer learns, and a diverging model is frozen without disturbing its batch-mates.

use super::Engine;
use sgd_lab::backend::Backend;
use sgd_lab::train::{Event, TrainConfig, Trainer};

/// A 2-32-32-2 ReLU net on 256 points of two spirals, batches of 16, with the given models and sampling.
pub fn config(models: &str, steps: usize, sampling: &str) -> TrainConfig {
    TrainConfig::from_json(&format!(
        r#"{{"model": {{"input": 2, "hidden": [32, 32], "classes": 2, "activation": "relu", "init": "he"}},
            "data": {{"kind": "two_spirals", "n": 256, "noise": 0.05, "seed": 4}},
            "batch_size": 16, "steps": {steps}, "sampling": "{sampling}", "chunk_steps": 40, "eval_every": 100,
            "models": {models}}}"#
    ))
    .unwrap()
}

/// Trains `cfg` to the end on a fresh backend of `engine`: every event, and the trainer.
pub fn run<E: Engine>(engine: &E, cfg: TrainConfig) -> (Vec<Event>, Trainer<E::B>) {
    let backend = engine.backend(&cfg.model.layout(), cfg.models.len(), cfg.max_batch());
    let mut t = Trainer::new(cfg, backend).unwrap();
    let mut events = Vec::new();
    while !t.is_done() {
        events.extend(pollster::block_on(t.run_chunk()).unwrap());
    }
    (events, t)
}

/// The final evaluation's training losses.
pub fn final_train(events: &[Event]) -> Vec<f64> {
    match events.last() {
        Some(Event::Finished { metrics, .. }) => metrics.train.iter().map(|m| m.loss).collect(),
        other => panic!("last event is not Finished: {other:?}"),
    }
}

pub fn training_on_two_spirals_lowers_the_loss_well_below_chance<E: Engine>(engine: &E) {
    let (events, _) = run(engine, config(r#"[{"lr": 0.1, "momentum": 0.9, "seed": 1}]"#, 600, "shuffle"));
    let first = match &events[1] {
        Event::Steps { losses, .. } => losses[0][0],
        e => panic!("expected steps, got {e:?}"),
    };
    assert!((first - 2f32.ln()).abs() < 0.3, "initial loss {first} should be near ln 2");
    let last = final_train(&events)[0];
    assert!(last < 0.5 * 2f64.ln(), "final training loss {last} should be far below ln 2 = 0.693");
    let evals = events.iter().filter(|e| matches!(e, Event::Eval { .. })).count();
    assert_eq!(evals, 5, "evaluations at steps 100..500, then the final one");
}

pub fn a_model_with_a_huge_learning_rate_is_flagged_and_its_batch_mates_train_as_if_alone<E: Engine>(engine: &E) {
    let trio = config(r#"[{"lr": 0.1, "seed": 1}, {"lr": 1000.0, "seed": 2}, {"lr": 0.05, "seed": 3}]"#, 80, "shuffle");
    let (events, mut t3) = run(engine, trio);
    let diverged: Vec<_> = events.iter().filter_map(|e| if let Event::Diverged { model, step } = e { Some((*model, *step)) } else { None }).collect();
    assert_eq!(diverged.len(), 1, "{diverged:?}");
    assert_eq!(diverged[0].0, 1);
    assert!(diverged[0].1 < 80);
    let p3 = pollster::block_on(t3.backend_mut().read_params()).unwrap();
    assert!(p3.iter().all(|v| v.is_finite()), "the frozen model keeps its last finite parameters");
    let p = t3.backend_mut().layout().params_per_model;
    for (m, lr, seed) in [(0, 0.1, 1), (2, 0.05, 3)] {
        let (_, mut alone) = run(engine, config(&format!(r#"[{{"lr": {lr}, "seed": {seed}}}]"#), 80, "shuffle"));
        let pa = pollster::block_on(alone.backend_mut().read_params()).unwrap();
        assert_eq!(&p3[m * p..(m + 1) * p], &pa[..], "model {m} is untouched by its diverging neighbour");
    }
}
