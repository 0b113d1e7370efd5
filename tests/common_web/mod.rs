//! Helpers shared by the browser tests (tests/web.rs, tests/web_experiments.rs): JS property access and a
//! tiny hand-built IDX "Fashion-MNIST" (60 training and 20 test images whose class lights up two pixel rows).
#![allow(dead_code)]

use wasm_bindgen::JsValue;

/// Reads `obj[key]` (a JS property) as a JsValue.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).expect("property access")
}

/// The `message` of a rejected promise or thrown `Error`.
pub fn message(err: &JsValue) -> String {
    get(err, "message").as_string().unwrap_or_else(|| format!("{err:?}"))
}

/// Deterministic pseudo-random bytes (an LCG): the test needs no RNG crate.
struct Lcg(u32);
impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 24) as u8
    }
}

/// `n` 28×28 images, class `i % 10`, each lighting up the two pixel rows of its class over dim noise;
/// returns the IDX image file and the IDX label file (plain bytes).
pub fn tiny_idx(n: usize, seed: u32) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Lcg(seed);
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let mut pixels = Vec::with_capacity(n * 784);
    for &c in &labels {
        for row in 0..28 {
            let lit = row / 2 == c as usize;
            for _ in 0..28 {
                pixels.push(if lit { 180 + rng.next() / 4 } else { rng.next() / 6 });
            }
        }
    }
    (sgd_lab::data::idx::encode_images(n as u32, 28, 28, &pixels), sgd_lab::data::idx::encode_labels(&labels))
}

/// Gzips `bytes` (the data files are served gzipped).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The four files of a tiny set: 60 training images (the training file is gzipped, as served) and 20 test images.
pub fn tiny_files() -> [Vec<u8>; 4] {
    let (train_images, train_labels) = tiny_idx(60, 1);
    let (test_images, test_labels) = tiny_idx(20, 2);
    [gzip(&train_images), train_labels, test_images, test_labels]
}
