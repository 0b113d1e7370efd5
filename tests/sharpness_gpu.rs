//! ε-sharpness and B_simple on the GPU backend (lavapipe natively) against the CPU f64 backend, same parameters.
#![cfg(not(target_arch = "wasm32"))]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::analysis::noise::{gradient_noise_scale, NoiseOptions};
use sgd_lab::analysis::sharpness::{epsilon_sharpness, SharpnessOptions};
use sgd_lab::analysis::Subset;
use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::gpu::{GpuBackend, GpuContext};
use sgd_lab::backend::Backend;
use sgd_lab::data::{Dataset, Features};
use sgd_lab::model::{Activation, Layout};

#[test]
fn gpu_epsilon_sharpness_and_noise_scale_match_the_cpu_and_restore_the_parameters() {
    pollster::block_on(async {
        let ctx = GpuContext::new().await.expect("a GPU adapter (lavapipe: mesa-vulkan-drivers)");
        let layout = Layout::new(&[3, 7, 3], Activation::Tanh);
        let (k, n) = (2, 30);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let x: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
        let data = Dataset::new("tiny", 3, 3, Features::F32(x), y).unwrap();
        let params: Vec<f32> = (0..k * layout.params_per_model).map(|_| rng.random_range(-0.8..0.8)).collect();
        let mut gpu = GpuBackend::new(&ctx, &layout, k, 16).unwrap();
        let mut cpu = CpuBackend::<f64>::new(&layout, k, 16).unwrap();
        let (hg, hc) = (gpu.upload_dataset(&data).unwrap(), cpu.upload_dataset(&data).unwrap());
        gpu.write_params(&params).unwrap();
        cpu.write_params(&params).unwrap();
        let opts = SharpnessOptions { epsilon: 1e-3, steps: 5 };
        let g = epsilon_sharpness(&mut gpu, Subset { data: hg, start: 2, count: 27 }, &opts).await.unwrap();
        let c = epsilon_sharpness(&mut cpu, Subset { data: hc, start: 2, count: 27 }, &opts).await.unwrap();
        assert_eq!(gpu.read_params().await.unwrap(), params, "parameters restored");
        for (a, b) in g.models.iter().zip(&c.models) {
            println!("gpu {a:?}\ncpu {b:?}");
            assert!((a.sharpness - b.sharpness).abs() <= 2e-3 * b.sharpness + 1e-4, "{a:?} vs {b:?}");
        }
        let nopts = NoiseOptions { small: 2, big: 8, repeats: 50, seed: 3 };
        let g = gradient_noise_scale(&mut gpu, Subset { data: hg, start: 0, count: n }, &nopts).await.unwrap();
        let c = gradient_noise_scale(&mut cpu, Subset { data: hc, start: 0, count: n }, &nopts).await.unwrap();
        for (a, b) in g.iter().zip(&c) {
            assert!((a.b_simple - b.b_simple).abs() <= 1e-3 * b.b_simple.abs(), "{a:?} vs {b:?}");
        }
    });
}
