// perturb.wgsl — builds a tile of K perturbed models on the GPU for the loss-landscape analyses, as ONE
// elementwise pass over the flat K×P parameter buffer:
//   params[k][i] = (c0_k·base[i] + c1_k·d1[i]) + c2_k·d2[i]
// Why: a 51×51 slice is 2601 models; uploading each tile's K×P parameters from the host would cost
// K×P×4 bytes per tile (≈ 240 MiB for a 784-256-256-10 net and K = 256), whereas here the host writes
// the base point and two directions once (3×P) and then only K coefficient triples per tile.
// Slices use (1, α_k, β_k) with d1 = δ, d2 = η; interpolation uses (1−α_k, α_k, 0) with base = θ₁,
// d1 = θ₂, so α = 0 and α = 1 give θ₁ and θ₂ exactly (0·x + y = y).
//
// Bindings (group 0):
//   0 uniform ElementwiseParams  total = K×P, p = P
//   1 storage rw   params     K × P           (the backend's parameter buffer)
//   2 storage read basis      3 × P           (base, d1, d2)
//   3 storage read coeffs     K × (c0, c1, c2, unused)
// Dispatch: one thread per parameter of K×P, flattened like sgd.wgsl (256 per workgroup, x ≤ 65535).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/elementwise.wgsl (ElementwiseParams),
// common/flat_index.wgsl.

@group(0) @binding(0) var<uniform> g: ElementwiseParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> basis: array<f32>;
@group(0) @binding(3) var<storage, read> coeffs: array<vec4<f32>>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= g.total) { return; }
    let m = i / g.p;
    let j = i - m * g.p;
    let c = coeffs[m];
    params[i] = (c.x * basis[j] + c.y * basis[g.p + j]) + c.z * basis[2u * g.p + j];
}
