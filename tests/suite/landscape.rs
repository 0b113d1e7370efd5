//! The landscape primitives: an interpolation's ends are the two models themselves, and `Perturb` writes every
//! model's combination of the basis in place.

use super::Engine;
use sgd_lab::analysis::landscape::{interpolate, linspace, pick_model, EvalSet};
use sgd_lab::backend::cpu::perturb::combine;
use sgd_lab::backend::perturb::Perturb;
use sgd_lab::backend::{Backend, EvalMetrics};
use sgd_lab::data::{two_spirals, Dataset};
use sgd_lab::model::{Activation, Init, Layout, MlpSpec, ModelBatch};

fn net() -> (Layout, Vec<f32>) {
    let spec = MlpSpec { input: 2, hidden: vec![12, 6], classes: 2, activation: Activation::Tanh, init: Init::Xavier };
    let m = ModelBatch::init(&spec, &[1, 2]);
    (m.layout, m.params)
}

/// Losses of one model evaluated alone (written into every slot of a backend of K models).
fn direct<E: Engine>(engine: &E, layout: &Layout, k: usize, theta: &[f32], data: &Dataset) -> EvalMetrics {
    let mut b = engine.backend(layout, k, 32);
    let h = b.upload_dataset(data).unwrap();
    b.write_params(&theta.repeat(k)).unwrap();
    pollster::block_on(b.evaluate(h, 0, data.n)).unwrap()[0]
}

pub fn interpolation_at_zero_and_one_reproduces_both_models_bitwise<E: Engine>(engine: &E) {
    let (layout, params) = net();
    let (t1, t2) = (pick_model(&layout, &params, 0).unwrap(), pick_model(&layout, &params, 1).unwrap());
    let data = two_spirals(90, 0.1, 5).unwrap();
    let k = 4; // 25 points: 6 full tiles and one of 1
    let mut b = engine.backend(&layout, k, 32);
    let h = b.upload_dataset(&data).unwrap();
    let alphas = linspace(-1.0, 2.0, 25);
    let sets = [EvalSet { name: "train".into(), data: h, start: 0, count: data.n }];
    let l = pollster::block_on(interpolate(&mut b, &t1, &t2, &alphas, &sets)).unwrap();
    assert_eq!(l.sets[0].loss.len(), 25);
    let (i0, i1) = (alphas.iter().position(|&a| a == 0.0).unwrap(), alphas.iter().position(|&a| a == 1.0).unwrap());
    let (e1, e2) = (direct(engine, &layout, k, &t1, &data), direct(engine, &layout, k, &t2, &data));
    assert_eq!(l.sets[0].loss[i0].to_bits(), e1.loss.to_bits(), "α = 0 is θ₁");
    assert_eq!(l.sets[0].loss[i1].to_bits(), e2.loss.to_bits(), "α = 1 is θ₂");
    assert_eq!((l.sets[0].accuracy[i0], l.sets[0].accuracy[i1]), (e1.accuracy, e2.accuracy));
    // the same on the f64 reference backend, within rounding of the f32 evaluation
    let mut r = sgd_lab::backend::cpu::CpuBackend::<f64>::new(&layout, 3, 32).unwrap();
    let hr = r.upload_dataset(&data).unwrap();
    let lr = pollster::block_on(interpolate(&mut r, &t1, &t2, &alphas, &[EvalSet { data: hr, ..sets[0].clone() }])).unwrap();
    for (a, b) in lr.sets[0].loss.iter().zip(&l.sets[0].loss) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
}

/// Slice, interpolation-anchor and degenerate coefficient triples.
const COEFFS: [[f32; 3]; 5] = [[1.0, 0.0, 0.0], [1.0, -0.75, 0.3], [0.0, 1.0, 0.0], [-1.5, 2.5, 0.0], [1.0, 1.0, -1.0]];

pub fn perturb_writes_every_model_in_place_and_refuses_a_wrong_count<E: Engine>(engine: &E) {
    let spec = MlpSpec { input: 2, hidden: vec![9, 5], classes: 2, activation: Activation::Tanh, init: Init::Xavier };
    let models = ModelBatch::init(&spec, &[1, 2, 3]);
    let (layout, p, k) = (models.layout.clone(), models.layout.params_per_model, 3);
    let mut b = engine.backend(&layout, k, 16);
    b.write_params(&vec![f32::NAN; k * p]).unwrap();
    let (t0, t1, t2) = (pick_model(&layout, &models.params, 0).unwrap(), pick_model(&layout, &models.params, 1).unwrap(), pick_model(&layout, &models.params, 2).unwrap());
    b.set_perturb_basis(&t0, &t1, &t2).unwrap();
    b.perturb(&COEFFS[1..4]).unwrap();
    let got = pollster::block_on(b.read_params()).unwrap();
    let mut want = vec![0f32; k * p];
    combine(&t0, &t1, &t2, &COEFFS[1..4], &mut want);
    let bad: Vec<usize> = (0..k * p).filter(|&i| !((got[i] as f64 - want[i] as f64).abs() <= 1e-5 + 1e-4 * (want[i] as f64).abs())).collect();
    assert!(bad.is_empty(), "backend perturb: {} of {} values differ from the host's combination (first at {:?})", bad.len(), k * p, bad.first());
    assert!(b.perturb(&COEFFS[..2]).unwrap_err().to_string().contains("one coefficient triple per model (3)"));
}
