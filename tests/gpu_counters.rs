//! The GPU backend's work counters and buffer accounting (what `sgd-lab-bench` reports as dispatches,
//! readbacks and GPU memory), checked against the counts the backend's design fixes (lavapipe natively).
#![cfg(not(target_arch = "wasm32"))]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sgd_lab::backend::curvature::Curvature;
use sgd_lab::backend::gpu::{GpuBackend, GpuContext, GpuCounters};
use sgd_lab::backend::perturb::Perturb;
use sgd_lab::backend::{Backend, Hyper};
use sgd_lab::data::{Dataset, Features};
use sgd_lab::model::{Activation, Layout};

#[test]
fn counters_count_every_dispatch_and_readback_and_buffer_bytes_grow_with_what_is_made() {
    pollster::block_on(async {
        let ctx = GpuContext::new().await.expect("a GPU adapter (lavapipe: mesa-vulkan-drivers)");
        let layout = Layout::new(&[5, 6, 7, 3], Activation::Relu);
        let layers = 3;
        let (k, mb, n, dim) = (2, 8, 40, 5);
        let p = layout.params_per_model;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
        let data = Dataset::new("tiny", dim, 3, Features::F32(x), y).unwrap();

        let mut gpu = GpuBackend::new(&ctx, &layout, k, mb).unwrap();
        let bare = gpu.buffer_bytes();
        assert!(bare >= 3 * (k * p * 4) as u64, "params, velocity and gradients are counted: {bare}");
        let h = gpu.upload_dataset(&data).unwrap();
        let with_data = gpu.buffer_bytes();
        assert!(with_data >= bare + (n * dim * 4 + n * 4) as u64, "the data set's features and labels are counted: {bare} → {with_data}");

        let params: Vec<f32> = (0..k * p).map(|_| rng.random_range(-0.5..0.5)).collect();
        gpu.write_params(&params).unwrap();
        gpu.write_hyper(&vec![Hyper { lr: 0.01, momentum: 0.9, weight_decay: 0.0 }; k]).unwrap();

        // Training: 3L + 3 dispatches per step, nothing read back until read_progress (one readback).
        let steps = 5;
        let idx: Vec<u32> = (0..steps * k * mb).map(|_| rng.random_range(0..n as u32)).collect();
        let c0 = ctx.counters();
        gpu.train_steps(h, &idx, mb).unwrap();
        let c1 = ctx.counters();
        assert_eq!(c1 - c0, GpuCounters { dispatches: (steps * (3 * layers + 3)) as u64, readbacks: 0 });
        gpu.read_progress().await.unwrap();
        assert_eq!(ctx.counters() - c1, GpuCounters { dispatches: 0, readbacks: 1 });

        // Evaluation of 20 examples in chunks of 8: 3 chunks × (gather, L forward GEMMs, softmax-CE), one readback.
        let c2 = ctx.counters();
        gpu.evaluate(h, 0, 20).await.unwrap();
        assert_eq!(ctx.counters() - c2, GpuCounters { dispatches: 3 * (layers as u64 + 2), readbacks: 1 });

        // A perturbation is one dispatch and no readback; its buffers are counted once made.
        let before_basis = gpu.buffer_bytes();
        let base = params[..p].to_vec();
        gpu.set_perturb_basis(&base, &base, &base).unwrap();
        assert!(gpu.buffer_bytes() >= before_basis + (3 * p * 4 + k * 16) as u64);
        let c3 = ctx.counters();
        gpu.perturb(&[[1.0, 0.0, 0.0], [1.0, 0.5, 0.0]]).unwrap();
        assert_eq!(ctx.counters() - c3, GpuCounters { dispatches: 1, readbacks: 0 });

        // An HVP reads its result back once, however many chunks it records; its buffers are counted.
        let before_hvp = gpu.buffer_bytes();
        let c4 = ctx.counters();
        gpu.hvp(h, 0, 20, &vec![0.1; k * p]).await.unwrap();
        let d = ctx.counters() - c4;
        assert_eq!(d.readbacks, 1);
        assert!(d.dispatches >= 3, "three chunks record at least one dispatch each: {d:?}");
        assert!(gpu.buffer_bytes() >= before_hvp + 2 * (k * p * 4) as u64, "the HVP's vectors and result are counted");
    });
}

#[test]
fn throughput_probes_check_their_results_and_report_positive_rates_with_the_timer_used() {
    use sgd_lab::backend::gpu::throughput;
    pollster::block_on(async {
        let ctx = GpuContext::new().await.expect("a GPU adapter (lavapipe: mesa-vulkan-drivers)");
        // A non-tile size: the probe checks C = 0.5·0.01·k + 0.01 before returning a rate.
        let g = throughput::gemm(&ctx, 70, 33, 45, 2, 2).await.unwrap();
        assert_eq!(g.flop, 2.0 * (70 * 33 * 45 * 2 * 2) as f64);
        let p = throughput::peak_fma(&ctx, 1000, 16).await.unwrap();
        assert_eq!(p.flop, 1000.0 * 16.0 * 64.0);
        for t in [&g, &p] {
            assert!(t.gflops().is_finite() && t.gflops() > 0.0, "{t:?}");
            let want = if throughput::has_timestamps(&ctx) { ["timestamp", "wall"].as_slice() } else { ["wall"].as_slice() };
            assert!(want.contains(&t.timer), "{t:?}");
        }
        assert!(throughput::gemm(&ctx, 0, 1, 1, 1, 1).await.unwrap_err().to_string().contains("m = 0"));
    });
}
