//! [`Perturb`] on the GPU: the basis `(base, d1, d2)` is uploaded once (3 × P floats), then each tile of
//! K perturbed models costs K coefficient triples and one dispatch of `shaders/perturb.wgsl` writing the
//! backend's `params` buffer in place (no readback; the next `evaluate` sees the new parameters).

use super::context::Recorder;
use super::params::ElementwiseParams;
use super::GpuBackend;
use crate::backend::perturb::{check_basis, check_coeffs, Perturb};
use crate::backend::Backend;
use crate::error::{LabError, Result};

/// The buffers and bind group of the perturbation, created on the first `set_perturb_basis`.
pub(crate) struct PerturbState {
    uniform: wgpu::Buffer,
    basis: wgpu::Buffer,
    coeffs: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

impl PerturbState {
    /// Every buffer held (for [`GpuBackend::buffer_bytes`]).
    pub(crate) fn buffers(&self) -> [&wgpu::Buffer; 3] {
        [&self.uniform, &self.basis, &self.coeffs]
    }
}

impl Perturb for GpuBackend {
    fn set_perturb_basis(&mut self, base: &[f32], d1: &[f32], d2: &[f32]) -> Result<()> {
        let (k, p) = (self.k, self.layout.params_per_model);
        check_basis(p, base, d1, d2)?;
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        if (3 * p * 4) as u64 > limit {
            return Err(LabError::Gpu(format!("a perturbation basis of 3 × {p} parameters exceeds max_storage_buffer_binding_size ({limit} bytes)")));
        }
        if self.perturb.is_none() {
            let ctx = &self.ctx;
            let uniform = ctx.uniform("perturb uniforms", 16);
            let u = ElementwiseParams { total: (k * p) as u32, p: p as u32, _pad: [0; 2] };
            ctx.queue.write_buffer(&uniform, 0, bytemuck::bytes_of(&u));
            let basis = ctx.storage("perturb basis", (3 * p * 4) as u64);
            let coeffs = ctx.storage("perturb coefficients", (k * 16) as u64);
            let bind = ctx.bind_group("perturb", &ctx.kernels.perturb, &[(&uniform, 0, Some(16)), (&self.params, 0, None), (&basis, 0, None), (&coeffs, 0, None)]);
            self.perturb = Some(PerturbState { uniform, basis, coeffs, bind });
        }
        let st = self.perturb.as_ref().expect("created above");
        for (i, v) in [base, d1, d2].into_iter().enumerate() {
            self.ctx.queue.write_buffer(&st.basis, (i * p * 4) as u64, bytemuck::cast_slice(v));
        }
        Ok(())
    }

    fn perturb(&mut self, coeffs: &[[f32; 3]]) -> Result<()> {
        check_coeffs(self.models(), coeffs)?;
        let st = self.perturb.as_ref().ok_or_else(|| LabError::Backend("perturb called before set_perturb_basis".into()))?;
        let c4: Vec<[f32; 4]> = coeffs.iter().map(|c| [c[0], c[1], c[2], 0.0]).collect();
        self.ctx.queue.write_buffer(&st.coeffs, 0, bytemuck::cast_slice(&c4));
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("perturb") });
        {
            let pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("perturb"), timestamp_writes: None });
            let mut rec = Recorder::new(pass, &self.ctx);
            rec.flat(&self.ctx.kernels.perturb, &st.bind, &[], self.k * self.layout.params_per_model);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }
}
