// End-to-end: configuring, sharing and exporting on the lab page (www/lab/page.js, share-view.js, config-panel.js,
// url-state.js), served on loopback and driven in Debian's chromium by playwright-core, all on the CPU (?cpu):
//   - edits in the configuration panel land in the address, and a fresh page at that address shows the same
//     values, the same merge patch and the same plan;
//   - a value the engine refuses (momentum −1) is named next to the panel and its field marked, an unknown
//     parameter is named with the ones the page knows, text that is not a number is refused by name; the page
//     still works once the value is fixed;
//   - ?hide= hides the named controls and a run still goes to the end without them;
//   - the share dialog (keyboard only) builds a classroom link that parses back to the same state and hides
//     what was ticked; "Copy link" copies the current address;
//   - a report figure's PNG export starts with the PNG signature and is twice the figure's size; a group's
//     trained parameters export as safetensors that parse (header length, JSON header, byte sizes add up) with
//     the shapes of the configured architecture;
//   - every preset runs at the quick scale (plus a small patch, so the whole file stays within a few minutes)
//     and its live figures are saved as screenshots to artifacts/ (and copied to docs/screenshots/ under
//     SGD_LAB_UPDATE_SCREENSHOTS=1).
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "../../www/lab/url-state.js";
import { ARTIFACTS, ROOT, recordLog, useSite } from "./harness.mjs";

const SCREENSHOTS = join(ROOT, "docs/screenshots");
const UPDATE_SCREENSHOTS = process.env.SGD_LAB_UPDATE_SCREENSHOTS === "1";
const RUN_TIMEOUT_MS = 180_000;
/** On top of the quick scale: a few hundred examples, a narrow net, a short Lanczos — seconds per preset. */
const SMALL = { dataset: { train_size: 300, validation_size: 200 }, model: { hidden: [16] },
  analysis: { hessian_examples: 50, lanczos_iterations: 3 } };
const SMALL_BY_PRESET = {
  "e1-ratio-sweep-deep": { ...SMALL, model: { hidden: [16, 16, 16, 16, 16, 16] } }, // still deep
  "e4-schedules": { ...SMALL, analysis: { ...SMALL.analysis, evaluations: 4 }, experiment: { stage_epochs: 0.5 } },
  "e5-memorization": { ...SMALL, dataset: { train_size: 500, validation_size: 200 }, model: { hidden: [32] } }, // B up to 400
  "e6-breakdown": { ...SMALL, experiment: { train_sizes: [300, 600] } }, // B up to 8 × 32
};

const site = useSite({ browser: true });
before(() => mkdirSync(SCREENSHOTS, { recursive: true }));

async function open(query, { viewport = { width: 1366, height: 900 } } = {}) {
  const context = await site.browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const log = recordLog(page);
  await page.goto(`${site.server.url}${query}`);
  return { page, context, log };
}

/** Waits for the plan of the current configuration (or its error), after the last edit. */
async function planned(page) {
  await page.waitForSelector('#lab[data-state="idle"], #lab[data-state="error"]', { timeout: 60_000 });
  await page.waitForFunction(() => {
    const s = document.getElementById("plan-summary");
    return (s.dataset.jobs || s.dataset.error) && s.textContent !== "Planning…";
  }, null, { timeout: 60_000 });
}

/** Types `text` into the panel's control for `path` and leaves it (its change event), then waits for the plan. */
async function edit(page, path, text) {
  const sel = `#config-fields [data-path="${path}"]${path === "budget" ? '[data-part="value"]' : ""}`;
  await page.fill(sel, text);
  await page.press(sel, "Tab");
  await planned(page);
}

const panelValues = (page) => page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#config-fields [data-path]")]
  .filter((el) => el.tagName !== "SPAN").map((el) => [`${el.dataset.path}${el.dataset.part ? `:${el.dataset.part}` : ""}`, el.value])));
const plan = (page) => page.evaluate(() => {
  const s = document.getElementById("plan-summary");
  return { jobs: s.dataset.jobs, models: s.dataset.models, text: s.textContent,
    groups: [...document.querySelectorAll("#jobs li")].map((li) => li.textContent) };
});

async function runToEnd(page, log) {
  assert.ok(await page.isEnabled("#run"), `Run should be available: ${await page.textContent("#plan-summary")}`);
  await page.click("#run");
  await page.waitForSelector('#lab[data-state="done"], #lab[data-state="error"], #lab[data-state="stopped"]', { timeout: RUN_TIMEOUT_MS });
  assert.equal(await page.getAttribute("#lab", "data-state"), "done", `${await page.textContent("#lab-error")}\n${log.join("\n")}`);
  await page.waitForSelector('#live-figures[data-pending="0"]');
}

describe("the lab page: configure and share", () => {
  test("panel edits land in the address, and a fresh page at that address shows the same values and plan", async () => {
    const { page, context, log } = await open("?preset=e1-ratio-sweep&scale=quick&cpu");
    await planned(page);
    assert.equal(await page.inputValue('[data-path="model.hidden"]'), "64, 64", "the quick scale's architecture is shown");
    assert.equal(await page.inputValue('[data-path="seeds"]'), "1, 2");
    await edit(page, "seeds", "3, 4, 5");
    await edit(page, "model.hidden", "32 16");
    await page.selectOption('[data-path="model.activation"]', "tanh");
    await planned(page);
    await edit(page, "experiment.lrs", "0.05, 0.1");
    await edit(page, "dataset.train_size", "400");
    // The data protocol: the first N examples in file order, validated on the official test split.
    assert.equal(await page.inputValue('[data-path="dataset.subset"]'), "stratified", "the default protocol is shown");
    await page.selectOption('[data-path="dataset.subset"]', "first");
    await page.selectOption('[data-path="dataset.validation_from"]', "test_file");
    await page.selectOption('[data-path="budget"][data-part="kind"]', "steps");
    await edit(page, "budget", "40");
    const { state, errors } = parse(new URL(page.url()).search);
    assert.deepEqual(errors, []);
    assert.deepEqual(state.patch, { seeds: [3, 4, 5], model: { hidden: [32, 16], activation: "tanh" },
      experiment: { lrs: [0.05, 0.1] }, dataset: { train_size: 400, subset: "first", validation_from: "test_file" }, budget: { epochs: null, steps: 40 } });
    assert.equal(state.preset, "e1-ratio-sweep");
    assert.equal(state.scale, "quick");
    assert.ok(state.cpu);
    const before = { values: await panelValues(page), plan: await plan(page), patch: await page.getAttribute("#config-fields", "data-patch") };
    assert.equal(before.plan.models, String(2 * 3 * 3 * 2), "2 η × 3 B × 3 seeds × 2 budgets");
    assert.match(before.plan.text, /with your changes$/);
    assert.equal(before.plan.groups.filter((g) => /40 steps/.test(g)).length, 3, "the fixed-steps budget: one group per B");
    assert.equal(await page.textContent("#config-error"), "", log.join("\n"));

    const fresh = await context.newPage();
    await fresh.goto(page.url());
    await planned(fresh);
    assert.equal(before.values["model.hidden"], "32 16", "the text as typed");
    assert.deepEqual(await panelValues(fresh), { ...before.values, "model.hidden": "32, 16" }, "the same values, written canonically");
    assert.deepEqual(await plan(fresh), before.plan);
    assert.equal(await fresh.getAttribute("#config-fields", "data-patch"), before.patch);
    // Reset goes back to the preset at its scale and empties the patch in the address.
    await fresh.click("#config-reset");
    await planned(fresh);
    assert.equal(parse(new URL(fresh.url()).search).state.patch, null);
    assert.equal(await fresh.inputValue('[data-path="seeds"]'), "1, 2");
    await context.close();
  });

  test("a refused value, an unknown parameter and text that is not a number are named; the page still works", async () => {
    const patch = encodeURIComponent(JSON.stringify({ momentum: -1 }));
    const { page, context } = await open(`?preset=e4-schedules&scale=quick&cpu&patch=${patch}&colour=blue`);
    await planned(page);
    assert.match(await page.textContent("#lab-error"), /"colour": is not a parameter of the lab; it knows preset, scale, cpu, patch, hide/);
    const said = await page.textContent("#config-error");
    assert.match(said, /momentum.*must be in \[0, 1\), got -1/);
    assert.equal(await page.getAttribute("#config-error", "aria-live"), "polite");
    assert.equal(await page.getAttribute('[data-path="momentum"]', "aria-invalid"), "true");
    assert.equal(await page.inputValue('[data-path="momentum"]'), "-1", "shown as given, not clamped");
    assert.ok(await page.isDisabled("#run"));
    await edit(page, "seeds", "1, x");
    assert.match(await page.textContent("#config-error"), /seeds: "x" is not a number/);
    assert.equal(await page.getAttribute('[data-path="seeds"]', "aria-invalid"), "true");
    await edit(page, "seeds", "1, 2");
    await edit(page, "momentum", "0.9");
    assert.equal(await page.textContent("#config-error"), "");
    assert.ok(await page.isEnabled("#run"), "fixed: Run is available");
    assert.deepEqual(parse(new URL(page.url()).search).state.patch, { momentum: 0.9 });
    await page.goto(`${site.server.url}?preset=e4-schedules&scale=huge&hide=config,nothing&patch=[1]`);
    await planned(page);
    const error = await page.textContent("#lab-error");
    assert.match(error, /scale: "huge" is not a scale; the scales are quick, default/);
    assert.match(error, /hide: "nothing" cannot be hidden; the names are preset, scale, config, export, import, share, about/);
    assert.match(error, /patch: must be a JSON object/);
    assert.ok(await page.isHidden("#config-panel"), "the valid part of ?hide still applies");
    await context.close();
  });

  test("the share dialog builds a classroom link (keyboard only) that round-trips and hides what was ticked", async () => {
    const { page, context } = await open("?preset=e4-schedules&scale=quick&cpu");
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: site.server.url });
    await planned(page);
    await edit(page, "seeds", "7, 8");
    await page.click("#copy-link");
    await page.waitForFunction(() => document.getElementById("copy-status").textContent === "Copied.");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), page.url(), "Copy link copies the address");

    await page.focus("#share-open");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#share-dialog[open]");
    assert.equal(await page.evaluate(() => document.getElementById("share-dialog").contains(document.activeElement)), true, "focus moves into the dialog");
    assert.equal(await page.evaluate(() => document.getElementById("share-dialog").getAttribute("aria-labelledby")), "share-title");
    for (const name of ["config", "import", "scale"]) {
      await page.focus(`#share-hide-${name}`);
      await page.keyboard.press("Space");
    }
    const link = await page.inputValue("#share-url");
    const { state, errors } = parse(new URL(link).search);
    assert.deepEqual(errors, []);
    assert.deepEqual(state, { preset: "e4-schedules", scale: "quick", cpu: true, patch: { seeds: [7, 8] }, hide: ["scale", "config", "import"] });
    await page.focus("#share-copy");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.getElementById("share-status").textContent === "Copied.");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.getElementById("share-dialog").open);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "share-open", "focus returns to the button");

    const student = await context.newPage();
    await student.goto(link);
    await planned(student);
    assert.equal(await student.getAttribute("body", "data-hide"), "scale config import");
    for (const sel of ["#config-panel", "#scale", "#import-file"]) assert.ok(await student.isHidden(sel), `${sel} hidden`);
    for (const sel of ["#preset", "#run", "#export-json"]) assert.ok(await student.isVisible(sel), `${sel} shown`);
    assert.equal(await student.getAttribute("#plan-summary", "data-models"), await page.getAttribute("#plan-summary", "data-models"));
    assert.equal(new URL(student.url()).search, new URL(link).search, "the page keeps the link as it is");
    await context.close();
  });
});

/** Reads a safetensors file: 8-byte little-endian header length, a JSON header, then the tensors' bytes. */
function readSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  assert.ok(n > 0 && 8 + n <= bytes.length, `header length ${n} of a ${bytes.length}-byte file`);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const tensors = Object.entries(header).filter(([k]) => k !== "__metadata__");
  const spans = tensors.map(([, t]) => t.data_offsets).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [name, t] of tensors) {
    assert.equal(t.dtype, "F32", name);
    assert.equal(t.data_offsets[1] - t.data_offsets[0], 4 * t.shape.reduce((a, b) => a * b, 1), `${name}: bytes = 4 × its shape`);
  }
  for (const [from, to] of spans) {
    assert.equal(from, at, "tensors are back to back");
    at = to;
  }
  assert.equal(8 + n + at, bytes.length, "the tensors' byte sizes add up to the file");
  const data = bytes.subarray(8 + n);
  const values = (name) => {
    const [from, to] = header[name].data_offsets;
    return new Float32Array(data.buffer.slice(data.byteOffset + from, data.byteOffset + to));
  };
  return { header, tensors: Object.fromEntries(tensors), meta: header.__metadata__ ?? {}, values };
}

describe("the lab page: a run with hidden controls, and its exports", () => {
  test("?hide= hides the named controls, the run still works; PNG and safetensors exports parse", async (t) => {
    const patch = { ...SMALL_BY_PRESET["e4-schedules"], model: { hidden: [12] } };
    const { page, context, log } = await open(`?preset=e4-schedules&scale=quick&cpu&hide=preset,scale,config,about&patch=${encodeURIComponent(JSON.stringify(patch))}`);
    await planned(page);
    for (const sel of ["#preset", "#scale", "#config-panel", ".about"]) assert.ok(await page.isHidden(sel), `${sel} hidden`);
    assert.ok(await page.isVisible("#export-json"));
    await runToEnd(page, log);
    const t0 = Date.now();

    // PNG of the first report figure: the signature, then IHDR with twice the SVG's size.
    const size = await page.evaluate(() => {
      const img = document.querySelector("#report-figures img");
      return [img.naturalWidth, img.naturalHeight];
    });
    const [png] = await Promise.all([page.waitForEvent("download"), page.click("#report-figures .png-link >> nth=0")]);
    const bytes = readFileSync(await png.path());
    assert.match(png.suggestedFilename(), /^e4-schedules-.*\.png$/);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
    assert.equal(bytes.subarray(12, 16).toString("latin1"), "IHDR");
    assert.deepEqual([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], [2 * size[0], 2 * size[1]], "twice the figure's size");
    assert.ok(size[0] > 100 && size[1] > 100, `a real figure: ${size}`);

    // The trained parameters of each group: safetensors with the configured shapes, K = the group's models.
    const jobs = await page.evaluate(() => [...document.querySelectorAll("#jobs li")].map((li) => li.querySelector(".job-meta").textContent));
    const options = await page.$$eval("#params-job option", (o) => o.map((x) => x.value));
    assert.deepEqual(options, jobs.map((_, i) => String(i)), "every group finished here can be exported");
    for (const job of [0, jobs.length - 1]) {
      await page.selectOption("#params-job", String(job));
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-params")]);
      assert.equal(dl.suggestedFilename(), `e4-schedules-group-${job + 1}-params.safetensors`);
      const st = readSafetensors(readFileSync(await dl.path()));
      const k = Number(/^(\d+) models/.exec(jobs[job])[1]);
      assert.deepEqual(st.tensors["layers.0.weight"].shape, [k, 12, 784]);
      assert.deepEqual(st.tensors["layers.0.bias"].shape, [k, 12]);
      assert.deepEqual(st.tensors["layers.1.weight"].shape, [k, 10, 12]);
      assert.deepEqual(Object.keys(st.tensors).sort(), ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]);
      const config = JSON.parse(st.meta.config);
      assert.equal(config.models.length, k, "the job's config lists its models");
      const w = st.values("layers.0.weight");
      assert.ok(w.every(Number.isFinite) && w.some((x) => x !== 0), "trained weights are finite numbers");
    }
    t.diagnostic(`exports checked in ${Date.now() - t0} ms`);
    await context.close();
  });
});

describe("the lab page: every preset at the quick scale", () => {
  test("runs each preset (quick + a small patch) and saves its live figures as screenshots", async (t) => {
    const ids = await (async () => {
      const { page, context } = await open("?preset=e4-schedules&scale=quick&cpu");
      await planned(page);
      const list = await page.$$eval("#preset option", (o) => o.map((x) => x.value).filter((v) => v && v !== "free-play"));
      await context.close();
      return list;
    })();
    assert.equal(ids.length, 8, `the presets: ${ids}`);
    let total = 0;
    for (const id of ids) {
      const patch = SMALL_BY_PRESET[id] ?? SMALL;
      const { page, context, log } = await open(`?preset=${id}&scale=quick&cpu&patch=${encodeURIComponent(JSON.stringify(patch))}`,
        { viewport: { width: 900, height: 700 } });
      await planned(page);
      const start = Date.now();
      await runToEnd(page, log);
      const figures = await page.$$eval(".lab-figure:not([hidden])", (f) => f.map((x) => [x.dataset.name, Number(x.dataset.points)]));
      assert.ok(figures.length > 0 && figures.every(([, n]) => n > 0), `${id}: every live figure has data: ${JSON.stringify(figures)}`);
      // PNG in artifacts/; a JPEG copy in docs/screenshots/ keeps the committed images small (README shows two).
      await page.locator("#live-figures").screenshot({ path: join(ARTIFACTS, `lab-${id}-live.png`) });
      const file = `lab-${id}-live.jpg`;
      await page.locator("#live-figures").screenshot({ path: join(ARTIFACTS, file), type: "jpeg", quality: 80 });
      // The committed copies change only when asked (SGD_LAB_UPDATE_SCREENSHOTS=1), so a test run leaves the tree clean.
      if (UPDATE_SCREENSHOTS) copyFileSync(join(ARTIFACTS, file), join(SCREENSHOTS, file));
      const bytes = statSync(join(ARTIFACTS, file)).size;
      total += bytes;
      t.diagnostic(`${id}: ${((Date.now() - start) / 1000).toFixed(1)} s, figures ${JSON.stringify(figures)}, ${(bytes / 1024).toFixed(0)} KiB`);
      await context.close();
    }
    t.diagnostic(`screenshots: ${(total / 1024).toFixed(0)} KiB in all`);
  });
});
