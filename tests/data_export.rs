//! `sgd-lab data export` and `data::export`: a synthetic set written as IDX or NPY reads back, with a decoder
//! written here from the formats' specs (not the code under test), as the exact f32 values and labels the lab
//! trains on; data.json's checksums match the bytes; the CLI refuses what it should.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use sgd_lab::data::export::{to_idx, to_npy};
use sgd_lab::data::{Dataset, SyntheticData};

fn sgd_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sgd-lab"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-data-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn export(args: &[&str], out: &Path) -> Output {
    sgd_lab().args(["data", "export"]).args(args).arg("--out").arg(out).output().unwrap()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One spec per synthetic kind, a few hundred points each (n not a multiple of every class count).
const KINDS: [&str; 4] = [
    r#"{"kind": "two_spirals", "n": 301, "noise": 0.1, "seed": 3}"#,
    r#"{"kind": "circles", "n": 200, "noise": 0.05, "factor": 0.3, "seed": 1}"#,
    r#"{"kind": "xor", "n": 256, "seed": 9}"#,
    r#"{"kind": "blobs", "n": 250, "classes": 7, "noise": 0.2, "seed": 5}"#,
];

fn generate(spec: &str) -> Dataset {
    serde_json::from_str::<SyntheticData>(spec).unwrap().generate().unwrap()
}

// ---------------------------------------------------------------- independent decoders

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// An IDX file: magic 0x0000TTDD (TT the element type, DD the number of dimensions), DD big-endian u32 sizes,
/// then the elements, big-endian. Returns the type code, the sizes and the element bytes.
fn decode_idx(b: &[u8]) -> (u8, Vec<usize>, &[u8]) {
    assert!(b.len() >= 4, "an IDX file starts with a 4-byte magic");
    assert_eq!(&b[..2], [0, 0], "the magic's first two bytes are zero");
    let (ty, ndim) = (b[2], b[3] as usize);
    let dims: Vec<usize> = (0..ndim).map(|i| be_u32(b, 4 + 4 * i) as usize).collect();
    let data = &b[4 + 4 * ndim..];
    let width = match ty {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        t => panic!("unknown IDX type {t:#04x}"),
    };
    assert_eq!(data.len(), width * dims.iter().product::<usize>(), "the data is exactly what the header declares");
    (ty, dims, data)
}

/// The value of an NPY header dict.
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the Python literal `{'key': value, ...}` of an NPY header, values being strings, booleans or
/// tuples of integers (all NPY v1.0 needs). Keys in their order.
fn parse_py_dict(s: &str) -> Vec<(String, PyValue)> {
    let s = s.trim();
    assert!(s.starts_with('{') && s.ends_with('}'), "a dict literal: {s:?}");
    let mut rest = s[1..s.len() - 1].trim();
    let quoted = |r: &str| -> (String, usize) {
        assert!(r.starts_with('\''), "a quoted string at {r:?}");
        let end = r[1..].find('\'').expect("closing quote") + 1;
        (r[1..end].to_string(), end + 1)
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (key, used) = quoted(rest);
        rest = rest[used..].trim_start().strip_prefix(':').expect("key: value").trim_start();
        let (value, used) = if rest.starts_with('\'') {
            let (v, used) = quoted(rest);
            (PyValue::Str(v), used)
        } else if let Some(r) = rest.strip_prefix('(') {
            let end = r.find(')').expect("closing parenthesis");
            let items = r[..end].split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().expect("an integer")).collect();
            (PyValue::Tuple(items), end + 2)
        } else if rest.starts_with("True") {
            (PyValue::Bool(true), 4)
        } else if rest.starts_with("False") {
            (PyValue::Bool(false), 5)
        } else {
            panic!("unexpected value at {rest:?}");
        };
        out.push((key, value));
        rest = rest[used..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

/// An NPY v1.0 file: `\x93NUMPY`, version 1 0, a little-endian u16 header length, the ASCII dict padded with
/// spaces and ended by a newline. Returns the descr, the shape and the data bytes; checks the 64-byte alignment
/// numpy writes and C order.
fn decode_npy(b: &[u8]) -> (String, Vec<usize>, &[u8]) {
    assert_eq!(&b[..6], b"\x93NUMPY", "the NPY magic");
    assert_eq!(&b[6..8], [1, 0], "version 1.0");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let total = 10 + hlen;
    assert_eq!(total % 64, 0, "the header (magic through newline) is {total} bytes, not a multiple of 64");
    let header = std::str::from_utf8(&b[10..total]).expect("an ASCII header");
    assert!(header.is_ascii());
    assert!(header.ends_with('\n'), "the header ends in a newline");
    let dict = parse_py_dict(header.trim_end_matches('\n').trim_end_matches(' '));
    let keys: Vec<&str> = dict.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["descr", "fortran_order", "shape"]);
    assert_eq!(dict[1].1, PyValue::Bool(false), "C order");
    let (PyValue::Str(descr), PyValue::Tuple(shape)) = (&dict[0].1, &dict[2].1) else { panic!("descr and shape: {dict:?}") };
    let data = &b[total..];
    let width = match descr.as_str() {
        "<f4" => 4,
        "|u1" | "<u1" => 1,
        d => panic!("unexpected descr {d}"),
    };
    assert_eq!(data.len(), width * shape.iter().product::<usize>(), "the data is exactly what the shape declares");
    (descr.clone(), shape.clone(), data)
}

/// Checks features and labels, decoded from `files` (IDX or NPY by name), against the data set bit for bit.
fn assert_files_hold(d: &Dataset, files: &[(String, Vec<u8>)]) {
    let get = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} among the files")).1;
    let (features, labels): (Vec<u32>, Vec<u8>) = if files.iter().any(|(n, _)| n == "x.npy") {
        let (descr, shape, x) = decode_npy(get("x.npy"));
        assert_eq!((descr.as_str(), shape), ("<f4", vec![d.n, d.dim]));
        let (descr, shape, y) = decode_npy(get("y.npy"));
        assert!(descr == "|u1" || descr == "<u1", "{descr}");
        assert_eq!(shape, vec![d.n]);
        (x.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect(), y.to_vec())
    } else {
        let xb = get("train-features-idx2-f32");
        assert_eq!(be_u32(xb, 0), 0x0000_0D02, "f32 (0x0D), 2 dimensions");
        let (ty, dims, x) = decode_idx(xb);
        assert_eq!((ty, dims), (0x0D, vec![d.n, d.dim]));
        let yb = get("train-labels-idx1-ubyte");
        assert_eq!(be_u32(yb, 0), 0x0000_0801, "u8 (0x08), 1 dimension: MNIST's label magic");
        let (ty, dims, y) = decode_idx(yb);
        assert_eq!((ty, dims), (0x08, vec![d.n]));
        (x.chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect(), y.to_vec())
    };
    assert_eq!(features.len(), d.n * d.dim);
    for r in 0..d.n {
        for c in 0..d.dim {
            let (got, want) = (features[r * d.dim + c], d.feature(r, c).to_bits());
            assert_eq!(got, want, "feature {c} of example {r}: {} written, {} trained on", f32::from_bits(got), f32::from_bits(want));
        }
    }
    let want: Vec<u8> = d.labels.iter().map(|&y| u8::try_from(y).unwrap()).collect();
    assert_eq!(labels, want, "labels");
}

/// The files of an export folder, by name (data.json left out).
fn read_export(dir: &Path, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names.iter().map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}")))).collect()
}

const IDX_NAMES: [&str; 2] = ["train-features-idx2-f32", "train-labels-idx1-ubyte"];
const NPY_NAMES: [&str; 2] = ["x.npy", "y.npy"];

/// data.json of an export folder agrees with the files beside it and with the data set it describes.
fn assert_manifest_matches(dir: &Path, d: &Dataset, spec: &SyntheticData, format: &str, names: &[&str]) {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
    assert_eq!(m["format"], format);
    assert_eq!(serde_json::from_value::<SyntheticData>(m["data"].clone()).unwrap(), *spec, "the generator's config");
    assert_eq!((m["n"].as_u64(), m["dim"].as_u64(), m["classes"].as_u64()), (Some(d.n as u64), Some(d.dim as u64), Some(d.classes as u64)));
    let mut counts = vec![0u64; d.classes];
    d.labels.iter().for_each(|&y| counts[y as usize] += 1);
    assert_eq!(m["class_counts"], serde_json::json!(counts));
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.iter().map(|f| f["name"].as_str().unwrap()).collect::<Vec<_>>(), names);
    for f in files {
        let bytes = std::fs::read(dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64), "{f}");
        assert_eq!(f["sha256"].as_str(), Some(hex_sha256(&bytes).as_str()), "{f}");
    }
    let le: Vec<u8> = (0..d.n).flat_map(|r| (0..d.dim).flat_map(move |c| d.feature(r, c).to_le_bytes())).collect();
    assert_eq!(m["features_f32le_sha256"].as_str(), Some(hex_sha256(&le).as_str()));
    let labels: Vec<u8> = d.labels.iter().map(|&y| y as u8).collect();
    assert_eq!(m["labels_u8_sha256"].as_str(), Some(hex_sha256(&labels).as_str()));
}

// ---------------------------------------------------------------- the library

#[test]
fn exported_spirals_read_back_as_the_exact_f32_values_the_lab_trains_on() {
    let d = generate(KINDS[0]);
    assert_files_hold(&d, &to_idx(&d).unwrap());
    assert_files_hold(&d, &to_npy(&d).unwrap());
}

#[test]
fn the_npy_headers_are_64_byte_aligned_and_say_f4_and_u1_in_c_order() {
    for spec in KINDS {
        let d = generate(spec);
        let files = to_npy(&d).unwrap();
        let (descr, shape, _) = decode_npy(&files[0].1);
        assert_eq!((descr.as_str(), shape.as_slice()), ("<f4", &[d.n, 2][..]));
        let (descr, shape, _) = decode_npy(&files[1].1);
        assert_eq!((descr.as_str(), shape.as_slice()), ("|u1", &[d.n][..]));
        // numpy's own spelling of the dict, so readers that match it textually work too.
        let header = String::from_utf8_lossy(&files[0].1[10..]).into_owned();
        assert!(header.starts_with(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 2), }}", d.n)), "{header:.80}");
    }
}

#[test]
fn the_test_decoders_refuse_what_they_should() {
    // The decoders must not pass anything: a misaligned NPY header and a short IDX file fail them.
    let d = generate(KINDS[2]);
    let mut npy = to_npy(&d).unwrap().remove(0).1;
    npy.remove(20);
    assert!(std::panic::catch_unwind(|| decode_npy(&npy)).is_err());
    let mut idx = to_idx(&d).unwrap().remove(0).1;
    idx.pop();
    assert!(std::panic::catch_unwind(|| decode_idx(&idx)).is_err());
}

// ---------------------------------------------------------------- the CLI

#[test]
fn every_synthetic_kind_exports_through_the_cli_in_both_formats_and_reads_back_bit_for_bit() {
    let root = temp_dir("kinds");
    for (i, spec) in KINDS.iter().enumerate() {
        let d = generate(spec);
        let parsed: SyntheticData = serde_json::from_str(spec).unwrap();
        for (format, names) in [("idx", &IDX_NAMES), ("npy", &NPY_NAMES)] {
            // A folder two levels below one that exists: created.
            let dir = root.join(format!("{i}-{format}")).join("set");
            let out = export(&["--data", spec, "--format", format], &dir);
            assert!(out.status.success(), "{spec} {format}: {}", stderr(&out));
            let mut listed: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            listed.sort();
            let mut want: Vec<String> = names.iter().chain(&["data.json"]).map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(listed, want, "{format}: exactly these files");
            assert_files_hold(&d, &read_export(&dir, names));
            assert_manifest_matches(&dir, &d, &parsed, format, names);
        }
    }
}

#[test]
fn idx_is_the_default_format() {
    let dir = temp_dir("default");
    let out = export(&["--data", KINDS[1]], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_files_hold(&generate(KINDS[1]), &read_export(&dir, &IDX_NAMES));
}

#[test]
fn data_json_spells_out_the_generator_defaults_so_a_replay_regenerates_the_same_set() {
    let dir = temp_dir("defaults");
    let out = export(&["--data", r#"{"kind": "blobs", "n": 90}"#, "--format", "npy"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
    assert_eq!(m["data"], serde_json::json!({"kind": "blobs", "n": 90, "classes": 3, "noise": 0.1, "seed": 0}), "defaults filled in, f32 printed as f32");
    let spec: SyntheticData = serde_json::from_value(m["data"].clone()).unwrap();
    let again = spec.generate().unwrap();
    assert_manifest_matches(&dir, &again, &spec, "npy", &NPY_NAMES);
}

#[test]
fn a_training_config_exports_the_set_it_trains_on() {
    let dir = temp_dir("train-config");
    let out = export(&["--config", repo("configs/spirals.json").to_str().unwrap()], &dir.join("from-config"));
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = sgd_lab::train::TrainConfig::from_json(&std::fs::read_to_string(repo("configs/spirals.json")).unwrap()).unwrap();
    let trained_on = sgd_lab::train::RunData::synthetic(&cfg).unwrap().train;
    assert_files_hold(&trained_on, &read_export(&dir.join("from-config"), &IDX_NAMES));
    // The same generator given inline writes the same bytes.
    let inline = serde_json::to_string(cfg.data.as_ref().unwrap()).unwrap();
    let out = export(&["--data", &inline], &dir.join("inline"));
    assert!(out.status.success(), "{}", stderr(&out));
    for name in IDX_NAMES.iter().chain(&["data.json"]) {
        assert_eq!(std::fs::read(dir.join("from-config").join(name)).unwrap(), std::fs::read(dir.join("inline").join(name)).unwrap(), "{name}");
    }
}

#[test]
fn an_experiment_config_exports_its_synthetic_set() {
    let dir = temp_dir("experiment");
    let cfg = dir.join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"id": "tiny", "title": "tiny", "model": {"input": 2, "hidden": [8], "classes": 4, "activation": "tanh", "init": "xavier"},
            "data": {"kind": "blobs", "n": 120, "classes": 4, "seed": 2}, "budget": {"steps": 10}, "seeds": [1],
            "experiment": {"kind": "ratio_sweep", "lrs": [0.1], "batch_sizes": [8]}}"#,
    )
    .unwrap();
    let out = export(&["--config", cfg.to_str().unwrap(), "--format", "npy"], &dir.join("out"));
    assert!(out.status.success(), "{}", stderr(&out));
    let d = generate(r#"{"kind": "blobs", "n": 120, "classes": 4, "seed": 2}"#);
    assert_files_hold(&d, &read_export(&dir.join("out"), &NPY_NAMES));
}

#[test]
fn a_real_data_set_is_refused_as_already_being_idx_files_in_www_data() {
    let dir = temp_dir("real");
    let fm = repo("configs/fashion-mnist.json");
    for config in [fm.to_str().unwrap(), "e1-ratio-sweep"] {
        let out = export(&["--config", config], &dir.join("out"));
        assert!(!out.status.success(), "{config}");
        let e = stderr(&out);
        assert!(e.starts_with("sgd-lab: ") && e.contains("www/data") && e.contains("scripts/fetch-data") && e.contains("fashion-mnist"), "{config}: {e}");
        assert!(!dir.join("out").exists(), "nothing written for {config}");
    }
}

#[test]
fn both_or_neither_of_config_and_data_is_refused_naming_both_flags() {
    let dir = temp_dir("flags");
    let spirals = repo("configs/spirals.json");
    for args in [&["--config", spirals.to_str().unwrap(), "--data", KINDS[0]][..], &[][..]] {
        let out = export(args, &dir.join("out"));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let e = stderr(&out);
        assert!(e.contains("--config") && e.contains("--data"), "{args:?}: {e}");
        assert!(!dir.join("out").exists());
    }
}

#[test]
fn bad_input_is_named() {
    let dir = temp_dir("bad");
    for (args, says) in [
        (&["--data", r#"{"kind": "spirals", "n": 100}"#][..], "--data.kind"),
        (&["--data", r#"{"kind": "xor", "n": 1}"#][..], "--data.n"),
        (&["--data", "not json"][..], "`--data`"),
        (&["--config", "no-such-config.json"][..], "no-such-config.json"),
    ] {
        let out = export(args, &dir.join("out"));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_earlier_export_is_not_overwritten_without_force() {
    let root = temp_dir("force");
    let files_of = |dir: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())).collect();
        files.sort();
        files
    };
    for format in ["idx", "npy"] {
        let dir = root.join(format);
        let first = r#"{"kind": "xor", "n": 100, "seed": 1}"#;
        let second = r#"{"kind": "xor", "n": 100, "seed": 2}"#;
        assert!(export(&["--data", first, "--format", format], &dir).status.success());
        let before = files_of(&dir);
        let out = export(&["--data", second, "--format", format], &dir);
        assert_eq!(out.status.code(), Some(1));
        let e = stderr(&out);
        let first_file = if format == "idx" { "train-features-idx2-f32" } else { "x.npy" };
        assert!(e.contains(first_file) && e.contains("--force"), "{e}");
        assert_eq!(before, files_of(&dir), "{format}: nothing changed");
        let out = export(&["--data", second, "--format", format, "--force"], &dir);
        assert!(out.status.success(), "{}", stderr(&out));
        let names = if format == "idx" { &IDX_NAMES } else { &NPY_NAMES };
        assert_files_hold(&generate(second), &read_export(&dir, names));
    }
    // data.json alone also blocks: it would describe other files.
    let lone = temp_dir("force-manifest");
    std::fs::write(lone.join("data.json"), "{}").unwrap();
    let out = export(&["--data", KINDS[2]], &lone);
    assert!(!out.status.success() && stderr(&out).contains("data.json"), "{}", stderr(&out));
}
