// gemm.wgsl — ONE batched, strided GEMM for every matrix product of the MLP.
//
// Why: a layer needs three products (forward A·Wᵀ, input gradient δ·W, weight gradient δᵀ·A). Addressing
// every operand as `base + model*model_stride + i*row_stride + k*col_stride` lets one kernel do all three
// (a transpose is just swapped strides), for K models at once (workgroup_id.z = model).
//
// C[m] (M×N) = epilogue(A[m] (M×K) · B[m] (K×N))
//   epilogue 0: store                                    (weight gradient δᵀ·A → grads)
//   epilogue 1: act(acc + bias[n])                       (forward; bias in `params` at aux_base)
//   epilogue 2: acc * act'(a), a = stored layer output   (input gradient; `a` in `work` at aux_base,
//               addressed with C's row/column strides)   relu: a>0, tanh: 1−a², linear: 1
// The Hessian-vector product's tangent (R-operator) passes (see docs/hessian.md) add, with `old` = C's
// current value (read from C's own buffer) and bias at aux2 in `params`, slope/curvature data in `work`:
//   epilogue 3: (acc + bias[n]) * act'(a)                   R-forward of the first layer
//   epilogue 4: (acc + bias[n] + old) * act'(a)             R-forward (old = R(a_{l-1})·Wᵀ)
//   epilogue 5: old + acc * act'(a)                         R-backward (adds a product to R(δ))
//   epilogue 6: acc * curv(a, ra), ra at aux2 in `work`     tanh: −2a·ra (act''·R(z)); others 0
//   epilogue 7: old + acc                                   accumulate (HVP weight blocks over chunks)
//
// Bindings (group 0):
//   0 uniform GemmParams   shapes, strides, epilogue, operand buffers
//   1 storage read  params (K×P)          B when b_src = 0, bias
//   2 storage rw    work (acts + deltas)  A always; B when b_src = 1; C when c_dst = 0; stored outputs
//   3 storage rw    grads (K×P)           C when c_dst = 1
// Dispatch: (ceil(N/64), ceil(M/64), K) workgroups of 16×16 threads. Each workgroup computes a 64×64 tile
// of C, each thread a 4×4 register block (rows lid.y+16r, columns lid.x+16c, so stores coalesce); K is
// walked in slices of 16 staged in workgroup memory (2 × ~4 KiB). Out-of-range loads read 0 and
// out-of-range stores are skipped, so any M, N, K ≥ 1 works. The k-sum runs in a fixed order: results are
// deterministic and independent of the other models in the batch.
//
// Why four vec4 accumulators and no arrays in the k-loop: a function-local `array<f32, 16>` indexed by
// loop counters (the first version) is lowered by naga to an indexed private array; NVIDIA's Vulkan
// compiler kept it in local memory, and the kernel ran at 0.8 % of the H100's measured FMA peak
// (docs/BENCHMARKS.md). Named vec4 registers cannot spill that way. The A tile's rows are padded to 65
// floats so the k-fastest stores into it do not all hit one bank.

struct GemmParams {
    m: u32, n: u32, k: u32,
    a_base: u32, a_ms: u32, a_rs: u32, a_cs: u32,
    b_base: u32, b_ms: u32, b_rs: u32, b_cs: u32,
    c_base: u32, c_ms: u32, c_rs: u32, c_cs: u32,
    aux_base: u32, aux_ms: u32,
    epilogue: u32, act: u32, b_src: u32, c_dst: u32,
    aux2_base: u32, aux2_ms: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> g: GemmParams;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

const TILE: u32 = 64u;
const BK: u32 = 16u;
const A_STRIDE: u32 = 65u; // TILE + 1: the padding that spreads the A tile's stores over the banks

var<workgroup> a_tile: array<f32, 1040>; // [kk][i], 16 × 65 (the last column is padding)
var<workgroup> b_tile: array<f32, 1024>; // [kk][j], 16 × 64

// tanh without overflow: (1 − e^{−2|z|}) / (1 + e^{−2|z|}) never divides inf by inf.
fn stable_tanh(z: f32) -> f32 {
    let t = exp(-2.0 * abs(z));
    return sign(z) * (1.0 - t) / (1.0 + t);
}

fn activate(z: f32, act: u32) -> f32 {
    if (act == 1u) { return max(z, 0.0); }
    if (act == 2u) { return stable_tanh(z); }
    return z;
}

// act'(z) written through the stored output a = act(z).
fn slope(a: f32, act: u32) -> f32 {
    if (act == 1u) { return select(0.0, 1.0, a > 0.0); }
    if (act == 2u) { return 1.0 - a * a; }
    return 1.0;
}

// act''(z)·R(z) through the stored output a and its tangent ra = act'(z)·R(z): tanh −2a·ra, else 0.
fn curv(a: f32, ra: f32, act: u32) -> f32 {
    if (act == 2u) { return -2.0 * a * ra; }
    return 0.0;
}

fn load_b(i: u32) -> f32 {
    if (g.b_src == 0u) { return params[i]; }
    return work[i];
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let model = wg.z;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let t = lid.y * 16u + lid.x;
    let a_m = g.a_base + model * g.a_ms;
    let b_m = g.b_base + model * g.b_ms;

    // acc_r holds rows lid.y + 16r; its components are columns lid.x + 16c, c = 0..3.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < g.k; k0 += BK) {
        for (var e = 0u; e < 4u; e += 1u) {
            let idx = t + e * 256u;
            // A tile: consecutive threads walk k first (A is often k-contiguous).
            let ai = idx / BK;
            let ak = idx % BK;
            var av = 0.0;
            if (row0 + ai < g.m && k0 + ak < g.k) {
                av = work[a_m + (row0 + ai) * g.a_rs + (k0 + ak) * g.a_cs];
            }
            a_tile[ak * A_STRIDE + ai] = av;
            // B tile: consecutive threads walk columns.
            let bk = idx / TILE;
            let bj = idx % TILE;
            var bv = 0.0;
            if (k0 + bk < g.k && col0 + bj < g.n) {
                bv = load_b(b_m + (k0 + bk) * g.b_rs + (col0 + bj) * g.b_cs);
            }
            b_tile[bk * TILE + bj] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += 1u) {
            let ab = kk * A_STRIDE + lid.y;
            let bb = kk * TILE + lid.x;
            let b = vec4<f32>(b_tile[bb], b_tile[bb + 16u], b_tile[bb + 32u], b_tile[bb + 48u]);
            acc0 = acc0 + a_tile[ab] * b;
            acc1 = acc1 + a_tile[ab + 16u] * b;
            acc2 = acc2 + a_tile[ab + 32u] * b;
            acc3 = acc3 + a_tile[ab + 48u] * b;
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < 4u; r += 1u) {
        let i = row0 + lid.y + 16u * r;
        var row = acc0;
        if (r == 1u) { row = acc1; } else if (r == 2u) { row = acc2; } else if (r == 3u) { row = acc3; }
        for (var c = 0u; c < 4u; c += 1u) {
            let j = col0 + lid.x + 16u * c;
            if (i < g.m && j < g.n) {
                var v = row[c];
                let within = i * g.c_rs + j * g.c_cs;
                let ci = g.c_base + model * g.c_ms + within;
                let e = g.epilogue;
                if (e == 1u) {
                    v = activate(v + params[g.aux_base + model * g.aux_ms + j], g.act);
                } else if (e == 2u) {
                    v = v * slope(work[g.aux_base + model * g.aux_ms + within], g.act);
                } else if (e >= 3u) {
                    var old = 0.0;
                    if (e == 4u || e == 5u || e == 7u) {
                        if (g.c_dst == 0u) { old = work[ci]; } else { old = grads[ci]; }
                    }
                    let a_at = g.aux_base + model * g.aux_ms + within;
                    if (e == 3u || e == 4u) {
                        v = (v + params[g.aux2_base + model * g.aux2_ms + j] + old) * slope(work[a_at], g.act);
                    } else if (e == 5u) {
                        v = old + v * slope(work[a_at], g.act);
                    } else if (e == 6u) {
                        v = v * curv(work[a_at], work[g.aux2_base + model * g.aux2_ms + within], g.act);
                    } else {
                        v = old + v;
                    }
                }
                if (g.c_dst == 0u) { work[ci] = v; } else { grads[ci] = v; }
            }
        }
    }
}
