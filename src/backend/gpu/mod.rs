//! GPU backend (placeholder while the kernels are written).
