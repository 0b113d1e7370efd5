// End-to-end: the benchmark page (www/bench/: index.html + bench.js + worker.js) in Debian's chromium with
// WebGPU (SwiftShader) at tiny sizes: the worker measures WebGPU and the CPU backend (wasm), the table fills
// with finite positive numbers for both, and the Markdown for "Copy as Markdown" holds the same rows. Bad
// settings in the address are named on the page. No timing is asserted: only that the numbers exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { recordLog, useSite } from "./harness.mjs";

const TINY = "arch=16&models=2&batch=8&steps=1&reps=1&eval=16&lambda=4&backends=gpu,cpu&autorun=1";

const site = useSite({ browser: true, webgpu: true });

async function open(query) {
  const page = await site.browser.newPage();
  const log = recordLog(page);
  await page.goto(`${site.server.url}bench/?${query}`);
  return { page, log };
}

test("the benchmark fills the table with finite positive medians for WebGPU and the CPU, and the Markdown matches", async () => {
  const { page, log } = await open(TINY);
  await page.waitForSelector('#bench[data-state="done"], #bench[data-state="error"]', { timeout: 110_000 });
  const state = await page.getAttribute("#bench", "data-state");
  assert.equal(state, "done", `${await page.textContent("#status")}\n${log.join("\n")}`);
  const rows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => ({ gpu: tr.dataset.onGpu, cells: [...tr.cells].map((c) => c.textContent) })));
  assert.deepEqual(rows.map((r) => r.gpu), ["true", "false"], `one WebGPU row, then one CPU row: ${JSON.stringify(rows)}\n${log.join("\n")}`);
  for (const { cells } of rows) {
    assert.match(cells[0], cells === rows[0].cells ? /^GPU: .*WebGPU/ : /^CPU/);
    assert.deepEqual(cells.slice(1, 4), ["784-16-10", "8", "2"]);
    const numbers = [...cells.slice(4, 7), cells[7].split(" ")[0]].map(Number);
    for (const v of numbers) assert.ok(Number.isFinite(v) && v > 0, `not a finite positive number: ${cells.join(" | ")}`);
    assert.match(cells[7], /\(4\)$/, "λ_max over the requested 4 examples");
  }
  assert.equal(await page.isDisabled("#copy"), false);
  const md = await page.textContent("#markdown");
  assert.match(md, /\| backend \| widths \| B \| K \| steps\/s/);
  assert.equal(md.split("\n").filter((l) => l.startsWith("| GPU: ") || l.startsWith("| CPU")).length, 2, md);
  await page.close();
});

test("a bad setting in the address is named on the page and nothing runs", async () => {
  const { page } = await open("models=0&autorun=1");
  await page.waitForSelector('#bench[data-state="error"]', { timeout: 20_000 });
  assert.match(await page.textContent("#status"), /models: must be a whole number from 1 to 64 \(got "0"\)/);
  const { page: p2 } = await open("arch=vgg");
  await p2.waitForSelector('#bench[data-state="error"]', { timeout: 20_000 });
  assert.match(await p2.textContent("#status"), /arch: must be one of e1, deep \(got "vgg"\)/);
  assert.equal(await p2.$$eval("#results tbody tr", (t) => t.length), 0);
  await page.close();
  await p2.close();
});

test("BenchRun rejects bad arguments with a message naming the argument", async () => {
  const { page } = await open("arch=vgg"); // the page stops at the address error; the module is still loadable
  const errors = await page.evaluate(async () => {
    const m = await import("../pkg/sgd_lab.js");
    await m.default();
    const msg = async (f) => { try { await f(); return "no error"; } catch (e) { return e.message; } };
    const run = await m.BenchRun.create("cpu", "8", 1, 4, 8);
    return [
      await msg(() => m.BenchRun.create("tpu", "e1", 1, 8, 16)),
      await msg(() => m.BenchRun.create("cpu", "0,8", 1, 8, 16)),
      await msg(() => m.BenchRun.create("cpu", "e1", 0, 8, 16)),
      await msg(() => m.BenchRun.create("cpu", "e1", 1, 8, 4)),
      await msg(() => run.trainChunk(0)),
      await msg(() => run.evaluate(9)),
      await msg(() => run.lambdaMax(0)),
    ];
  });
  assert.match(errors[0], /backend.*unknown backend "tpu"/);
  assert.match(errors[1], /arch.*"0,8"/);
  assert.match(errors[2], /models.*between 1 and 64 \(got 0\)/);
  assert.match(errors[3], /examples.*between 8 and 65536 \(got 4\)/);
  assert.match(errors[4], /steps.*between 1 and 10000 \(got 0\)/);
  assert.match(errors[5], /examples.*between 1 and 8 \(got 9\)/);
  assert.match(errors[6], /examples.*between 1 and 8 \(got 0\)/);
  await page.close();
});
