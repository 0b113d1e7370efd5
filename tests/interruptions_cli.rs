//! `sgd-lab run` killed with SIGKILL once its first checkpoint is on disk, then run again with the same
//! arguments: it resumes from the checkpoint, and its results (every model's numbers, the interpolations)
//! and its kept final parameters (decoded) equal those of an uninterrupted run bit for bit (CPU backend).
//!
//! Why SIGKILL: it cannot be caught, so this is what a crash, an OOM kill or a pulled plug leaves behind —
//! only what was already renamed into place (checkpoints are written to a temporary file, then renamed).
//! Two kinds of checkpoint: `results.json` (+ kept parameters) after every group, and `checkpoint.safetensors`
//! inside a group every `--checkpoint-every` seconds, from which a rerun continues the group at its saved step.
#![cfg(all(unix, not(target_arch = "wasm32")))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sgd_lab::experiments::results::ExperimentResults;
use sgd_lab::train::safetensors::params_from_safetensors;

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

/// The uninterrupted run of [`PRESET`], made once for the tests that compare with it.
fn whole() -> &'static Path {
    static WHOLE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WHOLE.get_or_init(|| {
        let root = scratch("whole");
        let preset = root.join("interrupt.json");
        std::fs::write(&preset, PRESET).unwrap();
        let whole = root.join("whole");
        let o = command(&preset, &whole).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        whole
    })
}

/// Asserts that two run directories hold the same numbers and the same kept parameters, bit for bit.
fn assert_same_run(whole: &Path, cut: &Path) {
    let (a, b) = (results(whole), results(cut));
    assert!(a.complete() && b.complete());
    assert_eq!(numbers(&b), numbers(&a), "the resumed run's results equal the uninterrupted run's bit for bit");
    let (pa, pb) = (params(whole), params(cut));
    assert_eq!(pa.len(), 3, "each of the three groups keeps its final parameters (both seeds) in a file");
    assert_eq!(pb.len(), 3);
    for ((name, a), (_, b)) in pa.iter().zip(&pb) {
        assert_eq!(a.len(), b.len(), "{name}");
        let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "{name}: {differ} of {} parameters differ from the uninterrupted run's", a.len());
    }
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

/// Waits until the running `child` has written `file` (`what`, for the messages), then SIGKILLs it. The 5-minute
/// limit is a watchdog against a hang, not a timing check; the child must still be running when the file appears.
fn kill_once_it_writes(child: &mut Child, file: &Path, what: &str) {
    let start = Instant::now();
    while !file.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before {what} appeared");
        assert!(start.elapsed() < Duration::from_secs(300), "no {what} after 5 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_run_killed_after_its_first_checkpoint_resumes_to_results_and_parameters_bit_identical_to_an_uninterrupted_run() {
    let root = scratch("run");
    let preset = root.join("interrupt.json");
    std::fs::write(&preset, PRESET).unwrap();

    let cut = root.join("cut");
    let mut child = command(&preset, &cut).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    kill_once_it_writes(&mut child, &cut.join("results.json"), "its first checkpoint");
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

    assert_same_run(whole(), &cut);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_killed_inside_a_group_resumes_that_group_at_its_checkpoint_to_results_and_parameters_bit_identical_to_an_uninterrupted_run() {
    let root = scratch("mid");
    let preset = root.join("interrupt.json");
    std::fs::write(&preset, PRESET).unwrap();
    let cut = root.join("cut");
    let ckpt = cut.join("checkpoint.safetensors");
    let mut child = command(&preset, &cut).args(["--checkpoint-every", "0.05"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    kill_once_it_writes(&mut child, &ckpt, "a mid-group checkpoint"); // inside the group whose checkpoint just appeared
    assert!(ckpt.exists(), "the group was still training when killed (its checkpoint is removed once it finishes)");
    let done = if cut.join("results.json").exists() { results(&cut).jobs.len() } else { 0 };

    let o = command(&preset, &cut).args(["--checkpoint-every", "0.05"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("resuming group")).unwrap_or_else(|| panic!("no resume message: {stderr}"));
    assert!(line.contains(&format!("resuming group {}/3", done + 1)), "the first unfinished group is resumed: {line}");
    let step: usize = line.split(" at step ").nth(1).and_then(|r| r.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    assert!(step > 0 && step < 2500 && line.contains("of 2500"), "resumed inside the group, not at its start: {line}");
    assert!(!ckpt.exists(), "the checkpoint is removed once every group is done");

    assert_same_run(whole(), &cut);
    let _ = std::fs::remove_dir_all(&root);
}

/// A small sweep (two groups, one per B) whose groups are long enough (300 steps) to hold a mid-group checkpoint.
const SMALL: &str = r#"{
    "id": "small", "title": "checkpoint refusals",
    "model": {"input": 2, "hidden": [8], "classes": 2, "activation": "tanh", "init": "xavier"},
    "data": {"kind": "two_spirals", "n": 64, "noise": 0.1, "seed": 3},
    "budget": {"steps": 300}, "seeds": [1], "chunk_steps": 50,
    "analysis": {"hessian_examples": 32, "lanczos_iterations": 3, "evaluations": 2},
    "experiment": {"kind": "ratio_sweep", "lrs": [0.05, 0.2], "batch_sizes": [8, 16]}
}"#;

/// A real mid-group checkpoint of `json`'s first group, made in-process.
fn checkpoint_of(json: &str) -> Vec<u8> {
    use sgd_lab::backend::any::{BackendChoice, BackendFactory};
    use sgd_lab::experiments::{ExperimentConfig, ExperimentRun, RunEvent};
    let cfg = ExperimentConfig::from_json(json).unwrap();
    let factory = pollster::block_on(BackendFactory::new(BackendChoice::Cpu)).unwrap();
    let source = Box::new(|t: &sgd_lab::train::TrainConfig| sgd_lab::train::RunData::synthetic(t));
    let mut run = ExperimentRun::new(cfg, None, factory, source, None, Default::default()).unwrap();
    loop {
        let ev = pollster::block_on(run.step()).unwrap();
        if ev.iter().any(|e| matches!(e, RunEvent::Progress { .. })) {
            return pollster::block_on(run.checkpoint()).unwrap().unwrap();
        }
    }
}

#[test]
fn a_damaged_or_foreign_checkpoint_is_refused_naming_the_file_and_discard_checkpoint_starts_the_group_over() {
    let root = scratch("refuse");
    let preset = root.join("small.json");
    std::fs::write(&preset, SMALL).unwrap();
    let good = checkpoint_of(SMALL);
    let foreign = checkpoint_of(&SMALL.replace(r#""seeds": [1]"#, r#""seeds": [2]"#));
    let mut flipped = good.clone();
    let at = flipped.len() - 40;
    flipped[at] ^= 1;
    for (name, bytes, why) in [
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("flipped", flipped, "checksum does not match"),
        ("garbage", b"not a checkpoint at all".to_vec(), "not a usable checkpoint"),
        ("foreign", foreign, "different experiment configuration"),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ckpt = dir.join("checkpoint.safetensors");
        std::fs::write(&ckpt, &bytes).unwrap();
        let o = command(&preset, &dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: refused with an error, not a panic or a silent restart: {stderr}");
        assert!(stderr.contains(&ckpt.display().to_string()) && stderr.contains(why) && stderr.contains("--discard-checkpoint"), "{name}: {stderr}");
        assert!(!dir.join("results.json").exists(), "{name}: nothing was trained");
        assert_eq!(std::fs::read(&ckpt).unwrap(), bytes, "{name}: the checkpoint is left as it was");
    }
    let dir = root.join("truncated");
    let o = command(&preset, &dir).arg("--discard-checkpoint").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && stderr.contains("discarded"), "{stderr}");
    assert!(results(&dir).complete() && !dir.join("checkpoint.safetensors").exists());

    let dir = root.join("good");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("checkpoint.safetensors"), &good).unwrap();
    let o = command(&preset, &dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && stderr.contains("resuming group 1/2") && stderr.contains("at step 50 of 300"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}
