//! Loss landscapes as batches of models (see `docs/landscape.md`).
//!
//! Every point of a landscape is one model `θ = (c0·base + c1·d1) + c2·d2`. Points are evaluated in tiles
//! of K (the backend's model count): one [`Perturb::perturb`] builds the tile's K models where the
//! parameters live (one dispatch of `shaders/perturb.wgsl` on the GPU), then one [`crate::backend::Backend::evaluate`]
//! per data set gives their losses and accuracies. Nothing here depends on the backend kind.
//!
//! * [`interpolate`]: `θ(α) = (1−α)·θ₁ + α·θ₂` (coefficients `(1−α, α, 0)`, so α = 0, 1 are exact).
//! * [`slice_1d`], [`slice_2d`]: `θ* + α·δ + β·η` (coefficients `(1, α, β)`) over a grid.
//! * [`random_direction`]: a seeded Gaussian direction, filter-normalised per neuron (Li et al. 2018).
//! * [`pca_directions`]: the top-2 principal components of a training trajectory around its end point
//!   (Li et al. 2018, §7), with explained variance ratios and the trajectory's coordinates in that plane.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::backend::perturb::Perturb;
use crate::backend::DataHandle;
use crate::error::{LabError, Result};
use crate::model::Layout;

/// `n` evenly spaced values from `lo` to `hi` inclusive (`hi` exactly; `[lo]` when n = 1).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n).map(|i| if i == n - 1 { hi } else { lo + (hi - lo) * i as f64 / (n - 1) as f64 }).collect(),
    }
}

/// What a direction holds for the biases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasMode {
    /// Bias directions are zero (Li et al.'s default: biases are not perturbed).
    #[default]
    Zero,
    /// Each layer's bias direction is scaled to the norm of that layer's bias vector in θ.
    Normalized,
}

/// Rescales `d` in place, per neuron: each row of each `W` (the weights into one unit) gets the Euclidean
/// norm of the same row of `theta` (Li et al. 2018, "filter normalisation"). A zero row of `d` stays zero.
/// Biases follow `bias`.
pub fn filter_normalize(layout: &Layout, theta: &[f32], d: &mut [f32], bias: BiasMode) {
    let norm = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let scale = |dst: &mut [f32], target: f64| {
        let n = norm(dst);
        let s = if n > 0.0 { target / n } else { 0.0 };
        dst.iter_mut().for_each(|v| *v = (*v as f64 * s) as f32);
    };
    for lo in &layout.layers {
        for j in 0..lo.fan_out {
            let r = lo.w + j * lo.fan_in..lo.w + (j + 1) * lo.fan_in;
            let target = norm(&theta[r.clone()]);
            scale(&mut d[r], target);
        }
        let rb = lo.b..lo.b + lo.fan_out;
        match bias {
            BiasMode::Zero => d[rb].iter_mut().for_each(|v| *v = 0.0),
            BiasMode::Normalized => {
                let target = norm(&theta[rb.clone()]);
                scale(&mut d[rb], target);
            }
        }
    }
}

/// A Gaussian direction (ChaCha8 from `seed`, stream `stream`), filter-normalised against `theta`.
/// Use different streams (or seeds) for the two directions of a 2-D slice.
pub fn random_direction(layout: &Layout, theta: &[f32], seed: u64, stream: u64, bias: BiasMode) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut d: Vec<f32> = (0..layout.params_per_model).map(|_| StandardNormal.sample(&mut rng)).collect();
    filter_normalize(layout, theta, &mut d, bias);
    d
}

/// The plane of a training trajectory (Li et al. 2018, §7): see [`pca_directions`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PcaDirections {
    /// First principal direction (unit Euclidean norm, P values).
    pub d1: Vec<f64>,
    /// Second principal direction (unit norm, orthogonal to `d1`; zero if the differences span one dimension).
    pub d2: Vec<f64>,
    /// Fraction of the total squared distance `Σᵢ ‖θᵢ − θ*‖²` along `d1` and `d2`.
    pub explained_variance: [f64; 2],
    /// Coordinates `(αᵢ, βᵢ) = (⟨θᵢ − θ*, d1⟩, ⟨θᵢ − θ*, d2⟩)` of every snapshot, in order.
    pub coords: Vec<(f64, f64)>,
}

/// Top-2 principal components of the differences `θᵢ − θ*` of trajectory snapshots from the end point θ*.
///
/// The differences are **not** mean-centred: the plane passes through θ* (the centre of the slice), and a
/// trajectory lying in a plane through θ* is reproduced exactly. With `D` the `n × P` matrix of differences,
/// the small `n × n` Gram matrix `G = D·Dᵀ` is diagonalised (Jacobi, [`crate::analysis::eigen::symmetric_eigen`]);
/// for its two largest eigenpairs `(λⱼ, uⱼ)` the directions are `dⱼ = Dᵀ·uⱼ / √λⱼ` (re-orthonormalised),
/// the explained variance ratios `λⱼ / tr G`. Signs are fixed so that the first snapshot with a non-zero
/// coordinate has a positive one. Snapshots equal to θ* (e.g. the final one) are allowed and project to (0, 0).
pub fn pca_directions(snapshots: &[Vec<f64>], center: &[f64]) -> Result<PcaDirections> {
    let p = center.len();
    if snapshots.iter().any(|s| s.len() != p) {
        return Err(LabError::Backend(format!("every snapshot must have the {p} parameters of the centre")));
    }
    let n = snapshots.len();
    let diffs: Vec<Vec<f64>> = snapshots.iter().map(|s| s.iter().zip(center).map(|(a, b)| a - b).collect()).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut gram = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let g = dot(&diffs[i], &diffs[j]);
            gram[i * n + j] = g;
            gram[j * n + i] = g;
        }
    }
    let total: f64 = (0..n).map(|i| gram[i * n + i]).sum();
    if total.is_nan() || total <= 0.0 || !total.is_finite() {
        return Err(LabError::Backend("the trajectory never leaves its end point (or is not finite): no principal directions".into()));
    }
    let (vals, vecs) = super::eigen::symmetric_eigen(&gram, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let mut dirs: Vec<Vec<f64>> = Vec::with_capacity(2);
    let mut explained = [0.0; 2];
    for (slot, &j) in order.iter().take(2).enumerate() {
        let lambda = vals[j];
        let mut d = vec![0.0; p];
        if lambda > 1e-12 * total {
            for (i, di) in diffs.iter().enumerate() {
                let u = vecs[i * n + j];
                d.iter_mut().zip(di).for_each(|(x, y)| *x += u * y);
            }
            // Gram–Schmidt against the earlier direction (twice), then normalise
            for _ in 0..2 {
                for e in &dirs {
                    let c = dot(&d, e);
                    d.iter_mut().zip(e).for_each(|(x, y)| *x -= c * y);
                }
            }
            let nd = dot(&d, &d).sqrt();
            if nd > 0.0 {
                d.iter_mut().for_each(|x| *x /= nd);
                explained[slot] = lambda.max(0.0) / total;
            } else {
                d.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        dirs.push(d);
    }
    dirs.resize(2, vec![0.0; p]);
    for d in dirs.iter_mut() {
        if let Some(c) = diffs.iter().map(|di| dot(di, d)).find(|c| c.abs() > 1e-12 * total.sqrt()) {
            if c < 0.0 {
                d.iter_mut().for_each(|x| *x = -*x);
            }
        }
    }
    let coords = diffs.iter().map(|di| (dot(di, &dirs[0]), dot(di, &dirs[1]))).collect();
    let d2 = dirs.pop().expect("two directions");
    let d1 = dirs.pop().expect("two directions");
    Ok(PcaDirections { d1, d2, explained_variance: explained, coords })
}

/// Model `m`'s parameters out of a flat `K × P` buffer.
pub fn pick_model(layout: &Layout, params: &[f32], m: usize) -> Result<Vec<f32>> {
    let p = layout.params_per_model;
    let k = params.len() / p.max(1);
    if m >= k || params.len() % p != 0 {
        return Err(LabError::Backend(format!("model {m} is not among the {k} models of this parameter set")));
    }
    Ok(params[m * p..(m + 1) * p].to_vec())
}

/// A data set to evaluate the landscape on: examples `start..start+count` of an uploaded set.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSet {
    /// Name in the results (`train`, `validation`, `test`).
    pub name: String,
    /// The uploaded data set.
    pub data: DataHandle,
    /// First example.
    pub start: usize,
    /// Number of examples.
    pub count: usize,
}

/// Loss and accuracy of one data set at every point (same order as [`Landscape::points`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetValues {
    /// The data set's name.
    pub name: String,
    /// Examples evaluated.
    pub examples: usize,
    /// Mean cross-entropy at each point.
    pub loss: Vec<f64>,
    /// Accuracy at each point.
    pub accuracy: Vec<f64>,
}

/// Which landscape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandscapeKind {
    /// `(1−α)·θ₁ + α·θ₂`.
    Interpolation,
    /// `θ* + α·δ`.
    Slice1d,
    /// `θ* + α·δ + β·η`.
    Slice2d,
}

/// A landscape: its axes and, per data set, loss and accuracy at every point.
/// Points are ordered β-major: point `j·alphas.len() + i` is `(alphas[i], betas[j])`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landscape {
    /// Interpolation, 1-D or 2-D slice.
    pub kind: LandscapeKind,
    /// The α axis.
    pub alphas: Vec<f64>,
    /// The β axis (2-D slices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub betas: Option<Vec<f64>>,
    /// One entry per evaluated data set.
    pub sets: Vec<SetValues>,
}

impl Landscape {
    /// Number of points.
    pub fn points(&self) -> usize {
        self.alphas.len() * self.betas.as_ref().map_or(1, Vec::len)
    }

    /// The results as CSV: one row per point, `alpha[,beta]` then `<set>_loss,<set>_accuracy` per set.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("alpha");
        if self.betas.is_some() {
            out.push_str(",beta");
        }
        for s in &self.sets {
            out.push_str(&format!(",{0}_loss,{0}_accuracy", s.name));
        }
        out.push('\n');
        let na = self.alphas.len();
        for p in 0..self.points() {
            out.push_str(&format!("{}", self.alphas[p % na]));
            if let Some(b) = &self.betas {
                out.push_str(&format!(",{}", b[p / na]));
            }
            for s in &self.sets {
                out.push_str(&format!(",{},{}", s.loss[p], s.accuracy[p]));
            }
            out.push('\n');
        }
        out
    }
}

/// Evaluates the models `(c0·base + c1·d1) + c2·d2` for every coefficient triple, K at a time, on each set.
/// The basis must have been given with [`Perturb::set_perturb_basis`]. A last partial tile is padded by
/// repeating its last point (those results are dropped).
pub async fn evaluate_points<B: Perturb>(backend: &mut B, coeffs: &[[f32; 3]], sets: &[EvalSet]) -> Result<Vec<SetValues>> {
    if sets.is_empty() {
        return Err(LabError::Backend("a landscape needs at least one data set to evaluate".into()));
    }
    let k = backend.models();
    let mut out: Vec<SetValues> = sets
        .iter()
        .map(|s| SetValues { name: s.name.clone(), examples: s.count, loss: Vec::with_capacity(coeffs.len()), accuracy: Vec::with_capacity(coeffs.len()) })
        .collect();
    for tile in coeffs.chunks(k) {
        let mut c = tile.to_vec();
        c.resize(k, *tile.last().expect("chunks are not empty"));
        backend.perturb(&c)?;
        for (s, o) in sets.iter().zip(out.iter_mut()) {
            let m = backend.evaluate(s.data, s.start, s.count).await?;
            for e in &m[..tile.len()] {
                o.loss.push(e.loss);
                o.accuracy.push(e.accuracy);
            }
        }
    }
    Ok(out)
}

/// Loss and accuracy along `θ(α) = (1−α)·θ₁ + α·θ₂` for each α (one model of P parameters each).
pub async fn interpolate<B: Perturb>(backend: &mut B, theta1: &[f32], theta2: &[f32], alphas: &[f64], sets: &[EvalSet]) -> Result<Landscape> {
    let zero = vec![0f32; theta1.len()];
    backend.set_perturb_basis(theta1, theta2, &zero)?;
    let coeffs: Vec<[f32; 3]> = alphas.iter().map(|&a| [(1.0 - a) as f32, a as f32, 0.0]).collect();
    let sets = evaluate_points(backend, &coeffs, sets).await?;
    Ok(Landscape { kind: LandscapeKind::Interpolation, alphas: alphas.to_vec(), betas: None, sets })
}

/// Loss and accuracy along `θ* + α·δ`.
pub async fn slice_1d<B: Perturb>(backend: &mut B, center: &[f32], delta: &[f32], alphas: &[f64], sets: &[EvalSet]) -> Result<Landscape> {
    let zero = vec![0f32; center.len()];
    backend.set_perturb_basis(center, delta, &zero)?;
    let coeffs: Vec<[f32; 3]> = alphas.iter().map(|&a| [1.0, a as f32, 0.0]).collect();
    let sets = evaluate_points(backend, &coeffs, sets).await?;
    Ok(Landscape { kind: LandscapeKind::Slice1d, alphas: alphas.to_vec(), betas: None, sets })
}

/// Loss and accuracy on the grid `θ* + α·δ + β·η` (β-major, see [`Landscape`]).
#[allow(clippy::too_many_arguments)]
pub async fn slice_2d<B: Perturb>(backend: &mut B, center: &[f32], delta: &[f32], eta: &[f32], alphas: &[f64], betas: &[f64], sets: &[EvalSet]) -> Result<Landscape> {
    backend.set_perturb_basis(center, delta, eta)?;
    let coeffs: Vec<[f32; 3]> = betas.iter().flat_map(|&b| alphas.iter().map(move |&a| [1.0, a as f32, b as f32])).collect();
    let sets = evaluate_points(backend, &coeffs, sets).await?;
    Ok(Landscape { kind: LandscapeKind::Slice2d, alphas: alphas.to_vec(), betas: Some(betas.to_vec()), sets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    #[test]
    fn linspace_hits_both_ends_and_the_interpolation_anchors_exactly() {
        let a = linspace(-1.0, 2.0, 25);
        assert_eq!((a[0], a[8], a[16], a[24]), (-1.0, 0.0, 1.0, 2.0));
        assert_eq!(linspace(-1.0, 1.0, 51)[25], 0.0);
    }

    #[test]
    fn csv_has_one_row_per_point_beta_major() {
        let l = Landscape {
            kind: LandscapeKind::Slice2d,
            alphas: vec![0.0, 1.0],
            betas: Some(vec![5.0, 6.0, 7.0]),
            sets: vec![SetValues { name: "train".into(), examples: 1, loss: (0..6).map(f64::from).collect(), accuracy: vec![0.5; 6] }],
        };
        let csv = l.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "alpha,beta,train_loss,train_accuracy");
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[4], "1,6,3,0.5");
    }

    #[test]
    fn random_directions_are_seeded_and_streams_differ() {
        let layout = Layout::new(&[3, 4, 2], Activation::Relu);
        let theta = vec![1.0f32; layout.params_per_model];
        let a = random_direction(&layout, &theta, 7, 0, BiasMode::Zero);
        assert_eq!(a, random_direction(&layout, &theta, 7, 0, BiasMode::Zero));
        assert_ne!(a, random_direction(&layout, &theta, 7, 1, BiasMode::Zero));
    }
}
