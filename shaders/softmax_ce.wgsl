// softmax_ce.wgsl — fused, numerically stable softmax cross-entropy: forward, backward and the per-model
// reduction, so one dispatch turns logits into dlogits, the step's loss and the divergence flag.
//
// Why fused: a step needs the loss only as a per-model mean (for the loss record and the divergence
// test) and dlogits = (softmax − onehot) / rows; both come from the same row max and log-sum-exp.
// The per-model reduction is a fixed-order tree in workgroup memory (no float atomics): deterministic.
//
// Per row: arg-max (first index on ties, like the CPU), lse = max + log Σ exp(z − max),
// loss = lse − z[label], correct = (arg-max == label).
// mode 0 (train): dlogits; losses[step][model] = mean loss as f32 bits, or NaN bits if the model had already
//                 diverged; a healthy model whose mean is not finite (bit test) or > threshold gets
//                 flags[model] = step_global. (0xFFFFFFFF = healthy.)
// mode 1 (eval):  no dlogits; partials[chunk][model] = (loss sum as f32 bits, correct count).
// mode 2 (grad):  dlogits and partials[0][model]; flags and losses untouched.
//
// Bindings (group 0):
//   0 uniform SoftmaxParams   sizes, region offsets in `work`, mode, divergence threshold
//   1 uniform StepSlot        (dynamic offset) step_local = step of the call / chunk, step_global
//   2 storage rw  work         logits at logits_off + (model*mb + row)*classes; dlogits at dlogits_off (same shape)
//   3 storage read batch labels K × mb
//   4 storage rw  row_loss     K × mb  (f32)
//   5 storage rw  row_correct  K × mb  (0/1)
//   6 storage rw  losses       steps × K (f32 bits)
//   7 storage rw  flags        K
//   8 storage rw  partials     chunks × K × 2 (loss-sum bits, count)
// Dispatch: (K, 1, 1) workgroups of 256 threads; thread t handles rows t, t+256, …
// Common declarations (appended by src/backend/gpu/shaders.rs): common/step_slot.wgsl (StepSlot),
// common/divergence.wgsl (HEALTHY).

struct SoftmaxParams {
    k: u32, rows: u32, classes: u32, mb: u32,
    logits_off: u32, dlogits_off: u32, mode: u32, threshold: f32,
}

@group(0) @binding(0) var<uniform> s: SoftmaxParams;
@group(0) @binding(1) var<uniform> slot: StepSlot;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read> batch_labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_correct: array<u32>;
@group(0) @binding(6) var<storage, read_write> losses: array<u32>;
@group(0) @binding(7) var<storage, read_write> flags: array<u32>;
@group(0) @binding(8) var<storage, read_write> partials: array<u32>;

const NAN_BITS: u32 = 0x7fc00000u;

var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_count: array<u32, 256>;

fn is_finite_bits(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let m = wg.x;
    var loss_sum = 0.0;
    var count = 0u;
    let inv_rows = 1.0 / f32(s.rows);
    for (var r = t; r < s.rows; r += 256u) {
        let row = m * s.mb + r;
        let base = s.logits_off + row * s.classes;
        var arg = 0u;
        var mx = work[base];
        for (var c = 1u; c < s.classes; c += 1u) {
            let z = work[base + c];
            if (z > mx) { mx = z; arg = c; }
        }
        var sum = 0.0;
        for (var c = 0u; c < s.classes; c += 1u) {
            sum += exp(work[base + c] - mx);
        }
        let lse = mx + log(sum);
        let y = batch_labels[row];
        let l = lse - work[base + y];
        let ok = select(0u, 1u, arg == y);
        row_loss[row] = l;
        row_correct[row] = ok;
        loss_sum += l;
        count += ok;
        if (s.mode != 1u) {
            let dbase = s.dlogits_off + row * s.classes;
            for (var c = 0u; c < s.classes; c += 1u) {
                let p = exp(work[base + c] - lse);
                let onehot = select(0.0, 1.0, c == y);
                work[dbase + c] = (p - onehot) * inv_rows;
            }
        }
    }
    red_loss[t] = loss_sum;
    red_count[t] = count;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (t < w) {
            red_loss[t] = red_loss[t] + red_loss[t + w];
            red_count[t] = red_count[t] + red_count[t + w];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let total = red_loss[0];
        if (s.mode == 0u) {
            let at = slot.step_local * s.k + m;
            if (flags[m] != HEALTHY) {
                losses[at] = NAN_BITS;
            } else {
                let mean = total * inv_rows;
                losses[at] = bitcast<u32>(mean);
                if (!is_finite_bits(mean) || mean > s.threshold) {
                    flags[m] = slot.step_global;
                }
            }
        } else {
            let at = 2u * (slot.step_local * s.k + m);
            partials[at] = bitcast<u32>(total);
            partials[at + 1u] = red_count[0];
        }
    }
}
