// sgd.wgsl — SGD with heavy-ball momentum and weight decay for K models as ONE elementwise pass over the
// flat K×P parameter buffer (PyTorch convention, dampening 0, no Nesterov):
//   g = grad + wd·θ;  v ← μ·v + g;  θ ← θ − η·v
// with each model's (η, μ, wd) read from `hyper[model]`. Models whose divergence flag is set
// (flags[m] != HEALTHY = 0xFFFFFFFF) are skipped: their parameters and momentum stay as they were.
//
// Bindings (group 0):
//   0 uniform ElementwiseParams  total = K×P, p = P
//   1 storage rw   params     K × P
//   2 storage rw   velocity   K × P
//   3 storage read grads      K × P
//   4 storage read hyper      K × (lr, momentum, weight_decay)
//   5 storage read flags      K
// Dispatch: one thread per parameter, flattened like gather.wgsl (256 per workgroup, x ≤ 65535).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/elementwise.wgsl (ElementwiseParams),
// common/divergence.wgsl (HEALTHY), common/flat_index.wgsl.

struct Hyper { lr: f32, momentum: f32, weight_decay: f32 }

@group(0) @binding(0) var<uniform> g: ElementwiseParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read> hyper: array<Hyper>;
@group(0) @binding(5) var<storage, read> flags: array<u32>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= g.total) { return; }
    let m = i / g.p;
    if (flags[m] != HEALTHY) { return; }
    let h = hyper[m];
    let theta = params[i];
    let grad = grads[i] + h.weight_decay * theta;
    let v = h.momentum * velocity[i] + grad;
    velocity[i] = v;
    params[i] = theta - h.lr * v;
}
