//! The synthetic 2-D generators: seeded and reproducible, balanced, shaped as documented, and their
//! serde configs validated with the field named.

use sgd_lab::data::{blobs, circles, two_spirals, xor, Dataset, SyntheticData};
use sgd_lab::train::TrainConfig;

fn class_counts(d: &Dataset) -> Vec<usize> {
    let mut c = vec![0; d.classes];
    for &y in &d.labels {
        c[y as usize] += 1;
    }
    c
}

fn point(d: &Dataset, i: usize) -> (f64, f64) {
    (d.feature(i, 0) as f64, d.feature(i, 1) as f64)
}

fn all_generators(seed: u64) -> Vec<SyntheticData> {
    vec![
        SyntheticData::TwoSpirals { n: 101, noise: 0.1, seed },
        SyntheticData::Circles { n: 101, noise: 0.1, factor: 0.5, seed },
        SyntheticData::Xor { n: 101, noise: 0.1, seed },
        SyntheticData::Blobs { n: 101, classes: 4, noise: 0.1, seed },
    ]
}

#[test]
fn every_generator_is_reproducible_from_its_seed_and_changes_with_it() {
    for (a, b) in all_generators(7).iter().zip(all_generators(8)) {
        let d = a.generate().unwrap();
        assert_eq!(d, a.generate().unwrap(), "{a:?} is not reproducible");
        assert_ne!(d.features, b.generate().unwrap().features, "{a:?} ignores its seed");
        assert_eq!((d.n, d.dim, d.classes), (101, 2, a.classes()));
    }
}

#[test]
fn every_generator_is_balanced_to_within_one_example() {
    for g in all_generators(1) {
        let counts = class_counts(&g.generate().unwrap());
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "{g:?}: {counts:?}");
    }
    assert_eq!(class_counts(&blobs(120, 6, 0.3, 2).unwrap()), vec![20; 6]);
    assert_eq!(class_counts(&circles(50, 0.3, 0.4, 2).unwrap()), vec![25, 25]);
    assert_eq!(class_counts(&xor(50, 0.3, 2).unwrap()), vec![25, 25]);
    assert_eq!(class_counts(&two_spirals(50, 0.3, 2).unwrap()), vec![25, 25]);
}

#[test]
fn noiseless_circles_lie_on_their_radii() {
    let d = circles(200, 0.0, 0.3, 5).unwrap();
    for i in 0..d.n {
        let (x, y) = point(&d, i);
        let want = if d.labels[i] == 0 { 1.0 } else { 0.3 };
        assert!(((x * x + y * y).sqrt() - want).abs() < 1e-5, "example {i}");
    }
}

#[test]
fn noiseless_xor_puts_each_class_in_its_quadrants() {
    let d = xor(400, 0.0, 5).unwrap();
    let mut quadrants = [0; 4];
    for i in 0..d.n {
        let (x, y) = point(&d, i);
        assert!(x != 0.0 && y != 0.0 && x.abs() <= 1.0 && y.abs() <= 1.0);
        assert_eq!(d.labels[i], ((x > 0.0) != (y > 0.0)) as u32, "example {i} at ({x}, {y})");
        quadrants[(x > 0.0) as usize * 2 + (y > 0.0) as usize] += 1;
    }
    assert!(quadrants.iter().all(|&q| q > 60), "all four quadrants are used: {quadrants:?}");
}

#[test]
fn noiseless_blobs_sit_on_the_unit_circle_at_their_angles() {
    let d = blobs(8, 4, 0.0, 0).unwrap();
    let (x, y) = point(&d, 1); // class 1 of 4: angle π/2
    assert!(x.abs() < 1e-6 && (y - 1.0).abs() < 1e-6);
    let noisy = blobs(4000, 4, 0.2, 0).unwrap();
    let (mut sx, mut n) = (0.0, 0);
    for i in (0..noisy.n).filter(|&i| noisy.labels[i] == 0) {
        sx += point(&noisy, i).0;
        n += 1;
    }
    assert!((sx / n as f64 - 1.0).abs() < 0.02, "class 0's mean x is about 1");
}

#[test]
fn the_new_kinds_parse_with_snake_case_tags_and_defaults() {
    let c: SyntheticData = serde_json::from_str(r#"{"kind": "circles", "n": 10}"#).unwrap();
    assert_eq!(c, SyntheticData::Circles { n: 10, noise: 0.1, factor: 0.5, seed: 0 });
    let x: SyntheticData = serde_json::from_str(r#"{"kind": "xor", "n": 10, "seed": 3}"#).unwrap();
    assert_eq!(x, SyntheticData::Xor { n: 10, noise: 0.1, seed: 3 });
    let b: SyntheticData = serde_json::from_str(r#"{"kind": "blobs", "n": 10, "classes": 5, "noise": 0.2}"#).unwrap();
    assert_eq!(b, SyntheticData::Blobs { n: 10, classes: 5, noise: 0.2, seed: 0 });
    assert!(serde_json::from_str::<SyntheticData>(r#"{"kind": "xor", "n": 10, "factor": 0.5}"#).is_err(), "unknown fields are refused");
    for g in all_generators(0) {
        assert_eq!(serde_json::from_str::<SyntheticData>(&serde_json::to_string(&g).unwrap()).unwrap(), g);
    }
}

fn config_error(data: &str) -> String {
    let text = format!(
        r#"{{"model": {{"input": 2, "hidden": [8], "classes": 4, "activation": "tanh", "init": "xavier"}},
            "data": {data}, "batch_size": 4, "steps": 2, "models": [{{"lr": 0.1}}]}}"#
    );
    TrainConfig::from_json(&text).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
}

#[test]
fn the_train_config_accepts_the_new_kinds_and_names_bad_fields() {
    assert_eq!(config_error(r#"{"kind": "blobs", "n": 40, "classes": 4}"#), "");
    assert_eq!(config_error(r#"{"kind": "circles", "n": 40}"#), "");
    assert!(config_error(r#"{"kind": "circles", "n": 40, "factor": 1.0}"#).contains("data.factor"));
    assert!(config_error(r#"{"kind": "xor", "n": 40, "noise": -1}"#).contains("data.noise"));
    assert!(config_error(r#"{"kind": "xor", "n": 1}"#).contains("data.n"));
    assert!(config_error(r#"{"kind": "blobs", "n": 40, "classes": 1}"#).contains("data.classes"));
    assert!(config_error(r#"{"kind": "blobs", "n": 3, "classes": 4}"#).contains("data.n"));
    assert!(config_error(r#"{"kind": "circles", "n": 3}"#).contains("larger than the 3"), "len() counts the new kinds");
}
