//! Exact Hessian-vector products of the mean softmax cross-entropy by Pearlmutter's R-operator.
//!
//! `R{f} = d/dr f(θ + r·v)|_{r=0}` applied to every line of the forward and backward pass gives `H·v`
//! exactly (up to rounding) at the cost of about two gradients: a tangent forward pass
//! `R(z_l) = R(a_{l-1})·W_lᵀ + a_{l-1}·V_lᵀ + Vb_l`, `R(a_l) = act'(z_l)·R(z_l)`, then the tangent of the
//! backward pass `R(δ_L) = (diag p − p pᵀ)·R(z_L)/n`,
//! `R(δ_{l-1}) = (R(δ_l)·W_l + δ_l·V_l) ⊙ act'(a_{l-1}) + (δ_l·W_l) ⊙ act''·R(z_{l-1})`,
//! `R(∇W_l) = R(δ_l)ᵀ·a_{l-1} + δ_lᵀ·R(a_{l-1})`, `R(∇b_l) = Σ_rows R(δ_l)`.
//! `act''·R(z)` through the stored output: tanh `−2a·R(a)` (since `d/dz (1−a²) = −2a(1−a²)`), ReLU and linear 0.
//!
//! The loss is the *mean* over a chosen set of `n` examples, processed in chunks: every chunk adds its
//! rows' contribution scaled by `1/n`, so the result does not depend on the chunk size (eval mode: no
//! weight decay, no update). This file holds the CPU reference (generic over f32/f64, GEMMs through
//! [`gemm`]) and the CPU backend's [`Curvature`]; the trait is in `backend/curvature.rs`, the GPU version in
//! `backend/gpu/hvp.rs` + `shaders/r_*.wgsl`.

use super::{activation_slope, forward, gather, gemm, CpuBackend, Real, Workspace};
use crate::backend::curvature::{check_hvp_request, Curvature};
use crate::backend::{Backend, DataHandle};
use crate::error::Result;
use crate::model::{Activation, Layout};

/// Tangent activations and deltas beside a [`Workspace`], sized once for `rows` examples.
#[derive(Clone, Debug)]
pub struct HvpWorkspace<T> {
    /// The primal pass (activations and deltas).
    pub ws: Workspace<T>,
    /// `racts[l]` = R(a_l), rows × widths[l] (`racts[0]` = R(input) = 0, never read).
    pub racts: Vec<Vec<T>>,
    /// `rdeltas[l]` = R(δ_l), rows × widths[l+1].
    pub rdeltas: Vec<Vec<T>>,
    /// R(δ_l·W_l) before the slope (rows × widest layer).
    pub rscratch: Vec<T>,
}

impl<T: Real> HvpWorkspace<T> {
    /// Sizes the buffers for up to `rows` examples.
    pub fn new(layout: &Layout, rows: usize) -> Self {
        let ws = Workspace::new(layout, rows);
        let racts = layout.widths.iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let rdeltas = layout.widths[1..].iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let widest = *layout.widths.iter().max().expect("widths");
        HvpWorkspace { ws, racts, rdeltas, rscratch: vec![T::zero(); rows * widest] }
    }
}

/// `act''(z)·R(z)` written through the stored output `a` and its tangent `ra = act'(z)·R(z)`.
#[inline]
pub fn curvature_term<T: Real>(act: Activation, a: T, ra: T) -> T {
    match act {
        Activation::Tanh => -(a + a) * ra,
        Activation::Relu | Activation::Linear => T::zero(),
    }
}

/// Adds `scale · Σ_rows H_row·v` to `out` (length P) for one model, where `H_row` is the Hessian of one
/// row's cross-entropy. The `rows` inputs must already be in `hw.ws.acts[0]`, their labels in `labels`.
/// With `scale = 1/n` and every chunk of an n-example set added, `out` becomes the mean loss's `H·v`.
#[allow(clippy::too_many_arguments)]
pub fn hvp_accumulate<T: Real>(layout: &Layout, params: &[T], v: &[T], rows: usize, labels: &[u32], scale: T, hw: &mut HvpWorkspace<T>, out: &mut [T]) {
    let layers = layout.layers.len();
    forward(layout, params, rows, &mut hw.ws);
    // Tangent forward pass.
    for (l, lo) in layout.layers.iter().enumerate() {
        let (fi, fo) = (lo.fan_in, lo.fan_out);
        let (before, after) = hw.racts.split_at_mut(l + 1);
        let rz = &mut after[0][..rows * fo];
        let vb = &v[lo.b..lo.b + fo];
        for r in 0..rows {
            rz[r * fo..(r + 1) * fo].copy_from_slice(vb);
        }
        let vw = &v[lo.w..lo.w + fi * fo];
        gemm(rows, fi, fo, (&hw.ws.acts[l][..rows * fi], fi, 1), (vw, 1, fi), T::one(), (&mut *rz, fo, 1));
        if l > 0 {
            let w = &params[lo.w..lo.w + fi * fo];
            gemm(rows, fi, fo, (&before[l][..rows * fi], fi, 1), (w, 1, fi), T::one(), (&mut *rz, fo, 1));
        }
        let act = layout.activation_after(l);
        let a = &hw.ws.acts[l + 1][..rows * fo];
        for i in 0..rows * fo {
            rz[i] = rz[i] * activation_slope(act, a[i]);
        }
    }
    // Softmax-CE and its tangent: δ = (p − y)·scale, R(δ) = p ⊙ (R(z) − p·R(z))·scale.
    let c = layout.classes();
    {
        let logits = &hw.ws.acts[layers][..rows * c];
        let rz = &hw.racts[layers][..rows * c];
        let d = &mut hw.ws.deltas[layers - 1][..rows * c];
        let rd = &mut hw.rdeltas[layers - 1][..rows * c];
        for r in 0..rows {
            let z = &logits[r * c..(r + 1) * c];
            let max = z.iter().fold(z[0], |m, &x| if x > m { x } else { m });
            let sum = z.iter().fold(T::zero(), |s, &x| s + (x - max).exp());
            let lse = max + sum.ln();
            let mut prz = T::zero();
            for j in 0..c {
                prz = prz + (z[j] - lse).exp() * rz[r * c + j];
            }
            for j in 0..c {
                let p = (z[j] - lse).exp();
                let t = if j == labels[r] as usize { T::one() } else { T::zero() };
                d[r * c + j] = (p - t) * scale;
                rd[r * c + j] = p * (rz[r * c + j] - prz) * scale;
            }
        }
    }
    // Tangent backward pass, accumulated into `out`.
    for l in (0..layers).rev() {
        let lo = layout.layers[l];
        let (fi, fo) = (lo.fan_in, lo.fan_out);
        let delta = &hw.ws.deltas[l][..rows * fo];
        let rdelta = &hw.rdeltas[l][..rows * fo];
        let input = &hw.ws.acts[l][..rows * fi];
        let ow = &mut out[lo.w..lo.w + fi * fo];
        gemm(fo, rows, fi, (rdelta, 1, fo), (input, fi, 1), T::one(), (&mut *ow, fi, 1));
        if l > 0 {
            gemm(fo, rows, fi, (delta, 1, fo), (&hw.racts[l][..rows * fi], fi, 1), T::one(), (&mut *ow, fi, 1));
        }
        let ob = &mut out[lo.b..lo.b + fo];
        for r in 0..rows {
            for j in 0..fo {
                ob[j] = ob[j] + rdelta[r * fo + j];
            }
        }
        if l > 0 {
            let w = &params[lo.w..lo.w + fi * fo];
            let vw = &v[lo.w..lo.w + fi * fo];
            let da = &mut hw.ws.scratch[..rows * fi];
            gemm(rows, fo, fi, (delta, fo, 1), (w, fi, 1), T::zero(), (&mut *da, fi, 1));
            let rda = &mut hw.rscratch[..rows * fi];
            gemm(rows, fo, fi, (rdelta, fo, 1), (w, fi, 1), T::zero(), (&mut *rda, fi, 1));
            gemm(rows, fo, fi, (delta, fo, 1), (vw, fi, 1), T::one(), (&mut *rda, fi, 1));
            let act = layout.activation_after(l - 1);
            let ra_in = &hw.racts[l][..rows * fi];
            let (dprev, rdprev) = (&mut hw.ws.deltas[l - 1][..rows * fi], &mut hw.rdeltas[l - 1][..rows * fi]);
            for i in 0..rows * fi {
                let s = activation_slope(act, input[i]);
                dprev[i] = da[i] * s;
                rdprev[i] = rda[i] * s + da[i] * curvature_term(act, input[i], ra_in[i]);
            }
        }
    }
}

/// `H·v` of one model's mean cross-entropy on a batch `x` (rows × input) with `labels`: the reference in one call.
pub fn hvp_reference<T: Real>(layout: &Layout, params: &[T], v: &[T], x: &[T], labels: &[u32]) -> Vec<T> {
    let rows = labels.len();
    let mut hw = HvpWorkspace::new(layout, rows);
    hw.ws.acts[0].copy_from_slice(&x[..rows * layout.input()]);
    let mut out = vec![T::zero(); layout.params_per_model];
    let scale = T::one() / T::from(rows).expect("rows");
    hvp_accumulate(layout, params, v, rows, labels, scale, &mut hw, &mut out);
    out
}

/// `H_m·v_m` of every model of a CPU backend in its own precision (`v`: K × P), over examples
/// `start..start+count` in chunks of the backend's `max_batch` rows. The f64 reference of [`Curvature::hvp`].
pub fn cpu_hvp_exact<T: Real>(backend: &CpuBackend<T>, data: DataHandle, start: usize, count: usize, v: &[T]) -> Result<Vec<T>> {
    let (layout, k) = (backend.layout(), backend.models());
    let p = layout.params_per_model;
    let d = backend.dataset(data)?;
    check_hvp_request(k, p, d.n, start, count, v.len())?;
    let chunk = backend.max_batch().min(count);
    let mut hw = HvpWorkspace::new(layout, chunk);
    let mut labels = vec![0u32; chunk];
    let mut out = vec![T::zero(); k * p];
    let scale = T::one() / T::from(count).expect("count");
    let params = backend.params_exact();
    let mut idx = Vec::with_capacity(chunk);
    let mut at = start;
    while at < start + count {
        let rows = (start + count - at).min(chunk);
        idx.clear();
        idx.extend((at..at + rows).map(|i| i as u32));
        gather(d, &idx, &mut hw.ws.acts[0][..rows * d.dim], &mut labels[..rows]);
        for m in 0..k {
            let r = m * p..(m + 1) * p;
            hvp_accumulate(layout, &params[r.clone()], &v[r.clone()], rows, &labels[..rows], scale, &mut hw, &mut out[r]);
        }
        at += rows;
    }
    Ok(out)
}

impl<T: Real> Curvature for CpuBackend<T> {
    async fn hvp(&mut self, data: DataHandle, start: usize, count: usize, v: &[f32]) -> Result<Vec<f32>> {
        let vt: Vec<T> = v.iter().map(|&x| T::from_f32(x)).collect();
        // On the backend's threads, so that its large GEMMs split into panels (the same bits as one call).
        let hv = self.install(|| cpu_hvp_exact(self, data, start, count, &vt))?;
        Ok(hv.into_iter().map(|x| x.as_f64() as f32).collect())
    }
}
