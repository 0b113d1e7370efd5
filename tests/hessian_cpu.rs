//! Hessian-vector products of the CPU reference (f64) and the analyses built on them: checked against central
//! finite differences of exact gradients, the independent vectors in `tests/data`, and dense
//! eigendecompositions (nalgebra) of Hessians assembled column by column from unit-vector HVPs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{random_problem, tiny_backend};

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use sgd_lab::analysis::eigen::{lanczos, power_iteration, LanczosOptions, LanczosResult, PowerOptions};
use sgd_lab::backend::cpu::hvp::{cpu_hvp_exact, hvp_reference};
use sgd_lab::analysis::hutchinson::{hutchinson, HutchinsonOptions};
use sgd_lab::analysis::{BackendOperator, DenseOperator, Subset};
use sgd_lab::backend::cpu::{loss_and_grad, CpuBackend};
use sgd_lab::backend::{Backend, DataHandle};
use sgd_lab::model::{Activation, Layout};

const ACTS: [Activation; 3] = [Activation::Tanh, Activation::Relu, Activation::Linear];

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let scale: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / scale.max(1e-300)
}

#[test]
fn hvp_agrees_with_central_finite_differences_of_exact_gradients_on_random_tiny_nets() {
    let mut rng = ChaCha8Rng::seed_from_u64(1711);
    for act in ACTS {
        for trial in 0..20 {
            let (layout, params, x, y) = random_problem(&mut rng, act);
            for _ in 0..2 {
                let v: Vec<f64> = (0..params.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
                let hv = hvp_reference(&layout, &params, &v, &x, &y);
                let eps = 1e-5;
                let grad_at = |sign: f64| {
                    let p: Vec<f64> = params.iter().zip(&v).map(|(p, d)| p + sign * eps * d).collect();
                    loss_and_grad(&layout, &p, &x, &y).1
                };
                let (gp, gm) = (grad_at(1.0), grad_at(-1.0));
                let fd: Vec<f64> = gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * eps)).collect();
                let scale = fd.iter().map(|x| x * x).sum::<f64>().sqrt();
                if scale < 1e-9 {
                    continue; // e.g. ReLU with every unit dead: H·v = 0 both ways
                }
                let err = rel_err(&hv, &fd);
                assert!(err < 1e-6, "{act:?} trial {trial} widths {:?}: HVP vs finite differences, relative error {err:e}", layout.widths);
            }
        }
    }
}

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
    hvp_vector: Vec<f64>,
    hvp: Vec<f64>,
    hessian_eigenvalues: Vec<f64>,
    hessian_trace: f64,
}

fn load_cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_mlp_vectors.json");
    let v: Vectors = serde_json::from_str(&std::fs::read_to_string(path).expect("test vectors")).expect("test vectors parse");
    v.cases
}

fn activation(name: &str) -> Activation {
    match name {
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        _ => Activation::Linear,
    }
}

/// The dense Hessian (P×P, symmetrised) of one model's mean loss on a batch, column j = H·e_j.
fn dense_hessian(layout: &Layout, params: &[f64], x: &[f64], y: &[u32]) -> DMatrix<f64> {
    let p = layout.params_per_model;
    let mut h = DMatrix::zeros(p, p);
    for j in 0..p {
        let mut e = vec![0.0; p];
        e[j] = 1.0;
        let col = hvp_reference(layout, params, &e, x, y);
        for i in 0..p {
            h[(i, j)] = col[i];
        }
    }
    let asym = (&h - h.transpose()).abs().max();
    assert!(asym < 1e-12 * h.abs().max().max(1.0), "the exact Hessian is symmetric (max asymmetry {asym:e})");
    (&h + h.transpose()) * 0.5
}

#[test]
fn hvp_eigenvalues_and_trace_match_the_independent_vectors() {
    for (i, c) in load_cases().iter().enumerate() {
        let layout = Layout::new(&c.layer_sizes, activation(&c.activation));
        let x: Vec<f64> = c.x.iter().flatten().copied().collect();
        let hv = hvp_reference(&layout, &c.params, &c.hvp_vector, &x, &c.y);
        let err = rel_err(&hv, &c.hvp);
        assert!(err < 1e-7, "case {i}: HVP relative error {err:e}");

        let h = dense_hessian(&layout, &c.params, &x, &c.y);
        let mut ev: Vec<f64> = SymmetricEigen::new(h.clone()).eigenvalues.iter().copied().collect();
        ev.sort_by(|a, b| b.total_cmp(a));
        let mut want = c.hessian_eigenvalues.clone();
        want.sort_by(|a, b| b.total_cmp(a));
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (j, (a, e)) in ev.iter().zip(&want).enumerate() {
            assert!((a - e).abs() <= 1e-7 * scale, "case {i}: eigenvalue {j}: {a} vs {e}");
        }
        let tr = h.trace();
        assert!((tr - c.hessian_trace).abs() <= 1e-7 * c.hessian_trace.abs(), "case {i}: trace {tr} vs {}", c.hessian_trace);
    }
}

fn dense_hessians(b: &CpuBackend<f64>, h: DataHandle, count: usize) -> Vec<DMatrix<f64>> {
    let (k, p) = (b.models(), b.layout().params_per_model);
    let mut hs = vec![DMatrix::zeros(p, p); k];
    for j in 0..p {
        let mut e = vec![0.0; k * p];
        for m in 0..k {
            e[m * p + j] = 1.0;
        }
        let col = cpu_hvp_exact(b, h, 0, count, &e).unwrap();
        for m in 0..k {
            for i in 0..p {
                hs[m][(i, j)] = col[m * p + i];
            }
        }
    }
    hs.into_iter().map(|h| (&h + h.transpose()) * 0.5).collect()
}

const TINY: [(&[usize], Activation); 3] = [(&[5, 7, 4, 3], Activation::Tanh), (&[6, 8, 3], Activation::Relu), (&[4, 9, 6, 5], Activation::Tanh)];

#[test]
fn chunked_hvp_over_a_subset_equals_the_one_batch_reference() {
    let layout = Layout::new(&[3, 6, 4], Activation::Tanh);
    let (b, h, data) = tiny_backend(&layout, 2, 30, 8, 5);
    let p = layout.params_per_model;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let v: Vec<f64> = (0..2 * p).map(|_| rng.random_range(-1.0..1.0)).collect();
    // examples 3..30 in chunks of 8, 8, 8, 3
    let got = cpu_hvp_exact(&b, h, 3, 27, &v).unwrap();
    let x: Vec<f64> = (3 * 3..30 * 3).map(|i| data.feature(i / 3, i % 3) as f64).collect();
    for m in 0..2 {
        let want = hvp_reference(&layout, &b.params_exact()[m * p..(m + 1) * p], &v[m * p..(m + 1) * p], &x, &data.labels[3..30]);
        let err = rel_err(&got[m * p..(m + 1) * p], &want);
        assert!(err < 1e-13, "model {m}: chunked HVP differs from the single batch by {err:e}");
    }
}

#[test]
fn lanczos_finds_the_largest_eigenvalue_of_tiny_nets_within_1e_3() {
    for (widths, act) in TINY {
        let layout = Layout::new(widths, act);
        assert!(layout.params_per_model <= 200);
        let (mut b, h, _) = tiny_backend(&layout, 2, 40, 16, 7);
        let dense = dense_hessians(&b, h, 40);
        let mut op = BackendOperator::new(&mut b, Subset { data: h, start: 0, count: 40 });
        let res = pollster::block_on(lanczos(&mut op, &LanczosOptions { top_k: 2, ..Default::default() })).unwrap();
        assert_eq!(op.products, 20, "20 Lanczos steps, one HVP each for both models");
        for (m, hm) in dense.iter().enumerate() {
            let ev = SymmetricEigen::new(hm.clone()).eigenvalues;
            let max = ev.iter().copied().fold(f64::MIN, f64::max);
            let got = res[m].eigenvalues[0];
            assert!((got - max).abs() <= 1e-3 * max.abs(), "{widths:?} {act:?} model {m}: Lanczos λ_max {got} vs dense {max}");
        }
    }
}

#[test]
fn hutchinson_trace_is_within_three_standard_errors_of_the_exact_trace() {
    for (widths, act) in TINY {
        let layout = Layout::new(widths, act);
        let (mut b, h, _) = tiny_backend(&layout, 2, 40, 16, 8);
        let dense = dense_hessians(&b, h, 40);
        let mut op = BackendOperator::new(&mut b, Subset { data: h, start: 0, count: 40 });
        let res = pollster::block_on(hutchinson(&mut op, &HutchinsonOptions::default())).unwrap();
        for (m, hm) in dense.iter().enumerate() {
            let exact = hm.trace();
            let r = &res[m];
            assert!(r.samples >= 10 && r.samples <= 100, "samples {}", r.samples);
            assert!(r.std_error > 0.0 && r.std_error.is_finite());
            assert!((r.trace - exact).abs() <= 3.0 * r.std_error, "{widths:?} {act:?} model {m}: Hutchinson {} ± {} vs exact {exact}", r.trace, r.std_error);
        }
    }
}

/// K = 2 random symmetric 12×12 matrices Q·diag(λ)·Qᵀ with known spectra (one indefinite).
fn known_quadratics() -> (DenseOperator, [[f64; 12]; 2]) {
    let spectra = [
        [9.0, 4.5, 3.25, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25, 0.125, 0.0, 0.0],
        [-7.0, 6.0, 5.5, 3.0, 1.0, 0.0, -0.5, -1.0, 2.5, 0.1, 0.2, 0.3],
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let n = 12;
    let mut mats = Vec::new();
    for s in &spectra {
        let g = DMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let q = g.qr().q();
        let a = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(s)) * q.transpose();
        let a = (&a + a.transpose()) * 0.5;
        for i in 0..n {
            for j in 0..n {
                mats.push(a[(i, j)]);
            }
        }
    }
    (DenseOperator { n, matrices: mats }, spectra)
}

#[test]
fn lanczos_recovers_a_known_spectrum_exactly_and_power_iteration_its_dominant_eigenvalue() {
    let (mut op, spectra) = known_quadratics();
    let res = pollster::block_on(lanczos(&mut op, &LanczosOptions { top_k: 4, iterations: 12, seed: 3, ..Default::default() })).unwrap();
    for m in 0..2 {
        let mut want = spectra[m].to_vec();
        want.sort_by(|a, b| b.total_cmp(a));
        for (j, (got, want)) in res[m].eigenvalues.iter().zip(&want).take(4).enumerate() {
            assert!((got - want).abs() < 1e-10, "model {m} eigenvalue {j}: {got} vs {want}");
        }
    }
    // The first matrix has rank 10: Lanczos stops early at an invariant subspace without losing accuracy.
    assert!(res[0].iterations <= 12);

    let pw = pollster::block_on(power_iteration(&mut op, &PowerOptions { tolerance: 1e-10, max_iterations: 500, seed: 4 })).unwrap();
    assert!((pw[0].eigenvalue - 9.0).abs() < 1e-6 && pw[0].converged, "power iteration on spectrum 1: {:?}", pw[0]);
    assert!((pw[1].eigenvalue + 7.0).abs() < 1e-6 && pw[1].converged, "power iteration finds the largest magnitude (−7): {:?}", pw[1]);
    let pw = pollster::block_on(power_iteration(&mut op, &PowerOptions::default())).unwrap();
    assert!(pw.iter().all(|r| r.iterations <= 100));
}

#[test]
fn lanczos_gives_the_same_bits_on_one_thread_and_on_several() {
    // Six random symmetric 40×40 operators: the reorthogonalisation runs one model per thread.
    let (n, k) = (40, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut matrices = Vec::new();
    for _ in 0..k {
        let g = DMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let a = (&g + g.transpose()) * 0.5;
        for i in 0..n {
            for j in 0..n {
                matrices.push(a[(i, j)]);
            }
        }
    }
    let opts = LanczosOptions { top_k: 3, iterations: 25, seed: 5, ..Default::default() };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut op = DenseOperator { n, matrices: matrices.clone() };
        pool.install(|| pollster::block_on(lanczos(&mut op, &opts))).unwrap()
    };
    let one = run(1);
    assert_eq!(one.len(), k);
    for threads in [2, 3, 6] {
        let many = run(threads);
        for m in 0..k {
            let bits = |r: &LanczosResult| r.eigenvalues.iter().chain(&r.residuals).map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one[m]), bits(&many[m]), "model {m} on {threads} threads");
            assert_eq!(one[m].iterations, many[m].iterations);
        }
    }
}

/// One of the two known quadratics alone, as a K = 1 operator.
fn alone(op: &DenseOperator, m: usize) -> DenseOperator {
    let nn = op.n * op.n;
    DenseOperator { n: op.n, matrices: op.matrices[m * nn..(m + 1) * nn].to_vec() }
}

#[test]
fn with_per_model_seeds_a_models_lanczos_and_hutchinson_results_do_not_depend_on_its_batch_mates() {
    let (mut pair, _) = known_quadratics();
    // Model 1 of the pair has seed 77; alone (K = 1, slot 0) it keeps seed 77 and must get the same bits.
    let seeds = vec![5, 77];
    let lz = LanczosOptions { top_k: 2, iterations: 6, model_seeds: seeds.clone(), ..Default::default() };
    let hz = HutchinsonOptions { max_samples: 7, model_seeds: seeds.clone(), ..Default::default() };
    let in_pair = (pollster::block_on(lanczos(&mut pair, &lz)).unwrap(), pollster::block_on(hutchinson(&mut pair, &hz)).unwrap());
    let mut single = alone(&pair, 1);
    let lz1 = LanczosOptions { model_seeds: vec![77], ..lz.clone() };
    let hz1 = HutchinsonOptions { model_seeds: vec![77], ..hz.clone() };
    let by_itself = (pollster::block_on(lanczos(&mut single, &lz1)).unwrap(), pollster::block_on(hutchinson(&mut single, &hz1)).unwrap());
    assert_eq!(in_pair.0[1], by_itself.0[0], "Lanczos (6 steps, not converged) of the model alone and beside another");
    assert_eq!(in_pair.1[1], by_itself.1[0], "Hutchinson of the model alone and beside another");
    assert_eq!(in_pair.1[1].samples, 7, "at most max_samples, all taken (fewer than min_samples)");
    // Another seed gives another (unconverged) estimate: the seed is what the probes come from.
    let other = pollster::block_on(hutchinson(&mut single, &HutchinsonOptions { model_seeds: vec![78], ..hz1 })).unwrap();
    assert_ne!(other[0].trace, by_itself.1[0].trace);
    // A seed list of the wrong length is refused by name.
    let e = pollster::block_on(hutchinson(&mut pair, &HutchinsonOptions { model_seeds: vec![1], ..Default::default() })).unwrap_err();
    assert!(e.to_string().contains("model_seeds"), "{e}");
}

#[test]
fn lanczos_ritz_vectors_are_unit_eigenvectors_of_the_known_spectrum() {
    let (mut op, spectra) = known_quadratics();
    let res = pollster::block_on(lanczos(&mut op, &LanczosOptions { top_k: 3, iterations: 12, seed: 3, vectors: true, ..Default::default() })).unwrap();
    let n = op.n;
    for m in 0..2 {
        let a = DMatrix::from_row_slice(n, n, &op.matrices[m * n * n..(m + 1) * n * n]);
        let mut want = spectra[m].to_vec();
        want.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(res[m].vectors.len(), 3);
        for (j, y) in res[m].vectors.iter().enumerate() {
            let y = nalgebra::DVector::from_column_slice(y);
            assert!((y.norm() - 1.0).abs() < 1e-12, "unit length");
            let r = (&a * &y - &y * want[j]).norm();
            assert!(r < 1e-8, "model {m} vector {j}: ‖A y − λ y‖ = {r:e}");
        }
    }
    let plain = pollster::block_on(lanczos(&mut op, &LanczosOptions { top_k: 3, iterations: 12, seed: 3, ..Default::default() })).unwrap();
    assert!(plain.iter().all(|r| r.vectors.is_empty()), "no vectors unless asked");
    assert_eq!(plain[0].eigenvalues, res[0].eigenvalues, "asking for vectors changes no eigenvalue");
}
