// bias_grad.wgsl — bias gradients of every layer of K models in ONE dispatch: db[l][j] = Σ_rows δ_l[row][j].
//
// Why separate from the GEMM: the bias gradient is a column sum, not a product; since every layer's δ
// stays in its own region of `work`, all layers are reduced together after the backward pass, one dispatch
// per step instead of one per layer. Each thread sums its rows in order: deterministic, no atomics.
//
// Bindings (group 0):
//   0 uniform BiasParams   sizes and a per-layer table (delta offset, fan_out, bias offset in a model,
//                          first bias index of the layer in the concatenation of all biases)
//   1 storage read work    δ_l at delta_off + (model*mb + row)*fan_out + j
//   2 storage rw   grads   K × P, bias of layer l of model m at m*P + bias_off + j
//                          (overwritten, or added to when `accumulate` ≠ 0: the HVP over several chunks)
// Dispatch: one thread per (model, bias unit), flattened like gather.wgsl (256 per workgroup, x ≤ 65535).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/flat_index.wgsl.

struct BiasParams {
    k: u32, rows: u32, mb: u32, p: u32,
    layers: u32, total: u32, accumulate: u32, _pad1: u32,
    table: array<vec4<u32>, 64>,
}

@group(0) @binding(0) var<uniform> g: BiasParams;
@group(0) @binding(1) var<storage, read> work: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= g.k * g.total) { return; }
    let m = i / g.total;
    let j = i % g.total;
    var l = 0u;
    for (var q = 1u; q < g.layers; q += 1u) {
        if (g.table[q].w <= j) { l = q; }
    }
    let e = g.table[l];
    let u = j - e.w;
    var sum = 0.0;
    for (var r = 0u; r < g.rows; r += 1u) {
        sum += work[e.x + (m * g.mb + r) * e.y + u];
    }
    let at = m * g.p + e.z + u;
    if (g.accumulate != 0u) { sum = grads[at] + sum; }
    grads[at] = sum;
}
