// <sgd-lab>: one live figure of one of the paper's presets, embeddable in any page (course notes, a blog, a
// slide deck) with one module script tag. Why a custom element: the host page needs no code, no build step and
// no framework; the element brings its own worker (www/lab/worker.js, the lab page's protocol), its own chart
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
// Test hooks (read by tests/e2e/embed.test.mjs) on the host element: data-state="loading|idle|running|paused|
// done|error", data-fraction (0…1, the worker's), data-engine="gpu|cpu", data-offscreen="true|false",
// data-error (the message shown); inside the shadow root: .lab-figure[data-name, data-points] (figures.js).
import { LiveFigures, figureNames } from "../lab/figures.js";
import { SCALES, composePatches, patchFor } from "../lab/scales.js";

const HERE = import.meta.url;
const url = (path) => new URL(path, HERE).href;
const WORKER_URL = url("../lab/worker.js");
const CONTROLS = ["run", "pause"];
const ATTRIBUTES = ["preset", "figure", "scale", "controls", "patch", "cpu"];

/** A message for `e`, whatever was thrown. */
const message = (e) => e?.message ?? String(e);

/**
 * The lab's worker, started from its own URL when that is same-origin with the page, else through a blob:
 * module that imports it (workers must be same-origin; a module import may be cross-origin with CORS).
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

/** The <sgd-lab> element (see the top of this file). */
export class SgdLabElement extends HTMLElement {
  static observedAttributes = ATTRIBUTES;

  constructor() {
    super();
    this.worker = null;
    this.started = false; // connected at least once (attribute changes restart it from then on)
    this.settings = null;
    this.config = null; // the planned experiment's config (from the worker's plan)
    this.figures = null;
    this.phase = "loading";
    this.autoPaused = false; // paused by scrolling off screen (resumes when back)
    this.runWhenPlanned = false; // Run was pressed while a fresh worker was starting (after a failed run)
    this.visible = true;
    this.observer = null;
    this.root = this.attachShadow({ mode: "open" });
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
      if (e instanceof AttributeError) this.teardownWorkerOnly(); // nothing to run: free the engine
    }
  }

  $(selector) {
    return this.root.querySelector(selector);
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
    this.dataset.fraction = "0";
    this.dataset.error = "";
    this.setPhase("loading");
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
    this.worker?.terminate();
    this.worker = null;
  }

  spawn() {
    this.worker = startWorker();
    this.worker.onmessage = ({ data }) => this.guard(() => this.onMessage(data));
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.fail(`the engine's worker failed: ${e.message || "it could not be loaded (see the browser's console)"}`);
    };
    this.worker.postMessage({ type: "init", preferGpu: this.settings.preferGpu });
  }

  setPhase(phase) {
    this.phase = phase;
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
    this.setPhase("error");
    this.progress("Stopped by an error.");
  }

  onMessage(msg) {
    switch (msg.type) {
      case "ready":
        return this.onReady(msg);
      case "engine":
      case "started":
        this.showEngine(msg);
        if (msg.type === "started") {
          this.setPhase("running");
          this.progress(this.fractionText(msg.fraction ?? 0));
          if (!this.visible) this.onVisibility(false); // started while off screen: wait until it is seen
        }
        return;
      case "plan":
        if (msg.error) return this.fail(`this preset at this scale is not a valid experiment: ${msg.error}`);
        this.config = msg.config;
        this.figures.prepare(msg.config);
        this.setPhase("idle");
        this.progress(`${msg.jobs.length} group${msg.jobs.length === 1 ? "" : "s"} of models · press Run`);
        if (this.runWhenPlanned) {
          this.runWhenPlanned = false;
          this.run();
        }
        return;
      case "data":
        this.progress(msg.text);
        return;
      case "events":
        this.dataset.fraction = String(msg.fraction);
        if (this.phase === "running") this.progress(this.fractionText(msg.fraction));
        return;
      case "results":
        this.figures.update(msg.results);
        return;
      case "paused":
        this.setPhase("paused");
        this.progress(`${this.autoPaused ? "Paused while off screen" : "Paused"} at ${Math.round(100 * msg.fraction)} %`);
        return;
      case "resumed":
        this.setPhase("running");
        this.progress(this.fractionText(msg.fraction));
        return;
      case "finished":
      case "stopped":
        this.dataset.fraction = String(msg.fraction);
        this.setPhase(msg.type === "finished" ? "done" : "idle");
        this.progress(msg.type === "finished" ? "Done: 100 %. Open the lab for the claims report." : "Stopped.");
        return;
      case "gpu-failed": // the run's GPU device was lost or a GPU step failed (worker.js); the worker stays usable
        this.fail(msg.lost ? `the GPU device was lost: ${msg.lost}` : `the GPU failed: ${msg.message}`);
        return;
      case "error":
        if (msg.context === "engine") { // the probe failed; a run may still work (it makes its own engine)
          this.$(".engine").textContent = `The engine could not start: ${msg.message}`;
          return;
        }
        this.fail(`${msg.context}: ${msg.message}`);
        if (msg.context === "run") { // a panic leaves the wasm instance unusable: a fresh worker for the next run
          this.teardownWorkerOnly();
        }
        return;
      default:
    }
  }

  teardownWorkerOnly() {
    this.worker?.terminate();
    this.worker = null;
  }

  fractionText(f) {
    return `Running: ${Math.round(100 * f)} %`;
  }

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
    this.worker.postMessage({ type: "plan", id: preset, patch: this.plan, token: 1 });
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
    this.autoPaused = false;
    if (!this.worker) { // after a failed run: a fresh worker plans again, then this runs
      this.runWhenPlanned = true;
      this.setPhase("loading");
      this.progress("Starting the engine again…");
      this.spawn();
      return;
    }
    this.figures.prepare(this.config); // empties the figure of an earlier run
    this.setPhase("starting");
    this.progress("Starting…");
    this.worker.postMessage({ type: "run", id: this.settings.preset, patch: this.plan, preferGpu: this.settings.preferGpu });
  }

  togglePause() {
    this.autoPaused = false;
    if (this.phase === "running") this.worker.postMessage({ type: "pause" });
    else if (this.phase === "paused") this.worker.postMessage({ type: "resume" });
  }

  onVisibility(visible) {
    this.visible = visible;
    this.dataset.offscreen = String(!visible);
    if (!this.worker) return;
    if (!visible && this.phase === "running") {
      this.autoPaused = true;
      this.worker.postMessage({ type: "pause" });
    } else if (visible && this.autoPaused) {
      this.autoPaused = false;
      this.worker.postMessage({ type: "resume" });
    }
  }
}

if (!customElements.get("sgd-lab")) customElements.define("sgd-lab", SgdLabElement);
