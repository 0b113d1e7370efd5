// common/step_slot.wgsl — the per-step uniform slot, shared by gather.wgsl and softmax_ce.wgsl.
//
// Why one file: a call of K models' steps writes one slot per step (or evaluation chunk) into one uniform
// buffer, 256 bytes apart, and each dispatch picks its slot with a dynamic offset; the gather and the
// softmax of the same step must read the same fields at the same places. The Rust mirror is `StepSlot` in
// src/backend/gpu/params.rs (tests/kernel_contract.rs checks that the sizes agree).
// WGSL has no #include: src/backend/gpu/shaders.rs appends this file to the kernels that list it.
//
//   step_local   step within the call (or chunk index): selects the indices and the loss/partials slot
//   step_global  steps since reset_state: the divergence step written into `flags`
//   base         first example of a contiguous chunk (evaluation)

struct StepSlot { step_local: u32, step_global: u32, base: u32, _pad: u32 }
