// The lab page: pick one of the paper's presets (E1–E6, the deep E1, the edge of stability) or free play, pick a
// scale, and run it in a dedicated worker (worker.js, through the one client: client.js) while the figures fill
// in; at the end, the claims table and the report's SVG figures; export the results (JSON, CSV), the claims
// (Markdown), each figure (SVG, PNG) and each finished group's parameters (safetensors), or load a saved results
// file to see its report again. The main thread only draws: the engine, the data and the statistics all live
// in the worker.
//
// This file is the wiring: the address, the preset and the scale, the configuration panel and the plan, and
// the worker's messages handed to the views that draw them:
//   run-view.js        engine line, data download, progress with ETA, groups, live figures, pause/resume/stop
//   report-view.js     claims table, report figures, exports and import
//   recovery-view.js   the resume-or-discard offer after a reload, "Continue this run", the GPU fault notice
//   share-view.js      Copy link and the classroom share dialog
// The configuration panel (config-panel.js) edits the preset at its scale: every edit is one JSON merge patch,
// planned by the worker at once (the engine's refusal, naming the field, shows next to the panel) and kept in
// the address.
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
// Test hooks (read by tests/e2e/lab.test.mjs, lab-share.test.mjs and faults.test.mjs; the views list theirs):
// #lab[data-state] (the client's phase: loading|idle|starting|fetching|running|paused|done|stopped|failed|error),
// window.__labTest (?test-hooks), #plan-summary[data-jobs, data-models, data-error], body[data-mode="lab|free",
// data-hide], #config-fields[data-patch] with controls [data-path="dataset.train_size"|…], #config-error[data-error].
import { SCALES, composePatches, patchFor } from "./scales.js";
import { ConfigPanel, applyPatch } from "./config-panel.js";
import { parse, serialise } from "./url-state.js";
import { LabClient } from "./client.js";
import { $, showError } from "./dom.js";
import { RunView } from "./run-view.js";
import { ReportView } from "./report-view.js";
import { RecoveryView } from "./recovery-view.js";
import { wireSharing } from "./share-view.js";

/** ?test-hooks: a flag for the e2e tests only, taken out before url-state.js reads the rest. */
const query = new URLSearchParams(location.search);
const testHooks = query.has("test-hooks");
query.delete("test-hooks");
const address = parse(query.toString(), { scales: Object.keys(SCALES) });
const preferGpu = !address.state.cpu;
const FREE = "free-play";
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
  plan: { ok: false }, // whether the preset at its scale makes a valid experiment (the worker's last plan)
  run: null, // the run in progress or last finished: { id, scale, jobs, fraction, ... }
  saved: null, // what the export buttons save: { id, scale, json, csv, report }
  imported: null, // results JSON that "Continue this run" would finish
  fault: null, // after a GPU failure: { json } to continue from (null: start again)
  checkpoint: null, // the stored unfinished run offered on load (checkpoint.js)
};

let resumeOffered = false; // whether the stored unfinished run was looked for (once, when the first worker is ready)
const client = new LabClient({
  handlers: {
    ready: onReady,
    engine: onEngine,
    plan: showPlan,
    started: (msg) => {
      resetViews(msg.jobs, msg.config);
      run.onStarted(msg);
    },
    data: (msg) => run.onData(msg),
    events: (msg) => run.onEvents(msg),
    results: (msg) => {
      report.keepResults(msg);
      run.figures.update(msg.results);
      renderControls();
    },
    stored: (msg) => recovery.onStored(msg),
    paused: (msg) => run.onPaused(msg),
    resumed: () => run.onResumed(),
    finished: onFinished,
    stopped: onStopped,
    imported: onImported,
    "gpu-failed": (msg) => recovery.onGpuFailed(msg)
      .catch((e) => showError(`the GPU failure could not be shown: ${e.message}`)),
    params: (msg) => report.onParams(msg),
    error: onError,
  },
  onPhase: renderControls,
  onWorkerError: (e) => showError(`the lab's worker failed: ${e.message ?? "it could not be loaded"}`, { append: true }),
});
const lab = { state, client, startRun, restore };
const run = (lab.run = new RunView(lab));
const report = (lab.report = new ReportView(lab));
const recovery = new RecoveryView(lab);
const panel = new ConfigPanel($("config-fields"), $("config-error"), {
  onPatch: (patch) => {
    urlPatch = Object.keys(patch).length ? patch : undefined;
    setUrl();
    replan({ config: false });
  },
});

/** Shows the client's phase (#lab[data-state]) and enables the controls that make sense in it. */
function renderControls() {
  const phase = client.phase;
  $("lab").dataset.state = phase;
  const busy = client.busy;
  $("preset").disabled = busy;
  $("scale").disabled = busy;
  $("config-fieldset").disabled = busy || phase === "loading";
  run.renderControls(phase, state.plan.ok);
  report.renderControls(phase);
  recovery.renderControls(phase);
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

/** Shows a stored run's preset, scale and patch (before it resumes) and puts them in the address. */
function restore({ id, scale, patch }) {
  urlPatch = patch && Object.keys(patch).length ? patch : undefined;
  if (SCALES[scale]) {
    state.scaleFromUser = true;
    setScale(scale);
  }
  $("preset").value = id;
  pick(id);
  setUrl();
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
  state.plan.ok = false;
  const summary = $("plan-summary");
  summary.textContent = "Planning…";
  summary.dataset.error = "";
  let patch;
  try {
    patch = patchOf(state.id, state.scale);
  } catch (e) {
    client.cancelPlan(); // the answer to an earlier request no longer applies
    summary.textContent = e.message;
    summary.dataset.error = e.message;
    renderControls();
    return;
  }
  client.plan(state.id, patch);
  renderControls();
}

/** Clears the report and shows the groups `jobs` with the (empty) live figures of `config`. */
function resetViews(jobs, config) {
  report.clear();
  run.reset(jobs, config);
}

/** @param {import("./client.js").PlanMessage} msg the latest plan asked for (client.js drops older ones) */
function showPlan(msg) {
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
    if (!client.busy) {
      // A new preset or scale: show its groups and make its (empty) charts now, while nothing runs.
      state.run = null;
      resetViews(msg.jobs, msg.config);
      run.showNotStarted();
    }
  }
  renderControls();
}

/** @param {import("./client.js").EngineMessage} msg the engine runs will get; without a GPU the scale is quick */
function onEngine(msg) {
  state.engine = msg;
  run.showEngine(msg);
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

// --- a run -----------------------------------------------------------------------------------------------

/**
 * Starts a run of the preset at the scale, or continues saved results (`json`); `gpu` picks the engine
 * (default: the address's choice), `scale` names the scale a continued run was started at.
 */
function startRun({ json, gpu = preferGpu, scale: savedScale, group, storedDone } = {}) {
  if (client.busy) return;
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
  report.keep(null);
  report.setParamsJobs([]);
  recovery.hide();
  showError("");
  run.showStarting();
  // how the worker stores the run for a reload (worker.js); interpolations and finished runs it does not store
  const storeAs = { id, scale: state.run.scale, patch: state.run.patch };
  if (json) client.continueRun({ json, preferGpu: gpu, group, storeAs, storedDone });
  else client.run({ id, patch, preferGpu: gpu, storeAs });
}

/** The groups of the run in progress that finished in this page (their parameters can be exported). */
const finishedHere = (r) => r.jobs.filter((j) => r.finishedHere.includes(j.index));

/** @param {import("./client.js").FinishedMessage} msg */
function onFinished(msg) {
  run.markEnd();
  recovery.dropCheckpoint();
  const r = state.run;
  report.keep({ id: r.id, scale: r.scale, json: msg.json, csv: msg.csv, report: msg.report });
  report.setParamsJobs(finishedHere(r));
  run.showEnd(msg.fraction, "Done.", "The run is done: the claims report is below the figures.");
  if (msg.report) report.show(msg.report);
  else report.show(null, { note: `No report: ${msg.reportError}` });
}

/** @param {import("./client.js").StoppedMessage} msg */
function onStopped(msg) {
  run.markEnd();
  const r = state.run;
  report.keep({ id: r.id, scale: r.scale, json: msg.json, csv: msg.csv });
  report.setParamsJobs(finishedHere(r));
  const why = recovery.offerContinue(JSON.parse(msg.json), msg.json);
  run.showEnd(msg.fraction, "Stopped. The results of the finished groups can be saved (JSON, CSV)" +
    (why ? `; ${why}` : ", and this run continued (here, or later from the saved JSON)."), "Stopped.");
}

/** @param {import("./client.js").ImportedMessage} msg a saved results file: its groups, figures and report */
function onImported(msg) {
  const id = msg.results.config.id;
  if (state.presets.has(id) && id !== state.id) {
    state.id = id;
    $("preset").value = id;
    showPreset();
  }
  state.run = { id, scale: "saved", fraction: msg.results.jobs.length / msg.results.planned_jobs, jobs: msg.jobs,
    current: null, step: null, phase: "", t0: null, f0: 0, pausedAt: null, pausedMs: 0, diverged: 0 };
  resetViews(msg.jobs, msg.results.config);
  run.showDone(msg.results.jobs);
  report.keep({ id, scale: "saved", json: msg.json, csv: msg.csv, report: msg.report });
  report.setParamsJobs([]); // results files hold no parameters
  const blocked = recovery.offerContinue(msg.results, msg.json);
  run.figures.update(msg.results);
  run.renderProgress();
  $("progress-group").textContent = `Loaded ${msg.name}: ${msg.results.jobs.length} of ${msg.results.planned_jobs} groups.`;
  if (msg.report) report.show(msg.report, { note: `From the saved file ${msg.name} (nothing was rerun).` });
  else report.show(null, { note: blocked ? `${msg.reportError.replace(/: press Continue.*/, "")}; ${blocked}.` : msg.reportError });
}

/** @param {import("./client.js").ErrorMessage} msg */
function onError(msg) {
  showError(`${msg.context}: ${msg.message}`);
  if (msg.context === "engine") $("lab-engine").textContent = `The engine could not start: ${msg.message}`;
  if (msg.context === "run") {
    if (state.run?.t0 != null) run.markEnd();
    spawnWorker(); // its `ready` makes the page idle again, the error line stays
  }
}

// --- the worker ------------------------------------------------------------------------------------------

function spawnWorker() {
  client.spawn({ preferGpu, testHooks, storeCheckpoints: true });
}

/** @param {import("./client.js").ReadyMessage} msg the engine is loaded: the presets fill the menu */
function onReady(msg) {
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
  if (!resumeOffered) { // the first worker only (a respawned one keeps the page's state)
    resumeOffered = true;
    recovery.offerResume();
  }
}

// --- wiring ----------------------------------------------------------------------------------------------

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
wireSharing(addressOf, hidden);

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
  spawnWorker();
  if (testHooks) {
    window.__labTest = {
      destroyDevice: () => client.testDestroyDevice(),
      gpuError: () => client.testGpuError(),
    };
  }
}
