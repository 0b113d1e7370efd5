//! Facts about the real files that `scripts/fetch-data` lays in `www/data` (or `$SGD_LAB_DATA_DIR`).
//! When the files are absent each test prints a note and passes (unless `SGD_LAB_REQUIRE_DATA` is set, as
//! `scripts/test` does): run `scripts/fetch-data` to check them. Native only (it reads files).
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use sgd_lab::data::prepare::load_raw;
use sgd_lab::data::{load_named, DatasetConfig, RawData, RealDataset};

fn data_dir() -> PathBuf {
    std::env::var_os("SGD_LAB_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/data"))
}

/// The raw files of `set`, or `None` (with a note) when they have not been fetched.
fn raw(set: RealDataset) -> Option<RawData> {
    let dir = data_dir();
    if !RealDataset::FILES.iter().all(|f| dir.join(set.name()).join(f).is_file()) {
        // scripts/test sets SGD_LAB_REQUIRE_DATA=1 after fetching, so CI never passes by skipping.
        assert!(std::env::var_os("SGD_LAB_REQUIRE_DATA").is_none(), "{} is not in {} and SGD_LAB_REQUIRE_DATA is set", set.name(), dir.display());
        eprintln!("note: skipped: {} is not in {} (run scripts/fetch-data)", set.name(), dir.display());
        return None;
    }
    Some(load_raw(set, &dir, false).unwrap())
}

fn class_counts(labels: &[u8]) -> Vec<usize> {
    let mut c = vec![0; 10];
    for &y in labels {
        c[y as usize] += 1;
    }
    c
}

fn check_shapes(r: &RawData) {
    assert_eq!((r.train.images.n, r.train.images.rows, r.train.images.cols), (60_000, 28, 28));
    assert_eq!((r.test.images.n, r.test.images.rows, r.test.images.cols), (10_000, 28, 28));
    assert_eq!((r.train.len(), r.test.len(), r.classes), (60_000, 10_000, 10));
}

#[test]
fn fashion_mnist_has_its_known_labels_and_6000_examples_per_class() {
    let Some(r) = raw(RealDataset::FashionMnist) else { return };
    check_shapes(&r);
    assert_eq!(r.train.labels[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(r.test.labels[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert_eq!(class_counts(&r.train.labels), vec![6000; 10]);
    assert_eq!(class_counts(&r.test.labels), vec![1000; 10]);
}

#[test]
fn mnist_has_its_known_labels() {
    let Some(r) = raw(RealDataset::Mnist) else { return };
    check_shapes(&r);
    assert_eq!(r.train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(r.test.labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    // MNIST is not balanced; its well-known training counts per digit.
    assert_eq!(class_counts(&r.train.labels), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
}

#[test]
fn a_named_fashion_mnist_run_is_stratified_corrupted_and_normalised_as_configured() {
    if raw(RealDataset::FashionMnist).is_none() {
        return;
    }
    let cfg = DatasetConfig::from_json(
        r#"{"name": "fashion-mnist", "train_size": 2000, "validation_size": 1000, "random_label_fraction": 0.25, "seed": 1}"#,
    )
    .unwrap();
    let p = load_named(&cfg, &data_dir(), false).unwrap();
    let count = |labels: &[u32]| {
        let mut c = vec![0; 10];
        labels.iter().for_each(|&y| c[y as usize] += 1);
        c
    };
    assert_eq!((p.train.n, p.train.dim, p.train.classes), (2000, 784, 10));
    assert_eq!(count(&p.clean_labels), vec![200; 10], "the true labels are stratified exactly");
    assert_eq!(count(&p.validation.as_ref().unwrap().labels), vec![100; 10]);
    assert_eq!(p.corrupted_count(), 500);
    assert!((0..2000).all(|i| p.corrupted[i] == (p.train.labels[i] != p.clean_labels[i])));
    assert_eq!(p.test.n, 10_000);
    let (mut s, mut q) = (0.0f64, 0.0f64);
    for r in 0..p.train.n {
        for c in 0..784 {
            let x = p.train.feature(r, c) as f64;
            s += x;
            q += x * x;
        }
    }
    let m = s / (2000.0 * 784.0);
    let sd = (q / (2000.0 * 784.0) - m * m).sqrt();
    assert!(m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-4, "mean {m}, std {sd}");
    eprintln!("fashion-mnist N=2000 seed 1: pixel mean {:.4}, std {:.4} (as byte/255)", p.pixel_mean, p.pixel_std);
}

#[test]
fn a_prepared_fashion_mnist_subset_trains_on_the_cpu_backend() {
    use rand::{Rng, SeedableRng};
    use sgd_lab::backend::cpu::CpuBackend;
    use sgd_lab::backend::{Backend, Hyper};
    use sgd_lab::model::{init_params, MlpSpec};

    if raw(RealDataset::FashionMnist).is_none() {
        return;
    }
    let cfg = DatasetConfig::from_json(r#"{"name": "fashion-mnist", "train_size": 1000, "random_label_fraction": 0.2, "seed": 2}"#).unwrap();
    let p = load_named(&cfg, &data_dir(), false).unwrap();
    let spec: MlpSpec = serde_json::from_str(r#"{"input": 784, "hidden": [32], "classes": 10, "activation": "relu", "init": "he"}"#).unwrap();
    let (batch, steps) = (50, 400);
    let mut b = CpuBackend::<f32>::new(&spec.layout(), 1, batch).unwrap();
    b.write_params(&init_params(&spec, 1)).unwrap();
    b.write_hyper(&[Hyper { lr: 0.05, momentum: 0.9, weight_decay: 0.0 }]).unwrap();
    let train = b.upload_dataset(&p.train).unwrap();
    let test = b.upload_dataset(&p.test).unwrap();
    let clean = b.upload_dataset(&p.clean_train().unwrap()).unwrap();
    let noisy = b.upload_dataset(&p.corrupted_train().unwrap().unwrap()).unwrap();
    let eval = |b: &mut CpuBackend<f32>, h, n| pollster::block_on(b.evaluate(h, 0, n)).unwrap()[0];
    let before = eval(&mut b, train, p.train.n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let idx: Vec<u32> = (0..steps * batch).map(|_| rng.random_range(0..p.train.n as u32)).collect();
    b.train_steps(train, &idx, batch).unwrap();
    assert!(pollster::block_on(b.read_progress()).unwrap().diverged_at[0].is_none());
    let after = eval(&mut b, train, p.train.n);
    let t = eval(&mut b, test, p.test.n);
    let (c, r) = (eval(&mut b, clean, 800), eval(&mut b, noisy, 200));
    eprintln!(
        "fashion-mnist N=1000 (200 random labels), 784-32-10 relu, {steps} steps of B={batch}, lr 0.05, μ 0.9: \
         train loss {:.3} → {:.3}; accuracy: clean part {:.3}, random-label part {:.3}, test {:.3}",
        before.loss, after.loss, c.accuracy, r.accuracy, t.accuracy
    );
    assert!((before.loss - 10f64.ln()).abs() < 1.5, "starts near ln 10: {}", before.loss);
    assert!(after.loss < before.loss && t.accuracy > 0.5, "it learns: {after:?}, test {t:?}");
}
