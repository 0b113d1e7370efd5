//! Loss landscapes on the CPU backend: filter-normalised directions, every slice point built on the host,
//! the grid code against the closed form of a quadratic bowl, PCA of a trajectory (exact interpolation
//! anchors: on every backend, tests/suite/landscape.rs).
#![cfg(not(target_arch = "wasm32"))]

use sgd_lab::analysis::landscape::{self, filter_normalize, linspace, random_direction, slice_1d, slice_2d, BiasMode, EvalSet};
use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::cpu::perturb::combine;
use sgd_lab::backend::perturb::Perturb;
use sgd_lab::backend::{Backend, DataHandle, EvalMetrics, Gradients, Hyper, OptimizerState, Progress};
use sgd_lab::data::{two_spirals, Dataset};
use sgd_lab::error::Result;
use sgd_lab::model::{Activation, Init, Layout, MlpSpec, ModelBatch};

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt()
}

#[test]
fn each_direction_row_has_the_norm_of_its_theta_row_and_biases_are_zero_by_default() {
    let spec = MlpSpec { input: 5, hidden: vec![7, 4], classes: 3, activation: Activation::Relu, init: Init::He };
    let mut models = ModelBatch::init(&spec, &[3]);
    let layout = models.layout.clone();
    // non-zero biases, so that "zero by default" is a real choice
    for lo in &layout.layers {
        for j in 0..lo.fan_out {
            models.params[lo.b + j] = 0.1 * (j as f32 + 1.0);
        }
    }
    let theta = models.params.clone();
    let d = random_direction(&layout, &theta, 42, 0, BiasMode::Zero);
    for lo in &layout.layers {
        for j in 0..lo.fan_out {
            let r = lo.w + j * lo.fan_in..lo.w + (j + 1) * lo.fan_in;
            let (nd, nt) = (norm(&d[r.clone()]), norm(&theta[r]));
            assert!((nd - nt).abs() <= 1e-6 * nt.max(1.0), "row {j}: |d| = {nd}, |θ| = {nt}");
        }
        assert!(d[lo.b..lo.b + lo.fan_out].iter().all(|&v| v == 0.0), "bias directions are zero by default");
    }
    let d = random_direction(&layout, &theta, 42, 0, BiasMode::Normalized);
    for lo in &layout.layers {
        let (nd, nt) = (norm(&d[lo.b..lo.b + lo.fan_out]), norm(&theta[lo.b..lo.b + lo.fan_out]));
        assert!((nd - nt).abs() <= 1e-6 * nt.max(1.0), "normalised bias direction {nd} vs {nt}");
    }
    // a zero row of θ gives a zero row of the direction (no NaN)
    let mut zero_row = theta.clone();
    let lo = layout.layers[0];
    zero_row[lo.w..lo.w + lo.fan_in].iter_mut().for_each(|v| *v = 0.0);
    let mut d = vec![1.0f32; layout.params_per_model];
    filter_normalize(&layout, &zero_row, &mut d, BiasMode::Zero);
    assert!(d[lo.w..lo.w + lo.fan_in].iter().all(|&v| v == 0.0));
}

fn spirals(n: usize) -> Dataset {
    two_spirals(n, 0.1, 5).unwrap()
}

fn net() -> (Layout, Vec<f32>) {
    let spec = MlpSpec { input: 2, hidden: vec![12, 6], classes: 2, activation: Activation::Tanh, init: Init::Xavier };
    let m = ModelBatch::init(&spec, &[1, 2]);
    (m.layout, m.params)
}

#[test]
fn every_slice_point_is_the_model_built_on_the_host() {
    let (layout, params) = net();
    let theta = landscape::pick_model(&layout, &params, 0).unwrap();
    let d1 = random_direction(&layout, &theta, 1, 0, BiasMode::Zero);
    let d2 = random_direction(&layout, &theta, 1, 1, BiasMode::Zero);
    let data = spirals(40);
    let mut b = CpuBackend::<f32>::new(&layout, 3, 16).unwrap();
    let h = b.upload_dataset(&data).unwrap();
    let (alphas, betas) = (linspace(-1.0, 1.0, 5), linspace(-0.5, 0.5, 4));
    let sets = [EvalSet { name: "train".into(), data: h, start: 3, count: 30 }];
    let l = pollster::block_on(slice_2d(&mut b, &theta, &d1, &d2, &alphas, &betas, &sets)).unwrap();
    assert_eq!(l.points(), 20);
    for (j, &beta) in betas.iter().enumerate() {
        for (i, &alpha) in alphas.iter().enumerate() {
            let mut p = vec![0f32; layout.params_per_model];
            combine(&theta, &d1, &d2, &[[1.0, alpha as f32, beta as f32]], &mut p);
            let mut one = CpuBackend::<f32>::new(&layout, 1, 16).unwrap();
            let h1 = one.upload_dataset(&data).unwrap();
            one.write_params(&p).unwrap();
            let want = pollster::block_on(one.evaluate(h1, 3, 30)).unwrap()[0];
            assert_eq!(l.sets[0].loss[j * alphas.len() + i].to_bits(), want.loss.to_bits(), "point ({alpha}, {beta})");
        }
    }
    // the 1-D slice's centre (α = 0) is θ itself
    let one_d = pollster::block_on(slice_1d(&mut b, &theta, &d1, &alphas, &sets)).unwrap();
    let mut one = CpuBackend::<f32>::new(&layout, 1, 16).unwrap();
    let h1 = one.upload_dataset(&data).unwrap();
    one.write_params(&theta).unwrap();
    let at_centre = pollster::block_on(one.evaluate(h1, 3, 30)).unwrap()[0];
    assert_eq!(one_d.sets[0].loss[2].to_bits(), at_centre.loss.to_bits());
}

/// A backend whose "evaluation" is the quadratic bowl L(θ) = ½ Σ h_i θ_i², so a slice has a closed form.
/// Only what the landscape code uses is implemented; perturbation is the CPU reference `combine`.
struct Bowl {
    layout: Layout,
    k: usize,
    h: Vec<f64>,
    basis: Vec<f32>,
    params: Vec<f64>,
}

impl Backend for Bowl {
    fn describe(&self) -> String {
        "quadratic bowl".into()
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn models(&self) -> usize {
        self.k
    }
    fn max_batch(&self) -> usize {
        1
    }
    fn upload_dataset(&mut self, _: &Dataset) -> Result<DataHandle> {
        unimplemented!()
    }
    fn write_params(&mut self, _: &[f32]) -> Result<()> {
        unimplemented!()
    }
    fn write_hyper(&mut self, _: &[Hyper]) -> Result<()> {
        unimplemented!()
    }
    fn set_divergence_threshold(&mut self, _: f32) {}
    fn reset_state(&mut self) {}
    fn train_steps(&mut self, _: DataHandle, _: &[u32], _: usize) -> Result<()> {
        unimplemented!()
    }
    async fn read_progress(&mut self) -> Result<Progress> {
        unimplemented!()
    }
    async fn read_params(&mut self) -> Result<Vec<f32>> {
        unimplemented!()
    }
    async fn read_optimizer_state(&mut self) -> Result<OptimizerState> {
        unimplemented!()
    }
    fn write_optimizer_state(&mut self, _: &OptimizerState) -> Result<()> {
        unimplemented!()
    }
    async fn evaluate(&mut self, _: DataHandle, _: usize, _: usize) -> Result<Vec<EvalMetrics>> {
        let p = self.layout.params_per_model;
        Ok((0..self.k)
            .map(|m| {
                let loss = 0.5 * (0..p).map(|i| self.h[i] * self.params[m * p + i].powi(2)).sum::<f64>();
                EvalMetrics { loss, accuracy: m as f64 }
            })
            .collect())
    }
    async fn gradients(&mut self, _: DataHandle, _: &[u32], _: usize) -> Result<Gradients> {
        unimplemented!()
    }
}

impl Perturb for Bowl {
    fn set_perturb_basis(&mut self, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()> {
        self.basis = [base, d1, d2].concat();
        Ok(())
    }
    fn perturb(&mut self, coeffs: &[[f32; 3]]) -> Result<()> {
        let p = self.layout.params_per_model;
        let b: Vec<f64> = self.basis.iter().map(|&v| v as f64).collect();
        combine(&b[..p], &b[p..2 * p], &b[2 * p..], coeffs, &mut self.params);
        Ok(())
    }
}

#[test]
fn a_slice_of_a_quadratic_bowl_matches_the_closed_form() {
    let layout = Layout::new(&[2, 2], Activation::Linear); // P = 6
    let p = layout.params_per_model;
    let h: Vec<f64> = (0..p).map(|i| 0.5 + i as f64).collect();
    let theta: Vec<f32> = (0..p).map(|i| 0.25 * i as f32 - 0.5).collect();
    let delta: Vec<f32> = (0..p).map(|i| if i % 2 == 0 { 1.0 } else { -0.5 }).collect();
    let eta: Vec<f32> = (0..p).map(|i| 0.125 * (i as f32 - 2.0)).collect();
    let k = 7; // 51 × 51 = 2601 points: 371 full tiles and one of 4
    let mut bowl = Bowl { layout: layout.clone(), k, h: h.clone(), basis: Vec::new(), params: vec![0.0; k * p] };
    let grid = linspace(-1.0, 1.0, 51);
    let sets = [EvalSet { name: "bowl".into(), data: DataHandle(0), start: 0, count: 1 }];
    let l = pollster::block_on(slice_2d(&mut bowl, &theta, &delta, &eta, &grid, &grid, &sets)).unwrap();
    // L(θ + αδ + βη) = ½ θᵀHθ + α δᵀHθ + β ηᵀHθ + ½ α² δᵀHδ + αβ δᵀHη + ½ β² ηᵀHη
    let q = |u: &[f32], v: &[f32]| (0..p).map(|i| h[i] * u[i] as f64 * v[i] as f64).sum::<f64>();
    let (tt, dt, et, dd, de, ee) = (q(&theta, &theta), q(&delta, &theta), q(&eta, &theta), q(&delta, &delta), q(&delta, &eta), q(&eta, &eta));
    for (j, &b) in grid.iter().enumerate() {
        for (i, &a) in grid.iter().enumerate() {
            // the coefficients travel as f32 (as they do to the GPU)
            let (a, b) = (a as f32 as f64, b as f32 as f64);
            let want = 0.5 * tt + a * dt + b * et + 0.5 * a * a * dd + a * b * de + 0.5 * b * b * ee;
            let got = l.sets[0].loss[j * grid.len() + i];
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "({a}, {b}): {got} vs closed form {want}");
        }
    }
    // the tile slot each point was evaluated in (accuracy = model index here) walks 0..K in order
    assert_eq!(&l.sets[0].accuracy[..9], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 1.0]);
}

/// A trajectory that lies exactly in the plane θ* + span(u, v) (u, v orthonormal, P = 40): PCA finds that
/// plane, its directions are orthonormal, the projections rebuild every snapshot, and the explained
/// variance of the two components sums to 1.
#[test]
fn pca_of_a_planar_trajectory_recovers_the_plane() {
    let p = 40;
    let centre: Vec<f64> = (0..p).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut u: Vec<f64> = (0..p).map(|i| (i as f64 * 1.3 + 0.2).cos()).collect();
    let mut v: Vec<f64> = (0..p).map(|i| ((i * i) as f64 * 0.11).sin()).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let nu = dot(&u, &u).sqrt();
    u.iter_mut().for_each(|x| *x /= nu);
    let c = dot(&v, &u);
    v.iter_mut().zip(&u).for_each(|(x, y)| *x -= c * y);
    let nv = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= nv);
    // a decaying spiral towards θ*, ending at θ* itself
    let n = 12;
    let snaps: Vec<Vec<f64>> = (0..=n)
        .map(|i| {
            let r = 3.0 * (1.0 - i as f64 / n as f64);
            let (a, b) = (r * (i as f64 * 0.7).cos(), 0.4 * r * (i as f64 * 0.7).sin());
            centre.iter().zip(&u).zip(&v).map(|((c, x), y)| c + a * x + b * y).collect()
        })
        .collect();
    let pca = landscape::pca_directions(&snaps, &centre).unwrap();
    let (d1, d2) = (&pca.d1, &pca.d2);
    assert!((dot(d1, d1) - 1.0).abs() < 1e-12 && (dot(d2, d2) - 1.0).abs() < 1e-12, "unit directions");
    assert!(dot(d1, d2).abs() < 1e-12, "orthogonal directions: {}", dot(d1, d2));
    // the plane is span(u, v): each direction is a combination of u and v with unit coefficients
    for d in [d1, d2] {
        let (a, b) = (dot(d, &u), dot(d, &v));
        assert!((a * a + b * b - 1.0).abs() < 1e-12, "direction leaves the plane: {a}, {b}");
    }
    assert!((pca.explained_variance[0] + pca.explained_variance[1] - 1.0).abs() < 1e-12, "{:?}", pca.explained_variance);
    assert!(pca.explained_variance[0] >= pca.explained_variance[1]);
    assert_eq!(pca.coords.len(), n + 1);
    for (s, &(a, b)) in snaps.iter().zip(&pca.coords) {
        for i in 0..p {
            let rebuilt = centre[i] + a * d1[i] + b * d2[i];
            assert!((rebuilt - s[i]).abs() < 1e-9, "snapshot rebuilt as {rebuilt}, was {}", s[i]);
        }
    }
    assert_eq!(pca.coords[n], (0.0, 0.0), "θ* projects to the origin");
    assert!(pca.coords[0].0 > 0.0, "signs are fixed by the first snapshot");
    // a trajectory that never moves is refused, not NaN
    assert!(landscape::pca_directions(&[centre.clone(), centre.clone()], &centre).is_err());
}
