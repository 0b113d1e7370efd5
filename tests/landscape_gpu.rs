//! The landscape perturbation on the GPU against the CPU reference: the kernel alone (NaN-prefilled
//! output, P not a multiple of the 256-thread workgroup), the backend's in-place perturb, and a whole
//! 2-D grid on a small net vs the CPU f64 backend. Natively on lavapipe and in headless Chromium.

mod common;

use common::{assert_close, ctx, gpu_test, rand_vec, Tolerance};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sgd_lab::analysis::landscape::{interpolate, linspace, pick_model, random_direction, slice_2d, BiasMode, EvalSet};
use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::cpu::perturb::combine;
use sgd_lab::backend::gpu::{kernel_harness, GpuBackend};
use sgd_lab::backend::perturb::Perturb;
use sgd_lab::backend::Backend;
use sgd_lab::data::two_spirals;
use sgd_lab::model::{Activation, Init, MlpSpec, ModelBatch};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);




/// Slice, interpolation-anchor and degenerate coefficient triples.
const COEFFS: [[f32; 3]; 5] = [[1.0, 0.0, 0.0], [1.0, -0.75, 0.3], [0.0, 1.0, 0.0], [-1.5, 2.5, 0.0], [1.0, 1.0, -1.0]];

async fn perturb_kernel_matches_the_cpu_reference() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for (k, p) in [(5, 517), (1, 1), (3, 256), (2, 1000)] {
        let (base, d1, d2) = (rand_vec(&mut rng, p, 2.0), rand_vec(&mut rng, p, 1.0), rand_vec(&mut rng, p, 1.0));
        let coeffs = &COEFFS[..k];
        let got = kernel_harness::perturb(&ctx, k, p, &base, &d1, &d2, coeffs).await.unwrap();
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let mut want = vec![0f64; k * p];
        combine(&f(&base), &f(&d1), &f(&d2), coeffs, &mut want);
        assert_close(&got, &want, Tolerance::f32_kernel(), &format!("perturb K={k} P={p}"));
        // the anchors are exact: (1, 0, 0) is the base, (0, 1, 0) is d1
        assert_eq!(&got[..p], &base[..], "(1, 0, 0) reproduces the base bitwise");
        if k >= 3 {
            assert_eq!(&got[2 * p..3 * p], &d1[..], "(0, 1, 0) reproduces d1 bitwise");
        }
    }
}
gpu_test!(perturb_kernel_matches_the_cpu_reference);

fn spec() -> MlpSpec {
    MlpSpec { input: 2, hidden: vec![9, 5], classes: 2, activation: Activation::Tanh, init: Init::Xavier }
}

async fn backend_perturb_writes_every_model_in_place() {
    let ctx = ctx().await;
    let models = ModelBatch::init(&spec(), &[1, 2, 3]);
    let (layout, p, k) = (models.layout.clone(), models.layout.params_per_model, 3);
    let mut gpu = GpuBackend::new(&ctx, &layout, k, 16).unwrap();
    gpu.write_params(&vec![f32::NAN; k * p]).unwrap();
    let (t0, t1, t2) = (pick_model(&layout, &models.params, 0).unwrap(), pick_model(&layout, &models.params, 1).unwrap(), pick_model(&layout, &models.params, 2).unwrap());
    gpu.set_perturb_basis(&t0, &t1, &t2).unwrap();
    gpu.perturb(&COEFFS[1..4]).unwrap();
    let got = gpu.read_params().await.unwrap();
    let mut want = vec![0f32; k * p];
    combine(&t0, &t1, &t2, &COEFFS[1..4], &mut want);
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    assert_close(&got, &want, Tolerance::f32_kernel(), "backend perturb");
    assert!(gpu.perturb(&COEFFS[..2]).unwrap_err().to_string().contains("one coefficient triple per model (3)"));
}
gpu_test!(backend_perturb_writes_every_model_in_place);

async fn a_gpu_grid_matches_the_cpu_grid_on_a_small_net() {
    let ctx = ctx().await;
    let models = ModelBatch::init(&spec(), &[4, 5]);
    let layout = models.layout.clone();
    let (theta, other) = (pick_model(&layout, &models.params, 0).unwrap(), pick_model(&layout, &models.params, 1).unwrap());
    let d1 = random_direction(&layout, &theta, 9, 0, BiasMode::Zero);
    let d2 = random_direction(&layout, &theta, 9, 1, BiasMode::Normalized);
    let data = two_spirals(70, 0.1, 3).unwrap();
    // K = 4 does not divide the 7 × 5 grid; max_batch 32 gives full and partial evaluation chunks
    let mut gpu = GpuBackend::new(&ctx, &layout, 4, 32).unwrap();
    let mut cpu = CpuBackend::<f64>::new(&layout, 3, 32).unwrap();
    let (hg, hc) = (gpu.upload_dataset(&data).unwrap(), cpu.upload_dataset(&data).unwrap());
    let set = |h| [EvalSet { name: "train".into(), data: h, start: 2, count: 67 }];
    let (alphas, betas) = (linspace(-1.0, 1.0, 7), linspace(-1.0, 1.0, 5));
    let g = slice_2d(&mut gpu, &theta, &d1, &d2, &alphas, &betas, &set(hg)).await.unwrap();
    let c = slice_2d(&mut cpu, &theta, &d1, &d2, &alphas, &betas, &set(hc)).await.unwrap();
    let loss: Vec<f32> = g.sets[0].loss.iter().map(|&v| v as f32).collect();
    assert_close(&loss, &c.sets[0].loss, Tolerance::f32_kernel(), "2-D grid loss, GPU vs CPU f64");
    for (i, (a, b)) in g.sets[0].accuracy.iter().zip(&c.sets[0].accuracy).enumerate() {
        // an example whose two logits tie to within f32 rounding may flip: allow one example per point
        assert!((a - b).abs() <= 1.0 / 67.0 + 1e-12, "point {i}: accuracy {a} vs {b}");
    }
    let alphas = linspace(-1.0, 2.0, 13);
    let g = interpolate(&mut gpu, &theta, &other, &alphas, &set(hg)).await.unwrap();
    let c = interpolate(&mut cpu, &theta, &other, &alphas, &set(hc)).await.unwrap();
    let loss: Vec<f32> = g.sets[0].loss.iter().map(|&v| v as f32).collect();
    assert_close(&loss, &c.sets[0].loss, Tolerance::f32_kernel(), "interpolation loss, GPU vs CPU f64");
}
gpu_test!(a_gpu_grid_matches_the_cpu_grid_on_a_small_net);
