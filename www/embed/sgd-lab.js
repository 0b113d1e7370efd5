// <sgd-lab>: one live figure of one of the paper's presets, embeddable in any page (course notes, a blog, a
// slide deck) with one module script tag. Why a custom element: the host page needs no code, no build step and
// no framework; the element brings its own worker (www/lab/worker.js, through the lab page's client,
// www/lab/client.js, which also starts it cross-origin), its own chart
// (one LiveFigure of www/lab/figures.js) and its own styles (in an open shadow root, so the host's CSS and ours
// do not mix).
//
//   <script type="module" src="https://your.host/sgd-lab/embed/sgd-lab.js"></script>
//   <sgd-lab preset="e1-ratio-sweep" scale="quick" figure="lambda-max-vs-ratio" controls="run,pause"
//            patch='{"seeds":[1]}' cpu></sgd-lab>
//
// Attributes (read when the element is connected; changing one later restarts it):
//   preset    a preset id (the lab's menu: e1-ratio-sweep, …)                          required
//   figure    one of that preset's live figures (figureNames of its kind)              default: its first
//   scale     quick | default (www/lab/scales.js)                                       default: quick
//   controls  comma-separated: run, pause (an empty value hides the bar's buttons)      default: run,pause
//   patch     a JSON merge patch applied after the scale's (RFC 7396)                   default: none
//   cpu       present: train on the CPU even where WebGPU exists
// A bad value is shown inside the element, naming the attribute and the allowed values; nothing is thrown into
// the host page. Every URL (the worker, the wasm, the data sets, the chart library and the styles) is resolved
// from this module's own URL (import.meta.url), so www/ can live at any path of any static host. A page on
// another origin than the module needs that host to send CORS headers (module scripts and workers are fetched
// in CORS mode); the worker is then started from a tiny blob: module that imports worker.js, because browsers
// only start a worker from a same-origin URL (the host page's CSP must allow worker-src blob: then).
//
// The run pauses while the element is scrolled off screen (IntersectionObserver → the worker's "pause") and
// resumes when it is visible again, if it was running then; a run the reader paused stays paused.
//
// Test hooks (read by tests/e2e/embed.test.mjs) on the host element: data-state="loading|idle|starting|running|
// paused|done|error" (the client's phase, mapped by STATE_OF_PHASE), data-fraction (0…1, the worker's),
// data-engine="gpu|cpu", data-offscreen="true|false", data-error (the message shown); inside the shadow root:
// .lab-figure[data-name, data-points] (figures.js).
import { LiveFigures, figureNames } from "../lab/figures.js";
import { SCALES, composePatches, patchFor } from "../lab/scales.js";
import { LabClient } from "../lab/client.js";

const HERE = import.meta.url;
const url = (path) => new URL(path, HERE).href;
const CONTROLS = ["run", "pause"];
const ATTRIBUTES = ["preset", "figure", "scale", "controls", "patch", "cpu"];

/** A message for `e`, whatever was thrown. */
const message = (e) => e?.message ?? String(e);

/** An attribute error: shown in the element as "<attribute>: <what is wrong>". */
class AttributeError extends Error {
  constructor(attribute, text) {
    super(`${attribute}: ${text}`);
    this.attribute = attribute;
  }
}

/** The settings of an element from its attributes (all but the preset/figure check, which needs the presets). */
function readAttributes(el) {
  const preset = el.getAttribute("preset")?.trim() ?? "";
  if (!preset) throw new AttributeError("preset", "missing; name one of the paper's presets, e.g. preset=\"e1-ratio-sweep\"");
  const scale = el.getAttribute("scale")?.trim() || "quick";
  if (!SCALES[scale]) throw new AttributeError("scale", `unknown scale '${scale}'; allowed: ${Object.keys(SCALES).join(", ")}`);
  const controlsAttr = el.getAttribute("controls");
  const controls = (controlsAttr ?? CONTROLS.join(",")).split(",").map((c) => c.trim()).filter(Boolean);
  const bad = controls.filter((c) => !CONTROLS.includes(c));
  if (bad.length) throw new AttributeError("controls", `unknown control${bad.length > 1 ? "s" : ""} ${bad.map((c) => `'${c}'`).join(", ")}; allowed: ${CONTROLS.join(", ")} (comma-separated)`);
  let patch;
  if (el.hasAttribute("patch")) {
    try {
      patch = JSON.parse(el.getAttribute("patch"));
    } catch (e) {
      throw new AttributeError("patch", `not JSON (${e.message}); write a JSON merge patch such as '{"seeds":[1]}'`);
    }
    if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
      throw new AttributeError("patch", "must be a JSON object (a merge patch such as '{\"seeds\":[1]}')");
    }
  }
  return { preset, figure: el.getAttribute("figure")?.trim() || null, scale, controls, patch, preferGpu: !el.hasAttribute("cpu") };
}

const TEMPLATE = `
<div class="box" part="box">
  <div class="bar" part="bar">
    <button type="button" class="run" disabled>Run</button>
    <button type="button" class="pause secondary" aria-pressed="false" disabled>Pause</button>
    <span class="progress" role="status" aria-live="polite">Starting the engine…</span>
  </div>
  <p class="engine" data-kind=""></p>
  <p class="error" role="alert" hidden></p>
  <div class="figure"></div>
  <p class="credit">sgd-lab · <a class="lab-link" target="_blank" rel="noopener">open in the lab</a></p>
</div>`;

/**
 * The element's data-state for the client's phase (client.js): it has no fetching (the data load is part of
 * running), a stopped run is idle again, and a failed one is an error; until its worker has planned the preset
 * (or while an error is shown) the element says so, whatever the phase.
 */
const STATE_OF_PHASE = { loading: "loading", idle: "idle", starting: "starting", fetching: "running",
  running: "running", paused: "paused", done: "done", stopped: "idle", failed: "error", error: "error" };

/** The <sgd-lab> element (see the top of this file). */
export class SgdLabElement extends HTMLElement {
  static observedAttributes = ATTRIBUTES;

  constructor() {
    super();
    this.started = false; // connected at least once (attribute changes restart it from then on)
    this.settings = null;
    this.config = null; // the planned experiment's config (from the worker's plan)
    this.figures = null;
    this.planned = false; // the worker in use has planned the preset (a fresh one plans again)
    this.failed = false; // an error is shown (until the next start or Run)
    this.autoPaused = false; // paused by scrolling off screen (resumes when back)
    this.runWhenPlanned = false; // Run was pressed while a fresh worker was starting (after a failed run)
    this.visible = true;
    this.observer = null;
    this.root = this.attachShadow({ mode: "open" });
    const guarded = (fn) => (msg) => this.guard(() => fn.call(this, msg));
    this.client = new LabClient({
      handlers: {
        ready: guarded(this.onReady),
        engine: guarded(this.showEngine),
        plan: guarded(this.onPlan),
        started: guarded(this.onStarted),
        data: guarded((msg) => this.progress(msg.text)),
        events: guarded(this.onEvents),
        results: guarded((msg) => this.figures.update(msg.results)),
        paused: guarded((msg) => this.progress(
          `${this.autoPaused ? "Paused while off screen" : "Paused"} at ${Math.round(100 * msg.fraction)} %`)),
        resumed: guarded((msg) => this.progress(this.fractionText(msg.fraction))),
        finished: guarded(this.onEnd),
        stopped: guarded(this.onEnd),
        // the run's GPU device was lost or a GPU step failed (worker.js); the worker stays usable
        "gpu-failed": guarded((msg) => this.fail(
          msg.lost ? `the GPU device was lost: ${msg.lost}` : `the GPU failed: ${msg.message}`)),
        error: guarded(this.onError),
      },
      onPhase: () => this.render(),
      onWorkerError: (e) => {
        e.preventDefault();
        this.fail(`the engine's worker failed: ${e.message || "it could not be loaded (see the browser's console)"}`);
      },
    });
  }

  connectedCallback() {
    this.guard(() => this.start());
  }

  disconnectedCallback() {
    this.guard(() => this.teardown());
  }

  attributeChangedCallback(name, before, after) {
    if (before === after || !this.isConnected || !this.started) return; // the first connect reads them all
    this.guard(() => {
      this.teardown();
      this.start();
    });
  }

  /** Runs `fn`, showing whatever it throws in the element instead of throwing into the host page. */
  guard(fn) {
    try {
      fn();
    } catch (e) {
      this.fail(message(e));
      if (e instanceof AttributeError) this.client.terminate(); // nothing to run: free the engine
    }
  }

  $(selector) {
    return this.root.querySelector(selector);
  }

  /** The element's state: data-state (STATE_OF_PHASE) and its buttons. */
  get phase() {
    if (this.failed) return "error";
    const state = STATE_OF_PHASE[this.client.phase];
    return state === "idle" && !this.planned ? "loading" : state;
  }

  start() {
    this.root.replaceChildren();
    for (const href of [url("../vendor/uplot/uPlot.min.css"), url("./sgd-lab.css")]) {
      this.root.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href }));
    }
    const box = document.createElement("template");
    box.innerHTML = TEMPLATE;
    this.root.append(box.content);
    this.$(".run").addEventListener("click", () => this.guard(() => this.run()));
    this.$(".pause").addEventListener("click", () => this.guard(() => this.togglePause()));
    this.figures = null;
    this.autoPaused = false;
    this.runWhenPlanned = false;
    this.failed = false;
    this.planned = false;
    this.dataset.fraction = "0";
    this.dataset.error = "";
    this.started = true;
    this.config = null;
    this.settings = readAttributes(this);
    const { preset, scale, controls } = this.settings;
    this.$(".run").hidden = !controls.includes("run");
    this.$(".pause").hidden = !controls.includes("pause");
    const lab = new URL(url("../index.html"));
    lab.search = new URLSearchParams({ preset, scale }).toString();
    this.$(".lab-link").href = lab.href;
    this.observer = new IntersectionObserver((entries) => this.guard(() => this.onVisibility(entries.at(-1).isIntersecting)));
    this.observer.observe(this);
    this.spawn();
  }

  teardown() {
    this.observer?.disconnect();
    this.observer = null;
    this.client.terminate();
  }

  spawn() {
    this.planned = false;
    this.client.spawn({ preferGpu: this.settings.preferGpu });
  }

  /** Shows the state (this.phase) as data-state and on the buttons. */
  render() {
    const phase = this.phase;
    this.dataset.state = phase;
    const run = this.$(".run");
    const pause = this.$(".pause");
    if (!run) return;
    const busy = phase === "running" || phase === "paused" || phase === "starting";
    run.disabled = busy || phase === "loading" || phase === "error" && !this.figures;
    pause.disabled = !(phase === "running" || phase === "paused");
    pause.textContent = phase === "paused" ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(phase === "paused"));
  }

  progress(text) {
    const el = this.$(".progress");
    if (el) el.textContent = text;
  }

  /** Shows `text` as the element's error (named: "sgd-lab: …") and stops what is running. */
  fail(text) {
    const el = this.$(".error");
    if (!el) { // the shadow root is not built (the constructor failed?): nothing to show it in but the console
      console.error(`sgd-lab: ${text}`);
      return;
    }
    el.hidden = false;
    el.textContent = `sgd-lab: ${text}`;
    this.dataset.error = text;
    this.failed = true;
    this.render();
    this.progress("Stopped by an error.");
  }

  /** @param {import("../lab/client.js").PlanMessage} msg */
  onPlan(msg) {
    if (msg.error) return this.fail(`this preset at this scale is not a valid experiment: ${msg.error}`);
    this.config = msg.config;
    this.figures.prepare(msg.config);
    this.planned = true;
    this.render();
    this.progress(`${msg.jobs.length} group${msg.jobs.length === 1 ? "" : "s"} of models · press Run`);
    if (this.runWhenPlanned) {
      this.runWhenPlanned = false;
      this.run();
    }
  }

  /** @param {import("../lab/client.js").StartedMessage} msg */
  onStarted(msg) {
    this.showEngine(msg);
    this.progress(this.fractionText(msg.fraction ?? 0));
    if (!this.visible) this.onVisibility(false); // started while off screen: wait until it is seen
  }

  /** @param {import("../lab/client.js").EventsMessage} msg */
  onEvents(msg) {
    this.dataset.fraction = String(msg.fraction);
    if (this.phase === "running") this.progress(this.fractionText(msg.fraction));
  }

  /** @param {import("../lab/client.js").FinishedMessage | import("../lab/client.js").StoppedMessage} msg */
  onEnd(msg) {
    this.dataset.fraction = String(msg.fraction);
    this.progress(msg.type === "finished" ? "Done: 100 %. Open the lab for the claims report." : "Stopped.");
  }

  /** @param {import("../lab/client.js").ErrorMessage} msg */
  onError(msg) {
    if (msg.context === "engine") { // the probe failed; a run may still work (it makes its own engine)
      this.$(".engine").textContent = `The engine could not start: ${msg.message}`;
      return;
    }
    this.fail(`${msg.context}: ${msg.message}`);
    if (msg.context === "run") { // a panic leaves the wasm instance unusable: a fresh worker for the next run
      this.client.terminate();
    }
  }

  fractionText(f) {
    return `Running: ${Math.round(100 * f)} %`;
  }

  /** @param {import("../lab/client.js").ReadyMessage} msg */
  onReady({ presets }) {
    const { preset, figure } = this.settings;
    const info = presets.find((p) => p.id === preset);
    if (!info) {
      throw new AttributeError("preset", `unknown preset '${preset}'; allowed: ${presets.map((p) => p.id).join(", ")}`);
    }
    const names = figureNames(info.kind);
    const name = figure ?? names[0];
    if (!names.includes(name)) {
      throw new AttributeError("figure", `unknown figure '${name}' for ${preset}; allowed: ${names.join(", ")}`);
    }
    this.dataset.figure = name;
    this.figures ??= new LiveFigures(this.$(".figure"), { only: name }); // kept when a fresh worker replaces a failed one
    this.plan = composePatches(patchFor(preset, this.settings.scale), this.settings.patch) ?? null;
    this.client.plan(preset, this.plan);
  }

  showEngine({ backend, onGpu, fallbackReason }) {
    const el = this.$(".engine");
    this.dataset.engine = onGpu ? "gpu" : "cpu";
    el.dataset.kind = this.dataset.engine;
    el.textContent = onGpu ? `WebGPU: ${backend}` : `CPU fallback — ${fallbackReason ?? backend}`;
  }

  run() {
    if (!this.figures || !this.config || this.phase === "running" || this.phase === "paused") return;
    this.$(".error").hidden = true;
    this.dataset.error = "";
    this.failed = false;
    this.autoPaused = false;
    if (!this.client.alive) { // after a failed run: a fresh worker plans again, then this runs
      this.runWhenPlanned = true;
      this.progress("Starting the engine again…");
      this.spawn();
      return;
    }
    this.figures.prepare(this.config); // empties the figure of an earlier run
    this.progress("Starting…");
    this.client.run({ id: this.settings.preset, patch: this.plan, preferGpu: this.settings.preferGpu });
  }

  togglePause() {
    this.autoPaused = false;
    if (this.phase === "running") this.client.pause();
    else if (this.phase === "paused") this.client.resume();
  }

  onVisibility(visible) {
    this.visible = visible;
    this.dataset.offscreen = String(!visible);
    if (!this.client.alive) return;
    if (!visible && this.phase === "running") {
      this.autoPaused = true;
      this.client.pause();
    } else if (visible && this.autoPaused) {
      this.autoPaused = false;
      this.client.resume();
    }
  }
}

if (!customElements.get("sgd-lab")) customElements.define("sgd-lab", SgdLabElement);
