// sgd.wgsl — SGD with heavy-ball momentum and weight decay for K models as ONE elementwise pass over the
// flat K×P parameter buffer (PyTorch convention, dampening 0, no Nesterov):
//   g = grad + wd·θ;  v ← μ·v + g;  θ ← θ − η·v
// with each model's (η, μ, wd) read from `hyper[model]`. Models whose divergence flag is set
// (flags[m] != 0xFFFFFFFF) are skipped: their parameters and momentum stay as they were.
//
// Bindings (group 0):
//   0 uniform SgdParams       total = K×P, p = P
//   1 storage rw   params     K × P
//   2 storage rw   velocity   K × P
//   3 storage read grads      K × P
//   4 storage read hyper      K × (lr, momentum, weight_decay)
//   5 storage read flags      K
// Dispatch: one thread per parameter, flattened like gather.wgsl (256 per workgroup, x ≤ 65535).

struct SgdParams { total: u32, p: u32, _pad0: u32, _pad1: u32 }
struct Hyper { lr: f32, momentum: f32, weight_decay: f32 }

@group(0) @binding(0) var<uniform> g: SgdParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read> hyper: array<Hyper>;
@group(0) @binding(5) var<storage, read> flags: array<u32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= g.total) { return; }
    let m = i / g.p;
    if (flags[m] != 0xffffffffu) { return; }
    let h = hyper[m];
    let theta = params[i];
    let grad = grads[i] + h.weight_decay * theta;
    let v = h.momentum * velocity[i] + grad;
    velocity[i] = v;
    params[i] = theta - h.lr * v;
}
