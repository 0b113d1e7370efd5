//! The CPU reference backend, generic over f32 and f64.
//!
//! In f64 it is the lab's ground truth: every GPU kernel is tested against it, and it is tested against
//! central finite differences and the independent vectors in `shared/testdata`. In f32 it is the engine
//! for browsers without WebGPU, and natively a fast trainer in its own right. Matrix products go through
//! `matrixmultiply` (strided GEMM), so the three products of a layer (`A·Wᵀ`, `δᵀ·A`, `δ·W`) are one call
//! each with the operands' strides.
//!
//! ## Threads (native only; wasm32 runs everything on the calling thread)
//! About 87% of a training step of the E1 MLP is GEMM (profile in `docs/BENCHMARKS.md`), and
//! `matrixmultiply`'s AVX2/FMA kernel already runs one core near its peak; the rest of the speed is in
//! the other cores. A backend runs its work inside a rayon pool ([`CpuBackend::threads`]; by default one
//! shared pool sized by `RAYON_NUM_THREADS` or the number of logical CPUs) in one of two ways:
//! - **K ≥ threads: one model per task.** Models are independent for a whole `train_steps` call, so each
//!   task runs *all* the steps of one model on its own workspace (one slot per thread): one
//!   synchronisation per call, no false sharing, and each model's arithmetic is exactly the serial one.
//! - **K < threads (K = 1 above all): models one after another, each large GEMM split into column (or
//!   row) panels** run by `rayon::join` ([`gemm`]). Only the output C is split, never the inner dimension:
//!   every element of C is still one dot product accumulated by the same kernel in the same order. In the
//!   backward pass a layer's weight gradient and input gradient (independent products) run side by side,
//!   each on half the threads, which keeps the 50-wide layers of the deep MLP parallel where splitting
//!   one small product would cost more than it saves. Small products stay whole (thresholds below): a
//!   `join` costs ~2 µs while the other thread spins, ~30 µs once it has gone to sleep.
//!
//! Measured on the dev machine (2 vCPUs): K ∈ {4, 16, 64} trains at 1.84–2.05× the single-threaded backend, K = 1 at 1.0–1.9×
//! (the 784-256-256-10 MLP at B = 128: 1.6×), ≥ 1.0× JAX on the CPU everywhere (`docs/BENCHMARKS.md`).
//!
//! ## Why the results cannot depend on threads or scheduling
//! - No reduction is ever split across threads: losses, bias gradients and evaluation sums are
//!   accumulated by one thread in a fixed order, and a model's steps run in order on one thread.
//! - A GEMM panel is computed exactly as the same elements of the unsplit product:
//!   `matrixmultiply` cuts the inner dimension into blocks of a fixed `kc` (a constant of the kernel,
//!   not of the shape), runs the same micro-kernel on every tile, and with α = 1 and β ∈ {0, 1} (all
//!   calls here) its full-tile and edge-tile epilogues both round `c + ab` once. So any split along m or
//!   n gives the bits of the serial product; a unit test checks it for 1–5 panels, both precisions,
//!   several shapes and strides, β = 0 and 1, and `tests/trainer_cpu.rs` runs K = 1 and K = 3 (one model
//!   diverging) on 1, 2, 3 and 4 threads — both paths, nested splits — and compares losses, parameters,
//!   evaluations and gradients bit for bit. The elementwise loops do the same operations in the same
//!   order as before the threads came, so results also equal those of the single-threaded backend.
//!
//! ## Why `matrixmultiply` and not the `gemm` crate
//! Measured on the dev machine (AMD EPYC, Zen 1, AVX2, idle; the eight GEMM shapes of a 784-256-256-10
//! step at B = 128, 200 repetitions each): one thread, `gemm` 0.18 took 4.29 ms per step's products and
//! `matrixmultiply` 4.42 ms (equal on the large shapes, `gemm` faster on the N = 10 output layer); two
//! threads, `gemm`'s own rayon parallelism 2.55 ms and two panels over `matrixmultiply` 2.48 ms. So the
//! speed is the same; what decides is the rest: `gemm` picks its cache blocking (including `kc`, the
//! inner-dimension block) from the shape and the CPU's cache sizes, so a split product is not promised
//! the bits of the whole one; it allocates on every call; its AVX-512 kernels need its `nightly`
//! feature; and it brings a dozen crates. Panels over `matrixmultiply` carry the determinism argument
//! above and add only rayon.
//!
//! ## Allocation
//! No allocation happens inside a training step in this file: workspaces (one per thread slot) are sized
//! once for the largest batch; a `train_steps` call allocates only its K-entry task list and, when it
//! grows, the loss buffer. (`matrixmultiply` itself allocates its packing buffers on each call: two
//! `malloc`s per GEMM, under 0.1% of the profile.)

use std::sync::Mutex;

use crate::backend::{check_indices, Backend, DataHandle, EvalMetrics, Gradients, Hyper, OptimizerState, Progress, DEFAULT_DIVERGENCE_THRESHOLD};
use crate::data::{Dataset, Features};
use crate::error::{LabError, Result};
use crate::model::{Activation, Layout};

/// A floating-point type the reference can compute in (f32 or f64).
pub trait Real: num_traits::Float + Default + std::fmt::Debug + Send + Sync + 'static {
    /// `C ← α·A·B + β·C` for strided `A` (m×k), `B` (k×n), `C` (m×n).
    ///
    /// # Safety
    /// Every element addressed through the strides must lie inside the corresponding slice.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize, k: usize, n: usize, alpha: Self,
        a: *const Self, rsa: isize, csa: isize,
        b: *const Self, rsb: isize, csb: isize,
        beta: Self, c: *mut Self, rsc: isize, csc: isize,
    );
    /// Converts from f32 (exact for f32 and f64).
    fn from_f32(x: f32) -> Self;
    /// Converts to f64 (named apart from `NumCast::to_f64`, which returns an Option).
    fn as_f64(self) -> f64;
    /// Name for messages ("f32" / "f64").
    const NAME: &'static str;
}

impl Real for f32 {
    unsafe fn gemm_raw(m: usize, k: usize, n: usize, alpha: f32, a: *const f32, rsa: isize, csa: isize, b: *const f32, rsb: isize, csb: isize, beta: f32, c: *mut f32, rsc: isize, csc: isize) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn from_f32(x: f32) -> Self { x }
    fn as_f64(self) -> f64 { self as f64 }
    const NAME: &'static str = "f32";
}

impl Real for f64 {
    unsafe fn gemm_raw(m: usize, k: usize, n: usize, alpha: f64, a: *const f64, rsa: isize, csa: isize, b: *const f64, rsb: isize, csb: isize, beta: f64, c: *mut f64, rsc: isize, csc: isize) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn from_f32(x: f32) -> Self { x as f64 }
    fn as_f64(self) -> f64 { self }
    const NAME: &'static str = "f64";
}

/// The threads of a CPU backend: a rayon pool natively, the calling thread in wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod par {
    use std::sync::{Arc, OnceLock};

    /// A handle on a rayon pool (cheap to clone).
    #[derive(Clone)]
    pub struct Pool(Arc<rayon::ThreadPool>);

    static SHARED: OnceLock<Pool> = OnceLock::new();

    impl Pool {
        /// The pool every backend uses unless told otherwise: `RAYON_NUM_THREADS` threads, else one per logical CPU.
        pub fn shared() -> Pool {
            SHARED.get_or_init(|| Pool::build(0)).clone()
        }
        /// A pool of its own with `n` threads (0: as [`Pool::shared`]).
        pub fn build(n: usize) -> Pool {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("sgd-lab-cpu-{i}"))
                .build()
                .expect("the CPU backend could not start its threads");
            Pool(Arc::new(pool))
        }
        pub fn threads(&self) -> usize {
            self.0.current_num_threads()
        }
        /// Runs `f` on a thread of the pool (so that nested `join`s stay inside it).
        pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            self.0.install(f)
        }
    }

    /// Threads available to a GEMM called from here: those of the pool the caller runs in, 1 outside any pool.
    pub fn current_threads() -> usize {
        if rayon::current_thread_index().is_some() { rayon::current_num_threads() } else { 1 }
    }

    pub fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
        rayon::join(a, b);
    }

    /// `f` on every item, items handed out one by one to the pool's threads.
    pub fn for_each_mut<X: Send>(items: &mut [X], f: impl Fn(&mut X) + Sync + Send) {
        use rayon::prelude::*;
        items.par_iter_mut().with_max_len(1).for_each(f)
    }
}

/// The wasm32 stand-in: one thread, no pool.
#[cfg(target_arch = "wasm32")]
pub(crate) mod par {
    #[derive(Clone)]
    pub struct Pool;

    impl Pool {
        pub fn shared() -> Pool {
            Pool
        }
        pub fn threads(&self) -> usize {
            1
        }
        pub fn install<R>(&self, f: impl FnOnce() -> R) -> R {
            f()
        }
    }

    pub fn current_threads() -> usize {
        1
    }

    pub fn join<A: FnOnce(), B: FnOnce()>(a: A, b: B) {
        a();
        b();
    }

    pub fn for_each_mut<X>(items: &mut [X], f: impl Fn(&mut X)) {
        items.iter_mut().for_each(f)
    }
}

/// A strided matrix view: `(slice, row stride, column stride)`.
pub type Strided<'a, T> = (&'a [T], usize, usize);

fn max_index(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs }
}

/// Products with fewer multiply-adds than this stay on one thread (~100 µs of work on one core: a `join`
/// costs ~2 µs while the other thread spins, ~30 µs once it has gone to sleep).
const MIN_SPLIT_WORK: usize = 1 << 21;
/// A layer's weight and input gradients run side by side from this many multiply-adds each (~4 µs; the
/// backward pass's joins come back to back, so the other thread is awake).
const MIN_SIDE_BY_SIDE_WORK: usize = 1 << 16;
/// Panels are at least this many rows or columns, and start at multiples of the kernel tile (8).
const MIN_PANEL: usize = 32;

/// A raw pointer that may cross threads: the panels it is offset into are disjoint.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used for disjoint panels of one C (and read-only A, B) while the caller's borrows are alive.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// `C ← A·B + β·C` with bounds-checked strided operands (A m×k, B k×n, C m×n).
///
/// Inside a CPU backend's pool a large product is split into panels of C run in parallel; elsewhere
/// (and in wasm32) it is one call. The result is the same bits either way (see the module docs).
pub fn gemm<T: Real>(m: usize, k: usize, n: usize, a: Strided<T>, b: Strided<T>, beta: T, c: (&mut [T], usize, usize)) {
    gemm_in(par::current_threads(), m, k, n, a, b, beta, c)
}

/// [`gemm`] split into up to `panels` panels of C: fewer for small products and short sides.
#[allow(clippy::too_many_arguments)]
fn gemm_in<T: Real>(panels: usize, m: usize, k: usize, n: usize, a: Strided<T>, b: Strided<T>, beta: T, c: (&mut [T], usize, usize)) {
    let panels = if m * n * k < MIN_SPLIT_WORK { 1 } else { panels.min(m.max(n) / MIN_PANEL).max(1) };
    gemm_panels(panels, m, k, n, a, b, beta, c)
}

/// The product as exactly `panels` panels of C (rows if m > n, else columns), run by `par::join`.
#[allow(clippy::too_many_arguments)]
fn gemm_panels<T: Real>(panels: usize, m: usize, k: usize, n: usize, a: Strided<T>, b: Strided<T>, beta: T, c: (&mut [T], usize, usize)) {
    assert!(m == 0 || k == 0 || max_index(m, k, a.1, a.2) < a.0.len(), "gemm: A out of bounds");
    assert!(k == 0 || n == 0 || max_index(k, n, b.1, b.2) < b.0.len(), "gemm: B out of bounds");
    assert!(m == 0 || n == 0 || max_index(m, n, c.1, c.2) < c.0.len(), "gemm: C out of bounds");
    let (ap, bp, cp) = (SendPtr(a.0.as_ptr() as *mut T), SendPtr(b.0.as_ptr() as *mut T), SendPtr(c.0.as_mut_ptr()));
    let (rsa, csa, rsb, csb, rsc, csc) = (a.1 as isize, a.2 as isize, b.1 as isize, b.2 as isize, c.1 as isize, c.2 as isize);
    // Split the longer of m and n: the other operand's packing is repeated per panel, so keep it the smaller.
    let split_n = n >= m;
    let len = if split_n { n } else { m };
    assert!(panels == 1 || (panels >= 1 && len >= 8 * panels), "gemm: {panels} panels of {len}");
    // Panel i is lo..hi with lo = bound(i), hi = bound(i + 1); inner bounds are multiples of the kernel tile.
    let bound = |i: usize| if i == panels { len } else { (i * len / panels) / 8 * 8 };
    let run = move |lo: usize, hi: usize| {
        let (ap, bp, cp) = (ap, bp, cp);
        // SAFETY: the asserts above keep every strided access of the whole product inside its slice, a
        // panel addresses a subset of it, and panels write disjoint elements of C.
        unsafe {
            if split_n {
                T::gemm_raw(m, k, hi - lo, T::one(), ap.0, rsa, csa, bp.0.offset(lo as isize * csb), rsb, csb, beta, cp.0.offset(lo as isize * csc), rsc, csc)
            } else {
                T::gemm_raw(hi - lo, k, n, T::one(), ap.0.offset(lo as isize * rsa), rsa, csa, bp.0, rsb, csb, beta, cp.0.offset(lo as isize * rsc), rsc, csc)
            }
        }
    };
    fn recurse(first: usize, last: usize, bound: &(impl Fn(usize) -> usize + Sync), run: &(impl Fn(usize, usize) + Sync)) {
        if last - first == 1 {
            run(bound(first), bound(last));
        } else {
            let mid = (first + last) / 2;
            par::join(|| recurse(first, mid, bound, run), || recurse(mid, last, bound, run));
        }
    }
    if m == 0 || n == 0 {
        return;
    }
    recurse(0, panels, &bound, &run);
}

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
    forward_in(par::current_threads(), layout, params, rows, ws)
}

/// [`forward`] with its GEMMs split into up to `panels` panels.
fn forward_in<T: Real>(panels: usize, layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>) {
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
    backward_in(par::current_threads(), layout, params, rows, ws, grads)
}

/// [`backward`] with its GEMMs split into up to `panels` panels.
fn backward_in<T: Real>(panels: usize, layout: &Layout, params: &[T], rows: usize, ws: &mut Workspace<T>, grads: &mut [T]) {
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
            par::join(|| weight_grad(half, grads), || input_grad(panels - half, da, prev));
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
fn sgd_update_in<T: Real>(panels: usize, params: &mut [T], grads: &[T], velocity: &mut [T], lr: T, mu: T, wd: T) {
    const MIN_PIECE: usize = 1 << 16;
    if panels <= 1 || params.len() < 2 * MIN_PIECE {
        return sgd_update(params, grads, velocity, lr, mu, wd);
    }
    let mid = params.len() / 2;
    let (p0, p1) = params.split_at_mut(mid);
    let (v0, v1) = velocity.split_at_mut(mid);
    let (g0, g1) = grads.split_at(mid);
    let (h0, h1) = (panels / 2, panels - panels / 2);
    par::join(|| sgd_update_in(h0, p0, g0, v0, lr, mu, wd), || sgd_update_in(h1, p1, g1, v1, lr, mu, wd));
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

/// What one thread needs to run one model: activations, gradient, labels, sized for the largest batch.
struct Slot<T> {
    ws: Workspace<T>,
    grads: Vec<T>,
    labels: Vec<u32>,
}

impl<T: Real> Slot<T> {
    fn new(layout: &Layout, rows: usize) -> Self {
        Slot { ws: Workspace::new(layout, rows), grads: vec![T::zero(); layout.params_per_model], labels: vec![0; rows] }
    }

    /// Copies examples `idx` of `data` into the workspace.
    fn gather(&mut self, data: &Dataset, idx: &[u32]) {
        let rows = idx.len();
        gather(data, idx, &mut self.ws.acts[0][..rows * data.dim], &mut self.labels[..rows]);
    }

    /// Summed loss and correct count of one model on the rows already gathered; with `with_grad`, the gradient
    /// of the mean loss into `self.grads`. GEMMs split into up to `panels` panels.
    fn model_pass(&mut self, layout: &Layout, params: &[T], rows: usize, with_grad: bool, panels: usize) -> (T, usize) {
        forward_in(panels, layout, params, rows, &mut self.ws);
        let last = layout.layers.len() - 1;
        let (acts, deltas) = (&self.ws.acts, &mut self.ws.deltas);
        let d = if with_grad { Some(&mut deltas[last][..rows * layout.classes()]) } else { None };
        let out = softmax_cross_entropy(&acts[last + 1], &self.labels[..rows], rows, layout.classes(), d);
        if with_grad {
            backward_in(panels, layout, params, rows, &mut self.ws, &mut self.grads);
        }
        out
    }
}

/// A free slot: each running task holds one, and tasks never nest (a model task makes no parallel calls),
/// so one is always free; the blocking fallback only serialises if a caller breaks that.
fn take_slot<T>(slots: &[Mutex<Slot<T>>]) -> std::sync::MutexGuard<'_, Slot<T>> {
    slots.iter().find_map(|s| s.try_lock().ok()).unwrap_or_else(|| slots[0].lock().unwrap_or_else(|e| e.into_inner()))
}

/// The CPU backend: K models trained with the reference routines above, in parallel over models or
/// within GEMMs (see the module docs).
pub struct CpuBackend<T: Real> {
    layout: Layout,
    k: usize,
    max_batch: usize,
    params: Vec<T>,
    velocity: Vec<T>,
    hyper: Vec<Hyper>,
    threshold: f32,
    diverged_at: Vec<Option<u32>>,
    step: u32,
    last_losses: Vec<f32>,
    /// `[model][step]` losses of the last `train_steps` call, before they are transposed into `last_losses`.
    losses_by_model: Vec<f32>,
    datasets: Vec<Dataset>,
    /// One per thread that can run a model at once (`threads` when K ≥ threads, else 1).
    slots: Vec<Mutex<Slot<T>>>,
    pool: par::Pool,
    /// `(base, d1, d2)` of [`crate::backend::perturb::Perturb`] (3 × P once set, empty before).
    basis: Vec<T>,
}

/// One model's share of a `train_steps` call.
struct TrainTask<'a, T> {
    m: usize,
    params: &'a mut [T],
    velocity: &'a mut [T],
    hyper: Hyper,
    diverged_at: &'a mut Option<u32>,
    losses: &'a mut [f32],
}

impl<T: Real> CpuBackend<T> {
    /// A backend for `k` models of `layout`, batches of up to `max_batch` rows (also the evaluation chunk),
    /// on the shared pool (natively: `RAYON_NUM_THREADS` threads, else one per logical CPU).
    pub fn new(layout: &Layout, k: usize, max_batch: usize) -> Result<Self> {
        Self::with_pool(layout, k, max_batch, par::Pool::shared())
    }

    /// As [`CpuBackend::new`], on a pool of its own with `threads` threads (0: as the shared pool).
    /// The results are the same bits for every thread count.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_threads(layout: &Layout, k: usize, max_batch: usize, threads: usize) -> Result<Self> {
        Self::with_pool(layout, k, max_batch, par::Pool::build(threads))
    }

    fn with_pool(layout: &Layout, k: usize, max_batch: usize, pool: par::Pool) -> Result<Self> {
        if k == 0 {
            return Err(LabError::Backend("a backend needs at least one model (K = 0)".into()));
        }
        if max_batch == 0 {
            return Err(LabError::Backend("max_batch must be at least 1".into()));
        }
        let p = layout.params_per_model;
        let threads = pool.threads();
        let slots = if k >= threads { threads } else { 1 };
        Ok(CpuBackend {
            layout: layout.clone(),
            k,
            max_batch,
            params: vec![T::zero(); k * p],
            velocity: vec![T::zero(); k * p],
            hyper: vec![Hyper { lr: 0.0, momentum: 0.0, weight_decay: 0.0 }; k],
            threshold: DEFAULT_DIVERGENCE_THRESHOLD,
            diverged_at: vec![None; k],
            step: 0,
            last_losses: Vec::new(),
            losses_by_model: Vec::new(),
            datasets: Vec::new(),
            slots: (0..slots).map(|_| Mutex::new(Slot::new(layout, max_batch))).collect(),
            pool,
            basis: Vec::new(),
        })
    }

    /// Threads this backend runs on (1 in wasm32).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `f` on the backend's threads (natively: inside its rayon pool, so GEMMs called by `f` split).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// One model per task (K ≥ threads > 1), or models in turn with split GEMMs.
    fn model_parallel(&self) -> bool {
        self.slots.len() > 1
    }

    /// Panels per GEMM inside a model task: 1 when models run in parallel, else the pool's threads.
    fn panels(&self) -> usize {
        if self.model_parallel() { 1 } else { self.threads() }
    }

    /// Parameters in the backend's own precision (for f64 reference checks).
    pub fn params_exact(&self) -> &[T] {
        &self.params
    }

    /// Replaces the parameters with values in the backend's own precision.
    pub fn write_params_exact(&mut self, params: &[T]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(LabError::Backend(format!("expected {} parameters (K × P), got {}", self.params.len(), params.len())));
        }
        self.params.copy_from_slice(params);
        Ok(())
    }

    /// Stores the perturbation basis (3 × P, in the backend's precision).
    pub(crate) fn set_basis_exact(&mut self, basis: Vec<T>) {
        self.basis = basis;
    }

    /// The perturbation basis and the parameters, borrowed together.
    pub(crate) fn basis_and_params_mut(&mut self) -> (&[T], &mut [T]) {
        (&self.basis, &mut self.params)
    }

    /// The data set behind a handle.
    pub fn dataset(&self, h: DataHandle) -> Result<&Dataset> {
        self.datasets.get(h.0).ok_or_else(|| LabError::Backend(format!("unknown data handle {}", h.0)))
    }
}

impl<T: Real> Backend for CpuBackend<T> {
    fn describe(&self) -> String {
        format!("CPU ({})", T::NAME)
    }
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn models(&self) -> usize {
        self.k
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn upload_dataset(&mut self, data: &Dataset) -> Result<DataHandle> {
        check_dataset_fits(&self.layout, data)?;
        self.datasets.push(data.clone());
        Ok(DataHandle(self.datasets.len() - 1))
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(LabError::Backend(format!("expected {} parameters (K × P), got {}", self.params.len(), params.len())));
        }
        for (d, &s) in self.params.iter_mut().zip(params) {
            *d = T::from_f32(s);
        }
        Ok(())
    }

    fn write_hyper(&mut self, hyper: &[Hyper]) -> Result<()> {
        if hyper.len() != self.k {
            return Err(LabError::Backend(format!("expected {} hyper-parameter sets (one per model), got {}", self.k, hyper.len())));
        }
        self.hyper.copy_from_slice(hyper);
        Ok(())
    }

    fn set_divergence_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
    }

    fn reset_state(&mut self) {
        self.velocity.iter_mut().for_each(|v| *v = T::zero());
        self.diverged_at.iter_mut().for_each(|d| *d = None);
        self.step = 0;
    }

    fn train_steps(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<()> {
        let n = self.dataset(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        let (k, p, step0, threshold) = (self.k, self.layout.params_per_model, self.step, self.threshold);
        let (parallel, panels) = (self.model_parallel(), self.panels());
        self.losses_by_model.clear();
        self.losses_by_model.resize(steps * k, 0.0);
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        let mut tasks: Vec<TrainTask<T>> = self
            .params
            .chunks_mut(p)
            .zip(self.velocity.chunks_mut(p))
            .zip(self.diverged_at.iter_mut())
            .zip(self.losses_by_model.chunks_mut(steps))
            .enumerate()
            .map(|(m, (((params, velocity), diverged_at), losses))| TrainTask { m, params, velocity, hyper: self.hyper[m], diverged_at, losses })
            .collect();
        // All the steps of one model, in order, on one slot.
        let train = |t: &mut TrainTask<T>, slot: &mut Slot<T>| {
            let (lr, mu, wd) = (T::from_f32(t.hyper.lr), T::from_f32(t.hyper.momentum), T::from_f32(t.hyper.weight_decay));
            for s in 0..steps {
                if t.diverged_at.is_some() {
                    t.losses[s] = f32::NAN;
                    continue;
                }
                let off = (s * k + t.m) * batch;
                slot.gather(data, &indices[off..off + batch]);
                let (loss_sum, _) = slot.model_pass(layout, t.params, batch, true, panels);
                let loss = loss_sum.as_f64() / batch as f64;
                t.losses[s] = loss as f32;
                if !loss.is_finite() || loss > threshold as f64 {
                    *t.diverged_at = Some(step0 + s as u32);
                    continue;
                }
                sgd_update_in(panels, t.params, &slot.grads, t.velocity, lr, mu, wd);
            }
        };
        self.pool.install(|| {
            if parallel {
                par::for_each_mut(&mut tasks, |t| train(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| train(t, &mut slot));
            }
        });
        drop(tasks);
        self.last_losses.clear();
        self.last_losses.extend((0..steps * k).map(|i| self.losses_by_model[(i % k) * steps + i / k]));
        self.step += steps as u32;
        Ok(())
    }

    async fn read_progress(&mut self) -> Result<Progress> {
        Ok(Progress { losses: self.last_losses.clone(), diverged_at: self.diverged_at.clone() })
    }

    async fn read_params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.iter().map(|v| v.as_f64() as f32).collect())
    }

    /// The velocity is rounded to f32 (exact for `CpuBackend<f32>`, the engine of the experiments).
    async fn read_optimizer_state(&mut self) -> Result<OptimizerState> {
        Ok(OptimizerState { velocity: self.velocity.iter().map(|v| v.as_f64() as f32).collect(), diverged_at: self.diverged_at.clone(), step: self.step })
    }

    fn write_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check(self.k, self.layout.params_per_model)?;
        for (d, &s) in self.velocity.iter_mut().zip(&state.velocity) {
            *d = T::from_f32(s);
        }
        self.diverged_at.copy_from_slice(&state.diverged_at);
        self.step = state.step;
        Ok(())
    }

    async fn evaluate(&mut self, h: DataHandle, start: usize, count: usize) -> Result<Vec<EvalMetrics>> {
        let n = self.dataset(h)?.n;
        if count == 0 || start + count > n {
            return Err(LabError::Backend(format!("evaluation range {start}..{} is empty or beyond the {n} examples", start + count)));
        }
        let (p, chunk, panels) = (self.layout.params_per_model, self.max_batch, self.panels());
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        // Per model: (parameters, summed loss, correct count), accumulated chunk after chunk in order.
        let mut tasks: Vec<(&[T], f64, usize)> = self.params.chunks(p).map(|params| (params, 0.0, 0)).collect();
        let eval = |t: &mut (&[T], f64, usize), slot: &mut Slot<T>| {
            let mut idx: Vec<u32> = Vec::with_capacity(chunk);
            let mut at = start;
            while at < start + count {
                let rows = (start + count - at).min(chunk);
                idx.clear();
                idx.extend((at..at + rows).map(|i| i as u32));
                slot.gather(data, &idx);
                let (l, c) = slot.model_pass(layout, t.0, rows, false, panels);
                t.1 += l.as_f64();
                t.2 += c;
                at += rows;
            }
        };
        let parallel = self.model_parallel();
        self.pool.install(|| {
            if parallel {
                par::for_each_mut(&mut tasks, |t| eval(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| eval(t, &mut slot));
            }
        });
        Ok(tasks.iter().map(|&(_, loss, correct)| EvalMetrics { loss: loss / count as f64, accuracy: correct as f64 / count as f64 }).collect())
    }

    async fn gradients(&mut self, h: DataHandle, indices: &[u32], batch: usize) -> Result<Gradients> {
        let n = self.dataset(h)?.n;
        let steps = check_indices(indices, self.k, batch, self.max_batch, n)?;
        if steps != 1 {
            return Err(LabError::Backend(format!("gradients take one batch per model ({} indices), got {}", self.k * batch, indices.len())));
        }
        let (k, p, panels) = (self.k, self.layout.params_per_model, self.panels());
        let (layout, data, slots) = (&self.layout, &self.datasets[h.0], &self.slots);
        let mut out = Gradients { losses: vec![0.0; k], grads: vec![0.0; k * p] };
        let mut tasks: Vec<(usize, &[T], &mut f32, &mut [f32])> =
            self.params.chunks(p).zip(out.losses.iter_mut()).zip(out.grads.chunks_mut(p)).enumerate().map(|(m, ((params, l), g))| (m, params, l, g)).collect();
        let grad = |t: &mut (usize, &[T], &mut f32, &mut [f32]), slot: &mut Slot<T>| {
            slot.gather(data, &indices[t.0 * batch..(t.0 + 1) * batch]);
            let (l, _) = slot.model_pass(layout, t.1, batch, true, panels);
            *t.2 = (l.as_f64() / batch as f64) as f32;
            t.3.iter_mut().zip(&slot.grads).for_each(|(o, g)| *o = g.as_f64() as f32);
        };
        let parallel = self.model_parallel();
        self.pool.install(|| {
            if parallel {
                par::for_each_mut(&mut tasks, |t| grad(t, &mut take_slot(slots)));
            } else {
                let mut slot = take_slot(slots);
                tasks.iter_mut().for_each(|t| grad(t, &mut slot));
            }
        });
        drop(tasks);
        Ok(out)
    }
}

/// Refuses a data set whose feature count or classes do not match the layout.
pub(crate) fn check_dataset_fits(layout: &Layout, data: &Dataset) -> Result<()> {
    if data.dim != layout.input() {
        return Err(LabError::Data(format!("data set '{}' has {} features but the model's input is {}", data.name, data.dim, layout.input())));
    }
    if data.classes > layout.classes() {
        return Err(LabError::Data(format!("data set '{}' has {} classes but the model has {} outputs", data.name, data.classes, layout.classes())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (a small LCG: no dependency on the rand streams).
    fn values<T: Real>(n: usize, seed: u64) -> Vec<T> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                T::from_f32(((x >> 40) as f32) / (1u64 << 23) as f32 - 1.0)
            })
            .collect()
    }

    fn panels_match_one_call<T: Real>() {
        // (m, k, n): short and long sides, tails that are not multiples of the tile, k over several kc blocks.
        for &(m, k, n) in &[(40, 300, 129), (129, 70, 40), (128, 784, 256), (256, 128, 784), (64, 600, 64), (10, 130, 256)] {
            for &(a_t, b_t) in &[(false, false), (false, true), (true, false), (true, true)] {
                for beta in [T::zero(), T::one()] {
                    let a = values::<T>(m * k, 1);
                    let b = values::<T>(k * n, 2);
                    let a_s: Strided<T> = if a_t { (&a, 1, m) } else { (&a, k, 1) };
                    let b_s: Strided<T> = if b_t { (&b, 1, k) } else { (&b, n, 1) };
                    let c0 = values::<T>(m * n, 3);
                    let mut one = c0.clone();
                    gemm_panels(1, m, k, n, a_s, b_s, beta, (&mut one, n, 1));
                    for panels in 2..=5 {
                        if m.max(n) < 8 * panels {
                            continue;
                        }
                        let mut split = c0.clone();
                        gemm_panels(panels, m, k, n, a_s, b_s, beta, (&mut split, n, 1));
                        let same = one.iter().zip(&split).all(|(x, y)| x.to_f64().unwrap().to_bits() == y.to_f64().unwrap().to_bits());
                        assert!(same, "{} {m}×{k}×{n} transposed ({a_t}, {b_t}) β = {beta:?}: {panels} panels differ from one call", T::NAME);
                    }
                }
            }
        }
    }

    #[test]
    fn a_product_split_into_panels_is_bit_identical_to_one_call() {
        panels_match_one_call::<f32>();
        panels_match_one_call::<f64>();
    }

    #[test]
    fn a_split_product_equals_a_naive_one() {
        let (m, k, n) = (96, 200, 72);
        let a = values::<f64>(m * k, 4);
        let b = values::<f64>(k * n, 5);
        let mut c = vec![0.0; m * n];
        gemm_panels(3, m, k, n, (&a, k, 1), (&b, 1, k), 0.0, (&mut c, n, 1));
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-12, "({i}, {j}): {} vs {want}", c[i * n + j]);
            }
        }
    }
}
