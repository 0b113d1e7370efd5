//! GPU kernels and the GPU backend against the CPU reference in f64, on shapes that are not multiples of
//! the 64×64 GEMM tile, with every output pre-filled with NaN so an unwritten element fails.
//!
//! `hvp_matches_…` covers the HVP kernels: the GEMM's tangent epilogues and `r_softmax.wgsl`.
//!
//! Written once for both targets: natively each test is a `#[test]` driven by `pollster` (on lavapipe in CI),
//! on wasm32 a `#[wasm_bindgen_test]` in headless Chromium's WebGPU.

mod common;

use common::{assert_close, assert_close_f32, ctx, gpu_test, rand_vec, Tolerance};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgd_lab::backend::cpu::{self, CpuBackend};
use sgd_lab::backend::gpu::{kernel_harness, GpuBackend};
use sgd_lab::backend::{Backend, Hyper};
use sgd_lab::data::{two_spirals, Dataset, Features};
use sgd_lab::model::{Activation, Init, Layout, MlpSpec, ModelBatch};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);




const ACTS: [Activation; 3] = [Activation::Linear, Activation::Relu, Activation::Tanh];
/// (rows, fan_in, fan_out): not tile multiples, degenerate, and larger than one tile in each direction.
const SHAPES: [(usize, usize, usize); 4] = [(17, 5, 23), (1, 1, 1), (33, 65, 7), (70, 3, 130)];
const K: usize = 3;

// ---------------------------------------------------------------- GEMM

async fn forward_gemm_matches_cpu_for_every_activation_and_shape() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (rows, fi, fo) in SHAPES {
        for act in ACTS {
            let x = rand_vec(&mut rng, K * rows * fi, 1.0);
            let w = rand_vec(&mut rng, K * fo * fi, 1.0);
            let b = rand_vec(&mut rng, K * fo, 1.0);
            let got = kernel_harness::gemm_forward(&ctx, act, K, rows, fi, fo, &x, &w, &b).await.unwrap();
            let mut want = vec![0f64; K * rows * fo];
            for m in 0..K {
                for r in 0..rows {
                    for j in 0..fo {
                        let mut z = b[m * fo + j] as f64;
                        for i in 0..fi {
                            z += x[(m * rows + r) * fi + i] as f64 * w[(m * fo + j) * fi + i] as f64;
                        }
                        want[(m * rows + r) * fo + j] = cpu::activate(act, z);
                    }
                }
            }
            assert_close(&got, &want, Tolerance::f32_kernel(), &format!("forward {act:?} {rows}×{fi}×{fo}"));
        }
    }
}
gpu_test!(forward_gemm_matches_cpu_for_every_activation_and_shape);

async fn input_gradient_gemm_applies_the_activation_slope() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (rows, fi, fo) in SHAPES {
        for act in ACTS {
            let delta = rand_vec(&mut rng, K * rows * fo, 1.0);
            let w = rand_vec(&mut rng, K * fo * fi, 1.0);
            // stored outputs of the activation (ReLU's include exact zeros, where the slope is 0)
            let a: Vec<f32> = rand_vec(&mut rng, K * rows * fi, 2.0).into_iter().map(|z| cpu::activate(act, z)).collect();
            let got = kernel_harness::gemm_input_grad(&ctx, act, K, rows, fi, fo, &delta, &w, &a).await.unwrap();
            let mut want = vec![0f64; K * rows * fi];
            for m in 0..K {
                for r in 0..rows {
                    for i in 0..fi {
                        let mut s = 0f64;
                        for j in 0..fo {
                            s += delta[(m * rows + r) * fo + j] as f64 * w[(m * fo + j) * fi + i] as f64;
                        }
                        want[(m * rows + r) * fi + i] = s * cpu::activation_slope(act, a[(m * rows + r) * fi + i] as f64);
                    }
                }
            }
            assert_close(&got, &want, Tolerance::f32_kernel(), &format!("input grad {act:?} {rows}×{fi}×{fo}"));
        }
    }
}
gpu_test!(input_gradient_gemm_applies_the_activation_slope);

async fn weight_gradient_gemm_is_delta_transposed_times_input() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (rows, fi, fo) in SHAPES {
        let delta = rand_vec(&mut rng, K * rows * fo, 1.0);
        let x = rand_vec(&mut rng, K * rows * fi, 1.0);
        let got = kernel_harness::gemm_weight_grad(&ctx, K, rows, fi, fo, &delta, &x).await.unwrap();
        let mut want = vec![0f64; K * fo * fi];
        for m in 0..K {
            for j in 0..fo {
                for i in 0..fi {
                    want[(m * fo + j) * fi + i] = (0..rows).map(|r| delta[(m * rows + r) * fo + j] as f64 * x[(m * rows + r) * fi + i] as f64).sum();
                }
            }
        }
        assert_close(&got, &want, Tolerance::f32_kernel(), &format!("weight grad {rows}×{fi}×{fo}"));
    }
}
gpu_test!(weight_gradient_gemm_is_delta_transposed_times_input);

// ---------------------------------------------------------------- gather

async fn gather_decodes_u8_and_f32_rows_and_labels_like_the_cpu() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (n, dim, rows) = (23, 7, 5);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..4)).collect();
    let bytes: Vec<u8> = (0..n * dim).map(|_| rng.random()).collect();
    let u8_data = Dataset::new("u8", dim, 4, Features::U8 { bytes, scale: (0..dim).map(|c| (1.0 + c as f32) / 255.0).collect(), shift: (0..dim).map(|c| -0.5 + 0.1 * c as f32).collect() }, labels.clone()).unwrap();
    let f32_data = Dataset::new("f32", dim, 4, Features::F32(rand_vec(&mut rng, n * dim, 3.0)), labels).unwrap();
    for data in [u8_data, f32_data] {
        let idx: Vec<u32> = (0..K * rows).map(|_| rng.random_range(0..n as u32)).collect();
        let (x, y) = kernel_harness::gather(&ctx, &data, K, rows, &idx).await.unwrap();
        let mut want_x = vec![0f64; K * rows * dim];
        let mut want_y = vec![0u32; K * rows];
        cpu::gather(&data, &idx, &mut want_x, &mut want_y);
        assert_close(&x, &want_x, Tolerance::f32_kernel(), &format!("gathered {} features", data.name));
        assert_eq!(y, want_y, "gathered {} labels", data.name);
    }
}
gpu_test!(gather_decodes_u8_and_f32_rows_and_labels_like_the_cpu);

// ---------------------------------------------------------------- softmax cross-entropy

async fn softmax_ce_matches_cpu_with_huge_logits_ties_and_divergence_flags() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (k, rows, c) = (4, 37, 11);
    let mut logits = rand_vec(&mut rng, k * rows * c, 5.0);
    let mut labels: Vec<u32> = (0..k * rows).map(|_| rng.random_range(0..c as u32)).collect();
    labels[1] = 4; // the tied row's label is the second of the tied classes: only first-index arg-max calls it wrong
    // model 0, row 0: ±1e4 logits; row 1: a tie for the maximum (the first index must win)
    logits[0] = 1e4;
    logits[3] = -1e4;
    logits[c] = 2.0;
    logits[c + 4] = 2.0;
    for v in &mut logits[c + 5..2 * c] {
        *v = -1.0;
    }
    for v in &mut logits[c + 1..c + 4] {
        *v = -1.0;
    }
    // model 2: confidently wrong on every row → mean loss ≈ 2e4 > threshold → flagged at this step
    for r in 0..rows {
        let row = &mut logits[(2 * rows + r) * c..(2 * rows + r + 1) * c];
        let y = labels[2 * rows + r] as usize;
        row.iter_mut().for_each(|v| *v = 0.0);
        row[y] = -1e4;
        row[(y + 1) % c] = 1e4;
    }
    // model 3 had diverged at step 2 already: it records NaN and keeps its flag
    let flags = vec![u32::MAX, u32::MAX, u32::MAX, 2];
    let case = kernel_harness::SoftmaxCase { k, rows, classes: c, logits: logits.clone(), labels: labels.clone(), flags, threshold: 1e3, step: 7 };
    let out = kernel_harness::softmax_ce(&ctx, &case).await.unwrap();

    let l64: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let mut want_d = vec![0f64; k * rows * c];
    let mut want_loss = vec![0f64; k * rows];
    let mut want_ok = vec![0u32; k * rows];
    let mut means = vec![0f64; k];
    for m in 0..k {
        let z = &l64[m * rows * c..(m + 1) * rows * c];
        let y = &labels[m * rows..(m + 1) * rows];
        let (sum, _) = cpu::softmax_cross_entropy(z, y, rows, c, Some(&mut want_d[m * rows * c..(m + 1) * rows * c]));
        means[m] = sum / rows as f64;
        for r in 0..rows {
            let (l, ok) = cpu::softmax_cross_entropy(&z[r * c..(r + 1) * c], &y[r..r + 1], 1, c, None);
            want_loss[m * rows + r] = l;
            want_ok[m * rows + r] = ok as u32;
        }
    }
    assert_eq!(want_ok[1], 0, "the CPU takes the first index on ties");
    assert_close(&out.dlogits, &want_d, Tolerance::f32_kernel(), "dlogits");
    assert_close(&out.row_loss, &want_loss, Tolerance::f32_kernel(), "per-row loss");
    assert_eq!(out.row_correct, want_ok, "per-row correct flags");
    assert_close(&out.losses[..3], &means[..3], Tolerance::f32_kernel(), "mean loss record");
    assert!(out.losses[3].is_nan(), "a model that had diverged records NaN, got {}", out.losses[3]);
    assert_eq!(out.flags, vec![u32::MAX, u32::MAX, 7, 2], "model 2 is flagged at step 7, model 3 keeps its step");
}
gpu_test!(softmax_ce_matches_cpu_with_huge_logits_ties_and_divergence_flags);

// ---------------------------------------------------------------- bias gradient, SGD

async fn bias_gradient_sums_deltas_over_rows_for_every_layer_and_nothing_else() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let layout = Layout::new(&[4, 17, 70, 3], Activation::Relu);
    let (k, rows) = (2, 33);
    let deltas: Vec<Vec<f32>> = layout.widths[1..].iter().map(|&w| rand_vec(&mut rng, k * rows * w, 1.0)).collect();
    let got = kernel_harness::bias_grad(&ctx, &layout, k, rows, &deltas).await.unwrap();
    let p = layout.params_per_model;
    for m in 0..k {
        for (l, lo) in layout.layers.iter().enumerate() {
            let want: Vec<f64> = (0..lo.fan_out).map(|j| (0..rows).map(|r| deltas[l][(m * rows + r) * lo.fan_out + j] as f64).sum()).collect();
            assert_close(&got[m * p + lo.b..m * p + lo.b + lo.fan_out], &want, Tolerance::f32_kernel(), &format!("db model {m} layer {l}"));
            assert!(got[m * p + lo.w..m * p + lo.b].iter().all(|v| v.is_nan()), "the bias kernel wrote into weights of layer {l}");
        }
    }
}
gpu_test!(bias_gradient_sums_deltas_over_rows_for_every_layer_and_nothing_else);

async fn sgd_applies_momentum_and_weight_decay_per_model_and_skips_diverged_models() {
    let ctx = ctx().await;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (k, p) = (4, 301);
    let params = rand_vec(&mut rng, k * p, 1.0);
    let velocity = rand_vec(&mut rng, k * p, 0.1);
    let grads = rand_vec(&mut rng, k * p, 1.0);
    let hyper = [
        Hyper { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 },
        Hyper { lr: 0.01, momentum: 0.0, weight_decay: 0.0 },
        Hyper { lr: 0.5, momentum: 0.5, weight_decay: 1e-2 },
        Hyper { lr: 0.3, momentum: 0.9, weight_decay: 0.0 },
    ];
    let flags = [u32::MAX, u32::MAX, u32::MAX, 4];
    let (new_p, new_v) = kernel_harness::sgd(&ctx, k, p, &params, &velocity, &grads, &hyper, &flags).await.unwrap();
    let mut want_p: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    let mut want_v: Vec<f64> = velocity.iter().map(|&v| v as f64).collect();
    let g64: Vec<f64> = grads.iter().map(|&v| v as f64).collect();
    for (m, &h) in hyper.iter().enumerate().take(3) {
        let r = m * p..(m + 1) * p;
        cpu::sgd_update(&mut want_p[r.clone()], &g64[r.clone()], &mut want_v[r], h.lr as f64, h.momentum as f64, h.weight_decay as f64);
    }
    assert_close(&new_p, &want_p, Tolerance::f32_kernel(), "parameters after one step");
    assert_close(&new_v, &want_v, Tolerance::f32_kernel(), "momentum after one step");
    assert_eq!(new_p[3 * p..], params[3 * p..], "a diverged model is not updated");
}
gpu_test!(sgd_applies_momentum_and_weight_decay_per_model_and_skips_diverged_models);

// ---------------------------------------------------------------- the backend end to end

fn spec(widths_hidden: Vec<usize>, activation: Activation) -> MlpSpec {
    MlpSpec { input: 2, hidden: widths_hidden, classes: 3, activation, init: Init::He }
}

/// Spirals with a third class sprinkled in, so 3 logits are all used.
fn data(n: usize) -> Dataset {
    let mut d = two_spirals(n, 0.1, 11).unwrap();
    d.classes = 3;
    for (i, y) in d.labels.iter_mut().enumerate() {
        if i % 7 == 0 {
            *y = 2;
        }
    }
    d
}

fn random_indices(rng: &mut ChaCha8Rng, count: usize, n: usize) -> Vec<u32> {
    (0..count).map(|_| rng.random_range(0..n as u32)).collect()
}

async fn gradients_match_the_cpu_f64_reference_on_a_tiny_net() {
    let ctx = ctx().await;
    for act in ACTS {
        let s = spec(vec![5, 4], act);
        let (k, batch) = (2, 7);
        let batch_models = ModelBatch::init(&s, &[1, 2]);
        let d = data(40);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let idx = random_indices(&mut rng, k * batch, d.n);
        let mut gpu = GpuBackend::new(&ctx, &batch_models.layout, k, 16).unwrap();
        let mut cpu = CpuBackend::<f64>::new(&batch_models.layout, k, 16).unwrap();
        let (hg, hc) = (gpu.upload_dataset(&d).unwrap(), cpu.upload_dataset(&d).unwrap());
        gpu.write_params(&batch_models.params).unwrap();
        cpu.write_params(&batch_models.params).unwrap();
        let g = gpu.gradients(hg, &idx, batch).await.unwrap();
        let c = cpu.gradients(hc, &idx, batch).await.unwrap();
        assert_close_f32(&g.losses, &c.losses, Tolerance::f32_kernel(), &format!("{act:?} batch losses"));
        assert_close_f32(&g.grads, &c.grads, Tolerance::f32_kernel(), &format!("{act:?} gradients"));
    }
}
gpu_test!(gradients_match_the_cpu_f64_reference_on_a_tiny_net);

/// The paper's deep MLP has 20 layers: every per-layer table (bias reduction, GEMM uniforms) must hold
/// that many entries without one overwriting another.
async fn gradients_of_a_twenty_layer_net_match_the_cpu_in_every_layer() {
    let ctx = ctx().await;
    let s = spec(vec![3; 19], Activation::Tanh);
    assert_eq!(s.layout().layers.len(), 20);
    let (k, batch) = (2, 5);
    let models = ModelBatch::init(&s, &[5, 6]);
    let d = data(30);
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let idx = random_indices(&mut rng, k * batch, d.n);
    let mut gpu = GpuBackend::new(&ctx, &models.layout, k, 8).unwrap();
    let mut cpu = CpuBackend::<f64>::new(&models.layout, k, 8).unwrap();
    let (hg, hc) = (gpu.upload_dataset(&d).unwrap(), cpu.upload_dataset(&d).unwrap());
    gpu.write_params(&models.params).unwrap();
    cpu.write_params(&models.params).unwrap();
    let g = gpu.gradients(hg, &idx, batch).await.unwrap();
    let c = cpu.gradients(hc, &idx, batch).await.unwrap();
    assert_close_f32(&g.grads, &c.grads, Tolerance::f32_kernel(), "gradients of all 20 layers");
}
gpu_test!(gradients_of_a_twenty_layer_net_match_the_cpu_in_every_layer);

async fn evaluate_matches_the_cpu_over_full_and_partial_chunks() {
    let ctx = ctx().await;
    let s = spec(vec![9], Activation::Tanh);
    let models = ModelBatch::init(&s, &[3, 4]);
    let d = data(150);
    let mut gpu = GpuBackend::new(&ctx, &models.layout, 2, 64).unwrap();
    let mut cpu = CpuBackend::<f64>::new(&models.layout, 2, 64).unwrap();
    let (hg, hc) = (gpu.upload_dataset(&d).unwrap(), cpu.upload_dataset(&d).unwrap());
    gpu.write_params(&models.params).unwrap();
    cpu.write_params(&models.params).unwrap();
    // 5..150: two full chunks of 64 and one of 17
    let g = gpu.evaluate(hg, 5, 145).await.unwrap();
    let c = cpu.evaluate(hc, 5, 145).await.unwrap();
    for m in 0..2 {
        assert!(Tolerance::f32_kernel().accepts(g[m].loss, c[m].loss), "model {m}: loss {} vs {}", g[m].loss, c[m].loss);
        assert_eq!(g[m].accuracy, c[m].accuracy, "model {m} accuracy");
    }
}
gpu_test!(evaluate_matches_the_cpu_over_full_and_partial_chunks);

async fn fifty_steps_of_three_models_follow_the_cpu_trajectory() {
    let ctx = ctx().await;
    let s = spec(vec![16, 8], Activation::Tanh);
    let k = 3;
    let models = ModelBatch::init(&s, &[5, 6, 7]);
    let d = data(200);
    let batch = 10;
    let hyper = [
        Hyper { lr: 0.05, momentum: 0.9, weight_decay: 1e-4 },
        Hyper { lr: 0.2, momentum: 0.0, weight_decay: 0.0 },
        Hyper { lr: 0.01, momentum: 0.5, weight_decay: 1e-3 },
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let idx = random_indices(&mut rng, 50 * k * batch, d.n);
    let mut gpu = GpuBackend::new(&ctx, &models.layout, k, 32).unwrap();
    let mut cpu = CpuBackend::<f64>::new(&models.layout, k, 32).unwrap();
    let (hg, hc) = (gpu.upload_dataset(&d).unwrap(), cpu.upload_dataset(&d).unwrap());
    for b in [&mut gpu as &mut dyn BackendSetup, &mut cpu] {
        b.setup(&models.params, &hyper);
    }
    // Two calls (10 + 40 steps): the second grows the step buffers and continues the step count.
    let mut g_losses = Vec::new();
    let mut c_losses = Vec::new();
    for range in [0..10, 10..50] {
        let chunk = &idx[range.start * k * batch..range.end * k * batch];
        gpu.train_steps(hg, chunk, batch).unwrap();
        cpu.train_steps(hc, chunk, batch).unwrap();
        let gp = gpu.read_progress().await.unwrap();
        assert_eq!(gp.losses.len(), range.len() * k, "read_progress returns the losses of the last call");
        g_losses.extend(gp.losses);
        c_losses.extend(cpu.read_progress().await.unwrap().losses);
        assert_eq!(gp.diverged_at, vec![None; k]);
    }
    assert_eq!(gpu.dispatches_per_step(), 3 * 3 + 3, "3L + 3 dispatches per step for L = 3 layers");
    assert_eq!(gpu.submits_last_call(), 1);
    // f32 on the GPU against f64 on the CPU after 50 steps: still within the single-kernel tolerance.
    let traj = Tolerance::f32_kernel();
    assert_close_f32(&g_losses, &c_losses, traj, "step losses [step][model]");
    let gp = gpu.read_params().await.unwrap();
    let cp = cpu.read_params().await.unwrap();
    assert_close_f32(&gp, &cp, traj, "parameters after 50 steps");
    assert!(g_losses[49 * k + 1] < g_losses[1], "the η = 0.2 model learns: {} → {}", g_losses[1], g_losses[49 * k + 1]);
}
gpu_test!(fifty_steps_of_three_models_follow_the_cpu_trajectory);

/// Writes params and hyper-parameters and resets the state, on either backend.
trait BackendSetup {
    fn setup(&mut self, params: &[f32], hyper: &[Hyper]);
}
impl<B: Backend> BackendSetup for B {
    fn setup(&mut self, params: &[f32], hyper: &[Hyper]) {
        self.write_params(params).unwrap();
        self.write_hyper(hyper).unwrap();
        self.reset_state();
    }
}

async fn a_diverging_model_is_flagged_while_its_batch_mates_train_as_if_alone() {
    let ctx = ctx().await;
    let s = spec(vec![12], Activation::Relu);
    let models = ModelBatch::init(&s, &[21, 22, 23]);
    let d = data(120);
    let (k, batch, steps) = (3, 8, 20);
    let hyper = [
        Hyper { lr: 0.05, momentum: 0.9, weight_decay: 0.0 },
        Hyper { lr: 1e3, momentum: 0.0, weight_decay: 0.0 },
        Hyper { lr: 0.1, momentum: 0.0, weight_decay: 1e-3 },
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let idx = random_indices(&mut rng, steps * k * batch, d.n);
    let mut gpu = GpuBackend::new(&ctx, &models.layout, k, batch).unwrap();
    let h = gpu.upload_dataset(&d).unwrap();
    gpu.setup(&models.params, &hyper);
    gpu.train_steps(h, &idx, batch).unwrap();
    let prog = gpu.read_progress().await.unwrap();
    let params = gpu.read_params().await.unwrap();

    let mut cpu = CpuBackend::<f64>::new(&models.layout, k, batch).unwrap();
    let hc = cpu.upload_dataset(&d).unwrap();
    cpu.setup(&models.params, &hyper);
    cpu.train_steps(hc, &idx, batch).unwrap();
    let cpu_prog = cpu.read_progress().await.unwrap();

    let at = prog.diverged_at[1].expect("the η = 1000 model diverges");
    assert_eq!(prog.diverged_at, vec![None, Some(at), None]);
    assert_eq!(prog.diverged_at, cpu_prog.diverged_at, "GPU and CPU flag the same step");
    let l = |s: usize| prog.losses[s * k + 1];
    assert!(l(at as usize).is_nan() || l(at as usize) > 1e3, "the flagging step's loss {} is non-finite or above the threshold", l(at as usize));
    assert!(((at as usize + 1)..steps).all(|s| l(s).is_nan()), "steps after the flag record NaN");
    let p = models.layout.params_per_model;

    // More steps leave the flagged model's parameters exactly as they were.
    gpu.train_steps(h, &idx[..5 * k * batch], batch).unwrap();
    let later = gpu.read_params().await.unwrap();
    assert_eq!(&later[p..2 * p], &params[p..2 * p], "a flagged model is never updated again");
    assert_eq!(gpu.read_progress().await.unwrap().diverged_at[1], Some(at), "the flag keeps its step");

    // Each healthy model again, alone (K = 1) with its own rows: bitwise the same losses and parameters.
    for m in [0, 2] {
        let mut alone = GpuBackend::new(&ctx, &models.layout, 1, batch).unwrap();
        let ha = alone.upload_dataset(&d).unwrap();
        alone.setup(models.model(m), &hyper[m..m + 1]);
        let own: Vec<u32> = (0..steps).flat_map(|s| idx[(s * k + m) * batch..(s * k + m + 1) * batch].to_vec()).collect();
        alone.train_steps(ha, &own, batch).unwrap();
        let ap = alone.read_progress().await.unwrap();
        let together: Vec<f32> = (0..steps).map(|s| prog.losses[s * k + m]).collect();
        assert_eq!(together, ap.losses, "model {m}'s losses do not depend on its batch-mates");
        assert_eq!(&params[m * p..(m + 1) * p], &alone.read_params().await.unwrap()[..], "model {m}'s parameters");
    }
}
gpu_test!(a_diverging_model_is_flagged_while_its_batch_mates_train_as_if_alone);

async fn a_backend_too_large_for_the_device_limits_is_refused_with_the_limit_named() {
    let ctx = ctx().await;
    let layout = Layout::new(&[784, 1000, 10], Activation::Relu);
    let e = GpuBackend::new(&ctx, &layout, 4, 4096).err().expect("2 804 floats per row × 4 models × 4096 rows do not fit in 128 MiB");
    let msg = e.to_string();
    assert!(msg.contains("max_storage_buffer_binding_size") && msg.contains("max_batch ≤"), "{msg}");
    let fit: usize = msg.rsplit("max_batch ≤ ").next().unwrap().trim().parse().expect("a number");
    assert!(GpuBackend::new(&ctx, &layout, 4, fit).is_ok(), "the suggested max_batch {fit} fits");
}
gpu_test!(a_backend_too_large_for_the_device_limits_is_refused_with_the_limit_named);

async fn too_many_models_for_the_parameter_buffer_are_refused_with_a_count_that_fits() {
    let ctx = ctx().await;
    let layout = Layout::new(&[784, 4096, 10], Activation::Relu);
    let (p, limit) = (layout.params_per_model as u64, ctx.limits().max_storage_buffer_binding_size);
    let k = (limit / (p * 4) + 1) as usize;
    let e = GpuBackend::new(&ctx, &layout, k, 1).err().expect("K × parameters beyond the binding limit");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{k} models × {p} parameters")) && msg.contains("max_storage_buffer_binding_size"), "{msg}");
    let fit: u64 = msg.rsplit("use at most ").next().unwrap().split(' ').next().unwrap().parse().expect("a number");
    assert!(fit >= 1 && fit * p * 4 <= limit && (fit + 1) * p * 4 > limit, "{fit} models is the most that fits: {msg}");
}
gpu_test!(too_many_models_for_the_parameter_buffer_are_refused_with_a_count_that_fits);

// ---------------------------------------------------------------- Hessian-vector products

/// GPU HVP (f32, R-operator kernels) vs the CPU f64 reference: all three activations, widths that cross the
/// 64-wide GEMM tile and are not multiples of it, 3 models with their own vectors, a subset starting at 3 in
/// chunks of 16 with a 5-row remainder (the result buffer is NaN-filled before the call).
async fn hvp_matches_the_cpu_f64_reference_over_chunks_for_every_activation() {
    use sgd_lab::backend::cpu::hvp::cpu_hvp_exact;
    use sgd_lab::backend::curvature::Curvature;
    let ctx = ctx().await;
    let k = 3;
    for (hidden, act) in [(vec![70, 5], Activation::Tanh), (vec![9, 67], Activation::Relu), (vec![13], Activation::Linear), (vec![6, 7, 5], Activation::Tanh)] {
        let s = spec(hidden.clone(), act);
        let models = ModelBatch::init(&s, &[11, 12, 13]);
        let d = data(60);
        let p = models.layout.params_per_model;
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let v = rand_vec(&mut rng, k * p, 1.0);
        let mut gpu = GpuBackend::new(&ctx, &models.layout, k, 16).unwrap();
        let mut cpu = CpuBackend::<f64>::new(&models.layout, k, 16).unwrap();
        let (hg, hc) = (gpu.upload_dataset(&d).unwrap(), cpu.upload_dataset(&d).unwrap());
        gpu.write_params(&models.params).unwrap();
        cpu.write_params(&models.params).unwrap();
        let got = gpu.hvp(hg, 3, 53, &v).await.unwrap();
        let v64: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        let want = cpu_hvp_exact(&cpu, hc, 3, 53, &v64).unwrap();
        // Looser than one kernel's 1e-4/1e-5: an HVP chains ~4L f32 GEMMs and sums products of mixed sign, so an
        // absolute part relative to the largest entry covers cancellation in small entries. Measured on
        // lavapipe: |gpu − cpu| ≤ 5e-5·(|cpu| + 1e-3·max|cpu|), 20× inside this.
        let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
        assert_close(&got, &want, Tolerance::rel_abs(1e-3, 1e-4 * scale), &format!("{act:?} {hidden:?} HVP"));
        // A second call (one chunk, buffers remade for 7 rows) gives the same as the CPU too.
        let got = gpu.hvp(hg, 0, 7, &v).await.unwrap();
        let want = cpu_hvp_exact(&cpu, hc, 0, 7, &v64).unwrap();
        let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
        assert_close(&got, &want, Tolerance::rel_abs(1e-3, 1e-4 * scale), &format!("{act:?} {hidden:?} HVP, one chunk"));
    }
}
gpu_test!(hvp_matches_the_cpu_f64_reference_over_chunks_for_every_activation);
