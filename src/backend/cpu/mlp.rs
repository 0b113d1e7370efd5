//! One model's forward and backward pass, its softmax cross-entropy and the SGD update: the reference
//! routines the CPU backend runs and every GPU kernel is tested against (generic over f32/f64).
//!
//! Each pass has a public form that splits its GEMMs over the calling pool's threads ([`forward`],
//! [`backward`]) and a `*_in` form taking the number of panels, which the backend uses when it runs one
//! model per thread. Activation slopes are computed from the stored outputs, so pre-activations are not kept.

use super::gemm::{gemm_in, MIN_SIDE_BY_SIDE_WORK};
use super::{pool, Real};
use crate::data::{Dataset, Features};
use crate::model::{Activation, Layout};

/// `act(z)` for a hidden activation.
#[inline]
pub fn activate<T: Real>(act: Activation, z: T) -> T {
    match act {
        Activation::Linear => z,
        Activation::Relu => if z > T::zero() { z } else { T::zero() },
        Activation::Tanh => z.tanh(),
    }
}

/// `act'(z)` expressed through the output `a = act(z)` (so only outputs need storing).
#[inline]
pub fn activation_slope<T: Real>(act: Activation, a: T) -> T {
    match act {
        Activation::Linear => T::one(),
        Activation::Relu => if a > T::zero() { T::one() } else { T::zero() },
        Activation::Tanh => T::one() - a * a,
    }
}

/// Activations of every layer for a batch: `acts[0]` is the input (rows × input),
/// `acts[l]` the output of layer l (rows × widths[l]); the last holds the logits.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    /// Layer outputs, `acts[0]` = input.
    pub acts: Vec<Vec<T>>,
    /// Loss gradients w.r.t. each layer's pre-activation (`deltas[l]` for layer l, rows × widths[l+1]).
    pub deltas: Vec<Vec<T>>,
    /// Scratch for the gradient w.r.t. a layer's input, before the activation slope (rows × widest layer).
    pub scratch: Vec<T>,
}

impl<T: Real> Workspace<T> {
    /// Sizes a workspace for up to `rows` examples.
    pub fn new(layout: &Layout, rows: usize) -> Self {
        let acts = layout.widths.iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let deltas = layout.widths[1..].iter().map(|&w| vec![T::zero(); rows * w]).collect();
        let widest = *layout.widths.iter().max().expect("widths");
        Workspace { acts, deltas, scratch: vec![T::zero(); rows * widest] }
    }
}

/// Forward pass of one model on `rows` examples already in `ws.acts[0]`.
pub fn forward<T: Real>(layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>) {
    forward_in(pool::current_threads(), layout, params, rows, ws)
}

/// [`forward`] with its GEMMs split into up to `panels` panels.
pub(super) fn forward_in<T: Real>(panels: usize, layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>) {
    for (l, lo) in layout.layers.iter().enumerate() {
        let (before, after) = ws.acts.split_at_mut(l + 1);
        let input = &before[l][..rows * lo.fan_in];
        let out = &mut after[0][..rows * lo.fan_out];
        let w = &params[lo.w..lo.w + lo.fan_in * lo.fan_out];
        let b = &params[lo.b..lo.b + lo.fan_out];
        for r in 0..rows {
            out[r * lo.fan_out..(r + 1) * lo.fan_out].copy_from_slice(b);
        }
        // out (rows×out) += input (rows×in) · Wᵀ (in×out)
        gemm_in(panels, rows, lo.fan_in, lo.fan_out, (input, lo.fan_in, 1), (w, 1, lo.fan_in), T::one(), (out, lo.fan_out, 1));
        match layout.activation_after(l) {
            // One loop per activation (not a match per element), so that each vectorises.
            Activation::Linear => {}
            Activation::Relu => out.iter_mut().for_each(|v| *v = activate(Activation::Relu, *v)),
            Activation::Tanh => out.iter_mut().for_each(|v| *v = activate(Activation::Tanh, *v)),
        }
    }
}

/// Softmax cross-entropy of `rows` rows of logits, computed stably (log-sum-exp shifted by the row max).
/// Returns the *sum* of the per-row losses and the number of rows whose arg-max (first on ties) is the label.
/// If `dlogits` is given it receives `(softmax − onehot) / rows`, the gradient of the *mean* loss.
pub fn softmax_cross_entropy<T: Real>(logits: &[T], labels: &[u32], rows: usize, classes: usize, mut dlogits: Option<&mut [T]>) -> (T, usize) {
    let mut loss = T::zero();
    let mut correct = 0;
    let inv_rows = T::one() / T::from(rows).expect("rows as float");
    for r in 0..rows {
        let z = &logits[r * classes..(r + 1) * classes];
        let y = labels[r] as usize;
        let mut arg = 0;
        for c in 1..classes {
            if z[c] > z[arg] {
                arg = c;
            }
        }
        let max = z[arg];
        let sum = z.iter().fold(T::zero(), |s, &v| s + (v - max).exp());
        let lse = max + sum.ln();
        loss = loss + (lse - z[y]);
        if arg == y {
            correct += 1;
        }
        if let Some(d) = dlogits.as_deref_mut() {
            for c in 0..classes {
                let p = (z[c] - lse).exp();
                let t = if c == y { T::one() } else { T::zero() };
                d[r * classes + c] = (p - t) * inv_rows;
            }
        }
    }
    (loss, correct)
}

/// Backward pass: from `ws.deltas[L-1]` (gradient w.r.t. the logits) to the full parameter gradient.
/// `ws.acts` must hold the forward pass of the same batch. `grads` (length P) is overwritten.
pub fn backward<T: Real>(layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>, grads: &mut [T]) {
    backward_in(pool::current_threads(), layout, params, rows, ws, grads)
}

/// [`backward`] with its GEMMs split into up to `panels` panels.
pub(super) fn backward_in<T: Real>(panels: usize, layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>, grads: &mut [T]) {
    for l in (0..layout.layers.len()).rev() {
        let lo = layout.layers[l];
        let (fi, fo) = (lo.fan_in, lo.fan_out);
        let (lower, upper) = ws.deltas.split_at_mut(l);
        let delta = &upper[0][..rows * fo];
        let input = &ws.acts[l][..rows * fi];
        // The layer's weight gradient (dW, db) and input gradient (dA, then δ_{l-1}) are independent: with
        // several threads and enough work they run side by side, each with half the panels. Each product is
        // computed exactly as alone, so this changes nothing but the time.
        let weight_grad = |panels: usize, grads: &mut [T]| {
            // dW (out×in) = δᵀ (out×rows) · input (rows×in)
            gemm_in(panels, fo, rows, fi, (delta, 1, fo), (input, fi, 1), T::zero(), (&mut grads[lo.w..lo.w + fi * fo], fi, 1));
            // db = Σ_rows δ
            let db = &mut grads[lo.b..lo.b + fo];
            db.iter_mut().for_each(|v| *v = T::zero());
            for row in delta.chunks_exact(fo) {
                db.iter_mut().zip(row).for_each(|(d, &x)| *d = *d + x);
            }
        };
        if l == 0 {
            weight_grad(panels, grads);
            continue;
        }
        // dA (rows×in) = δ (rows×out) · W (out×in), then δ_{l-1} = dA ⊙ act'(A)
        let w = &params[lo.w..lo.w + fi * fo];
        let (da, prev) = (&mut ws.scratch[..rows * fi], &mut lower[l - 1][..rows * fi]);
        let act = layout.activation_after(l - 1);
        let input_grad = |panels: usize, da: &mut [T], prev: &mut [T]| {
            gemm_in(panels, rows, fo, fi, (delta, fo, 1), (w, fi, 1), T::zero(), (&mut *da, fi, 1));
            times_slope(act, da, input, prev);
        };
        if panels > 1 && rows * fi * fo >= MIN_SIDE_BY_SIDE_WORK {
            let half = panels / 2;
            pool::join(|| weight_grad(half, grads), || input_grad(panels - half, da, prev));
        } else {
            weight_grad(panels, grads);
            input_grad(panels, da, prev);
        }
    }
}

/// `out = da ⊙ act'(a)`, one loop per activation so that each vectorises (the same operations as a loop
/// calling [`activation_slope`] per element).
fn times_slope<T: Real>(act: Activation, da: &[T], a: &[T], out: &mut [T]) {
    #[inline(always)]
    fn each<T: Real>(da: &[T], a: &[T], out: &mut [T], act: Activation) {
        for ((o, &d), &x) in out.iter_mut().zip(da).zip(a) {
            *o = d * activation_slope(act, x);
        }
    }
    match act {
        Activation::Linear => each(da, a, out, Activation::Linear),
        Activation::Relu => each(da, a, out, Activation::Relu),
        Activation::Tanh => each(da, a, out, Activation::Tanh),
    }
}

/// Mean loss and gradient of one model on a batch `x` (rows × input) with `labels`: the reference in one call.
pub fn loss_and_grad<T: Real>(layout: &Layout, params: &[T], x: &[T], labels: &[u32]) -> (T, Vec<T>) {
    let rows = labels.len();
    let mut ws = Workspace::new(layout, rows);
    ws.acts[0].copy_from_slice(&x[..rows * layout.input()]);
    forward(layout, params, rows, &mut ws);
    let last = layout.layers.len() - 1;
    let (loss, _) = softmax_cross_entropy(&ws.acts[last + 1], labels, rows, layout.classes(), Some(&mut ws.deltas[last]));
    let mut g = vec![T::zero(); layout.params_per_model];
    backward(layout, params, rows, &mut ws, &mut g);
    (loss / T::from(rows).expect("rows"), g)
}

/// Mean loss and accuracy of one model on a batch (no gradient).
pub fn loss_and_accuracy<T: Real>(layout: &Layout, params: &[T], x: &[T], labels: &[u32]) -> (T, f64) {
    let rows = labels.len();
    let mut ws = Workspace::new(layout, rows);
    ws.acts[0].copy_from_slice(&x[..rows * layout.input()]);
    forward(layout, params, rows, &mut ws);
    let (loss, correct) = softmax_cross_entropy(&ws.acts[layout.layers.len()], labels, rows, layout.classes(), None);
    (loss / T::from(rows).expect("rows"), correct as f64 / rows as f64)
}

/// One SGD step in PyTorch's convention: `g = grad + wd·θ; v ← μ·v + g; θ ← θ − η·v`
/// (`v` starts at zero, so the first step has `v = g`, as PyTorch's buffer initialisation).
pub fn sgd_update<T: Real>(params: &mut [T], grads: &[T], velocity: &mut [T], lr: T, mu: T, wd: T) {
    assert!(grads.len() == params.len() && velocity.len() == params.len(), "sgd_update: lengths");
    for ((p, &g), v) in params.iter_mut().zip(grads).zip(velocity.iter_mut()) {
        let g = g + wd * *p;
        *v = mu * *v + g;
        *p = *p - lr * *v;
    }
}

/// [`sgd_update`] on up to `panels` threads: contiguous pieces of the parameters, each updated element by
/// element exactly as in one call.
pub(super) fn sgd_update_in<T: Real>(panels: usize, params: &mut [T], grads: &[T], velocity: &mut [T], lr: T, mu: T, wd: T) {
    const MIN_PIECE: usize = 1 << 16;
    if panels <= 1 || params.len() < 2 * MIN_PIECE {
        return sgd_update(params, grads, velocity, lr, mu, wd);
    }
    let mid = params.len() / 2;
    let (p0, p1) = params.split_at_mut(mid);
    let (v0, v1) = velocity.split_at_mut(mid);
    let (g0, g1) = grads.split_at(mid);
    let (h0, h1) = (panels / 2, panels - panels / 2);
    pool::join(|| sgd_update_in(h0, p0, g0, v0, lr, mu, wd), || sgd_update_in(h1, p1, g1, v1, lr, mu, wd));
}

/// Copies examples `idx` of `data` into `dst` (rows × dim) and their labels into `labels`.
pub fn gather<T: Real>(data: &Dataset, idx: &[u32], dst: &mut [T], labels: &mut [u32]) {
    let dim = data.dim;
    assert!(dst.len() >= idx.len() * dim && labels.len() >= idx.len(), "gather: destination too small");
    for ((&i, row), label) in idx.iter().zip(dst.chunks_exact_mut(dim)).zip(labels.iter_mut()) {
        let i = i as usize;
        // Row by row with the storage matched once: the same decoding as `Dataset::feature`, vectorised.
        match &data.features {
            Features::F32(v) => row.iter_mut().zip(&v[i * dim..(i + 1) * dim]).for_each(|(d, &x)| *d = T::from_f32(x)),
            Features::U8 { bytes, scale, shift } => {
                for (((d, &b), &sc), &sh) in row.iter_mut().zip(&bytes[i * dim..(i + 1) * dim]).zip(scale).zip(shift) {
                    *d = T::from_f32(b as f32 * sc + sh);
                }
            }
        }
        *label = data.labels[i];
    }
}
