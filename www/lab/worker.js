// The lab's worker: runs the paper's presets off the page's main thread. It loads the wasm engine, lists the
// presets, probes the engine (WebGPU adapter or CPU fallback and why), plans a preset at a scale, fetches the
// real data sets a run needs (data-loader.js: progress, SHA256SUMS check, Cache API — all of which exist in
// workers), steps the Experiment, and posts what happens to the page. Between two steps it yields to its own
// event loop, so pause, resume and stop messages are handled at step granularity (one training chunk, one
// curvature measurement or one interpolation). The claims report is built here too (text-measure.js lets its
// SVG figures size their labels without a DOM).
//
// GPU faults: every device the engine requests during a run is remembered (GPUAdapter.prototype.requestDevice is
// wrapped), so when one is lost (`device.lost`) the run ends with `gpu-failed` naming the browser's reason, and
// the results of the finished groups go with it; an error of a GPU run's step (a shader or pipeline error that
// the engine's readback refuses to hide, a rejected readback) takes the same path. The page then offers to
// continue from those results on a new device or on the CPU. With `testHooks` (the page's ?test-hooks), the
// messages `test-destroy-device` (device.destroy() on the run's devices) and `test-gpu-error` (an invalid
// createBuffer, i.e. a validation error outside any error scope) provoke both.
//
// Checkpoints (when init asks for storeCheckpoints and a run says how to store itself, as the lab page does):
// the worker itself keeps the unfinished run in IndexedDB (checkpoint.js, the one entry the page offers to resume
// after a reload): after every finished group the results so far, and every 30 s of a group's training (at every
// progress event inside a group with testHooks, so a test need not wait) a checkpoint of that group (Experiment.checkpoint: the models' parameters,
// momentum, sampler and schedule state) with those results, from which Experiment.resume (third argument)
// continues the group at its step. Why here and not on the page: a group checkpoint is up to ~32 MB (E1 at the
// default scale), and storing one from the page's thread held that thread for 52–351 ms (measured in
// headless chromium, docs/RELIABILITY.md §7) while its figures animate; here the run waits that long instead.
// The worker awaits each write before it trains on, so the page's deletion of the entry (on finished, posted
// after the last write) always comes after it: one writer, in order. After each write it posts `stored`.
//
// The messages both ways (and the phases they move a run through) are typed once, in client.js, the one client
// of this worker (the lab page and the <sgd-lab> element both use it).
// The last finished or stopped Experiment is kept (not freed) until the next run, so its groups' final parameters
// can be exported; the engine bounds what it keeps to 64 MiB (src/web/experiments.rs).
import init, { presets, version, Experiment } from "../pkg/sgd_lab.js";
import { REAL_SETS, loadRealData } from "../data-loader.js";
import { withTextMeasure } from "./text-measure.js";
import { saveCheckpoint } from "./checkpoint.js";

const BASE = new URL("../", import.meta.url).href; // www/: data/ lives there
const post = (msg) => self.postMessage(msg);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const MB = (bytes) => (bytes / 1e6).toFixed(1);

let ready = null; // the promise of init()
/** Whether the page wants its unfinished runs kept in IndexedDB (the lab page does; the embed element does not ask). */
let storeCheckpoints = false;
/**
 * How often (ms of a group's training) a mid-group checkpoint is stored. With testHooks: at every progress event
 * inside a group (0 ms), so a test sees one in every group however fast the machine trains it (with 0.3 s a CI
 * machine trained the tiny e2e groups' mid-group chunks in less, stored none, and the fault test waited in vain).
 */
const groupCheckpointMs = () => (testHooks ? 0 : 30_000);
/** Whether the page was opened with ?test-hooks (the `test-…` messages are refused otherwise). */
let testHooks = false;
/**
 * The run in progress: { ex, paused, stopping, wake, devices, lost, lostSignal } (wake: resolves the wait of a
 * paused run; devices: the GPU devices requested while it was being created; lost: the reason of the first of
 * them that was lost; lostSignal: a promise that resolves when one is).
 */
let current = null;
/** The Experiment of the last run that ended (finished or stopped), kept for its parameters. */
let last = null;

const message = (e) => e?.message ?? String(e);

// Remembers the GPU devices each run gets and listens to their `lost` promise (see the header comment).
if (typeof GPUAdapter !== "undefined") {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    const run = current;
    if (run) {
      run.devices.push(device);
      device.lost.then((info) => {
        if (run.lost) return;
        run.lost = info.message ? `${info.message} (reason: ${info.reason})` : `reason: ${info.reason}`;
        run.onLost();
        run.wake?.(); // a paused run ends now rather than on resume
      });
    }
    return device;
  };
}

/** A run's GPU failure in words: the device's loss with its reason, or the engine's error. */
const gpuFailure = (run, e) => ({ lost: run.lost, message: message(e) });

/** The jobs of a plan, as plain objects. */
const plainJobs = (ex) => ex.jobs.map(({ index, label, models, steps }) => ({ index, label, models, steps }));

async function start() {
  await init();
  post({ type: "ready", presets: presets(), version: version() });
}

/** Reports the engine the runs will get: the same factory as a run's (any preset plans; none is stepped). */
async function probe(preferGpu) {
  const ex = await Experiment.fromPreset("e4-schedules", null, preferGpu);
  try {
    post({ type: "engine", backend: ex.backend, onGpu: ex.onGpu, fallbackReason: ex.fallbackReason ?? null });
  } finally {
    ex.free();
  }
}

async function plan({ id, patch, token }) {
  await ready;
  let ex;
  try {
    ex = await Experiment.fromPreset(id, patch ? JSON.stringify(patch) : null, false);
  } catch (e) {
    post({ type: "plan", id, token, error: message(e) });
    return;
  }
  try {
    post({ type: "plan", id, token, jobs: plainJobs(ex), needed: ex.neededDatasets, config: ex.results().config });
  } finally {
    ex.free();
  }
}

/** Fetches (or reads from the cache) every data set the experiment needs and hands it over. */
async function addData(ex) {
  for (const name of ex.neededDatasets) {
    const { label } = REAL_SETS[name];
    let last = 0;
    const data = await loadRealData(name, {
      base: BASE,
      onProgress: ({ received, total, source }) => {
        const now = performance.now();
        if (now - last < 100 && received < total) return; // at most ten reports a second
        last = now;
        const from = source === "network" ? "Downloading" : "Reading from the cache";
        post({ type: "data", name, received, total, source, text: `${from} ${label}: ${MB(received)} / ${MB(total)} MB` });
      },
    });
    const where = { network: "downloaded", cache: "read from the browser cache", memory: "already in memory",
      mixed: "partly read from the cache, partly downloaded" }[data.source];
    post({ type: "data", name, received: data.bytes, total: data.bytes, source: data.source, done: true,
      text: `${label}: ${MB(data.bytes)} MB ${where}` + (data.note ? ` (${data.note})` : "") + "; preparing it…" });
    await tick();
    ex.addDataset(name, ...data.files);
    post({ type: "data", name, received: data.bytes, total: data.bytes, source: data.source, done: true, ready: true,
      text: `${label}: ${MB(data.bytes)} MB ${where}` + (data.note ? ` (${data.note})` : "") });
  }
}

/** Whether saved results can be continued: an interpolation's results do not hold its minima's parameters. */
const resumable = (results) => results.config.experiment.kind !== "interpolation";

/**
 * Stores the run after a finished group (the results so far), unless it has finished, or the stored entry holds
 * these groups already (a resumed run's first results: that entry may hold its group's checkpoint too, which is
 * kept). A failed write is reported, and the run goes on.
 */
async function storeAfterGroup(storeAs, results, json) {
  const done = results.jobs.length;
  storeAs.done = done;
  if (done === 0 || done >= storeAs.planned || done === storeAs.storedDone) return;
  storeAs.storedDone = done;
  try {
    await saveCheckpoint({ id: storeAs.id, scale: storeAs.scale, patch: storeAs.patch, json, done, planned: storeAs.planned });
    post({ type: "stored", done });
  } catch (e) {
    post({ type: "stored", error: `the run could not be saved in this browser for a reload (IndexedDB: ${message(e)}); ` +
      "it goes on, and its results can still be exported" });
  }
}

/** Stores a checkpoint of the group in progress (`at`: its last progress event) with the results so far. */
async function storeInsideGroup(storeAs, json, bytes, at) {
  const { done, planned } = storeAs;
  try {
    await saveCheckpoint({ id: storeAs.id, scale: storeAs.scale, patch: storeAs.patch, json, done, planned,
      group: bytes, groupJob: at.job, groupStep: at.step, groupSteps: at.steps });
    post({ type: "stored", done, job: at.job, step: at.step });
  } catch (e) {
    post({ type: "stored", error: `the group in progress could not be saved in this browser for a reload (IndexedDB: ${message(e)}); it goes on` });
  }
}

/** Creates the experiment (a preset at a scale, or the continuation of saved results) and steps it to the end. */
async function run(msg) {
  await ready;
  if (current) throw new Error("a run is already in progress (stop it first)");
  let onLost;
  const lostSignal = new Promise((resolve) => { onLost = resolve; });
  const run = { ex: null, paused: false, stopping: false, wake: null, devices: [], lost: null, onLost, lostSignal };
  const lostError = lostSignal.then(() => { throw new Error("the GPU device was lost"); });
  lostError.catch(() => {}); // awaited only while a step runs
  current = run;
  // How the run is stored for a reload (null: not at all); storedDone: the finished groups the entry holds already;
  // done and planned: the run's finished and planned groups (set below).
  let storeAs = storeCheckpoints && msg.storeAs ? { ...msg.storeAs, storedDone: msg.storedDone ?? null } : null;
  last?.free();
  last = null;
  let keep = false;
  try {
    run.ex = msg.json
      ? await Experiment.resume(msg.json, msg.preferGpu, msg.group ?? undefined)
      : await Experiment.fromPreset(msg.id, msg.patch ? JSON.stringify(msg.patch) : null, msg.preferGpu);
    const { ex } = run;
    const results = ex.results();
    if (storeAs && !resumable(results)) storeAs = null;
    else if (storeAs) Object.assign(storeAs, { done: results.jobs.length, planned: results.planned_jobs });
    post({ type: "started", backend: ex.backend, onGpu: ex.onGpu, fallbackReason: ex.fallbackReason ?? null,
      jobs: plainJobs(ex), needed: ex.neededDatasets, config: results.config, fraction: ex.fraction });
    if (results.jobs.length) post({ type: "results", results, json: ex.resultsJson(), csv: ex.resultsCsv() });
    await addData(ex);
    while (!ex.done) {
      if (run.lost) throw new Error("the GPU device was lost");
      if (run.stopping) break;
      if (run.paused) {
        post({ type: "paused", fraction: ex.fraction });
        await new Promise((resolve) => { run.wake = resolve; });
        run.wake = null;
        if (!run.stopping) post({ type: "resumed", fraction: ex.fraction });
        continue;
      }
      // A lost device ends the wait even if the step's readback never settles (the step's own promise then
      // just stays pending; the Experiment is freed, its in-flight future keeps what it needs).
      const stepping = ex.step();
      stepping.catch(() => {}); // its error is the race's (or, after a loss, moot)
      const events = await Promise.race([stepping, lostError]);
      post({ type: "events", events, fraction: ex.fraction });
      if (events.some((e) => e.type === "job_finished" || e.type === "interpolated" || e.type === "finished")) {
        const results = ex.results();
        const json = ex.resultsJson();
        post({ type: "results", results, json, csv: ex.resultsCsv() });
        if (storeAs) await storeAfterGroup(storeAs, results, json);
      }
      if (events.some((e) => e.type === "job_started")) run.groupSince = performance.now();
      const at = events.findLast((e) => e.type === "progress");
      if (storeAs && at && at.step < at.steps && performance.now() - (run.groupSince ?? 0) >= groupCheckpointMs()) {
        run.groupSince = performance.now();
        const bytes = await Promise.race([ex.checkpoint(), lostError]);
        if (bytes) await storeInsideGroup(storeAs, ex.resultsJson(), bytes, at);
      }
      await tick(); // lets pause / stop messages in
    }
    if (run.stopping && !ex.done) ex.cancel();
    keep = true;
    if (run.stopping) {
      post({ type: "stopped", fraction: ex.fraction, json: ex.resultsJson(), csv: ex.resultsCsv() });
      return;
    }
    const out = { type: "finished", fraction: ex.fraction, json: ex.resultsJson(), csv: ex.resultsCsv() };
    try {
      out.report = withTextMeasure(() => ex.report());
    } catch (e) {
      out.reportError = message(e);
    }
    post(out);
  } catch (e) {
    // A GPU run that failed (not a panic: that leaves the wasm instance unusable, and the page respawns the
    // worker): keep what the finished groups computed and let the page offer to go on elsewhere.
    const ex = run.ex;
    if (!(e instanceof WebAssembly.RuntimeError) && (run.lost || ex?.onGpu)) {
      // The rejected readback may come before the `lost` event: give it a moment to say why.
      if (!run.lost && run.devices.length) await Promise.race([run.lostSignal, new Promise((r) => setTimeout(r, 500))]);
      let json = null;
      let csv = null;
      let jobs = [];
      if (ex) {
        json = ex.resultsJson();
        csv = ex.resultsCsv();
        jobs = ex.results().jobs.map((j) => j.job);
      }
      post({ type: "gpu-failed", ...gpuFailure(run, e), json, csv, jobs });
      return;
    }
    throw e;
  } finally {
    if (keep) last = run.ex;
    else run.ex?.free();
    current = null;
  }
}

/** The trained parameters of group `job` of the last run, as safetensors bytes (transferred, not copied). */
function params({ job }) {
  if (!last) throw new Error("no finished run in this page: run the experiment first (saved results files hold no parameters)");
  const bytes = last.parametersSafetensors(job);
  self.postMessage({ type: "params", job, bytes }, [bytes.buffer]);
}

/** The report of a saved results file, without running anything (or why there is none yet). */
async function importResults({ json, name }) {
  await ready;
  const ex = await Experiment.resume(json, false);
  try {
    const results = ex.results();
    const out = { type: "imported", name, results, json: ex.resultsJson(), csv: ex.resultsCsv(), jobs: plainJobs(ex),
      complete: results.jobs.length === results.planned_jobs };
    if (out.complete) {
      try {
        out.report = withTextMeasure(() => ex.report());
      } catch (e) {
        out.reportError = message(e);
      }
    } else {
      out.reportError = `this file holds ${results.jobs.length} of the ${results.planned_jobs} groups of its plan; ` +
        "a report needs them all: press Continue to run the missing ones";
    }
    post(out);
  } finally {
    ex.free();
  }
}

/** The test hooks (only with ?test-hooks): lose the run's GPU devices, or make one report a validation error. */
function testHook(type) {
  if (!testHooks) throw new Error(`${type} is a test hook: open the page with ?test-hooks to use it`);
  const devices = current?.devices ?? [];
  if (!devices.length) throw new Error(`${type}: no GPU run is in progress`);
  for (const device of devices) {
    if (type === "test-destroy-device") device.destroy();
    // MAP_READ may only go with COPY_DST: a validation error, raised outside any error scope.
    else device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
  }
}

self.onmessage = ({ data: msg }) => {
  const fail = (context) => (e) => post({ type: "error", context, message: message(e) });
  switch (msg.type) {
    case "init":
      testHooks = msg.testHooks === true;
      storeCheckpoints = msg.storeCheckpoints === true;
      ready = start();
      ready.catch(fail("init"));
      ready.then(() => probe(msg.preferGpu).catch(fail("engine")), () => {});
      break;
    case "plan":
      plan(msg).catch(fail("plan"));
      break;
    case "run":
    case "continue":
      run(msg).catch(fail("run"));
      break;
    case "pause":
      if (current) current.paused = true;
      break;
    case "resume":
      if (current) {
        current.paused = false;
        current.wake?.();
      }
      break;
    case "stop":
      if (current) {
        current.stopping = true;
        current.paused = false;
        current.wake?.();
      }
      break;
    case "import":
      importResults(msg).catch(fail("import"));
      break;
    case "params":
      try {
        params(msg);
      } catch (e) {
        fail("parameters")(e);
      }
      break;
    case "test-destroy-device":
    case "test-gpu-error":
      try {
        testHook(msg.type);
      } catch (e) {
        fail("test hook")(e);
      }
      break;
    default:
      post({ type: "error", context: "message", message: `unknown message type '${msg.type}'` });
  }
};
