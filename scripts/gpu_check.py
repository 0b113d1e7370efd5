"""The measuring half of scripts/gpu-check: runs sgd-lab-bench, computes the K-scaling ratios and prints
(optionally appends) a Markdown block for docs/BENCHMARKS.md. Standard library only.

Why a script and not a test: the numbers depend on the machine, and the project keeps timings out of
tests. The K-scaling target (K = 16 ≥ 8× K = 1 in samples·models/s) is printed as met / not met.
"""

import argparse
import datetime
import json
import subprocess
import sys

TARGET = 8.0


def bench(binary, args):
    cmd = [binary, "--format", "json", *args]
    print("gpu-check: " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def git(*a):
    try:
        return subprocess.run(["git", *a], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--quick", type=int, default=0)
    p.add_argument("--append", type=int, default=0)
    a = p.parse_args()

    if a.quick:
        # Tiny sizes: a software GPU does ~0.1 GFLOP/s in the lab's GEMM.
        train = ["--hidden", "32,32", "--batch", "16", "--models", "1,4,16", "--steps", "2", "--reps", "2"]
        probes = ["--gemm-sizes", "32,64", "--gemm-reps", "2", "--peak-threads", "16384", "--peak-iterations", "256"]
    else:
        train = ["--arch", "e1,deep", "--batch", "128", "--models", "1,4,16,64", "--steps", "5",
                 "--chunk-seconds", "0.3", "--reps", "3"]
        probes = ["--gemm-sizes", "256,512,1024,2048", "--gemm-reps", "10"]
    rows = bench(a.bin, ["--backends", "gpu", "--eval-examples", "0", "--lambda-examples", "0", "--slice-grid", "0", *train])
    prob = bench(a.bin, probes)
    peak = next(r for r in prob if r["probe"] == "peak_fma")

    commit = git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    label = " (quick: tiny sizes)" if a.quick else ""
    lines = [
        f"## {date} · scripts/gpu-check{label} · commit {commit}",
        "",
        f"Device: {peak['device']} · driver: {peak['driver']} · probe timer: {peak['timer']}"
        + (" (GPU timestamp queries)" if peak["timer"] == "timestamp" else " (wall time around submit + wait)"),
        "",
        "| widths | B | K | steps/s | samples·models/s | dispatches/step | readbacks/step | GPU buffers MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['widths_label']} | {r['batch']} | {r['models']} | {r['steps_per_s']:.2f} | {r['samples_models_per_s']:.0f} | "
                     f"{r['dispatches_per_step']:g} | {r['readbacks_per_step']:.3f} | {r['gpu_buffer_bytes'] / 2**20:.2f} |")
    lines += ["", f"K-scaling (samples·models/s at K = 16 over K = 1; target ≥ {TARGET:g}×):", ""]
    met_all = True
    for w in dict.fromkeys(r["widths_label"] for r in rows):
        by_k = {r["models"]: r["samples_models_per_s"] for r in rows if r["widths_label"] == w}
        if 1 in by_k and 16 in by_k:
            ratio = by_k[16] / by_k[1]
            met = ratio >= TARGET
            met_all &= met
            lines.append(f"- {w}: **{ratio:.2f}×** — target {'met' if met else 'NOT met'}")
    lines += ["", "| probe | GFLOP/s | of measured peak |", "|---|---|---|",
              f"| FMA peak (shaders/peak_fma.wgsl) | {peak['gflops']:.1f} | 100 % |"]
    for r in prob:
        if r["probe"] == "gemm":
            n = r["size"]
            lines.append(f"| lab GEMM {n}×{n}·{n}×{n} | {r['gflops']:.1f} | {100 * r['fraction_of_peak']:.1f} % |")
    block = "\n".join(lines) + "\n"
    print(block)
    if a.append:
        with open("docs/BENCHMARKS.md", "a", encoding="utf-8") as f:
            f.write("\n" + block)
        print("gpu-check: appended to docs/BENCHMARKS.md", file=sys.stderr)
    print(f"gpu-check: K-scaling target {'met' if met_all else 'NOT met'}", file=sys.stderr)


if __name__ == "__main__":
    main()
