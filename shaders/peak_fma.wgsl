// peak_fma.wgsl — the device's measured f32 FMA throughput, the yardstick for the GEMM's GFLOP/s.
//
// Why: a GEMM's efficiency is only meaningful against what the device can actually do, and the nominal
// peak of an unknown adapter (or of lavapipe, or a throttled laptop GPU) is not known to the program.
// Each thread runs 8 independent vec4 FMA chains (32 FMAs = 64 FLOP per iteration: enough independent
// work to hide the FMA latency) on registers only — no memory traffic in the loop — and writes one
// value at the end so that the compiler cannot remove the loop. The multiplier is read from the uniform,
// so the chains cannot be folded at compile time; it is 1 − 2⁻²⁰ so the values stay finite.
//
// FLOP = threads × iterations × 64.
//
// Bindings (group 0):
//   0 uniform PeakParams   iterations, threads, mul, add
//   1 storage rw  out      one f32 per thread
// Dispatch: one thread per item, flattened like sgd.wgsl (256 per workgroup, x ≤ 65535).
// Common declarations (appended by src/backend/gpu/shaders.rs): common/flat_index.wgsl.

struct PeakParams { iterations: u32, threads: u32, mul: f32, add: f32 }

@group(0) @binding(0) var<uniform> g: PeakParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(FLAT_WORKGROUP_SIZE, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= g.threads) { return; }
    let m = vec4<f32>(g.mul);
    let c = vec4<f32>(g.add);
    let s = f32(i) * 1e-9;
    var a0 = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var it = 0u; it < g.iterations; it++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    out[i] = t.x + t.y + t.z + t.w;
}
