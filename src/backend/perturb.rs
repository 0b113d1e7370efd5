//! Perturbed copies of one parameter vector, built where the parameters live: the primitive of the
//! loss-landscape analyses (`crate::analysis::landscape`).
//!
//! A backend that implements [`Perturb`] holds a *basis* of three `P`-vectors `(base, d1, d2)` and fills
//! its K models with `θ_k = (c0_k·base + c1_k·d1) + c2_k·d2` for K coefficient triples — on the GPU one
//! elementwise dispatch (`shaders/perturb.wgsl`), on the CPU the same loop in the backend's precision
//! ([`combine`]). Slices use `(1, α, β)`; interpolation uses `(1−α, α, 0)` with `d1 = θ₂`, so that
//! α = 0 and α = 1 give θ₁ and θ₂ exactly. The existing [`Backend`] methods are unchanged: after
//! [`Perturb::perturb`], [`Backend::evaluate`] evaluates the K perturbed models.

use crate::backend::cpu::{CpuBackend, Real};
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

/// The CPU reference of the perturbation: `out[k·P + i] = (c0_k·base_i + c1_k·d1_i) + c2_k·d2_i`, in `T`.
pub fn combine<T: Real>(base: &[T], d1: &[T], d2: &[T], coeffs: &[[f32; 3]], out: &mut [T]) {
    let p = base.len();
    assert!(d1.len() == p && d2.len() == p && out.len() == coeffs.len() * p, "combine: shapes");
    for (k, c) in coeffs.iter().enumerate() {
        let (c0, c1, c2) = (T::from_f32(c[0]), T::from_f32(c[1]), T::from_f32(c[2]));
        for (i, o) in out[k * p..(k + 1) * p].iter_mut().enumerate() {
            *o = (c0 * base[i] + c1 * d1[i]) + c2 * d2[i];
        }
    }
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

impl<T: Real> Perturb for CpuBackend<T> {
    fn set_perturb_basis(&mut self, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()> {
        check_basis(self.layout().params_per_model, base, d1, d2)?;
        let basis = base.iter().chain(d1).chain(d2).map(|&v| T::from_f32(v)).collect();
        self.set_basis_exact(basis);
        Ok(())
    }

    fn perturb(&mut self, coeffs: &[[f32; 3]]) -> Result<()> {
        check_coeffs(self.models(), coeffs)?;
        let p = self.layout().params_per_model;
        let (basis, params) = self.basis_and_params_mut();
        if basis.len() != 3 * p {
            return Err(LabError::Backend("perturb called before set_perturb_basis".into()));
        }
        combine(&basis[..p], &basis[p..2 * p], &basis[2 * p..], coeffs, params);
        Ok(())
    }
}
