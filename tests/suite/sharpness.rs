//! Keskar's ε-sharpness: non-negative, inside the box, better than random search, parameters restored.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{tiny, Engine};
use sgd_lab::analysis::sharpness::{epsilon_sharpness, SharpnessOptions};
use sgd_lab::analysis::Subset;
use sgd_lab::backend::Backend;
use sgd_lab::model::{Activation, Layout};

pub fn sharpness_is_nonnegative_in_the_box_beats_random_search_and_restores_the_parameters<E: Engine>(engine: &E) {
    for act in [Activation::Tanh, Activation::Relu] {
        let layout = Layout::new(&[4, 7, 6, 3], act);
        let (k, p, n) = (2, layout.params_per_model, 41);
        let (mut b, h) = tiny(engine, &layout, k, n, 16, 5);
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
