// The lab worker's one client (www/lab/client.js) in node, with a stand-in Worker: the phases a run's
// messages move it through, the moment its owner is told (after the handler, after an async handler's promise),
// stale plan answers dropped, the requests' fields, and unknown messages refused. The browser tests (lab,
// faults, embed) drive the same client with the real worker.
import { test } from "node:test";
import assert from "node:assert/strict";

/** A Worker that keeps what it is sent; `answer(msg)` plays a message from the worker. */
class FakeWorker {
  static last = null;
  constructor(url, options) {
    this.url = String(url);
    this.options = options;
    this.sent = [];
    this.terminated = false;
    FakeWorker.last = this;
  }
  postMessage(msg) {
    this.sent.push(msg);
  }
  terminate() {
    this.terminated = true;
  }
  answer(msg) {
    this.onmessage({ data: msg });
  }
}

// client.js starts the worker straight from its URL when that has the page's origin (a file: URL's is "null").
globalThis.Worker = FakeWorker;
globalThis.self = { origin: "http://127.0.0.1" };
globalThis.location = { origin: "null" };
const { LabClient, BUSY_PHASES } = await import("../../www/lab/client.js");

/** A client whose handlers record (type, phase seen) and whose onPhase records the phases shown. */
function recordingClient(handlers = {}) {
  const seen = [];
  const shown = [];
  const all = new Proxy(handlers, {
    get: (target, type) => (msg) => {
      seen.push([type, client.phase]);
      return target[type]?.(msg);
    },
  });
  const client = new LabClient({ handlers: all, onPhase: (phase) => shown.push(phase) });
  return { client, seen, shown };
}

const STARTED = { type: "started", backend: "CPU", onGpu: false, fallbackReason: "test", jobs: [], needed: [], config: {}, fraction: 0 };

test("a run moves the phase from loading through starting, fetching, running and paused to done", () => {
  const { client, seen, shown } = recordingClient();
  client.spawn({ preferGpu: false });
  const worker = FakeWorker.last;
  assert.ok(worker.url.endsWith("/www/lab/worker.js"), worker.url);
  assert.deepEqual(worker.options, { type: "module" });
  assert.deepEqual(worker.sent, [{ type: "init", preferGpu: false }]);
  assert.equal(client.phase, "loading");
  worker.answer({ type: "ready", presets: [], version: "test" });
  assert.equal(client.phase, "idle");
  client.run({ id: "e4-schedules", patch: null, preferGpu: false });
  assert.equal(client.phase, "starting");
  assert.ok(client.busy);
  worker.answer(STARTED);
  assert.equal(client.phase, "fetching");
  worker.answer({ type: "data", name: "mnist", received: 1, total: 2, source: "network", text: "" });
  assert.equal(client.phase, "fetching", "a data set still loading leaves the phase");
  worker.answer({ type: "data", name: "mnist", received: 2, total: 2, source: "network", text: "", done: true, ready: true });
  assert.equal(client.phase, "running");
  worker.answer({ type: "paused", fraction: 0.5 });
  worker.answer({ type: "resumed", fraction: 0.5 });
  worker.answer({ type: "events", events: [], fraction: 0.6 });
  worker.answer({ type: "finished", fraction: 1, json: "{}", csv: "" });
  assert.equal(client.phase, "done");
  assert.ok(!client.busy);
  assert.deepEqual(shown, ["loading", "idle", "starting", "fetching", "running", "paused", "running", "done"]);
  assert.deepEqual(seen.map(([type, phase]) => `${type}:${phase}`), ["ready:idle", "started:fetching", "data:fetching",
    "data:running", "paused:paused", "resumed:running", "events:running", "finished:done"],
  "each handler already sees the phase its message moved to");
  assert.deepEqual([...BUSY_PHASES], ["starting", "fetching", "running", "paused"]);
});

test("the first events of a run whose data need no download end the fetching phase", () => {
  const { client } = recordingClient();
  client.spawn({ preferGpu: true });
  FakeWorker.last.answer({ type: "ready", presets: [], version: "test" });
  client.continueRun({ json: "{}", preferGpu: true });
  FakeWorker.last.answer(STARTED);
  FakeWorker.last.answer({ type: "events", events: [], fraction: 0.1 });
  assert.equal(client.phase, "running");
});

test("a stopped run, a GPU failure, an imported file and errors each end in their own phase", () => {
  const { client } = recordingClient();
  client.spawn({ preferGpu: true });
  const worker = FakeWorker.last;
  const after = (msg) => {
    worker.answer(msg);
    return client.phase;
  };
  after({ type: "ready", presets: [], version: "test" });
  assert.equal(after({ type: "stopped", fraction: 0.5, json: "{}", csv: "" }), "stopped");
  assert.equal(after({ type: "gpu-failed", lost: "reason: destroyed", message: "", json: null, csv: null, jobs: [] }), "failed");
  assert.equal(after({ type: "imported", name: "r.json", results: {}, json: "{}", csv: "", jobs: [], complete: true }), "done");
  assert.equal(after({ type: "error", context: "import", message: "not JSON" }), "idle");
  for (const context of ["engine", "plan", "parameters", "test hook", "message"]) {
    assert.equal(after({ type: "error", context, message: "x" }), "idle", `an error in context ${context} leaves the phase`);
  }
  assert.equal(after({ type: "error", context: "run", message: "panic" }), "error", "an engine panic: its wasm is unusable");
  client.spawn({ preferGpu: true });
  assert.ok(worker.terminated, "a new worker ends the one before");
  assert.equal(client.phase, "loading");
  assert.equal(after({ type: "error", context: "import", message: "x" }), "loading", "an import error while loading");
});

test("an async handler's phase is shown only once its promise settles", async () => {
  let release;
  const drawn = new Promise((resolve) => { release = resolve; });
  const { client, shown } = recordingClient({ "gpu-failed": () => drawn });
  client.spawn({ preferGpu: true });
  FakeWorker.last.answer({ type: "ready", presets: [], version: "test" });
  FakeWorker.last.answer({ type: "gpu-failed", lost: null, message: "validation", json: null, csv: null, jobs: [] });
  assert.equal(client.phase, "failed");
  assert.equal(shown.at(-1), "idle", "not shown while the fault is being drawn");
  release();
  await drawn;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(shown.at(-1), "failed");
});

test("only the answer to the latest plan request reaches the owner", () => {
  const plans = [];
  const { client } = recordingClient({ plan: (msg) => plans.push(msg.id) });
  client.spawn({ preferGpu: false });
  const worker = FakeWorker.last;
  client.plan("e1-ratio-sweep", null);
  client.plan("e4-schedules", { seeds: [1] });
  const [first, second] = worker.sent.slice(1);
  assert.deepEqual(second, { type: "plan", id: "e4-schedules", patch: { seeds: [1] }, token: first.token + 1 });
  worker.answer({ type: "plan", id: "e1-ratio-sweep", token: first.token, error: "late" });
  worker.answer({ type: "plan", id: "e4-schedules", token: second.token, jobs: [], needed: [], config: {} });
  client.cancelPlan();
  worker.answer({ type: "plan", id: "e4-schedules", token: second.token, jobs: [], needed: [], config: {} });
  assert.deepEqual(plans, ["e4-schedules"]);
});

test("the requests carry the fields worker.js reads", () => {
  const { client } = recordingClient();
  client.spawn({ preferGpu: true, testHooks: true, storeCheckpoints: true });
  const worker = FakeWorker.last;
  const storeAs = { id: "e4-schedules", scale: "quick", patch: null };
  const group = new Uint8Array([1, 2]);
  client.run({ id: "e4-schedules", patch: { seeds: [1] }, preferGpu: true, storeAs });
  client.continueRun({ json: "{}", preferGpu: false, group, storeAs, storedDone: 2 });
  client.pause();
  client.resume();
  client.stop();
  client.importResults("{}", "saved.json");
  client.params(3);
  client.testDestroyDevice();
  client.testGpuError();
  assert.deepEqual(worker.sent, [
    { type: "init", preferGpu: true, testHooks: true, storeCheckpoints: true },
    { type: "run", id: "e4-schedules", patch: { seeds: [1] }, preferGpu: true, storeAs },
    { type: "continue", json: "{}", preferGpu: false, group, storeAs, storedDone: 2 },
    { type: "pause" }, { type: "resume" }, { type: "stop" },
    { type: "import", json: "{}", name: "saved.json" },
    { type: "params", job: 3 },
    { type: "test-destroy-device" }, { type: "test-gpu-error" },
  ]);
});

test("a message type the protocol does not have is warned about and handled by no one", (t) => {
  const warn = t.mock.method(console, "warn", () => {});
  const { client, seen } = recordingClient();
  client.spawn({ preferGpu: false });
  FakeWorker.last.answer({ type: "surprise" });
  assert.equal(seen.length, 0);
  assert.equal(warn.mock.callCount(), 1);
  assert.equal(client.phase, "loading");
});

test("a worker that fails to load puts the client in the error phase and tells the owner", () => {
  const errors = [];
  const shown = [];
  const client = new LabClient({ handlers: {}, onPhase: (p) => shown.push(p), onWorkerError: (e) => errors.push(e.message) });
  client.spawn({ preferGpu: false });
  FakeWorker.last.onerror({ message: "404" });
  assert.equal(client.phase, "error");
  assert.deepEqual(errors, ["404"]);
  assert.deepEqual(shown, ["loading", "error"]);
  client.terminate();
  assert.ok(!client.alive);
});
