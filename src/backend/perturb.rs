//! Perturbed copies of one parameter vector, built where the parameters live: the primitive of the
//! loss-landscape analyses (`crate::analysis::landscape`).
//!
//! A backend that implements [`Perturb`] holds a *basis* of three `P`-vectors `(base, d1, d2)` and fills
//! its K models with `θ_k = (c0_k·base + c1_k·d1) + c2_k·d2` for K coefficient triples — on the GPU one
//! elementwise dispatch (`shaders/perturb.wgsl`), on the CPU the same loop in the backend's precision
//! (`backend/cpu/perturb.rs`). Slices use `(1, α, β)`; interpolation uses `(1−α, α, 0)` with `d1 = θ₂`, so that
//! α = 0 and α = 1 give θ₁ and θ₂ exactly. The existing [`Backend`] methods are unchanged: after
//! [`Perturb::perturb`], [`Backend::evaluate`] evaluates the K perturbed models.

use crate::backend::Backend;
use crate::error::{LabError, Result};

/// A backend that can fill its K models with combinations of a stored basis.
pub trait Perturb: Backend {
    /// Stores `base`, `d1` and `d2` (`P` values each) for the following [`Perturb::perturb`] calls.
    fn set_perturb_basis(&mut self, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()>;
    /// Sets model k's parameters to `(c0·base + c1·d1) + c2·d2` with `coeffs[k] = [c0, c1, c2]`
    /// (exactly K triples). Encodes the work; nothing is read back.
    fn perturb(&mut self, coeffs: &[[f32; 3]]) -> Result<()>;
}

/// Checks the shapes of a basis against `P`.
pub(crate) fn check_basis(p: usize, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()> {
    for (what, n) in [("base", base.len()), ("d1", d1.len()), ("d2", d2.len())] {
        if n != p {
            return Err(LabError::Backend(format!("perturbation basis `{what}` has {n} values, the model has {p} parameters")));
        }
    }
    Ok(())
}

/// Checks that one coefficient triple per model is given.
pub(crate) fn check_coeffs(k: usize, coeffs: &[[f32; 3]]) -> Result<()> {
    if coeffs.len() != k {
        return Err(LabError::Backend(format!("perturb needs one coefficient triple per model ({k}), got {}", coeffs.len())));
    }
    Ok(())
}
