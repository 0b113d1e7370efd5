//! What a run records about its data so anyone can rebuild it elsewhere: each file read with the SHA-256
//! of its decompressed bytes (beside the lab's pin), the rule and seed that chose the examples, and
//! SHA-256 digests of what was chosen — the training and validation rows, the replaced labels, the
//! training features and labels as stored. `sgd-lab data indices` prints the rows themselves.
//!
//! Digests (lower-case hex SHA-256): rows as u32 little-endian, in ascending order; replaced labels as
//! (position in the training set, new label) pairs of u32 little-endian in ascending position; features as
//! stored — the pixel bytes (u8, row-major) for IDX data, f32 little-endian for synthetic data; labels as
//! one byte each.

use serde::{Deserialize, Serialize};

use super::pinned::{sha256_f32_le, sha256_hex, sha256_u32_le};
use super::prepare::{Normalise, PrepareOptions, RawData, SubsetRule, ValidationSource};
use super::{Dataset, Features, SyntheticData};

/// One file a run read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// The file, e.g. `fashion-mnist/train-images-idx3-ubyte` (or the path of a file of your own).
    pub file: String,
    /// Bytes after decompression.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: String,
    /// The SHA-256 the lab pins for this file (`src/data/pinned-idx.sha256`); absent for your own files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_sha256: Option<String>,
}

impl FileRecord {
    /// The record of decompressed `content` read as `file`, with its pin if it has one.
    pub fn of(file: &str, content: &[u8], pin: Option<&str>) -> Self {
        FileRecord { file: file.into(), bytes: content.len() as u64, sha256: sha256_hex(content), pinned_sha256: pin.map(String::from) }
    }

    /// `Some(true)` when the file is the pinned one, `Some(false)` when it differs, `None` with no pin.
    pub fn matches_pin(&self) -> Option<bool> {
        self.pinned_sha256.as_ref().map(|p| *p == self.sha256)
    }
}

/// How the examples of a real data set were chosen: everything [`super::prepare::prepare`] was told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionRule {
    /// `stratified` (random within classes, by the seed) or `first` (file order).
    pub subset: SubsetRule,
    /// `train_file` (held out) or `test_file`.
    pub validation_from: ValidationSource,
    /// Seed: ChaCha8 stream 0 shuffles the training file's classes, stream 1 draws the random labels,
    /// stream 2 shuffles the test file's classes (stratified validation from the test file).
    pub seed: u64,
    /// Share of training labels replaced.
    pub random_label_fraction: f64,
    /// Feature normalisation.
    pub normalise: Normalise,
}

/// The provenance of one run's data (see the module docs for how each digest is made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRecord {
    /// `fashion-mnist`, `mnist`, `idx`, or `synthetic`.
    pub source: String,
    /// The generator of a synthetic set (regenerate it with this, or `sgd-lab data export`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticData>,
    /// The files read, in the order training images, training labels, test images, test labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
    /// How the examples were chosen (real data sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<SelectionRule>,
    /// Training examples N.
    pub train_examples: usize,
    /// Validation examples.
    pub validation_examples: usize,
    /// Training labels replaced by a random other class.
    pub random_labels: usize,
    /// SHA-256 of the training rows (in the training file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_rows_sha256: Option<String>,
    /// SHA-256 of the validation rows (in the file `rule.validation_from` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_rows_sha256: Option<String>,
    /// SHA-256 of the replaced labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_labels_sha256: Option<String>,
    /// SHA-256 of the training features as stored.
    pub train_features_sha256: String,
    /// SHA-256 of the training labels as trained on (one byte each).
    pub train_labels_sha256: String,
    /// Mean of the training pixels (byte/255), from which the normalisation was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_mean: Option<f64>,
    /// Their standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_std: Option<f64>,
}

/// The replaced labels as `[position in the training set, label trained on]`, ascending position: what
/// `random_labels_sha256` digests and `sgd-lab data indices` prints.
pub fn replaced_labels(corrupted: &[bool], labels: &[u32]) -> Vec<[u32; 2]> {
    corrupted.iter().enumerate().filter(|(_, &c)| c).map(|(i, _)| [i as u32, labels[i]]).collect()
}

/// SHA-256 of a data set's stored features and of its labels (one byte each; labels are below 256 for
/// every data set the lab reads: IDX labels are bytes, synthetic sets have at most 256 classes).
fn content_digests(d: &Dataset) -> (String, String) {
    let features = match &d.features {
        Features::F32(v) => sha256_f32_le(v),
        Features::U8 { bytes, .. } => sha256_hex(bytes),
    };
    let labels: Vec<u8> = d.labels.iter().map(|&y| y as u8).collect();
    (features, sha256_hex(&labels))
}

impl DataRecord {
    /// The record of a synthetic training set.
    pub fn of_synthetic(generator: &SyntheticData, train: &Dataset) -> Self {
        let (train_features_sha256, train_labels_sha256) = content_digests(train);
        DataRecord {
            source: "synthetic".into(),
            synthetic: Some(generator.clone()),
            files: Vec::new(),
            rule: None,
            train_examples: train.n,
            validation_examples: 0,
            random_labels: 0,
            train_rows_sha256: None,
            validation_rows_sha256: None,
            random_labels_sha256: None,
            train_features_sha256,
            train_labels_sha256,
            pixel_mean: None,
            pixel_std: None,
        }
    }

    /// The record of a prepared real data set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn of_real(raw: &RawData, opts: &PrepareOptions, train: &Dataset, train_rows: &[u32], validation_rows: &[u32], corrupted: &[bool], pixel_mean: f64, pixel_std: f64) -> Self {
        let (train_features_sha256, train_labels_sha256) = content_digests(train);
        let replaced: Vec<u32> = replaced_labels(corrupted, &train.labels).into_iter().flatten().collect();
        DataRecord {
            source: raw.name.clone(),
            synthetic: None,
            files: raw.files.clone(),
            rule: Some(SelectionRule { subset: opts.subset, validation_from: opts.validation_from, seed: opts.seed, random_label_fraction: opts.random_label_fraction, normalise: opts.normalise }),
            train_examples: train_rows.len(),
            validation_examples: validation_rows.len(),
            random_labels: replaced.len() / 2,
            train_rows_sha256: Some(sha256_u32_le(train_rows)),
            validation_rows_sha256: Some(sha256_u32_le(validation_rows)),
            random_labels_sha256: Some(sha256_u32_le(&replaced)),
            train_features_sha256,
            train_labels_sha256,
            pixel_mean: Some(pixel_mean),
            pixel_std: Some(pixel_std),
        }
    }

    /// True when `other` chose its examples the same way from the same kind of source (so its digests
    /// must be equal too: if not, the files differ).
    pub fn same_selection(&self, other: &DataRecord) -> bool {
        self.source == other.source
            && self.synthetic == other.synthetic
            && self.rule == other.rule
            && (self.train_examples, self.validation_examples) == (other.train_examples, other.validation_examples)
            && self.files.iter().map(|f| &f.file).eq(other.files.iter().map(|f| &f.file))
    }

    /// What differs from `other` (a record of the same selection), in words: the first file whose
    /// SHA-256 differs, or the first digest; `None` when they are equal.
    pub fn difference(&self, other: &DataRecord) -> Option<String> {
        if let Some((a, b)) = self.files.iter().zip(&other.files).find(|(a, b)| a.sha256 != b.sha256) {
            return Some(format!("{} has SHA-256 {} here but {} there", a.file, a.sha256, b.sha256));
        }
        let digests = |r: &DataRecord| [r.train_rows_sha256.clone(), r.validation_rows_sha256.clone(), r.random_labels_sha256.clone(), Some(r.train_features_sha256.clone()), Some(r.train_labels_sha256.clone())];
        let names = ["training rows", "validation rows", "replaced labels", "training features", "training labels"];
        digests(self).into_iter().zip(digests(other)).zip(names).find(|((a, b), _)| a != b).map(|((a, b), n)| format!("the {n} differ (SHA-256 {} vs {})", a.unwrap_or_default(), b.unwrap_or_default()))
    }
}
