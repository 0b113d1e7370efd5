//! Data sets as the backends see them: features (f32, or u8 pixels normalised on the fly) and class labels.
//!
//! Where they come from: [`synthetic`] generates 2-D sets (spirals, circles, XOR, blobs) anywhere;
//! [`idx`] reads MNIST-style IDX files (plain or gzipped) from bytes; [`prepare`] turns a real data set
//! into seeded, stratified train/validation/test [`Dataset`]s with optional random labels
//! (see `docs/data.md`).
//!
//! A [`Dataset`] is immutable once built. The GPU backend uploads it once as 32-bit words
//! ([`Dataset::gpu_words`]): f32 features as their bits, u8 features packed four to a word (a 28×28
//! image is 196 words), and both backends decode a feature with the same rule ([`Dataset::feature`]).

use crate::error::{LabError, Result};

pub mod export;
pub mod idx;
pub mod pinned;
pub mod prepare;
pub mod provenance;
pub mod synthetic;

#[cfg(not(target_arch = "wasm32"))]
pub use prepare::{load_idx_files, load_named};
pub use prepare::{DataShape, DatasetConfig, IdxFiles, Normalise, PrepareOptions, PreparedData, RawData, RealDataset, SubsetRule, ValidationSource};
pub use provenance::{DataRecord, FileRecord};
pub use synthetic::{blobs, circles, two_spirals, xor, SyntheticData};

/// How the features of a data set are stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// `n × dim` floats, row-major.
    F32(Vec<f32>),
    /// `n × dim` bytes, row-major; feature `c` = `byte * scale[c] + shift[c]` (e.g. scale = 1/(255σ_c),
    /// shift = −μ_c/σ_c; the same values in every column for a global normalisation).
    U8 {
        /// The raw bytes.
        bytes: Vec<u8>,
        /// Per-feature multiplier (length `dim`).
        scale: Vec<f32>,
        /// Per-feature offset added after scaling (length `dim`).
        shift: Vec<f32>,
    },
}

impl Features {
    /// u8 features with one scale and shift for every column.
    pub fn u8_uniform(bytes: Vec<u8>, dim: usize, scale: f32, shift: f32) -> Self {
        Features::U8 { bytes, scale: vec![scale; dim], shift: vec![shift; dim] }
    }
}

/// Feature storage codes shared with `shaders/gather.wgsl`.
pub mod format {
    /// Features are f32 bit patterns, one per word.
    pub const F32: u32 = 0;
    /// Features are bytes, four per word, little-endian within the word.
    pub const U8: u32 = 1;
}

/// A labelled data set of `n` examples with `dim` features and `classes` classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Human-readable name (shown in the page and in metrics).
    pub name: String,
    /// Number of examples.
    pub n: usize,
    /// Features per example.
    pub dim: usize,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// The features.
    pub features: Features,
    /// One label per example.
    pub labels: Vec<u32>,
}

impl Dataset {
    /// Builds a data set and checks that sizes and labels agree.
    pub fn new(name: impl Into<String>, dim: usize, classes: usize, features: Features, labels: Vec<u32>) -> Result<Self> {
        let n = labels.len();
        let len = match &features {
            Features::F32(v) => v.len(),
            Features::U8 { bytes, .. } => bytes.len(),
        };
        if dim == 0 {
            return Err(LabError::Data("a data set needs at least one feature (dim = 0)".into()));
        }
        if let Features::U8 { scale, shift, .. } = &features {
            if scale.len() != dim || shift.len() != dim {
                return Err(LabError::Data(format!(
                    "u8 features need {dim} scales and shifts (one per feature), got {} and {}",
                    scale.len(),
                    shift.len()
                )));
            }
            if let Some(c) = (0..dim).find(|&c| !scale[c].is_finite() || !shift[c].is_finite()) {
                return Err(LabError::Data(format!("the normalisation of feature {c} is not finite (scale {}, shift {})", scale[c], shift[c])));
            }
        }
        if len != n * dim {
            return Err(LabError::Data(format!(
                "{n} labels × {dim} features need {} feature values, got {len}",
                n * dim
            )));
        }
        if let Some((i, &y)) = labels.iter().enumerate().find(|(_, &y)| y as usize >= classes) {
            return Err(LabError::Data(format!("label {y} of example {i} is not below the class count {classes}")));
        }
        if let Features::F32(v) = &features {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(LabError::Data(format!(
                    "feature {} of example {} is not finite ({})",
                    i % dim,
                    i / dim,
                    v[i]
                )));
            }
        }
        Ok(Dataset { name: name.into(), n, dim, classes, features, labels })
    }

    /// Feature `col` of example `row`, decoded exactly as the GPU's gather kernel decodes it.
    #[inline]
    pub fn feature(&self, row: usize, col: usize) -> f32 {
        match &self.features {
            Features::F32(v) => v[row * self.dim + col],
            Features::U8 { bytes, scale, shift } => bytes[row * self.dim + col] as f32 * scale[col] + shift[col],
        }
    }

    /// Storage format code (see [`format`](mod@format)).
    pub fn format(&self) -> u32 {
        match self.features {
            Features::F32(_) => format::F32,
            Features::U8 { .. } => format::U8,
        }
    }

    /// 32-bit words per example in [`Dataset::gpu_words`].
    pub fn words_per_row(&self) -> usize {
        match self.features {
            Features::F32(_) => self.dim,
            Features::U8 { .. } => self.dim.div_ceil(4),
        }
    }

    /// Per-feature `(scale, shift)` of u8 features; `None` for f32 features.
    pub fn normalisation(&self) -> Option<(&[f32], &[f32])> {
        match &self.features {
            Features::F32(_) => None,
            Features::U8 { scale, shift, .. } => Some((scale, shift)),
        }
    }

    /// The features as the GPU holds them: f32 bits; or bytes packed four per word (rows padded to whole
    /// words) followed by the normalisation table, `dim` scale bits then `dim` shift bits, at word
    /// `n × words_per_row` (so the gather kernel needs no extra binding).
    pub fn gpu_words(&self) -> Vec<u32> {
        match &self.features {
            Features::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
            Features::U8 { bytes, scale, shift } => {
                let wpr = self.words_per_row();
                let mut out = vec![0u32; self.n * wpr];
                for r in 0..self.n {
                    for c in 0..self.dim {
                        out[r * wpr + c / 4] |= (bytes[r * self.dim + c] as u32) << (8 * (c % 4));
                    }
                }
                out.extend(scale.iter().chain(shift).map(|v| v.to_bits()));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_features_pack_four_per_word_little_endian() {
        let bytes: Vec<u8> = (1..=10).collect();
        let scale = vec![0.5, 0.5, 0.25, 1.0, 2.0];
        let shift = vec![-1.0, 0.0, 0.0, 0.0, 3.0];
        let d = Dataset::new("t", 5, 3, Features::U8 { bytes, scale: scale.clone(), shift: shift.clone() }, vec![0, 2]).unwrap();
        assert_eq!(d.words_per_row(), 2);
        let words = d.gpu_words();
        assert_eq!(words[..4], [0x04030201, 0x05, 0x09080706, 0x0a]);
        let table: Vec<f32> = words[4..].iter().map(|&w| f32::from_bits(w)).collect();
        assert_eq!(table, [scale, shift].concat(), "the per-feature table follows the rows");
        assert_eq!(d.feature(1, 2), 8.0 * 0.25);
        assert_eq!(d.feature(1, 4), 10.0 * 2.0 + 3.0);
    }

    #[test]
    fn u8_normalisation_must_cover_every_feature() {
        let e = Dataset::new("t", 2, 2, Features::U8 { bytes: vec![1, 2], scale: vec![1.0], shift: vec![0.0, 0.0] }, vec![0]).unwrap_err();
        assert!(e.to_string().contains("2 scales and shifts"), "{e}");
    }

    #[test]
    fn a_label_out_of_range_is_refused_with_its_position() {
        let e = Dataset::new("t", 1, 2, Features::F32(vec![0.0, 1.0]), vec![0, 2]).unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");
    }

    #[test]
    fn non_finite_features_are_refused() {
        let e = Dataset::new("t", 2, 2, Features::F32(vec![0.0, f32::NAN]), vec![0]).unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
    }
}
