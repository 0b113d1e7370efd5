//! `sgd-lab run` killed with SIGKILL once its first checkpoint is on disk, then run again with the same
//! arguments: it resumes from the checkpoint, and its results (every model's numbers, the interpolations)
//! and its kept final parameters (decoded) equal those of an uninterrupted run bit for bit (CPU backend).
//!
//! Why SIGKILL: it cannot be caught, so this is what a crash, an OOM kill or a pulled plug leaves behind —
//! only what was already renamed into place (checkpoints are written to a temporary file, then renamed).
//! Checkpoints are per group (job); a kill mid-group repeats that group from its start on resume.
#![cfg(all(unix, not(target_arch = "wasm32")))]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sgd_lab::experiments::results::ExperimentResults;
use sgd_lab::train::trace::params_from_safetensors;

/// Three groups (one per B) of two seeds, long enough (seconds each) to be killed between checkpoints,
/// then the interpolations between the kept minima.
const PRESET: &str = r#"{
    "id": "interrupt", "title": "killed and resumed",
    "model": {"input": 2, "hidden": [64, 64], "classes": 2, "activation": "tanh", "init": "xavier"},
    "data": {"kind": "two_spirals", "n": 512, "noise": 0.1, "seed": 7},
    "budget": {"steps": 2500}, "seeds": [1, 2], "momentum": 0.9, "chunk_steps": 100,
    "analysis": {"hessian_examples": 64, "lanczos_iterations": 4, "evaluations": 2},
    "experiment": {"kind": "interpolation",
                   "settings": [{"lr": 0.05, "batch_size": 32}, {"lr": 0.1, "batch_size": 64}, {"lr": 0.2, "batch_size": 128}],
                   "alphas": {"from": -0.5, "to": 1.5, "points": 5}}
}"#;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-interrupt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn command(preset: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sgd-lab"));
    c.arg("run").arg(preset).args(["--backend", "cpu", "--quiet", "--out"]).arg(out);
    c
}

fn results(dir: &Path) -> ExperimentResults {
    ExperimentResults::from_json(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Everything computed, without the wall-clock seconds of each group.
fn numbers(r: &ExperimentResults) -> String {
    let models: Vec<_> = r.models().collect();
    format!("{}\n{}", serde_json::to_string(&models).unwrap(), serde_json::to_string(&r.interpolations).unwrap())
}

/// The kept final parameters of every group, decoded (the safetensors header's metadata is a hash map, so
/// its key order, and with it the file's bytes, may differ between two writes of the same values).
fn params(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("params")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let (_, values) = params_from_safetensors(&std::fs::read(p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), values.iter().map(|v| v.to_bits()).collect())
        })
        .collect()
}

#[test]
fn a_run_killed_after_its_first_checkpoint_resumes_to_results_and_parameters_bit_identical_to_an_uninterrupted_run() {
    let root = scratch("run");
    let preset = root.join("interrupt.json");
    std::fs::write(&preset, PRESET).unwrap();

    let whole = root.join("whole");
    let o = command(&preset, &whole).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let cut = root.join("cut");
    let mut child = command(&preset, &cut).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !cut.join("results.json").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its first checkpoint appeared");
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint after 5 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved = results(&cut);
    assert!(
        !saved.jobs.is_empty() && saved.jobs.len() < saved.planned_jobs,
        "killed mid-run: {} of {} groups were saved (make the groups longer if the run got to the end)",
        saved.jobs.len(),
        saved.planned_jobs
    );

    let o = command(&preset, &cut).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("resuming: {} of {} groups already done", saved.jobs.len(), saved.planned_jobs)), "{stderr}");

    let (a, b) = (results(&whole), results(&cut));
    assert!(a.complete() && b.complete());
    assert_eq!(numbers(&b), numbers(&a), "the resumed run's results equal the uninterrupted run's bit for bit");
    let (pa, pb) = (params(&whole), params(&cut));
    assert_eq!(pa.len(), 3, "each of the three groups keeps its final parameters (both seeds) in a file");
    for ((name, a), (_, b)) in pa.iter().zip(&pb) {
        assert_eq!(a.len(), b.len(), "{name}");
        let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "{name}: {differ} of {} parameters differ from the uninterrupted run's", a.len());
    }
    let _ = std::fs::remove_dir_all(&root);
}
