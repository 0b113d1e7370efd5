//! The CPU reference in f64 is the lab's ground truth, so it is itself checked three ways:
//! against the independent vectors in `shared/testdata`, against central finite differences,
//! and against the closed form of softmax cross-entropy at extreme logits.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::random_problem;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use sgd_lab::backend::cpu::{loss_and_accuracy, loss_and_grad, sgd_update, softmax_cross_entropy};
use sgd_lab::model::{Activation, Layout};

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    activation: String,
    layer_sizes: Vec<usize>,
    params: Vec<f64>,
    x: Vec<Vec<f64>>,
    y: Vec<u32>,
    loss: f64,
    accuracy: f64,
    grad: Vec<f64>,
    sgd: SgdCase,
}

#[derive(Deserialize)]
struct SgdCase {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    steps: Vec<SgdStep>,
}

#[derive(Deserialize)]
struct SgdStep {
    loss_before_step: f64,
    params_after_step: Vec<f64>,
}

fn load_vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_mlp_vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e} (a copy of shared/testdata, kept in the repo)"));
    serde_json::from_str(&text).expect("test vectors parse")
}

fn activation(name: &str) -> Activation {
    match name {
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "linear" => Activation::Linear,
        other => panic!("unknown activation {other}"),
    }
}

#[track_caller]
fn assert_rel(actual: &[f64], expected: &[f64], rel: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let scale = expected.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-300);
    let bad: Vec<String> = actual
        .iter()
        .zip(expected)
        .enumerate()
        // A NaN difference counts as a mismatch.
        .filter(|(_, (a, e))| (*a - *e).abs().partial_cmp(&(rel * scale)).is_none_or(|o| o == std::cmp::Ordering::Greater))
        .take(5)
        .map(|(i, (a, e))| format!("[{i}] {a} vs {e}"))
        .collect();
    assert!(bad.is_empty(), "{what}: mismatches beyond {rel:e} relative to max |expected| {scale:e}: {bad:?}");
}

#[test]
fn loss_accuracy_and_gradient_match_the_independent_vectors() {
    for (i, c) in load_vectors().cases.iter().enumerate() {
        let layout = Layout::new(&c.layer_sizes, activation(&c.activation));
        assert_eq!(layout.params_per_model, c.params.len(), "case {i}: layout size");
        let x: Vec<f64> = c.x.iter().flatten().copied().collect();
        let (loss, grad) = loss_and_grad(&layout, &c.params, &x, &c.y);
        let (_, acc) = loss_and_accuracy(&layout, &c.params, &x, &c.y);
        assert_rel(&[loss], &[c.loss], 1e-12, &format!("case {i} loss"));
        assert_rel(&[acc], &[c.accuracy], 1e-12, &format!("case {i} accuracy"));
        assert_rel(&grad, &c.grad, 1e-9, &format!("case {i} gradient"));
    }
}

#[test]
fn three_sgd_steps_with_momentum_and_weight_decay_match_pytorchs_convention() {
    for (i, c) in load_vectors().cases.iter().enumerate() {
        let layout = Layout::new(&c.layer_sizes, activation(&c.activation));
        let x: Vec<f64> = c.x.iter().flatten().copied().collect();
        let mut params = c.params.clone();
        let mut velocity = vec![0.0; params.len()];
        for (s, step) in c.sgd.steps.iter().enumerate() {
            let (loss, grad) = loss_and_grad(&layout, &params, &x, &c.y);
            assert_rel(&[loss], &[step.loss_before_step], 1e-12, &format!("case {i} step {s} loss"));
            sgd_update(&mut params, &grad, &mut velocity, c.sgd.lr, c.sgd.momentum, c.sgd.weight_decay);
            assert_rel(&params, &step.params_after_step, 1e-9, &format!("case {i} params after step {s}"));
        }
    }
}

#[test]
fn gradients_agree_with_central_finite_differences_on_random_tiny_nets() {
    let mut rng = ChaCha8Rng::seed_from_u64(2017);
    for act in [Activation::Tanh, Activation::Relu, Activation::Linear] {
        for trial in 0..20 {
            let (layout, params, x, y) = random_problem(&mut rng, act);
            let (_, grad) = loss_and_grad(&layout, &params, &x, &y);
            for _ in 0..3 {
                let v: Vec<f64> = (0..params.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
                let eps = 1e-5;
                let shifted = |sign: f64| {
                    let p: Vec<f64> = params.iter().zip(&v).map(|(p, d)| p + sign * eps * d).collect();
                    loss_and_grad(&layout, &p, &x, &y).0
                };
                let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
                let exact: f64 = grad.iter().zip(&v).map(|(g, d)| g * d).sum();
                let err = (fd - exact).abs() / exact.abs().max(1e-8);
                // ReLU: a kink inside ±eps of a pre-activation breaks the finite difference, not the gradient.
                assert!(err < 1e-6, "{act:?} trial {trial} widths {:?}: directional derivative {exact} vs finite difference {fd} (rel {err:e})", layout.widths);
            }
        }
    }
}

#[test]
fn softmax_cross_entropy_is_stable_at_logits_of_plus_minus_ten_thousand() {
    let logits = [1e4f64, -1e4, 0.0, 1e4, -1e4, 0.0];
    let mut d = [0f64; 6];
    let (loss, correct) = softmax_cross_entropy(&logits, &[0, 1], 2, 3, Some(&mut d));
    assert_eq!(loss, 2e4, "row 0 costs 0, row 1 costs 2e4");
    assert_eq!(correct, 1);
    assert_eq!(d, [0.0, 0.0, 0.0, 0.5, -0.5, 0.0]);

    let logits32 = [1e4f32, -1e4, 0.0, 1e4, -1e4, 0.0];
    let mut d32 = [0f32; 6];
    let (loss32, _) = softmax_cross_entropy(&logits32, &[0, 1], 2, 3, Some(&mut d32));
    assert_eq!(loss32, 2e4);
    assert!(d32.iter().all(|v| v.is_finite()));
}

#[test]
fn ties_in_the_logits_count_the_first_class_as_the_prediction() {
    let (_, correct) = softmax_cross_entropy(&[1.0f64, 1.0, 1.0, 1.0], &[0, 1], 2, 2, None);
    assert_eq!(correct, 1, "row 0 (label 0) is right, row 1 (label 1) is wrong");
}
