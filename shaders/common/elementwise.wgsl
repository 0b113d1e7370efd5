// common/elementwise.wgsl — the uniform of a pass with one thread per parameter of K models, shared by
// sgd.wgsl and perturb.wgsl.
//
// Why one file: both passes walk the flat K×P parameter buffer (`total` = K×P threads, model = i / `p`),
// and the backend fills one Rust struct for both, `ElementwiseParams` in src/backend/gpu/params.rs
// (tests/kernel_contract.rs checks that the sizes agree).
// WGSL has no #include: src/backend/gpu/shaders.rs appends this file to the kernels that list it.

struct ElementwiseParams { total: u32, p: u32, _pad0: u32, _pad1: u32 }
