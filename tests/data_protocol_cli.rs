//! The data protocol from the command line, on the real data sets: a run records where its data came from
//! (the files' SHA-256, matching the pins) and `sgd-lab data indices` rebuilds the exact rows it trained
//! and validated on; files that are not the pinned ones stop a run, naming the file and both hashes,
//! unless `--allow-unpinned-data`, and the results then say so.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SGD_LAB_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/data"));
    if dir.join("mnist/train-images-idx3-ubyte.gz").is_file() {
        return Some(dir);
    }
    assert!(std::env::var_os("SGD_LAB_REQUIRE_DATA").is_none(), "the data sets are not in {} and SGD_LAB_REQUIRE_DATA is set", dir.display());
    eprintln!("note: skipped: MNIST is not in {} (run scripts/fetch-data)", dir.display());
    None
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-protocol-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 1×1 sweep on 120 MNIST examples in file order, validated on the first 50 of the test file.
const TINY_FIRST_N: &str = r#"{"dataset": {"name": "mnist", "train_size": 120, "validation_size": 50, "subset": "first", "validation_from": "test_file"},
    "seeds": [1], "model": {"hidden": [16]}, "budget": {"epochs": 1},
    "analysis": {"hessian_examples": 40, "lanczos_iterations": 3, "trace_samples": 2},
    "experiment": {"lrs": [0.05], "batch_sizes": [40], "extra_budgets": []}}"#;

fn run(out: &Path, data: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgd-lab"))
        .args(["run", "e1-ratio-sweep", "--backend", "cpu", "--quiet", "--override", TINY_FIRST_N, "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_run_records_its_files_and_rows_and_data_indices_rebuilds_the_exact_examples() {
    let Some(data) = data_dir() else { return };
    let out = scratch("indices");
    let o = run(&out, &data, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = json(&out.join("results.json"));
    let rec = &results["data"][0];
    assert_eq!(rec["source"], "mnist");
    let files = rec["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|f| f["sha256"] == f["pinned_sha256"]), "the fetched files are the pinned ones: {files:?}");
    assert_eq!((rec["train_examples"].as_u64(), rec["validation_examples"].as_u64()), (Some(120), Some(50)));
    assert_eq!(rec["rule"]["subset"], "first");
    let claims = std::fs::read_to_string(out.join("claims.md")).unwrap();
    assert!(claims.contains("N = 120 training examples (the first ones in file order) and 50 validation examples from the test file"), "the report says the protocol:\n{claims}");
    assert!(claims.contains("**The data**") && claims.contains("`mnist/train-images-idx3-ubyte` SHA-256 ba891046e650… (pinned)"), "and the files:\n{claims}");
    let model = &results["jobs"][0]["models"][0];
    assert_eq!(model["trace_samples"], 2, "analysis.trace_samples is what the trace took");
    assert!(model["probe_seed"].is_u64());

    let o = Command::new(env!("CARGO_BIN_EXE_sgd-lab")).args(["data", "indices"]).arg(&out).arg("--data-dir").arg(&data).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let idx: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let entry = &idx["data"][0];
    assert_eq!(entry["matches_saved_record"], true);
    let rows: Vec<u64> = entry["train_rows"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(rows, (0..120).collect::<Vec<u64>>(), "the first 120 examples of the training file");
    assert_eq!(entry["validation_from"], "test_file");
    assert_eq!(entry["validation_rows"].as_array().unwrap().len(), 50);
    assert_eq!(entry["record"], *rec);
}

/// A copy of MNIST's files (decompressed) under `dir/mnist/`, with one test label changed.
fn tampered_copy(data: &Path, dir: &Path) {
    std::fs::create_dir_all(dir.join("mnist")).unwrap();
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let gz = std::fs::read(data.join("mnist").join(format!("{f}.gz"))).unwrap();
        let mut plain = sgd_lab::data::idx::decompress(f, &gz).unwrap();
        if f == "t10k-labels-idx1-ubyte" {
            plain[8] = (plain[8] + 1) % 10;
        }
        std::fs::write(dir.join("mnist").join(f), plain).unwrap();
    }
}

#[test]
fn a_file_that_is_not_the_pinned_one_stops_the_run_unless_accepted_and_the_results_then_say_so() {
    let Some(data) = data_dir() else { return };
    let other = scratch("tampered-data");
    tampered_copy(&data, &other);
    let out = scratch("tampered-run");
    let o = run(&out, &other, &[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    let pin = sgd_lab::data::pinned::pinned_sha256("mnist", "t10k-labels-idx1-ubyte").unwrap();
    let got = sgd_lab::data::pinned::sha256_hex(&std::fs::read(other.join("mnist/t10k-labels-idx1-ubyte")).unwrap());
    assert!(e.contains("mnist/t10k-labels-idx1-ubyte") && e.contains(pin) && e.contains(&got) && e.contains("--allow-unpinned-data"), "{e}");
    assert!(!out.join("results.json").exists(), "nothing trained");

    let o = run(&out, &other, &["--allow-unpinned-data"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = json(&out.join("results.json"))["data"][0]["files"].clone();
    let labels = files.as_array().unwrap().iter().find(|f| f["file"] == "mnist/t10k-labels-idx1-ubyte").unwrap();
    assert_eq!((labels["sha256"].as_str(), labels["pinned_sha256"].as_str()), (Some(got.as_str()), Some(pin)));
}
