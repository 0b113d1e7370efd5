// The lab page's view of a run: the engine line, the data set's download, the progress bar with its ETA, the
// groups of models (#jobs), the live figures (figures.js) and the Run / Pause / Stop buttons. It draws what
// the worker says (through page.js's handlers) and sends pause, resume and stop through the client.
//
// Test hooks (read by tests/e2e/lab.test.mjs and faults.test.mjs): #lab-engine[data-kind="gpu|cpu"],
// #progress-text[data-fraction], #jobs li[data-state="waiting|running|done|failed"] (its progress[data-first-step]:
// the step of the group's first progress in this run, a resumed group's saved step), #live-figures[data-pending],
// .lab-figure[data-name, data-points, data-series] (figures.js), #lab[data-run-start, data-run-end]
// (performance.now() when Run was pressed, when the worker said finished, stopped or gpu-failed).
import { LiveFigures } from "./figures.js";
import { $ } from "./dom.js";

/** Seconds as "m:ss", or "h h mm min" from an hour on. */
function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The run's part of the lab page (see the top of this file). */
export class RunView {
  /** @param {{ state: object, client: import("./client.js").LabClient }} lab page.js's state and client */
  constructor(lab) {
    this.lab = lab;
    this.figures = new LiveFigures($("live-figures"));
    this.renderQueued = false;
    $("pause").addEventListener("click", () => {
      if (lab.client.phase === "paused") {
        lab.client.resume();
      } else {
        lab.client.pause();
        $("pause").textContent = "Pausing…";
      }
    });
    $("stop-run").addEventListener("click", () => {
      lab.client.stop();
      $("progress-group").textContent = "Stopping after the current step…";
    });
  }

  /** The run's buttons in `phase` (`planned`: the preset at its scale makes a valid experiment). */
  renderControls(phase, planned) {
    const busy = this.lab.client.busy;
    $("run").disabled = busy || !planned || phase === "loading";
    $("pause").disabled = !(phase === "running" || phase === "paused" || phase === "fetching");
    $("stop-run").disabled = !busy;
    const paused = phase === "paused";
    $("pause").textContent = paused ? "Resume" : "Pause";
    $("pause").setAttribute("aria-pressed", String(paused));
  }

  /** Lists the groups `jobs` (all waiting), hides the data box and makes the (empty) live figures of `config`. */
  reset(jobs, config) {
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
    this.figures.prepare(config);
  }

  /** The progress of a plan that has not run. */
  showNotStarted() {
    $("lab-progress").value = 0;
    $("progress-text").dataset.fraction = "0";
    $("progress-text").textContent = "Not started.";
    $("progress-group").textContent = "";
  }

  /** Run was pressed: the clock starts, the progress empties. */
  showStarting() {
    $("lab").dataset.runStart = String(performance.now());
    delete $("lab").dataset.runEnd;
    $("progress-text").textContent = "Starting…";
    $("progress-group").textContent = "";
    $("lab-progress").value = 0;
    $("progress-text").dataset.fraction = "0";
  }

  /** The run ended (finished, stopped, failed): its clock stops. */
  markEnd() {
    $("lab").dataset.runEnd = String(performance.now());
  }

  /** The engine line: the WebGPU adapter, or the CPU and why. */
  showEngine({ backend, onGpu, fallbackReason }) {
    const el = $("lab-engine");
    el.dataset.kind = onGpu ? "gpu" : "cpu";
    el.textContent = onGpu ? backend : `CPU fallback — ${backend}`;
    if (!onGpu) {
      const why = Object.assign(document.createElement("span"), { className: "why", textContent: `Why: ${fallbackReason}` });
      el.append(why);
    }
  }

  /** @param {import("./client.js").StartedMessage} msg */
  onStarted(msg) {
    const r = this.lab.state.run;
    r.jobs = msg.jobs;
    r.fraction = msg.fraction;
    this.showEngine(msg);
    $("progress-text").textContent = msg.needed.length ? "Loading the data…" : "Starting…";
  }

  /** @param {import("./client.js").DataMessage} msg */
  onData(msg) {
    const box = $("lab-data");
    box.hidden = false;
    box.dataset.source = msg.source;
    $("lab-data-progress").max = msg.total || 1;
    $("lab-data-progress").value = msg.received;
    $("lab-data-text").textContent = msg.text;
  }

  /** @param {import("./client.js").PauseMessage} msg */
  onPaused(msg) {
    const r = this.lab.state.run;
    r.fraction = msg.fraction;
    r.pausedAt = performance.now();
    this.renderProgress();
    $("progress-announce").textContent = "Paused.";
  }

  onResumed() {
    const r = this.lab.state.run;
    if (r.pausedAt != null && r.t0 != null) r.pausedMs += performance.now() - r.pausedAt;
    r.pausedAt = null;
    this.renderProgress();
    $("progress-announce").textContent = "Running again.";
  }

  /** Ends the progress with `group` (the line under the bar) and `announce` (for screen readers). */
  showEnd(fraction, group, announce) {
    this.lab.state.run.fraction = fraction;
    this.renderProgress();
    $("progress-group").textContent = group;
    $("progress-announce").textContent = announce;
  }

  /** The group in progress failed with the run's GPU: says `what` happened. */
  showFailed(what) {
    const r = this.lab.state.run;
    const li = r.current != null ? $("jobs").querySelector(`li[data-job="${r.current}"]`) : null;
    if (li && li.dataset.state === "running") li.dataset.state = "failed";
    this.renderProgress();
    $("progress-group").textContent = what;
    $("progress-announce").textContent = what;
  }

  /** Marks the groups `jobs` of saved results done. */
  showDone(jobs) {
    for (const j of jobs) {
      const li = $("jobs").querySelector(`li[data-job="${j.job}"]`);
      if (li) {
        li.dataset.state = "done";
        li.querySelector("progress").value = 1;
      }
    }
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderProgress();
    });
  }

  /** The bar, the percentage with elapsed time and ETA, and (while busy) the group in progress. */
  renderProgress() {
    const r = this.lab.state.run;
    if (!r) return;
    const phase = this.lab.client.phase;
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
      if (phase === "running" && done > 0.01 && f < 1) text += ` · about ${clock((active * (1 - f)) / done)} left`;
    }
    if (phase === "paused") text += " · paused";
    $("progress-text").textContent = text;
    if (!this.lab.client.busy) return; // done or stopped: the line under the bar says so
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

  /** @param {import("./client.js").EventsMessage} msg */
  onEvents(msg) {
    const r = this.lab.state.run;
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
    this.scheduleRender();
  }
}
