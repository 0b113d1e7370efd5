//! The data protocol a run can choose and what it records: stratified random subsets or the first N in
//! file order, validation held out of the training file or taken from the official test split, the
//! SHA-256 of every file beside the lab's pins (other files refused unless accepted), digests of the chosen
//! rows, and IDX files of your own whose sizes and class count come from the files.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use sgd_lab::data::idx::{encode_images, encode_labels, parse_examples, IdxImages, LabelledImages};
use sgd_lab::data::pinned::{sha256_hex, sha256_u32_le};
use sgd_lab::data::prepare::{load_raw, prepare};
use sgd_lab::data::{load_named, DatasetConfig, PrepareOptions, RawData, RealDataset, SubsetRule, ValidationSource};
use sgd_lab::train::{RunData, TrainConfig};
use sgd_lab::LabError;

/// 3 classes, `n` training and `t` test examples of 2×2 pixels; labels cycle 0, 1, 2 and pixels depend on the row.
fn raw(n: usize, t: usize) -> RawData {
    let make = |n: usize, salt: u8| {
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let pixels = (0..n * 4).map(|i| ((i * 37) as u8).wrapping_add(salt).wrapping_add(labels[i / 4] * 50)).collect();
        LabelledImages::new("toy", IdxImages { n, rows: 2, cols: 2, pixels }, labels, 3).unwrap()
    };
    RawData::new("toy", 3, make(n, 0), make(t, 7)).unwrap()
}

fn opts(train_size: usize, validation_size: usize, subset: SubsetRule, validation_from: ValidationSource) -> PrepareOptions {
    PrepareOptions { train_size, validation_size, seed: 5, subset, validation_from, ..PrepareOptions::default() }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sgd-lab-protocol-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config_error(r: Result<impl std::fmt::Debug, LabError>) -> String {
    match r {
        Err(LabError::Config { field, message }) => format!("{field}: {message}"),
        other => panic!("not a config error: {other:?}"),
    }
}

#[test]
fn first_n_takes_the_first_examples_for_training_and_the_last_of_the_training_file_for_validation() {
    let p = prepare(&raw(30, 9), &opts(10, 6, SubsetRule::First, ValidationSource::TrainFile)).unwrap();
    assert_eq!(p.train_rows, (0..10).collect::<Vec<u32>>());
    assert_eq!(p.validation_rows, (24..30).collect::<Vec<u32>>());
    assert_eq!(p.train.labels, (0..10).map(|i| i % 3).collect::<Vec<u32>>(), "file order, labels as in the file");
    let v = p.validation.unwrap();
    assert_eq!(v.labels, (24..30).map(|i| i % 3).collect::<Vec<u32>>());
}

#[test]
fn validation_from_the_test_file_takes_its_first_examples_or_a_stratified_draw_and_leaves_the_training_file_whole() {
    let r = raw(30, 9);
    let p = prepare(&r, &opts(10, 4, SubsetRule::First, ValidationSource::TestFile)).unwrap();
    assert_eq!((p.train_rows.clone(), p.validation_rows.clone()), ((0..10).collect::<Vec<u32>>(), (0..4).collect::<Vec<u32>>()));
    let v = p.validation.unwrap();
    assert_eq!(v.feature(0, 0), p.test.feature(0, 0), "validation rows are rows of the test file");
    assert_eq!(p.validation_from, ValidationSource::TestFile);
    // Stratified: the training rows are those of a run that holds nothing out (same seed), the validation
    // rows a stratified sample of the test file: 2 + 2 + 2 of its 3 × 3.
    let s = prepare(&r, &opts(12, 6, SubsetRule::Stratified, ValidationSource::TestFile)).unwrap();
    let none_held = prepare(&r, &opts(12, 0, SubsetRule::Stratified, ValidationSource::TrainFile)).unwrap();
    assert_eq!(s.train_rows, none_held.train_rows);
    let v = s.validation.unwrap();
    assert_eq!((0..3).map(|c| v.labels.iter().filter(|&&y| y == c).count()).collect::<Vec<_>>(), vec![2, 2, 2]);
    assert!(s.validation_rows.iter().all(|&row| row < 9));
}

#[test]
fn the_record_holds_the_digests_of_the_chosen_rows_and_of_the_stored_training_set() {
    let p = prepare(&raw(30, 9), &opts(12, 6, SubsetRule::Stratified, ValidationSource::TrainFile)).unwrap();
    let rec = &p.record;
    assert_eq!(rec.train_rows_sha256.as_deref(), Some(sha256_u32_le(&p.train_rows).as_str()));
    assert_eq!(rec.validation_rows_sha256.as_deref(), Some(sha256_u32_le(&p.validation_rows).as_str()));
    let sgd_lab::data::Features::U8 { bytes, .. } = &p.train.features else { panic!("real data stay bytes") };
    assert_eq!(rec.train_features_sha256, sha256_hex(bytes));
    let labels: Vec<u8> = p.train.labels.iter().map(|&y| y as u8).collect();
    assert_eq!(rec.train_labels_sha256, sha256_hex(&labels));
    let rule = rec.rule.as_ref().unwrap();
    assert_eq!((rule.subset, rule.validation_from, rule.seed), (SubsetRule::Stratified, ValidationSource::TrainFile, 5));
    assert_eq!((rec.train_examples, rec.validation_examples, rec.random_labels), (12, 6, 0));
    // Another seed chooses other rows, and the record says so.
    let q = prepare(&raw(30, 9), &PrepareOptions { seed: 6, ..opts(12, 6, SubsetRule::Stratified, ValidationSource::TrainFile) }).unwrap();
    assert!(!rec.same_selection(&q.record), "another seed is another selection");
}

#[test]
fn the_dataset_config_takes_the_protocol_fields_and_names_what_it_refuses() {
    let c = DatasetConfig::from_json(r#"{"name": "mnist", "train_size": 5, "subset": "first", "validation_from": "test_file", "validation_size": 2000}"#).unwrap();
    assert_eq!((c.subset, c.validation_from, c.len()), (SubsetRule::First, ValidationSource::TestFile, 5));
    let shape = c.shape().unwrap();
    assert_eq!((c.validation_len(&shape), c.held_out_len(&shape)), (2000, 0));
    let all = DatasetConfig::from_json(r#"{"name": "mnist", "validation_from": "test_file"}"#).unwrap();
    assert_eq!((all.len(), all.validation_len(&all.shape().unwrap())), (60_000, 10_000), "the whole test file validates, the whole training file trains");
    // Defaults are not written, so configs and results saved before these fields read back equal.
    assert!(!serde_json::to_string(&DatasetConfig::new(RealDataset::Mnist)).unwrap().contains("subset"));
    let e = config_error(DatasetConfig::from_json(r#"{"name": "mnist", "validation_from": "test_file", "validation_size": 10001}"#));
    assert!(e.starts_with("data.validation_size") && e.contains("10000"), "{e}");
    let e = config_error(DatasetConfig::from_json(r#"{"name": "mnist", "subset": "last"}"#));
    assert!(e.contains("unknown variant `last`"), "{e}");
    let e = config_error(DatasetConfig::from_json(r#"{"name": "mnist", "train_size": 5}"#));
    assert!(e.contains("\"subset\": \"first\""), "stratified needs one example per class, and the error says what else to do: {e}");
    let e = config_error(DatasetConfig::from_json(r#"{"name": "idx"}"#));
    assert!(e.starts_with("data.files"), "{e}");
    let e = config_error(DatasetConfig::from_json(r#"{"name": "mnist", "files": {"train_images": "a", "train_labels": "b"}}"#));
    assert!(e.starts_with("data.files") && e.contains("only with"), "{e}");
}

/// Writes a tiny stand-in for a fetched data set (28×28 images, 10 classes) under `dir/<name>/`.
fn write_stand_in(dir: &Path, name: &str) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let (n, t) = (40, 20);
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    let pixels = |n: usize| (0..n * 784).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    for (file, bytes) in [
        ("train-images-idx3-ubyte", encode_images(n as u32, 28, 28, &pixels(n))),
        ("train-labels-idx1-ubyte", encode_labels(&labels(n))),
        ("t10k-images-idx3-ubyte", encode_images(t as u32, 28, 28, &pixels(t))),
        ("t10k-labels-idx1-ubyte", encode_labels(&labels(t))),
    ] {
        std::fs::write(d.join(file), bytes).unwrap();
    }
}

#[test]
fn files_that_are_not_the_pinned_ones_are_refused_naming_the_file_and_both_hashes_unless_accepted() {
    let dir = temp_dir("pins");
    write_stand_in(&dir, "fashion-mnist");
    let m = match load_raw(RealDataset::FashionMnist, &dir, false) {
        Err(LabError::Data(m)) => m,
        other => panic!("expected a data error, got {other:?}"),
    };
    let got = sha256_hex(&std::fs::read(dir.join("fashion-mnist/train-images-idx3-ubyte")).unwrap());
    assert!(m.contains("fashion-mnist/train-images-idx3-ubyte") && m.contains(&got), "{m}");
    assert!(m.contains("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888") && m.contains("--allow-unpinned-data"), "{m}");
    let raw = load_raw(RealDataset::FashionMnist, &dir, true).unwrap();
    assert_eq!(raw.files.len(), 4);
    assert!(raw.files.iter().all(|f| f.matches_pin() == Some(false)), "accepted, and recorded as not the pinned files");
    assert_eq!(raw.files[0].sha256, got);
    let cfg = DatasetConfig::from_json(r#"{"name": "fashion-mnist", "train_size": 20, "validation_size": 10, "seed": 2}"#).unwrap();
    let p = load_named(&cfg, &dir, true).unwrap();
    assert_eq!(p.record.files, raw.files, "the prepared data carry the file records");
}

#[test]
fn the_real_files_when_fetched_are_the_pinned_ones() {
    let dir = std::env::var_os("SGD_LAB_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data"));
    if !dir.join("mnist").exists() {
        assert!(std::env::var_os("SGD_LAB_REQUIRE_DATA").is_none(), "the data sets are required here (scripts/fetch-data)");
        eprintln!("note: skipped: no data sets in {}", dir.display());
        return;
    }
    for set in RealDataset::ALL {
        let raw = load_raw(set, &dir, false).unwrap();
        assert!(raw.files.iter().all(|f| f.matches_pin() == Some(true)), "{:?}", raw.files);
    }
}

/// Writes IDX files of your own: `n` examples of 5 features (2-D IDX, n × 5) and labels 0..3, plus a test pair.
fn write_own_files(dir: &Path, n: usize) -> String {
    let mut header = Vec::new();
    for w in [0x0000_0802u32, n as u32, 5] {
        header.extend_from_slice(&w.to_be_bytes());
    }
    let x: Vec<u8> = header.iter().copied().chain((0..n * 5).map(|i| (i * 29 % 256) as u8)).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
    std::fs::write(dir.join("x.idx"), &x).unwrap();
    std::fs::write(dir.join("y.idx"), encode_labels(&y)).unwrap();
    let mut tx = Vec::new();
    for w in [0x0000_0802u32, 8, 5] {
        tx.extend_from_slice(&w.to_be_bytes());
    }
    tx.extend((0..40).map(|i| i as u8));
    std::fs::write(dir.join("tx.idx"), &tx).unwrap();
    std::fs::write(dir.join("ty.idx"), encode_labels(&[0, 1, 2, 3, 0, 1, 2, 3])).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    format!(r#"{{"train_images": "{}", "train_labels": "{}", "test_images": "{}", "test_labels": "{}"}}"#, p("x.idx"), p("y.idx"), p("tx.idx"), p("ty.idx"))
}

#[test]
fn idx_files_of_your_own_train_with_the_input_size_and_class_count_their_files_hold() {
    let dir = temp_dir("own");
    let files = write_own_files(&dir, 64);
    let json = |input: usize, classes: usize| {
        format!(
            r#"{{"model": {{"input": {input}, "hidden": [6], "classes": {classes}, "activation": "tanh", "init": "xavier"}},
                "dataset": {{"name": "idx", "files": {files}, "validation_from": "test_file", "normalise": "unit_range"}},
                "batch_size": 16, "steps": 8, "models": [{{"lr": 0.1, "seed": 1}}]}}"#
        )
    };
    let cfg = TrainConfig::from_json(&json(5, 4)).unwrap();
    let shape = cfg.dataset.as_ref().unwrap().files.as_ref().unwrap().shape.unwrap();
    assert_eq!((shape.train_len, shape.test_len, shape.dim, shape.classes), (64, 8, 5, 4), "read from the files");
    let data = cfg.load_data(&dir).unwrap();
    assert_eq!((data.train.n, data.train.dim, data.validation.as_ref().unwrap().n), (64, 5, 8));
    let rec = data.provenance.as_ref().unwrap();
    assert_eq!(rec.source, "idx");
    assert!(rec.files.iter().all(|f| f.pinned_sha256.is_none()), "nothing is pinned for your own files");
    assert_eq!(rec.files[0].sha256, sha256_hex(&std::fs::read(dir.join("x.idx")).unwrap()));
    // The model must fit the files: the error names the field and what the files need.
    let e = config_error(TrainConfig::from_json(&json(784, 4)));
    assert!(e.starts_with("model") && e.contains("input 5") && e.contains("classes 4"), "{e}");
    // A missing file is named with its field.
    let bad = json(5, 4).replace("y.idx", "nope.idx");
    let e = TrainConfig::from_json(&bad).unwrap_err().to_string();
    assert!(e.contains("dataset.files.train_labels") && e.contains("nope.idx"), "{e}");
    // A saved config keeps the shape it read, and files that changed since are refused when loaded.
    let saved = cfg.to_json();
    write_own_files(&dir, 60);
    let cfg2 = TrainConfig::from_json(&saved).unwrap();
    let e = config_error(cfg2.load_data(&dir).map(|_| ()));
    assert!(e.starts_with("dataset.files.shape"), "{e}");
}

#[test]
fn idx_examples_with_one_to_three_dimensions_read_as_rows_of_features() {
    let mut four = Vec::new();
    for w in [0x0000_0804u32, 2, 2, 3, 2] {
        four.extend_from_slice(&w.to_be_bytes());
    }
    four.extend(0..24u8);
    let e = parse_examples("rgb", &four).unwrap();
    assert_eq!((e.n, e.rows, e.cols, e.dim()), (2, 2, 6, 12));
    assert_eq!(e.image(1), &(12..24).collect::<Vec<u8>>()[..]);
    let three = encode_images(1, 2, 2, &[1, 2, 3, 4]);
    assert_eq!(parse_examples("mnist-like", &three).unwrap().dim(), 4);
    let m = parse_examples("labels", &encode_labels(&[1])).unwrap_err().to_string();
    assert!(m.contains("0x00000802 to 0x00000804"), "{m}");
    let mut zero = Vec::new();
    for w in [0x0000_0802u32, 1, 0] {
        zero.extend_from_slice(&w.to_be_bytes());
    }
    assert!(parse_examples("empty", &zero).unwrap_err().to_string().contains("at least 1"));
}

#[test]
fn a_synthetic_run_records_its_generator_and_the_digests_of_what_it_generated() {
    let cfg = TrainConfig::from_json(
        r#"{"model": {"input": 2, "hidden": [4], "classes": 2, "activation": "tanh", "init": "xavier"}, "data": {"kind": "two_spirals", "n": 64, "seed": 3},
            "batch_size": 8, "steps": 4, "models": [{"lr": 0.1}]}"#,
    )
    .unwrap();
    let d = RunData::synthetic(&cfg).unwrap();
    let rec = d.provenance.unwrap();
    assert_eq!((rec.source.as_str(), rec.synthetic.as_ref(), rec.train_examples), ("synthetic", cfg.data.as_ref(), 64));
    let sgd_lab::data::Features::F32(x) = &d.train.features else { panic!("synthetic features are f32") };
    assert_eq!(rec.train_features_sha256, sgd_lab::data::pinned::sha256_f32_le(x));
}

#[test]
fn saved_results_refuse_a_record_of_the_same_selection_from_other_data_naming_the_file() {
    use sgd_lab::experiments::{ExperimentConfig, ExperimentResults};
    let cfg = ExperimentConfig::from_json(
        r#"{"id": "t", "title": "t", "model": {"input": 2, "hidden": [4], "classes": 2, "activation": "tanh", "init": "xavier"},
            "data": {"kind": "xor", "n": 40}, "budget": {"steps": 2}, "seeds": [1],
            "experiment": {"kind": "ratio_sweep", "lrs": [0.1], "batch_sizes": [8]}}"#,
    )
    .unwrap();
    let mut results = ExperimentResults::new(cfg, 1, None);
    let mut a = prepare(&raw(30, 9), &opts(12, 6, SubsetRule::First, ValidationSource::TrainFile)).unwrap().record;
    a.files = vec![sgd_lab::data::FileRecord::of("toy/train-images", b"one", None)];
    results.add_data_record(&a).unwrap();
    results.add_data_record(&a).unwrap();
    assert_eq!(results.data.len(), 1, "one record per distinct data");
    let mut b = a.clone();
    b.files = vec![sgd_lab::data::FileRecord::of("toy/train-images", b"two", None)];
    let e = results.add_data_record(&b).unwrap_err().to_string();
    assert!(e.contains("toy/train-images") && e.contains("differ"), "{e}");
    // Another selection (other rows) is simply another record.
    let c = prepare(&raw(30, 9), &opts(10, 6, SubsetRule::First, ValidationSource::TrainFile)).unwrap().record;
    results.add_data_record(&c).unwrap();
    assert_eq!(results.data.len(), 2);
    // Shards made from different data do not merge.
    let mut other = results.clone();
    other.data = vec![b];
    let e = ExperimentResults::merge(vec![results, other]).unwrap_err().to_string();
    assert!(e.contains("differ"), "{e}");
}
