"""The same SGD training in JAX (CPU) and in sgd-lab's CPU backend, measured in one run; see scripts/bench-jax.

What both sides do, per step and per model: gather B rows of a 4096-example data set of random bytes
normalised by 1/255 (u8 in sgd-lab, decoded on the gather; a float32 array in JAX, normalised once, as a JAX
user would keep it), forward through a ReLU MLP with He-initialised weights (W: out × in, b = 0), mean
softmax cross-entropy over the batch, backward, then PyTorch's SGD with momentum 0.9 (v ← μv + g,
θ ← θ − ηv), η = 0.01, all in float32. A chunk of `steps` steps is one call: in JAX a jit-compiled
`lax.scan` over the steps (buffers donated), ending when its losses are on the host; in sgd-lab one
`train_steps` + `read_progress`. K models: `jax.vmap` of the step over stacked parameters in JAX; the
backend's K models in sgd-lab. Each side is warmed up (JAX: compilation and one chunk) and timed over
`reps` chunks; the rounds alternate the two sides so that load on a shared machine hits both alike, and the
reported figure is the median chunk over all rounds. samples·models/s = steps × B × K / chunk time.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

ARCHS = {"e1": [256, 256], "deep": [50] * 19}
N_EXAMPLES, INPUT, CLASSES = 4096, 784, 10
LR, MOMENTUM = 0.01, 0.9


def init_params(key, widths):
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (fan_out, fan_in), jnp.float32) * np.float32(np.sqrt(2.0 / fan_in))
        params.append((w, jnp.zeros((fan_out,), jnp.float32)))
    return params


def loss_fn(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def sgd_step(params, vel, idx, data_x, data_y):
    """One step of one model on the rows `idx` of the data set."""
    loss, grads = jax.value_and_grad(loss_fn)(params, data_x[idx], data_y[idx])
    vel = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v + g, vel, grads)
    params = jax.tree_util.tree_map(lambda p, v: p - LR * v, params, vel)
    return params, vel, loss


def make_chunk(k):
    """A jit-compiled chunk: `lax.scan` over steps; for K > 1 the step is `jax.vmap`ped over the models."""
    step = sgd_step if k == 1 else jax.vmap(sgd_step, in_axes=(0, 0, 0, None, None))

    def chunk(params, vel, idx, data_x, data_y):
        def body(carry, idx_s):
            p, v, loss = step(carry[0], carry[1], idx_s, data_x, data_y)
            return (p, v), loss

        (params, vel), losses = lax.scan(body, (params, vel), idx)
        return params, vel, losses

    return jax.jit(chunk, donate_argnums=(0, 1))


class JaxSide:
    def __init__(self, hidden, batch, k, steps, seed=0):
        rng = np.random.default_rng(seed)
        self.data_x = jnp.asarray(rng.integers(0, 256, (N_EXAMPLES, INPUT), dtype=np.uint8).astype(np.float32) / np.float32(255.0))
        self.data_y = jnp.asarray(rng.integers(0, CLASSES, (N_EXAMPLES,), dtype=np.int32))
        widths = [INPUT] + hidden + [CLASSES]
        keys = jax.random.split(jax.random.PRNGKey(seed), k)
        if k == 1:
            self.params = init_params(keys[0], widths)
            shape = (steps, batch)
        else:
            self.params = jax.vmap(lambda key: init_params(key, widths))(keys)
            shape = (steps, k, batch)
        self.vel = jax.tree_util.tree_map(jnp.zeros_like, self.params)
        self.idx = jnp.asarray(rng.integers(0, N_EXAMPLES, shape, dtype=np.int32))
        self.chunk = make_chunk(k)
        t = time.perf_counter()
        self.run()  # compiles, then runs once (warm-up)
        self.compile_and_first_s = time.perf_counter() - t
        self.run()

    def run(self):
        t = time.perf_counter()
        self.params, self.vel, losses = self.chunk(self.params, self.vel, self.idx, self.data_x, self.data_y)
        np.asarray(losses)  # the chunk's losses on the host: its one readback
        return time.perf_counter() - t


def sgd_lab_times(binary, arch, batch, k, steps, reps):
    out = subprocess.run(
        [binary, "--backends", "cpu", "--arch", arch, "--models", str(k), "--batch", str(batch), "--steps", str(steps),
         "--reps", str(reps), "--eval-examples", "0", "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    return row["chunk_seconds"], row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sgd-lab", required=True, help="path of the sgd-lab-bench binary")
    ap.add_argument("--arch", default="e1", help="comma-separated: e1 (784-256-256-10), deep (784, 19 × 50, 10)")
    ap.add_argument("--models", default="1,16", help="comma-separated K")
    ap.add_argument("--batch", default="128", help="comma-separated B")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed chunk")
    ap.add_argument("--reps", type=int, default=5, help="timed chunks per side and round")
    ap.add_argument("--rounds", type=int, default=3, help="alternations JAX / sgd-lab per configuration")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}); CPU: {cpu}, {os.cpu_count()} logical CPUs; "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}; XLA_FLAGS={os.environ.get('XLA_FLAGS', 'unset')}")
    print(f"steps per chunk {a.steps}, {a.reps} chunks per side per round, {a.rounds} rounds; medians of all chunks\n")
    print("| architecture | B | K | JAX samples·models/s | sgd-lab samples·models/s | sgd-lab / JAX | JAX compile + first chunk |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for arch in a.arch.split(","):
        for batch in map(int, a.batch.split(",")):
            for k in map(int, a.models.split(",")):
                jax_side = JaxSide(ARCHS[arch], batch, k, a.steps)
                jt, st, row = [], [], None
                for _ in range(a.rounds):
                    jt += [jax_side.run() for _ in range(a.reps)]
                    times, row = sgd_lab_times(a.sgd_lab, arch, batch, k, a.steps, a.reps)
                    st += times
                work = a.steps * batch * k
                j, s = work / statistics.median(jt), work / statistics.median(st)
                label = "784-256-256-10" if arch == "e1" else "784, 19 × 50, 10"
                print(f"| {label} | {batch} | {k} | {j:.0f} | {s:.0f} | {s / j:.2f} | {jax_side.compile_and_first_s:.1f} s |", flush=True)
                rows.append({"arch": arch, "batch": batch, "models": k, "steps": a.steps, "jax_samples_models_per_s": j,
                             "sgd_lab_samples_models_per_s": s, "ratio": s / j, "jax_chunk_seconds": jt, "sgd_lab_chunk_seconds": st,
                             "sgd_lab_threads": row.get("threads"), "jax_version": jax.__version__})
                del jax_side
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
