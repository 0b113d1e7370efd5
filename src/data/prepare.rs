//! From a real data set's IDX files to the train / validation / test [`Dataset`]s a run uses.
//!
//! [`prepare`] takes the raw training and test files ([`RawData`]) and, with the default protocol
//! ([`SubsetRule::Stratified`], [`ValidationSource::TrainFile`]):
//! 1. holds out a **stratified** validation split of the training file (per-class counts proportional to
//!    the file's, by largest remainder, so the total is exact),
//! 2. draws a **stratified** training subset of `train_size` examples from what is left (disjoint from the
//!    validation split by construction),
//! 3. replaces the labels of exactly `round(p · train_size)` training examples, chosen uniformly, by a
//!    **different** class drawn uniformly among the others, and keeps the mask and the clean labels, so
//!    accuracy on the corrupted and on the clean examples can be reported apart,
//! 4. **normalises** with one scale and shift computed on the training subset's pixels (global mean μ and
//!    standard deviation σ of byte/255: feature = byte · 1/(255σ) − μ/σ), applied to all three splits;
//!    the bytes stay bytes ([`Features::U8`]) so the GPU holds four pixels per word.
//!
//! [`SubsetRule::First`] takes the first N examples in file order instead (and the last V of the training
//! file for validation); [`ValidationSource::TestFile`] validates on the official test split (all of it, or V
//! of it by the same rule). Everything is seeded by one `seed` with ChaCha8 streams (0: the training file's
//! classes, 1: random labels, 2: the test file's classes) and only draws 32-bit ranges, so the page (wasm32)
//! and the CLI choose the same examples. What was chosen is recorded ([`PreparedData::record`]).
//! [`DatasetConfig`] is the serde face; [`load_named`] reads the gzipped files of `scripts/fetch-data` (checked
//! against their pins) or IDX files of your own ([`load_idx_files`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::idx::{IdxImages, LabelledImages};
use super::pinned::pinned_sha256;
use super::provenance::{DataRecord, FileRecord};
use super::{Dataset, Features};
use crate::error::{LabError, Result};

/// A real data set: one the lab knows how to fetch, or IDX files of your own (`"idx"`, with `files`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RealDataset {
    /// Fashion-MNIST (Zalando): 28×28 greyscale clothing images, 10 classes; MIT licence.
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    /// MNIST handwritten digits: 28×28 greyscale, 10 classes; CC BY-SA 3.0.
    #[serde(rename = "mnist")]
    Mnist,
    /// Any IDX pair of unsigned-byte images and labels named in the config's `files` (read natively).
    #[serde(rename = "idx")]
    Idx,
}

impl RealDataset {
    /// The data sets the lab fetches (`scripts/fetch-data`) and the page downloads.
    pub const ALL: [RealDataset; 2] = [RealDataset::FashionMnist, RealDataset::Mnist];
    /// The IDX file names, gzipped, in the order training images, training labels, test images, test labels.
    pub const FILES: [&'static str; 4] = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];

    /// The name in configs, and the folder under the data directory (`www/data/<name>/`).
    pub fn name(self) -> &'static str {
        match self {
            RealDataset::FashionMnist => "fashion-mnist",
            RealDataset::Mnist => "mnist",
            RealDataset::Idx => "idx",
        }
    }

    /// What the files of a data set the lab fetches hold; `None` for your own files (read from their headers).
    pub fn known_shape(self) -> Option<DataShape> {
        match self {
            RealDataset::FashionMnist | RealDataset::Mnist => Some(DataShape { train_len: 60_000, test_len: 10_000, dim: 784, classes: 10 }),
            RealDataset::Idx => None,
        }
    }
}

/// How pixel bytes become features: `byte · scale_c + shift_c` per pixel c (what the GPU's gather decodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// byte / 255, in [0, 1].
    UnitRange,
    /// (byte/255 − μ) / σ with the global mean and standard deviation of the training subset's pixels.
    #[default]
    Global,
    /// (byte/255 − μ_c) / σ_c with each pixel's own mean and standard deviation over the training subset;
    /// a pixel that is constant there (σ_c = 0, e.g. MNIST's borders) becomes the feature 0.
    PerPixel,
}

/// What a data set's files hold: examples in the training and test files, features per example, classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataShape {
    /// Examples in the training file.
    pub train_len: usize,
    /// Examples in the test file (0: no test file).
    pub test_len: usize,
    /// Features per example (the product of an image's dimensions).
    pub dim: usize,
    /// Classes: one more than the largest label of either file.
    pub classes: usize,
}

/// IDX files of your own (`"name": "idx"`): unsigned-byte images with 1 to 3 dimensions per example
/// (`n × d`, `n × rows × cols` or `n × rows × cols × channels`) and unsigned-byte labels. Paths are
/// relative to the working directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxFiles {
    /// The training images (plain or gzipped IDX).
    pub train_images: String,
    /// The training labels.
    pub train_labels: String,
    /// The test images (optional; needed for `validation_from: "test_file"` and test evaluations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<String>,
    /// The test labels (with `test_images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_labels: Option<String>,
    /// What the files hold, written in by the lab when it first reads them ([`DatasetConfig::resolve`]) so
    /// saved results say it and a report needs no files; given in a config, it must match the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<DataShape>,
}

/// How the training examples (and a validation split held out of the training file) are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubsetRule {
    /// Per-class counts proportional to the file's (largest remainder), examples drawn at random within
    /// each class by the seed; training and held-out validation are disjoint.
    #[default]
    Stratified,
    /// In file order, as reference implementations do: training = the first N examples of the training
    /// file; a validation split held out of the training file = its last V examples (disjoint while
    /// N + V ≤ the file's size); validation from the test file = its first V examples.
    First,
}

/// Where the validation examples come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationSource {
    /// Held out of the training file, disjoint from the training examples.
    #[default]
    TrainFile,
    /// The official test split: all of it, or `validation_size` (or `validation_fraction` of it) examples
    /// chosen by the subset rule. The training subset is then drawn from the whole training file.
    TestFile,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The serde configuration of a real data set. Read it, [`validate`](DatasetConfig::validate) it, then
/// [`load_named`] (native) or [`RawData::from_files`] + [`prepare`] (bytes from anywhere, e.g. the page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `"fashion-mnist"`, `"mnist"`, or `"idx"` for files of your own (then `files` names them).
    pub name: RealDataset,
    /// The IDX files of `"name": "idx"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<IdxFiles>,
    /// Training examples N, a subset of the training file (by `subset`); absent: all not held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Validation examples (from the file `validation_from` names); absent and no fraction: none held out
    /// of the training file, or the whole test file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_size: Option<usize>,
    /// Share of the validation file taken for validation, in [0, 1) (rounded); exclusive with `validation_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_fraction: Option<f64>,
    /// Share p of the training examples whose label is replaced by a different random class, in [0, 1].
    #[serde(default)]
    pub random_label_fraction: f64,
    /// Seed of the subset, split and random-label draws.
    #[serde(default)]
    pub seed: u64,
    /// Feature normalisation (default `"global"`: mean 0, std 1 over the training pixels).
    #[serde(default)]
    pub normalise: Normalise,
    /// How training (and held-out validation) examples are chosen: `"stratified"` (default) or `"first"`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub subset: SubsetRule,
    /// Where validation examples come from: `"train_file"` (default, held out) or `"test_file"`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub validation_from: ValidationSource,
}

impl DatasetConfig {
    /// A config with every optional field at its default: all of the training file, no validation split,
    /// clean labels, seed 0, global normalisation, stratified.
    pub fn new(name: RealDataset) -> Self {
        DatasetConfig {
            name,
            files: None,
            train_size: None,
            validation_size: None,
            validation_fraction: None,
            random_label_fraction: 0.0,
            seed: 0,
            normalise: Normalise::Global,
            subset: SubsetRule::Stratified,
            validation_from: ValidationSource::TrainFile,
        }
    }

    /// Parses JSON and validates every field (errors name the field under `data.`).
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: DatasetConfig = serde_json::from_str(text)
            .map_err(|e| LabError::config("data", format!("{e} (line {}, column {})", e.line(), e.column())))?;
        cfg.validate("data")?;
        Ok(cfg)
    }

    /// What the data set's files hold: known for the sets the lab fetches, read from the files' headers
    /// for your own ([`DatasetConfig::resolve`]); `None` until then.
    pub fn shape(&self) -> Option<DataShape> {
        self.name.known_shape().or_else(|| self.files.as_ref().and_then(|f| f.shape))
    }

    /// Validation examples, out of the file `validation_from` names.
    pub fn validation_len(&self, shape: &DataShape) -> usize {
        let pool = self.validation_pool(shape);
        match (self.validation_size, self.validation_fraction) {
            (Some(v), _) => v,
            (None, Some(f)) => (f * pool as f64).round() as usize,
            (None, None) if self.validation_from == ValidationSource::TestFile => pool,
            (None, None) => 0,
        }
    }

    /// Examples of the file validation is taken from.
    fn validation_pool(&self, shape: &DataShape) -> usize {
        match self.validation_from {
            ValidationSource::TrainFile => shape.train_len,
            ValidationSource::TestFile => shape.test_len,
        }
    }

    /// Examples of the training file held out for validation (none when validation comes from the test file).
    pub fn held_out_len(&self, shape: &DataShape) -> usize {
        match self.validation_from {
            ValidationSource::TrainFile => self.validation_len(shape),
            ValidationSource::TestFile => 0,
        }
    }

    /// Training examples N.
    pub fn train_len_of(&self, shape: &DataShape) -> usize {
        self.train_size.unwrap_or_else(|| shape.train_len.saturating_sub(self.held_out_len(shape)))
    }

    /// Training examples N (for the trainer's batch-size checks; 0 while the files' shape is unknown).
    pub fn len(&self) -> usize {
        self.shape().map_or(0, |s| self.train_len_of(&s))
    }

    /// True when the configuration would give no training example (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every field against the data set's sizes; errors name the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |f: &str| format!("{prefix}.{f}");
        let name = self.name.name();
        match (self.name, &self.files) {
            (RealDataset::Idx, None) => {
                return Err(LabError::config(field("files"), "`\"name\": \"idx\"` needs `files`: {\"train_images\": PATH, \"train_labels\": PATH, \"test_images\": PATH, \"test_labels\": PATH} (test files optional)"))
            }
            (RealDataset::Idx, Some(f)) => {
                for (what, p) in [("train_images", Some(&f.train_images)), ("train_labels", Some(&f.train_labels)), ("test_images", f.test_images.as_ref()), ("test_labels", f.test_labels.as_ref())] {
                    if p.is_some_and(|p| p.trim().is_empty()) {
                        return Err(LabError::config(field(&format!("files.{what}")), "must be a file path, got an empty string"));
                    }
                }
                if f.test_images.is_some() != f.test_labels.is_some() {
                    return Err(LabError::config(field("files"), "give both test_images and test_labels, or neither"));
                }
            }
            (_, Some(_)) => return Err(LabError::config(field("files"), format!("only with `\"name\": \"idx\"`: {name} is read from the data directory"))),
            (_, None) => {}
        }
        let Some(shape) = self.shape() else {
            return Err(LabError::config(
                field("files"),
                "the files have not been read yet: `sgd-lab` reads them (and records what they hold) before a run; the page cannot read files of your own, only fashion-mnist and mnist",
            ));
        };
        let (pool, test_pool) = (shape.train_len, shape.test_len);
        if let Some(f) = self.validation_fraction {
            if self.validation_size.is_some() {
                return Err(LabError::config(field("validation_fraction"), "set either validation_size or validation_fraction, not both"));
            }
            if !f.is_finite() || !(0.0..1.0).contains(&f) {
                return Err(LabError::config(field("validation_fraction"), format!("must be in [0, 1), got {f}")));
            }
        }
        let v = self.validation_len(&shape);
        let v_name = if self.validation_size.is_some() { "validation_size" } else { "validation_fraction" };
        match self.validation_from {
            ValidationSource::TrainFile if v >= pool => {
                return Err(LabError::config(field(v_name), format!("holds out {v} of the {pool} training examples of {name}; leave at least one for training")));
            }
            ValidationSource::TestFile if test_pool == 0 => {
                return Err(LabError::config(field("validation_from"), format!("\"test_file\" needs a test file, and {name} has none here (add files.test_images and files.test_labels)")));
            }
            ValidationSource::TestFile if v == 0 || v > test_pool => {
                return Err(LabError::config(field(v_name), format!("must select between 1 and the {test_pool} examples of the {name} test file, got {v}")));
            }
            _ => {}
        }
        let held = self.held_out_len(&shape);
        if let Some(n) = self.train_size {
            if n == 0 || n > pool - held {
                let why = if held > 0 { format!("{pool} training examples of {name} less {held} held out for validation") } else { format!("the {pool} training examples of {name}") };
                return Err(LabError::config(field("train_size"), format!("must be between 1 and {} ({why}), got {n}", pool - held)));
            }
            let c = shape.classes;
            if self.subset == SubsetRule::Stratified && n < c {
                return Err(LabError::config(
                    field("train_size"),
                    format!("{n} examples cannot hold one of each of the {c} classes of {name}; use at least {c} (or \"subset\": \"first\")"),
                ));
            }
        }
        let p = self.random_label_fraction;
        if !p.is_finite() || !(0.0..=1.0).contains(&p) {
            return Err(LabError::config(field("random_label_fraction"), format!("must be in [0, 1], got {p}")));
        }
        Ok(())
    }

    /// The options [`prepare`] takes, for files that hold `shape`.
    pub fn options(&self, shape: &DataShape) -> PrepareOptions {
        PrepareOptions {
            train_size: self.train_len_of(shape),
            validation_size: self.validation_len(shape),
            random_label_fraction: self.random_label_fraction,
            seed: self.seed,
            normalise: self.normalise,
            subset: self.subset,
            validation_from: self.validation_from,
        }
    }
}

/// The options of [`prepare`], with sizes resolved (default: one training example, nothing else).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrepareOptions {
    /// Training examples N.
    pub train_size: usize,
    /// Validation examples (0: no validation split).
    pub validation_size: usize,
    /// Share p of training labels replaced by a different random class; exactly round(p·N) of them.
    pub random_label_fraction: f64,
    /// Seed of every draw.
    pub seed: u64,
    /// Feature normalisation.
    pub normalise: Normalise,
    /// How examples are chosen.
    pub subset: SubsetRule,
    /// Where validation examples come from.
    pub validation_from: ValidationSource,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            train_size: 1,
            validation_size: 0,
            random_label_fraction: 0.0,
            seed: 0,
            normalise: Normalise::Global,
            subset: SubsetRule::Stratified,
            validation_from: ValidationSource::TrainFile,
        }
    }
}

/// A real data set as read from its IDX files: the training file and the test file (empty when a data
/// set of your own has none), and what was read ([`FileRecord`]s: SHA-256 and pins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawData {
    /// Name used for the prepared data sets (e.g. "fashion-mnist").
    pub name: String,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// The training file's images and labels.
    pub train: LabelledImages,
    /// The test file's images and labels (no example: no test file).
    pub test: LabelledImages,
    /// The files read, in the order training images, training labels, test images, test labels.
    pub files: Vec<FileRecord>,
}

impl RawData {
    /// Pairs parsed training and test files, checking that their images have the same size.
    pub fn new(name: impl Into<String>, classes: usize, train: LabelledImages, test: LabelledImages) -> Result<Self> {
        let name = name.into();
        let (a, b) = (&train.images, &test.images);
        if (a.rows, a.cols) != (b.rows, b.cols) {
            return Err(LabError::Data(format!(
                "{name}: training images are {}×{} but test images are {}×{}",
                a.rows, a.cols, b.rows, b.cols
            )));
        }
        Ok(RawData { name, classes, train, test, files: Vec::new() })
    }

    /// Parses the four files of `dataset` (plain or gzipped bytes, in the order of [`RealDataset::FILES`])
    /// and records each decompressed file's SHA-256 beside its pin ([`RawData::check_pins`] refuses
    /// others). This is the path of the page, which fetches the bytes itself.
    pub fn from_files(dataset: RealDataset, train_images: &[u8], train_labels: &[u8], test_images: &[u8], test_labels: &[u8]) -> Result<Self> {
        let name = dataset.name();
        let shape = dataset.known_shape().ok_or_else(|| LabError::config("dataset.name", "files of your own are read by name (\"idx\" with `files`), natively"))?;
        let names: Vec<String> = RealDataset::FILES.iter().map(|f| format!("{name}/{f}")).collect();
        let mut files = Vec::new();
        let mut plain = Vec::new();
        for (i, bytes) in [train_images, train_labels, test_images, test_labels].into_iter().enumerate() {
            let content = super::idx::decompress(&names[i], bytes)?;
            let stem = RealDataset::FILES[i].trim_end_matches(".gz");
            files.push(FileRecord::of(&format!("{name}/{stem}"), &content, pinned_sha256(name, stem)));
            plain.push(content);
        }
        let c = shape.classes;
        let train = LabelledImages::parse(&format!("{name} training set"), &names[0], &plain[0], &names[1], &plain[1], c)?;
        let test = LabelledImages::parse(&format!("{name} test set"), &names[2], &plain[2], &names[3], &plain[3], c)?;
        Ok(RawData { files, ..Self::new(name, c, train, test)? })
    }

    /// Refuses the data if a file's SHA-256 is not the one the lab pins for it; `how_to_accept` is appended
    /// to the message (e.g. the CLI's flag that accepts other files).
    pub fn check_pins(&self, how_to_accept: &str) -> Result<()> {
        match self.files.iter().find(|f| f.matches_pin() == Some(false)) {
            Some(f) => Err(LabError::Data(format!(
                "{}: its SHA-256 is {}, but the lab pins {} (the file scripts/fetch-data fetches): fetch it again with `scripts/fetch-data --force`{how_to_accept}",
                f.file,
                f.sha256,
                f.pinned_sha256.as_deref().unwrap_or("?")
            ))),
            None => Ok(()),
        }
    }

    /// Features per example.
    pub fn dim(&self) -> usize {
        self.train.images.dim()
    }

    /// What the files hold.
    pub fn shape(&self) -> DataShape {
        DataShape { train_len: self.train.len(), test_len: self.test.len(), dim: self.dim(), classes: self.classes }
    }
}

/// The data of one run: training, validation and test sets, and what was done to the training labels.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedData {
    /// The training set (N examples, labels after corruption).
    pub train: Dataset,
    /// The validation set, when one was taken (clean labels).
    pub validation: Option<Dataset>,
    /// The whole test file (clean labels); no example when the data set has no test file.
    pub test: Dataset,
    /// For each training example, its row in the training file (ascending).
    pub train_rows: Vec<u32>,
    /// For each validation example, its row in the file `validation_from` names (ascending; disjoint from
    /// `train_rows` when that is the training file).
    pub validation_rows: Vec<u32>,
    /// The file the validation rows index.
    pub validation_from: ValidationSource,
    /// For each training example, whether its label was replaced by a random different class.
    pub corrupted: Vec<bool>,
    /// The true label of each training example (equal to `train.labels` where not corrupted).
    pub clean_labels: Vec<u32>,
    /// Mean μ of the training pixels (as byte/255).
    pub pixel_mean: f64,
    /// Standard deviation σ of the training pixels (as byte/255).
    pub pixel_std: f64,
    /// What anyone needs to rebuild these sets elsewhere: the files' SHA-256, the rule, digests of the rows.
    pub record: DataRecord,
}

impl PreparedData {
    /// Number of training labels replaced.
    pub fn corrupted_count(&self) -> usize {
        self.corrupted.iter().filter(|&&c| c).count()
    }

    /// Training examples (positions in `train`) whose label was replaced, ascending.
    pub fn corrupted_positions(&self) -> Vec<usize> {
        self.corrupted.iter().enumerate().filter(|(_, &c)| c).map(|(i, _)| i).collect()
    }

    /// The training examples whose labels were kept, as a data set (for accuracy on the clean part).
    pub fn clean_train(&self) -> Result<Dataset> {
        let rows: Vec<usize> = self.corrupted.iter().enumerate().filter(|(_, &c)| !c).map(|(i, _)| i).collect();
        subset(&self.train, &rows, format!("{} (clean labels)", self.train.name))
    }

    /// The training examples whose labels were replaced, with the random labels they were trained on
    /// (accuracy here measures memorisation); `None` when no label was replaced.
    pub fn corrupted_train(&self) -> Result<Option<Dataset>> {
        let rows = self.corrupted_positions();
        if rows.is_empty() {
            return Ok(None);
        }
        subset(&self.train, &rows, format!("{} (random labels)", self.train.name)).map(Some)
    }
}

/// Examples `rows` of `data` (in that order), with the same scale/shift.
pub fn subset(data: &Dataset, rows: &[usize], name: impl Into<String>) -> Result<Dataset> {
    let d = data.dim;
    if let Some(&r) = rows.iter().find(|&&r| r >= data.n) {
        return Err(LabError::Data(format!("row {r} is outside '{}' ({} examples)", data.name, data.n)));
    }
    let labels = rows.iter().map(|&r| data.labels[r]).collect();
    let features = match &data.features {
        Features::F32(v) => Features::F32(rows.iter().flat_map(|&r| v[r * d..(r + 1) * d].iter().copied()).collect()),
        Features::U8 { bytes, scale, shift } => Features::U8 {
            bytes: rows.iter().flat_map(|&r| bytes[r * d..(r + 1) * d].iter().copied()).collect(),
            scale: scale.clone(),
            shift: shift.clone(),
        },
    };
    Dataset::new(name, d, data.classes, features, labels)
}

/// Splits `total` among classes of sizes `class_counts` in proportion (largest remainder: each share is
/// the floor or the ceiling of `total · n_c / n`, ties to the lower class), so the shares add up to
/// `total` exactly. `total` must not exceed the sum of `class_counts`.
pub fn stratified_counts(class_counts: &[usize], total: usize) -> Vec<usize> {
    let n: u128 = class_counts.iter().map(|&c| c as u128).sum();
    if n == 0 {
        return vec![0; class_counts.len()];
    }
    let mut shares: Vec<usize> = Vec::with_capacity(class_counts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(class_counts.len());
    for (c, &count) in class_counts.iter().enumerate() {
        let num = total as u128 * count as u128;
        shares.push((num / n) as usize);
        remainders.push((num % n, c));
    }
    let left = total - shares.iter().sum::<usize>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, c) in remainders.iter().take(left) {
        shares[c] += 1;
    }
    shares
}

/// A uniform index below `n` (n ≤ u32::MAX) drawn as a 32-bit range, the same on wasm32 and 64-bit.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    rng.random_range(0..n as u32) as usize
}

/// Fisher–Yates shuffle with 32-bit draws.
fn shuffle<T>(rng: &mut ChaCha8Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i + 1);
        v.swap(i, j);
    }
}

/// One scale and shift for all features: `(scale, shift, μ, σ)` with μ, σ of byte/255 over `bytes`.
/// Per-pixel `(scale, shift)` for `how`, and the global pixel mean and std (as byte/255) of `bytes` (rows of `dim`).
fn normalisation(what: &str, bytes: &[u8], dim: usize, how: Normalise) -> Result<(Vec<f32>, Vec<f32>, f64, f64)> {
    let m = bytes.len() as u128;
    let (sum, sumsq) = bytes.iter().fold((0u128, 0u128), |(s, q), &b| (s + b as u128, q + (b as u128) * (b as u128)));
    let (mean_b, var_b) = if m == 0 {
        (0.0, 0.0)
    } else {
        // Exact in integers: var = (m·Σb² − (Σb)²) / m².
        (sum as f64 / m as f64, (m * sumsq - sum * sum) as f64 / (m as f64 * m as f64))
    };
    let std_b = var_b.sqrt();
    match how {
        Normalise::UnitRange => Ok((vec![1.0 / 255.0; dim], vec![0.0; dim], mean_b / 255.0, std_b / 255.0)),
        Normalise::PerPixel => {
            let rows = (bytes.len() / dim.max(1)) as u128;
            let mut sum = vec![0u128; dim];
            let mut sumsq = vec![0u128; dim];
            for row in bytes.chunks_exact(dim) {
                for (c, &b) in row.iter().enumerate() {
                    sum[c] += b as u128;
                    sumsq[c] += (b as u128) * (b as u128);
                }
            }
            let (mut scale, mut shift) = (vec![0f32; dim], vec![0f32; dim]);
            for c in 0..dim {
                if rows == 0 {
                    break;
                }
                let var = (rows * sumsq[c] - sum[c] * sum[c]) as f64 / (rows as f64 * rows as f64);
                if var > 0.0 {
                    let (mean, std) = (sum[c] as f64 / rows as f64, var.sqrt());
                    scale[c] = (1.0 / std) as f32;
                    shift[c] = (-mean / std) as f32;
                }
            }
            Ok((scale, shift, mean_b / 255.0, std_b / 255.0))
        }
        Normalise::Global => {
            if std_b <= 0.0 {
                return Err(LabError::Data(format!(
                    "{what}: every training pixel has the same value ({mean_b}), so it cannot be normalised to std 1; use \"normalise\": \"unit_range\" or more training examples"
                )));
            }
            Ok((vec![(1.0 / std_b) as f32; dim], vec![(-mean_b / std_b) as f32; dim], mean_b / 255.0, std_b / 255.0))
        }
    }
}

fn gather_rows(images: &IdxImages, rows: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * images.dim());
    for &r in rows {
        out.extend_from_slice(images.image(r as usize));
    }
    out
}

/// Rows of a stratified draw, ascending: `take[c]` examples of class c, taken in the order of `by_class`
/// (already shuffled), after skipping its first `skip[c]`.
fn take_by_class(by_class: &[Vec<u32>], skip: &[usize], take: &[usize]) -> Vec<u32> {
    let mut rows: Vec<u32> = by_class.iter().enumerate().flat_map(|(k, r)| r[skip[k]..skip[k] + take[k]].iter().copied()).collect();
    rows.sort_unstable();
    rows
}

/// The rows of each class of `labels`, shuffled by ChaCha8(seed) on `stream` (one Fisher–Yates per class,
/// in class order); labels at or above `classes` are refused, naming `what`.
fn shuffled_by_class(labels: &[u8], classes: usize, seed: u64, stream: u64, what: &str) -> Result<Vec<Vec<u32>>> {
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        let y = y as usize;
        if y >= classes {
            return Err(LabError::Data(format!("{what}: label {y} of example {i} is not below the class count {classes}")));
        }
        by_class[y].push(i as u32);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    for rows in &mut by_class {
        shuffle(&mut rng, rows);
    }
    Ok(by_class)
}

/// Builds the training, validation and test sets of a run from a raw data set (see the module docs).
pub fn prepare(raw: &RawData, opts: &PrepareOptions) -> Result<PreparedData> {
    let pool = raw.train.len();
    let (n, v, c) = (opts.train_size, opts.validation_size, raw.classes);
    if pool > u32::MAX as usize || raw.test.len() > u32::MAX as usize {
        return Err(LabError::Data(format!("{}: {pool} training examples are more than the lab indexes", raw.name)));
    }
    let from_test = opts.validation_from == ValidationSource::TestFile;
    let held = if from_test { 0 } else { v };
    if n == 0 || n + held > pool {
        return Err(LabError::config(
            "train_size",
            format!("{n} training + {held} held-out validation examples must be at least 1 and at most the {pool} examples of the {} training file", raw.name),
        ));
    }
    if from_test && v > raw.test.len() {
        return Err(LabError::config("validation_size", format!("{v} validation examples are more than the {} of the {} test file", raw.test.len(), raw.name)));
    }
    let p = opts.random_label_fraction;
    if !p.is_finite() || !(0.0..=1.0).contains(&p) {
        return Err(LabError::config("random_label_fraction", format!("must be in [0, 1], got {p}")));
    }
    let flips = (p * n as f64).round() as usize;
    if flips > 0 && c < 2 {
        return Err(LabError::config("random_label_fraction", format!("a different random class needs at least 2 classes, {} has {c}", raw.name)));
    }

    // The training rows and the validation rows (of the training or of the test file).
    let (train_rows, validation_rows) = match opts.subset {
        SubsetRule::Stratified => {
            // Stream 0 shuffles the training file's classes: validation held out first, training from the rest.
            let by_class = shuffled_by_class(&raw.train.labels, c, opts.seed, 0, &format!("{} training file", raw.name))?;
            let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
            let val_counts = stratified_counts(&counts, held);
            let left: Vec<usize> = counts.iter().zip(&val_counts).map(|(a, b)| a - b).collect();
            let train_rows = take_by_class(&by_class, &val_counts, &stratified_counts(&left, n));
            let validation_rows = if from_test {
                // Stream 2 shuffles the test file's classes.
                let by_class = shuffled_by_class(&raw.test.labels, c, opts.seed, 2, &format!("{} test file", raw.name))?;
                let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
                take_by_class(&by_class, &vec![0; c], &stratified_counts(&counts, v))
            } else {
                take_by_class(&by_class, &vec![0; c], &val_counts)
            };
            (train_rows, validation_rows)
        }
        SubsetRule::First => {
            let validation_rows: Vec<u32> = if from_test { (0..v as u32).collect() } else { ((pool - v) as u32..pool as u32).collect() };
            ((0..n as u32).collect(), validation_rows)
        }
    };

    // Random labels: exactly `flips` distinct examples, each moved to a uniformly drawn other class.
    let clean_labels: Vec<u32> = train_rows.iter().map(|&r| raw.train.labels[r as usize] as u32).collect();
    let mut labels = clean_labels.clone();
    let mut corrupted = vec![false; n];
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(1);
    let mut positions: Vec<u32> = (0..n as u32).collect();
    for i in 0..flips {
        // Partial Fisher–Yates: positions[..flips] becomes a uniform sample without replacement.
        let j = i + below(&mut rng, n - i);
        positions.swap(i, j);
        let pos = positions[i] as usize;
        let other = below(&mut rng, c - 1) as u32;
        labels[pos] = (labels[pos] + 1 + other) % c as u32;
        corrupted[pos] = true;
    }

    // Normalisation from the training subset, applied to every split.
    let dim = raw.dim();
    let train_bytes = gather_rows(&raw.train.images, &train_rows);
    let (scale, shift, pixel_mean, pixel_std) = normalisation(&format!("{} training subset", raw.name), &train_bytes, dim, opts.normalise)?;
    let u8s = |bytes: Vec<u8>| Features::U8 { bytes, scale: scale.clone(), shift: shift.clone() };
    let mut train_name = format!("{} train (N={n}", raw.name);
    if flips > 0 {
        train_name += &format!(", {flips} random labels");
    }
    train_name += ")";
    let train = Dataset::new(train_name, dim, c, u8s(train_bytes), labels)?;
    let validation = if v > 0 {
        let file = if from_test { &raw.test } else { &raw.train };
        let labels = validation_rows.iter().map(|&r| file.labels[r as usize] as u32).collect();
        let name = if from_test { format!("{} validation (test file)", raw.name) } else { format!("{} validation", raw.name) };
        Some(Dataset::new(name, dim, c, u8s(gather_rows(&file.images, &validation_rows)), labels)?)
    } else {
        None
    };
    let test_labels = raw.test.labels.iter().map(|&y| y as u32).collect();
    let test = Dataset::new(format!("{} test", raw.name), dim, c, u8s(raw.test.images.pixels.clone()), test_labels)?;
    let record = DataRecord::of_real(raw, opts, &train, &train_rows, &validation_rows, &corrupted, pixel_mean, pixel_std);
    Ok(PreparedData { train, validation, test, train_rows, validation_rows, validation_from: opts.validation_from, corrupted, clean_labels, pixel_mean, pixel_std, record })
}

/// What `sgd-lab` adds to the error about a file that is not the pinned one.
#[cfg(not(target_arch = "wasm32"))]
const ACCEPT_FLAG: &str = ", or pass --allow-unpinned-data to use these files anyway (the results then record their SHA-256 and that they differ from the pins)";

/// Reads the four gzipped IDX files of `dataset` from `data_dir/<name>/` (as `scripts/fetch-data` lays
/// them out under `www/data`), falling back to the uncompressed names, and checks each against its
/// pinned SHA-256 unless `allow_unpinned` (the records then say which differ).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_raw(dataset: RealDataset, data_dir: &std::path::Path, allow_unpinned: bool) -> Result<RawData> {
    let read = |file: &str| -> Result<Vec<u8>> {
        let gz = data_dir.join(dataset.name()).join(file);
        let plain = gz.with_extension("");
        match std::fs::read(&gz) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && plain.is_file() => {
                std::fs::read(&plain).map_err(|e| LabError::Io(format!("cannot read {}: {e}", plain.display())))
            }
            Err(e) => Err(LabError::Io(format!(
                "cannot read {}: {e}; run scripts/fetch-data to fetch {} into www/data (or point data_dir at the folder that holds {}/)",
                gz.display(),
                dataset.name(),
                dataset.name()
            ))),
        }
    };
    if dataset == RealDataset::Idx {
        return Err(LabError::config("dataset.files", "files of your own are read with load_idx_files"));
    }
    let files: Vec<Vec<u8>> = RealDataset::FILES.iter().map(|f| read(f)).collect::<Result<_>>()?;
    let raw = RawData::from_files(dataset, &files[0], &files[1], &files[2], &files[3])?;
    if !allow_unpinned {
        raw.check_pins(ACCEPT_FLAG)?;
    }
    Ok(raw)
}

/// Reads IDX files of your own (`"name": "idx"`), plain or gzipped: unsigned-byte images of any size and
/// labels, the class count one more than the largest label of either file (at most 256). Their SHA-256
/// are recorded; nothing is pinned.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_idx_files(files: &IdxFiles) -> Result<RawData> {
    let read = |field: &str, path: &str| -> Result<(FileRecord, Vec<u8>)> {
        let bytes = std::fs::read(path).map_err(|e| LabError::Io(format!("dataset.files.{field}: cannot read {path}: {e}")))?;
        let content = super::idx::decompress(path, &bytes)?;
        Ok((FileRecord::of(path, &content, None), content))
    };
    let (r0, train_images) = read("train_images", &files.train_images)?;
    let (r1, train_labels) = read("train_labels", &files.train_labels)?;
    let images = super::idx::parse_examples(&files.train_images, &train_images)?;
    let labels = super::idx::parse_labels(&files.train_labels, &train_labels)?;
    let mut records = vec![r0, r1];
    let test = match (&files.test_images, &files.test_labels) {
        (Some(ti), Some(tl)) => {
            let (r2, test_images) = read("test_images", ti)?;
            let (r3, test_labels) = read("test_labels", tl)?;
            records.extend([r2, r3]);
            Some((super::idx::parse_examples(ti, &test_images)?, super::idx::parse_labels(tl, &test_labels)?))
        }
        _ => None,
    };
    let max = labels.iter().chain(test.iter().flat_map(|(_, l)| l.iter())).copied().max();
    let classes = max.map_or(0, |m| m as usize + 1);
    if classes < 2 {
        return Err(LabError::Data(format!("{}: the labels hold {} class{}; a classifier needs at least 2", files.train_labels, classes, if classes == 1 { "" } else { "es" })));
    }
    let train = LabelledImages::new(&format!("{} with {}", files.train_images, files.train_labels), images, labels, classes)?;
    let test = match test {
        Some((i, l)) => LabelledImages::new(&format!("{} with {}", files.test_images.as_deref().unwrap_or(""), files.test_labels.as_deref().unwrap_or("")), i, l, classes)?,
        None => LabelledImages { images: super::idx::IdxImages { n: 0, rows: train.images.rows, cols: train.images.cols, pixels: Vec::new() }, labels: Vec::new() },
    };
    Ok(RawData { files: records, ..RawData::new("idx", classes, train, test)? })
}

/// Validates `config` (fields named under `data.`), reads its files (from `data_dir` for the sets the lab
/// fetches, from `files` for your own) and prepares the run's data. Files that are not the pinned ones
/// are refused unless `allow_unpinned`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_named(config: &DatasetConfig, data_dir: &std::path::Path, allow_unpinned: bool) -> Result<PreparedData> {
    config.validate("data")?;
    let raw = match &config.files {
        Some(f) => load_idx_files(f)?,
        None => load_raw(config.name, data_dir, allow_unpinned)?,
    };
    if let Some(want) = config.files.as_ref().and_then(|f| f.shape) {
        if want != raw.shape() {
            return Err(LabError::config("dataset.files.shape", format!("the config records {want:?}, but the files hold {:?}: they changed since it was written", raw.shape())));
        }
    }
    prepare(&raw, &config.options(&raw.shape()))
}

impl DatasetConfig {
    /// For files of your own whose shape is not recorded yet: reads them and writes what they hold into
    /// `files.shape`, so the config validates (model sizes, N, B) and its results say what was read. A
    /// recorded shape is kept (a saved run's report then needs no files) and checked against the files
    /// when they are loaded ([`load_named`]). Does nothing for the data sets the lab fetches.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn resolve(&mut self) -> Result<()> {
        match self.files.as_mut() {
            Some(files) if files.shape.is_none() => {
                files.shape = Some(load_idx_files(files)?.shape());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
