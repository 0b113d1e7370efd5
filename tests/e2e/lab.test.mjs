// End-to-end: the lab page (www/index.html + www/lab/) runs the paper's presets in a worker. The built page is
// served on loopback at an OS-picked port and driven in Debian's chromium by playwright-core:
//   - every preset's quick-scale patch (www/lab/scales.js) makes a valid experiment (Experiment.fromPreset);
//   - bad values in the address (?preset, ?patch) are named on the page; a run that fails says why and the
//     page can run again;
//   - e4-schedules and e1-ratio-sweep at the quick scale on the CPU fallback: run to 100 %, every live figure
//     gets data, the claims table has verdicts, the report's SVG figures load, the main-thread long tasks
//     (≥ 50 ms, a PerformanceObserver registered before the page loads) recorded in artifacts/lab-long-tasks.jsonl
//     (a measurement for docs/BENCHMARKS.md, not a check: it depends on the machine's load), pause holds the
//     fraction still and resume goes on, the exports parse (JSON, CSV, Markdown, SVG), and a saved results
//     file shows its report again without rerunning (and a partial one continues);
//   - Stop ends a run between steps, leaves the finished groups exportable, and Continue finishes the run;
//   - with WebGPU (SwiftShader), a tiny e4-schedules (quick + ?patch) runs on the GPU in the worker.
// Screenshots of each run preset's page go to artifacts/ (git-ignored).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, launchBrowser as launch, recordLog, useSite } from "./harness.mjs";

const RUN_TIMEOUT_MS = 300_000; // the CPU of a shared CI machine is slow
const VERDICTS = ["holds", "does_not_hold", "inconclusive"];
/** A patch on top of quick that makes e4-schedules a few dozen steps (SwiftShader takes about a second a step). */
const TINY_E4 = { dataset: { train_size: 200, validation_size: 100 }, model: { hidden: [16] }, budget: { epochs: 1 },
  analysis: { hessian_examples: 50, lanczos_iterations: 3, evaluations: 2 }, experiment: { stage_epochs: 0.125 } };

const site = useSite();

/** A page whose main-thread long tasks (≥ 50 ms) are recorded from before its scripts run. */
async function labPage(browser, query) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, acceptDownloads: true });
  await context.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration, name: e.name });
    }).observe({ type: "longtask", buffered: true });
  });
  const page = await context.newPage();
  const log = recordLog(page);
  await page.goto(`${site.server.url}${query}`);
  return { page, log, context };
}

const labState = (page) => page.getAttribute("#lab", "data-state");
const fraction = async (page) => Number(await page.getAttribute("#progress-text", "data-fraction"));

/** Waits until the page is idle with a plan for the chosen preset and scale (or a plan error). */
async function waitPlanned(page) {
  await page.waitForSelector('#lab[data-state="idle"], #lab[data-state="error"]', { timeout: 60_000 });
  await page.waitForFunction(() => {
    const s = document.getElementById("plan-summary").dataset;
    return s.jobs || s.error;
  }, null, { timeout: 60_000 });
}

async function waitEnd(page, log) {
  await page.waitForSelector('#lab[data-state="done"], #lab[data-state="error"], #lab[data-state="stopped"]',
    { timeout: RUN_TIMEOUT_MS });
  const s = await labState(page);
  assert.equal(s, "done", `the run ended in state ${s}: ${await page.textContent("#lab-error")}\n${log.join("\n")}`);
  await page.waitForSelector('#live-figures[data-pending="0"]'); // the figures redraw one per task
}

/** What the page shows once a run is done. */
function shown(page) {
  return page.evaluate(() => {
    const figures = [...document.querySelectorAll(".lab-figure")].filter((f) => !f.hidden)
      .map((f) => ({ name: f.dataset.name, points: Number(f.dataset.points), series: Number(f.dataset.series),
        canvases: f.querySelectorAll("canvas").length }));
    const claims = [...document.querySelectorAll("#claims tbody tr")]
      .map((r) => ({ verdict: r.dataset.verdict, statement: r.cells[0].textContent }));
    const images = [...document.querySelectorAll("#report-figures img")]
      .map((img) => ({ complete: img.complete, width: img.naturalWidth, alt: img.alt }));
    return {
      fraction: Number(document.getElementById("progress-text").dataset.fraction),
      bar: document.getElementById("lab-progress").value,
      progressText: document.getElementById("progress-text").textContent,
      jobs: [...document.querySelectorAll("#jobs li")].map((li) => li.dataset.state),
      figures, claims, images,
      reportShown: !document.getElementById("report").hidden,
      engine: document.getElementById("lab-engine").textContent,
      engineKind: document.getElementById("lab-engine").dataset.kind,
      exports: ["export-json", "export-csv", "export-md"].map((id) => !document.getElementById(id).disabled),
    };
  });
}

function assertFinished(r, { figures }) {
  assert.equal(r.fraction, 1, "the progress should reach 100 %");
  assert.equal(r.bar, 1);
  assert.match(r.progressText, /^100 %/);
  assert.ok(r.jobs.length > 0 && r.jobs.every((s) => s === "done"), `every group done: ${r.jobs}`);
  assert.deepEqual(r.figures.map((f) => f.name).sort(), [...figures].sort(), "the live figures of this kind");
  for (const f of r.figures) {
    assert.ok(f.points > 0 && f.canvases > 0, `figure ${f.name} should have data and a chart: ${JSON.stringify(f)}`);
  }
  assert.ok(r.reportShown, "the claims report should be shown");
  assert.ok(r.claims.length > 0, "the claims table should have rows");
  for (const c of r.claims) assert.ok(VERDICTS.includes(c.verdict), `verdict of "${c.statement}": ${c.verdict}`);
  assert.ok(r.images.length > 0, "the report's figures should be shown");
  for (const img of r.images) assert.ok(img.complete && img.width > 0, `report figure "${img.alt}" should load`);
  assert.deepEqual(r.exports, [true, true, true], "every export button should be enabled");
}

/**
 * The main-thread long tasks (≥ 50 ms) of the last run: from the press of Run to the worker's `finished` or
 * `stopped` (the page's #lab[data-run-start, data-run-end]); and those after it (drawing the report), for the log.
 */
async function longTasksOfRun(page) {
  const { tasks, from, to } = await page.evaluate(() => ({ tasks: window.__longTasks,
    from: Number(document.getElementById("lab").dataset.runStart), to: Number(document.getElementById("lab").dataset.runEnd) }));
  assert.ok(from > 0 && to > from, `the page should mark the run's start and end: ${from}, ${to}`);
  return { during: tasks.filter((t) => t.start + t.duration > from && t.start < to), after: tasks.filter((t) => t.start >= to),
    seconds: (to - from) / 1000 };
}

/**
 * Records a run's main-thread long tasks in artifacts/lab-long-tasks.jsonl (one line per run). A measurement,
 * not an assertion: how long the page's thread is held depends on the machine and its load, so the numbers go
 * to docs/BENCHMARKS.md ("The lab page's main thread during a run"), not into a pass/fail check.
 */
function recordLongTasks(run, long) {
  const during = long.during.map((x) => x.duration);
  const line = { run, date: new Date().toISOString(), seconds: long.seconds, longTasks: during.length,
    longestMs: during.length ? Math.max(...during) : 0, during: long.during, after: long.after };
  appendFileSync(join(ARTIFACTS, "lab-long-tasks.jsonl"), `${JSON.stringify(line)}\n`);
}

/** Clicks a button that downloads, returns the file's text (and keeps a copy in artifacts/). */
async function downloadText(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  const text = readFileSync(await dl.path(), "utf8");
  writeFileSync(join(ARTIFACTS, dl.suggestedFilename()), text);
  return { name: dl.suggestedFilename(), text };
}

function assertCsv(text) {
  const lines = text.trim().split("\n");
  assert.ok(lines.length >= 2, "the CSV should have a header and rows");
  const header = lines[0].split(",");
  for (const col of ["job", "lr", "batch_size", "ratio", "seed", "validation_accuracy", "lambda_max"]) {
    assert.ok(header.includes(col), `CSV header has ${col}: ${lines[0]}`);
  }
  return lines.length - 1;
}

describe("the lab page: configuration", () => {
  test("every preset's quick patch makes a valid experiment, and bad address values are named", async (t) => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${site.server.url}style.css`); // any page of the origin: import() the modules from it
      const checked = await page.evaluate(async () => {
        const { default: init, presets, Experiment } = await import("/pkg/sgd_lab.js");
        const { QUICK, composePatches } = await import("/lab/scales.js");
        await init();
        const out = { ids: presets().map((p) => p.id), quick: Object.keys(QUICK), plans: {}, errors: {} };
        for (const id of out.ids) {
          try {
            const ex = await Experiment.fromPreset(id, JSON.stringify(QUICK[id]), false);
            const full = await Experiment.fromPreset(id, null, false);
            out.plans[id] = { jobs: ex.jobs.length, models: ex.jobs.reduce((a, j) => a + j.models, 0),
              steps: ex.jobs.reduce((a, j) => a + j.steps * j.models, 0),
              fullSteps: full.jobs.reduce((a, j) => a + j.steps * j.models, 0), needed: ex.neededDatasets };
            ex.free();
            full.free();
          } catch (e) {
            out.errors[id] = e.message;
          }
        }
        out.composed = composePatches({ a: { b: 1, c: 2 }, d: [1] }, { a: { c: null, e: 3 }, d: [2] });
        return out;
      });
      t.diagnostic(JSON.stringify(checked.plans));
      assert.deepEqual(checked.errors, {}, "every quick patch should be accepted");
      assert.deepEqual(checked.quick.sort(), [...checked.ids].sort(), "one quick patch per preset, no stray ones");
      for (const [id, p] of Object.entries(checked.plans)) {
        assert.ok(p.steps < p.fullSteps, `${id}: quick should be smaller than default (${p.steps} vs ${p.fullSteps} model-steps)`);
      }
      assert.deepEqual(checked.composed, { a: { b: 1, c: null, e: 3 }, d: [2] });

      // A value the engine refuses is named in the plan line and Run stays off.
      const bad = await labPage(browser, `?preset=e4-schedules&scale=quick&patch=${encodeURIComponent('{"seeds": []}')}`);
      await waitPlanned(bad.page);
      assert.match(await bad.page.getAttribute("#plan-summary", "data-error"), /seeds/);
      assert.match(await bad.page.textContent("#plan-summary"), /not make a valid experiment.*seeds/);
      assert.ok(await bad.page.isDisabled("#run"));
      // A patch that is not JSON, and a preset that does not exist, are said in the error line.
      await bad.page.goto(`${site.server.url}?preset=e9-nothing&patch=%7Bnot-json`);
      await bad.page.waitForFunction(() => /does not exist/.test(document.getElementById("lab-error").textContent), null, { timeout: 60_000 });
      assert.match(await bad.page.textContent("#lab-error"), /preset 'e9-nothing'/);
      assert.match(await bad.page.textContent("#lab-error"), /patch is not JSON/);
      assert.equal(await bad.page.inputValue("#preset"), "e1-ratio-sweep", "falls back to the first preset");
      await bad.context.close();
    } finally {
      await browser.close();
    }
  });
});

describe("the lab page: a run that fails", () => {
  test("says why, and the page (with a fresh worker) can run again", async () => {
    const browser = await launch();
    try {
      const { page, log, context } = await labPage(browser, "?preset=e4-schedules&scale=quick");
      // A corrupted download: the data loader refuses it (its sha256 is not the one in SHA256SUMS).
      await context.route("**/data/fashion-mnist/t10k-labels-idx1-ubyte.gz", (route) =>
        route.fulfill({ status: 200, contentType: "application/gzip", body: Buffer.from("not the MNIST labels") }));
      await waitPlanned(page);
      await page.click("#run");
      await page.waitForFunction(() => /run: .*sha256/.test(document.getElementById("lab-error").textContent), null,
        { timeout: RUN_TIMEOUT_MS });
      await page.waitForSelector('#lab[data-state="idle"]', { timeout: 60_000 });
      assert.match(await page.textContent("#lab-error"), /t10k-labels-idx1-ubyte\.gz: sha256 .* does not match/, log.join("\n"));
      assert.ok(await page.isEnabled("#run"), "Run is available again");
      assert.equal(await page.inputValue("#preset"), "e4-schedules", "the choice is kept");
      await context.close();
    } finally {
      await browser.close();
    }
  });
});

describe("the lab page: presets in a worker on the CPU", () => {
  test("e4-schedules, quick: runs to 100 % with pause/resume, figures, claims, exports, import; long tasks recorded", async (t) => {
    const browser = await launch(); // no WebGPU: the CPU fallback
    try {
      const { page, log, context } = await labPage(browser, "?preset=e4-schedules&scale=quick");
      await waitPlanned(page);
      await page.waitForSelector('#lab-engine[data-kind="cpu"]');
      assert.match(await page.textContent("#lab-engine"), /^CPU fallback — CPU \(f32\)Why: /);
      assert.match(await page.textContent("#lab-notice"), /No WebGPU here.*quick/);
      assert.equal(await page.inputValue("#scale"), "quick");
      assert.match(await page.textContent("#preset-title"), /^E4 /);
      assert.match(await page.textContent("#preset-claim"), /same η\/B/, "the paper's claim is shown");
      assert.match(await page.textContent("#preset-look"), /^What to look for: /);

      await page.click("#run");
      // Pause once the run is under way but not nearly over; the fraction must not move while paused.
      await page.waitForFunction(() => Number(document.getElementById("progress-text").dataset.fraction) > 0,
        null, { timeout: RUN_TIMEOUT_MS, polling: 20 });
      await page.click("#pause");
      await page.waitForSelector('#lab[data-state="paused"], #lab[data-state="done"]', { timeout: 60_000 });
      assert.equal(await labState(page), "paused", "the run ended before it could be paused: make the quick scale longer");
      const f1 = await fraction(page);
      await page.waitForTimeout(2_500);
      const f2 = await fraction(page);
      t.diagnostic(`paused at ${f1}, still ${f2} 2.5 s later`);
      assert.equal(f2, f1, "the fraction should not advance while paused");
      assert.ok(f1 < 1);
      assert.match(await page.textContent("#progress-text"), /paused/);
      assert.equal(await page.getAttribute("#pause", "aria-pressed"), "true");
      await page.click("#pause"); // resume
      await page.waitForFunction((f) => Number(document.getElementById("progress-text").dataset.fraction) > f, f1,
        { timeout: RUN_TIMEOUT_MS });
      await waitEnd(page, log);
      const long = await longTasksOfRun(page);
      t.diagnostic(`run: ${long.seconds.toFixed(1)} s; main-thread long tasks during it: ${JSON.stringify(long.during)}, ` +
        `after it: ${JSON.stringify(long.after)}`);
      recordLongTasks("e4-schedules quick, CPU", long);

      const r = await shown(page);
      t.diagnostic(`${r.engine} | ${r.claims.map((c) => c.verdict).join(", ")} | ${JSON.stringify(r.figures)}`);
      assertFinished(r, { figures: ["accuracy-curves", "loss-curves"] });
      assert.equal(r.engineKind, "cpu");
      assert.equal(r.claims.length, 4, "E4: accuracy and λ_max, for the schedules and the constant pair");
      await page.screenshot({ path: join(ARTIFACTS, "lab-e4-schedules-cpu.png"), fullPage: true });

      // Exports.
      const json = await downloadText(page, "#export-json");
      assert.equal(json.name, "e4-schedules-quick-results.json");
      const results = JSON.parse(json.text);
      assert.equal(results.config.id, "e4-schedules");
      assert.equal(results.jobs.length, results.planned_jobs);
      const csv = await downloadText(page, "#export-csv");
      assert.equal(assertCsv(csv.text), results.jobs.reduce((a, j) => a + j.models.length, 0), "one CSV row per model");
      const md = await downloadText(page, "#export-md");
      assert.match(md.text, /^# E4 /);
      assert.match(md.text, /\| Claim \|/);
      const [svgDownload] = await Promise.all([page.waitForEvent("download"), page.click("#report-figures figcaption a >> nth=0")]);
      const svg = readFileSync(await svgDownload.path(), "utf8");
      assert.match(svgDownload.suggestedFilename(), /^e4-schedules-.*\.svg$/);
      assert.match(svg, /<svg[\s>]/);

      // Import: a fresh page shows the report of the saved file without running anything.
      const runClaims = r.claims;
      await page.goto(`${site.server.url}?preset=e1-ratio-sweep&scale=quick`);
      await waitPlanned(page);
      await page.setInputFiles("#import-file", { name: json.name, mimeType: "application/json", buffer: Buffer.from(json.text) });
      await page.waitForSelector("#claims tbody tr", { timeout: 60_000 });
      await page.waitForSelector('#live-figures[data-pending="0"]');
      const imported = await shown(page);
      assert.equal(await page.inputValue("#preset"), "e4-schedules", "the preset of the file is selected");
      assert.deepEqual(imported.claims, runClaims, "the same claims and verdicts as the run");
      assert.ok(imported.figures.every((f) => f.points > 0), "the live figures are drawn from the file");
      assert.match(await page.textContent("#report-note"), /nothing was rerun/);
      assert.ok(await page.isHidden("#continue"));
      t.diagnostic(`tasks over 200 ms while importing: ${JSON.stringify((await page.evaluate(() => window.__longTasks)).filter((x) => x.duration > 200))}`);

      // A partial file (its last group missing): no report yet, and Continue runs the missing group.
      const partial = { ...results, jobs: results.jobs.slice(0, -1) };
      await page.setInputFiles("#import-file", { name: "partial.json", mimeType: "application/json",
        buffer: Buffer.from(JSON.stringify(partial)) });
      await page.waitForSelector("#continue:not([hidden])", { timeout: 60_000 });
      assert.match(await page.textContent("#report-note"), /holds 3 of the 4 groups.*Continue/);
      await page.click("#continue");
      await page.waitForSelector('#lab[data-state="running"], #lab[data-state="fetching"], #lab[data-state="done"]');
      await waitEnd(page, log);
      const continued = await shown(page);
      assert.equal(continued.claims.length, runClaims.length);
      assert.equal(continued.fraction, 1);
      await context.close();
    } finally {
      await browser.close();
    }
  });

  test("e1-ratio-sweep, quick: λ_max, Tr H and accuracy against η/B, claims; long tasks recorded", async (t) => {
    const browser = await launch();
    try {
      const { page, log, context } = await labPage(browser, "?preset=e1-ratio-sweep&scale=quick");
      await waitPlanned(page);
      await page.click("#run");
      await waitEnd(page, log);
      const long = await longTasksOfRun(page);
      const r = await shown(page);
      t.diagnostic(`run: ${long.seconds.toFixed(1)} s | long tasks during it: ${JSON.stringify(long.during)}, after: ` +
        `${JSON.stringify(long.after)} | ${r.claims.map((c) => c.verdict).join(", ")} | ${JSON.stringify(r.figures)}`);
      recordLongTasks("e1-ratio-sweep quick, CPU", long);
      assertFinished(r, { figures: ["lambda-max-vs-ratio", "accuracy-vs-ratio", "trace-vs-ratio"] });
      // 3 η × 3 B, averaged over seeds, under two budgets: η/B takes 7 distinct values; 6 lines (η × budget).
      for (const f of r.figures) {
        assert.equal(f.series, 6, `${f.name}: one line per η and budget`);
        assert.equal(f.points, 18, `${f.name}: one point per cell and budget`);
      }
      assert.equal(r.claims.length, 10, "E1: five claims per budget");
      await page.screenshot({ path: join(ARTIFACTS, "lab-e1-ratio-sweep-cpu.png"), fullPage: true });
      await page.locator("#live-figures").screenshot({ path: join(ARTIFACTS, "lab-e1-ratio-sweep-live-figures.png") });
      await context.close();
    } finally {
      await browser.close();
    }
  });

  test("Stop ends a run between steps; the finished groups can be saved, and the run continued", async () => {
    const browser = await launch();
    try {
      const { page, log, context } = await labPage(browser, "?preset=e1-ratio-sweep&scale=quick");
      await waitPlanned(page);
      await page.click("#run");
      await page.waitForSelector('#jobs li[data-state="done"]', { timeout: RUN_TIMEOUT_MS });
      await page.click("#stop-run");
      await page.waitForSelector('#lab[data-state="stopped"], #lab[data-state="done"]', { timeout: 60_000 });
      assert.equal(await labState(page), "stopped", `stopped, not ${await labState(page)}\n${log.join("\n")}`);
      assert.ok((await fraction(page)) < 1);
      assert.ok(await page.isHidden("#report"));
      const json = JSON.parse((await downloadText(page, "#export-json")).text);
      assert.ok(json.jobs.length >= 1 && json.jobs.length < json.planned_jobs, `partial: ${json.jobs.length} of ${json.planned_jobs}`);
      assert.ok(await page.isDisabled("#export-md"), "no report, so no claims to save");
      assert.ok(await page.isEnabled("#run"), "a new run can start");
      // … or this one can go on: only the missing groups run, and the report comes at the end.
      await page.click("#continue");
      await waitEnd(page, log);
      const r = await shown(page);
      assert.equal(r.fraction, 1);
      assert.equal(r.claims.length, 10);
      assert.ok(r.figures.every((f) => f.points === 18), `every cell of both budgets is drawn: ${JSON.stringify(r.figures)}`);
      await context.close();
    } finally {
      await browser.close();
    }
  });
});

describe("the lab page: a preset on WebGPU in the worker", () => {
  test("e4-schedules, quick + a tiny ?patch: trains on the GPU (SwiftShader), figures and claims", async (t) => {
    const browser = await launch({ webgpu: true });
    try {
      const query = `?preset=e4-schedules&scale=quick&patch=${encodeURIComponent(JSON.stringify(TINY_E4))}`;
      const { page, log, context } = await labPage(browser, query);
      await waitPlanned(page);
      await page.waitForSelector('#lab-engine[data-kind="gpu"], #lab-engine[data-kind="cpu"]', { timeout: 60_000 });
      assert.match(await page.textContent("#lab-engine"), /^GPU: /, "the worker should get a WebGPU adapter");
      assert.ok(await page.isHidden("#lab-notice"));
      await page.click("#run");
      await waitEnd(page, log);
      const r = await shown(page);
      const long = await longTasksOfRun(page);
      t.diagnostic(`${r.engine} | run: ${long.seconds.toFixed(1)} s | long tasks during it: ${JSON.stringify(long.during)}, ` +
        `after: ${JSON.stringify(long.after)}`);
      recordLongTasks("e4-schedules quick + tiny patch, WebGPU (SwiftShader)", long);
      assertFinished(r, { figures: ["accuracy-curves", "loss-curves"] });
      assert.equal(r.engineKind, "gpu");
      await page.screenshot({ path: join(ARTIFACTS, "lab-e4-schedules-webgpu.png"), fullPage: true });
      await context.close();
    } finally {
      await browser.close();
    }
  });
});
