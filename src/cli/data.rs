//! `sgd-lab data …`: a synthetic set written as IDX or NPY files (`export`), and the exact examples behind a
//! run (`indices`; docs/data.md).

use std::fs;
use std::path::Path;

use super::experiments::load_config;
use crate::error::Result;
use crate::experiments::results::ExperimentResults;
use crate::train::TrainConfig;
use crate::LabError;

/// `sgd-lab data export`: the synthetic set of `--config` (a training or experiment config file, or a
/// preset id) or of `--data` (inline JSON), written into `out` as `format` plus data.json.
pub fn data_export(config: Option<&str>, data: Option<&str>, out: &Path, format: &str, force: bool) -> Result<(), LabError> {
    use crate::data::export::{export_synthetic, write_files};
    use crate::data::SyntheticData;
    let synthetic = match (config, data) {
        (Some(_), Some(_)) => return Err(LabError::config("--config/--data", "give one of --config FILE and --data JSON, not both")),
        (None, None) => {
            return Err(LabError::config(
                "--config/--data",
                "missing: give --config FILE (a training or experiment config, or a preset id) or --data JSON (e.g. '{\"kind\": \"two_spirals\", \"n\": 512, \"seed\": 3}')",
            ))
        }
        (None, Some(json)) => {
            let d: SyntheticData = crate::error::from_json_str(json).map_err(|e| match e {
                LabError::Config { field, message } if field == "(json)" || field == "?" => LabError::config("--data", message),
                LabError::Config { field, message } => LabError::config(format!("--data.{field}"), message),
                other => other,
            })?;
            d.validate("--data")?;
            d
        }
        (Some(c), None) => {
            let path = Path::new(c);
            let (data, dataset) = if path.exists() {
                let text = fs::read_to_string(path).map_err(|e| LabError::Io(format!("cannot read {c}: {e}")))?;
                let is_experiment = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("experiment").is_some());
                if is_experiment {
                    let e = load_config(c, None)?;
                    (e.data, e.dataset)
                } else {
                    let t = TrainConfig::from_json(&text).map_err(|e| match e {
                        LabError::Config { field, message } => LabError::Config { field, message: format!("{message} (in {c})") },
                        other => other,
                    })?;
                    (t.data, t.dataset)
                }
            } else {
                crate::experiments::presets::preset_json(c).map_err(|e| LabError::Io(format!("cannot read {c}: no such file, nor a shipped preset id ({e})")))?;
                let e = load_config(c, None)?;
                (e.data, e.dataset)
            };
            match (data, dataset) {
                (Some(d), _) => d,
                (None, Some(d)) => {
                    let name = d.name.name();
                    return Err(LabError::config(
                        "dataset",
                        format!("{c} trains on the real data set {name}, whose files are IDX already: www/data/{name}/*-ubyte.gz, fetched by scripts/fetch-data; `data export` writes synthetic sets (`data`) only"),
                    ));
                }
                (None, None) => return Err(LabError::config("data", format!("{c} names no data set"))),
            }
        }
    };
    let files = export_synthetic(&synthetic, format.parse()?)?;
    write_files(out, &files, force)?;
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    eprintln!("sgd-lab: wrote {} ({} examples of {}): {}", out.display(), synthetic.len(), serde_json::to_string(&synthetic).expect("json"), names.join(", "));
    Ok(())
}

/// `sgd-lab data indices INPUT`: the exact examples behind a run, as JSON — for every distinct real data
/// set of INPUT (a run directory or its `results.json`, an experiment preset id or file, or a training
/// config), the rows of the training and validation sets in their files, the replaced labels as
/// `[position, label]` pairs, and the provenance record; for a saved run, whether the rebuilt data match
/// the record it saved (`matches_saved_record`). Synthetic sets are listed with their record only (they are
/// regenerated from their config; `sgd-lab data export` writes them).
pub fn data_indices(input: &str, data_dir: &Path, allow_unpinned: bool) -> Result<String> {
    let path = Path::new(input);
    let results_file = if path.is_dir() { path.join("results.json") } else { path.to_path_buf() };
    let (configs, saved): (Vec<crate::train::TrainConfig>, Vec<crate::data::DataRecord>) =
        if let Some(r) = results_file.exists().then(|| fs::read_to_string(&results_file).ok()).flatten().and_then(|t| ExperimentResults::from_json(&t).ok()) {
            (crate::experiments::plan::plan(&r.config)?.into_iter().map(|j| j.train).collect(), r.data)
        } else if let Ok(cfg) = load_config(input, None) {
            (crate::experiments::plan::plan(&cfg)?.into_iter().map(|j| j.train).collect(), Vec::new())
        } else {
            let text = fs::read_to_string(path).map_err(|e| LabError::Io(format!("{input}: not a run directory, results file, preset or config ({e})")))?;
            (vec![crate::train::TrainConfig::from_json(&text)?], Vec::new())
        };
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for t in configs {
        let key = format!("{:?}|{:?}", t.data, t.dataset);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let mut entry = serde_json::Map::new();
        let record = match &t.dataset {
            Some(d) => {
                let p = crate::data::load_named(d, data_dir, allow_unpinned)?;
                let replaced = crate::data::provenance::replaced_labels(&p.corrupted, &p.train.labels);
                entry.insert("dataset".into(), serde_json::to_value(d).expect("configs serialise"));
                entry.insert("train_rows".into(), serde_json::to_value(&p.train_rows).expect("rows"));
                entry.insert("validation_from".into(), serde_json::to_value(p.validation_from).expect("enum"));
                entry.insert("validation_rows".into(), serde_json::to_value(&p.validation_rows).expect("rows"));
                entry.insert("random_labels".into(), serde_json::to_value(&replaced).expect("pairs"));
                p.record
            }
            None => {
                let d = crate::train::RunData::synthetic(&t)?;
                entry.insert("data".into(), serde_json::to_value(&t.data).expect("configs serialise"));
                d.provenance.expect("synthetic data carry their record")
            }
        };
        if let Some(s) = saved.iter().find(|s| s.same_selection(&record)) {
            entry.insert("matches_saved_record".into(), serde_json::Value::Bool(*s == record));
            if let Some(diff) = record.difference(s) {
                entry.insert("difference".into(), serde_json::Value::String(diff));
            }
        }
        entry.insert("record".into(), serde_json::to_value(&record).expect("records serialise"));
        out.push(serde_json::Value::Object(entry));
    }
    Ok(serde_json::to_string_pretty(&serde_json::json!({ "data": out })).expect("json"))
}
