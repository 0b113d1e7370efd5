//! The CPU half of [`Perturb`]: the basis kept in the backend's precision and [`combine`]d in place.

use super::{CpuBackend, Real};
use crate::backend::perturb::{check_basis, check_coeffs, Perturb};
use crate::backend::Backend;
use crate::error::{LabError, Result};

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
