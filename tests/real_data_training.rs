//! Training on a small stratified Fashion-MNIST subset with random labels gives the same trajectory on
//! the GPU as on the CPU, and the trainer reports accuracy on the clean and the corrupted parts apart.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::PathBuf;

use common::{assert_close, Tolerance};
use sgd_lab::backend::any::{make_backend, BackendChoice};
use sgd_lab::backend::Backend;
use sgd_lab::train::{Event, TrainConfig, Trainer};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SGD_LAB_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/data"));
    if dir.join("fashion-mnist/train-images-idx3-ubyte.gz").is_file() {
        return Some(dir);
    }
    assert!(std::env::var_os("SGD_LAB_REQUIRE_DATA").is_none(), "Fashion-MNIST is not in {} and SGD_LAB_REQUIRE_DATA is set", dir.display());
    eprintln!("note: skipped: Fashion-MNIST is not in {} (run scripts/fetch-data)", dir.display());
    None
}

const CONFIG: &str = r#"{
    "model": {"input": 784, "hidden": [24], "classes": 10, "activation": "relu", "init": "he"},
    "dataset": {"name": "fashion-mnist", "train_size": 300, "validation_size": 100, "random_label_fraction": 0.2, "seed": 5, "normalise": "per_pixel"},
    "batch_size": 20, "steps": 30, "chunk_steps": 10,
    "models": [{"lr": 0.05, "momentum": 0.9, "seed": 1}, {"lr": 0.02, "seed": 2}]
}"#;

fn run(choice: BackendChoice, dir: &std::path::Path) -> (Vec<f32>, Vec<Event>, Vec<f32>) {
    let cfg = TrainConfig::from_json(CONFIG).unwrap();
    let data = cfg.load_data(dir).unwrap();
    let (backend, why) = pollster::block_on(make_backend(&cfg.model.layout(), 2, 20, choice)).unwrap();
    assert!(why.is_none());
    let mut t = Trainer::with_data(cfg, backend, data).unwrap();
    let mut events = Vec::new();
    let mut losses = Vec::new();
    while !t.is_done() {
        for e in pollster::block_on(t.run_chunk()).unwrap() {
            if let Event::Steps { losses: l, .. } = &e {
                losses.extend(l.iter().flatten().copied());
            }
            events.push(e);
        }
    }
    let params = pollster::block_on(t.backend_mut().read_params()).unwrap();
    (losses, events, params)
}

#[test]
fn gpu_and_cpu_follow_the_same_trajectory_on_a_fashion_mnist_subset_with_random_labels() {
    let Some(dir) = data_dir() else { return };
    let (cpu_losses, cpu_events, cpu_params) = run(BackendChoice::Cpu, &dir);
    let (gpu_losses, _, gpu_params) = run(BackendChoice::Gpu, &dir);
    let as64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    // Both are f32; 30 steps with momentum let rounding differences (different summation orders in the
    // GEMMs) grow a little, so the trajectory gets 10× the single-kernel tolerance.
    let tol = Tolerance::rel_abs(1e-3, 1e-4);
    assert_close(&gpu_losses, &as64(&cpu_losses), tol, "step losses, GPU vs CPU");
    assert_close(&gpu_params, &as64(&cpu_params), tol, "final parameters, GPU vs CPU");

    let Some(Event::Finished { metrics, .. }) = cpu_events.last() else { panic!("no finished event") };
    let clean = metrics.train_clean.as_ref().expect("clean part reported");
    let corrupted = metrics.train_corrupted.as_ref().expect("corrupted part reported");
    for m in 0..2 {
        let whole = metrics.train[m].accuracy;
        let parts = (240.0 * clean[m].accuracy + 60.0 * corrupted[m].accuracy) / 300.0;
        assert!((whole - parts).abs() < 1e-12, "accuracy on the whole = weighted parts ({whole} vs {parts})");
    }
    assert_eq!(metrics.validation.as_ref().map(Vec::len), Some(2));
    assert_eq!(metrics.test.as_ref().map(Vec::len), Some(2));
}
