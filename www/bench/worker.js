// The benchmark's worker: loads the wasm engine and runs the measurements of the benchmark page
// (www/bench/index.html) off the page's thread. Each BenchRun call is one unit of work (a training chunk with
// its readback, one evaluation, one Lanczos run), timed here with performance.now(); the worker yields to its
// event loop between calls.
//
// Page → worker: {type: "run", backends: ["gpu", "cpu"], arch, models, batch, steps, reps, evalExamples,
//   lambdaExamples}.
// Worker → page: ready · status {text} · row {backend, onGpu, arch, widths, batch, models, stepsPerS,
//   samplesPerS, evalPerS, lambdaSeconds, lambdaExamples, lambdaMax} · skipped {backend, reason}
//   · done · error {message}.
import init, { BenchRun } from "../pkg/sgd_lab.js";

const post = (msg) => self.postMessage(msg);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const WIDTHS = { e1: "784-256-256-10", deep: "784, 19 × 50, 10" };
const widths = (arch) => WIDTHS[arch] ?? `784-${arch.split(",").join("-")}-10`;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Shortest timed sample: performance.now() is coarsened (to 0.1 ms or more without cross-origin isolation),
 *  so a sample repeats the call until this much time has passed and divides by the calls. */
const MIN_SAMPLE_MS = 20;

/** Seconds per call of `f`: the median of `reps` samples (after one warm-up call if `warm`), and the last result. */
async function timed(reps, f, warm = true) {
  let last = warm ? await f() : undefined;
  const times = [];
  for (let i = 0; i < reps; i++) {
    await tick();
    let calls = 0;
    const t0 = performance.now();
    let elapsed = 0;
    do {
      last = await f();
      calls += 1;
      elapsed = performance.now() - t0;
    } while (elapsed < MIN_SAMPLE_MS);
    times.push(elapsed / 1000 / calls);
  }
  return { seconds: median(times), last };
}

function finiteOrThrow(what, v) {
  const values = typeof v === "number" ? [v] : Array.from(v);
  if (!values.every(Number.isFinite)) throw new Error(`${what} came out ${values.join(", ")}`);
}

async function measure(backend, o) {
  post({ type: "status", text: `${backend}: creating ${o.models} × ${widths(o.arch)} models…` });
  const examples = Math.max(o.evalExamples, o.lambdaExamples, o.batch);
  let run;
  try {
    run = await BenchRun.create(backend, o.arch, o.models, o.batch, examples);
  } catch (e) {
    if (backend === "gpu") {
      post({ type: "skipped", backend, reason: e.message ?? String(e) });
      return;
    }
    throw e;
  }
  try {
    post({ type: "status", text: `${run.backend}: training…` });
    const train = await timed(o.reps, () => run.trainChunk(o.steps));
    finiteOrThrow("the training loss", train.last);
    post({ type: "status", text: `${run.backend}: evaluating…` });
    const ev = await timed(o.reps, () => run.evaluate(o.evalExamples));
    finiteOrThrow("the evaluation loss", ev.last);
    post({ type: "status", text: `${run.backend}: λ_max (Lanczos, 20 HVPs)…` });
    // Once, without a warm-up: 20 HVPs are long enough to time, and slow on software GPUs. The HVP's
    // kernels were compiled with the context; its buffers are made in the first HVP (a small part).
    const lam = await timed(1, () => run.lambdaMax(o.lambdaExamples), false);
    finiteOrThrow("λ_max", lam.last);
    const stepsPerS = o.steps / train.seconds;
    post({
      type: "row", backend: run.backend, onGpu: run.onGpu, arch: o.arch, widths: widths(o.arch), batch: o.batch,
      models: o.models, stepsPerS, samplesPerS: stepsPerS * o.batch * o.models,
      evalPerS: (o.evalExamples * o.models) / ev.seconds, lambdaSeconds: lam.seconds,
      lambdaExamples: o.lambdaExamples, lambdaMax: Array.from(lam.last),
    });
  } finally {
    run.free();
  }
}

const ready = init().then(() => post({ type: "ready" }), (e) => post({ type: "error", message: `loading the engine failed: ${e.message ?? e}` }));

self.onmessage = async ({ data }) => {
  if (data.type !== "run") return;
  await ready;
  try {
    for (const backend of data.backends) {
      await measure(backend, data);
      await tick();
    }
    post({ type: "done" });
  } catch (e) {
    post({ type: "error", message: e.message ?? String(e) });
  }
};
