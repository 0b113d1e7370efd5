// common/divergence.wgsl — the divergence flag of a healthy model, shared by softmax_ce.wgsl (which sets a
// model's flag to the step of its divergence) and sgd.wgsl (which skips models whose flag is set).
//
// Why one file: both kernels must agree on the value that means "not diverged"; the Rust mirror is
// `HEALTHY` in src/backend/gpu/params.rs, written into the flags buffer by the backend.
// WGSL has no #include: src/backend/gpu/shaders.rs appends this file to the kernels that list it.

const HEALTHY: u32 = 0xffffffffu;
