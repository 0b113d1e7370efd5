//! The kernels' WGSL sources and each kernel's contract with the Rust side, in one table ([`KERNELS`]).
//!
//! A kernel's contract has three parts that nothing in the compiler ties together: its WGSL `@binding`
//! declarations, the [`Bind`] kinds its bind groups are built with, and the `#[repr(C)]` Rust structs
//! written into its uniforms (`params.rs`). Each [`KernelSpec`] states the last two beside the source, and
//! `tests/kernel_contract.rs` checks them against the WGSL with naga's reflection (no GPU needed).
//!
//! WGSL has no `#include`: declarations that several kernels share (the per-step uniform slot, the
//! flattened thread index, the healthy divergence flag, the elementwise passes' uniform) are written once
//! in `shaders/common/*.wgsl`, and each kernel's source is composed here at compile time: the kernel's own
//! file, then the common files it lists. The kernel file comes first so that a compiler message's line
//! numbers are those of the kernel file (WGSL declarations may be used before they appear). The pipelines
//! ([`super::GpuContext`], `throughput.rs`), naga's validation (`tests/shader_validation.rs`) and the
//! contract test all read the same composed text from this table.

use super::hvp::RSoftmaxParams;
use super::params::{BiasParams, ElementwiseParams, GatherParams, GemmParams, PeakParams, SoftmaxParams, StepSlot};
use Bind::*;

/// How a kernel binds one resource, in `@binding` order; must match its WGSL declarations
/// (checked by `tests/kernel_contract.rs`; on a device a mismatch is a pipeline-creation error naming the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// `var<uniform>` at a fixed offset, holding a Rust struct of this many bytes (`size_of`).
    Uniform(usize),
    /// `var<uniform>` with a dynamic offset (the per-step slot), holding a Rust struct of this many bytes.
    UniformDyn(usize),
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

impl Bind {
    /// The size of the Rust struct written into a uniform binding (`None` for storage).
    pub fn uniform_bytes(self) -> Option<usize> {
        match self {
            Uniform(bytes) | UniformDyn(bytes) => Some(bytes),
            Read | ReadWrite => None,
        }
    }
}

/// One kernel: its file, the common declarations appended to it, the composed source and its bindings.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    /// The kernel's file under `shaders/` (also the label of its pipeline and of its errors).
    pub file: &'static str,
    /// The files under `shaders/common/` appended to it, in order.
    pub common: &'static [&'static str],
    /// The WGSL compiled for it: `file`, then each of `common`.
    pub source: &'static str,
    /// One entry per `@binding` of group 0, in binding order.
    pub binds: &'static [Bind],
}

/// A [`KernelSpec`] whose source is `shaders/<file>` followed by `shaders/common/<common>…`, so the list of
/// common files is written once and the composed text cannot disagree with it.
macro_rules! kernel {
    ($file:literal, common: [$($common:literal),* $(,)?], binds: $binds:expr $(,)?) => {
        KernelSpec {
            file: $file,
            common: &[$($common),*],
            source: concat!(
                include_str!(concat!("../../../shaders/", $file))
                $(, "\n", include_str!(concat!("../../../shaders/common/", $common)))*
            ),
            binds: $binds,
        }
    };
}

const GATHER_PARAMS: usize = size_of::<GatherParams>();
const STEP_SLOT: usize = size_of::<StepSlot>();
const ELEMENTWISE: usize = size_of::<ElementwiseParams>();

/// `gather.wgsl`: a mini-batch's rows and labels of K models into the layer-0 activations.
pub const GATHER: KernelSpec = kernel!(
    "gather.wgsl",
    common: ["step_slot.wgsl", "flat_index.wgsl"],
    binds: &[Uniform(GATHER_PARAMS), UniformDyn(STEP_SLOT), Read, Read, Read, ReadWrite, ReadWrite],
);

/// `gemm.wgsl`: the one batched, strided GEMM of every matrix product.
pub const GEMM: KernelSpec = kernel!(
    "gemm.wgsl",
    common: [],
    binds: &[Uniform(size_of::<GemmParams>()), Read, ReadWrite, ReadWrite],
);

/// `softmax_ce.wgsl`: softmax cross-entropy, its gradient, the per-model loss and the divergence flag.
pub const SOFTMAX_CE: KernelSpec = kernel!(
    "softmax_ce.wgsl",
    common: ["step_slot.wgsl", "divergence.wgsl"],
    binds: &[Uniform(size_of::<SoftmaxParams>()), UniformDyn(STEP_SLOT), ReadWrite, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite],
);

/// `bias_grad.wgsl`: every layer's bias gradient in one dispatch.
pub const BIAS_GRAD: KernelSpec = kernel!(
    "bias_grad.wgsl",
    common: ["flat_index.wgsl"],
    binds: &[Uniform(size_of::<BiasParams>()), Read, ReadWrite],
);

/// `sgd.wgsl`: SGD with momentum and weight decay over K × P parameters.
pub const SGD: KernelSpec = kernel!(
    "sgd.wgsl",
    common: ["elementwise.wgsl", "divergence.wgsl", "flat_index.wgsl"],
    binds: &[Uniform(ELEMENTWISE), ReadWrite, ReadWrite, Read, Read, Read],
);

/// `r_softmax.wgsl`: the softmax-CE gradient and its R-operator tangent (Hessian-vector products).
pub const R_SOFTMAX: KernelSpec = kernel!(
    "r_softmax.wgsl",
    common: ["flat_index.wgsl"],
    binds: &[Uniform(size_of::<RSoftmaxParams>()), ReadWrite, Read],
);

/// `perturb.wgsl`: K perturbed models `c0·base + c1·d1 + c2·d2` (loss landscapes).
pub const PERTURB: KernelSpec = kernel!(
    "perturb.wgsl",
    common: ["elementwise.wgsl", "flat_index.wgsl"],
    binds: &[Uniform(ELEMENTWISE), ReadWrite, Read, Read],
);

/// `peak_fma.wgsl`: the measured FMA peak (built on demand by `throughput.rs`, not by the context).
pub const PEAK_FMA: KernelSpec = kernel!(
    "peak_fma.wgsl",
    common: ["flat_index.wgsl"],
    binds: &[Uniform(size_of::<PeakParams>()), ReadWrite],
);

/// Every kernel of the lab: the seven the context compiles (in that order), then the throughput probe.
pub const KERNELS: [KernelSpec; 8] = [GATHER, GEMM, SOFTMAX_CE, BIAS_GRAD, SGD, R_SOFTMAX, PERTURB, PEAK_FMA];
