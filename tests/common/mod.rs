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
