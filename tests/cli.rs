//! The native CLI trains a config end to end and writes what it promises; bad input fails clearly.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

use sgd_lab::train::trace::{batches_from_safetensors, params_from_safetensors};

fn sgd_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sgd-lab"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn train_on_the_cpu_writes_metrics_config_and_a_replayable_trace() {
    let dir = temp_dir("train");
    let cfg = dir.join("run.json");
    std::fs::write(
        &cfg,
        r#"{"model": {"input": 2, "hidden": [8], "classes": 2, "activation": "relu", "init": "he"},
            "data": {"kind": "two_spirals", "n": 64, "seed": 1}, "batch_size": 8, "steps": 30, "chunk_steps": 10,
            "models": [{"lr": 0.1, "seed": 1}, {"lr": 0.05, "seed": 2}]}"#,
    )
    .unwrap();
    let out = dir.join("out");
    let status = sgd_lab().args(["train", "--quiet", "--backend", "cpu", "--config"]).arg(&cfg).arg("--out").arg(&out).status().unwrap();
    assert!(status.success());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events[0]["type"], "started");
    assert_eq!(events.iter().filter(|e| e["type"] == "steps").count(), 3);
    assert_eq!(events.last().unwrap()["type"], "finished");
    let (layout, initial) = params_from_safetensors(&std::fs::read(out.join("params_initial.safetensors")).unwrap()).unwrap();
    let (_, fin) = params_from_safetensors(&std::fs::read(out.join("params_final.safetensors")).unwrap()).unwrap();
    assert_eq!(initial.len(), 2 * layout.params_per_model);
    assert_ne!(initial, fin);
    let (idx, shape) = batches_from_safetensors(&std::fs::read(out.join("batches.safetensors")).unwrap()).unwrap();
    assert_eq!(shape, [30, 2, 8]);
    assert!(idx.iter().all(|&i| i < 64));
    assert!(out.join("config.json").exists());
}

#[test]
fn a_bad_config_field_is_named_and_the_exit_code_is_nonzero() {
    let dir = temp_dir("bad");
    let cfg = dir.join("run.json");
    std::fs::write(
        &cfg,
        r#"{"model": {"input": 2, "hidden": [8], "classes": 2, "activation": "relu", "init": "he"},
            "data": {"kind": "two_spirals", "n": 64}, "batch_size": 8, "steps": 30,
            "models": [{"lr": -0.1}]}"#,
    )
    .unwrap();
    let out = sgd_lab().args(["train", "--backend", "cpu", "--config"]).arg(&cfg).arg("--out").arg(dir.join("o")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models[0].lr"), "{err}");
}

#[test]
fn hessian_prints_lambda_max_and_trace_of_each_trained_model_as_json() {
    let dir = temp_dir("hessian");
    let cfg = dir.join("run.json");
    std::fs::write(
        &cfg,
        r#"{"model": {"input": 2, "hidden": [6], "classes": 2, "activation": "tanh", "init": "he"},
            "data": {"kind": "two_spirals", "n": 40, "seed": 1}, "batch_size": 8, "steps": 20, "chunk_steps": 10,
            "models": [{"lr": 0.1, "seed": 1}, {"lr": 0.05, "seed": 2}]}"#,
    )
    .unwrap();
    let out = dir.join("out");
    assert!(sgd_lab().args(["train", "--quiet", "--backend", "cpu", "--config"]).arg(&cfg).arg("--out").arg(&out).status().unwrap().success());
    let run = sgd_lab()
        .args(["hessian", "--backend", "cpu", "--examples", "30", "--params"])
        .arg(out.join("params_final.safetensors"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON on stdout");
    assert_eq!(v["examples"], 30);
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        let (lmax, trace, se) = (m["lambda_max"].as_f64().unwrap(), m["trace"].as_f64().unwrap(), m["trace_std_error"].as_f64().unwrap());
        assert!(lmax.is_finite() && trace.is_finite() && se >= 0.0, "{m}");
        // 2→6→2 tanh has 32 parameters: λ_max ≤ trace + 32·(most negative eigenvalue) is not guaranteed,
        // but λ_max is at least the mean eigenvalue trace/32.
        assert!(lmax >= trace / 32.0 - 3.0 * se / 32.0, "{m}");
        let e = &m["epsilon_sharpness"];
        assert!(e["sharpness"].as_f64().unwrap() >= 0.0 && e["max_loss"].as_f64().unwrap() >= e["loss"].as_f64().unwrap(), "{m}");
    }
    assert_eq!(v["epsilon_sharpness"]["epsilon"], 1e-3);
}
