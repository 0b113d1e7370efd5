//! Strided matrix products (`matrixmultiply`), split into panels of C across the backend's threads.
//!
//! The three products of a layer (`A·Wᵀ`, `δᵀ·A`, `δ·W`) are one [`gemm`] call each with the operands'
//! strides. Inside a CPU backend's pool a large product is split into panels of C run by `pool::join`.
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

use super::{pool, Real};

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
pub(super) const MIN_SIDE_BY_SIDE_WORK: usize = 1 << 16;
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
    gemm_in(pool::current_threads(), m, k, n, a, b, beta, c)
}

/// [`gemm`] split into up to `panels` panels of C: fewer for small products and short sides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_in<T: Real>(panels: usize, m: usize, k: usize, n: usize, a: Strided<T>, b: Strided<T>, beta: T, c: (&mut [T], usize, usize)) {
    let panels = if m * n * k < MIN_SPLIT_WORK { 1 } else { panels.min(m.max(n) / MIN_PANEL).max(1) };
    gemm_panels(panels, m, k, n, a, b, beta, c)
}

/// The product as exactly `panels` panels of C (rows if m > n, else columns), run by `pool::join`.
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
            pool::join(|| recurse(first, mid, bound, run), || recurse(mid, last, bound, run));
        }
    }
    if m == 0 || n == 0 {
        return;
    }
    recurse(0, panels, &bound, &run);
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
