// Free play (?preset=free-play; lab/page.js imports this module when it is picked): load the wasm engine,
// pick WebGPU or the CPU, train one MLP on the chosen data set and draw its loss as it falls. Once loaded it
// trains the two-spirals demo; pick another set (synthetic, or a real
// one: Fashion-MNIST, MNIST, downloaded with progress and kept in the Cache API) and press Train.
// Training runs in chunks with a yield to the browser in between; Stop ends a run between chunks.
//
// Test hooks (read by tests/e2e): <body data-state="loading|fetching|training|done|stopped|error">,
// #backend[data-kind="gpu|cpu"], #loss-chart[data-points, data-loss-start, data-loss-end],
// #data-status[data-source="network|cache|memory|mixed", data-received, data-total, data-magic],
// #metrics[data-step] with rows tr[data-set="train|train_clean|train_corrupted|validation|test"]
// [data-loss, data-accuracy], #landscape-chart[data-points, data-loss-at0, data-loss-at1] (the interpolation
// from the initial to the final parameters, drawn once a run is done), and landscape2d.js's hooks.
// The 2-D landscape (button "Landscape (2-D)", during or after a run): the run keeps parameter snapshots every
// chunk (`FreePlay.keepSnapshots`, at most 64: when full every second one goes and the interval doubles) for the
// PCA plane; engine calls go through one queue, so a landscape asked for mid-run runs between two chunks and
// never while a step() runs. The run's engine is kept after the run (for the landscape) and freed when the next run starts.
// Add ?cpu to the URL to train on the CPU even when WebGPU is available.
import init, { FreePlay, version } from "../pkg/sgd_lab.js";
import { LossChart } from "./loss-chart.js";
import { LandscapeChart } from "./landscape-chart.js";
import { Landscape2dView } from "./landscape2d.js";
import { DATA_SET_CONFIGS, configFor, fieldsOf } from "./data-set-configs.js";
import { REAL_SETS, loadRealData } from "../data-loader.js";

const $ = (id) => document.getElementById(id);
const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const FIELDS = ["n", "train_size", "validation_size", "random_label_fraction", "steps", "batch_size", "lr"];
const SET_NAMES = [
  ["train", "Training set"],
  ["train_clean", "… examples with their own label"],
  ["train_corrupted", "… examples with a random label (memorisation)"],
  ["validation", "Validation"],
  ["test", "Test"],
];
const MB = (bytes) => (bytes / 1e6).toFixed(1);
const MAX_SNAPSHOTS = 64;

// The engine of the latest run and a queue of calls to it: step() and landscape2d() never overlap.
const engine = { lab: null, queue: Promise.resolve() };
function withEngine(fn) {
  const next = engine.queue.then(fn);
  engine.queue = next.catch(() => {}); // a failed call does not block the ones after it
  return next;
}

function showBackend(lab) {
  const el = $("backend");
  el.dataset.kind = lab.onGpu ? "gpu" : "cpu";
  el.textContent = lab.onGpu ? lab.backend : `CPU fallback — ${lab.backend}`; // backend: "GPU: …" or "CPU (f32)"
  if (!lab.onGpu) {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = `Why: ${lab.fallbackReason}`;
    el.append(why);
  }
}

function showError(err) {
  document.body.dataset.state = "error";
  $("error").hidden = false;
  $("error").textContent = `Something went wrong: ${err?.message ?? err}`;
  console.error(err);
}

// --- the form -------------------------------------------------------------------------------------------

function fillForm(key) {
  const fields = fieldsOf(DATA_SET_CONFIGS[key].config);
  for (const f of FIELDS) $(f).value = fields[f] ?? "";
  $("setup").dataset.real = String(DATA_SET_CONFIGS[key].real);
}

function readForm() {
  const key = $("dataset-picker").value;
  const fields = {};
  for (const f of FIELDS) fields[f] = $(f).value === "" ? undefined : Number($(f).value);
  return { key, config: configFor(key, fields) };
}

// --- real data ------------------------------------------------------------------------------------------

async function fetchData(name) {
  const box = $("data-status");
  const text = $("data-text");
  const bar = $("data-progress");
  const { label, credit } = REAL_SETS[name];
  box.hidden = false;
  box.dataset.source = "";
  $("data-credit").innerHTML = "";
  $("data-credit").append(`${label}: ${credit} — `, Object.assign(document.createElement("a"),
    { href: `data/${name}/COPYRIGHT`, textContent: "COPYRIGHT", target: "_blank" }));
  text.textContent = `Looking for ${label}…`;
  const data = await loadRealData(name, {
    onProgress: ({ received, total, source }) => {
      bar.max = total || 1;
      bar.value = received;
      Object.assign(box.dataset, { received, total });
      const from = source === "network" ? "Downloading" : "Reading from the cache";
      text.textContent = `${from} ${label}: ${MB(received)} / ${MB(total)} MB`;
    },
  });
  const magic = [...data.files[0].subarray(0, 2)].map((b) => b.toString(16).padStart(2, "0")).join("");
  Object.assign(box.dataset, { source: data.source, magic });
  const where = { network: "downloaded", cache: "read from the browser cache", memory: "already in memory",
    mixed: "partly read from the cache, partly downloaded" }[data.source];
  text.textContent = `${label}: ${MB(data.bytes)} MB ${where}` +
    (data.source === "network" && data.cached ? " and cached for next time" : "") + (data.note ? ` (${data.note})` : "");
  return data.files;
}

// --- metrics --------------------------------------------------------------------------------------------

function showMetrics(step, ev, sizes) {
  const table = $("metrics");
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [key, name] of SET_NAMES) {
    const m = ev[key]?.[0];
    if (!m) continue;
    const row = body.insertRow();
    row.dataset.set = key;
    row.dataset.loss = String(m.loss);
    row.dataset.accuracy = String(m.accuracy);
    if (key.startsWith("train_")) row.className = "part";
    for (const cell of [name, sizes[key] ?? "", m.loss.toFixed(4), `${(100 * m.accuracy).toFixed(1)}%`]) {
      row.insertCell().textContent = String(cell);
    }
  }
  table.dataset.step = String(step);
  $("metrics-caption").textContent = `Full-set evaluation after step ${step}`;
  table.hidden = false;
}

// --- one run --------------------------------------------------------------------------------------------

function summary(key, config, sizes) {
  const m = config.model;
  const arch = `MLP ${[m.input, ...m.hidden, m.classes].join("→")} (${m.activation})`;
  const hyper = `batch ${config.batch_size} · lr ${config.models[0].lr}` +
    (config.models[0].momentum ? ` · momentum ${config.models[0].momentum}` : "") + ` · ${config.steps} steps`;
  if (!DATA_SET_CONFIGS[key].real) return `${DATA_SET_CONFIGS[key].label}: ${config.data.n} points · ${arch} · ${hyper}`;
  const parts = [`${sizes.train} training examples` + (sizes.train_corrupted ? ` (${sizes.train_corrupted} with random labels)` : "")];
  if (sizes.validation) parts.push(`${sizes.validation} validation`);
  if (sizes.test) parts.push(`${sizes.test} test`);
  return `${DATA_SET_CONFIGS[key].label}: ${parts.join(", ")} · ${arch} · ${hyper}`;
}

async function train(chart, preferGpu, run, landscape, view) {
  const { key, config } = readForm();
  $("error").hidden = true;
  $("metrics").hidden = true;
  $("status").textContent = "";
  $("run-summary").textContent = "";
  chart.clear();
  landscape.clear();
  $("landscape").hidden = true;
  view.clear();
  view.setAvailable(false);
  await withEngine(() => {
    engine.lab?.free(); // the previous run's engine (a real data set's copies) goes back now, not at garbage collection
    engine.lab = null;
  });
  let lab;
  if (DATA_SET_CONFIGS[key].real) {
    document.body.dataset.state = "fetching";
    const files = await fetchData(config.dataset.name);
    if (run.stopped) return "stopped";
    $("status").textContent = "Preparing the data set…";
    await yieldToBrowser();
    lab = await FreePlay.createWithData(JSON.stringify(config), preferGpu, ...files);
  } else {
    $("data-status").hidden = true;
    lab = await FreePlay.create(JSON.stringify(config), preferGpu);
  }
  engine.lab = lab;
  lab.keepSnapshots(config.chunk_steps, MAX_SNAPSHOTS);
  view.setAvailable(true);
  showBackend(lab);
  const sizes = lab.sets;
  $("run-summary").textContent = summary(key, config, sizes);
  document.body.dataset.state = "training";
  // The first and the last chunk_steps mini-batch losses (the chart's data-loss-start / -end), not every loss:
  // a run of millions of steps must not keep them all (the chart itself keeps at most MAX_POINTS per series).
  const n = config.chunk_steps;
  const head = [];
  let tail = [];
  const t0 = performance.now();
  while (!lab.done) {
    if (run.stopped) break;
    for (const ev of await withEngine(() => lab.step())) {
      if (ev.type === "steps") {
        const losses = ev.losses[0];
        chart.addSteps(ev.first_step, losses);
        if (head.length < n) head.push(...losses.slice(0, n - head.length));
        tail = tail.concat(losses).slice(-n);
      } else if (ev.type === "eval" || ev.type === "finished") {
        const step = ev.type === "eval" ? ev.step : ev.steps; // `finished` carries the final evaluation
        chart.addEval(step, ev.train[0].loss);
        showMetrics(step, ev, sizes);
        $("status").textContent =
          `step ${step}: loss ${ev.train[0].loss.toFixed(3)}, accuracy ${(100 * ev.train[0].accuracy).toFixed(1)}%`;
      } else if (ev.type === "diverged") {
        $("status").textContent = `diverged at step ${ev.step}`;
      }
    }
    chart.redraw();
    await yieldToBrowser();
  }
  Object.assign($("loss-chart").dataset, { lossStart: mean(head.filter(Number.isFinite)).toFixed(5),
    lossEnd: mean(tail.filter(Number.isFinite)).toFixed(5) });
  $("status").textContent += `${run.stopped ? " · stopped" : ""} · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  if (!run.stopped) {
    $("landscape").hidden = false;
    landscape.show(await withEngine(() => lab.interpolateFromInit(25)));
  }
  return run.stopped ? "stopped" : "done";
}

async function main() {
  await init();
  $("version").textContent = version();
  const chart = new LossChart($("loss-chart"));
  const landscape = new LandscapeChart($("landscape-chart"));
  const view = new Landscape2dView((options) => withEngine(() => engine.lab.landscape2d(options)));
  const preferGpu = !new URLSearchParams(location.search).has("cpu");
  const trainButton = $("train");
  const stopButton = $("stop");
  let current = null;
  fillForm($("dataset-picker").value);
  $("dataset-picker").addEventListener("change", () => fillForm($("dataset-picker").value));
  const start = async () => {
    const run = { stopped: false };
    current = run;
    trainButton.disabled = true;
    stopButton.disabled = false;
    try {
      document.body.dataset.state = await train(chart, preferGpu, run, landscape, view);
    } catch (err) {
      showError(err);
    } finally {
      current = null;
      trainButton.disabled = false;
      stopButton.disabled = true;
    }
  };
  $("setup").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!current) start();
  });
  stopButton.addEventListener("click", () => {
    if (current) current.stopped = true;
  });
  await start();
}

main().catch(showError);
