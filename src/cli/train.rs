//! `sgd-lab train`: one training config's K models, with a progress bar, into an output directory.

use std::fs;
use std::io::Write;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::args::DataArgs;
use crate::backend::any::{make_backend, BackendChoice};
use crate::backend::Backend;
use crate::train::safetensors::{batches_to_safetensors, params_to_safetensors, scheduled_batches_to_safetensors, trajectory_to_safetensors, Trajectory};
use crate::train::{Event, TrainConfig, Trainer};
use crate::LabError;

/// `sgd-lab train`: trains the K models of the config at `config_path` on `backend` and writes `config.json`,
/// `data.json` (real data), `metrics.jsonl`, `params_initial.safetensors`, `params_final.safetensors`,
/// `batches.safetensors` and, with `snapshot_every`, `trajectory.safetensors` into `out`.
pub fn train(config_path: &Path, backend: BackendChoice, out: &Path, data_args: &DataArgs, quiet: bool, snapshot_every: Option<usize>) -> Result<(), LabError> {
    if snapshot_every == Some(0) {
        return Err(LabError::config("snapshot-every", "must be at least 1"));
    }
    let text = fs::read_to_string(config_path).map_err(|e| LabError::Io(format!("cannot read {}: {e}", config_path.display())))?;
    let config = TrainConfig::from_json(&text)?;
    let data = config.load_data_allowing(&data_args.data_dir, data_args.allow_unpinned_data)?;
    let (engine, fallback_reason) = pollster::block_on(make_backend(&config.model.layout(), config.models.len(), config.max_batch(), backend))?;
    if let Some(why) = fallback_reason {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    fs::create_dir_all(out).map_err(|e| LabError::Io(format!("cannot create {}: {e}", out.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), LabError> {
        let p = out.join(name);
        fs::write(&p, bytes).map_err(|e| LabError::Io(format!("cannot write {}: {e}", p.display())))
    };
    let config_json = config.to_json();
    write("config.json", config_json.as_bytes())?;
    if let Some(record) = &data.provenance {
        write("data.json", serde_json::to_string_pretty(record).expect("records serialise").as_bytes())?;
    }
    let layout = config.model.layout();
    let (k, batch, steps) = (config.models.len(), config.batch_size, config.steps);

    let mut trainer = Trainer::with_data(config, engine, data)?;
    write("params_initial.safetensors", &params_to_safetensors(&layout, &trainer.trace().initial_params, Some(&config_json))?)?;
    let mut trajectory = snapshot_every.map(|n| {
        trainer.set_snapshot_every(n);
        Trajectory { layout: layout.clone(), models: k, steps: vec![0], params: trainer.trace().initial_params.clone() }
    });
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics = fs::File::create(&metrics_path).map_err(|e| LabError::Io(format!("cannot create {}: {e}", metrics_path.display())))?;

    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(steps as u64) };
    // indicatif draws nothing when stderr is not a terminal; the event lines must still be printed then.
    let say = |line: String| if bar.is_hidden() { if !quiet { eprintln!("{line}") } } else { bar.println(line) };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps  {msg}  eta {eta}").expect("template"));
    while !trainer.is_done() {
        let events = pollster::block_on(trainer.run_chunk_with_curvature())?;
        if let (Some(t), Some(n)) = (trajectory.as_mut(), snapshot_every) {
            let done = trainer.steps_done();
            if (done % n == 0 || trainer.is_done()) && t.steps.last() != Some(&(done as u64)) {
                t.params.extend(pollster::block_on(trainer.backend_mut().read_params())?);
                t.steps.push(done as u64);
            }
        }
        for event in events {
            let line = serde_json::to_string(&event).expect("events serialise");
            writeln!(metrics, "{line}").map_err(|e| LabError::Io(format!("cannot write {}: {e}", metrics_path.display())))?;
            match &event {
                Event::Started { backend, .. } => say(format!("backend: {backend}")),
                Event::Steps { first_step, losses } => {
                    let n = losses.first().map_or(0, Vec::len);
                    bar.set_position((first_step + n) as u64);
                    let mean: Vec<String> = losses.iter().map(|l| format!("{:.3}", l.iter().sum::<f32>() / n.max(1) as f32)).collect();
                    bar.set_message(format!("loss {}", mean.join(" ")));
                }
                Event::Diverged { model, step } => say(format!("model {model} diverged at step {step}")),
                Event::Sharpness { step, lambda_max, stability_threshold, .. } => {
                    let s: Vec<String> = lambda_max.iter().zip(stability_threshold).map(|(l, t)| format!("{l:.3} (2(1+μ)/η = {t:.1})")).collect();
                    say(format!("step {step}: λ_max {}", s.join("  ")));
                }
                Event::Eval { step, metrics } | Event::Finished { steps: step, metrics } => {
                    let show = |name: &str, set: &Option<Vec<crate::backend::EvalMetrics>>| {
                        if let Some(set) = set {
                            let s: Vec<String> = set.iter().map(|m| format!("{:.4}/{:.1}%", m.loss, 100.0 * m.accuracy)).collect();
                            say(format!("step {step}: {name} loss/acc {}", s.join("  ")));
                        }
                    };
                    show("train", &Some(metrics.train.clone()));
                    show("validation", &metrics.validation);
                    show("test", &metrics.test);
                }
            }
        }
    }
    bar.finish_and_clear();
    let final_params = pollster::block_on(trainer.backend_mut().read_params())?;
    write("params_final.safetensors", &params_to_safetensors(&layout, &final_params, Some(&config_json))?)?;
    let trace = trainer.trace();
    let batches = if trace.batch_sizes.iter().all(|&b| b as usize == batch) {
        batches_to_safetensors(&trace.batches, k, batch)?
    } else {
        scheduled_batches_to_safetensors(&trace.batches, k, &trace.batch_sizes)?
    };
    write("batches.safetensors", &batches)?;
    if let Some(t) = &trajectory {
        write("trajectory.safetensors", &trajectory_to_safetensors(t, Some(&config_json))?)?;
    }
    eprintln!("sgd-lab: wrote {}", out.display());
    Ok(())
}
