//! From a real data set's IDX files to the train / validation / test [`Dataset`]s a run uses.
//!
//! [`prepare`] takes the raw training and test files ([`RawData`]) and:
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
//! Everything is seeded by one `seed` with ChaCha8 streams (0: splits, 1: random labels) and only draws
//! 32-bit ranges, so the page (wasm32) and the CLI choose the same examples.
//! [`DatasetConfig`] is the serde face; [`load_named`] reads the gzipped files of `scripts/fetch-data`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::idx::{IdxImages, LabelledImages};
use super::{Dataset, Features};
use crate::error::{LabError, Result};

/// A real data set the lab knows how to fetch and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RealDataset {
    /// Fashion-MNIST (Zalando): 28×28 greyscale clothing images, 10 classes; MIT licence.
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    /// MNIST handwritten digits: 28×28 greyscale, 10 classes; CC BY-SA 3.0.
    #[serde(rename = "mnist")]
    Mnist,
}

impl RealDataset {
    /// Every known data set.
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
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        10
    }

    /// Examples in the training file.
    pub fn train_len(self) -> usize {
        60_000
    }

    /// Examples in the test file.
    pub fn test_len(self) -> usize {
        10_000
    }

    /// Features per example (28 × 28).
    pub fn dim(self) -> usize {
        784
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

/// The serde configuration of a real data set. Read it, [`validate`](DatasetConfig::validate) it, then
/// [`load_named`] (native) or [`RawData::from_files`] + [`prepare`] (bytes from anywhere, e.g. the page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `"fashion-mnist"` or `"mnist"`.
    pub name: RealDataset,
    /// Training examples N, a stratified subset of the training file; absent: all not held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Examples of the training file held out for validation (stratified); absent and no fraction: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_size: Option<usize>,
    /// Share of the training file held out for validation, in [0, 1) (rounded); exclusive with `validation_size`.
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
}

impl DatasetConfig {
    /// A config with every optional field at its default: all of the training file, no validation split,
    /// clean labels, seed 0, global normalisation.
    pub fn new(name: RealDataset) -> Self {
        DatasetConfig {
            name,
            train_size: None,
            validation_size: None,
            validation_fraction: None,
            random_label_fraction: 0.0,
            seed: 0,
            normalise: Normalise::Global,
        }
    }

    /// Parses JSON and validates every field (errors name the field under `data.`).
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: DatasetConfig = serde_json::from_str(text)
            .map_err(|e| LabError::config("data", format!("{e} (line {}, column {})", e.line(), e.column())))?;
        cfg.validate("data")?;
        Ok(cfg)
    }

    /// Validation examples held out of a training file of `pool` examples.
    pub fn validation_len(&self, pool: usize) -> usize {
        match (self.validation_size, self.validation_fraction) {
            (Some(v), _) => v,
            (None, Some(f)) => (f * pool as f64).round() as usize,
            (None, None) => 0,
        }
    }

    /// Training examples N drawn from a training file of `pool` examples.
    pub fn train_len_of(&self, pool: usize) -> usize {
        self.train_size.unwrap_or_else(|| pool.saturating_sub(self.validation_len(pool)))
    }

    /// Training examples N (for the trainer's batch-size checks).
    pub fn len(&self) -> usize {
        self.train_len_of(self.name.train_len())
    }

    /// True when the configuration would give no training example (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every field against the data set's sizes; errors name the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |f: &str| format!("{prefix}.{f}");
        let pool = self.name.train_len();
        if let Some(f) = self.validation_fraction {
            if self.validation_size.is_some() {
                return Err(LabError::config(field("validation_fraction"), "set either validation_size or validation_fraction, not both"));
            }
            if !f.is_finite() || !(0.0..1.0).contains(&f) {
                return Err(LabError::config(field("validation_fraction"), format!("must be in [0, 1), got {f}")));
            }
        }
        let v = self.validation_len(pool);
        if v >= pool {
            let name = if self.validation_size.is_some() { "validation_size" } else { "validation_fraction" };
            return Err(LabError::config(
                field(name),
                format!("holds out {v} of the {pool} training examples of {}; leave at least one for training", self.name.name()),
            ));
        }
        if let Some(n) = self.train_size {
            if n == 0 || n > pool - v {
                return Err(LabError::config(
                    field("train_size"),
                    format!("must be between 1 and {} ({pool} training examples of {} less {v} held out for validation), got {n}", pool - v, self.name.name()),
                ));
            }
            let c = self.name.classes();
            if n < c {
                return Err(LabError::config(
                    field("train_size"),
                    format!("{n} examples cannot hold one of each of the {c} classes of {}; use at least {c}", self.name.name()),
                ));
            }
        }
        let p = self.random_label_fraction;
        if !p.is_finite() || !(0.0..=1.0).contains(&p) {
            return Err(LabError::config(field("random_label_fraction"), format!("must be in [0, 1], got {p}")));
        }
        Ok(())
    }

    /// The options [`prepare`] takes, for a training file of `pool` examples.
    pub fn options(&self, pool: usize) -> PrepareOptions {
        PrepareOptions {
            train_size: self.train_len_of(pool),
            validation_size: self.validation_len(pool),
            random_label_fraction: self.random_label_fraction,
            seed: self.seed,
            normalise: self.normalise,
        }
    }
}

/// The options of [`prepare`], with sizes resolved.
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
}

/// A real data set as read from its four IDX files: the training file and the test file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawData {
    /// Name used for the prepared data sets (e.g. "fashion-mnist").
    pub name: String,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// The training file's images and labels.
    pub train: LabelledImages,
    /// The test file's images and labels.
    pub test: LabelledImages,
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
        Ok(RawData { name, classes, train, test })
    }

    /// Parses the four files of `dataset` (plain or gzipped bytes, in the order of [`RealDataset::FILES`]).
    /// This is the path of the page, which fetches the bytes itself.
    pub fn from_files(dataset: RealDataset, train_images: &[u8], train_labels: &[u8], test_images: &[u8], test_labels: &[u8]) -> Result<Self> {
        let name = dataset.name();
        let f = |i: usize| format!("{name}/{}", RealDataset::FILES[i]);
        let c = dataset.classes();
        let train = LabelledImages::parse(&format!("{name} training set"), &f(0), train_images, &f(1), train_labels, c)?;
        let test = LabelledImages::parse(&format!("{name} test set"), &f(2), test_images, &f(3), test_labels, c)?;
        Self::new(name, c, train, test)
    }

    /// Features per example.
    pub fn dim(&self) -> usize {
        self.train.images.dim()
    }
}

/// The data of one run: training, validation and test sets, and what was done to the training labels.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedData {
    /// The training set (N examples, labels after corruption).
    pub train: Dataset,
    /// The validation set, when one was held out (clean labels).
    pub validation: Option<Dataset>,
    /// The whole test file (clean labels).
    pub test: Dataset,
    /// For each training example, its row in the training file (ascending).
    pub train_rows: Vec<u32>,
    /// For each validation example, its row in the training file (ascending; disjoint from `train_rows`).
    pub validation_rows: Vec<u32>,
    /// For each training example, whether its label was replaced by a random different class.
    pub corrupted: Vec<bool>,
    /// The true label of each training example (equal to `train.labels` where not corrupted).
    pub clean_labels: Vec<u32>,
    /// Mean μ of the training pixels (as byte/255).
    pub pixel_mean: f64,
    /// Standard deviation σ of the training pixels (as byte/255).
    pub pixel_std: f64,
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

/// Builds the training, validation and test sets of a run from a raw data set (see the module docs).
pub fn prepare(raw: &RawData, opts: &PrepareOptions) -> Result<PreparedData> {
    let pool = raw.train.len();
    let (n, v, c) = (opts.train_size, opts.validation_size, raw.classes);
    if pool > u32::MAX as usize {
        return Err(LabError::Data(format!("{}: {pool} training examples are more than the lab indexes", raw.name)));
    }
    if n == 0 || n + v > pool {
        return Err(LabError::config(
            "train_size",
            format!("{n} training + {v} validation examples must be at least 1 and at most the {pool} examples of the {} training file", raw.name),
        ));
    }
    let p = opts.random_label_fraction;
    if !p.is_finite() || !(0.0..=1.0).contains(&p) {
        return Err(LabError::config("random_label_fraction", format!("must be in [0, 1], got {p}")));
    }
    let flips = (p * n as f64).round() as usize;
    if flips > 0 && c < 2 {
        return Err(LabError::config("random_label_fraction", format!("a different random class needs at least 2 classes, {} has {c}", raw.name)));
    }

    // Stratified, disjoint validation and training rows.
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); c];
    for (i, &y) in raw.train.labels.iter().enumerate() {
        let y = y as usize;
        if y >= c {
            return Err(LabError::Data(format!("{}: training label {y} of example {i} is not below the class count {c}", raw.name)));
        }
        by_class[y].push(i as u32);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(0);
    for rows in &mut by_class {
        shuffle(&mut rng, rows);
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let val_counts = stratified_counts(&counts, v);
    let left: Vec<usize> = counts.iter().zip(&val_counts).map(|(a, b)| a - b).collect();
    let train_counts = stratified_counts(&left, n);
    let mut validation_rows = Vec::with_capacity(v);
    let mut train_rows = Vec::with_capacity(n);
    for (k, rows) in by_class.iter().enumerate() {
        validation_rows.extend_from_slice(&rows[..val_counts[k]]);
        train_rows.extend_from_slice(&rows[val_counts[k]..val_counts[k] + train_counts[k]]);
    }
    validation_rows.sort_unstable();
    train_rows.sort_unstable();

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
        let labels = validation_rows.iter().map(|&r| raw.train.labels[r as usize] as u32).collect();
        Some(Dataset::new(format!("{} validation", raw.name), dim, c, u8s(gather_rows(&raw.train.images, &validation_rows)), labels)?)
    } else {
        None
    };
    let test_labels = raw.test.labels.iter().map(|&y| y as u32).collect();
    let test = Dataset::new(format!("{} test", raw.name), dim, c, u8s(raw.test.images.pixels.clone()), test_labels)?;
    Ok(PreparedData { train, validation, test, train_rows, validation_rows, corrupted, clean_labels, pixel_mean, pixel_std })
}

/// Reads the four gzipped IDX files of `dataset` from `data_dir/<name>/` (as `scripts/fetch-data` lays
/// them out under `www/data`), falling back to the uncompressed names.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_raw(dataset: RealDataset, data_dir: &std::path::Path) -> Result<RawData> {
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
    let files: Vec<Vec<u8>> = RealDataset::FILES.iter().map(|f| read(f)).collect::<Result<_>>()?;
    RawData::from_files(dataset, &files[0], &files[1], &files[2], &files[3])
}

/// Validates `config` (fields named under `data.`), reads its files from `data_dir` and prepares the run's data.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_named(config: &DatasetConfig, data_dir: &std::path::Path) -> Result<PreparedData> {
    config.validate("data")?;
    let raw = load_raw(config.name, data_dir)?;
    prepare(&raw, &config.options(raw.train.len()))
}
