//! Curvature: backends that multiply each model's loss Hessian by a vector (exact Hessian-vector products).
//!
//! The trait every analysis of the Hessian is built on (`crate::analysis`: Lanczos, Hutchinson, ε-sharpness);
//! its CPU half is `backend/cpu/hvp.rs` (Pearlmutter's R-operator, the f64 reference), its GPU half
//! `backend/gpu/hvp.rs` with `shaders/r_softmax.wgsl`. Both check a request with [`check_hvp_request`].

use crate::backend::{Backend, DataHandle};
use crate::error::{LabError, Result};

/// Backends that can multiply each model's loss Hessian by a vector.
pub trait Curvature: Backend {
    /// `H_m·v_m` for every model m, where `H_m` is the Hessian of model m's mean softmax cross-entropy over
    /// examples `start..start+count` of `data` (eval mode, no weight decay), and `v` holds the K vectors
    /// in the flat parameter layout (`K × P`). Returns `K × P`. Parameters are the backend's current ones.
    async fn hvp(&mut self, data: DataHandle, start: usize, count: usize, v: &[f32]) -> Result<Vec<f32>>;
}

/// Checks an HVP request against the sizes of a backend and its data set.
pub(crate) fn check_hvp_request(k: usize, p: usize, n: usize, start: usize, count: usize, v_len: usize) -> Result<()> {
    if count == 0 || start + count > n {
        return Err(LabError::Backend(format!("Hessian range {start}..{} is empty or beyond the {n} examples", start + count)));
    }
    if v_len != k * p {
        return Err(LabError::Backend(format!("expected {} vector entries (K × P = {k} × {p}), got {v_len}", k * p)));
    }
    Ok(())
}
