//! `sgd-lab hessian`: curvature of trained models (λ_max, trace, ε-sharpness) as JSON, with the probe seeds
//! that rebuild the numbers and optional exports of the Ritz vectors and the ε-sharpness maximisers.

use std::fs;
use std::path::{Path, PathBuf};

use super::args::DataArgs;
use crate::backend::any::{make_backend, BackendChoice};
use crate::backend::Backend;
use crate::train::TrainConfig;
use crate::LabError;

/// What `sgd-lab hessian` can write for checking, and the seed of its probes.
pub struct HessianExports {
    /// Base probe seed S (`--seed`).
    pub seed: u64,
    /// `--eigenvectors`: where the Ritz vectors go.
    pub eigenvectors: Option<PathBuf>,
    /// `--epsilon-maximiser`: where the ε-sharpness maximisers go.
    pub epsilon_maximiser: Option<PathBuf>,
}

/// How the probes of model m are drawn from the seeds printed with it (also in docs/hessian.md).
const PROBE_RECIPE: &str = "rng(seed, stream) = rand_chacha 0.9 ChaCha8Rng::seed_from_u64(seed) then set_stream(stream). \
Lanczos: model m's start vector is P successive rng(lanczos.seed, lanczos.stream).random_range(-1.0..1.0) f64 draws \
(one next_u64 each: ((u >> 12) · 2^-52) · 2 − 1), divided by its Euclidean norm. \
Hutchinson: model m's sample s (s = 1, 2, …) is the next P rng(hutchinson.seed, hutchinson.stream).random::<bool>() draws \
(one next_u32 each: top bit 1 → +1, 0 → −1); hutchinson.seed = mix_seed([probe_seed, m]) (analysis::mix_seed). \
See docs/hessian.md, \"Re-deriving the numbers\".";

/// Refuses an export path whose folder does not exist (or that is a folder), before any work is done.
fn check_export_path(flag: &str, path: &Path) -> Result<(), LabError> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(LabError::config(flag, format!("cannot write {}: the folder {} does not exist", path.display(), parent.display())));
    }
    if path.is_dir() {
        return Err(LabError::config(flag, format!("{} is a folder; give a file name such as {}", path.display(), path.join(format!("{flag}.safetensors")).display())));
    }
    Ok(())
}

/// `sgd-lab hessian`: per model λ_max and the top-k eigenvalues (Lanczos), the trace (Hutchinson) and the
/// ε-sharpness of the parameters in `params` on the first `examples` training examples of the config's data,
/// printed as JSON on stdout; writes the files `exports` asks for.
#[allow(clippy::too_many_arguments)]
pub fn hessian(params: &Path, config_path: &Path, backend: BackendChoice, examples: usize, (top_k, iterations, trace_samples): (usize, usize, usize), sharp: crate::analysis::sharpness::SharpnessOptions, data_args: &DataArgs, exports: &HessianExports) -> Result<(), LabError> {
    use crate::analysis::eigen::{lanczos, LanczosOptions};
    use crate::analysis::hutchinson::{hutchinson, HutchinsonOptions};
    use crate::analysis::{BackendOperator, Subset, HUTCHINSON_STREAM};
    use crate::train::safetensors::vectors_to_safetensors;
    if let Some(path) = &exports.eigenvectors {
        check_export_path("eigenvectors", path)?;
    }
    if let Some(path) = &exports.epsilon_maximiser {
        if sharp.steps == 0 {
            return Err(LabError::config("epsilon-maximiser", "there is no maximiser with --ascent-steps 0 (which skips the ε-sharpness): give at least 1 ascent step"));
        }
        check_export_path("epsilon-maximiser", path)?;
    }
    let text = fs::read_to_string(config_path).map_err(|e| LabError::Io(format!("cannot read {}: {e}", config_path.display())))?;
    let config = TrainConfig::from_json(&text)?;
    let bytes = fs::read(params).map_err(|e| LabError::Io(format!("cannot read {}: {e}", params.display())))?;
    let (layout, values) = crate::train::safetensors::params_from_safetensors(&bytes)?;
    if layout.widths != config.model.layout().widths || layout.activation != config.model.activation {
        return Err(LabError::config("model", format!("the parameters are of a {:?} {:?} net, the config's model differs", layout.widths, layout.activation)));
    }
    if examples == 0 {
        return Err(LabError::config("examples", "must be at least 1"));
    }
    let k = values.len() / layout.params_per_model;
    let data = config.load_data_allowing(&data_args.data_dir, data_args.allow_unpinned_data)?.train;
    let subset_n = examples.min(data.n);
    let (mut engine, fallback_reason) = pollster::block_on(make_backend(&layout, k, subset_n.min(256), backend))?;
    if let Some(why) = fallback_reason {
        eprintln!("sgd-lab: using the CPU backend: {why}");
    }
    let handle = engine.upload_dataset(&data)?;
    engine.write_params(&values)?;
    let subset = Subset::first(handle, data.n, examples);
    let describe = engine.describe();
    let timer = std::time::Instant::now();
    let mut op = BackendOperator::new(&mut engine, subset);
    let lanczos_opts = LanczosOptions { top_k: top_k.max(1), iterations, seed: exports.seed, model_seeds: Vec::new(), vectors: exports.eigenvectors.is_some() };
    let eig = pollster::block_on(lanczos(&mut op, &lanczos_opts))?;
    let lanczos_s = timer.elapsed().as_secs_f64();
    let hutchinson_opts = HutchinsonOptions { max_samples: trace_samples, seed: exports.seed, ..Default::default() };
    let tr = if trace_samples > 0 { pollster::block_on(hutchinson(&mut op, &hutchinson_opts))? } else { Vec::new() };
    let hvps = op.products;
    let hutchinson_s = timer.elapsed().as_secs_f64() - lanczos_s;
    let eps = if sharp.steps > 0 { Some(pollster::block_on(crate::analysis::sharpness::epsilon_sharpness(&mut engine, subset, &sharp))?) } else { None };
    let sharpness_s = timer.elapsed().as_secs_f64() - lanczos_s - hutchinson_s;
    // Model m's probes: with no per-model seeds Lanczos uses stream m of the base seed.
    let probes: Vec<serde_json::Value> = (0..k)
        .map(|m| {
            serde_json::json!({
                "lanczos": { "seed": exports.seed, "stream": m },
                "hutchinson": (trace_samples > 0).then(|| serde_json::json!({ "seed": hutchinson_opts.model_seed(m), "stream": HUTCHINSON_STREAM })),
            })
        })
        .collect();
    let models: Vec<serde_json::Value> = (0..k)
        .map(|m| {
            serde_json::json!({
                "lambda_max": eig[m].eigenvalues.first(),
                "eigenvalues": eig[m].eigenvalues,
                "eigenvalue_residuals": eig[m].residuals,
                "lanczos_iterations": eig[m].iterations,
                "trace": tr.get(m).map(|t| t.trace),
                "trace_std_error": tr.get(m).map(|t| t.std_error),
                "trace_samples": tr.get(m).map(|t| t.samples),
                "epsilon_sharpness": eps.as_ref().map(|e| &e.models[m]),
                "probes": probes[m],
            })
        })
        .collect();
    let config_json = config.to_json();
    let json = |v: serde_json::Value| v.to_string();
    let common = |meta: &mut std::collections::HashMap<String, String>| {
        meta.insert("config".into(), config_json.clone());
        meta.insert("dataset".into(), data.name.clone());
        meta.insert("examples".into(), subset.count.to_string());
        meta.insert("backend".into(), describe.clone());
    };
    let write = |path: &Path, bytes: Vec<u8>| -> Result<(), LabError> {
        fs::write(path, bytes).map_err(|e| LabError::Io(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("sgd-lab: wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &exports.eigenvectors {
        // [K, J] vectors, J = the most eigenvalues any model has; a model with fewer (its Krylov space was
        // exhausted) has NaN rows after its own.
        let (p, j) = (layout.params_per_model, eig.iter().map(|e| e.vectors.len()).max().unwrap_or(0));
        let mut flat = vec![f64::NAN; k * j * p];
        for (m, e) in eig.iter().enumerate() {
            for (i, v) in e.vectors.iter().enumerate() {
                flat[(m * j + i) * p..(m * j + i + 1) * p].copy_from_slice(v);
            }
        }
        let mut meta = std::collections::HashMap::new();
        common(&mut meta);
        meta.insert("eigenvalues".into(), json(serde_json::json!(eig.iter().map(|e| &e.eigenvalues).collect::<Vec<_>>())));
        meta.insert("eigenvalue_residuals".into(), json(serde_json::json!(eig.iter().map(|e| &e.residuals).collect::<Vec<_>>())));
        meta.insert("lanczos_iterations".into(), json(serde_json::json!(eig.iter().map(|e| e.iterations).collect::<Vec<_>>())));
        meta.insert("probe_seed".into(), exports.seed.to_string());
        meta.insert("probes".into(), json(serde_json::json!(probes)));
        write(path, vectors_to_safetensors(&layout, &flat, &[k, j], meta)?)?;
    }
    if let (Some(path), Some(report)) = (&exports.epsilon_maximiser, &eps) {
        let mut meta = std::collections::HashMap::new();
        common(&mut meta);
        meta.insert("epsilon".into(), json(serde_json::json!(sharp.epsilon)));
        meta.insert("ascent_steps".into(), sharp.steps.to_string());
        let per_model = |f: &dyn Fn(&crate::analysis::sharpness::EpsilonSharpness) -> serde_json::Value| json(serde_json::Value::Array(report.models.iter().map(f).collect()));
        meta.insert("best_step".into(), per_model(&|e| serde_json::json!(e.best_step)));
        meta.insert("loss".into(), per_model(&|e| serde_json::json!(e.loss)));
        meta.insert("max_loss".into(), per_model(&|e| serde_json::json!(e.max_loss)));
        meta.insert("sharpness".into(), per_model(&|e| serde_json::json!(e.sharpness)));
        write(path, vectors_to_safetensors(&layout, &report.perturbation, &[k], meta)?)?;
    }
    let seconds = serde_json::json!({ "lanczos": lanczos_s, "hutchinson": hutchinson_s, "epsilon_sharpness": sharpness_s });
    let sharp_opts = serde_json::json!({ "epsilon": sharp.epsilon, "ascent_steps": sharp.steps });
    let out = serde_json::json!({ "backend": describe, "dataset": data.name, "examples": subset.count, "hvps": hvps, "probe_seed": exports.seed, "probe_recipe": PROBE_RECIPE, "epsilon_sharpness": sharp_opts, "seconds": seconds, "models": models });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    Ok(())
}
