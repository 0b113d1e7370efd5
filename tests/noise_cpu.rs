//! McCandlish's B_simple on the CPU f64 backend against the exact per-example gradient covariance.
#![cfg(not(target_arch = "wasm32"))]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::analysis::noise::{gradient_noise_scale, NoiseOptions};
use sgd_lab::analysis::Subset;
use sgd_lab::backend::cpu::{loss_and_grad, CpuBackend};
use sgd_lab::backend::Backend;
use sgd_lab::data::{Dataset, Features};
use sgd_lab::model::{Activation, Layout};

#[test]
fn b_simple_matches_the_exact_per_example_gradient_covariance() {
    let layout = Layout::new(&[3, 6, 3], Activation::Tanh);
    let (k, p, n) = (2, layout.params_per_model, 24);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
    let data = Dataset::new("tiny", 3, 3, Features::F32(x.clone()), y.clone()).unwrap();
    let mut b = CpuBackend::<f64>::new(&layout, k, 32).unwrap();
    let h = b.upload_dataset(&data).unwrap();
    let params: Vec<f32> = (0..k * p).map(|_| rng.random_range(-0.8..0.8)).collect();
    b.write_params(&params).unwrap();
    let subset = Subset { data: h, start: 4, count: 20 };
    let est = pollster::block_on(gradient_noise_scale(&mut b, subset, &NoiseOptions { small: 2, big: 16, repeats: 3000, seed: 1 })).unwrap();
    for m in 0..k {
        let theta: Vec<f64> = params[m * p..(m + 1) * p].iter().map(|&v| f64::from(v)).collect();
        let grads: Vec<Vec<f64>> = (4..24)
            .map(|i| {
                let xi: Vec<f64> = x[i * 3..i * 3 + 3].iter().map(|&v| f64::from(v)).collect();
                loss_and_grad(&layout, &theta, &xi, &y[i..i + 1]).1
            })
            .collect();
        let mean: Vec<f64> = (0..p).map(|j| grads.iter().map(|g| g[j]).sum::<f64>() / 20.0).collect();
        let g2: f64 = mean.iter().map(|v| v * v).sum();
        let tr: f64 = grads.iter().map(|g| g.iter().zip(&mean).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()).sum::<f64>() / 20.0;
        let e = &est[m];
        println!("model {m}: exact |G|² {g2} tr Σ {tr} B_simple {}; estimated {e:?}", tr / g2);
        assert!((e.mean_sq_small - (g2 + tr / 2.0)).abs() < 0.05 * (g2 + tr / 2.0));
        assert!((e.mean_sq_big - (g2 + tr / 16.0)).abs() < 0.05 * (g2 + tr / 16.0));
        assert!((e.trace_sigma - tr).abs() < 0.1 * tr, "tr Σ {} vs {tr}", e.trace_sigma);
        assert!((e.b_simple - tr / g2).abs() < 0.2 * tr / g2, "B_simple {} vs {}", e.b_simple, tr / g2);
    }
    assert!(pollster::block_on(gradient_noise_scale(&mut b, subset, &NoiseOptions { small: 4, big: 4, repeats: 1, seed: 0 })).is_err());
}
