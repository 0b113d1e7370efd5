//! Keskar's ε-sharpness on the CPU f64 backend: non-negative, inside the box, better than random search,
//! the first-order value for small ε, parameters restored.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::tiny_backend;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::analysis::sharpness::{epsilon_sharpness, SharpnessOptions};
use sgd_lab::analysis::Subset;
use sgd_lab::backend::Backend;
use sgd_lab::model::{Activation, Layout};

#[test]
fn sharpness_is_nonnegative_in_the_box_beats_random_search_and_restores_the_parameters() {
    for act in [Activation::Tanh, Activation::Relu] {
        let layout = Layout::new(&[4, 7, 6, 3], act);
        let (k, p, n) = (2, layout.params_per_model, 41);
        let (mut b, h, _) = tiny_backend(&layout, k, n, 16, 5);
        let subset = Subset { data: h, start: 3, count: 35 };
        let before = pollster::block_on(b.read_params()).unwrap();
        let eps = 1e-3;
        let rep = pollster::block_on(epsilon_sharpness(&mut b, subset, &SharpnessOptions { epsilon: eps, steps: 10 })).unwrap();
        assert_eq!(pollster::block_on(b.read_params()).unwrap(), before, "parameters restored");
        assert_eq!(rep.perturbation.len(), k * p);
        for (i, y) in rep.perturbation.iter().enumerate() {
            assert!(y.abs() <= eps * (f64::from(before[i]).abs() + 1.0) * (1.0 + 1e-12), "y[{i}] = {y} outside the box");
        }
        // Random search in the box: uniform points and random corners.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut rand_best = vec![f64::NEG_INFINITY; k];
        for trial in 0..200 {
            let shifted: Vec<f32> = before
                .iter()
                .map(|&t| {
                    let s = eps * (f64::from(t).abs() + 1.0);
                    let u: f64 = if trial % 2 == 0 { rng.random_range(-1.0..1.0) } else if rng.random::<bool>() { 1.0 } else { -1.0 };
                    (f64::from(t) + u * s) as f32
                })
                .collect();
            b.write_params(&shifted).unwrap();
            let ev = pollster::block_on(b.evaluate(h, subset.start, subset.count)).unwrap();
            for m in 0..k {
                rand_best[m] = rand_best[m].max(ev[m].loss);
            }
        }
        for (m, r) in rep.models.iter().enumerate() {
            println!("{act:?} model {m}: {r:?}, random search max loss {}", rand_best[m]);
            assert!(r.sharpness >= 0.0 && r.sharpness.is_finite());
            assert!(r.sharpness > 0.0, "a random net is not at a maximum");
            assert!(r.max_loss >= rand_best[m], "ascent {} < random search {}", r.max_loss, rand_best[m]);
            assert!((r.sharpness - 100.0 * (r.max_loss - r.loss) / (1.0 + r.loss)).abs() < 1e-12);
        }
    }
}

#[test]
fn small_epsilon_approaches_the_first_order_value() {
    let layout = Layout::new(&[5, 8, 4], Activation::Tanh);
    let (mut b, h, _) = tiny_backend(&layout, 3, 30, 8, 11);
    let subset = Subset { data: h, start: 0, count: 30 };
    for eps in [1e-4, 1e-5] {
        let rep = pollster::block_on(epsilon_sharpness(&mut b, subset, &SharpnessOptions { epsilon: eps, steps: 3 })).unwrap();
        for r in &rep.models {
            let ratio = r.sharpness / r.first_order;
            println!("eps {eps}: sharpness {} first order {} ratio {ratio}", r.sharpness, r.first_order);
            assert!(r.best_step >= 1, "the best point is found after at least one ascent step");
            assert!((ratio - 1.0).abs() < 20.0 * eps + 2e-3, "ratio {ratio}");
        }
    }
}

#[test]
fn the_result_does_not_depend_on_the_chunk_size() {
    let layout = Layout::new(&[3, 6, 4], Activation::Tanh);
    let run = |max_batch| {
        let (mut b, h, _) = tiny_backend(&layout, 2, 25, max_batch, 3);
        pollster::block_on(epsilon_sharpness(&mut b, Subset { data: h, start: 0, count: 25 }, &SharpnessOptions::default())).unwrap()
    };
    let (a, c) = (run(25), run(4));
    for (x, y) in a.models.iter().zip(&c.models) {
        assert!((x.sharpness - y.sharpness).abs() <= 1e-6 * x.sharpness.abs().max(1e-9), "{x:?} vs {y:?}");
    }
}
