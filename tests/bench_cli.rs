//! `sgd-lab-bench` at tiny sizes: every new column is present and a finite positive number (or absent where
//! the backend has no such thing), the GPU counts are the backend's exact ones, and bad flags are named.
//! No timing is asserted.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sgd-lab-bench")).args(args).env("WGPU_BACKEND", "vulkan").output().expect("runs")
}

const TINY: &[&str] = &["--hidden", "8", "--batch", "4", "--models", "2", "--steps", "1", "--reps", "1", "--eval-examples", "8",
    "--lambda-examples", "4", "--slice-grid", "2", "--slice-examples", "4", "--format", "json"];

fn rows(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

fn positive(r: &serde_json::Value, key: &str) -> f64 {
    let v = r[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {r}"));
    assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    v
}

#[test]
fn the_cpu_rows_have_lambda_max_and_slice_rates_and_no_gpu_counts() {
    let r = &rows(&bench(&[&["--backends", "cpu"], TINY].concat()))[0];
    for k in ["steps_per_s", "samples_models_per_s", "eval_examples_models_per_s", "lambda_max_seconds", "slice_points_per_s"] {
        positive(r, k);
    }
    assert_eq!(r["lambda_max_values"].as_array().unwrap().len(), 2, "one λ_max per model");
    assert_eq!(r["slice_points"], 4);
    for k in ["dispatches_per_step", "readbacks_per_step", "gpu_buffer_bytes", "lambda_max_readbacks"] {
        assert!(r[k].is_null(), "{k} should be absent on the CPU: {r}");
    }
}

#[test]
fn the_gpu_rows_count_dispatches_readbacks_and_buffer_bytes() {
    let r = &rows(&bench(&[&["--backends", "gpu"], TINY].concat()))[0];
    positive(r, "lambda_max_seconds");
    positive(r, "slice_points_per_s");
    // 2 layers: 3L + 3 = 9 dispatches per step; one readback per chunk of 1 step.
    assert_eq!(r["dispatches_per_step"].as_f64(), Some(9.0));
    assert_eq!(r["readbacks_per_step"].as_f64(), Some(1.0));
    // Lanczos: one HVP (one readback) per iteration, capped by the 20 default iterations.
    assert_eq!(r["lambda_max_readbacks"].as_u64(), Some(20));
    // The slice: 4 points in tiles of K = 2 → 2 tiles, one readback each.
    assert_eq!(r["slice_readbacks"].as_u64(), Some(2));
    assert!(positive(r, "gpu_buffer_bytes") >= (3 * 2 * (784 * 8 + 8 + 8 * 10 + 10) * 4) as f64);
}

#[test]
fn bad_flags_are_named() {
    for (args, want) in [
        (vec!["--arch", "vgg"], "--arch"),
        (vec!["--lambda-reps", "0"], "--lambda-reps"),
        (vec!["--slice-grid", "1"], "--slice-grid"),
        (vec!["--gemm-sizes", "0"], "--gemm-sizes"),
    ] {
        let out = bench(&[&["--backends", "cpu"], args.as_slice()].concat());
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
