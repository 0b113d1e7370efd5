// End-to-end: the built page (www/, from scripts/build-web), served on loopback at an OS-picked port,
// driven in Debian's chromium by playwright-core: once with WebGPU, once without (CPU fallback).
// Screenshots go to artifacts/. Run through scripts/test, or: node --test tests/e2e/
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve-www.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = join(ROOT, "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TRAINING_TIMEOUT_MS = 240_000; // software GPUs are slow
const BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];

let server;
before(async () => {
  assert.ok(existsSync(join(ROOT, "www/pkg/sgd_lab_bg.wasm")), "www/pkg is missing: run scripts/build-web first");
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (set CHROMIUM=...; scripts/setup installs chromium)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer(join(ROOT, "www"));
});
after(() => server?.close());

/** Opens the page in a fresh chromium, waits for training to end, returns what the page shows. */
async function trainOnPage({ webgpu, screenshot }) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: webgpu ? [...BASE_ARGS, "--enable-unsafe-webgpu"] : BASE_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    if (!webgpu) {
      // Belt and braces: even if this chromium exposes WebGPU without the flag, the page must not see it.
      await page.addInitScript(() => { delete Object.getPrototypeOf(navigator).gpu; });
    }
    await page.goto(server.url);
    try {
      await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: TRAINING_TIMEOUT_MS });
    } finally {
      await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    }
    const shown = await page.evaluate(() => {
      const chart = document.getElementById("loss-chart");
      const backend = document.getElementById("backend");
      return {
        state: document.body.dataset.state,
        error: document.getElementById("error").textContent,
        kind: backend.dataset.kind,
        label: backend.textContent,
        points: Number(chart.dataset.points),
        lossStart: Number(chart.dataset.lossStart),
        lossEnd: Number(chart.dataset.lossEnd),
        drawn: chart.querySelectorAll("canvas").length,
        hasGpu: "gpu" in navigator,
      };
    });
    return { ...shown, consoleLines };
  } finally {
    await browser.close();
  }
}

function assertTrained(r) {
  assert.equal(r.state, "done", `page ended in state ${r.state}: ${r.error}\n${r.consoleLines.join("\n")}`);
  assert.equal(r.points, 600, "the chart should hold one point per step");
  assert.ok(r.drawn > 0, "the chart should have drawn a canvas");
  assert.ok(r.lossEnd < 0.8 * r.lossStart, `loss should fall by 20%: first chunk ${r.lossStart}, last chunk ${r.lossEnd}`);
}

describe("the lab page", () => {
  test("with WebGPU, it trains the MLP on the GPU until the loss falls", async (t) => {
    const r = await trainOnPage({ webgpu: true, screenshot: "page-webgpu.png" });
    t.diagnostic(`engine: ${r.label} | loss ${r.lossStart} -> ${r.lossEnd} over ${r.points} steps`);
    assertTrained(r);
    assert.ok(r.hasGpu, "chromium with --enable-unsafe-webgpu should expose navigator.gpu");
    assert.equal(r.kind, "gpu", `expected to train on the GPU, page says: ${r.label}`);
    assert.match(r.label, /^GPU: /);
  });

  test("without WebGPU, it falls back to the CPU, says why, and trains all the same", async (t) => {
    const r = await trainOnPage({ webgpu: false, screenshot: "page-cpu-fallback.png" });
    t.diagnostic(`engine: ${r.label} | loss ${r.lossStart} -> ${r.lossEnd} over ${r.points} steps`);
    assertTrained(r);
    assert.equal(r.hasGpu, false);
    assert.equal(r.kind, "cpu");
    assert.match(r.label, /^CPU fallback — CPU \(f32\)Why: GPU: \S/, "the label should name the CPU engine and say why");
    assert.match(r.label, /no WebGPU adapter/);
  });
});
