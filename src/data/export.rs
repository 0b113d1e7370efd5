//! Writes a data set as files other tools read, so a run on a synthetic set can be replayed elsewhere
//! (`sgd-lab data export`, docs/data.md "Exporting synthetic sets").
//!
//! Two layouts, each with the features as the exact f32 values the lab trains on ([`Dataset::feature`])
//! and the labels as u8:
//!
//! - IDX ([`to_idx`]): `train-features-idx2-f32` (magic `0x00000D02`, dimensions n and dim, then n × dim
//!   big-endian f32, row-major) and `train-labels-idx1-ubyte` (magic `0x00000801`, dimension n, then n bytes).
//! - NPY v1.0 ([`to_npy`]): `x.npy` (`'<f4'`, shape `(n, dim)`, C order) and `y.npy` (`'|u1'`, shape `(n,)`),
//!   each header padded with spaces and a newline to a multiple of 64 bytes, as numpy writes it.
//!
//! [`Manifest`] describes the files (`data.json`): the generator's config, sizes, per-class counts, each
//! file's byte size and SHA-256, and the SHA-256 of the features as little-endian f32 and of the labels as
//! u8, independent of the layout, so a replay can check that it regenerated the same set. Encoding is pure
//! (bytes in memory, for the page too); [`write_files`] puts them in a folder natively.

use serde::{Deserialize, Serialize};
use super::pinned::{sha256_f32_le, sha256_hex};

use super::{Dataset, SyntheticData};
use crate::error::{LabError, Result};

/// The IDX features file: f32 (type 0x0D), 2 dimensions.
pub const IDX_FEATURES_FILE: &str = "train-features-idx2-f32";
/// The IDX labels file: u8 (type 0x08), 1 dimension, as in MNIST.
pub const IDX_LABELS_FILE: &str = "train-labels-idx1-ubyte";
/// The NPY features file.
pub const NPY_FEATURES_FILE: &str = "x.npy";
/// The NPY labels file.
pub const NPY_LABELS_FILE: &str = "y.npy";
/// The description of an export (see [`manifest`]).
pub const MANIFEST_FILE: &str = "data.json";
/// Most classes an export holds: labels are written as u8.
pub const MAX_EXPORT_CLASSES: usize = 256;

/// IDX magic of an n × dim f32 matrix (type code 0x0D, 2 dimensions).
pub const IDX_F32_2D_MAGIC: u32 = 0x0000_0D02;
/// IDX magic of a u8 vector (type code 0x08, 1 dimension).
pub const IDX_U8_1D_MAGIC: u32 = 0x0000_0801;
/// The alignment of an NPY header (magic through newline), as numpy writes it.
pub const NPY_HEADER_ALIGN: usize = 64;

/// One file of an export: its name in the folder and its bytes.
pub type ExportFile = (String, Vec<u8>);

/// Which layout an export is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// MNIST-style IDX files (big-endian).
    #[default]
    Idx,
    /// numpy `.npy` files (v1.0, little-endian).
    Npy,
}

impl ExportFormat {
    /// The format's name, as `--format` takes it and `data.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Idx => "idx",
            ExportFormat::Npy => "npy",
        }
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "idx" => Ok(ExportFormat::Idx),
            "npy" => Ok(ExportFormat::Npy),
            _ => Err(LabError::config("format", format!("must be idx or npy, got {s:?}"))),
        }
    }
}

/// Refuses what the files cannot hold: more than 256 classes (labels are u8) or sizes beyond u32 (IDX).
fn check(d: &Dataset) -> Result<()> {
    if d.classes > MAX_EXPORT_CLASSES {
        return Err(LabError::Data(format!(
            "{} has {} classes; an export writes labels as u8, so at most {MAX_EXPORT_CLASSES}",
            d.name, d.classes
        )));
    }
    if u32::try_from(d.n).is_err() || u32::try_from(d.dim).is_err() {
        return Err(LabError::Data(format!("{} is {} × {}; IDX sizes are 32-bit", d.name, d.n, d.dim)));
    }
    Ok(())
}

/// The features, row-major, as the lab decodes them ([`Dataset::feature`]).
fn feature_values(d: &Dataset) -> impl Iterator<Item = f32> + '_ {
    (0..d.n).flat_map(move |r| (0..d.dim).map(move |c| d.feature(r, c)))
}

/// The labels as bytes (after [`check`], every label is below 256).
fn label_bytes(d: &Dataset) -> Vec<u8> {
    d.labels.iter().map(|&y| y as u8).collect()
}

/// The set as IDX files: `train-features-idx2-f32` (magic `0x00000D02`, n, dim as big-endian u32, then the
/// n × dim features as big-endian f32, row-major: bit for bit [`Dataset::feature`]) and
/// `train-labels-idx1-ubyte` (magic `0x00000801`, n, then one byte per label), in that order.
///
/// Errors if the set has more than 256 classes (labels are u8) or more than `u32::MAX` rows or columns.
pub fn to_idx(d: &Dataset) -> Result<Vec<ExportFile>> {
    check(d)?;
    let mut x = Vec::with_capacity(12 + 4 * d.n * d.dim);
    x.extend(IDX_F32_2D_MAGIC.to_be_bytes());
    x.extend((d.n as u32).to_be_bytes());
    x.extend((d.dim as u32).to_be_bytes());
    for v in feature_values(d) {
        x.extend(v.to_be_bytes());
    }
    let mut y = Vec::with_capacity(8 + d.n);
    y.extend(IDX_U8_1D_MAGIC.to_be_bytes());
    y.extend((d.n as u32).to_be_bytes());
    y.extend(label_bytes(d));
    Ok(vec![(IDX_FEATURES_FILE.to_string(), x), (IDX_LABELS_FILE.to_string(), y)])
}

/// An NPY v1.0 header for a C-order array of `descr` and `shape`: magic, version 1.0, the little-endian u16
/// length, then the dict padded with spaces and ended by a newline so that the whole header is a multiple
/// of 64 bytes.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', (NPY_HEADER_ALIGN - unpadded % NPY_HEADER_ALIGN) % NPY_HEADER_ALIGN));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend(b"\x93NUMPY\x01\x00");
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    debug_assert_eq!(out.len() % NPY_HEADER_ALIGN, 0);
    out
}

/// The set as NPY v1.0 files: `x.npy` (`'<f4'`, shape `(n, dim)`, C order: bit for bit
/// [`Dataset::feature`]) and `y.npy` (`'|u1'`, shape `(n,)`), in that order; `numpy.load` reads both.
///
/// Errors if the set has more than 256 classes (labels are u8).
pub fn to_npy(d: &Dataset) -> Result<Vec<ExportFile>> {
    check(d)?;
    let mut x = npy_header("<f4", &[d.n, d.dim]);
    x.reserve(4 * d.n * d.dim);
    for v in feature_values(d) {
        x.extend(v.to_le_bytes());
    }
    let mut y = npy_header("|u1", &[d.n]);
    y.extend(label_bytes(d));
    Ok(vec![(NPY_FEATURES_FILE.to_string(), x), (NPY_LABELS_FILE.to_string(), y)])
}

/// The set's files in `format` ([`to_idx`] or [`to_npy`]).
pub fn encode(d: &Dataset, format: ExportFormat) -> Result<Vec<ExportFile>> {
    match format {
        ExportFormat::Idx => to_idx(d),
        ExportFormat::Npy => to_npy(d),
    }
}

/// SHA-256 of the features as little-endian f32, row-major (the data part of `x.npy`), whatever the layout.
pub fn features_sha256(d: &Dataset) -> String {
    sha256_f32_le(&feature_values(d).collect::<Vec<f32>>())
}

/// SHA-256 of the labels as one byte each (the data part of `y.npy` and of the IDX labels file).
/// Meaningful for at most 256 classes.
pub fn labels_sha256(d: &Dataset) -> String {
    sha256_hex(&label_bytes(d))
}

/// One data file of an export as [`Manifest`] lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The file's name in the export folder.
    pub name: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// `data.json` of an export: what was generated, how, and checksums to verify a copy or a regeneration.
///
/// ```json
/// {"format": "idx", "data": {"kind": "two_spirals", "n": 512, "noise": 0.05, "seed": 4},
///  "name": "two spirals", "n": 512, "dim": 2, "classes": 2, "class_counts": [256, 256],
///  "files": [{"name": "train-features-idx2-f32", "bytes": 4108, "sha256": "…"}, …],
///  "features_f32le_sha256": "…", "labels_u8_sha256": "…", "sgd_lab_version": "0.1.0"}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `"idx"` or `"npy"` ([`ExportFormat::name`]).
    pub format: String,
    /// The generator's config, every field spelled out (defaults included): regenerates the set.
    pub data: SyntheticData,
    /// The set's name ([`Dataset::name`]).
    pub name: String,
    /// Examples.
    pub n: usize,
    /// Features per example.
    pub dim: usize,
    /// Classes (labels are below it).
    pub classes: usize,
    /// Examples of each class, `class_counts[c]` for class c.
    pub class_counts: Vec<usize>,
    /// The data files, features first.
    pub files: Vec<ManifestFile>,
    /// SHA-256 of the n × dim features as little-endian f32, row-major ([`features_sha256`]).
    pub features_f32le_sha256: String,
    /// SHA-256 of the n labels as one byte each ([`labels_sha256`]).
    pub labels_u8_sha256: String,
    /// The version of sgd-lab that wrote the export.
    pub sgd_lab_version: String,
}

/// The [`Manifest`] of an export of `d`, generated by `config`, encoded as `files` in `format`.
pub fn manifest(config: &SyntheticData, d: &Dataset, format: ExportFormat, files: &[ExportFile]) -> Manifest {
    let mut class_counts = vec![0usize; d.classes];
    for &y in &d.labels {
        class_counts[y as usize] += 1;
    }
    Manifest {
        format: format.name().to_string(),
        data: config.clone(),
        name: d.name.clone(),
        n: d.n,
        dim: d.dim,
        classes: d.classes,
        class_counts,
        files: files.iter().map(|(name, bytes)| ManifestFile { name: name.clone(), bytes: bytes.len(), sha256: sha256_hex(bytes) }).collect(),
        features_f32le_sha256: features_sha256(d),
        labels_u8_sha256: labels_sha256(d),
        sgd_lab_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Generates `config`'s set and encodes it in `format`: the two data files, then `data.json` ([`manifest`]).
pub fn export_synthetic(config: &SyntheticData, format: ExportFormat) -> Result<Vec<ExportFile>> {
    config.validate("data")?;
    let d = config.generate()?;
    let mut files = encode(&d, format)?;
    // Serialised from the struct, not through serde_json::Value, so f32 fields print as f32 (0.1, not 0.10000000149011612).
    let json = serde_json::to_string_pretty(&manifest(config, &d, format, &files)).expect("the manifest serialises");
    files.push((MANIFEST_FILE.to_string(), (json + "\n").into_bytes()));
    Ok(files)
}

/// Writes `files` into `dir` (created if missing), in order. Unless `force`, refuses before writing
/// anything if one of them exists, naming it.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_files(dir: &std::path::Path, files: &[ExportFile], force: bool) -> Result<()> {
    if !force {
        if let Some(p) = files.iter().map(|(name, _)| dir.join(name)).find(|p| p.symlink_metadata().is_ok()) {
            return Err(LabError::Io(format!("{} exists; pass --force to overwrite it", p.display())));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| LabError::Io(format!("cannot create {}: {e}", dir.display())))?;
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| LabError::Io(format!("cannot write {}: {e}", p.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Features;

    #[test]
    fn npy_headers_are_64_byte_aligned_and_end_in_a_newline() {
        for shape in [&[1usize][..], &[7], &[512, 2], &[1_000_000, 2], &[123_456_789, 12_345]] {
            let h = npy_header("<f4", shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(*h.last().unwrap(), b'\n');
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
        }
        let h = npy_header("|u1", &[5]);
        assert!(String::from_utf8_lossy(&h).contains("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }"));
    }

    #[test]
    fn more_than_256_classes_are_refused() {
        let d = Dataset::new("wide", 1, 300, Features::F32(vec![0.0, 1.0]), vec![0, 299]).unwrap();
        for e in [to_idx(&d).unwrap_err(), to_npy(&d).unwrap_err()] {
            assert!(e.to_string().contains("300 classes") && e.to_string().contains("at most 256"), "{e}");
        }
    }

    #[test]
    fn u8_features_are_written_as_the_f32_values_they_decode_to() {
        let d = Dataset::new("u8", 2, 2, Features::U8 { bytes: vec![0, 255], scale: vec![0.5, 2.0], shift: vec![1.0, -1.0] }, vec![1]).unwrap();
        let x = &to_idx(&d).unwrap()[0].1;
        assert_eq!(&x[12..16], 1.0f32.to_be_bytes());
        assert_eq!(&x[16..20], 509.0f32.to_be_bytes());
    }

    #[test]
    fn the_format_parses_from_its_name() {
        assert_eq!("npy".parse::<ExportFormat>().unwrap(), ExportFormat::Npy);
        assert_eq!(ExportFormat::Idx.to_string(), "idx");
        assert!("csv".parse::<ExportFormat>().is_err());
    }
}
