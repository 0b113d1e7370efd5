//! The GPU backend gives the same bits run to run on the same device: every step's losses, the divergence
//! step, the evaluations and the final parameters, for the whole trainer (sampler, schedule, chunks), on a
//! fresh backend and on a fresh device. Why it can: no kernel accumulates with float atomics, and every
//! reduction (softmax-CE per model, bias gradients, GEMM K-loops) runs in a fixed order.
//! What may differ across GPUs (and so is not asserted): see docs/RELIABILITY.md, "Determinism".
//! Run-to-run and restore-mid-run determinism on every backend: the suite in tests/suite/determinism.rs
//! (tests/backend_gpu.rs, tests/backend_cpu.rs); the CPU's thread counts and processes: tests/trainer_cpu.rs
//! and tests/interruptions_cli.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use sgd_lab::backend::gpu::{GpuBackend, GpuContext};
use sgd_lab::backend::Backend;
use sgd_lab::train::{Event, TrainConfig, Trainer};

/// Three models (one with an exploding η) on widths that cross the 64-wide GEMM tile, with a cyclic
/// batch size, momentum and weight decay: every kernel and every per-model path is exercised.
const CONFIG: &str = r#"{
    "model": {"input": 2, "hidden": [70, 33], "classes": 3, "activation": "tanh", "init": "xavier"},
    "data": {"kind": "blobs", "n": 300, "classes": 3, "noise": 0.4, "seed": 5},
    "batch_size": 40, "steps": 60, "chunk_steps": 16, "eval_every": 20, "sampling": "with_replacement",
    "models": [{"lr": 0.1, "momentum": 0.9, "weight_decay": 0.001, "seed": 1}, {"lr": 1e5, "seed": 2}, {"lr": 0.3, "seed": 3}],
    "schedule": {"of": "batch_size", "factors": [1, 2], "stage_epochs": 1}
}"#;

/// Every event as text (f64s print as their shortest round-trip form, so equal text is equal bits) and the
/// final parameters as bits.
fn train(ctx: &GpuContext) -> (String, Vec<u32>) {
    let cfg = TrainConfig::from_json(CONFIG).unwrap();
    let backend = GpuBackend::new(ctx, &cfg.model.layout(), cfg.models.len(), cfg.max_batch()).unwrap();
    let mut t = Trainer::new(cfg, backend).unwrap();
    let mut events: Vec<Event> = Vec::new();
    while !t.is_done() {
        events.extend(pollster::block_on(t.run_chunk()).unwrap());
    }
    let params = pollster::block_on(t.backend_mut().read_params()).unwrap();
    (format!("{events:?}"), params.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn the_same_config_gives_the_same_bits_on_the_gpu_run_to_run_and_on_a_fresh_device() {
    let ctx = pollster::block_on(common::ctx());
    let (events, params) = train(&ctx);
    assert!(events.contains("Diverged { model: 1"), "the exploding model is flagged: {events}");
    assert!(events.contains("Finished"));
    let again = train(&ctx);
    assert!(again.0 == events, "a second run on the same device reports the same events");
    assert!(again.1 == params, "and ends with the same parameter bits");
    drop(ctx);
    let fresh = pollster::block_on(common::ctx());
    let third = train(&fresh);
    assert!(third.0 == events && third.1 == params, "a fresh device gives the same bits as well");
}

