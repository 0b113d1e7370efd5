//! `sgd-lab run` runs every shipped preset end to end on the CPU at a tiny scale (real Fashion-MNIST and
//! MNIST subsets) and writes a well-formed report; `--shard` + `merge` and resuming in place work.
//! The verdicts are not asserted: at this scale they mean nothing; their form does.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

fn sgd_lab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sgd-lab"));
    c.arg("run");
    c
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SGD_LAB_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/data"));
    if dir.join("fashion-mnist/train-images-idx3-ubyte.gz").is_file() && dir.join("mnist/train-images-idx3-ubyte.gz").is_file() {
        return Some(dir);
    }
    assert!(std::env::var_os("SGD_LAB_REQUIRE_DATA").is_none(), "the data sets are not in {} and SGD_LAB_REQUIRE_DATA is set", dir.display());
    eprintln!("note: skipped: Fashion-MNIST/MNIST are not in {} (run scripts/fetch-data)", dir.display());
    None
}

/// What every tiny run shares: a few hundred examples, a 24-unit net, two seeds, a short Lanczos.
const COMMON: &str = r#""dataset": {"train_size": 300, "validation_size": 200}, "seeds": [1, 2], "model": {"hidden": [24]},
    "analysis": {"hessian_examples": 100, "lanczos_iterations": 5, "trace_samples": 2, "evaluations": 2}"#;

/// A merge patch per preset that shrinks it to seconds.
fn tiny(preset: &str) -> String {
    let specific = match preset {
        "e1-ratio-sweep" | "e1-ratio-sweep-deep" => r#""budget": {"epochs": 1}, "experiment": {"lrs": [0.0125, 0.05], "batch_sizes": [62, 125], "extra_budgets": [{"steps": 5}]}"#,
        "e2-interpolation-ratios" => r#""budget": {"epochs": 1}, "experiment": {"settings": [{"lr": 0.1, "batch_size": 32}, {"lr": 0.1, "batch_size": 128}, {"lr": 0.01, "batch_size": 32}], "alphas": {"from": -1, "to": 2, "points": 7}}"#,
        "e3-interpolation-equal-ratio" => r#""budget": {"epochs": 1}, "experiment": {"alphas": {"from": -1, "to": 2, "points": 7}}"#,
        "e4-schedules" => r#""budget": {"epochs": 1}, "experiment": {"batch_size": 32, "stage_epochs": 0.25, "constant": [{"lr": 0.01, "batch_size": 32}, {"lr": 0.05, "batch_size": 160}]}"#,
        "e5-memorization" => r#""budget": {"epochs": 1}, "experiment": {"random_label_fractions": [0.5], "lrs": [0.05, 0.2], "batch_sizes": [50, 100], "momenta": [0, 0.9]}"#,
        "e6-breakdown" => r#""budget": {"epochs": 1}, "experiment": {"train_sizes": [200, 300], "betas": [1, 2, 4]}"#,
        "edge-of-stability" => r#""budget": {"steps": 12}, "experiment": {"measurements": 3}"#,
        other => panic!("no tiny patch for {other}"),
    };
    format!("{{{COMMON}, {specific}}}")
}

fn run(preset: &str, out: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    let o = sgd_lab()
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets").join(format!("{preset}.json")))
        .args(["--backend", "cpu", "--quiet", "--override", &tiny(preset), "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{preset}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-exp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The report files exist and hang together: every figure linked from claims.md exists and is an SVG,
/// results.csv has a row per model of results.json, and every claim row carries a verdict.
fn assert_report(dir: &Path) {
    let md = std::fs::read_to_string(dir.join("claims.md")).unwrap();
    assert!(md.starts_with("# ") && md.contains("## Claims tested") && md.contains("## Caveats"), "{md}");
    let rows: Vec<&str> = md.lines().skip_while(|l| !l.starts_with("| Claim |")).skip(2).take_while(|l| l.starts_with('|')).collect();
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(["**holds**", "**does not hold**", "**inconclusive**"].iter().any(|v| r.contains(v)), "{r}");
    }
    let mut figures = 0;
    for link in md.split("](figures/").skip(1) {
        let name = &link[..link.find(')').unwrap()];
        let svg = std::fs::read_to_string(dir.join("figures").join(name)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}");
        figures += 1;
    }
    assert!(figures >= 2, "{} figures", figures);
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let models: usize = results["jobs"].as_array().unwrap().iter().map(|j| j["models"].as_array().unwrap().len()).sum();
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), models + 1);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["claims"].as_array().unwrap().len(), rows.len());
}

#[test]
fn every_preset_runs_end_to_end_at_a_tiny_scale_and_writes_its_report() {
    let Some(data) = data_dir() else { return };
    for (id, _) in sgd_lab::experiments::presets::PRESETS {
        let out = scratch(id);
        run(id, &out, &data, &[]);
        assert_report(&out);
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn two_shards_merge_into_a_report_and_a_finished_directory_resumes_without_work() {
    let Some(data) = data_dir() else { return };
    let id = "e2-interpolation-ratios";
    let (a, b, merged) = (scratch("shard-a"), scratch("shard-b"), scratch("merged"));
    let o = run(id, &a, &data, &["--shard", "0/2"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("sgd-lab merge"), "a shard says how to finish");
    assert!(!a.join("claims.md").exists(), "half the groups make no report");
    run(id, &b, &data, &["--shard", "1/2"]);
    let st = Command::new(env!("CARGO_BIN_EXE_sgd-lab")).args(["merge", "--backend", "cpu", "--quiet", "--data-dir"]).arg(&data).arg(&a).arg(&b).arg("--out").arg(&merged).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    assert_report(&merged);
    let o = run(id, &merged, &data, &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("groups already done"), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = sgd_lab().args(["e1-ratio-sweep", "--backend", "cpu", "--quiet", "--out"]).arg(&merged).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("different configuration"));
    for d in [a, b, merged] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_bad_override_names_the_field_and_the_preset() {
    let o = sgd_lab().args(["e1-ratio-sweep", "--backend", "cpu", "--out", "/nonexistent/never", "--override", r#"{"seeds": []}"#]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("`seeds`") && err.contains("e1-ratio-sweep"), "{err}");
    let o = sgd_lab().args(["no-such-preset", "--out", "/nonexistent/never"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("the presets are e1-ratio-sweep"));
}

/// A 1 × 1 ratio sweep with one seed on synthetic data, a few steps.
const ONE_BY_ONE: &str = r#"{
    "id": "one-by-one", "title": "a 1 × 1 sweep",
    "model": {"input": 2, "hidden": [8], "classes": 2, "activation": "tanh", "init": "xavier"},
    "data": {"kind": "two_spirals", "n": 64, "noise": 0.1, "seed": 3},
    "budget": {"steps": 10}, "seeds": [1],
    "analysis": {"hessian_examples": 32, "lanczos_iterations": 4},
    "experiment": {"kind": "ratio_sweep", "lrs": [0.05], "batch_sizes": [8]}
}"#;

#[test]
fn a_one_by_one_grid_with_one_seed_runs_to_exit_0_and_writes_its_report() {
    let dir = scratch("one-by-one");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("one-by-one.json");
    std::fs::write(&cfg, ONE_BY_ONE).unwrap();
    let out = dir.join("run");
    let o = sgd_lab().arg(&cfg).args(["--backend", "cpu", "--quiet", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "exit {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("claims.md")).unwrap();
    assert!(md.contains("## Claims tested") && md.contains("Figures not drawn: `lambda-max-heatmap-0`"), "{md}");
    assert!(md.contains("n/a (1 seed)") && !md.contains("NaN"), "{md}");
    assert!(out.join("report.json").is_file() && out.join("results.csv").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
