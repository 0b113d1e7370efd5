// common/flat_index.wgsl — the thread index of a flattened dispatch with one thread per item.
//
// Why one file: a grid dimension holds at most 65535 workgroups, so kernels with one thread per item
// (gather, bias_grad, r_softmax, sgd, perturb, peak_fma) are dispatched with workgroups of 256 threads laid
// out over (x, y), x ≤ 65535 (`flat_grid` / `Recorder::flat` in src/backend/gpu/context.rs). Each of them
// rebuilds the same index from the same layout; it is written here once, beside the workgroup size it
// assumes. Threads with an index ≥ the number of items must return.
// WGSL has no #include: src/backend/gpu/shaders.rs appends this file to the kernels that list it.

const FLAT_WORKGROUP_SIZE: u32 = 256u;

fn flat_index(wg: vec3<u32>, num_workgroups: vec3<u32>, local_index: u32) -> u32 {
    return (wg.y * num_workgroups.x + wg.x) * FLAT_WORKGROUP_SIZE + local_index;
}
