// The page soak (issue 9, item 6; run by `scripts/soak --page`): the lab page trains continuously for N minutes
// in headless chromium while its memory is sampled, and the soak fails if the page errors, stops progressing, or
// grows beyond its warm-up. Why: a lab left open in a classroom for an hour must not grow until the tab dies;
// anything kept per step, per run or per redraw (curve points, report images, workers, engines) shows up here as
// a steady climb that a five-minute test never sees.
//
// What runs, in one browser (the site served by scripts/serve-www.mjs on a port the OS picks, chromium launched
// through tests/e2e/harness.mjs; the CPU engine through ?cpu unless --webgpu):
//   - tab "lab": E1 (e1-ratio-sweep) at the quick scale (one seed: LAB_PATCH) in the lab's worker, run again each
//     time it finishes (Run is pressed as soon as the page says done and its figures are drawn), so its engine, the
//     live figures, the claims table and the report figures are rebuilt over and over. One endless run of a big
//     plan would not do: every finished group's results are kept by design until the report, so its memory
//     grows with the groups and a leak could not be told from data.
//   - tab "free": free play (one MLP on the main thread) with the largest step budget the engine takes
//     (10 000 000 steps, more than an hour at any speed seen here): its live loss curve gets a point per step,
//     which is exactly the unbounded growth a soak must catch (www/free/bounded-curve.js keeps at most 4096 points per
//     series for that reason).
// Every interval (60 s, or 10 s for runs under 10 minutes) it forces a garbage collection in each JS context
// through CDP (HeapProfiler.collectGarbage, so the numbers are what is retained, not when V8 last collected)
// and samples: the JS heap used of each tab's page (Runtime.getHeapUsage) and of the lab's worker (the same,
// through a browser CDP session attached to the worker's target), the engine's wasm memory where it runs (the
// worker, the free-play page: it only ever grows, so engine-side growth shows here first), each tab's DOM node
// count (Performance.getMetrics "Nodes"), and the memory of the browser's processes (every descendant of the soak's
// node process: chromium, its renderers, GPU and utility processes), summed from /proc: VmRSS and Pss. It checks
// each tab keeps progressing (the lab: the run's index + its fraction; free play: the step shown in
// #metrics[data-step] and the curve's steps): at least once every STALL_S seconds (and every interval).
// Fails if: a page error or console error appears, the lab says error/failed, a tab's progress stands still, or
// samples after the warm-up (the first fifth, at least one interval and three lab runs) exceed the warm-up's
// peak by more than the margins below, twice in a row (or at the last sample). Prints a table of every sample
// and a summary line per measure.
//
// Usage: node scripts/page-soak.mjs [--minutes N] [--webgpu] [--inject-leak page|worker] [--heap-diff]
//   --inject-leak   the soak's own proof that it can fail: a 16 KiB array of numbers pushed every second into
//                   the lab tab's page (or its worker) through CDP, never freed (docs/RELIABILITY.md §5).
//   --heap-diff     what grew, not only how much: a heap snapshot of each tab's page at the end of the warm-up and
//                   at the end, and their difference printed by kind (V8's compiled code, JS objects, the
//                   browser's own objects) and by constructor — the next step when a measure creeps.
import { readFileSync, readdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { launchBrowser, recordLog, startSite } from "../tests/e2e/harness.mjs";

/** JS heaps, wasm memories and free play's DOM nodes may exceed the warm-up peak by this fraction (issue 9). */
const HEAP_MARGIN = 0.1;
/**
 * The lab's DOM nodes may exceed theirs by 60 %: Performance.getMetrics counts the nodes of the report figures'
 * SVG images too (each <img> of an SVG has its own document), and the previous report's images stay in Blink's
 * image cache for a while after the report is replaced: at the end of a run the lab held 3 273 or, in about one
 * run in five, 5 047 nodes (sometimes twice in a row), whatever the number of runs before. A report kept per run
 * (~2 000 nodes) still crosses 60 % within two runs.
 */
const LAB_NODES_MARGIN = 0.6;
/**
 * RSS: the warm-up peak + 15 % (or + 48 MiB for a small browser, whichever is larger). The sum counts chromium's
 * shared libraries once per process (about 1.46 GiB summed RSS here against about 0.63 GiB PSS), and it moves in
 * steps no page controls: in every 3- and 10-minute soak on this machine it stepped up by 80–100 MiB (5–7 %)
 * about three minutes in and then held still (docs/RELIABILITY.md §5). 15 % holds such a step with room; RSS is
 * the coarse net (growth outside the JS heaps and the wasm memory, which are measured directly at 10 %).
 */
const RSS_MARGIN = 0.15;
const RSS_FLOOR_MIB = 48;
const MIB = 1024 * 1024;
/**
 * On top of E1's quick scale: one seed and a shorter curvature measurement, so a run takes seconds and the soak
 * sees many of them (the whole lab pipeline still runs: plan, six groups, live figures, claims, report figures).
 */
const LAB_PATCH = { seeds: [1], analysis: { hessian_examples: 100, lanczos_iterations: 6, trace_samples: 1 } };
/**
 * The warm-up lasts at least this many lab runs: V8 compiles the lab's code over its first runs. A heap
 * snapshot diff of the lab page between the end of run 2 and of run 7 (E1 quick) showed +266 KiB, of which
 * 188 KiB optimised code (InstructionStream), 35 KiB bytecode and feedback, and under 1 KiB of JS objects.
 */
const WARMUP_RUNS = 3;
/**
 * A tab stalls when its progress did not grow for this long (and at least one interval): a new lab run prepares
 * Fashion-MNIST (60 000 images) before its first step, which took over 10 s with four browsers on two busy cores.
 */
const STALL_S = 45;
/** The step budget of free play: the engine's largest (src/train/config.rs, limits::MAX_STEPS). */
const FREE_STEPS = 10_000_000;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      minutes: { type: "string", default: "5" },
      webgpu: { type: "boolean", default: false },
      "inject-leak": { type: "string" },
      "heap-diff": { type: "boolean", default: false },
    },
    strict: true,
  }));
} catch (e) {
  fail(`${e.message} (--minutes N, --webgpu, --inject-leak page|worker, --heap-diff)`);
}
const minutes = Number(opts.minutes);
if (!Number.isInteger(minutes) || minutes < 1) fail(`--minutes must be a whole number ≥ 1, got '${opts.minutes}'`);
const leak = opts["inject-leak"];
if (leak !== undefined && leak !== "page" && leak !== "worker") fail(`--inject-leak must be page or worker, got '${leak}'`);

function fail(message) {
  console.error(`page-soak: error: ${message}`);
  process.exit(1);
}
const say = (message) => console.error(`page-soak: ${message}`);

/** The pids of `root` and all its descendants (from /proc/<pid>/stat's ppid field). */
function processTree(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * The browser's memory (every descendant process of this node process): the summed VmRSS in bytes (pages shared
 * between chromium's processes, its libraries above all, count once per process), the summed Pss of
 * /proc/<pid>/smaps_rollup (each shared page split among all the processes that map it), and how many processes.
 * Only RSS is checked: Pss splits shared pages with every process of the machine that maps them, so another
 * chromium starting or ending elsewhere moved it by up to +160 MiB in a 10-minute soak here while RSS held still;
 * it is printed as the better estimate of what the browser itself uses.
 */
function browserMemory() {
  let rss = 0;
  let pss = 0;
  const pids = processTree(process.pid).filter((p) => p !== process.pid);
  for (const p of pids) {
    try {
      rss += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, "utf8"))?.[1] ?? 0);
    } catch {
      // a process that exited between the listing and the read
    }
  }
  return { rss: rss * 1024, pss: pss * 1024, procs: pids.length };
}

/**
 * A CDP session on a worker: Playwright opens CDP sessions on pages and frames only, so this attaches a browser
 * session to the worker's target (non-flattened) and sends its commands inside Target.sendMessageToTarget.
 */
async function workerSession(browserCdp, urlPart) {
  const { targetInfos } = await browserCdp.send("Target.getTargets");
  const target = targetInfos.find((t) => t.type === "worker" && t.url.includes(urlPart));
  if (!target) throw new Error(`no worker target whose URL has ${urlPart}: ${targetInfos.map((t) => `${t.type} ${t.url}`).join(", ")}`);
  const { sessionId } = await browserCdp.send("Target.attachToTarget", { targetId: target.targetId, flatten: false });
  const waiting = new Map();
  let id = 0;
  browserCdp.on("Target.receivedMessageFromTarget", (e) => {
    if (e.sessionId !== sessionId) return;
    const msg = JSON.parse(e.message);
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.fail(new Error(`worker ${msg.error.message}`));
    else w.ok(msg.result);
  });
  return {
    targetId: target.targetId,
    send: (method, params = {}) => new Promise((ok, failed) => {
      id += 1;
      waiting.set(id, { ok, fail: failed });
      browserCdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) }).catch(failed);
    }),
  };
}

/**
 * What one context retains, read right after a forced full collection (which also frees detached DOM nodes:
 * text replaced by a status update otherwise counts until the next GC, ±20 % of a page's nodes): its JS heap
 * used in bytes and, for a page (`dom`), its DOM node count (Performance.getMetrics "Nodes").
 */
async function retained(session, { dom = false } = {}) {
  await session.send("HeapProfiler.collectGarbage");
  const heap = (await session.send("Runtime.getHeapUsage")).usedSize;
  if (!dom) return { heap };
  const { metrics } = await session.send("Performance.getMetrics");
  return { heap, nodes: metrics.find((m) => m.name === "Nodes").value };
}

/**
 * A heap snapshot of the page behind `session`, summed by node (its kind in the snapshot and its name, with
 * addresses, ports and blob ids taken out so that the same constructor sums across snapshots): Map key →
 * {count, size} (self sizes in bytes), with the total. Taken after a full GC, like every sample.
 */
async function heapSnapshot(session) {
  await session.send("HeapProfiler.enable");
  await session.send("HeapProfiler.collectGarbage");
  const chunks = [];
  const onChunk = (e) => chunks.push(e.chunk);
  session.on("HeapProfiler.addHeapSnapshotChunk", onChunk);
  await session.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  session.off("HeapProfiler.addHeapSnapshotChunk", onChunk);
  await session.send("HeapProfiler.disable");
  const snap = JSON.parse(chunks.join(""));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [n, ti, ni, si] = [fields.length, fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")];
  const byNode = new Map();
  for (let i = 0; i < snap.nodes.length; i += n) {
    const name = String(snap.strings[snap.nodes[i + ni]]).replace(/blob:\S+/g, "blob:…").replace(/:\d{2,5}\//g, ":…/")
      .replace(/ @\d+/g, "").slice(0, 72);
    const key = `${types[snap.nodes[i + ti]]}\t${name}`;
    const a = byNode.get(key) ?? { count: 0, size: 0 };
    a.count++;
    a.size += snap.nodes[i + si];
    byNode.set(key, a);
  }
  return byNode;
}

/** The kinds a heap diff sums by: V8's compiled code, JS objects and values, the browser's (Blink's) objects. */
const heapKind = (type) => (type === "code" ? "V8 compiled code (bytecode, optimised code, feedback)"
  : type === "native" ? "browser objects (DOM, layout, performance entries, DevTools)"
  : type === "synthetic" ? "synthetic (roots)" : "JS objects, strings and numbers");

/** Prints what grew from snapshot `a` to `b` of one page: the sum per kind and the largest changes by node. */
function printHeapDiff(label, a, b) {
  const rows = [];
  for (const [key, v] of b) {
    const o = a.get(key) ?? { count: 0, size: 0 };
    if (v.size !== o.size || v.count !== o.count) rows.push({ key, count: v.count - o.count, size: v.size - o.size });
  }
  for (const [key, v] of a) if (!b.has(key)) rows.push({ key, count: -v.count, size: -v.size });
  const kinds = new Map();
  for (const r of rows) {
    const kind = heapKind(r.key.split("\t")[0]);
    kinds.set(kind, (kinds.get(kind) ?? 0) + r.size);
  }
  console.log(`\nHeap snapshot diff, ${label} (self sizes; the snapshot counts the browser's objects too, getHeapUsage does not):`);
  for (const [kind, size] of [...kinds].sort((x, y) => y[1] - x[1])) console.log(`  ${(size / 1024).toFixed(1).padStart(8)} KiB  ${kind}`);
  console.log("  largest changes: KiB, count, kind and name");
  rows.sort((x, y) => Math.abs(y.size) - Math.abs(x.size));
  for (const r of rows.slice(0, 16)) console.log(`  ${(r.size / 1024).toFixed(1).padStart(8)} ${String(r.count).padStart(6)}  ${r.key.replace("\t", " ")}`);
}

/** JS source: the size of the engine's wasm memory in the context it runs in (the module is loaded there already). */
const wasmMemorySource = (siteUrl) =>
  `import(${JSON.stringify(`${siteUrl}pkg/sgd_lab.js`)}).then((m) => m.default()).then((w) => w.memory.buffer.byteLength)`;

// A leak for --inject-leak: 16 KiB of numbers (2048 doubles, kept in the JS heap: no ArrayBuffer) a second.
const LEAK_SOURCE = `globalThis.__soakLeak = [];
setInterval(() => globalThis.__soakLeak.push(Array.from({ length: 2048 }, () => Math.random())), 1000); true`;

const interval = minutes < 10 ? 10 : 60;
const stallAfter = Math.max(STALL_S, interval);
const total = minutes * 60;
const warmup = Math.max(interval, Math.floor(total / 5));
const server = await startSite();
const browser = await launchBrowser({ webgpu: opts.webgpu });
const errors = [];
const samples = [];
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const log = recordLog(context);
  context.on("page", (p) => p.on("crash", () => errors.push(`[crash] ${p.url()}`)));
  const cpu = opts.webgpu ? "" : "&cpu";

  // --- the lab tab: E1 quick, run after run ---------------------------------------------------------------
  const lab = await context.newPage();
  await lab.goto(`${server.url}?preset=e1-ratio-sweep&scale=quick${cpu}&patch=${encodeURIComponent(JSON.stringify(LAB_PATCH))}`);
  await lab.waitForSelector('#lab[data-state="idle"]', { timeout: 120_000 });
  await lab.waitForFunction(() => document.getElementById("plan-summary").dataset.jobs, null, { timeout: 120_000 });
  const labCdp = await context.newCDPSession(lab);
  await labCdp.send("Performance.enable");
  const browserCdp = await browser.newBrowserCDPSession();
  const worker = await workerSession(browserCdp, "/lab/worker.js");
  const workerWasm = async () => {
    const r = await worker.send("Runtime.evaluate", { expression: wasmMemorySource(server.url), awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`the worker's wasm memory: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  };
  let closing = false;
  /** The lab's memory each time a run is done (before Run is pressed again). */
  const atDone = [];
  /**
   * With --heap-diff: snapshots of the lab page at the end of a run (its report on screen; the same point of its
   * cycle both times, or the diff would be a report) once the warm-up is over and after the last sample, and of
   * the free-play page at the first timed sample after the warm-up and after the last one.
   */
  const heapDiff = opts["heap-diff"] ? { lab: null, labEnd: null, free: null, wantEnd: false } : null;
  /**
   * The lab's runs by #lab[data-run-start] (set with the fraction's reset to 0 when Run is pressed, in one task) →
   * the run's index from 0, recorded when the soak presses Run: progress = the run's index + its fraction, read
   * together, so a finished run is never counted twice. (Indexing the starts the samples happen to see instead
   * would count only one run per sample: the first one-hour soak's table said 61 runs where 430 had finished.)
   */
  const runIndex = new Map();
  const labRunStart = () => lab.evaluate(() => document.getElementById("lab").dataset.runStart);
  const t0 = Date.now();
  await lab.click("#run");
  runIndex.set(await labRunStart(), 0);
  // Presses Run again whenever a run is done and its figures are drawn, after sampling the lab there.
  const rerun = (async () => {
    while (!closing) {
      try {
        const s = await lab.evaluate(() => ({ state: document.getElementById("lab").dataset.state,
          pending: document.getElementById("live-figures").dataset.pending, canRun: !document.getElementById("run").disabled }));
        if (s.state === "error" || s.state === "failed" || s.state === "stopped") {
          errors.push(`[lab] the run ended in state ${s.state}: ${await lab.textContent("#lab-error")}`);
          return;
        }
        if (s.state === "done" && s.pending === "0" && s.canRun) {
          // the lab's peak of each cycle, always at the same point of it: its report and figures on screen
          const labM = await retained(labCdp, { dom: true });
          atDone.push({ t: Math.round((Date.now() - t0) / 1000), run: atDone.length + 1, labHeap: labM.heap, labNodes: labM.nodes,
            workerHeap: (await retained(worker)).heap, workerWasm: await workerWasm() });
          const at = { t: atDone.at(-1).t, run: atDone.length };
          if (heapDiff && !heapDiff.lab && at.t >= warmup && at.run >= WARMUP_RUNS) heapDiff.lab = { ...at, snap: await heapSnapshot(labCdp) };
          else if (heapDiff?.wantEnd && !heapDiff.labEnd) heapDiff.labEnd = { ...at, snap: await heapSnapshot(labCdp) };
          // A DOM click, not Playwright's: its actionability checks wait for animation frames, which hardly come in
          // a tab that is not in front (a press once took ~40 s to return while the run it started went on).
          await lab.evaluate(() => document.getElementById("run").click());
          await lab.waitForFunction(() => document.getElementById("lab").dataset.state !== "done", null,
            { timeout: 60_000, polling: 250 });
          runIndex.set(await labRunStart(), atDone.length);
        }
      } catch (e) {
        if (!closing) errors.push(`[soak] pressing Run again: ${e.message.split("\n")[0]}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();

  // --- the free-play tab: one MLP, the largest step budget --------------------------------------------------
  const free = await context.newPage();
  await free.goto(`${server.url}?preset=free-play${cpu}`);
  // the demo (600 steps) starts by itself: stop it (or let it end), then train for FREE_STEPS
  await free.waitForSelector('body[data-state="training"], body[data-state="done"]', { timeout: 120_000 });
  if (await free.isEnabled("#stop")) await free.click("#stop", { timeout: 5_000 }).catch(() => {});
  await free.waitForSelector('body[data-state="done"], body[data-state="stopped"]', { timeout: 120_000 });
  await free.fill("#steps", String(FREE_STEPS));
  await free.click("#train");
  await free.waitForFunction(() => document.body.dataset.state === "training", null, { timeout: 120_000 });
  const freeCdp = await context.newCDPSession(free);
  await freeCdp.send("Performance.enable");
  const wasmSource = wasmMemorySource(server.url);
  const freeWasm = () => free.evaluate(wasmSource);

  if (leak === "page") await lab.evaluate(LEAK_SOURCE);
  if (leak === "worker") await worker.send("Runtime.evaluate", { expression: LEAK_SOURCE });
  if (leak) say(`injected a leak of 16 KiB a second into the lab tab's ${leak}`);

  say(`${minutes} min on the ${opts.webgpu ? "WebGPU" : "CPU"} engine, a sample every ${interval} s, warm-up ${warmup} s` +
    ` (margins: heaps, wasm memory and free play's DOM nodes ${100 * HEAP_MARGIN} %, the lab's DOM nodes ${100 * LAB_NODES_MARGIN} %,` +
    ` RSS ${100 * RSS_MARGIN} % or ${RSS_FLOOR_MIB} MiB)`);
  /** Per tab: the largest progress seen and when (a stall is STALL_S without growth). */
  const progressed = { lab: { value: -1, t: 0 }, free: { value: -1, t: 0 } };
  const header = ["t (s)", "lab run", "lab frac", "free step", "lab heap MiB", "worker heap MiB", "free heap MiB",
    "worker wasm MiB", "free wasm MiB", "lab nodes", "free nodes", "processes", "RSS MiB", "PSS MiB"];
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (let k = 1; k * interval <= total; k++) {
    await new Promise((r) => setTimeout(r, t0 + k * interval * 1000 - Date.now()));
    if (errors.length || log.some((l) => /^\[(pageerror|error)\]/.test(l))) break;
    const labNow = await lab.evaluate(() => ({ start: document.getElementById("lab").dataset.runStart,
      fraction: Number(document.getElementById("progress-text").dataset.fraction) }));
    // a start not recorded yet: Run was just pressed again, and the new run's index is the number finished
    const run = runIndex.get(labNow.start) ?? atDone.length;
    const freeState = await free.evaluate(() => ({ state: document.body.dataset.state,
      step: Number(document.getElementById("metrics").dataset.step || 0),
      curveSteps: Number(document.getElementById("loss-chart").dataset.steps || document.getElementById("loss-chart").dataset.points) }));
    const labM = await retained(labCdp, { dom: true });
    const freeM = await retained(freeCdp, { dom: true });
    const s = {
      t: Math.round((Date.now() - t0) / 1000),
      run, fraction: labNow.fraction, freeStep: Math.max(freeState.step, freeState.curveSteps), freeState: freeState.state,
      labHeap: labM.heap,
      workerHeap: (await retained(worker)).heap,
      freeHeap: freeM.heap,
      workerWasm: await workerWasm(),
      freeWasm: await freeWasm(),
      labNodes: labM.nodes,
      freeNodes: freeM.nodes,
      ...browserMemory(),
    };
    samples.push(s);
    if (heapDiff && !heapDiff.free && s.t >= warmup) heapDiff.free = { t: s.t, snap: await heapSnapshot(freeCdp) };
    console.log(`| ${[s.t, s.run + 1, s.fraction.toFixed(3), s.freeStep,
      ...[s.labHeap, s.workerHeap, s.freeHeap, s.workerWasm, s.freeWasm].map((b) => (b / MIB).toFixed(2)),
      s.labNodes, s.freeNodes, s.procs, (s.rss / MIB).toFixed(1), (s.pss / MIB).toFixed(1)].join(" | ")} |`);
    if (freeState.state !== "training") errors.push(`[free] free play stopped training: its state is ${freeState.state}`);
    for (const [tab, value] of [["lab", s.run + s.fraction], ["free", s.freeStep]]) {
      const p = progressed[tab];
      if (value > p.value) Object.assign(p, { value, t: s.t });
      else if (s.t - p.t >= stallAfter) errors.push(`[${tab}] no progress since ${p.t} s (${tab === "lab" ? "run + fraction" : "step"} ${value})`);
    }
    if (errors.length) break;
  }
  if (heapDiff?.lab && !errors.length) {
    // the lab's second snapshot at the end of the run in progress
    heapDiff.wantEnd = true;
    const until = Date.now() + 300_000;
    while (!heapDiff.labEnd && !errors.length && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
  }
  closing = true;
  await rerun;
  const pageErrors = log.filter((l) => /^\[(pageerror|error)\]/.test(l));
  if (pageErrors.length) errors.push(...pageErrors);
  if (heapDiff && !errors.length) {
    const { lab: a, labEnd: b, free } = heapDiff;
    if (a && b) printHeapDiff(`the lab page at the ends of runs ${a.run} (${a.t} s) and ${b.run} (${b.t} s)`, a.snap, b.snap);
    else say("heap diff: the lab finished no run after the warm-up and after the last sample: no lab diff");
    if (free) {
      const t = Math.round((Date.now() - t0) / 1000);
      printHeapDiff(`the free-play page from ${free.t} s to ${t} s`, free.snap, await heapSnapshot(freeCdp));
    }
  }
  if (errors.length) {
    console.log(log.join("\n"));
    throw new Error(`the soak stopped after ${samples.at(-1)?.t ?? 0} s:\n  ${errors.join("\n  ")}`);
  }

  // --- growth beyond the warm-up ------------------------------------------------------------------------------
  // The warm-up: the first fifth of the run (at least one interval), and at least until WARMUP_RUNS lab runs
  // ended, so that its peak includes a report on screen (the lab's memory climbs and falls with each run) and
  // the code V8 compiles over the first runs.
  const warmEnd = Math.max(warmup, atDone[WARMUP_RUNS - 1]?.t ?? Infinity);
  console.log(`\nThe lab at the end of each run (report and figures on screen), before Run is pressed again:`);
  console.log("| t (s) | run | lab heap MiB | worker heap MiB | worker wasm MiB | lab nodes |\n|---|---|---|---|---|---|");
  for (const d of atDone) {
    console.log(`| ${d.t} | ${d.run} | ${[d.labHeap, d.workerHeap, d.workerWasm].map((b) => (b / MIB).toFixed(2)).join(" | ")} | ${d.labNodes} |`);
  }
  const heapLimit = (peak) => peak * (1 + HEAP_MARGIN);
  const rssLimit = (peak) => Math.max(peak * (1 + RSS_MARGIN), peak + RSS_FLOOR_MIB * MIB);
  const measures = [
    ["lab page heap", "labHeap", heapLimit, `+${100 * HEAP_MARGIN} %`, true],
    ["lab worker heap", "workerHeap", heapLimit, `+${100 * HEAP_MARGIN} %`, true],
    ["lab DOM nodes", "labNodes", (peak) => peak * (1 + LAB_NODES_MARGIN), `+${100 * LAB_NODES_MARGIN} %`, true],
    ["lab worker wasm memory", "workerWasm", heapLimit, `+${100 * HEAP_MARGIN} %`, true],
    ["free-play page heap", "freeHeap", heapLimit, `+${100 * HEAP_MARGIN} %`, false],
    ["free-play wasm memory", "freeWasm", heapLimit, `+${100 * HEAP_MARGIN} %`, false],
    ["free-play DOM nodes", "freeNodes", heapLimit, `+${100 * HEAP_MARGIN} %`, false],
    ["browser RSS", "rss", rssLimit, `+${100 * RSS_MARGIN} % or +${RSS_FLOOR_MIB} MiB`, false],
  ];
  const grew = [];
  for (const [name, key, limitOf, margin, lab] of measures) {
    const all = [...samples, ...(lab ? atDone : [])];
    const warm = all.filter((s) => s.t <= warmEnd);
    const later = all.filter((s) => s.t > warmEnd);
    if (!warm.length || !later.length) {
      throw new Error(`too few samples for ${name} (the warm-up ends at ${warmEnd} s; ${atDone.length} lab runs ended, ` +
        `the warm-up needs ${WARMUP_RUNS}): run the soak longer`);
    }
    const peak = Math.max(...warm.map((s) => s[key]));
    const worst = later.reduce((a, s) => (s[key] > a[key] ? s : a));
    const fmt = (v) => (key.endsWith("Nodes") ? String(v) : `${(v / MIB).toFixed(2)} MiB`);
    // Growth means two samples in a row over the limit (or the last one: nothing can contradict it): a leak stays,
    // while a one-off spike comes back (the free-play heap once read +10.4 % at 181 s of a 10-minute soak and
    // +0.6 % a minute later). In a row within one series: the timed samples, or the lab's ends of runs (a
    // different point of its cycle, where it is at its largest).
    const overInARow = (series) => {
      const over = series.filter((s) => s.t > warmEnd).map((s) => s[key] > limitOf(peak));
      return { any: over.some(Boolean), persistent: over.some((o, i) => o && (i === over.length - 1 || over[i + 1])) };
    };
    const checks = [overInARow(samples), ...(lab ? [overInARow(atDone)] : [])];
    const anyOver = checks.some((c) => c.any);
    const persistent = checks.some((c) => c.persistent);
    const line = `${name}: largest after the warm-up (${warmEnd} s) ${fmt(worst[key])} at ${worst.t} s ` +
      `(${(100 * (worst[key] / peak - 1)).toFixed(1)} % vs the warm-up peak ${fmt(peak)}; limit ${margin})` +
      (anyOver && !persistent ? "; over the limit once, not twice in a row" : "");
    say(line);
    if (persistent) grew.push(line);
  }
  const last = samples.at(-1);
  say(`progress: ${atDone.length} lab runs finished (the current one at ${(100 * last.fraction).toFixed(0)} %), ` +
    `free play at step ${last.freeStep}`);
  if (grew.length) throw new Error(`memory grew beyond the warm-up:\n  ${grew.join("\n  ")}`);
  say(`ok: no page error, both tabs progressed at least every ${stallAfter} s, and no measure grew beyond its margin`);
} catch (e) {
  console.error(`page-soak: FAILED: ${e.message}`);
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
  await server.close();
}
process.exit(exitCode);
