//! The trainer on the CPU backend: its trace replays the run exactly with the reference routines, schedules
//! replay, the same bits on any thread count, a state's byte round trip. What holds on every backend (it
//! learns, it is deterministic, restores continue to the same bits, a diverging model is frozen without
//! disturbing its batch-mates) is in the backend-generic suite, tests/suite/ (tests/backend_cpu.rs).
#![cfg(not(target_arch = "wasm32"))]

mod suite;
use suite::determinism::resumable_config;
use suite::trainer::config;

use sgd_lab::backend::cpu::{gather, loss_and_grad, sgd_update, CpuBackend};
use sgd_lab::backend::Backend;
use sgd_lab::train::{CyclicSchedule, Event, ScheduleTarget, TrainConfig, Trainer, TrainerState};

fn run(cfg: TrainConfig) -> (Vec<Event>, Trainer<CpuBackend<f32>>) {
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), cfg.models.len(), cfg.max_batch()).unwrap();
    let mut t = Trainer::new(cfg, backend).unwrap();
    let mut events = Vec::new();
    while !t.is_done() {
        events.extend(pollster::block_on(t.run_chunk()).unwrap());
    }
    (events, t)
}

#[test]
fn the_trace_replays_the_run_exactly_with_the_reference_routines() {
    let cfg = config(r#"[{"lr": 0.1, "momentum": 0.9, "weight_decay": 0.001, "seed": 9}]"#, 70, "shuffle");
    let layout = cfg.model.layout();
    let (_, mut t) = run(cfg.clone());
    let trace = t.trace().clone();
    assert_eq!(trace.batches.len(), 70 * 16);
    let mut params = trace.initial_params.clone();
    let mut velocity = vec![0f32; params.len()];
    let (mut x, mut y) = (vec![0f32; 16 * 2], vec![0u32; 16]);
    for step in trace.batches.chunks(16) {
        gather(t.data(), step, &mut x, &mut y);
        let (_, g) = loss_and_grad(&layout, &params, &x, &y);
        sgd_update(&mut params, &g, &mut velocity, 0.1, 0.9, 0.001);
    }
    let trained = pollster::block_on(t.backend_mut().read_params()).unwrap();
    assert_eq!(trained, params);
}

/// Replays a one-model trace with the reference routines, taking η and B of each step from `schedule`.
fn replay(t: &Trainer<CpuBackend<f32>>, momentum: f32, lr_of_step: impl Fn(usize) -> f32) -> Vec<f32> {
    let layout = t.config().model.layout();
    let trace = t.trace();
    let mut params = trace.initial_params.clone();
    let mut velocity = vec![0f32; params.len()];
    let mut at = 0;
    for (step, &b) in trace.batch_sizes.iter().enumerate() {
        let b = b as usize;
        let (mut x, mut y) = (vec![0f32; b * 2], vec![0u32; b]);
        gather(t.data(), &trace.batches[at..at + b], &mut x, &mut y);
        at += b;
        let (_, g) = loss_and_grad(&layout, &params, &x, &y);
        sgd_update(&mut params, &g, &mut velocity, lr_of_step(step), momentum, 0.0);
    }
    assert_eq!(at, trace.batches.len());
    params
}

#[test]
fn a_cyclic_learning_rate_changes_eta_at_each_stage_boundary_and_replays_exactly() {
    let mut cfg = config(r#"[{"lr": 0.05, "momentum": 0.9, "seed": 2}]"#, 100, "shuffle");
    // 256 examples, B = 16: a stage of half an epoch is 8 steps; factors cycle 1, 3, 2.
    cfg.schedule = Some(CyclicSchedule { of: ScheduleTarget::LearningRate, factors: vec![1.0, 3.0, 2.0], stage_epochs: 0.5 });
    cfg.validate().unwrap();
    let (_, mut t) = run(cfg);
    assert!(t.trace().batch_sizes.iter().all(|&b| b == 16));
    let expected = replay(&t, 0.9, |step| 0.05 * [1.0, 3.0, 2.0][(step / 8) % 3]);
    let trained = pollster::block_on(t.backend_mut().read_params()).unwrap();
    assert_eq!(trained, expected);
}

#[test]
fn a_cyclic_batch_size_follows_its_stages_in_examples_seen_and_replays_exactly() {
    let mut cfg = config(r#"[{"lr": 0.1, "seed": 5}]"#, 1, "shuffle");
    cfg.batch_size = 32;
    // B = 32 / f: 32, 16, 8; one stage is one epoch of 256 examples: 8, 16 and 32 steps.
    cfg.schedule = Some(CyclicSchedule { of: ScheduleTarget::BatchSize, factors: vec![1.0, 2.0, 4.0], stage_epochs: 1.0 });
    cfg.steps = cfg.steps_for_epochs(4.0);
    assert_eq!(cfg.steps, 8 + 16 + 32 + 8);
    cfg.validate().unwrap();
    let (_, mut t) = run(cfg);
    let sizes = &t.trace().batch_sizes;
    assert_eq!(sizes.len(), 64);
    assert!(sizes[..8].iter().all(|&b| b == 32) && sizes[8..24].iter().all(|&b| b == 16));
    assert!(sizes[24..56].iter().all(|&b| b == 8) && sizes[56..].iter().all(|&b| b == 32));
    let expected = replay(&t, 0.0, |_| 0.1);
    let trained = pollster::block_on(t.backend_mut().read_params()).unwrap();
    assert_eq!(trained, expected);
}

#[test]
fn a_sharpness_schedule_records_lambda_max_every_m_steps_matching_a_direct_lanczos_call() {
    use sgd_lab::analysis::eigen::{lanczos, LanczosOptions};
    use sgd_lab::analysis::{BackendOperator, Subset};
    let mut v: serde_json::Value = serde_json::to_value(config(r#"[{"lr": 0.1, "seed": 1}, {"lr": 0.05, "momentum": 0.5, "seed": 2}]"#, 90, "shuffle")).unwrap();
    v["sharpness"] = serde_json::json!({"every": 30, "examples": 100, "iterations": 10, "trace": true});
    let cfg = TrainConfig::from_json(&v.to_string()).unwrap();
    let backend = CpuBackend::<f64>::new(&cfg.model.layout(), cfg.models.len(), cfg.batch_size).unwrap();
    let mut t = Trainer::new(cfg, backend).unwrap();
    let mut events = Vec::new();
    while !t.is_done() {
        events.extend(pollster::block_on(t.run_chunk_with_curvature()).unwrap());
    }
    let sharp: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Sharpness { .. })).collect();
    assert_eq!(sharp.len(), 3, "{events:?}");
    assert!(matches!(events[events.len() - 2], Event::Sharpness { step: 90, .. }), "Sharpness comes before Finished");
    let Event::Sharpness { step, examples, lambda_max, trace, trace_std_error, stability_threshold, probe_seeds, .. } = sharp[2] else { unreachable!() };
    assert_eq!((*step, *examples), (90, 100));
    assert_eq!(trace.as_ref().unwrap().len(), 2);
    assert!(trace_std_error.as_ref().unwrap().iter().all(|s| *s >= 0.0));
    assert!((stability_threshold[0] - 20.0).abs() < 1e-5 && (stability_threshold[1] - 60.0).abs() < 1e-4, "{stability_threshold:?}");
    for (i, e) in sharp.iter().enumerate() {
        let Event::Sharpness { step, .. } = e else { unreachable!() };
        assert_eq!(*step, 30 * (i + 1));
    }
    // The same Lanczos (each model's probe seed, as the event records it) on the final parameters, called directly.
    let data = t.data().clone();
    let b = t.backend_mut();
    let h = b.upload_dataset(&data).unwrap();
    let mut op = BackendOperator::new(b, Subset::first(h, data.n, 100));
    let direct = pollster::block_on(lanczos(&mut op, &LanczosOptions { top_k: 1, iterations: 10, model_seeds: probe_seeds.clone(), ..Default::default() })).unwrap();
    for m in 0..2 {
        assert!(lambda_max[m] > 0.0);
        assert!((lambda_max[m] - direct[m].eigenvalues[0]).abs() <= 1e-12 * lambda_max[m], "{} vs {}", lambda_max[m], direct[m].eigenvalues[0]);
    }
}

#[test]
fn without_a_schedule_run_chunk_with_curvature_is_run_chunk() {
    let cfg = config(r#"[{"lr": 0.1, "seed": 1}]"#, 50, "shuffle");
    let mk = || CpuBackend::<f32>::new(&cfg.model.layout(), 1, cfg.batch_size).unwrap();
    let (mut a, mut b) = (Trainer::new(cfg.clone(), mk()).unwrap(), Trainer::new(cfg.clone(), mk()).unwrap());
    while !a.is_done() {
        assert_eq!(pollster::block_on(a.run_chunk()).unwrap(), pollster::block_on(b.run_chunk_with_curvature()).unwrap());
    }
}

/// The CPU backend runs models in parallel (K ≥ threads) or splits its GEMMs into panels (K < threads);
/// either way every thread count must give the same bits: training (with a model that diverges), losses,
/// evaluation and gradients. The model is large enough (784-256-40-10, B = 64) that the GEMMs do split.
#[test]
fn the_cpu_backend_gives_the_same_bits_on_1_2_3_and_4_threads() {
    use rand::{Rng, SeedableRng};
    use sgd_lab::backend::Hyper;
    use sgd_lab::data::{Dataset, Features};
    use sgd_lab::model::{Activation, Init, MlpSpec, ModelBatch};
    let spec = MlpSpec { input: 784, hidden: vec![256, 40], classes: 10, activation: Activation::Relu, init: Init::He };
    let (n, batch, steps) = (300, 64, 6);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let bytes: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::new("random", 784, 10, Features::u8_uniform(bytes, 784, 1.0 / 255.0, 0.0), labels).unwrap();
    for k in [1usize, 3] {
        let indices: Vec<u32> = (0..steps * k * batch).map(|_| rng.random_range(0..n as u32)).collect();
        let grad_idx: Vec<u32> = (0..k * batch).map(|_| rng.random_range(0..n as u32)).collect();
        let seeds: Vec<u64> = (0..k as u64).collect();
        let init = ModelBatch::init(&spec, &seeds).params;
        // Model 1 of 3 gets a learning rate that makes it diverge within the run.
        let hyper: Vec<Hyper> = (0..k).map(|m| Hyper { lr: if m == 1 { 50.0 } else { 0.05 }, momentum: 0.9, weight_decay: 1e-4 }).collect();
        let outcome = |threads: usize| {
            let mut b = CpuBackend::<f32>::with_threads(&spec.layout(), k, batch, threads).unwrap();
            assert_eq!(b.threads(), threads);
            b.write_params(&init).unwrap();
            b.write_hyper(&hyper).unwrap();
            let h = b.upload_dataset(&data).unwrap();
            let mut losses = Vec::new();
            for chunk in indices.chunks(2 * k * batch) {
                b.train_steps(h, chunk, batch).unwrap();
                losses.extend(pollster::block_on(b.read_progress()).unwrap().losses);
            }
            let progress = pollster::block_on(b.read_progress()).unwrap();
            let params = pollster::block_on(b.read_params()).unwrap();
            let eval = pollster::block_on(b.evaluate(h, 10, 150)).unwrap();
            let grads = pollster::block_on(b.gradients(h, &grad_idx, batch)).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let eval_bits: Vec<(u64, u64)> = eval.iter().map(|e| (e.loss.to_bits(), e.accuracy.to_bits())).collect();
            (bits(&losses), progress.diverged_at, bits(&params), eval_bits, bits(&grads.losses), bits(&grads.grads))
        };
        let one = outcome(1);
        if k == 3 {
            assert!(one.1[1].is_some() && one.1[0].is_none() && one.1[2].is_none(), "model 1 should diverge alone: {:?}", one.1);
        }
        for threads in 2..=4 {
            assert!(outcome(threads) == one, "K = {k}: {threads} threads differ from 1");
        }
    }
}

#[test]
fn a_trainer_that_does_not_record_batches_keeps_no_indices_and_trains_the_same_bits() {
    let cfg = config(r#"[{"lr": 0.1, "momentum": 0.9, "seed": 1}, {"lr": 0.05, "seed": 2}]"#, 300, "shuffle");
    let (events, mut recorded) = run(cfg.clone());
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), cfg.models.len(), cfg.max_batch()).unwrap();
    let mut t = Trainer::new(cfg, backend).unwrap();
    t.set_record_batches(false);
    let mut quiet = Vec::new();
    while !t.is_done() {
        quiet.extend(pollster::block_on(t.run_chunk()).unwrap());
    }
    assert!(t.trace().batches.is_empty() && t.trace().batch_sizes.is_empty(), "no per-step memory is kept");
    assert_eq!(recorded.trace().batches.len(), 300 * 2 * 16);
    assert_eq!(t.examples_seen(), 300 * 16);
    assert_eq!(format!("{quiet:?}"), format!("{events:?}"));
    let a = pollster::block_on(recorded.backend_mut().read_params()).unwrap();
    let b = pollster::block_on(t.backend_mut().read_params()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_trainer_state_survives_its_byte_round_trip_and_a_damaged_or_foreign_one_is_refused() {
    let cfg = resumable_config(ScheduleTarget::BatchSize);
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), 3, cfg.max_batch()).unwrap();
    let mut t = Trainer::new(cfg.clone(), backend).unwrap();
    for _ in 0..5 {
        pollster::block_on(t.run_chunk()).unwrap();
    }
    let state = pollster::block_on(t.state()).unwrap();
    assert!(state.optimizer.diverged_at[1].is_some() && state.optimizer.velocity.iter().any(|&v| v != 0.0));
    let bytes = state.to_bytes(r#"{"job": 3}"#).unwrap();
    let (back, annex) = TrainerState::from_bytes(&bytes).unwrap();
    assert_eq!(back, state);
    assert_eq!(annex, r#"{"job": 3}"#);

    let err = |b: &[u8]| TrainerState::from_bytes(b).unwrap_err().to_string();
    assert!(err(&bytes[..bytes.len() - 9]).contains("truncated"), "{}", err(&bytes[..bytes.len() - 9]));
    let mut flipped = bytes.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x10;
    assert!(err(&flipped).contains("checksum"), "{}", err(&flipped));
    assert!(err(b"not a checkpoint").contains("not a usable checkpoint"));

    let mut other = cfg.clone();
    other.models[0].lr = 0.06;
    let backend = CpuBackend::<f32>::new(&other.model.layout(), 3, other.max_batch()).unwrap();
    let mut foreign = Trainer::new(other, backend).unwrap();
    let e = foreign.restore(&state).unwrap_err().to_string();
    assert!(e.contains("checkpoint") && e.contains("different training config"), "{e}");
    let mut bad = state.clone();
    bad.stage += 1;
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), 3, cfg.max_batch()).unwrap();
    let e = Trainer::new(cfg, backend).unwrap().restore(&bad).unwrap_err().to_string();
    assert!(e.contains("counters disagree"), "{e}");
}
