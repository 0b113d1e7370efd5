// gather.wgsl — builds the input rows of a mini-batch for K models from the data set held on the GPU.
//
// Why: the data set is uploaded once (u8 pixels packed four per u32, or f32 bits); each step only uploads
// indices, and this kernel decodes (`byte * scale[c] + shift[c]`, exactly Dataset::feature; the per-feature
// table sits in the data buffer after the rows, at word `norm_off`: dim scales, then dim shifts) and copies the rows
// and their labels into the layer-0 activations. Each model has its own batch: indices are
// `[step][model][row]`; the step comes from the per-step uniform slot (dynamic offset). With
// `contiguous = 1` (evaluation) row r of every model is example `slot.base + r` and no indices are read.
//
// Bindings (group 0):
//   0 uniform GatherParams   sizes, format, normalisation-table offset, destination
//   1 uniform StepSlot       (dynamic offset, 256-byte slots) step within the call / chunk base
//   2 storage read  data words   n × words_per_row (+ 2 × dim table words for u8)
//   3 storage read  data labels  n
//   4 storage read  indices      steps × K × rows
//   5 storage rw    work         x at x_off + (model*mb + row)*dim + col
//   6 storage rw    batch labels K × mb
// Dispatch: one thread per (model, row, feature), flattened: 256 threads per workgroup, workgroups laid out
// over (x, y) with x ≤ 65535 (index = (wg.y * num_workgroups.x + wg.x) * 256 + lid, common/flat_index.wgsl).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/step_slot.wgsl, common/flat_index.wgsl.

struct GatherParams {
    k: u32, rows: u32, dim: u32, words_per_row: u32,
    format: u32, norm_off: u32, _pad2: u32, mb: u32,
    contiguous: u32, x_off: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> g: GatherParams;
@group(0) @binding(1) var<uniform> slot: StepSlot;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read> data_labels: array<u32>;
@group(0) @binding(4) var<storage, read> indices: array<u32>;
@group(0) @binding(5) var<storage, read_write> work: array<f32>;
@group(0) @binding(6) var<storage, read_write> batch_labels: array<u32>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    let per_model = g.rows * g.dim;
    if (i >= g.k * per_model) { return; }
    let m = i / per_model;
    let rem = i % per_model;
    let r = rem / g.dim;
    let c = rem % g.dim;
    var ex = slot.base + r;
    if (g.contiguous == 0u) {
        ex = indices[(slot.step_local * g.k + m) * g.rows + r];
    }
    let row_word = ex * g.words_per_row;
    var v: f32;
    if (g.format == 1u) {
        let w = data[row_word + c / 4u];
        let byte = (w >> (8u * (c % 4u))) & 0xffu;
        v = f32(byte) * bitcast<f32>(data[g.norm_off + c]) + bitcast<f32>(data[g.norm_off + g.dim + c]);
    } else {
        v = bitcast<f32>(data[row_word + c]);
    }
    work[g.x_off + (m * g.mb + r) * g.dim + c] = v;
    if (c == 0u) {
        batch_labels[m * g.mb + r] = data_labels[ex];
    }
}
