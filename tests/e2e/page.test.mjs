// End-to-end: the built page's free-play mode (www/free/main.js, one MLP; ?preset=free-play), served on loopback at
// an OS-picked port, driven in Debian's chromium by playwright-core: once with WebGPU, once without (CPU
// fallback), and once on Fashion-MNIST (downloaded with progress, trained, evaluated; then, after a reload, read from the
// browser's cache). Screenshots go to artifacts/. Run through scripts/test, or: node --test tests/e2e/
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, WWW, launchBrowser, recordLog, useSite } from "./harness.mjs";

const TRAINING_TIMEOUT_MS = 240_000; // software GPUs are slow

const site = useSite();

/** Opens the page in a fresh chromium, waits for training to end, returns what the page shows. */
async function trainOnPage({ webgpu, screenshot }) {
  const browser = await launchBrowser({ webgpu });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const consoleLines = recordLog(page);
    if (!webgpu) {
      // Belt and braces: even if this chromium exposes WebGPU without the flag, the page must not see it.
      await page.addInitScript(() => { delete Object.getPrototypeOf(navigator).gpu; });
    }
    await page.goto(`${site.server.url}?preset=free-play`); // the one-model trainer (the lab opens on E1 otherwise)
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
        landscape: {
          shown: !document.getElementById("landscape").hidden,
          points: Number(document.getElementById("landscape-chart").dataset.points),
          lossAt0: Number(document.getElementById("landscape-chart").dataset.lossAt0),
          lossAt1: Number(document.getElementById("landscape-chart").dataset.lossAt1),
          drawn: document.getElementById("landscape-chart").querySelectorAll("canvas").length,
          finalTrainLoss: Number(document.querySelector('#metrics tr[data-set="train"]')?.dataset.loss),
        },
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
  // the second chart: the interpolation from the initial to the final parameters, 25 points over [-0.5, 1.5]
  const l = r.landscape;
  assert.ok(l.shown && l.drawn > 0, "the landscape chart should be shown and drawn");
  assert.equal(l.points, 25, "the landscape chart should hold 25 points");
  assert.ok(Math.abs(l.lossAt1 - l.finalTrainLoss) <= 1e-5 * l.finalTrainLoss,
    `at α = 1 the curve should be the final training-set loss: ${l.lossAt1} vs ${l.finalTrainLoss}`);
  assert.ok(l.lossAt1 < 0.8 * l.lossAt0, `the final loss should be below the initial: ${l.lossAt0} → ${l.lossAt1}`);
}

describe("free play (one MLP)", () => {
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

// --- a real data set ----------------------------------------------------------------------------------

const FASHION = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz"].map((f) => `data/fashion-mnist/${f}`);
const STATE = 'body[data-state="done"], body[data-state="error"], body[data-state="stopped"]';

/** Stops the demo the page starts on load (if still running), then trains Fashion-MNIST with small settings. */
async function trainFashion(page, { steps }) {
  await page.waitForSelector('body[data-state="training"], body[data-state="done"], body[data-state="error"]', { timeout: 60_000 });
  // The demo may end (and disable Stop) between the check and the click: then there is nothing to stop.
  if (await page.isEnabled("#stop")) await page.click("#stop", { timeout: 5_000 }).catch(() => {});
  await page.waitForSelector(STATE, { timeout: TRAINING_TIMEOUT_MS });
  await page.selectOption("#dataset-picker", "fashion-mnist");
  await page.fill("#train_size", "500");
  await page.fill("#validation_size", "200");
  await page.fill("#random_label_fraction", "0.2");
  await page.fill("#steps", String(steps));
  await page.click("#train");
  await page.waitForSelector('body[data-state="fetching"], body[data-state="training"], body[data-state="error"]');
  await page.waitForSelector(STATE, { timeout: TRAINING_TIMEOUT_MS });
  return page.evaluate(() => {
    const chart = document.getElementById("loss-chart");
    const data = document.getElementById("data-status");
    const rows = Object.fromEntries([...document.querySelectorAll("#metrics tbody tr")]
      .map((r) => [r.dataset.set, { loss: Number(r.dataset.loss), accuracy: Number(r.dataset.accuracy), n: Number(r.cells[1].textContent) }]));
    return {
      state: document.body.dataset.state,
      error: document.getElementById("error").textContent,
      points: Number(chart.dataset.points),
      lossStart: Number(chart.dataset.lossStart),
      lossEnd: Number(chart.dataset.lossEnd),
      source: data.dataset.source,
      magic: data.dataset.magic,
      received: Number(data.dataset.received),
      total: Number(data.dataset.total),
      dataText: document.getElementById("data-text").textContent,
      summary: document.getElementById("run-summary").textContent,
      metricsStep: Number(document.getElementById("metrics").dataset.step),
      rows,
      progress: window.__progress ?? [],
    };
  });
}

describe("free play on a real data set", () => {
  test("Fashion-MNIST: downloaded with progress, trained, evaluated; after a reload read from the cache", async (t) => {
    const sizes = FASHION.map((f) => statSync(join(WWW, f)).size);
    const total = sizes.reduce((a, b) => a + b, 0);
    // CPU: the GPU path of real data is covered by tests/web.rs; SwiftShader takes a minute over 784 features.
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      // Record every progress report the page shows (data-received on #data-status).
      await context.addInitScript(() => {
        window.__progress = [];
        addEventListener("DOMContentLoaded", () => {
          const box = document.getElementById("data-status");
          new MutationObserver(() => window.__progress.push([Number(box.dataset.received), Number(box.dataset.total)]))
            .observe(box, { attributes: true, attributeFilter: ["data-received"] });
        });
      });
      const page = await context.newPage();
      const consoleLines = recordLog(page);
      // Every response for a .gz file, recorded synchronously when its headers arrive (an async
      // "requestfinished" handler raced with the end of training for the 26 MB file under load).
      const gz = [];
      page.on("response", (res) => {
        if (res.url().endsWith(".gz")) gz.push({ url: res.url(), headers: res.headers() });
      });

      // First visit: from the network.
      await page.goto(`${site.server.url}?cpu&preset=free-play`);
      const first = await trainFashion(page, { steps: 60 });
      await page.screenshot({ path: join(ARTIFACTS, "page-fashion-mnist.png"), fullPage: true });
      const fractions = [...new Set(first.progress.map(([r, tot]) => r / tot))];
      t.diagnostic(`first visit: ${first.dataText} | ${gz.length} .gz requests | ${first.progress.length} progress ` +
        `reports | loss ${first.lossStart} -> ${first.lossEnd} | ${JSON.stringify(first.rows)}`);
      assert.equal(first.state, "done", `page ended in state ${first.state}: ${first.error}\n${consoleLines.join("\n")}`);
      assert.equal(first.source, "network");
      assert.equal(first.magic, "1f8b", "the page must get the gzip stream itself (no Content-Encoding inflation)");
      assert.deepEqual(gz.map((r) => new URL(r.url).pathname.slice(1)).sort(), [...FASHION].sort());
      for (const r of gz) {
        assert.equal(r.headers["content-type"], "application/gzip", r.url);
        assert.equal(r.headers["content-encoding"], undefined, r.url);
      }
      assert.equal(first.total, total, "progress counts against the sum of the four files' sizes");
      assert.equal(first.received, total);
      assert.ok(fractions.some((f) => f > 0 && f < 1), `progress should pass through intermediate values, saw ${fractions.length}`);
      assert.match(first.dataText, /30\.9 MB downloaded and cached/);
      assert.match(first.summary, /500 training examples \(100 with random labels\), 200 validation, 10000 test/);
      assert.equal(first.points, 60);
      assert.ok(first.lossEnd < 0.8 * first.lossStart, `loss should fall by 20%: ${first.lossStart} -> ${first.lossEnd}`);
      assert.equal(first.metricsStep, 60);
      assert.deepEqual(Object.keys(first.rows), ["train", "train_clean", "train_corrupted", "validation", "test"]);
      assert.deepEqual(Object.values(first.rows).map((r) => r.n), [500, 400, 100, 200, 10000]);
      assert.ok(first.rows.test.accuracy > 0.5, `test accuracy ${first.rows.test.accuracy} should be well above chance (0.1)`);
      assert.ok(first.rows.train_clean.accuracy > first.rows.train_corrupted.accuracy, "clean labels are learnt before random ones");

      // Second visit in the same browser context: no .gz request at all, the bytes come from the Cache API.
      gz.length = 0;
      await page.reload();
      const second = await trainFashion(page, { steps: 10 });
      t.diagnostic(`after reload: ${second.dataText} | ${gz.length} .gz requests`);
      assert.equal(second.state, "done", `page ended in state ${second.state}: ${second.error}\n${consoleLines.join("\n")}`);
      assert.equal(second.source, "cache");
      assert.equal(gz.length, 0, `no .gz file should be fetched again, got ${gz.map((r) => r.url).join(", ")}`);
      assert.equal(second.magic, "1f8b");
      assert.equal(second.received, total);
      assert.match(second.dataText, /read from the browser cache/);
      assert.equal(second.points, 10);
    } finally {
      await browser.close();
    }
  });
});
