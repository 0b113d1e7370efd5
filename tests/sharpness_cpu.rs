//! Keskar's ε-sharpness on the CPU f64 backend: the first-order value for small ε, independent of the chunk
//! size. Non-negative, inside the box, better than random search, parameters restored: on every backend, in
//! tests/suite/sharpness.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::tiny_backend;

use sgd_lab::analysis::sharpness::{epsilon_sharpness, SharpnessOptions};
use sgd_lab::analysis::Subset;
use sgd_lab::model::{Activation, Layout};

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
