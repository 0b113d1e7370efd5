// The one client of the lab's worker (worker.js), used by the lab page (page.js) and the <sgd-lab> element
// (embed/sgd-lab.js): it starts the worker (through a blob: module when the page is on another origin than
// this file), sends the requests, hands each answer to its owner's handler for that message type, and owns the
// phase of the run. The protocol between the two threads is written down here, once (the typedefs below);
// worker.js implements the other side.
//
// Phases (LabClient.phase; the lab page shows it as #lab[data-state], the element maps it to its own):
//   loading   a worker is starting (until `ready`)          idle      ready, nothing runs
//   starting  run/continue sent, no `started` yet           fetching  started; the data sets are being loaded
//   running   training (after the data, or the first events) paused    the worker waits between two steps
//   done      finished (or a saved results file imported)    stopped   stopped by the user; results kept
//   failed    the run's GPU device was lost or a GPU step failed (`gpu-failed`); the worker is still usable
//   error     the worker could not start or its engine panicked: its wasm instance is unusable, spawn again
// A message changes the phase before its handler runs (the handler reads the new one in client.phase), and
// the owner's onPhase is called after the handler has drawn what goes with it (after an async handler, once
// its promise settles): so a view's phase and what it shows change in the same task.

/**
 * Requests, page → worker (LabClient's methods send them).
 * @typedef {{ id: string, scale: string, patch: object | null }} StoreAs how the worker stores a run in
 *   IndexedDB for a reload (checkpoint.js): what the stored entry says the run is, for the page's resume offer
 * @typedef {{ type: "init", preferGpu: boolean, testHooks?: boolean, storeCheckpoints?: boolean }} InitRequest
 *   load the wasm, then answer `ready` and `engine`; storeCheckpoints: keep unfinished runs in IndexedDB;
 *   testHooks: accept the `test-…` requests
 * @typedef {{ type: "plan", id: string, patch: object | null, token: number }} PlanRequest plan a preset with a
 *   JSON merge patch (the scale's and the user's), without running it; answered by `plan` with the same token
 * @typedef {{ type: "run", id: string, patch: object | null, preferGpu: boolean, storeAs?: StoreAs }} RunRequest
 * @typedef {{ type: "continue", json: string, preferGpu: boolean, group?: Uint8Array, storeAs?: StoreAs,
 *   storedDone?: number }} ContinueRequest finish the groups a saved results file lacks; `group`: a mid-group
 *   checkpoint taken after those results, whose group then continues at its step; storedDone: the finished
 *   groups the stored entry holds
 * @typedef {{ type: "pause" | "resume" | "stop" }} ControlRequest handled between two steps of the run
 * @typedef {{ type: "import", json: string, name: string }} ImportRequest the report of a saved results file
 * @typedef {{ type: "params", job: number }} ParamsRequest the trained parameters of a group of the last run
 * @typedef {{ type: "test-destroy-device" | "test-gpu-error" }} TestRequest (testHooks only) lose the run's GPU
 *   devices, or raise a WebGPU validation error outside any error scope
 * @typedef {InitRequest | PlanRequest | RunRequest | ContinueRequest | ControlRequest | ImportRequest | ParamsRequest
 *   | TestRequest} ToWorker
 */

/**
 * Answers and news, worker → page (the owner's handlers get them, by `type`). Types from the engine
 * (src/web/experiments.rs, typed in pkg/sgd_lab.d.ts):
 * @typedef {import("../pkg/sgd_lab.js").PresetInfo} PresetInfo
 * @typedef {import("../pkg/sgd_lab.js").JobSummary} JobSummary
 * @typedef {import("../pkg/sgd_lab.js").ExperimentConfig} ExperimentConfig
 * @typedef {import("../pkg/sgd_lab.js").ExperimentResults} ExperimentResults
 * @typedef {import("../pkg/sgd_lab.js").RunEvent} RunEvent
 * @typedef {import("../pkg/sgd_lab.js").Report} Report
 * The messages:
 * @typedef {{ type: "ready", presets: PresetInfo[], version: string }} ReadyMessage the engine is loaded
 * @typedef {{ type: "engine", backend: string, onGpu: boolean, fallbackReason: string | null }} EngineMessage
 *   the engine runs will get (the probe after `ready`): a WebGPU adapter, or the CPU and why
 * @typedef {{ type: "plan", id: string, token: number, jobs: JobSummary[], needed: string[],
 *   config: ExperimentConfig, error?: undefined } | { type: "plan", id: string, token: number, error: string }}
 *   PlanMessage the plan of a PlanRequest (needed: the real data sets it downloads), or the engine's refusal
 * @typedef {{ type: "started", backend: string, onGpu: boolean, fallbackReason: string | null, jobs: JobSummary[],
 *   needed: string[], config: ExperimentConfig, fraction: number }} StartedMessage a run's experiment is made
 * @typedef {{ type: "data", name: string, received: number, total: number, source: string, text: string,
 *   done?: true, ready?: true }} DataMessage a data set loading (source: network | cache | memory | mixed;
 *   done: all bytes are here; ready: handed to the engine)
 * @typedef {{ type: "events", events: RunEvent[], fraction: number }} EventsMessage what one step did
 * @typedef {{ type: "results", results: ExperimentResults, json: string, csv: string }} ResultsMessage the
 *   results so far, after every finished group (and at the start of a continued run)
 * @typedef {{ type: "stored", done: number, job?: number, step?: number, error?: undefined }
 *   | { type: "stored", error: string }} StoredMessage a checkpoint written to IndexedDB: after `done` finished
 *   groups, or inside group `job` at `step`; or why it could not be
 * @typedef {{ type: "paused" | "resumed", fraction: number }} PauseMessage
 * @typedef {{ type: "finished", fraction: number, json: string, csv: string, report?: Report,
 *   reportError?: string }} FinishedMessage the run is complete, with its claims report (or why there is none)
 * @typedef {{ type: "stopped", fraction: number, json: string, csv: string }} StoppedMessage stopped on request
 * @typedef {{ type: "gpu-failed", lost: string | null, message: string, json: string | null, csv: string | null,
 *   jobs: number[] }} GpuFailedMessage the run's GPU device was lost (lost: the browser's reason) or a GPU step
 *   failed; json/csv/jobs: the finished groups' results
 * @typedef {{ type: "imported", name: string, results: ExperimentResults, json: string, csv: string,
 *   jobs: JobSummary[], complete: boolean, report?: Report, reportError?: string }} ImportedMessage
 * @typedef {{ type: "params", job: number, bytes: Uint8Array }} ParamsMessage a group's parameters (safetensors)
 * @typedef {{ type: "error", context: "init" | "engine" | "plan" | "run" | "import" | "parameters" | "test hook"
 *   | "message", message: string }} ErrorMessage a request failed (context "run": the engine panicked, so the
 *   worker's wasm instance is unusable and the owner spawns a new worker before the next run)
 * @typedef {ReadyMessage | EngineMessage | PlanMessage | StartedMessage | DataMessage | EventsMessage
 *   | ResultsMessage | StoredMessage | PauseMessage | FinishedMessage | StoppedMessage | GpuFailedMessage
 *   | ImportedMessage | ParamsMessage | ErrorMessage} FromWorker
 */

/**
 * @typedef {"loading" | "idle" | "starting" | "fetching" | "running" | "paused" | "done" | "stopped" | "failed"
 *   | "error"} Phase
 */

/** The phases in which a run is under way (the controls that would change it are off). */
export const BUSY_PHASES = new Set(["starting", "fetching", "running", "paused"]);

/** Every message type the worker sends. */
const FROM_WORKER = new Set(["ready", "engine", "plan", "started", "data", "events", "results", "stored", "paused",
  "resumed", "finished", "stopped", "gpu-failed", "imported", "params", "error"]);

/**
 * The phase a message moves to, given the phase before it; undefined: the message leaves the phase alone.
 * @type {{ [type: string]: (msg: FromWorker, phase: Phase) => Phase | undefined }}
 */
const TRANSITIONS = {
  ready: () => "idle",
  started: () => "fetching",
  data: (msg, phase) => (msg.ready && phase === "fetching" ? "running" : undefined),
  events: (msg, phase) => (phase === "fetching" ? "running" : undefined),
  paused: () => "paused",
  resumed: () => "running",
  finished: () => "done",
  stopped: () => "stopped",
  "gpu-failed": () => "failed",
  imported: () => "done",
  error: (msg, phase) => ({ init: "error", run: "error", import: phase === "loading" ? "loading" : "idle" }[msg.context]),
};

const WORKER_URL = new URL("./worker.js", import.meta.url).href;

/**
 * Starts worker.js: from its own URL when that is same-origin with the page, else through a blob: module that
 * imports it (workers must be same-origin; a module import may be cross-origin with CORS, and the host page's
 * CSP must allow worker-src blob: then).
 */
function startWorker() {
  if (self.origin === "null") {
    throw new Error("this page has an opaque origin (an iframe sandboxed without allow-same-origin?), so the engine's " +
      "worker cannot start; embed it with sandbox=\"allow-scripts allow-same-origin\"");
  }
  if (new URL(WORKER_URL).origin === location.origin) return new Worker(WORKER_URL, { type: "module" });
  const boot = URL.createObjectURL(new Blob([`import ${JSON.stringify(WORKER_URL)};`], { type: "text/javascript" }));
  try {
    return new Worker(boot, { type: "module" });
  } finally {
    setTimeout(() => URL.revokeObjectURL(boot), 60_000);
  }
}

/** A lab worker, its requests, its answers and the phase of its run (see the top of this file). */
export class LabClient {
  /**
   * @param {object} owner
   * @param {{ [type: string]: (msg: FromWorker) => void | Promise<void> }} owner.handlers what to do with each
   *   message type (types without a handler are left alone)
   * @param {(phase: Phase) => void} [owner.onPhase] called when the phase was set (see the top of this file)
   * @param {(e: ErrorEvent) => void} [owner.onWorkerError] the worker's script failed (to load, or uncaught)
   */
  constructor({ handlers, onPhase = () => {}, onWorkerError = () => {} }) {
    this.handlers = handlers;
    this.onPhase = onPhase;
    this.onWorkerError = onWorkerError;
    /** @type {Phase} */
    this.phase = "loading";
    /** @type {Worker | null} */
    this.worker = null;
    this.planToken = 0;
  }

  /** Whether a run is under way (starting, fetching, running or paused). */
  get busy() {
    return BUSY_PHASES.has(this.phase);
  }

  /** Whether a worker is started (spawned and not terminated). */
  get alive() {
    return this.worker !== null;
  }

  /** Sets the phase and tells the owner. */
  setPhase(phase) {
    this.phase = phase;
    this.onPhase(phase);
  }

  /**
   * Starts a worker (again, after a failed run: a panic in the engine leaves its wasm instance unusable, and a
   * fresh worker costs a second), ending the one before. It answers `ready` (the presets), then `engine`.
   * @param {Omit<InitRequest, "type">} init
   */
  spawn(init) {
    this.terminate();
    this.setPhase("loading");
    const worker = startWorker();
    this.worker = worker;
    worker.onmessage = ({ data }) => this.receive(data);
    worker.onerror = (e) => {
      this.phase = "error";
      this.onWorkerError(e);
      this.onPhase(this.phase);
    };
    this.post({ type: "init", ...init });
  }

  /** Ends the worker (the phase stays as it is: the owner says what it means). */
  terminate() {
    this.worker?.terminate();
    this.worker = null;
  }

  /** @param {ToWorker} msg @param {Transferable[]} [transfer] */
  post(msg, transfer = []) {
    this.worker.postMessage(msg, transfer);
  }

  /** @param {FromWorker} msg */
  receive(msg) {
    if (!FROM_WORKER.has(msg?.type)) {
      console.warn("lab: unknown message from the worker", msg);
      return;
    }
    if (msg.type === "plan" && msg.token !== this.planToken) return; // an answer to an older request
    const next = TRANSITIONS[msg.type]?.(msg, this.phase);
    if (next !== undefined) this.phase = next;
    let handled;
    try {
      handled = this.handlers[msg.type]?.(msg);
    } finally {
      if (next !== undefined) { // shown even when the handler threw: the view never lags the phase
        if (handled instanceof Promise) handled.finally(() => this.onPhase(this.phase));
        else this.onPhase(this.phase);
      }
    }
  }

  /** Asks for the plan of preset `id` with `patch`; only the answer to the latest such request is handed on. */
  plan(id, patch) {
    this.post({ type: "plan", id, patch, token: ++this.planToken });
  }

  /** Forgets the plan asked for last (its answer, when it comes, is dropped). */
  cancelPlan() {
    this.planToken += 1;
  }

  /** Runs preset `id` with `patch` (phase: starting). @param {Omit<RunRequest, "type">} request */
  run({ id, patch, preferGpu, storeAs }) {
    this.setPhase("starting");
    this.post({ type: "run", id, patch, preferGpu, storeAs });
  }

  /** Finishes the groups saved results lack (phase: starting). @param {Omit<ContinueRequest, "type">} request */
  continueRun({ json, preferGpu, group, storeAs, storedDone }) {
    this.setPhase("starting");
    this.post({ type: "continue", json, preferGpu, group, storeAs, storedDone });
  }

  /** Pauses the run between two steps (answered by `paused`). */
  pause() {
    this.post({ type: "pause" });
  }

  /** Resumes a paused run (answered by `resumed`). */
  resume() {
    this.post({ type: "resume" });
  }

  /** Stops the run after its current step (answered by `stopped`). */
  stop() {
    this.post({ type: "stop" });
  }

  /** Asks for the report of a saved results file (answered by `imported`, or an error in context "import"). */
  importResults(json, name) {
    this.post({ type: "import", json, name });
  }

  /** Asks for group `job`'s trained parameters of the last run (answered by `params`). */
  params(job) {
    this.post({ type: "params", job });
  }

  /** Test hook (the worker was spawned with testHooks): the run's GPU devices are destroyed. */
  testDestroyDevice() {
    this.post({ type: "test-destroy-device" });
  }

  /** Test hook (the worker was spawned with testHooks): the run's GPU devices raise a validation error. */
  testGpuError() {
    this.post({ type: "test-gpu-error" });
  }
}
