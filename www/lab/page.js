// The lab page: pick one of the paper's presets (E1–E6, the deep E1, the edge of stability) or free play, pick a
// scale, and run it in a dedicated worker (lab/worker.js) while the figures fill in; at the end, the claims table
// and the report's SVG figures; export the results (JSON, CSV), the claims (Markdown) and each figure (SVG), or
// load a saved results file to see its report again. The main thread only draws: the engine, the data and the
// statistics all live in the worker.
//
// The configuration panel (config-panel.js) edits the preset at its scale: every edit is one JSON merge patch,
// planned by the worker at once (the engine's refusal, naming the field, shows next to the panel) and kept in
// the address. "Copy link" copies the address; the share dialog builds a classroom link that hides controls.
// Each report figure downloads as SVG or as PNG (drawn at 2× into a canvas, for slides); the trained parameters
// of each finished group download as safetensors (the worker keeps the finished Experiment for that).
//
// URL (parsed and written by url-state.js, which names every parameter it cannot read and what is allowed):
//   ?preset=<id>|free-play   the preset (free play: the original one-model trainer, free/main.js, loaded when picked)
//   ?scale=quick|default     the scale (default: "default" with WebGPU, "quick" without)
//   ?cpu                     train on the CPU even where WebGPU exists
//   ?patch=<JSON object>     merge patch applied after the scale's (e.g. ?patch={"seeds":[1,2,3]}); the panel's
//                            edits live here; a value the engine refuses is named, never clamped
//   ?hide=<names>            comma-separated controls to hide: preset, scale, config, export, import, share,
//                            about (url-state.js HIDE_NAMES); the run still works
//   ?test-hooks              (tests only; read once, not kept in the address) window.__labTest.destroyDevice() and
//                            .gpuError() make the worker lose the run's GPU devices (device.destroy()) or raise
//                            a WebGPU validation error, to test the page's GPU-fault path
// Every change (preset, scale, panel edit) rewrites the address, so opening it reproduces the same run; a new
// preset picked on the page starts from its own values (the patch is cleared), a new scale keeps the patch.
//
// GPU faults: when the run's WebGPU device is lost (or a GPU step fails: a shader or pipeline error), the worker
// says why (gpu-failed); the page shows "The GPU device was lost: <reason>" (#gpu-fault), keeps the results of
// the finished groups (exports work) and offers to continue from them on a new GPU device or on the CPU; after a
// lost device the group in progress continues from its last stored checkpoint (#gpu-fault[data-group-step]).
// Reload mid-run: after every finished group the worker stores the run's results JSON, preset, scale and patch in
// IndexedDB (checkpoint.js: one entry, the latest unfinished run), and inside a group every 30 s a checkpoint of
// that group in the same entry (the worker writes, not this thread: up to ~32 MB each); it says so with `stored`.
// On load the page offers "Resume the unfinished run (k of n groups done)" or "Discard"; resuming continues a
// checkpointed group at its saved step; the page deletes the entry when the run finishes or is discarded.
//
// Test hooks (read by tests/e2e/lab.test.mjs, lab-share.test.mjs and faults.test.mjs): #lab[data-state="loading|
// idle|starting|fetching|running|paused|done|stopped|failed|error", data-run-start, data-run-end (performance.now()
// when Run was pressed, when the worker said finished, stopped or gpu-failed), data-checkpoint (the number of
// finished groups the stored checkpoint holds, once written), data-group-checkpoint ("job:step" of the last stored
// mid-group checkpoint)], #gpu-fault[data-lost="1|0"] with #continue-gpu and
// #continue-cpu, #resume-offer with #resume-run[data-done, data-planned, data-group-step="job:step"] and #discard-run, window.__labTest
// (?test-hooks), #live-figures[data-pending="0|1"],
// #lab-engine[data-kind="gpu|cpu"], #plan-summary[data-jobs, data-models, data-error], #progress-text[data-fraction],
// #jobs li[data-state] (its progress[data-first-step]: the step of the group's first progress in this run), .lab-figure[data-name, data-points, data-series], #claims tbody tr[data-verdict],
// #report-figures img, body[data-mode="lab|free", data-hide], #config-fields[data-patch] with controls
// [data-path="dataset.train_size"|…], #config-error[data-error], #share-url, .report-figure a.png-link,
// #params-job, #export-params.
import { LiveFigures } from "./figures.js";
import { SCALES, composePatches, patchFor } from "./scales.js";
import { ConfigPanel, applyPatch } from "./config-panel.js";
import { HIDE_LABELS, HIDE_NAMES, parse, serialise } from "./url-state.js";
import { clearCheckpoint, loadCheckpoint } from "./checkpoint.js";

const $ = (id) => document.getElementById(id);
/** ?test-hooks: a flag for the e2e tests only, taken out before url-state.js reads the rest. */
const query = new URLSearchParams(location.search);
const testHooks = query.has("test-hooks");
query.delete("test-hooks");
const address = parse(query.toString(), { scales: Object.keys(SCALES) });
const preferGpu = !address.state.cpu;
const FREE = "free-play";
const BUSY = new Set(["starting", "fetching", "running", "paused"]);
/** The merge patch of the address and the panel (?patch=…), or undefined when there is none. */
let urlPatch = address.state.patch && Object.keys(address.state.patch).length ? address.state.patch : undefined;
/** The controls the address hides (?hide=…). */
const hidden = address.state.hide;
document.body.dataset.hide = hidden.join(" ");
/** The merge patch of a preset at a scale, with the address's patch on top; throws naming what is unknown. */
const patchOf = (id, scale) => composePatches(patchFor(id, scale), urlPatch) ?? null;

const state = {
  presets: new Map(), // id → PresetInfo
  id: null,
  scale: null,
  scaleFromUser: address.state.scale !== null,
  engine: null,
  plan: { token: 0, ok: false },
  phase: "loading",
  run: null, // the run in progress or last finished: { id, scale, jobs, fraction, ... }
  saved: null, // what the export buttons save: { id, scale, json, csv, report }
  imported: null, // results JSON that "Continue this run" would finish
  fault: null, // after a GPU failure: { json } to continue from (null: start again)
  checkpoint: null, // the stored unfinished run offered on load (checkpoint.js)
};

let worker = null; // the lab's worker (spawnWorker)
let resumeOffered = false; // whether the stored unfinished run was looked for (once, when the first worker is ready)
const figures = new LiveFigures($("live-figures"));
const panel = new ConfigPanel($("config-fields"), $("config-error"), {
  onPatch: (patch) => {
    urlPatch = Object.keys(patch).length ? patch : undefined;
    setUrl();
    replan({ config: false });
  },
});
const blobUrls = [];

// --- small helpers ---------------------------------------------------------------------------------------

function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Draws a loaded SVG image into a canvas at twice its size and downloads it as PNG. */
async function downloadPng(img, name) {
  if (!img.complete || !img.naturalWidth) await img.decode();
  const canvas = Object.assign(document.createElement("canvas"), { width: img.naturalWidth * 2, height: img.naturalHeight * 2 });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // the SVG has no background of its own: slides get white, not transparent
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the canvas gave no PNG"))), "image/png"));
  download(name, blob, "image/png");
}

/** Shows `text` in the error line (or empties it); `append` keeps what it already says. */
function showError(text, { append = false } = {}) {
  const el = $("lab-error");
  const before = append && !el.hidden ? el.textContent : "";
  el.hidden = !text && !before;
  el.textContent = text ? `${before ? `${before} · ` : "Something went wrong: "}${text}` : before;
}

function setPhase(phase) {
  state.phase = phase;
  $("lab").dataset.state = phase;
  const busy = BUSY.has(phase);
  $("run").disabled = busy || !state.plan.ok || phase === "loading";
  $("pause").disabled = !(phase === "running" || phase === "paused" || phase === "fetching");
  $("stop-run").disabled = !busy;
  $("preset").disabled = busy;
  $("scale").disabled = busy;
  $("config-fieldset").disabled = busy || phase === "loading";
  $("import-file").disabled = busy || phase === "loading";
  $("continue").disabled = busy;
  const paused = phase === "paused";
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(paused));
  const saved = state.saved;
  $("export-json").disabled = !saved?.json;
  $("export-csv").disabled = !saved?.csv;
  $("export-md").disabled = !saved?.report;
  const jobs = saved?.paramsJobs ?? [];
  $("params-job").disabled = busy || !jobs.length;
  $("export-params").disabled = busy || !jobs.length;
}

/** Lists the groups whose trained parameters the worker can export (those finished in this session's run). */
function setParamsJobs(jobs) {
  if (state.saved) state.saved.paramsJobs = jobs;
  $("params-job").replaceChildren(...jobs.map((j) => Object.assign(document.createElement("option"),
    { value: String(j.index), textContent: `Group ${j.index + 1}: ${j.label}` })));
}

/** The address of the current configuration, hiding `hide` (url-state.js writes it). */
function addressOf(hide = hidden) {
  const query = serialise({ preset: state.id, scale: state.id === FREE ? null : state.scale, cpu: !preferGpu,
    patch: state.id === FREE ? null : urlPatch ?? null, hide });
  return `${location.origin}${location.pathname}${query}`;
}

function setUrl() {
  history.replaceState(null, "", `${addressOf().slice(location.origin.length)}${location.hash}`);
}

// --- picking a preset and a scale ------------------------------------------------------------------------

let freePlayLoaded = false;

function setMode(mode) {
  document.body.dataset.mode = mode;
  $("lab").hidden = mode !== "lab";
  $("free-play").hidden = mode !== "free";
  for (const el of document.querySelectorAll(".lab-only")) el.hidden = mode !== "lab";
  if (mode === "free" && !freePlayLoaded) {
    freePlayLoaded = true;
    import("../free/main.js").catch((e) => showError(e.message));
  }
  // Leaving free play stops its run (it trains on this thread).
  if (mode === "lab" && freePlayLoaded && !$("stop").disabled) $("stop").click();
}

/** Splits a preset's description into what it does and the "Look for …" sentences. */
function splitDescription(text) {
  const sentences = text.split(/(?<=\.)\s+(?=[A-Z])/);
  const look = sentences.filter((s) => s.startsWith("Look for"));
  return { what: sentences.filter((s) => !s.startsWith("Look for")).join(" "), look: look.join(" ") };
}

function showPreset() {
  const p = state.presets.get(state.id);
  if (!p) return;
  const { what, look } = splitDescription(p.description);
  $("preset-title").textContent = p.title;
  $("preset-description").textContent = what;
  $("preset-look").textContent = look ? `What to look for: ${look.replace(/^Look for /, "")}` : "";
  $("preset-claim").textContent = p.claim;
}

function pick(id, { fromUser = false } = {}) {
  state.id = id;
  if (fromUser) {
    urlPatch = undefined; // another preset starts from its own values
    setUrl();
  }
  if (id === FREE) {
    setMode("free");
    return;
  }
  setMode("lab");
  showPreset();
  replan();
}

function setScale(scale) {
  state.scale = scale;
  $("scale").value = scale;
  $("scale-hint").textContent = SCALES[scale].hint;
}

/** Shows the preset at its scale in the configuration panel, with the address's patch on top. */
function showConfig() {
  const p = state.presets.get(state.id);
  if (!p) return;
  let base;
  try {
    base = applyPatch(JSON.parse(p.json), patchFor(state.id, state.scale) ?? {});
  } catch (e) {
    panel.showEngineError(e.message);
    return;
  }
  panel.show(base, urlPatch ?? {});
}

/** Asks the worker to plan the preset at the scale (a config error shows here, before any run). */
function replan({ config = true } = {}) {
  if (!state.presets.has(state.id)) return;
  if (config) showConfig();
  const token = ++state.plan.token;
  state.plan.ok = false;
  const summary = $("plan-summary");
  summary.textContent = "Planning…";
  summary.dataset.error = "";
  let patch;
  try {
    patch = patchOf(state.id, state.scale);
  } catch (e) {
    summary.textContent = e.message;
    summary.dataset.error = e.message;
    setPhase(state.phase);
    return;
  }
  worker.postMessage({ type: "plan", id: state.id, patch, token });
  setPhase(state.phase);
}

function showPlan(msg) {
  if (msg.token !== state.plan.token) return; // an older request
  const summary = $("plan-summary");
  panel.showEngineError(msg.error ?? "");
  if (msg.error) {
    summary.textContent = `This configuration does not make a valid experiment: ${msg.error}`;
    summary.dataset.error = msg.error;
    summary.classList.add("error-text");
    state.plan.ok = false;
  } else {
    const models = msg.jobs.reduce((a, j) => a + j.models, 0);
    const steps = Math.max(...msg.jobs.map((j) => j.steps));
    const data = msg.needed.length
      ? ` · data: ${msg.needed.join(", ")} (downloaded once, then cached)` : " · synthetic data";
    summary.textContent = `${msg.jobs.length} group${msg.jobs.length === 1 ? "" : "s"} · ${models} models · ` +
      `up to ${steps} steps each${data}${urlPatch !== undefined ? " · with your changes" : ""}`;
    Object.assign(summary.dataset, { jobs: String(msg.jobs.length), models: String(models), error: "" });
    summary.classList.remove("error-text");
    state.plan.ok = true;
    if (!BUSY.has(state.phase)) {
      // A new preset or scale: show its groups and make its (empty) charts now, while nothing runs.
      state.run = null;
      resetRunView(msg.jobs, msg.config);
      $("lab-progress").value = 0;
      $("progress-text").dataset.fraction = "0";
      $("progress-text").textContent = "Not started.";
      $("progress-group").textContent = "";
    }
  }
  setPhase(state.phase);
}

// --- a run -----------------------------------------------------------------------------------------------

function resetRunView(jobs, config) {
  $("report").hidden = true;
  $("report-note").hidden = true;
  $("claims").tBodies[0].replaceChildren();
  for (const url of blobUrls.splice(0)) URL.revokeObjectURL(url);
  $("report-figures").replaceChildren();
  $("lab-data").hidden = true;
  const list = $("jobs");
  list.replaceChildren(...jobs.map((j) => {
    const li = document.createElement("li");
    li.dataset.state = "waiting";
    li.dataset.job = String(j.index);
    const label = Object.assign(document.createElement("span"), { className: "job-label", textContent: j.label });
    const bar = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    bar.setAttribute("aria-label", `Group ${j.index + 1}: ${j.label}`);
    const meta = Object.assign(document.createElement("span"), { className: "job-meta muted",
      textContent: `${j.models} models · ${j.steps} steps` });
    li.append(label, bar, meta);
    return li;
  }));
  figures.prepare(config);
}

/**
 * Starts a run of the preset at the scale, or continues saved results (`json`); `gpu` picks the engine
 * (default: the address's choice), `scale` names the scale a continued run was started at.
 */
function startRun({ json, gpu = preferGpu, scale: savedScale, group, storedDone } = {}) {
  if (BUSY.has(state.phase)) return;
  const id = state.id;
  const scale = state.scale;
  let patch = null;
  if (!json) {
    try {
      patch = patchOf(id, scale);
    } catch (e) {
      showError(e.message);
      return;
    }
  }
  state.run = { id, scale: json ? savedScale ?? "saved" : scale, patch: urlPatch ?? null, fraction: 0, jobs: [],
    current: null, step: null, phase: "", t0: null, f0: 0, pausedAt: null, pausedMs: 0, diverged: 0, finishedHere: [] };
  state.saved = null;
  setParamsJobs([]);
  state.imported = null;
  $("continue").hidden = true;
  $("gpu-fault").hidden = true;
  $("resume-offer").hidden = true;
  state.fault = null;
  showError("");
  $("lab").dataset.runStart = String(performance.now());
  delete $("lab").dataset.runEnd;
  setPhase("starting");
  $("progress-text").textContent = "Starting…";
  $("progress-group").textContent = "";
  $("lab-progress").value = 0;
  $("progress-text").dataset.fraction = "0";
  // how the worker stores the run for a reload (worker.js); interpolations and finished runs it does not store
  const storeAs = { id, scale: state.run.scale, patch: state.run.patch };
  worker.postMessage(json ? { type: "continue", json, preferGpu: gpu, group, storeAs, storedDone }
    : { type: "run", id, patch, preferGpu: gpu, storeAs });
}

function showEngine({ backend, onGpu, fallbackReason }) {
  const el = $("lab-engine");
  el.dataset.kind = onGpu ? "gpu" : "cpu";
  el.textContent = onGpu ? backend : `CPU fallback — ${backend}`;
  if (!onGpu) {
    const why = Object.assign(document.createElement("span"), { className: "why", textContent: `Why: ${fallbackReason}` });
    el.append(why);
  }
}

function onEngine(msg) {
  state.engine = msg;
  showEngine(msg);
  const notice = $("lab-notice");
  if (!msg.onGpu) {
    notice.hidden = false;
    notice.textContent = preferGpu
      ? "No WebGPU here: the lab trains on the CPU, several times slower than a GPU, so the scale starts at quick."
      : "The GPU is off (?cpu in the address): the lab trains on the CPU, so the scale starts at quick.";
    if (!state.scaleFromUser && state.scale !== "quick") {
      setScale("quick");
      if (state.id !== FREE) {
        setUrl();
        replan();
      }
    }
  } else {
    notice.hidden = true;
  }
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderProgress();
  });
}

function renderProgress() {
  const r = state.run;
  if (!r) return;
  const f = r.fraction;
  $("lab-progress").value = f;
  $("progress-text").dataset.fraction = String(f);
  const pct = `${(100 * f).toFixed(f < 0.1 ? 1 : 0)} %`;
  let text = pct;
  if (r.t0 != null) {
    const now = r.pausedAt ?? performance.now();
    const active = (now - r.t0 - r.pausedMs) / 1000;
    const done = f - r.f0;
    text += ` · ${clock(active)} elapsed`;
    if (state.phase === "running" && done > 0.01 && f < 1) text += ` · about ${clock((active * (1 - f)) / done)} left`;
  }
  if (state.phase === "paused") text += " · paused";
  $("progress-text").textContent = text;
  if (!BUSY.has(state.phase)) return; // done or stopped: the line under the bar says so
  const job = r.jobs[r.current];
  let group = "";
  if (r.phase === "interpolating") group = "Interpolating between the minima…";
  else if (job) {
    group = `Group ${job.index + 1} of ${r.jobs.length}: ${job.label} (${job.models} models)`;
    if (r.phase === "measuring") group += " — measuring λ_max";
    else if (r.step) group += ` — step ${r.step[0]} of ${r.step[1]}`;
  }
  if (r.diverged) group += ` · ${r.diverged} model${r.diverged === 1 ? "" : "s"} diverged`;
  $("progress-group").textContent = group;
}

function onEvents(msg) {
  const r = state.run;
  if (!r) return;
  if (r.t0 == null) {
    r.t0 = performance.now();
    r.f0 = msg.fraction;
  }
  r.fraction = msg.fraction;
  for (const e of msg.events) {
    const li = (j) => $("jobs").querySelector(`li[data-job="${j}"]`);
    if (e.type === "job_started") {
      r.current = e.job;
      r.phase = "training";
      r.step = [0, e.steps];
      li(e.job)?.setAttribute("data-state", "running");
      $("progress-announce").textContent = `Group ${e.job + 1} of ${r.jobs.length}: ${e.label}`;
    } else if (e.type === "progress") {
      r.step = [e.step, e.steps];
      const bar = li(e.job)?.querySelector("progress");
      if (bar) bar.value = e.step / e.steps;
      if (bar && bar.dataset.firstStep === undefined) bar.dataset.firstStep = String(e.step); // a resumed group's: its saved step
    } else if (e.type === "measuring") {
      r.phase = "measuring";
    } else if (e.type === "diverged") {
      r.diverged += 1;
    } else if (e.type === "job_finished") {
      r.finishedHere.push(e.job);
      const el = li(e.job);
      if (el) {
        el.dataset.state = "done";
        el.querySelector("progress").value = 1;
        el.querySelector(".job-meta").textContent += ` · ${e.seconds.toFixed(1)} s`;
      }
    } else if (e.type === "interpolated") {
      r.phase = "interpolating";
    }
  }
  scheduleRender();
}

function onResults(msg) {
  state.saved = { ...state.saved, id: msg.results.config.id, scale: state.run?.scale, json: msg.json, csv: msg.csv };
  figures.update(msg.results);
  setPhase(state.phase);
}

/**
 * A checkpoint the worker stored (it writes them itself, worker.js: a group checkpoint is up to ~32 MB, too much
 * for this thread): after `done` finished groups, or inside group `job` at `step`; or why it could not.
 */
function onStored(msg) {
  if (msg.error) {
    showError(msg.error, { append: true });
    return;
  }
  if (msg.job === undefined) $("lab").dataset.checkpoint = String(msg.done);
  else $("lab").dataset.groupCheckpoint = `${msg.job}:${msg.step}`;
}

/** Deletes the stored checkpoint (the run finished, or the user discarded it); a failure is shown, not hidden. */
function dropCheckpoint() {
  delete $("lab").dataset.checkpoint;
  clearCheckpoint().catch((e) => showError(`the saved unfinished run could not be deleted (IndexedDB: ${e.message})`, { append: true }));
}

/** On load: offers to resume the unfinished run stored by an earlier page (or to discard it). */
async function offerResume() {
  let entry;
  try {
    entry = await loadCheckpoint();
  } catch (e) {
    showError(`an unfinished run saved in this browser could not be read (IndexedDB: ${e.message})`, { append: true });
    return;
  }
  if (!entry || !state.presets.has(entry.id)) return;
  state.checkpoint = entry;
  const title = state.presets.get(entry.id).title;
  const when = new Date(entry.savedAt).toLocaleString();
  $("resume-text").textContent = `An unfinished run of ${title} (${entry.scale} scale) was saved in this browser on ` +
    `${when}: ${entry.done} of its ${entry.planned} groups are done. Resuming runs only the missing groups` +
    (entry.group ? `; group ${entry.groupJob + 1} continues at step ${entry.groupStep} of ${entry.groupSteps}.` : ".");
  const button = $("resume-run");
  button.textContent = `Resume the unfinished run (${entry.done} of ${entry.planned} groups done)`;
  Object.assign(button.dataset, { done: String(entry.done), planned: String(entry.planned) });
  if (entry.group) button.dataset.groupStep = `${entry.groupJob}:${entry.groupStep}`;
  else delete button.dataset.groupStep;
  $("resume-offer").hidden = false;
}

function showReport(report, { note = "" } = {}) {
  $("report").hidden = false;
  $("report-note").hidden = !note;
  $("report-note").textContent = note;
  if (!report) {
    $("claims").tBodies[0].replaceChildren();
    $("report-scale").textContent = "";
    return;
  }
  $("report-title").textContent = `Claims report · ${report.title}`;
  $("report-scale").textContent = report.scale;
  const body = $("claims").tBodies[0];
  body.replaceChildren(...report.claims.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.verdict = c.verdict;
    for (const text of [c.statement, c.statistic, c.value]) tr.insertCell().textContent = text;
    const v = tr.insertCell();
    v.className = `verdict verdict-${c.verdict}`;
    v.textContent = { holds: "holds", does_not_hold: "does not hold", inconclusive: "inconclusive" }[c.verdict] ?? c.verdict;
    return tr;
  }));
  $("caveats").replaceChildren(...report.caveats.map((c) => Object.assign(document.createElement("li"), { textContent: c })));
  $("tables").textContent = report.tables.join("\n\n");
  for (const url of blobUrls.splice(0)) URL.revokeObjectURL(url);
  const id = report.id;
  $("report-figures").replaceChildren(...report.figures.map((f) => {
    // The SVG comes from our own Rust code (plotters); shown as an image, it cannot run anything anyway.
    const url = URL.createObjectURL(new Blob([f.svg], { type: "image/svg+xml" }));
    blobUrls.push(url);
    const fig = document.createElement("figure");
    fig.className = "report-figure";
    fig.dataset.name = f.name;
    const img = Object.assign(document.createElement("img"), { src: url, alt: f.title, decoding: "async" });
    const cap = document.createElement("figcaption");
    const link = Object.assign(document.createElement("a"), { href: url, download: `${id}-${f.name}.svg`, textContent: "SVG" });
    link.setAttribute("aria-label", `Download the figure “${f.title}” as SVG`);
    const png = Object.assign(document.createElement("a"), { href: "#", className: "png-link", textContent: "PNG" });
    png.setAttribute("role", "button");
    png.setAttribute("aria-label", `Download the figure “${f.title}” as PNG (twice the size, for slides)`);
    png.addEventListener("click", (e) => {
      e.preventDefault();
      downloadPng(img, `${id}-${f.name}.png`).catch((err) => showError(`PNG of ${f.name}: ${err.message}`));
    });
    const links = Object.assign(document.createElement("span"), { className: "fig-downloads hide-as-export" });
    links.append(link, png);
    cap.append(`${f.title} · `, links);
    fig.append(img, cap);
    return fig;
  }));
}

function onFinished(msg) {
  $("lab").dataset.runEnd = String(performance.now());
  dropCheckpoint();
  const r = state.run;
  r.fraction = msg.fraction;
  state.saved = { id: r.id, scale: r.scale, json: msg.json, csv: msg.csv, report: msg.report };
  setParamsJobs(r.jobs.filter((j) => r.finishedHere.includes(j.index)));
  setPhase("done");
  renderProgress();
  $("progress-group").textContent = "Done.";
  $("progress-announce").textContent = "The run is done: the claims report is below the figures.";
  if (msg.report) showReport(msg.report);
  else showReport(null, { note: `No report: ${msg.reportError}` });
}

function onStopped(msg) {
  $("lab").dataset.runEnd = String(performance.now());
  const r = state.run;
  r.fraction = msg.fraction;
  state.saved = { id: r.id, scale: r.scale, json: msg.json, csv: msg.csv };
  setParamsJobs(r.jobs.filter((j) => r.finishedHere.includes(j.index)));
  setPhase("stopped");
  renderProgress();
  const results = JSON.parse(msg.json);
  const why = offerContinue(results, msg.json);
  $("progress-group").textContent = "Stopped. The results of the finished groups can be saved (JSON, CSV)" +
    (why ? `; ${why}` : ", and this run continued (here, or later from the saved JSON).");
  $("progress-announce").textContent = "Stopped.";
}

/**
 * Shows "Continue this run" for results that miss groups, unless they cannot be continued: the interpolation
 * presets need the final parameters of their finished groups, which results files do not hold. Returns why not.
 */
function offerContinue(results, json) {
  const missing = results.jobs.length < results.planned_jobs;
  const blocked = missing && results.config.experiment.kind === "interpolation" && results.jobs.length > 0
    ? "an interpolation preset cannot continue from saved results (they do not hold the minima's parameters): run it again"
    : "";
  state.imported = missing && !blocked ? json : null;
  $("continue").hidden = !state.imported;
  return blocked;
}

/**
 * The checkpoint of the group in progress that the worker stored (checkpoint.js), if it continues `results`
 * (the same plan and finished groups): {bytes, job, step, steps, done}, or null.
 */
async function storedGroupOf(results) {
  const entry = await loadCheckpoint().catch(() => null);
  if (!entry?.group) return null;
  const stored = JSON.parse(entry.json);
  if (stored.jobs.length !== results.jobs.length || JSON.stringify(stored.config) !== JSON.stringify(results.config)) return null;
  return { bytes: entry.group, job: entry.groupJob, step: entry.groupStep, steps: entry.groupSteps, done: entry.done };
}

/**
 * A GPU run that cannot go on (its device was lost, or a GPU step failed): say so plainly, keep the results of
 * the finished groups for export, and offer to continue from them on a new GPU device or on the CPU. After a
 * lost device the group in progress continues from its last checkpoint (read back before the loss, so as
 * trustworthy as the finished groups); after a GPU error it starts again, since the error may predate that
 * checkpoint.
 */
async function onGpuFailed(msg) {
  const r = state.run;
  const json = msg.json ?? state.saved?.json ?? null;
  const results = json ? JSON.parse(json) : null;
  const resumable = results && results.config.experiment.kind !== "interpolation";
  const group = msg.lost && resumable ? await storedGroupOf(results) : null;
  $("lab").dataset.runEnd = String(performance.now());
  if (msg.json) state.saved = { id: r.id, scale: r.scale, json: msg.json, csv: msg.csv };
  setParamsJobs([]); // the failed run's Experiment is gone with its device
  const li = r.current != null ? $("jobs").querySelector(`li[data-job="${r.current}"]`) : null;
  if (li && li.dataset.state === "running") li.dataset.state = "failed";
  const done = results?.jobs.length ?? 0;
  const blocked = results && done > 0 && results.config.experiment.kind === "interpolation";
  state.fault = { json: (done > 0 || group) && !blocked ? json : null, group };
  const sentence = (text) => `${String(text).replace(/[\s.]+$/, "")}.`; // the engine's text may end in ".\n."
  const what = msg.lost ? `The GPU device was lost: ${sentence(msg.lost)}` : `The GPU failed: ${sentence(msg.message)}`;
  $("gpu-fault-text").textContent = what;
  $("gpu-fault").dataset.lost = msg.lost ? "1" : "0";
  const again = !state.fault.json;
  const where = group ? `group ${group.job + 1} continues at step ${group.step} of ${group.steps}, its last checkpoint` : "";
  if (group) $("gpu-fault").dataset.groupStep = `${group.job}:${group.step}`;
  else delete $("gpu-fault").dataset.groupStep;
  $("gpu-fault-help").textContent = done === 0
    ? (group ? `No group had finished, but group ${group.job + 1} was saved at step ${group.step} of ${group.steps}: ` +
        "continue from there on a new GPU device or on the CPU."
      : "No group had finished, so there is nothing to keep: the run can start again on a new GPU device or on the CPU.")
    : `The results of the ${done} finished group${done === 1 ? "" : "s"} (of ${results.planned_jobs}) are kept: save them ` +
      "with the export buttons, or " + (blocked
        ? "run the preset again (an interpolation preset cannot continue from saved results)."
        : `continue the run from them on a new GPU device or on the CPU (the finished groups are not rerun${group ? `; ${where}` : ""}).`);
  $("continue-gpu").textContent = again ? "Run again on a new GPU device" : "Continue on a new GPU device";
  $("continue-cpu").textContent = again ? "Run again on the CPU" : "Continue on the CPU";
  $("gpu-fault").hidden = false;
  setPhase("failed");
  renderProgress();
  $("progress-group").textContent = what;
  $("progress-announce").textContent = what;
}

function onImported(msg) {
  const id = msg.results.config.id;
  if (state.presets.has(id) && id !== state.id) {
    state.id = id;
    $("preset").value = id;
    showPreset();
  }
  state.run = { id, scale: "saved", fraction: msg.results.jobs.length / msg.results.planned_jobs, jobs: msg.jobs,
    current: null, step: null, phase: "", t0: null, f0: 0, pausedAt: null, pausedMs: 0, diverged: 0 };
  resetRunView(msg.jobs, msg.results.config);
  for (const j of msg.results.jobs) {
    const li = $("jobs").querySelector(`li[data-job="${j.job}"]`);
    if (li) {
      li.dataset.state = "done";
      li.querySelector("progress").value = 1;
    }
  }
  state.saved = { id, scale: "saved", json: msg.json, csv: msg.csv, report: msg.report };
  setParamsJobs([]); // results files hold no parameters
  const blocked = offerContinue(msg.results, msg.json);
  figures.update(msg.results);
  setPhase("done");
  renderProgress();
  $("progress-group").textContent = `Loaded ${msg.name}: ${msg.results.jobs.length} of ${msg.results.planned_jobs} groups.`;
  if (msg.report) showReport(msg.report, { note: `From the saved file ${msg.name} (nothing was rerun).` });
  else showReport(null, { note: blocked ? `${msg.reportError.replace(/: press Continue.*/, "")}; ${blocked}.` : msg.reportError });
}

// --- wiring ----------------------------------------------------------------------------------------------

/**
 * Starts the worker (again, after a failed run: a panic in the engine leaves its wasm instance unusable, and a
 * fresh worker costs a second). It answers with `ready` (the presets), then `engine` (the probe).
 */
function spawnWorker() {
  worker?.terminate();
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => onMessage(data);
  worker.onerror = (e) => {
    showError(`the lab's worker failed: ${e.message ?? "it could not be loaded"}`, { append: true });
    setPhase("error");
  };
  worker.postMessage({ type: "init", preferGpu, testHooks, storeCheckpoints: true });
}

function onMessage(msg) {
  switch (msg.type) {
    case "ready": {
      $("version").textContent = msg.version;
      const paper = $("paper-presets");
      const other = $("other-presets");
      paper.replaceChildren();
      other.replaceChildren();
      for (const p of msg.presets) {
        state.presets.set(p.id, p);
        const option = Object.assign(document.createElement("option"), { value: p.id, textContent: p.title });
        (/^e\d/.test(p.id) ? paper : other).append(option);
      }
      const wanted = address.state.preset;
      if (state.id === FREE) {
        $("preset").value = FREE;
      } else if (state.presets.has(state.id)) { // a new worker after a failed run: keep the choice
        $("preset").value = state.id;
        replan();
      } else {
        if (wanted && wanted !== FREE && !state.presets.has(wanted)) {
          showError(`the address asks for preset '${wanted}', which does not exist; the presets are ${[...state.presets.keys()].join(", ")}, ${FREE}`, { append: true });
        }
        const id = state.presets.has(wanted) ? wanted : msg.presets[0].id;
        $("preset").value = id;
        pick(id);
      }
      setPhase("idle");
      if (!resumeOffered) { // the first worker only (a respawned one keeps the page's state)
        resumeOffered = true;
        offerResume();
      }
      break;
    }
    case "engine":
      onEngine(msg);
      break;
    case "plan":
      showPlan(msg);
      break;
    case "started":
      state.run.jobs = msg.jobs;
      state.run.fraction = msg.fraction;
      resetRunView(msg.jobs, msg.config);
      showEngine(msg);
      setPhase("fetching");
      $("progress-text").textContent = msg.needed.length ? "Loading the data…" : "Starting…";
      break;
    case "data": {
      const box = $("lab-data");
      box.hidden = false;
      box.dataset.source = msg.source;
      $("lab-data-progress").max = msg.total || 1;
      $("lab-data-progress").value = msg.received;
      $("lab-data-text").textContent = msg.text;
      if (msg.ready && state.phase === "fetching") setPhase("running");
      break;
    }
    case "events":
      if (state.phase === "fetching") setPhase("running");
      onEvents(msg);
      break;
    case "results":
      onResults(msg);
      break;
    case "stored":
      onStored(msg);
      break;
    case "paused":
      state.run.fraction = msg.fraction;
      state.run.pausedAt = performance.now();
      setPhase("paused");
      renderProgress();
      $("progress-announce").textContent = "Paused.";
      break;
    case "resumed":
      if (state.run.pausedAt != null && state.run.t0 != null) state.run.pausedMs += performance.now() - state.run.pausedAt;
      state.run.pausedAt = null;
      setPhase("running");
      renderProgress();
      $("progress-announce").textContent = "Running again.";
      break;
    case "finished":
      onFinished(msg);
      break;
    case "stopped":
      onStopped(msg);
      break;
    case "imported":
      onImported(msg);
      break;
    case "gpu-failed":
      onGpuFailed(msg).catch((e) => showError(`the GPU failure could not be shown: ${e.message}`));
      break;
    case "params":
      download(`${state.saved?.id ?? "sgd-lab"}-group-${msg.job + 1}-params.safetensors`, msg.bytes, "application/octet-stream");
      $("copy-status").textContent = "";
      break;
    case "error":
      showError(`${msg.context}: ${msg.message}`);
      if (msg.context === "init") setPhase("error");
      if (msg.context === "engine") $("lab-engine").textContent = `The engine could not start: ${msg.message}`;
      if (msg.context === "import") setPhase(state.phase === "loading" ? "loading" : "idle");
      if (msg.context === "run") {
        if (state.run?.t0 != null) $("lab").dataset.runEnd = String(performance.now());
        setPhase("loading");
        spawnWorker(); // its `ready` makes the page idle again, the error line stays
      }
      break;
    default:
      console.warn("lab: unknown message from the worker", msg);
  }
}

$("preset").addEventListener("change", () => pick($("preset").value, { fromUser: true }));
$("config-reset").addEventListener("click", () => {
  urlPatch = undefined;
  setUrl();
  replan();
});
$("scale").addEventListener("change", () => {
  state.scaleFromUser = true;
  setScale($("scale").value);
  setUrl();
  replan();
});
$("lab-form").addEventListener("submit", (e) => {
  e.preventDefault();
  // Enter in a field of the panel commits that field (its change event), it does not start a run.
  if (!e.submitter && $("config-panel").contains(document.activeElement)) return;
  startRun();
});
$("pause").addEventListener("click", () => {
  if (state.phase === "paused") {
    worker.postMessage({ type: "resume" });
  } else {
    worker.postMessage({ type: "pause" });
    $("pause").textContent = "Pausing…";
  }
});
$("stop-run").addEventListener("click", () => {
  worker.postMessage({ type: "stop" });
  $("progress-group").textContent = "Stopping after the current step…";
});
$("continue").addEventListener("click", () => {
  if (state.imported) startRun({ json: state.imported });
});
for (const [button, gpu] of [["continue-gpu", true], ["continue-cpu", false]]) {
  $(button).addEventListener("click", () => {
    const json = state.fault?.json;
    const scale = state.run?.scale;
    const group = state.fault?.group;
    startRun(json ? { json, gpu, scale, group: group?.bytes, storedDone: group?.done } : { gpu });
  });
}
$("resume-run").addEventListener("click", () => {
  const entry = state.checkpoint;
  if (!entry || BUSY.has(state.phase)) return;
  state.checkpoint = null;
  urlPatch = entry.patch && Object.keys(entry.patch).length ? entry.patch : undefined;
  if (SCALES[entry.scale]) {
    state.scaleFromUser = true;
    setScale(entry.scale);
  }
  $("preset").value = entry.id;
  pick(entry.id);
  setUrl();
  startRun({ json: entry.json, scale: entry.scale, group: entry.group, storedDone: entry.done });
});
$("discard-run").addEventListener("click", () => {
  state.checkpoint = null;
  $("resume-offer").hidden = true;
  dropCheckpoint();
});
$("export-json").addEventListener("click", () => {
  const s = state.saved;
  download(`${s.id}-${s.scale}-results.json`, s.json, "application/json");
});
$("export-csv").addEventListener("click", () => {
  const s = state.saved;
  download(`${s.id}-${s.scale}-results.csv`, s.csv, "text/csv");
});
$("export-md").addEventListener("click", () => {
  const s = state.saved;
  download(`${s.id}-${s.scale}-claims.md`, s.report.markdown, "text/markdown");
});
$("export-params").addEventListener("click", () => {
  worker.postMessage({ type: "params", job: Number($("params-job").value) });
});
$("import-file").addEventListener("change", async () => {
  const file = $("import-file").files[0];
  if (!file) return;
  showError("");
  worker.postMessage({ type: "import", json: await file.text(), name: file.name });
  $("import-file").value = "";
});

// --- sharing: copy the address, or build a classroom link that hides controls ----------------------------

/** Copies `text` (the Clipboard API where allowed; else the text stays selected in `input` for Ctrl+C). */
async function copy(text, status, input = null) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    input?.select();
    status.textContent = input ? "Copying is not allowed here: the link is selected, press Ctrl+C (⌘C)." : `Copy this link: ${text}`;
  }
}

{
  const box = $("share-hide");
  for (const name of HIDE_NAMES) {
    const input = Object.assign(document.createElement("input"), { type: "checkbox", value: name, id: `share-hide-${name}` });
    const label = Object.assign(document.createElement("label"), { htmlFor: input.id });
    label.append(input, ` ${name}: ${HIDE_LABELS[name]}`);
    box.append(label);
  }
  const chosen = () => [...box.querySelectorAll("input:checked")].map((i) => i.value);
  const refresh = () => {
    $("share-url").value = addressOf(chosen());
    $("share-status").textContent = "";
  };
  box.addEventListener("change", refresh);
  $("share-open").addEventListener("click", () => {
    for (const input of box.querySelectorAll("input")) input.checked = hidden.includes(input.value);
    refresh();
    $("share-dialog").showModal(); // a modal <dialog>: focus moves in, Escape closes it, focus returns
  });
  $("share-close").addEventListener("click", () => $("share-dialog").close());
  $("share-copy").addEventListener("click", () => copy($("share-url").value, $("share-status"), $("share-url")));
  $("copy-link").addEventListener("click", () => copy(addressOf(), $("copy-status")));
}

// Start: what the address could not say, the scale (quick where there is no WebGPU), the mode, then the worker.
{
  const asked = address.state.scale;
  for (const e of address.errors) showError(`the address's ${e.message}`, { append: true });
  setScale(asked ?? (preferGpu && "gpu" in navigator ? "default" : "quick"));
  if (!("gpu" in navigator) || !preferGpu) onEngine({ backend: "CPU (f32)", onGpu: false,
    fallbackReason: preferGpu ? "this browser offers no WebGPU (navigator.gpu)" : "?cpu in the address" });
  $("lab-engine").dataset.kind = "";
  $("lab-engine").textContent = "Starting the engine…";
  if (address.state.preset === FREE) {
    state.id = FREE;
    $("preset").value = FREE;
    setMode("free");
  } else {
    setMode("lab");
  }
  setPhase("loading");
  spawnWorker();
  if (testHooks) {
    window.__labTest = {
      destroyDevice: () => worker.postMessage({ type: "test-destroy-device" }),
      gpuError: () => worker.postMessage({ type: "test-gpu-error" }),
    };
  }
}
