//! Shared test helpers: a named tolerance and an assertion that shows where values differ.
#![allow(dead_code)]

/// How close an actual value must be to the expected one: `|a − e| ≤ abs + rel·|e|`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute part.
    pub abs: f64,
}

impl Tolerance {
    /// A tolerance with both parts.
    pub const fn rel_abs(rel: f64, abs: f64) -> Self {
        Tolerance { rel, abs }
    }
    /// The default for one f32 kernel against the f64 reference.
    pub const fn f32_kernel() -> Self {
        Tolerance::rel_abs(1e-4, 1e-5)
    }
    /// Whether `a` is close enough to `e` (NaN is never close, so an unwritten NaN-filled element fails).
    pub fn accepts(&self, a: f64, e: f64) -> bool {
        (a - e).abs() <= self.abs + self.rel * e.abs()
    }
}

/// Asserts that `actual` and `expected` have the same length and agree within `tol`;
/// on failure prints the first 5 mismatches with their indices.
#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f64], tol: Tolerance, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length {} differs from the expected {}", actual.len(), expected.len());
    let bad: Vec<usize> = (0..actual.len()).filter(|&i| !tol.accepts(actual[i] as f64, expected[i])).collect();
    if !bad.is_empty() {
        let lines: Vec<String> = bad
            .iter()
            .take(5)
            .map(|&i| format!("  [{i}] actual {:e} expected {:e} (diff {:e})", actual[i], expected[i], (actual[i] as f64 - expected[i]).abs()))
            .collect();
        panic!("{what}: {} of {} values outside {tol:?}; first:\n{}", bad.len(), actual.len(), lines.join("\n"));
    }
}

/// Same as [`assert_close`] for two f32 slices.
#[track_caller]
pub fn assert_close_f32(actual: &[f32], expected: &[f32], tol: Tolerance, what: &str) {
    let e: Vec<f64> = expected.iter().map(|&v| v as f64).collect();
    assert_close(actual, &e, tol, what);
}

/// Declares the async test body `$name` as `$name::gpu`: a native `#[test]` driven by `pollster` (lavapipe
/// in CI) or a `#[wasm_bindgen_test]` in headless Chromium's WebGPU — one body, both targets.
#[allow(unused_macros)] // not every test file that shares these helpers runs on the GPU
macro_rules! gpu_test {
    ($name:ident) => {
        mod $name {
            #[cfg(not(target_arch = "wasm32"))]
            #[test]
            fn gpu() {
                pollster::block_on(super::$name());
            }
            #[cfg(target_arch = "wasm32")]
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn gpu() {
                super::$name().await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use gpu_test;

/// The GPU the tests run on (lavapipe natively, WebGPU in the browser).
pub async fn ctx() -> sgd_lab::backend::gpu::GpuContext {
    sgd_lab::backend::gpu::GpuContext::new().await.expect("a GPU adapter (lavapipe natively: install mesa-vulkan-drivers)")
}

/// `n` values uniform in (−scale, scale).
pub fn rand_vec(rng: &mut rand_chacha::ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    use rand::Rng;
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A random net, batch and labels for the f64 reference checks (widths drawn at random, so nothing is a
/// power of two by design): `(layout, params, x, labels)`.
pub fn random_problem(rng: &mut rand_chacha::ChaCha8Rng, act: sgd_lab::model::Activation) -> (sgd_lab::model::Layout, Vec<f64>, Vec<f64>, Vec<u32>) {
    use rand::Rng;
    let depth = rng.random_range(1..4);
    let mut widths = vec![rng.random_range(1..9)];
    for _ in 0..depth {
        widths.push(rng.random_range(1..12));
    }
    widths.push(rng.random_range(2..6));
    let layout = sgd_lab::model::Layout::new(&widths, act);
    let params: Vec<f64> = (0..layout.params_per_model).map(|_| rng.random_range(-1.0..1.0)).collect();
    let rows = rng.random_range(1..10);
    let x: Vec<f64> = (0..rows * widths[0]).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u32> = (0..rows).map(|_| rng.random_range(0..*widths.last().unwrap() as u32)).collect();
    (layout, params, x, y)
}

/// A CPU f64 backend holding K random models of `layout` and a random f32 data set of `n` examples
/// (exact in f64): `(backend, handle, data)`.
pub fn tiny_backend(
    layout: &sgd_lab::model::Layout,
    k: usize,
    n: usize,
    max_batch: usize,
    seed: u64,
) -> (sgd_lab::backend::cpu::CpuBackend<f64>, sgd_lab::backend::DataHandle, sgd_lab::data::Dataset) {
    use rand::{Rng, SeedableRng};
    use sgd_lab::backend::Backend;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let classes = layout.classes();
    let x: Vec<f32> = (0..n * layout.input()).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
    let data = sgd_lab::data::Dataset::new("tiny", layout.input(), classes, sgd_lab::data::Features::F32(x), y).unwrap();
    let mut b = sgd_lab::backend::cpu::CpuBackend::<f64>::new(layout, k, max_batch).unwrap();
    let h = b.upload_dataset(&data).unwrap();
    let params: Vec<f32> = (0..k * layout.params_per_model).map(|_| rng.random_range(-0.8..0.8)).collect();
    b.write_params(&params).unwrap();
    (b, h, data)
}
