//! The native driver of `sgd-lab run`, `sgd-lab merge` and `sgd-lab report`: files in a run directory.
//!
//! A run directory holds `config.json` (the experiment as run), `results.json` (rewritten after every finished
//! group, so an interrupted run resumes from it), `params/job-N.safetensors` (final parameters the
//! interpolation presets need), and, once every group is done, `results.csv`, `claims.md` and `figures/*.svg`.
//! While a group trains, `checkpoint.safetensors` holds its latest mid-group checkpoint (rewritten every
//! `--checkpoint-every` seconds, removed when the group finishes), so a killed run resumes inside the group.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::any::{BackendChoice, BackendFactory};
use crate::error::{LabError, Result};
use crate::experiments::presets::preset_json;
use crate::experiments::report;
use crate::experiments::results::ExperimentResults;
use crate::experiments::runner::{DataSource, ExperimentRun, RunEvent};
use crate::experiments::spec::ExperimentConfig;
use crate::train::safetensors::{params_from_safetensors, params_to_safetensors};

/// What `sgd-lab run` was asked.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// A preset file (`presets/e1-ratio-sweep.json`) or a preset id (`e1-ratio-sweep`).
    pub preset: String,
    /// The run directory.
    pub out: PathBuf,
    /// The engine.
    pub backend: BackendChoice,
    /// `(i, n)`: run only the groups with index ≡ i (mod n).
    pub shard: Option<(usize, usize)>,
    /// A JSON merge patch applied to the preset (e.g. to shrink it).
    pub patch: Option<String>,
    /// Where the real data sets are.
    pub data_dir: PathBuf,
    /// Accept data files whose SHA-256 is not the pinned one (results record their hashes).
    pub allow_unpinned_data: bool,
    /// No progress bar.
    pub quiet: bool,
    /// How often a group in training is checkpointed (at the next chunk boundary); `None`: never.
    pub checkpoint_every: Option<std::time::Duration>,
    /// Delete a mid-group checkpoint instead of resuming from it (its group restarts from its beginning).
    pub discard_checkpoint: bool,
}

/// The mid-group checkpoint's file name in a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

fn io<E: std::fmt::Display>(p: &Path) -> impl FnOnce(E) -> LabError + '_ {
    move |e| LabError::Io(format!("{}: {e}", p.display()))
}

/// Reads a preset file, or a shipped preset by id.
pub fn load_config(preset: &str, patch: Option<&str>) -> Result<ExperimentConfig> {
    let path = Path::new(preset);
    let text = if path.exists() { fs::read_to_string(path).map_err(io(path))? } else { preset_json(preset)?.to_string() };
    ExperimentConfig::from_json_with_patch(&text, patch).map_err(|e| match e {
        LabError::Config { field, message } => LabError::Config { field, message: format!("{message} (in {preset})") },
        other => other,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a kill never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Loads `results.json` and the kept parameters of a run directory, if it has them.
/// Saved results and the kept final parameters by job index.
type Saved = (ExperimentResults, HashMap<usize, Vec<f32>>);

fn load_dir(dir: &Path) -> Result<Option<Saved>> {
    let rp = dir.join("results.json");
    if !rp.exists() {
        return Ok(None);
    }
    let results = ExperimentResults::from_json(&fs::read_to_string(&rp).map_err(io(&rp))?).map_err(|e| LabError::Io(format!("{}: {e}", rp.display())))?;
    let mut params = HashMap::new();
    for j in &results.jobs {
        let p = dir.join("params").join(format!("job-{}.safetensors", j.job));
        if p.exists() {
            let (_, values) = params_from_safetensors(&fs::read(&p).map_err(io(&p))?)?;
            params.insert(j.job, values);
        }
    }
    Ok(Some((results, params)))
}

/// Saves results and any kept parameters not yet on disk.
fn save(dir: &Path, run: &ExperimentRun) -> Result<()> {
    // The kept parameters first, results.json last: a run killed between the two writes then lacks the group
    // in results.json and reruns it (to the same bits), where the other order left a results.json naming a
    // group whose parameters were never written, and a run directory that could not be resumed.
    for (job, values) in run.kept_params() {
        let p = dir.join("params").join(format!("job-{job}.safetensors"));
        if !p.exists() {
            fs::create_dir_all(dir.join("params")).map_err(io(dir))?;
            let layout = run.jobs()[*job].train.model.layout();
            write_atomic(&p, &params_to_safetensors(&layout, values, Some(&run.jobs()[*job].train.to_json()))?)?;
        }
    }
    write_atomic(&dir.join("results.json"), run.results().to_json().as_bytes())
}

/// Steps a run to the end with a progress bar, saving after every group, and checkpointing the group in
/// training every `checkpoint_every` (at chunk boundaries; the file is removed once its group is saved).
fn drive(mut run: ExperimentRun, dir: &Path, quiet: bool, checkpoint_every: Option<std::time::Duration>) -> Result<ExperimentResults> {
    let ckpt = dir.join(CHECKPOINT_FILE);
    let mut last_checkpoint = std::time::Instant::now();
    let bar = if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(ProgressStyle::with_template("{bar:40} {percent:>3}% {elapsed_precise} (eta {eta}) {msg}").expect("template"));
    let log = |s: String| if bar.is_hidden() { if !quiet { eprintln!("sgd-lab: {s}") } } else { bar.println(s) };
    loop {
        let events = pollster::block_on(run.step())?;
        for e in &events {
            match e {
                RunEvent::JobStarted { job, label, models, steps, backend } => {
                    last_checkpoint = std::time::Instant::now();
                    bar.set_message(format!("group {}/{}: {label}", job + 1, run.jobs().len()));
                    log(format!("group {}/{} ({label}): {models} models × {steps} steps on {backend}", job + 1, run.jobs().len()));
                }
                RunEvent::Progress { fraction, .. } => bar.set_position((fraction * 1000.0) as u64),
                RunEvent::Diverged { job, model, step } => log(format!("group {}: model {model} diverged at step {step}", job + 1)),
                RunEvent::JobFinished { job, seconds } => {
                    save(dir, &run)?;
                    if ckpt.exists() {
                        fs::remove_file(&ckpt).map_err(io(&ckpt))?;
                    }
                    log(format!("group {} done in {seconds:.1} s", job + 1));
                }
                RunEvent::Interpolated { settings, seed } => {
                    save(dir, &run)?;
                    log(format!("interpolated settings {} → {} (seed {seed})", settings[0], settings[1]));
                }
                RunEvent::Measuring { .. } | RunEvent::Finished => {}
            }
        }
        if run.is_done() {
            break;
        }
        let trained = events.iter().any(|e| matches!(e, RunEvent::Progress { .. }));
        if let (true, Some(every)) = (trained, checkpoint_every) {
            if last_checkpoint.elapsed() >= every {
                if let Some(bytes) = pollster::block_on(run.checkpoint())? {
                    write_atomic(&ckpt, &bytes)?;
                }
                last_checkpoint = std::time::Instant::now();
            }
        }
    }
    bar.finish_and_clear();
    save(dir, &run)?;
    Ok(run.results().clone())
}

fn factory(choice: BackendChoice) -> Result<BackendFactory> {
    let f = pollster::block_on(BackendFactory::new(choice))?;
    if let Some(why) = f.fallback_reason() {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    Ok(f)
}

fn source(data_dir: &Path, allow_unpinned: bool) -> Box<dyn DataSource> {
    let dir = data_dir.to_path_buf();
    Box::new(move |t: &crate::train::TrainConfig| t.load_data_allowing(&dir, allow_unpinned))
}

/// `sgd-lab run`: runs (or resumes) an experiment in `args.out`, then writes its report when complete.
pub fn run(args: &RunArgs) -> Result<ExperimentResults> {
    let config = load_config(&args.preset, args.patch.as_deref())?;
    fs::create_dir_all(&args.out).map_err(io(&args.out))?;
    let (previous, params) = match load_dir(&args.out)? {
        Some((r, p)) => {
            if r.config != config {
                return Err(LabError::config("out", format!("{} holds results of a different configuration; choose another directory", args.out.display())));
            }
            eprintln!("sgd-lab: resuming: {} of {} groups already done in {}", r.jobs.len(), r.planned_jobs, args.out.display());
            (Some(r), p)
        }
        None => (None, HashMap::new()),
    };
    write_atomic(&args.out.join("config.json"), config.to_json().as_bytes())?;
    let mut run = ExperimentRun::new(config, args.shard, factory(args.backend)?, source(&args.data_dir, args.allow_unpinned_data), previous, params)?;
    resume_checkpoint(&mut run, &args.out, args.discard_checkpoint)?;
    let results = drive(run, &args.out, args.quiet, args.checkpoint_every)?;
    if results.complete() {
        write_report(&results, &args.out)?;
    } else {
        eprintln!("sgd-lab: shard done ({} of {} groups here); combine the shards with `sgd-lab merge`", results.jobs.len(), results.planned_jobs);
    }
    Ok(results)
}

/// Continues the group of the run directory's mid-group checkpoint, if there is one (or deletes it when
/// `discard`). A checkpoint that cannot be used is an error naming the file, what is wrong, and the way out.
fn resume_checkpoint(run: &mut ExperimentRun, dir: &Path, discard: bool) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        return Ok(());
    }
    if discard {
        fs::remove_file(&path).map_err(io(&path))?;
        eprintln!("sgd-lab: discarded {} (its group starts from its beginning)", path.display());
        return Ok(());
    }
    let bytes = fs::read(&path).map_err(io(&path))?;
    match run.resume_group(&bytes) {
        Ok(Some((j, step))) => {
            let job = &run.jobs()[j];
            eprintln!("sgd-lab: resuming group {}/{} ({}) at step {step} of {} from {}", j + 1, run.jobs().len(), job.label, job.train.steps, path.display());
        }
        Ok(None) => {
            fs::remove_file(&path).map_err(io(&path))?;
            eprintln!("sgd-lab: removed {}: its group had already finished", path.display());
        }
        Err(e) => {
            return Err(LabError::Io(format!(
                "{}: {e}. To start its group from the beginning instead, run again with --discard-checkpoint (or delete the file)",
                path.display()
            )))
        }
    }
    Ok(())
}

/// `sgd-lab merge`: combines shard directories into `out`, finishes what needs all groups (interpolations)
/// and writes the report. Data files (for interpolations) are read from `data_dir`, pinned unless `allow_unpinned`.
pub fn merge(dirs: &[PathBuf], out: &Path, backend: BackendChoice, (data_dir, allow_unpinned): (&Path, bool), quiet: bool) -> Result<ExperimentResults> {
    let mut parts = Vec::new();
    let mut params = HashMap::new();
    for d in dirs {
        let (r, p) = load_dir(d)?.ok_or_else(|| LabError::Io(format!("{}: no results.json", d.display())))?;
        parts.push(r);
        params.extend(p);
    }
    let merged = ExperimentResults::merge(parts)?;
    if !merged.complete() {
        let missing: Vec<String> = (0..merged.planned_jobs).filter(|i| !merged.has_job(*i)).map(|i| i.to_string()).collect();
        return Err(LabError::config("merge", format!("groups {} are missing: run the remaining shards first", missing.join(", "))));
    }
    fs::create_dir_all(out).map_err(io(out))?;
    write_atomic(&out.join("config.json"), merged.config.to_json().as_bytes())?;
    let run = ExperimentRun::new(merged.config.clone(), None, factory(backend)?, source(data_dir, allow_unpinned), Some(merged), params)?;
    let results = drive(run, out, quiet, None)?;
    write_report(&results, out)?;
    Ok(results)
}

/// `sgd-lab report`: (re)writes `results.csv`, `claims.md` and `figures/*.svg` from `results.json`.
pub fn report_dir(dir: &Path) -> Result<()> {
    let (results, _) = load_dir(dir)?.ok_or_else(|| LabError::Io(format!("{}: no results.json", dir.display())))?;
    write_report(&results, dir)
}

fn write_report(results: &ExperimentResults, dir: &Path) -> Result<()> {
    let r = report::build(results)?;
    let figs = dir.join("figures");
    fs::create_dir_all(&figs).map_err(io(&figs))?;
    for f in &r.figures {
        write_atomic(&figs.join(format!("{}.svg", f.name)), f.svg.as_bytes())?;
    }
    write_atomic(&dir.join("results.csv"), results.to_csv().as_bytes())?;
    write_atomic(&dir.join("claims.md"), r.to_markdown("figures").as_bytes())?;
    write_atomic(&dir.join("report.json"), serde_json::to_string_pretty(&r.summary()).expect("json").as_bytes())?;
    eprintln!("sgd-lab: wrote {}", dir.join("claims.md").display());
    for c in &r.claims {
        eprintln!("sgd-lab: {:?}: {}", c.verdict, c.statement);
    }
    Ok(())
}
