//! Synthetic 2-D data sets the lab can generate anywhere, without downloads: two spirals, concentric
//! circles, XOR quadrants and Gaussian blobs. Each is seeded (ChaCha8, so the page and the CLI draw the
//! same points), has Gaussian noise of std `noise` on each coordinate, and assigns classes round-robin
//! (example `i` has class `i mod classes`), so classes are balanced exactly when `n` is a multiple of the
//! class count and differ by at most one otherwise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::{Dataset, Features};
use crate::error::{LabError, Result};

/// Most classes a blobs set may have.
pub const MAX_BLOB_CLASSES: usize = 256;

/// A synthetic data set the lab can generate anywhere, without downloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyntheticData {
    /// Two interleaved spirals in 2-D (classes 0 and 1), Gaussian noise of std `noise`.
    TwoSpirals {
        /// Number of points (split evenly between the spirals).
        n: usize,
        /// Standard deviation of the noise added to each coordinate.
        #[serde(default = "default_noise")]
        noise: f32,
        /// Seed of the generator.
        #[serde(default)]
        seed: u64,
    },
    /// Two concentric circles: class 0 on the unit circle, class 1 on the circle of radius `factor`.
    Circles {
        /// Number of points (split evenly between the circles).
        n: usize,
        /// Standard deviation of the noise added to each coordinate.
        #[serde(default = "default_noise")]
        noise: f32,
        /// Radius of the inner circle relative to the outer one, in (0, 1).
        #[serde(default = "default_factor")]
        factor: f32,
        /// Seed of the generator.
        #[serde(default)]
        seed: u64,
    },
    /// XOR: points uniform in the quadrants of [−1, 1]²; class 0 in the quadrants where x and y have the
    /// same sign, class 1 where they differ.
    Xor {
        /// Number of points (split evenly between the classes).
        n: usize,
        /// Standard deviation of the noise added to each coordinate.
        #[serde(default = "default_noise")]
        noise: f32,
        /// Seed of the generator.
        #[serde(default)]
        seed: u64,
    },
    /// `classes` isotropic Gaussian blobs of std `noise`, centred evenly on the unit circle
    /// (class c at angle 2πc/classes).
    Blobs {
        /// Number of points (split evenly between the blobs).
        n: usize,
        /// Number of blobs (classes), at least 2.
        #[serde(default = "default_blob_classes")]
        classes: usize,
        /// Standard deviation of each blob around its centre.
        #[serde(default = "default_noise")]
        noise: f32,
        /// Seed of the generator.
        #[serde(default)]
        seed: u64,
    },
}

fn default_noise() -> f32 {
    0.1
}

fn default_factor() -> f32 {
    0.5
}

fn default_blob_classes() -> usize {
    3
}

fn check_n(prefix: &str, n: usize, min: usize) -> Result<()> {
    if n < min || n > 1_000_000 {
        return Err(LabError::config(format!("{prefix}.n"), format!("must be between {min} and 1000000, got {n}")));
    }
    Ok(())
}

fn check_noise(prefix: &str, noise: f32) -> Result<()> {
    if !noise.is_finite() || noise < 0.0 {
        return Err(LabError::config(format!("{prefix}.noise"), format!("must be finite and ≥ 0, got {noise}")));
    }
    Ok(())
}

impl SyntheticData {
    /// Checks the generator's fields; errors name the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        match *self {
            SyntheticData::TwoSpirals { n, noise, .. } | SyntheticData::Xor { n, noise, .. } => {
                check_n(prefix, n, 2)?;
                check_noise(prefix, noise)
            }
            SyntheticData::Circles { n, noise, factor, .. } => {
                check_n(prefix, n, 2)?;
                check_noise(prefix, noise)?;
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(LabError::config(format!("{prefix}.factor"), format!("must be in (0, 1), got {factor}")));
                }
                Ok(())
            }
            SyntheticData::Blobs { n, classes, noise, .. } => {
                if !(2..=MAX_BLOB_CLASSES).contains(&classes) {
                    return Err(LabError::config(
                        format!("{prefix}.classes"),
                        format!("must be between 2 and {MAX_BLOB_CLASSES}, got {classes}"),
                    ));
                }
                check_n(prefix, n, classes.max(2))?;
                check_noise(prefix, noise)
            }
        }
    }

    /// Number of classes the generator produces.
    pub fn classes(&self) -> usize {
        match *self {
            SyntheticData::Blobs { classes, .. } => classes,
            _ => 2,
        }
    }

    /// Generates the data set.
    pub fn generate(&self) -> Result<Dataset> {
        match *self {
            SyntheticData::TwoSpirals { n, noise, seed } => two_spirals(n, noise, seed),
            SyntheticData::Circles { n, noise, factor, seed } => circles(n, noise, factor, seed),
            SyntheticData::Xor { n, noise, seed } => xor(n, noise, seed),
            SyntheticData::Blobs { n, classes, noise, seed } => blobs(n, classes, noise, seed),
        }
    }
}

fn noise_dist(noise: f32) -> Result<Normal<f64>> {
    Normal::new(0.0f64, noise.max(0.0) as f64).map_err(|e| LabError::Data(format!("noise {noise}: {e}")))
}

/// The loop every 2-D generator shares: example `i` gets class `i mod classes` (so classes are balanced),
/// `point(class, rng)` draws its noiseless position, then Gaussian noise of std `noise` is added to x, then y.
fn points_2d(
    name: impl Into<String>,
    n: usize,
    classes: usize,
    noise: f32,
    seed: u64,
    mut point: impl FnMut(usize, &mut ChaCha8Rng) -> (f64, f64),
) -> Result<Dataset> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = noise_dist(noise)?;
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % classes;
        let (px, py) = point(class, &mut rng);
        x.push((px + normal.sample(&mut rng)) as f32);
        x.push((py + normal.sample(&mut rng)) as f32);
        y.push(class as u32);
    }
    Dataset::new(name, 2, classes, Features::F32(x), y)
}

/// Two interleaved spirals (1.5 turns each) in roughly [−1, 1]², alternating labels 0, 1, 0, 1, ….
pub fn two_spirals(n: usize, noise: f32, seed: u64) -> Result<Dataset> {
    points_2d("two spirals", n, 2, noise, seed, |class, rng| {
        let t: f64 = rng.random_range(0.0..1.0);
        let r = 0.1 + 0.9 * t;
        let angle = t * 3.0 * std::f64::consts::PI + class as f64 * std::f64::consts::PI;
        (r * angle.cos(), r * angle.sin())
    })
}

/// Two concentric circles: class 0 (even `i`) on the unit circle, class 1 on radius `factor`, angles uniform.
pub fn circles(n: usize, noise: f32, factor: f32, seed: u64) -> Result<Dataset> {
    points_2d("circles", n, 2, noise, seed, |class, rng| {
        let angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        let r = if class == 0 { 1.0 } else { factor as f64 };
        (r * angle.cos(), r * angle.sin())
    })
}

/// XOR quadrants: class 0 (even `i`) in the first or third quadrant, class 1 in the second or fourth,
/// coordinates uniform in (0, 1] in magnitude before the noise.
pub fn xor(n: usize, noise: f32, seed: u64) -> Result<Dataset> {
    points_2d("xor", n, 2, noise, seed, |class, rng| {
        let sx: f64 = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let sy = if class == 0 { sx } else { -sx };
        let ax: f64 = 1.0 - rng.random_range(0.0..1.0);
        let ay: f64 = 1.0 - rng.random_range(0.0..1.0);
        (sx * ax, sy * ay)
    })
}

/// `classes` Gaussian blobs of std `noise`; example `i` belongs to class `i mod classes`, centred at
/// `(cos 2πc/classes, sin 2πc/classes)`.
pub fn blobs(n: usize, classes: usize, noise: f32, seed: u64) -> Result<Dataset> {
    if classes < 2 {
        return Err(LabError::Data(format!("blobs need at least 2 classes, got {classes}")));
    }
    points_2d(format!("{classes} blobs"), n, classes, noise, seed, |class, _| {
        let angle = std::f64::consts::TAU * class as f64 / classes as f64;
        (angle.cos(), angle.sin())
    })
}
