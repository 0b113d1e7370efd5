// End-to-end: the free play's 2-D loss landscape (www/free/landscape2d.js over FreePlay.landscape2d), on the CPU engine
// (fast and deterministic; the GPU path of the same Rust code is covered by tests/web.rs): asked for while the
// demo trains (it runs between two chunks and the run still finishes), then again after the run with the PCA
// plane; the plotters SVG loads under the page's strict CSP, every grid value is finite, and hovering the
// heatmap reads α, β and the loss. Run through scripts/test, or: node --test tests/e2e/landscape2d.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ARTIFACTS, launchBrowser, useSite } from "./harness.mjs";

const FIGURE_DONE = '#landscape2d[data-state="shown"], #landscape2d[data-state="error"]';

const site = useSite();

/** The figure's test hooks and status line. */
const figure = (page) => page.evaluate(() => {
  const f = document.getElementById("landscape2d");
  const img = document.getElementById("landscape2d-svg");
  return { ...f.dataset, status: document.getElementById("landscape2d-status").textContent,
    imgWidth: img.naturalWidth, download: document.getElementById("landscape2d-download").hidden ? "" : "shown" };
});

test("free play draws the 2-D landscape during and after training, and hovering reads the loss", async (t) => {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(`${site.server.url}?cpu&preset=free-play`);
    // the demo (600 steps) ends too fast on the CPU to catch mid-run: stop it, and train 20,000 steps instead
    await page.waitForSelector('body[data-state="training"], body[data-state="done"]', { timeout: 60_000 });
    if (await page.isEnabled("#stop")) await page.click("#stop", { timeout: 5_000 }).catch(() => {});
    await page.waitForSelector('body[data-state="done"], body[data-state="stopped"]', { timeout: 60_000 });
    await page.fill("#steps", "20000");
    await page.click("#train");
    await page.waitForFunction(() => document.body.dataset.state === "training" &&
      Number(document.getElementById("loss-chart").dataset.points) >= 50, null, { timeout: 60_000 });
    // while it trains: a random plane on an 11 × 11 grid, computed between two chunks
    await page.selectOption("#landscape2d-directions", "random");
    await page.fill("#landscape2d-grid", "11");
    await page.click("#landscape2d-draw");
    await page.waitForSelector(FIGURE_DONE, { timeout: 60_000 });
    const during = await figure(page);
    t.diagnostic(`mid-run: ${during.status}`);
    assert.equal(during.state, "shown", during.status);
    assert.equal(during.points, "121");
    assert.equal(during.finite, "true");
    const step = Number(/step (\d+)/.exec(during.status)[1]);
    assert.ok(step >= 50 && step < 20000, `computed between two chunks of the run, at step ${step}`);
    // the run goes on after it: more steps arrive, then Stop ends it cleanly
    await page.waitForFunction((s) => Number(document.getElementById("loss-chart").dataset.points) > s + 50, step, { timeout: 60_000 });
    await page.click("#stop");
    await page.waitForSelector('body[data-state="stopped"], body[data-state="error"]', { timeout: 60_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), "stopped", "the run went on after the landscape");
    // after the run: the PCA plane of the trajectory, 21 × 21
    await page.selectOption("#landscape2d-directions", "pca");
    await page.fill("#landscape2d-grid", "21");
    await page.click("#landscape2d-draw");
    await page.waitForSelector('#landscape2d[data-state="computing"], ' + FIGURE_DONE);
    await page.waitForSelector(FIGURE_DONE, { timeout: 60_000 });
    await page.waitForFunction(() => document.getElementById("landscape2d-svg").complete);
    const r = await figure(page);
    t.diagnostic(r.status);
    assert.equal(r.state, "shown", r.status);
    assert.equal(r.directions, "pca");
    assert.equal(r.points, "441");
    assert.equal(r.finite, "true", "every grid value is finite");
    assert.ok(Number(r.trajectory) >= 3, `the trajectory has the snapshots and θ*: ${r.trajectory}`);
    assert.equal(r.imgWidth, 720, "the plotters SVG loaded as an image (CSP allows blob: images)");
    assert.equal(r.download, "shown");
    // hover: the middle of the image lies in the plot area (the heatmap is 600 of the SVG's 720 pixels wide)
    const img = page.locator("#landscape2d-svg");
    await img.scrollIntoViewIfNeeded();
    const box = await img.boundingBox();
    await img.hover({ position: { x: box.width * 0.45, y: box.height * 0.5 } });
    const readout = await page.evaluate(() => ({ ...document.getElementById("landscape2d-readout").dataset,
      text: document.getElementById("landscape2d-readout").textContent }));
    t.diagnostic(readout.text);
    for (const k of ["alpha", "beta", "loss"]) assert.ok(Number.isFinite(Number(readout[k])) && readout[k] !== "", `${k}: ${readout[k]}`);
    assert.match(readout.text, /α = .*β = .*loss /);
    // the top-left corner is the title, outside the plot area: no value
    await img.hover({ position: { x: 3, y: 3 } });
    assert.equal(await page.evaluate(() => document.getElementById("landscape2d-readout").dataset.loss), "");
    await page.locator("#landscape2d").screenshot({ path: join(ARTIFACTS, "landscape2d.png") });
    assert.deepEqual(errors.filter((e) => !/favicon/.test(e)), [], "no page errors (CSP violations included)");
  } finally {
    await browser.close();
  }
});
