#!/usr/bin/env python3
"""Runs two sgd-lab-bench binaries (e.g. before and after a change) alternately on the same matrix and prints
one Markdown table of both, with the ratio; for docs/BENCHMARKS.md. Standard library only.

    scripts/bench_compare.py --a /tmp/before/sgd-lab-bench --b target/release/sgd-lab-bench \\
        --rounds 2 -- --backends cpu --arch e1,deep --batch 50,128,1000 --models 1,4,16,64 \\
        --steps 2 --chunk-seconds 0.3 --reps 3 --eval-examples 1024

Arguments after `--` go to both binaries (add `--format json` is done here). Each round runs A, then B, one
(architecture, B) group at a time, so load on a shared machine falls on both alike; a row's figure is the
median of all its timed chunks (or evaluation calls) over the rounds.
"""

import argparse
import json
import statistics
import subprocess
import sys


def split_list(args, flag):
    """The comma-separated values of `flag` in args, and args without it."""
    rest, values, i = [], None, 0
    while i < len(args):
        if args[i] == flag:
            values, i = args[i + 1].split(","), i + 2
        else:
            rest.append(args[i])
            i += 1
    return values, rest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="first binary (e.g. before)")
    ap.add_argument("--b", required=True, help="second binary (e.g. after)")
    ap.add_argument("--a-env", default="", help="extra environment for A, e.g. RAYON_NUM_THREADS=1")
    ap.add_argument("--b-env", default="", help="extra environment for B")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    bench = [x for x in a.bench_args if x != "--"]
    archs, bench = split_list(bench, "--arch")
    batches, bench = split_list(bench, "--batch")
    archs, batches = archs or ["e1"], batches or ["128"]

    import os

    def env(extra):
        e = dict(os.environ)
        e.update(kv.split("=", 1) for kv in extra.split() if kv)
        return e

    rows = {}  # (arch, batch, k) -> {"a": {...}, "b": {...}}
    for arch in archs:
        for batch in batches:
            for _ in range(a.rounds):
                for side, binary, extra in (("a", a.a, a.a_env), ("b", a.b, a.b_env)):
                    cmd = [binary, *bench, "--arch", arch, "--batch", batch, "--format", "json"]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env(extra)).stdout
                    for line in out.strip().splitlines():
                        r = json.loads(line)
                        key = (arch, int(batch), r["models"])
                        d = rows.setdefault(key, {}).setdefault(side, {"train": [], "eval": [], "row": r})
                        work = r["steps_per_chunk"] * r["batch"] * r["models"]
                        if "chunk_seconds" in r:
                            d["train"] += [work / t for t in r["chunk_seconds"]]
                            d["eval"] += [r["eval_examples"] * r["models"] / t for t in r["eval_seconds"]]
                        else:  # binaries before the raw times were added: their medians, once per round
                            d["train"].append(r["samples_models_per_s"])
                            if r.get("eval_examples_models_per_s"):
                                d["eval"].append(r["eval_examples_models_per_s"])
                        d["row"] = r
    label = lambda r: f'{r["backend"]}, {r["threads"]} thread{"s" if r["threads"] != 1 else ""}' if r.get("threads") else r["backend"]
    first = next(iter(rows.values()))
    print(f'A = {a.a} {a.a_env} ({label(first["a"]["row"])}); B = {a.b} {a.b_env} ({label(first["b"]["row"])}); '
          f"{a.rounds} rounds; medians over all timed chunks")
    print()
    print("| widths | B | K | A samples·models/s | B samples·models/s | B / A | A eval ex·models/s | B eval ex·models/s | B / A |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (arch, batch, k), d in rows.items():
        ta, tb = statistics.median(d["a"]["train"]), statistics.median(d["b"]["train"])
        ea = statistics.median(d["a"]["eval"]) if d["a"]["eval"] else float("nan")
        eb = statistics.median(d["b"]["eval"]) if d["b"]["eval"] else float("nan")
        print(f'| {d["b"]["row"]["widths_label"]} | {batch} | {k} | {ta:.0f} | {tb:.0f} | {tb / ta:.2f} | {ea:.0f} | {eb:.0f} | {eb / ea:.2f} |')
    return 0


if __name__ == "__main__":
    sys.exit(main())
