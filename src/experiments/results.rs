//! What an experiment produces: one [`ModelResult`] per model (final metrics, curves, curvature), the
//! interpolations between minima, and the [`ExperimentResults`] that hold them — the saved state a run
//! resumes from and shards merge into.

use serde::{Deserialize, Serialize};

use super::plan::ModelTag;
use super::spec::ExperimentConfig;
use crate::data::DataRecord;
use crate::error::{LabError, Result};

/// Non-finite numbers (a diverged model's loss) are written as JSON `null` and read back as NaN, since
/// JSON has no NaN: without this a results file with a diverged model could not be read back to resume.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// The same for every element of a vector.
    pub mod vec {
        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&x.is_finite().then_some(*x))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
        }
    }
}

/// Loss and accuracy of one model at one point of training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Steps done.
    pub step: usize,
    /// Epochs done (examples seen / N).
    pub epoch: f64,
    /// Training loss (on the labels trained on).
    #[serde(with = "nan_as_null")]
    pub train_loss: f64,
    /// Training accuracy (on the labels trained on).
    #[serde(with = "nan_as_null")]
    pub train_accuracy: f64,
    /// Validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
    /// Validation accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    /// Accuracy on the replaced labels of the training set (memorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupted_accuracy: Option<f64>,
    /// Accuracy on the kept labels of the training set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_accuracy: Option<f64>,
    /// Test accuracy (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
}

/// λ_max measured during training (edge of stability).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharpnessPoint {
    /// Steps done.
    pub step: usize,
    /// λ_max of the loss over the Hessian subset.
    #[serde(with = "nan_as_null")]
    pub lambda_max: f64,
    /// 2(1 + μ)/η at that step.
    #[serde(with = "nan_as_null")]
    pub threshold: f64,
    /// The probe seed of that measurement's Lanczos start vector (`Trainer::probe_seed`; absent in
    /// results written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_seed: Option<u64>,
}

/// Everything measured on one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Where the model sits in the preset's grid.
    pub tag: ModelTag,
    /// The group (job) that trained it, and its index in the group.
    pub job: usize,
    /// Index within the job's K models.
    pub slot: usize,
    /// Steps trained.
    pub steps: usize,
    /// Epochs trained.
    pub epochs: f64,
    /// The step at which the model diverged (then its results are those of the frozen parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<usize>,
    /// Metrics after the last step.
    pub last: CurvePoint,
    /// Metrics during training (`analysis.evaluations` points, then the last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<CurvePoint>,
    /// λ_max at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_max: Option<f64>,
    /// Tr H at the end (Hutchinson).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<f64>,
    /// Standard error of the trace estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_std_error: Option<f64>,
    /// Hutchinson samples the trace took (at most `analysis.trace_samples`; fewer once its standard error
    /// fell below 0.1 % of the estimate after 10 samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_samples: Option<usize>,
    /// The probe seed of the end-of-training λ_max and Tr H: the model's Lanczos start vector is drawn
    /// from it on stream 0 and its Hutchinson vectors on stream 1 (`Trainer::probe_seed`, docs/hessian.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_seed: Option<u64>,
    /// λ_max during training.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sharpness: Vec<SharpnessPoint>,
}

impl ModelResult {
    /// True when the model trained to the end without diverging.
    pub fn ok(&self) -> bool {
        self.diverged_at.is_none()
    }
}

/// One finished group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job's index in the plan.
    pub job: usize,
    /// The engine it ran on.
    pub backend: String,
    /// Wall-clock seconds (training and measurements).
    pub seconds: f64,
    /// One result per model.
    pub models: Vec<ModelResult>,
}

/// Loss and accuracy along `(1−α)θ₁ + αθ₂` between two minima of the same seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterpolationResult {
    /// The two settings (indices into the preset's `settings`).
    pub settings: [usize; 2],
    /// The replicate seed both minima share.
    pub seed: u64,
    /// The α grid.
    pub alphas: Vec<f64>,
    /// Training loss and accuracy at each α.
    #[serde(with = "nan_as_null::vec")]
    pub train_loss: Vec<f64>,
    /// Training accuracy at each α.
    #[serde(with = "nan_as_null::vec")]
    pub train_accuracy: Vec<f64>,
    /// Validation loss at each α (when there is a validation split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(with = "nan_as_null::vec")]
    pub validation_loss: Vec<f64>,
    /// Validation accuracy at each α.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(with = "nan_as_null::vec")]
    pub validation_accuracy: Vec<f64>,
}

/// The state of an experiment: its config, the plan size, and what has finished. Saved after every job
/// (`results.json`), so a run resumes where it stopped and shards merge into one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// The experiment as run.
    pub config: ExperimentConfig,
    /// Number of jobs in the whole plan.
    pub planned_jobs: usize,
    /// `(i, n)`: this run did the jobs with index ≡ i (mod n); absent for a whole run or a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(usize, usize)>,
    /// Finished jobs, by index.
    pub jobs: Vec<JobResult>,
    /// Interpolations (interpolation preset, after all jobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpolations: Vec<InterpolationResult>,
    /// Where the data of the groups came from: one record per distinct data set and selection (files'
    /// SHA-256, the rule and seed, digests of the chosen rows; `sgd-lab data indices` prints the rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataRecord>,
}

impl ExperimentResults {
    /// Empty results for a plan of `planned_jobs` jobs.
    pub fn new(config: ExperimentConfig, planned_jobs: usize, shard: Option<(usize, usize)>) -> Self {
        ExperimentResults { config, planned_jobs, shard, jobs: Vec::new(), interpolations: Vec::new(), data: Vec::new() }
    }

    /// Every model result, job after job.
    pub fn models(&self) -> impl Iterator<Item = &ModelResult> {
        self.jobs.iter().flat_map(|j| j.models.iter())
    }

    /// True when job `i` has finished.
    pub fn has_job(&self, i: usize) -> bool {
        self.jobs.iter().any(|j| j.job == i)
    }

    /// True when every planned job has finished.
    pub fn complete(&self) -> bool {
        (0..self.planned_jobs).all(|i| self.has_job(i))
    }

    /// JSON (round-trips through [`ExperimentResults::from_json`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialise")
    }

    /// Reads saved results; the embedded config is validated again.
    pub fn from_json(text: &str) -> Result<Self> {
        let r: ExperimentResults = serde_json::from_str(text).map_err(|e| LabError::Io(format!("results file: {e} (line {}, column {})", e.line(), e.column())))?;
        r.config.validate()?;
        if r.jobs.iter().any(|j| j.job >= r.planned_jobs) {
            return Err(LabError::Io(format!("results file: a job index is not below the {} planned jobs", r.planned_jobs)));
        }
        Ok(r)
    }

    /// Combines the results of shards of one experiment (same config, disjoint or identical jobs).
    pub fn merge(parts: Vec<ExperimentResults>) -> Result<Self> {
        let mut it = parts.into_iter();
        let mut out = it.next().ok_or_else(|| LabError::config("merge", "no results to merge"))?;
        out.shard = None;
        for (i, p) in it.enumerate() {
            if p.config != out.config || p.planned_jobs != out.planned_jobs {
                return Err(LabError::config("merge", format!("part {} is of a different experiment or config than part 0 ({} vs {})", i + 1, p.config.id, out.config.id)));
            }
            for j in p.jobs {
                match out.jobs.iter().find(|o| o.job == j.job) {
                    Some(o) if o.models != j.models => return Err(LabError::config("merge", format!("job {} appears twice with different results", j.job))),
                    Some(_) => {}
                    None => out.jobs.push(j),
                }
            }
            for r in p.interpolations {
                if !out.interpolations.contains(&r) {
                    out.interpolations.push(r);
                }
            }
            for d in &p.data {
                out.add_data_record(d).map_err(|e| LabError::config("merge", format!("part {}: {e}", i + 1)))?;
            }
        }
        out.jobs.sort_by_key(|j| j.job);
        Ok(out)
    }

    /// Adds the provenance of a group's data, once per distinct record. Refuses a record that chose its
    /// examples as an earlier one did but from different data (other files, or other rows): the groups of
    /// one run must see the same data.
    pub fn add_data_record(&mut self, record: &DataRecord) -> Result<()> {
        if self.data.contains(record) {
            return Ok(());
        }
        if let Some(diff) = self.data.iter().filter(|d| d.same_selection(record)).find_map(|d| record.difference(d)) {
            return Err(LabError::Data(format!("the data differ from those of the saved results: {diff}; use the same files, or another output directory")));
        }
        self.data.push(record.clone());
        Ok(())
    }

    /// One CSV row per model: its grid position and what was measured.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("job,slot,label,lr,batch_size,ratio,seed,momentum,budget,train_size,random_label_fraction,beta,steps,epochs,diverged_at,train_loss,train_accuracy,validation_loss,validation_accuracy,corrupted_accuracy,clean_accuracy,test_accuracy,lambda_max,trace\n");
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for m in self.models() {
            let t = &m.tag;
            let l = &m.last;
            s += &format!(
                "{},{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                m.job,
                m.slot,
                t.label.replace('"', "'"),
                t.lr,
                t.batch_size,
                t.ratio(),
                t.seed,
                t.momentum,
                t.budget,
                t.train_size,
                t.random_label_fraction,
                f(t.beta),
                m.steps,
                m.epochs,
                m.diverged_at.map_or(String::new(), |d| d.to_string()),
                l.train_loss,
                l.train_accuracy,
                f(l.validation_loss),
                f(l.validation_accuracy),
                f(l.corrupted_accuracy),
                f(l.clean_accuracy),
                f(l.test_accuracy),
                f(m.lambda_max),
                f(m.trace),
            );
        }
        s
    }
}
