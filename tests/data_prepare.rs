//! Preparing a real data set from its raw files, on a small imbalanced stand-in built in memory:
//! stratified subsets with exact counts, disjoint splits, exactly round(p·N) random labels that always
//! change the class, normalisation from the training split, and the config's validation.

use std::collections::HashSet;

use sgd_lab::data::idx::{IdxImages, LabelledImages};
use sgd_lab::data::prepare::{prepare, stratified_counts};
use sgd_lab::data::{Dataset, DatasetConfig, Normalise, PrepareOptions, PreparedData, RawData, RealDataset};
use sgd_lab::LabError;

/// `counts[c]` examples of class c, interleaved, 3×3 pixels that depend on the class and on a hash of the row.
fn raw_with(counts: &[usize], test: usize) -> RawData {
    let make = |counts: &[usize]| {
        let mut labels = Vec::new();
        let mut left = counts.to_vec();
        while left.iter().any(|&l| l > 0) {
            for (c, l) in left.iter_mut().enumerate() {
                if *l > 0 {
                    *l -= 1;
                    labels.push(c as u8);
                }
            }
        }
        let pixels = (0..labels.len() * 9)
            .map(|i| ((i as u64 * 2654435761 % 251) as u8).wrapping_add(labels[i / 9] * 20))
            .collect();
        let images = IdxImages { n: labels.len(), rows: 3, cols: 3, pixels };
        LabelledImages::new("stand-in", images, labels, counts.len()).unwrap()
    };
    let test_counts = vec![test; counts.len()];
    RawData::new("stand-in", counts.len(), make(counts), make(&test_counts)).unwrap()
}

/// 5 classes of 100, 80, 60, 40, 20 examples (300 in all).
fn raw() -> RawData {
    raw_with(&[100, 80, 60, 40, 20], 4)
}

fn opts(train_size: usize, validation_size: usize, p: f64, seed: u64) -> PrepareOptions {
    PrepareOptions { train_size, validation_size, random_label_fraction: p, seed, normalise: Normalise::Global, ..PrepareOptions::default() }
}

fn counts_of(labels: impl Iterator<Item = u32>, classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for y in labels {
        c[y as usize] += 1;
    }
    c
}

fn mean_std(d: &Dataset) -> (f64, f64) {
    let vals: Vec<f64> = (0..d.n).flat_map(|r| (0..d.dim).map(move |c| (r, c))).map(|(r, c)| d.feature(r, c) as f64).collect();
    let m = vals.iter().sum::<f64>() / vals.len() as f64;
    let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
    (m, v.sqrt())
}

#[test]
fn stratified_counts_add_up_exactly_and_stay_within_one_of_proportional() {
    for (counts, total) in [(vec![100, 80, 60, 40, 20], 37), (vec![6000; 10], 1000), (vec![5, 1, 1], 2), (vec![3, 3, 3], 9), (vec![7, 0, 2], 4)] {
        let shares = stratified_counts(&counts, total);
        let n: usize = counts.iter().sum();
        assert_eq!(shares.iter().sum::<usize>(), total, "{counts:?} → {shares:?}");
        for (s, c) in shares.iter().zip(&counts) {
            let exact = total as f64 * *c as f64 / n as f64;
            assert!((*s as f64 - exact).abs() < 1.0 && s <= c, "{counts:?} {total} → {shares:?}");
        }
    }
    assert_eq!(stratified_counts(&[6000; 10], 1000), vec![100; 10]);
}

#[test]
fn the_training_subset_is_stratified_with_exact_counts() {
    let p = prepare(&raw(), &opts(150, 0, 0.0, 1)).unwrap();
    assert_eq!(p.train.n, 150);
    assert_eq!(counts_of(p.train.labels.iter().copied(), 5), vec![50, 40, 30, 20, 10]);
    let p = prepare(&raw(), &opts(37, 30, 0.0, 1)).unwrap();
    assert_eq!(counts_of(p.validation.as_ref().unwrap().labels.iter().copied(), 5), vec![10, 8, 6, 4, 2]);
    assert_eq!(counts_of(p.train.labels.iter().copied(), 5), stratified_counts(&[90, 72, 54, 36, 18], 37));
}

#[test]
fn train_and_validation_rows_are_disjoint_sorted_and_match_the_features() {
    let r = raw();
    for (n, v) in [(150, 100), (200, 100), (1, 299), (270, 30)] {
        let p = prepare(&r, &opts(n, v, 0.0, 9)).unwrap();
        let train: HashSet<u32> = p.train_rows.iter().copied().collect();
        let val: HashSet<u32> = p.validation_rows.iter().copied().collect();
        assert_eq!((train.len(), val.len()), (n, v), "rows are distinct");
        assert!(train.is_disjoint(&val), "n={n} v={v}");
        assert!(p.train_rows.windows(2).all(|w| w[0] < w[1]) && p.validation_rows.windows(2).all(|w| w[0] < w[1]));
        for (i, &row) in p.train_rows.iter().enumerate().step_by(7) {
            let (scale, shift) = p.train.normalisation().unwrap();
            let want: Vec<f32> = r.train.images.image(row as usize).iter().enumerate().map(|(c, &b)| b as f32 * scale[c] + shift[c]).collect();
            let got: Vec<f32> = (0..9).map(|c| p.train.feature(i, c)).collect();
            assert_eq!(got, want);
            assert_eq!(p.clean_labels[i], r.train.labels[row as usize] as u32);
        }
    }
}

#[test]
fn preparation_is_reproducible_and_the_seed_changes_the_draw() {
    let r = raw();
    let a = prepare(&r, &opts(100, 50, 0.3, 4)).unwrap();
    assert_eq!(a, prepare(&r, &opts(100, 50, 0.3, 4)).unwrap());
    let b = prepare(&r, &opts(100, 50, 0.3, 5)).unwrap();
    assert_ne!(a.train_rows, b.train_rows);
    assert_ne!(a.corrupted, b.corrupted);
}

fn check_random_labels(p: &PreparedData, fraction: f64) {
    let n = p.train.n;
    assert_eq!(p.corrupted.len(), n);
    assert_eq!(p.corrupted_count(), (fraction * n as f64).round() as usize, "exactly round(p·N) labels are replaced");
    for i in 0..n {
        if p.corrupted[i] {
            assert_ne!(p.train.labels[i], p.clean_labels[i], "a replaced label is a different class (example {i})");
        } else {
            assert_eq!(p.train.labels[i], p.clean_labels[i], "a kept label is the true one (example {i})");
        }
    }
}

#[test]
fn exactly_round_p_n_labels_are_replaced_each_by_a_different_class() {
    let r = raw();
    for (n, f) in [(150, 0.0), (150, 0.1), (149, 0.25), (7, 0.5), (100, 1.0 / 3.0), (200, 1.0), (3, 0.5)] {
        let p = prepare(&r, &opts(n, 0, f, 11)).unwrap();
        check_random_labels(&p, f);
    }
}

#[test]
fn random_labels_reach_every_other_class_about_uniformly() {
    let r = raw_with(&[400; 4], 1);
    let p = prepare(&r, &opts(1600, 0, 1.0, 3)).unwrap();
    check_random_labels(&p, 1.0);
    // For true class 0, the new class is 1, 2 or 3 with probability 1/3 each (400 draws).
    let moved = counts_of((0..p.train.n).filter(|&i| p.clean_labels[i] == 0).map(|i| p.train.labels[i]), 4);
    assert_eq!(moved[0], 0);
    assert!(moved[1..].iter().all(|&m| (90..=180).contains(&m)), "{moved:?}");
}

#[test]
fn the_mask_splits_the_training_set_into_clean_and_corrupted_parts() {
    let p = prepare(&raw(), &opts(120, 0, 0.25, 2)).unwrap();
    let clean = p.clean_train().unwrap();
    let corrupted = p.corrupted_train().unwrap().unwrap();
    assert_eq!((clean.n, corrupted.n), (90, 30));
    let pos = p.corrupted_positions();
    assert_eq!(corrupted.labels, pos.iter().map(|&i| p.train.labels[i]).collect::<Vec<_>>());
    assert_eq!(corrupted.feature(3, 4), p.train.feature(pos[3], 4));
    assert!(corrupted.labels.iter().zip(&pos).all(|(&y, &i)| y != p.clean_labels[i]));
    assert!(prepare(&raw(), &opts(120, 0, 0.0, 2)).unwrap().corrupted_train().unwrap().is_none());
}

#[test]
fn global_normalisation_gives_the_training_features_mean_0_and_std_1() {
    let p = prepare(&raw(), &opts(200, 50, 0.0, 6)).unwrap();
    let (m, s) = mean_std(&p.train);
    assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5, "mean {m}, std {s}");
    // The other splits use the training statistics: close to, not exactly, 0 and 1.
    let v = p.validation.as_ref().unwrap();
    assert_eq!(v.normalisation(), p.train.normalisation());
    assert_eq!(p.test.normalisation(), p.train.normalisation());
    let (scale, shift) = p.train.normalisation().unwrap();
    assert!(scale.iter().all(|&s| (s as f64 - 1.0 / (255.0 * p.pixel_std)).abs() < 1e-6), "one scale for every pixel");
    assert!(shift.iter().all(|&s| (s as f64 + p.pixel_mean / p.pixel_std).abs() < 1e-6), "one shift for every pixel");
}

#[test]
fn per_pixel_normalisation_gives_each_training_pixel_mean_0_and_std_1() {
    let mut o = opts(200, 50, 0.0, 6);
    o.normalise = Normalise::PerPixel;
    let p = prepare(&raw(), &o).unwrap();
    let (scale, _) = p.train.normalisation().unwrap();
    assert!(scale.windows(2).any(|w| w[0] != w[1]), "pixels get their own scales");
    assert_eq!(scale.len(), p.train.dim);
    for (c, &pixel_scale) in scale.iter().enumerate() {
        let col: Vec<f64> = (0..p.train.n).map(|r| p.train.feature(r, c) as f64).collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let std = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
        if pixel_scale == 0.0 {
            assert!(col.iter().all(|&x| x == 0.0), "a constant pixel becomes the feature 0");
        } else {
            assert!(mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-5, "pixel {c}: mean {mean}, std {std}");
        }
    }
}

#[test]
fn unit_range_normalisation_maps_bytes_into_0_1() {
    let mut o = opts(100, 0, 0.0, 6);
    o.normalise = Normalise::UnitRange;
    let p = prepare(&raw(), &o).unwrap();
    let (scale, shift) = p.train.normalisation().unwrap();
    assert!(scale.iter().all(|&s| s == 1.0 / 255.0) && shift.iter().all(|&s| s == 0.0));
    assert!((0..p.train.n).all(|r| (0..9).all(|c| (0.0..=1.0).contains(&p.train.feature(r, c)))));
}

#[test]
fn constant_pixels_cannot_be_standardised_and_say_what_to_do() {
    let mut r = raw();
    r.train.images.pixels.fill(7);
    let e = prepare(&r, &opts(10, 0, 0.0, 0)).unwrap_err().to_string();
    assert!(e.contains("same value") && e.contains("unit_range"), "{e}");
}

#[test]
fn impossible_sizes_are_refused() {
    let e = prepare(&raw(), &opts(250, 51, 0.0, 0)).unwrap_err().to_string();
    assert!(e.contains("train_size") && e.contains("300"), "{e}");
    assert!(prepare(&raw(), &opts(0, 0, 0.0, 0)).is_err());
    assert!(prepare(&raw(), &opts(10, 0, 1.5, 0)).unwrap_err().to_string().contains("random_label_fraction"));
}

fn config_error(json: &str) -> String {
    match DatasetConfig::from_json(json) {
        Ok(_) => String::new(),
        Err(LabError::Config { field, message }) => format!("{field}: {message}"),
        Err(e) => panic!("not a config error: {e}"),
    }
}

#[test]
fn a_dataset_config_parses_with_defaults_and_round_trips() {
    let c = DatasetConfig::from_json(r#"{"name": "fashion-mnist", "train_size": 1000, "validation_fraction": 0.1, "random_label_fraction": 0.2, "seed": 3}"#).unwrap();
    assert_eq!(c.name, RealDataset::FashionMnist);
    assert_eq!(c.normalise, Normalise::Global);
    let shape = RealDataset::FashionMnist.known_shape().unwrap();
    assert_eq!((c.len(), c.validation_len(&shape)), (1000, 6000));
    let o = c.options(&shape);
    assert_eq!((o.train_size, o.validation_size, o.random_label_fraction, o.seed), (1000, 6000, 0.2, 3));
    assert_eq!(DatasetConfig::from_json(&serde_json::to_string(&c).unwrap()).unwrap(), c);
    let all = DatasetConfig::from_json(r#"{"name": "mnist", "validation_size": 5000, "normalise": "unit_range"}"#).unwrap();
    assert_eq!(all.len(), 55_000, "without train_size, every example not held out trains");
    assert_eq!(DatasetConfig::new(RealDataset::Mnist).len(), 60_000);
}

#[test]
fn each_bad_dataset_field_is_named() {
    assert!(config_error(r#"{"name": "cifar-10"}"#).contains("unknown variant `cifar-10`, expected one of `fashion-mnist`, `mnist`, `idx`"));
    assert!(config_error(r#"{"name": "mnist", "train_size": 0}"#).starts_with("data.train_size"));
    assert!(config_error(r#"{"name": "mnist", "train_size": 60001}"#).starts_with("data.train_size"));
    assert!(config_error(r#"{"name": "mnist", "train_size": 55001, "validation_size": 5000}"#).contains("between 1 and 55000"));
    assert!(config_error(r#"{"name": "mnist", "validation_size": 60000}"#).starts_with("data.validation_size"));
    assert!(config_error(r#"{"name": "mnist", "validation_fraction": 1.0}"#).starts_with("data.validation_fraction"));
    assert!(config_error(r#"{"name": "mnist", "validation_fraction": 0.1, "validation_size": 10}"#).contains("not both"));
    assert!(config_error(r#"{"name": "mnist", "random_label_fraction": -0.1}"#).starts_with("data.random_label_fraction"));
    assert!(config_error(r#"{"name": "mnist", "normalise": "per_feature"}"#).contains("unknown variant `per_feature`"));
    assert!(config_error(r#"{"name": "mnist", "trainsize": 10}"#).contains("unknown field `trainsize`"));
}

// load_named reads files: native only (the browser build has no file system).
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[cfg(not(target_arch = "wasm32"))] // load_named reads files: native only
fn load_named_says_how_to_fetch_missing_files() {
    let e = sgd_lab::data::load_named(&DatasetConfig::new(RealDataset::Mnist), std::path::Path::new("/nonexistent-data-dir"), false).unwrap_err().to_string();
    assert!(e.contains("mnist/train-images-idx3-ubyte.gz") && e.contains("scripts/fetch-data"), "{e}");
}
