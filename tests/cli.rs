//! The native CLI trains a config end to end and writes what it promises; bad input fails clearly.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

use sgd_lab::train::safetensors::{batches_from_safetensors, params_from_safetensors};

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
    let (_dir, cfg, params) = trained_pair("hessian");
    let run = sgd_lab().args(["hessian", "--backend", "cpu", "--examples", "30", "--params"]).arg(&params).arg("--config").arg(&cfg).output().unwrap();
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

/// A config of two tiny tanh nets (2→6→2, 32 parameters) on synthetic spirals, trained by `sgd-lab train`:
/// its directory, the config file and `params_final.safetensors`.
fn trained_pair(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(name);
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
    (dir, cfg, out.join("params_final.safetensors"))
}

/// Runs `sgd-lab hessian --backend cpu --examples 30` with `extra` flags; the parsed JSON on success.
fn hessian_json(cfg: &std::path::Path, params: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let run = sgd_lab().args(["hessian", "--backend", "cpu", "--examples", "30", "--params"]).arg(params).arg("--config").arg(cfg).args(extra).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_slice(&run.stdout).expect("JSON on stdout")
}

/// The training set of a config (synthetic: no files are read).
fn data_of(cfg: &std::path::Path) -> sgd_lab::data::Dataset {
    let config = sgd_lab::train::TrainConfig::from_json(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    config.load_data(std::path::Path::new("www/data")).unwrap().train
}

/// The trained models' parameters, the training set of the config and an f64 CPU backend holding both.
fn f64_backend(cfg: &std::path::Path, params: &std::path::Path) -> (sgd_lab::backend::cpu::CpuBackend<f64>, sgd_lab::backend::DataHandle, Vec<f32>, sgd_lab::model::Layout) {
    use sgd_lab::backend::Backend;
    let data = data_of(cfg);
    let (layout, theta) = params_from_safetensors(&std::fs::read(params).unwrap()).unwrap();
    let k = theta.len() / layout.params_per_model;
    let mut b = sgd_lab::backend::cpu::CpuBackend::<f64>::new(&layout, k, 16).unwrap();
    let h = b.upload_dataset(&data).unwrap();
    b.write_params(&theta).unwrap();
    (b, h, theta, layout)
}

fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn hessian_prints_its_probe_seeds_and_they_rebuild_its_lanczos_lambda_max_and_hutchinson_trace() {
    use rand::{Rng, SeedableRng};
    use sgd_lab::analysis::{mix_seed, probe_rng, HUTCHINSON_STREAM, LANCZOS_STREAM};
    use sgd_lab::backend::Backend;
    let (_dir, cfg, params) = trained_pair("hessian-seed");
    // 4 Lanczos steps on 32 parameters: λ_max still depends on the start vector.
    let flags = |seed: &'static str| ["--seed", seed, "--lanczos-iterations", "4", "--trace-samples", "12", "--ascent-steps", "0"];
    let v = hessian_json(&cfg, &params, &flags("7"));
    assert_eq!(v["probe_seed"], 7);
    assert!(v["probe_recipe"].as_str().unwrap().contains("seed_from_u64"), "{v}");
    let (backend, h, _, layout) = f64_backend(&cfg, &params);
    let p = layout.params_per_model;
    for (m, model) in v["models"].as_array().unwrap().iter().enumerate() {
        let probes = &model["probes"];
        assert_eq!((probes["lanczos"]["seed"].as_u64(), probes["lanczos"]["stream"].as_u64()), (Some(7), Some(m as u64)), "{probes}");
        let seed = probes["hutchinson"]["seed"].as_u64().unwrap();
        assert_eq!((seed, probes["hutchinson"]["stream"].as_u64()), (mix_seed(&[7, m as u64]), Some(HUTCHINSON_STREAM)), "{probes}");
        // Rebuild model m's Rademacher vectors from the printed seed and average zᵀHz with an f64 HVP.
        let mut rng = probe_rng(seed, HUTCHINSON_STREAM);
        let samples = model["trace_samples"].as_u64().unwrap() as usize;
        let mut sum = 0.0;
        for _ in 0..samples {
            let mut z = vec![0.0; 2 * p];
            z[m * p..(m + 1) * p].iter_mut().for_each(|x| *x = if rng.random::<bool>() { 1.0 } else { -1.0 });
            let hz = sgd_lab::backend::cpu::hvp::cpu_hvp_exact(&backend, h, 0, 30, &z).unwrap();
            sum += z[m * p..(m + 1) * p].iter().zip(&hz[m * p..(m + 1) * p]).map(|(a, b)| a * b).sum::<f64>();
        }
        let (trace, rebuilt) = (model["trace"].as_f64().unwrap(), sum / samples as f64);
        // f32 HVPs in the CLI, f64 here: measured 6e-8 relative.
        assert!((trace - rebuilt).abs() <= 1e-5 * rebuilt.abs(), "model {m}: printed trace {trace}, rebuilt from its seed {rebuilt}");
    }
    // Lanczos from the printed seed and streams (LanczosOptions::seed; model m on stream m of it, the
    // documented draws) on the CLI's f32 CPU backend gives the printed eigenvalues.
    assert_eq!(LANCZOS_STREAM, 0, "docs/hessian.md states the streams");
    let mut start = probe_rng(7, 1);
    let first: f64 = start.random_range(-1.0..1.0);
    let mut again = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    again.set_stream(1);
    assert_eq!(first, again.random_range(-1.0..1.0), "probe_rng(seed, stream) is ChaCha8 seed_from_u64 + set_stream");
    let mut f32_backend = sgd_lab::backend::cpu::CpuBackend::<f32>::new(&layout, 2, 30).unwrap();
    let h32 = f32_backend.upload_dataset(&data_of(&cfg)).unwrap();
    f32_backend.write_params(&params_from_safetensors(&std::fs::read(&params).unwrap()).unwrap().1).unwrap();
    let mut op = sgd_lab::analysis::BackendOperator::new(&mut f32_backend, sgd_lab::analysis::Subset::first(h32, 40, 30));
    let opts = sgd_lab::analysis::eigen::LanczosOptions { top_k: 1, iterations: 4, seed: 7, ..Default::default() };
    let eig = pollster::block_on(sgd_lab::analysis::eigen::lanczos(&mut op, &opts)).unwrap();
    // The seed decides the probes: the same seed prints the same numbers, another seed other ones.
    let again = hessian_json(&cfg, &params, &flags("7"));
    let other = hessian_json(&cfg, &params, &flags("8"));
    for m in 0..2 {
        let printed = v["models"][m]["lambda_max"].as_f64().unwrap();
        assert!((eig[m].eigenvalues[0] - printed).abs() <= 1e-9 * printed.abs(), "model {m}: Lanczos from the printed seed gives {}, printed {printed}", eig[m].eigenvalues[0]);
        assert_eq!(v["models"][m]["trace"], again["models"][m]["trace"]);
        assert_eq!(v["models"][m]["eigenvalues"], again["models"][m]["eigenvalues"]);
        assert_ne!(v["models"][m]["trace"], other["models"][m]["trace"]);
        assert_ne!(v["models"][m]["lambda_max"], other["models"][m]["lambda_max"]);
    }
}

#[test]
fn hessian_writes_the_top_eigenvectors_orthonormal_each_an_eigenvector_of_the_hessian_with_its_printed_eigenvalue() {
    let (dir, cfg, params) = trained_pair("hessian-eigenvectors");
    let file = dir.join("eigenvectors.safetensors");
    let v = hessian_json(&cfg, &params, &["--seed", "3", "--top-k", "3", "--trace-samples", "0", "--ascent-steps", "0", "--eigenvectors", file.to_str().unwrap()]);
    let back = sgd_lab::train::safetensors::vectors_from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    let (backend, h, _, layout) = f64_backend(&cfg, &params);
    let p = layout.params_per_model;
    assert_eq!((&back.layout, &back.lead[..]), (&layout, &[2, 3][..]));
    let meta = |key: &str| -> serde_json::Value { serde_json::from_str(&back.metadata[key]).unwrap_or_else(|e| panic!("metadata `{key}`: {e}")) };
    assert_eq!((meta("probe_seed"), meta("examples")), (serde_json::json!(3), serde_json::json!(30)));
    assert!(back.metadata.contains_key("config") && back.metadata.contains_key("layout"));
    for (m, model) in v["models"].as_array().unwrap().iter().enumerate() {
        let (lambdas, residuals) = (json_f64s(&model["eigenvalues"]), json_f64s(&model["eigenvalue_residuals"]));
        assert_eq!(lambdas.len(), 3);
        assert_eq!(json_f64s(&meta("eigenvalues")[m]), lambdas, "the file's eigenvalues are the printed ones");
        assert_eq!(json_f64s(&meta("eigenvalue_residuals")[m]), residuals);
        assert_eq!(meta("lanczos_iterations")[m], model["lanczos_iterations"]);
        for (j, &lambda) in lambdas.iter().enumerate() {
            let vec = &back.values[(m * 3 + j) * p..(m * 3 + j + 1) * p];
            let norm = vec.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "model {m} vector {j}: norm {norm}");
            let mut x = vec![0.0; 2 * p];
            x[m * p..(m + 1) * p].copy_from_slice(vec);
            let hx = sgd_lab::backend::cpu::hvp::cpu_hvp_exact(&backend, h, 0, 30, &x).unwrap();
            let r = hx[m * p..(m + 1) * p].iter().zip(vec).map(|(a, b)| (a - lambda * b).powi(2)).sum::<f64>().sqrt();
            let rayleigh: f64 = hx[m * p..(m + 1) * p].iter().zip(vec).map(|(a, b)| a * b).sum();
            let lmax = lambdas[0].abs();
            // f32 HVPs in the CLI, f64 here: measured ‖Hv − λv‖ ≈ 1e-7, |vᵀHv − λ| ≈ 5e-8 at λ_max ≈ 2.3.
            assert!(r <= residuals[j] + 1e-5 * lmax, "model {m} vector {j}: ‖Hv − λv‖ = {r:e} with λ = {lambda}, λ_max = {lmax} (reported residual {:e})", residuals[j]);
            assert!((rayleigh - lambda).abs() <= 1e-6 * lmax, "model {m} vector {j}: vᵀHv = {rayleigh}, printed λ = {lambda}");
            for i in 0..j {
                let other = &back.values[(m * 3 + i) * p..(m * 3 + i + 1) * p];
                let cos: f64 = other.iter().zip(vec).map(|(a, b)| a * b).sum();
                assert!(cos.abs() < 1e-9, "model {m}: vectors {i} and {j} are not orthogonal ({cos:e})");
            }
        }
    }
}

#[test]
fn hessian_writes_the_epsilon_sharpness_maximiser_inside_the_box_and_the_loss_there_is_the_printed_max_loss() {
    use sgd_lab::backend::Backend;
    let (dir, cfg, params) = trained_pair("hessian-maximiser");
    let file = dir.join("maximiser.safetensors");
    let v = hessian_json(&cfg, &params, &["--trace-samples", "0", "--epsilon", "0.01", "--ascent-steps", "4", "--epsilon-maximiser", file.to_str().unwrap()]);
    let back = sgd_lab::train::safetensors::vectors_from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    let (mut backend, h, theta, layout) = f64_backend(&cfg, &params);
    let p = layout.params_per_model;
    assert_eq!((&back.layout, &back.lead[..]), (&layout, &[2][..]));
    let meta = |key: &str| -> serde_json::Value { serde_json::from_str(&back.metadata[key]).unwrap_or_else(|e| panic!("metadata `{key}`: {e}")) };
    assert_eq!((meta("epsilon"), meta("ascent_steps"), meta("examples")), (serde_json::json!(0.01), serde_json::json!(4), serde_json::json!(30)));
    let y = &back.values;
    for (i, (&yi, &t)) in y.iter().zip(&theta).enumerate() {
        let half = 0.01 * (f64::from(t).abs() + 1.0);
        assert!(yi.abs() <= half, "y[{i}] = {yi} outside the box ±{half}");
    }
    // θ + y as the ascent evaluated it: summed in f64, rounded to f32.
    let shifted: Vec<f32> = theta.iter().zip(y).map(|(&t, &yi)| (f64::from(t) + yi) as f32).collect();
    backend.write_params(&shifted).unwrap();
    let at_max = pollster::block_on(backend.evaluate(h, 0, 30)).unwrap();
    for (m, model) in v["models"].as_array().unwrap().iter().enumerate() {
        let e = &model["epsilon_sharpness"];
        for key in ["best_step", "loss", "max_loss"] {
            assert_eq!(meta(key)[m], e[key], "metadata `{key}` of model {m}");
        }
        assert!(e["best_step"].as_u64().unwrap() > 0 && y[m * p..(m + 1) * p].iter().any(|&x| x != 0.0), "model {m}: the ascent rose above L(θ): {e}");
        let max_loss = e["max_loss"].as_f64().unwrap();
        // The CLI evaluated in f32, this backend in f64: measured 8e-8 relative.
        assert!((at_max[m].loss - max_loss).abs() <= 1e-6 * max_loss, "model {m}: L(θ + y) = {} over the same 30 examples, printed max_loss {max_loss}", at_max[m].loss);
    }
}

#[test]
fn hessian_export_to_a_missing_folder_or_a_maximiser_without_ascent_steps_fails_naming_the_flag_before_any_work() {
    let dir = temp_dir("hessian-export-errors");
    // Neither the params nor the config exist: a flag's error shows it was checked before they were read.
    let run = |extra: &[&str]| {
        let out = sgd_lab().args(["hessian", "--backend", "cpu", "--params"]).arg(dir.join("absent.safetensors")).arg("--config").arg(dir.join("absent.json")).args(extra).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.join("no-such-folder").join("eig.safetensors");
    let err = run(&["--eigenvectors", missing.to_str().unwrap()]);
    assert!(err.contains("`eigenvectors`") && err.contains("no-such-folder") && err.contains("does not exist"), "{err}");
    let err = run(&["--epsilon-maximiser", dir.join("y.safetensors").to_str().unwrap(), "--ascent-steps", "0"]);
    assert!(err.contains("`epsilon-maximiser`") && err.contains("--ascent-steps 0"), "{err}");
    let err = run(&["--epsilon-maximiser", missing.to_str().unwrap()]);
    assert!(err.contains("`epsilon-maximiser`") && err.contains("does not exist"), "{err}");
    let err = run(&["--eigenvectors", dir.to_str().unwrap()]);
    assert!(err.contains("`eigenvectors`") && err.contains("is a folder"), "{err}");
    // Without the flags the same call fails on the config it cannot read.
    assert!(run(&[]).contains("absent.json"));
}
