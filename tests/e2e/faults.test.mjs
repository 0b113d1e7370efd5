// End-to-end: the lab page survives faults mid-run without losing finished work (docs/RELIABILITY.md §7).
//   - GPU device loss: with WebGPU (SwiftShader) and ?test-hooks, the worker destroys the run's device inside the
//     group after a finished one (device.destroy()), once that group has a stored checkpoint; the page says "The
//     GPU device was lost: <reason>", the finished groups export (JSON and CSV parse), and "Continue on the CPU"
//     finishes the run without rerunning them (their numbers are unchanged) and continues the group in progress
//     from its checkpoint's step.
//   - A WebGPU validation error mid-run (an invalid createBuffer outside any error scope) takes the same path:
//     the engine's readback refuses to hand back numbers, the page says "The GPU failed: …", and "Continue on a
//     new GPU device" finishes the run on a fresh device.
//   - Reload mid-run: a CPU run checkpoints to IndexedDB after each finished group; after a reload the page offers
//     "Resume the unfinished run (k of n groups done)"; resuming finishes it without rerunning the k groups, and
//     the stored entry is gone; a stored entry can also be discarded.
//   - Reload inside a group: with ?test-hooks the worker stores a mid-group checkpoint at every progress event; after
//     a reload the offer names the group and step, resuming continues the group there (its progress starts at
//     that step), and the run ends with the same results, field for field, as the same run uninterrupted.
// The server and browser set-up come from harness.mjs.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, launchBrowser, recordLog, useSite } from "./harness.mjs";

const RUN_TIMEOUT_MS = 300_000; // the CPU of a shared CI machine is slow
/** e4-schedules at quick, made tiny (a few dozen steps per group: SwiftShader takes about a second a step). */
const TINY_E4 = { dataset: { train_size: 200, validation_size: 100 }, model: { hidden: [16] }, budget: { epochs: 1 },
  analysis: { hessian_examples: 50, lanczos_iterations: 3, evaluations: 2 }, experiment: { stage_epochs: 0.125 } };
const E4_QUERY = `?preset=e4-schedules&scale=quick&test-hooks&patch=${encodeURIComponent(JSON.stringify(TINY_E4))}`;

const site = useSite();

async function labPage({ webgpu = false, query, initScript }) {
  const browser = await launchBrowser({ webgpu });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const log = recordLog(page);
  await page.goto(`${site.server.url}${query}`);
  return { browser, page, log };
}

const labState = (page) => page.getAttribute("#lab", "data-state");

async function waitIdle(page) {
  await page.waitForSelector('#lab[data-state="idle"]', { timeout: 60_000 });
  await page.waitForFunction(() => document.getElementById("plan-summary").dataset.jobs, null, { timeout: 60_000 });
}

async function waitState(page, log, wanted, timeout = RUN_TIMEOUT_MS) {
  await page.waitForSelector(["done", "error", "stopped", "failed"].map((s) => `#lab[data-state="${s}"]`).join(", "), { timeout });
  const s = await labState(page);
  assert.equal(s, wanted, `the run ended in state ${s}, not ${wanted}: ${await page.textContent("#lab-error")}\n${log.join("\n")}`);
}

/** Clicks a button that downloads, returns the file's text (and keeps a copy in artifacts/). */
async function downloadText(page, selector, copyAs) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  const text = readFileSync(await dl.path(), "utf8");
  writeFileSync(join(ARTIFACTS, copyAs), text);
  return text;
}

/** The data rows of a results CSV (after checking its header names the job column). */
function csvRows(text) {
  const [header, ...rows] = text.trim().split("\n");
  assert.ok(header.split(",").includes("job"), `CSV header: ${header}`);
  return rows;
}

/** The groups of `partial` must be in `full` unchanged (same numbers: not rerun). */
function assertKept(partial, full) {
  assert.equal(full.planned_jobs, partial.planned_jobs, "the same plan");
  assert.equal(full.jobs.length, full.planned_jobs, "every group of the plan is done");
  for (const job of partial.jobs) {
    assert.deepEqual(full.jobs.find((j) => j.job === job.job), job, `group ${job.job} is unchanged`);
  }
}

/**
 * An init script for the page: every message its workers post is looked through (two levels deep) for binary
 * data, and the types of those that carry any are kept in window.__binaryFromWorker (the group checkpoints must
 * stay in the worker, which stores them itself: worker.js).
 */
const WATCH_WORKER_MESSAGES = `(() => {
  window.__binaryFromWorker = [];
  const binary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  const Plain = window.Worker;
  window.Worker = class extends Plain {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", ({ data }) => {
        const values = data && typeof data === "object" ? Object.values(data) : [];
        const inner = values.flatMap((v) => (v && typeof v === "object" && !binary(v) ? Object.values(v) : []));
        if ([...values, ...inner].some(binary)) window.__binaryFromWorker.push(data.type);
      });
    }
  };
})();`;

/** The unfinished run stored in the page's IndexedDB (checkpoint.js), or null. */
const storedRun = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const open = indexedDB.open("sgd-lab", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("unfinished-runs");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction("unfinished-runs").objectStore("unfinished-runs").get("last");
    get.onsuccess = () => { open.result.close(); resolve(get.result ?? null); };
    get.onerror = () => reject(get.error);
  };
}));

describe("the lab page: GPU faults mid-run (WebGPU on SwiftShader)", () => {
  test("a lost GPU device is named, the finished groups stay exportable, and the run continues on the CPU without rerunning them, the group in progress from its checkpoint", async (t) => {
    const { browser, page, log } = await labPage({ webgpu: true, query: E4_QUERY });
    try {
      await waitIdle(page);
      await page.waitForSelector('#lab-engine[data-kind="gpu"]', { timeout: 60_000 });
      await page.click("#run");
      await page.waitForSelector('#jobs li[data-state="done"]', { timeout: RUN_TIMEOUT_MS });
      assert.equal(await page.locator("#jobs li").count(), 4, "e4 plans four groups");
      // Pause inside the group in progress once it has a stored checkpoint (again if it ended just before the pause).
      let stored = null;
      for (let attempt = 0; !stored?.group; attempt += 1) {
        assert.ok(attempt < 3, "a checkpoint inside a group is stored before the group ends");
        if (attempt > 0) await page.click("#pause"); // resume
        await page.waitForFunction(() => {
          const ck = document.getElementById("lab").dataset.groupCheckpoint;
          return ck && document.querySelector(`#jobs li[data-job="${ck.split(":")[0]}"]`)?.dataset.state === "running";
        }, null, { timeout: RUN_TIMEOUT_MS, polling: 100 });
        await page.click("#pause");
        await page.waitForSelector('#lab[data-state="paused"]', { timeout: 60_000 });
        stored = await storedRun(page);
      }
      await page.evaluate(() => window.__labTest.destroyDevice());
      await waitState(page, log, "failed", 60_000);

      const text = await page.textContent("#gpu-fault-text");
      t.diagnostic(text);
      assert.ok(await page.isVisible("#gpu-fault-text"));
      assert.match(text, /^The GPU device was lost: .*reason: destroyed/);
      assert.equal(await page.getAttribute("#gpu-fault", "data-lost"), "1");
      assert.ok(await page.isVisible("#continue-cpu") && await page.isVisible("#continue-gpu"));
      const help = await page.textContent("#gpu-fault-help");
      assert.match(help, /finished groups? \(of 4\) are kept/);
      assert.ok(help.includes(`group ${stored.groupJob + 1} continues at step ${stored.groupStep} of ${stored.groupSteps}`), help);
      assert.equal(await page.getAttribute("#gpu-fault", "data-group-step"), `${stored.groupJob}:${stored.groupStep}`);

      const partial = JSON.parse(await downloadText(page, "#export-json", "faults-lost-partial.json"));
      assert.ok(partial.jobs.length >= 1 && partial.jobs.length < partial.planned_jobs,
        `partial: ${partial.jobs.length} of ${partial.planned_jobs}`);
      const rows = csvRows(await downloadText(page, "#export-csv", "faults-lost-partial.csv"));
      assert.equal(rows.length, partial.jobs.reduce((a, j) => a + j.models.length, 0), "one CSV row per model of the finished groups");

      await page.click("#continue-cpu");
      const bar = `#jobs li[data-job="${stored.groupJob}"] progress[data-first-step]`;
      await page.waitForSelector(bar, { timeout: 60_000 });
      assert.equal(await page.getAttribute(bar, "data-first-step"), String(stored.groupStep),
        "the group in progress continues on the CPU from the GPU's checkpoint, not from its start");
      await waitState(page, log, "done");
      assert.equal(await page.getAttribute("#lab-engine", "data-kind"), "cpu", "continued on the CPU");
      assert.ok(await page.isHidden("#gpu-fault"));
      assert.ok((await page.locator("#claims tbody tr").count()) > 0, "the report of the whole run");
      const full = JSON.parse(await downloadText(page, "#export-json", "faults-lost-full.json"));
      assertKept(partial, full);
      await page.screenshot({ path: join(ARTIFACTS, "faults-gpu-lost-continued.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  test("a GPU validation error mid-run ends in the same message, and the run continues on a new GPU device", async (t) => {
    const { browser, page, log } = await labPage({ webgpu: true, query: E4_QUERY });
    try {
      await waitIdle(page);
      await page.waitForSelector('#lab-engine[data-kind="gpu"]', { timeout: 60_000 });
      await page.click("#run");
      await page.waitForSelector('#jobs li[data-state="done"]', { timeout: RUN_TIMEOUT_MS });
      await page.evaluate(() => window.__labTest.gpuError());
      await waitState(page, log, "failed", 60_000);
      const text = await page.textContent("#gpu-fault-text");
      t.diagnostic(text);
      assert.match(text, /^The GPU failed: GPU: the GPU reported an error, so its results cannot be trusted: /);
      assert.equal(await page.getAttribute("#gpu-fault", "data-lost"), "0");
      const partial = JSON.parse(await downloadText(page, "#export-json", "faults-error-partial.json"));
      assert.ok(partial.jobs.length >= 1 && partial.jobs.length < partial.planned_jobs);

      await page.click("#continue-gpu");
      await waitState(page, log, "done");
      assert.equal(await page.getAttribute("#lab-engine", "data-kind"), "gpu", "continued on a new GPU device");
      assertKept(partial, JSON.parse(await downloadText(page, "#export-json", "faults-error-full.json")));
    } finally {
      await browser.close();
    }
  });
});

describe("the lab page: reload mid-run (IndexedDB checkpoint)", () => {
  test("after a reload the unfinished run is offered with its counts, and resuming finishes it without rerunning the saved groups", async (t) => {
    const { browser, page, log } = await labPage({ query: "?preset=e4-schedules&scale=quick&cpu" });
    try {
      await waitIdle(page);
      assert.ok(await page.isHidden("#resume-offer"), "nothing stored yet");
      await page.click("#run");
      await page.waitForSelector('#jobs li[data-state="done"]', { timeout: RUN_TIMEOUT_MS });
      // Pause so no further group finishes, then wait for the checkpoint of every finished group.
      await page.click("#pause");
      await page.waitForSelector('#lab[data-state="paused"]', { timeout: 60_000 });
      const done = await page.locator('#jobs li[data-state="done"]').count();
      await page.waitForFunction((n) => document.getElementById("lab").dataset.checkpoint === String(n), done, { timeout: 10_000 });
      const saved = JSON.parse(await downloadText(page, "#export-json", "faults-reload-before.json"));
      const stored = await storedRun(page);
      assert.deepEqual(JSON.parse(stored.json), saved, "the checkpoint is the results of the finished groups");
      assert.equal(stored.done, done);
      assert.equal(stored.id, "e4-schedules");
      assert.equal(stored.scale, "quick");
      t.diagnostic(`reloading with ${done} of ${saved.planned_jobs} groups done`);

      await page.reload();
      await page.waitForSelector("#resume-offer:not([hidden])", { timeout: 60_000 });
      const offer = await page.textContent("#resume-run");
      assert.equal(offer, `Resume the unfinished run (${done} of ${saved.planned_jobs} groups done)`);
      assert.ok(await page.isVisible("#discard-run"));
      await page.click("#resume-run");
      await waitState(page, log, "done");
      assert.ok(await page.isHidden("#resume-offer"));
      assert.equal(await page.inputValue("#preset"), "e4-schedules");
      const full = JSON.parse(await downloadText(page, "#export-json", "faults-reload-after.json"));
      assertKept(saved, full);
      assert.equal(await storedRun(page), null, "the finished run's checkpoint is deleted");

      // Discard: a stored run (written back here) is offered after a reload; Discard deletes it.
      await page.evaluate((entry) => new Promise((resolve, reject) => {
        const open = indexedDB.open("sgd-lab", 1);
        open.onsuccess = () => {
          const tx = open.result.transaction("unfinished-runs", "readwrite");
          tx.objectStore("unfinished-runs").put(entry, "last");
          tx.oncomplete = () => { open.result.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
      }), stored);
      await page.reload();
      await page.waitForSelector("#resume-offer:not([hidden])", { timeout: 60_000 });
      await page.click("#discard-run");
      assert.ok(await page.isHidden("#resume-offer"));
      for (let i = 0; (await storedRun(page)) !== null; i += 1) {
        assert.ok(i < 50, "Discard deletes the stored entry");
        await page.waitForTimeout(100);
      }
      await page.reload();
      await waitIdle(page);
      await page.waitForTimeout(500); // the offer is looked up right after the worker is ready
      assert.ok(await page.isHidden("#resume-offer"), "nothing is offered after Discard");
      assert.equal(await storedRun(page), null, "the discarded entry is deleted");
    } finally {
      await browser.close();
    }
  });

  test("a reload inside a group continues that group at its stored step, and the run ends as an uninterrupted one", async (t) => {
    const { browser, page, log } = await labPage({ query: "?preset=e4-schedules&scale=quick&cpu&test-hooks",
      initScript: WATCH_WORKER_MESSAGES });
    try {
      await waitIdle(page);
      await page.click("#run");
      await page.waitForFunction(() => document.getElementById("lab").dataset.groupCheckpoint, null, { timeout: RUN_TIMEOUT_MS });
      await page.click("#pause");
      await page.waitForSelector('#lab[data-state="paused"]', { timeout: 60_000 });
      const stored = await storedRun(page); // the worker finishes a write before it pauses
      assert.deepEqual(await page.evaluate(() => window.__binaryFromWorker), [],
        "no message to the page's thread carries binary data: the worker stores the group checkpoints itself");
      const about = stored && { ...stored, json: undefined, group: stored.group?.length };
      assert.ok(stored?.group instanceof Object && stored.group.length > 0, `a mid-group checkpoint is stored: ${JSON.stringify(about)}`);
      assert.ok(stored.groupStep > 0 && stored.groupStep < stored.groupSteps, `inside the group: ${JSON.stringify(about)}`);
      assert.equal(await page.getAttribute("#lab", "data-group-checkpoint"), `${stored.groupJob}:${stored.groupStep}`);
      t.diagnostic(`reloading inside group ${stored.groupJob} at step ${stored.groupStep} of ${stored.groupSteps} (${stored.done} groups done)`);

      await page.reload();
      await page.waitForSelector("#resume-offer:not([hidden])", { timeout: 60_000 });
      assert.equal(await page.getAttribute("#resume-run", "data-group-step"), `${stored.groupJob}:${stored.groupStep}`);
      assert.ok((await page.textContent("#resume-text")).includes(
        `group ${stored.groupJob + 1} continues at step ${stored.groupStep} of ${stored.groupSteps}`), await page.textContent("#resume-text"));
      await page.click("#resume-run");
      // The resumed group's first progress is at the stored step, not at its start.
      const bar = `#jobs li[data-job="${stored.groupJob}"] progress[data-first-step]`;
      await page.waitForSelector(bar, { timeout: 60_000 });
      assert.equal(await page.getAttribute(bar, "data-first-step"), String(stored.groupStep), "the group continues where it was saved");
      await waitState(page, log, "done");
      const resumed = JSON.parse(await downloadText(page, "#export-json", "faults-midgroup-resumed.json"));
      assert.equal(await storedRun(page), null, "the finished run's checkpoint is deleted");

      // The same run, uninterrupted, on the same page.
      await page.click("#run");
      await page.waitForSelector('#lab:not([data-state="done"])', { timeout: 60_000 });
      await waitState(page, log, "done");
      const whole = JSON.parse(await downloadText(page, "#export-json", "faults-midgroup-whole.json"));
      assert.equal(resumed.jobs.length, whole.planned_jobs);
      assert.equal(whole.jobs.length, whole.planned_jobs);
      for (const job of whole.jobs) {
        assert.deepEqual(resumed.jobs.find((j) => j.job === job.job)?.models, job.models, `group ${job.job}: the same results`);
      }
    } finally {
      await browser.close();
    }
  });
});
