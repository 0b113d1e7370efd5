// r_softmax.wgsl — softmax cross-entropy's gradient and its tangent (R-operator) for Hessian-vector products.
//
// Why: the HVP's backward tangent pass starts from R(δ_L) = (diag p − p pᵀ)·R(z_L) per row, which needs the
// softmax p of the same logits; computing δ_L = (p − onehot) beside it keeps both in one pass over the row.
// Both are scaled by `scale` = 1/n for the mean over the n examples of the whole subset (not 1/rows of the
// chunk), so the weight-block products of successive chunks simply add up.
//
// Per row: lse = max + log Σ exp(z − max), p = exp(z − lse), s = Σ p·R(z);
//   δ[c] = (p[c] − [c = label])·scale,  R(δ)[c] = p[c]·(R(z)[c] − s)·scale.
//
// Bindings (group 0):
//   0 uniform RSoftmaxParams  sizes and region offsets in `work` (rows of a model are mb apart)
//   1 storage rw   work        logits, R(logits) read; δ, R(δ) written (each K × mb × classes)
//   2 storage read labels      K × mb
// Dispatch: one thread per (model, row), flattened like gather.wgsl (256 per workgroup, x ≤ 65535).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/flat_index.wgsl.

struct RSoftmaxParams {
    k: u32, rows: u32, classes: u32, mb: u32,
    logits_off: u32, rlogits_off: u32, delta_off: u32, rdelta_off: u32,
    scale: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> s: RSoftmaxParams;
@group(0) @binding(1) var<storage, read_write> work: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= s.k * s.rows) { return; }
    let m = i / s.rows;
    let r = i % s.rows;
    let row = m * s.mb + r;
    let base = row * s.classes;
    var mx = work[s.logits_off + base];
    for (var c = 1u; c < s.classes; c += 1u) {
        mx = max(mx, work[s.logits_off + base + c]);
    }
    var sum = 0.0;
    for (var c = 0u; c < s.classes; c += 1u) {
        sum += exp(work[s.logits_off + base + c] - mx);
    }
    let lse = mx + log(sum);
    var prz = 0.0;
    for (var c = 0u; c < s.classes; c += 1u) {
        prz += exp(work[s.logits_off + base + c] - lse) * work[s.rlogits_off + base + c];
    }
    let y = labels[row];
    for (var c = 0u; c < s.classes; c += 1u) {
        let p = exp(work[s.logits_off + base + c] - lse);
        let onehot = select(0.0, 1.0, c == y);
        work[s.delta_off + base + c] = (p - onehot) * s.scale;
        work[s.rdelta_off + base + c] = p * (work[s.rlogits_off + base + c] - prz) * s.scale;
    }
}
