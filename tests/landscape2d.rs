//! The page's 2-D landscape (`FreePlay.landscape2d` runs exactly `train::landscape2d::landscape_2d`) on a
//! small trainer on the CPU backend: the grid's centre is the trained model, the PCA trajectory ends at the
//! origin and rebuilds a planar trajectory, the parameters are put back, and bad options are named.
#![cfg(not(target_arch = "wasm32"))]

use sgd_lab::train::landscape2d::{landscape_2d, Landscape2dOptions, PlaneDirections, SnapshotLog};
use sgd_lab::backend::cpu::CpuBackend;
use sgd_lab::backend::Backend;
use sgd_lab::train::{TrainConfig, Trainer};

/// A 2→8→2 tanh net, two models, on 64 spiral points; chunks of 10 steps.
fn trainer(steps: usize) -> Trainer<CpuBackend<f32>> {
    let cfg = TrainConfig::from_json(&format!(
        r#"{{"model":{{"input":2,"hidden":[8],"classes":2,"activation":"tanh","init":"xavier"}},
            "data":{{"kind":"two_spirals","n":64,"noise":0.1,"seed":1}},
            "batch_size":8,"steps":{steps},"models":[{{"lr":0.3,"seed":1}},{{"lr":0.1,"seed":2}}],
            "eval_every":0,"chunk_steps":10}}"#
    ))
    .unwrap();
    let backend = CpuBackend::<f32>::new(&cfg.model.layout(), cfg.models.len(), cfg.max_batch()).unwrap();
    Trainer::new(cfg, backend).unwrap()
}

/// Trains `t` to the end, snapshotting as `FreePlay.step` does.
fn train(t: &mut Trainer<CpuBackend<f32>>, log: &mut SnapshotLog) {
    while !t.is_done() {
        pollster::block_on(t.run_chunk()).unwrap();
        pollster::block_on(log.after_chunk(t)).unwrap();
    }
}

/// Loss of model `m` at the trainer's current parameters on the first `n` training examples.
fn loss_now(t: &mut Trainer<CpuBackend<f32>>, m: usize, n: usize) -> f64 {
    let h = t.train_handle();
    pollster::block_on(t.backend_mut().evaluate(h, 0, n)).unwrap()[m].loss
}

#[test]
fn the_centre_of_the_pca_landscape_is_the_trained_model_and_the_trajectory_ends_at_the_origin() {
    let mut t = trainer(40);
    let mut log = SnapshotLog::start(&mut t, 10, 64).unwrap();
    train(&mut t, &mut log);
    assert_eq!(log.steps(), &[0, 10, 20, 30, 40]);
    let before = pollster::block_on(t.backend_mut().read_params()).unwrap();
    let opts = Landscape2dOptions { grid: 7, model: 1, examples: Some(50), ..Landscape2dOptions::default() };
    let l = pollster::block_on(landscape_2d(&mut t, Some(&log), &opts)).unwrap();
    assert_eq!((l.xs.len(), l.ys.len(), l.loss.len(), l.accuracy.len()), (7, 7, 49, 49));
    assert_eq!((l.xs[3], l.ys[3]), (0.0, 0.0), "an odd grid has θ* in the middle");
    let trained = loss_now(&mut t, 1, 50);
    assert!((l.loss[3 * 7 + 3] - trained).abs() < 1e-5, "centre {} vs trained model {trained}", l.loss[3 * 7 + 3]);
    assert!(l.loss.iter().all(|v| v.is_finite()) && l.accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
    // the trajectory: snapshots at 0, 10, 20, 30, then θ* (step 40) at the origin, inside the plotted span
    assert_eq!(l.trajectory_steps, vec![0, 10, 20, 30, 40]);
    assert_eq!(*l.trajectory.last().unwrap(), (0.0, 0.0));
    assert!(l.trajectory.iter().all(|&(a, b)| a.abs() <= l.xs[6] && b.abs() <= l.ys[6]), "{:?} outside ±{}, ±{}", l.trajectory, l.xs[6], l.ys[6]);
    let e = l.explained.expect("pca explains variance");
    assert!(e[0] >= e[1] && e[0] + e[1] <= 1.0 + 1e-12 && e[0] > 0.5, "{e:?}");
    // the figure and its plot box
    assert!(l.svg.starts_with("<svg") && l.svg.contains("<polyline"), "heatmap with the trajectory");
    assert!(l.plot_box.width > 100 && l.plot_box.x_range[0] < l.xs[0] && l.plot_box.x_range[1] > l.xs[6]);
    // the trained parameters are back, bit for bit
    assert_eq!(pollster::block_on(t.backend_mut().read_params()).unwrap(), before);
}

#[test]
fn pca_coordinates_rebuild_a_trajectory_that_lies_in_a_plane() {
    let mut t = trainer(20);
    let mut log = SnapshotLog::start(&mut t, 10, 64).unwrap();
    train(&mut t, &mut log);
    let params = pollster::block_on(t.backend_mut().read_params()).unwrap();
    let p = t.backend_mut().layout().params_per_model;
    let centre = &params[p..2 * p]; // model 1
    // a planar spiral onto θ*, in the plane of two fixed vectors u, v; model 0's slots hold anything
    let u: Vec<f32> = (0..p).map(|i| (i as f32 * 1.3 + 0.2).cos()).collect();
    let v: Vec<f32> = (0..p).map(|i| ((i * i) as f32 * 0.11).sin()).collect();
    let mut planar = SnapshotLog::new(1, 64).unwrap();
    let n = 12;
    let mut snaps = Vec::new();
    for s in 0..n {
        let r = 0.05 * (n - s) as f32;
        let (a, b) = (r * (s as f32 * 0.7).cos(), 0.4 * r * (s as f32 * 0.7).sin());
        let snap: Vec<f32> = (0..p).map(|i| centre[i] + a * u[i] + b * v[i]).collect();
        planar.record(s, [vec![0.0; p], snap.clone()].concat());
        snaps.push(snap);
    }
    let opts = Landscape2dOptions { grid: 3, model: 1, ..Landscape2dOptions::default() };
    let l = pollster::block_on(landscape_2d(&mut t, Some(&planar), &opts)).unwrap();
    assert_eq!(l.trajectory.len(), n + 1);
    let e = l.explained.unwrap();
    assert!((e[0] + e[1] - 1.0).abs() < 1e-9, "a planar trajectory is explained by two directions: {e:?}");
    for (snap, &(a, b)) in snaps.iter().zip(&l.trajectory) {
        for i in 0..p {
            let rebuilt = centre[i] as f64 + a * l.d1[i] as f64 + b * l.d2[i] as f64;
            assert!((rebuilt - snap[i] as f64).abs() < 1e-5, "parameter {i}: rebuilt {rebuilt}, was {}", snap[i]);
        }
    }
    assert_eq!(*l.trajectory.last().unwrap(), (0.0, 0.0));
}

#[test]
fn random_directions_centre_on_the_trained_model_and_project_the_trajectory() {
    let mut t = trainer(20);
    let mut log = SnapshotLog::start(&mut t, 10, 64).unwrap();
    train(&mut t, &mut log);
    let opts = Landscape2dOptions { grid: 5, directions: PlaneDirections::Random, seed: 3, span: Some(0.5), ..Landscape2dOptions::default() };
    let l = pollster::block_on(landscape_2d(&mut t, Some(&log), &opts)).unwrap();
    assert_eq!((l.xs[0], l.xs[2], l.xs[4]), (-0.5, 0.0, 0.5));
    let trained = loss_now(&mut t, 0, 64);
    assert!((l.loss[2 * 5 + 2] - trained).abs() < 1e-5, "centre {} vs trained {trained}", l.loss[12]);
    assert!(l.explained.is_none());
    assert_eq!(l.trajectory.len(), 3);
    assert_eq!(*l.trajectory.last().unwrap(), (0.0, 0.0));
    assert!(l.trajectory[0] != (0.0, 0.0), "the initial parameters project off the origin");
    // the same seed gives the same landscape; no snapshots are needed for random directions
    let again = pollster::block_on(landscape_2d(&mut t, None, &opts)).unwrap();
    assert_eq!(again.loss, l.loss);
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    let mut t = trainer(10);
    let mut log = SnapshotLog::start(&mut t, 10, 64).unwrap();
    train(&mut t, &mut log);
    let mut err = |opts: Landscape2dOptions, log: Option<&SnapshotLog>| pollster::block_on(landscape_2d(&mut t, log, &opts)).unwrap_err().to_string();
    let d = Landscape2dOptions::default;
    assert!(err(Landscape2dOptions { grid: 2, ..d() }, Some(&log)).contains("grid"));
    assert!(err(Landscape2dOptions { grid: 62, ..d() }, Some(&log)).contains("grid"));
    assert!(err(Landscape2dOptions { span: Some(-1.0), ..d() }, Some(&log)).contains("span"));
    assert!(err(Landscape2dOptions { span: Some(f64::NAN), ..d() }, Some(&log)).contains("span"));
    assert!(err(Landscape2dOptions { model: 2, ..d() }, Some(&log)).contains("model"));
    assert!(err(Landscape2dOptions { examples: Some(0), ..d() }, Some(&log)).contains("examples"));
    assert!(err(Landscape2dOptions { examples: Some(65), ..d() }, Some(&log)).contains("examples"));
    assert!(err(d(), None).contains("directions"), "pca without snapshots");
    let parse = |s: &str| Landscape2dOptions::from_json(s).unwrap_err().to_string();
    assert!(parse(r#"{"directions":"pcb"}"#).contains("directions"));
    assert!(parse(r#"{"grid":"big"}"#).contains("grid"));
    assert!(parse(r#"{"gird":21}"#).contains("gird"));
    assert_eq!(Landscape2dOptions::from_json("{}").unwrap(), d());
}
