//! The same config gives the same bits, run to run and across a save and restore of the trainer's state.
//! Why a backend can: no reduction is split or reordered between runs (CPU: see backend/cpu/gemm.rs; GPU: no
//! float atomics, every reduction in a fixed order). What may differ across GPUs: docs/RELIABILITY.md.

use super::trainer::{config, run};
use super::Engine;
use sgd_lab::backend::Backend;
use sgd_lab::train::{CyclicSchedule, Event, ScheduleTarget, TrainConfig, Trainer, TrainerState};

pub fn the_same_config_gives_bit_identical_results<E: Engine>(engine: &E) {
    let cfg = config(r#"[{"lr": 0.05, "seed": 3}, {"lr": 0.2, "momentum": 0.5, "seed": 4}]"#, 120, "with_replacement");
    let (a, mut ta) = run(engine, cfg.clone());
    let (b, mut tb) = run(engine, cfg);
    assert_eq!(a, b);
    let pa = pollster::block_on(ta.backend_mut().read_params()).unwrap();
    let pb = pollster::block_on(tb.backend_mut().read_params()).unwrap();
    assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
}

/// Runs `cfg` straight through, chunk by chunk: each chunk's events, and the final parameters.
fn chunks<E: Engine>(engine: &E, cfg: &TrainConfig) -> (Vec<Vec<Event>>, Vec<f32>) {
    let backend = engine.backend(&cfg.model.layout(), cfg.models.len(), cfg.max_batch());
    let mut t = Trainer::new(cfg.clone(), backend).unwrap();
    let mut out = Vec::new();
    while !t.is_done() {
        out.push(pollster::block_on(t.run_chunk()).unwrap());
    }
    (out, pollster::block_on(t.backend_mut().read_params()).unwrap())
}

/// Momentum, shuffling, a model that diverges, and the given schedule (stages of half an epoch = 8 steps of 16).
pub fn resumable_config(of: ScheduleTarget) -> TrainConfig {
    let mut cfg = config(r#"[{"lr": 0.05, "momentum": 0.9, "seed": 2}, {"lr": 1000.0, "momentum": 0.5, "seed": 3}, {"lr": 0.1, "momentum": 0.9, "seed": 4}]"#, 90, "shuffle");
    cfg.chunk_steps = 7;
    cfg.eval_every = 20;
    cfg.schedule = Some(CyclicSchedule { of, factors: vec![1.0, 2.0, 0.5], stage_epochs: 0.5 });
    cfg.validate().unwrap();
    cfg
}

pub fn a_trainer_restored_from_a_state_at_step_s_ends_bit_identical_to_one_run_straight_through<E: Engine>(engine: &E) {
    for of in [ScheduleTarget::BatchSize, ScheduleTarget::LearningRate] {
        let cfg = resumable_config(of);
        let (straight, final_params) = chunks(engine, &cfg);
        for stop_after in [1, 4, 9] {
            let backend = engine.backend(&cfg.model.layout(), 3, cfg.max_batch());
            let mut first = Trainer::new(cfg.clone(), backend).unwrap();
            for _ in 0..stop_after {
                pollster::block_on(first.run_chunk()).unwrap();
            }
            let bytes = pollster::block_on(first.state()).unwrap().to_bytes("{}").unwrap();
            let saved_step = first.steps_done();
            drop(first);

            let (state, annex) = TrainerState::from_bytes(&bytes).unwrap();
            assert_eq!((state.step, annex.as_str()), (saved_step, "{}"));
            if stop_after == 9 {
                assert!(state.optimizer.diverged_at[1].is_some() && state.optimizer.velocity.iter().any(|&v| v != 0.0), "momentum and a flag to carry");
            }
            let backend = engine.backend(&cfg.model.layout(), 3, cfg.max_batch());
            let mut resumed = Trainer::new(cfg.clone(), backend).unwrap();
            resumed.restore(&state).unwrap();
            let back = pollster::block_on(resumed.backend_mut().read_optimizer_state()).unwrap();
            assert!(back == state.optimizer, "the backend holds the written momentum, flags and step");
            let mut rest = Vec::new();
            while !resumed.is_done() {
                rest.push(pollster::block_on(resumed.run_chunk()).unwrap());
            }
            // Debug text: NaN (a diverged model's loss) is not equal to itself, but prints the same; floats print
            // their shortest round-trip form, so equal text is equal bits.
            assert_eq!(format!("{rest:?}"), format!("{:?}", &straight[stop_after..]), "{of:?}, resumed at step {saved_step}: the same events chunk for chunk");
            let p = pollster::block_on(resumed.backend_mut().read_params()).unwrap();
            let differ = p.iter().zip(&final_params).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differ, 0, "{of:?}, resumed at step {saved_step}: {differ} parameters differ");
        }
        let diverged = straight.iter().flatten().any(|e| matches!(e, Event::Diverged { model: 1, .. }));
        assert!(diverged, "the state carries a diverged model");
    }
}
