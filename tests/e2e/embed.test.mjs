// End-to-end: embedding, offline use and the Content-Security-Policy of the static site (www/).
//   - every HTML page repeats the server's CSP in a <meta> tag and has no inline script, event handler or style;
//     the server sends the CSP (no 'unsafe-eval', no 'unsafe-inline') on every response, frame-ancestors * only
//     for embed.html;
//   - examples/course.html: both <sgd-lab> elements and the iframe (embed.html, sandboxed) draw their figure
//     from a run; scrolling an element off screen pauses its run (the fraction stops) and scrolling back
//     resumes it; every request of the page, its workers and its service worker goes to the page's own origin;
//   - bad attributes are shown inside the element, naming the allowed values;
//   - the element works on a page of another origin (CORS + the blob: worker bootstrap); framed without
//     allow-same-origin it names the missing sandbox flag;
//   - the lab page runs with no securitypolicyviolation and only same-origin requests; after the service worker
//     controls it, it reloads and runs again with the network off and the server gone; a new build id in
//     pkg/shell.js makes the service worker replace its cache.
// All runs on the CPU fallback (no --enable-unsafe-webgpu), at the quick scale with small patches.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { CSP, startServer } from "../../scripts/serve-www.mjs";
import { ARTIFACTS, WWW, recordLog, useSite } from "./harness.mjs";

const RUN_TIMEOUT_MS = 180_000;
/** A patch on top of quick that makes e4-schedules a few dozen steps. */
const TINY_E4 = { dataset: { train_size: 200, validation_size: 100 }, model: { hidden: [16] }, budget: { epochs: 1 },
  analysis: { hessian_examples: 50, lanczos_iterations: 3, evaluations: 2 }, experiment: { stage_epochs: 0.125 } };

/** The HTML pages of www/ (generated folders aside). */
function htmlPages(dir = WWW) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return ["pkg", "vendor", "data"].includes(e.name) && dir === WWW ? [] : htmlPages(p);
    return e.name.endsWith(".html") ? [relative(WWW, p)] : [];
  });
}

/** GET `path` with raw node:http; resolves to { status, headers }. */
function head(base, path) {
  return new Promise((ok, fail) => {
    const req = request(new URL(path, base), (res) => {
      res.resume();
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers }));
    });
    req.on("error", fail);
    req.end();
  });
}

const site = useSite({ browser: true, shell: true });

/**
 * A context whose pages record securitypolicyviolation events (window.__csp) from before their scripts run,
 * and every request of the context (pages, frames, workers, service worker) in `requests`.
 */
async function newContext(options = {}) {
  const context = await site.browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  const requests = [];
  context.on("request", (r) => requests.push(r.url()));
  const log = recordLog(context);
  return { context, requests, log };
}

/** Asserts that every request went to `origin` (blob: and data: URLs are the page's own). */
function assertSameOrigin(requests, origin) {
  const foreign = requests.filter((u) => !u.startsWith("blob:") && !u.startsWith("data:") && new URL(u).origin !== origin);
  assert.deepEqual(foreign, [], `requests left ${origin}`);
  assert.ok(requests.length > 5, `only ${requests.length} requests were seen: is the request log working?`);
}

const attr = (loc, name) => loc.getAttribute(name);
/** Polls `cond` (async) every 200 ms until it holds; fails after `ms`. */
async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${cond}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const fractionOf = async (loc) => Number(await attr(loc, "data-fraction"));

describe("the Content-Security-Policy", () => {
  test("every HTML page repeats the server's policy in a meta tag and has no inline script, handler or style", () => {
    const pages = htmlPages();
    for (const want of ["index.html", "embed.html", "examples/course.html"]) assert.ok(pages.includes(want), `${want} is missing`);
    for (const page of pages) {
      const html = readFileSync(join(WWW, page), "utf8");
      const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/);
      assert.ok(meta, `${page} has no CSP meta tag`);
      assert.equal(meta[1], CSP, `${page}'s meta CSP differs from scripts/serve-www.mjs's`);
      assert.deepEqual(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g) ?? [], [], `${page} has an inline script`);
      assert.deepEqual(html.match(/\son[a-z]+\s*=/g) ?? [], [], `${page} has an inline event handler`);
      assert.deepEqual(html.match(/<style\b|\sstyle\s*=/g) ?? [], [], `${page} has an inline style`);
    }
    assert.doesNotMatch(CSP, /'unsafe-eval'|'unsafe-inline'/);
    assert.match(CSP, /script-src 'self' 'wasm-unsafe-eval'/);
  });

  test("the server sends it on every response, with frame-ancestors * only for the embed page", async () => {
    for (const [path, ancestors] of [["", "'self'"], ["index.html", "'self'"], ["embed.html", "*"],
      ["examples/course.html", "'self'"], ["lab/worker.js", "'self'"], ["pkg/sgd_lab_bg.wasm", "'self'"],
      ["sw.js", "'self'"], ["no-such-file", "'self'"]]) {
      const { headers } = await head(site.server.url, path);
      assert.equal(headers["content-security-policy"], `${CSP}; frame-ancestors ${ancestors}`, `/${path}`);
      assert.equal(headers["x-content-type-options"], "nosniff", `/${path}`);
    }
  });
});

describe("the course example", () => {
  test("both elements and the iframe draw their figure; off screen pauses a run, back on screen resumes it", { timeout: 420_000 }, async () => {
    const { context, requests, log } = await newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${site.server.url}examples/course.html`);
      const first = page.locator("sgd-lab#sharpness");
      const second = page.locator("sgd-lab#accuracy");
      const frame = page.frameLocator("#frame");
      const framed = frame.locator("sgd-lab");
      for (const el of [first, second, framed]) {
        await until(async () => (await attr(el, "data-state")) !== "loading", 60_000);
        assert.equal(await attr(el, "data-state"), "idle", `${await attr(el, "data-error")}\n${log.join("\n")}`);
        assert.equal(await attr(el, "data-engine"), "cpu");
      }
      assert.equal(await first.locator(".engine").textContent().then((t) => t.startsWith("CPU fallback")), true);

      // Run the first one, then scroll it off screen: the worker pauses and the fraction stands still.
      await first.locator(".run").click();
      await page.waitForFunction(() => Number(document.getElementById("sharpness").dataset.fraction) > 0, null, { timeout: RUN_TIMEOUT_MS });
      await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      await page.waitForFunction(() => document.getElementById("sharpness").dataset.state === "paused", null, { timeout: 60_000 });
      assert.equal(await attr(first, "data-offscreen"), "true");
      const held = await fractionOf(first);
      await page.waitForTimeout(2000);
      assert.equal(await fractionOf(first), held, "the run went on while the element was off screen");
      assert.match(await first.locator(".progress").textContent(), /Paused while off screen/);
      // Back on screen: it resumes by itself and goes on.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForFunction((f) => {
        const d = document.getElementById("sharpness").dataset;
        return d.state !== "paused" && Number(d.fraction) > f;
      }, held, { timeout: RUN_TIMEOUT_MS });
      await first.locator('.lab-figure[data-name="lambda-max-vs-ratio"]:not([data-points="0"])').waitFor({ timeout: RUN_TIMEOUT_MS });

      // The second element and the iframe, one after the other (two cores are shared by all runs).
      for (const [el, name] of [[second, "accuracy-vs-ratio"], [framed, "trace-vs-ratio"]]) {
        await el.locator(".run").click();
        await el.locator(`.lab-figure[data-name="${name}"]:not([data-points="0"])`).waitFor({ timeout: RUN_TIMEOUT_MS });
        assert.ok(Number(await el.locator(".lab-figure").getAttribute("data-points")) > 0);
        assert.equal(await el.locator(".error").isHidden(), true, await attr(el, "data-error"));
      }
      assert.deepEqual(await page.evaluate(() => window.__csp), []);
      assertSameOrigin(requests, new URL(site.server.url).origin);
      assert.ok(requests.some((u) => u.endsWith("/pkg/sgd_lab_bg.wasm")), "the wasm request was not seen");
      assert.ok(requests.some((u) => u.includes("/data/fashion-mnist/")), "the worker's data requests were not seen");
      await page.screenshot({ path: join(ARTIFACTS, "embed-course.png"), fullPage: true }).catch(() => {});
    } finally {
      await context.close();
    }
  });

  test("a bad attribute is named inside the element with the allowed values, and nothing is thrown", async () => {
    const { context, log } = await newContext();
    const page = await context.newPage();
    try {
      const cases = [
        ["preset=nope", /preset: unknown preset 'nope'; allowed: .*e1-ratio-sweep.*e6-breakdown/],
        ["preset=e1-ratio-sweep&figure=nope", /figure: unknown figure 'nope' for e1-ratio-sweep; allowed: lambda-max-vs-ratio, accuracy-vs-ratio, trace-vs-ratio/],
        ["preset=e1-ratio-sweep&scale=huge", /scale: unknown scale 'huge'; allowed: quick, default/],
        ["preset=e1-ratio-sweep&controls=run,stopp", /controls: unknown control 'stopp'; allowed: run, pause/],
        ["preset=e1-ratio-sweep&patch={seeds", /patch: not JSON/],
        ["figure=x", /preset: missing/],
      ];
      for (const [query, want] of cases) {
        await page.goto(`${site.server.url}embed.html?${query}`);
        const el = page.locator("sgd-lab");
        await page.locator('sgd-lab[data-state="error"]').waitFor({ timeout: 60_000 });
        assert.match(await el.locator(".error").textContent(), want, query);
        assert.equal(await el.locator(".error").isVisible(), true, query);
        assert.equal(await el.locator(".run").isDisabled(), true, query);
      }
      assert.deepEqual(log.filter((l) => l.startsWith("[pageerror]")), []);
    } finally {
      await context.close();
    }
  });

  test("the element works on a page of another origin; a frame sandboxed without allow-same-origin says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sgd-lab-host-"));
    writeFileSync(join(dir, "index.html"), `<!doctype html><title>host</title>
      <script type="module" src="${site.server.url}embed/sgd-lab.js"></script>
      <sgd-lab preset="e4-schedules" figure="loss-curves" cpu></sgd-lab>
      <iframe id="opaque" sandbox="allow-scripts" src="${site.server.url}embed.html?preset=e4-schedules"></iframe>`);
    const host = await startServer(dir, { secure: false }); // a third-party page: its own (no) policy
    const { context, log } = await newContext();
    const page = await context.newPage();
    try {
      await page.goto(host.url);
      await page.locator('sgd-lab[data-state="idle"], sgd-lab[data-state="error"]').waitFor({ timeout: 60_000 });
      assert.equal(await page.locator("sgd-lab").getAttribute("data-state"), "idle",
        `${await page.locator("sgd-lab").getAttribute("data-error")}\n${log.join("\n")}`);
      assert.equal(await page.locator('sgd-lab .lab-figure[data-name="loss-curves"]').count(), 1);
      // Framed without allow-same-origin, the embed page says what its sandbox lacks.
      const opaque = page.frameLocator("#opaque").locator("sgd-lab");
      await until(async () => (await attr(opaque, "data-state")) === "error", 30_000);
      assert.match(await opaque.locator(".error").textContent(), /opaque origin .*allow-scripts allow-same-origin/);
    } finally {
      await context.close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the lab page", () => {
  test("runs with no CSP violation and same-origin requests only, then reloads and runs offline", { timeout: 420_000 }, async () => {
    const own = await startServer(WWW); // closed halfway: offline means no server either
    const { context, requests, log } = await newContext();
    const page = await context.newPage();
    const query = `index.html?preset=e4-schedules&scale=quick&cpu&patch=${encodeURIComponent(JSON.stringify(TINY_E4))}`;
    try {
      const response = await page.goto(`${own.url}${query}`);
      const csp = response.headers()["content-security-policy"];
      assert.ok(csp && !csp.includes("'unsafe-eval'"), `CSP header: ${csp}`);
      await page.waitForFunction(() => document.getElementById("plan-summary").dataset.jobs, null, { timeout: 60_000 });
      await page.click("#run");
      await page.waitForSelector('#lab[data-state="done"], #lab[data-state="error"]', { timeout: RUN_TIMEOUT_MS });
      assert.equal(await page.getAttribute("#lab", "data-state"), "done", `${await page.textContent("#lab-error")}\n${log.join("\n")}`);
      await page.waitForSelector("#report-figures img", { timeout: 30_000 });
      assert.deepEqual(await page.evaluate(() => window.__csp), [], "securitypolicyviolation events during the run");
      assert.deepEqual(log.filter((l) => /Content Security Policy|Refused to/.test(l)), []);
      assertSameOrigin(requests, new URL(own.url).origin);

      // The service worker controls the page (it claims it once it has cached the shell).
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
      const cached = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("sgd-lab-shell-")));
      const build = readFileSync(join(WWW, "pkg/shell.js"), "utf8").match(/build: "([0-9a-f]+)"/)[1];
      assert.deepEqual(cached, [`sgd-lab-shell-${build}`]);

      await own.close();
      await context.setOffline(true);
      await page.reload();
      await page.waitForFunction(() => document.getElementById("plan-summary").dataset.jobs, null, { timeout: 60_000 });
      await page.click("#run");
      await page.waitForFunction(() => Number(document.getElementById("progress-text").dataset.fraction) > 0
        || document.getElementById("lab").dataset.state === "error", null, { timeout: RUN_TIMEOUT_MS });
      assert.notEqual(await page.getAttribute("#lab", "data-state"), "error", await page.textContent("#lab-error"));
      await page.click("#stop-run");
    } finally {
      await context.close();
      await own.close().catch(() => {});
    }
  });

  test("a new build (a new build id in pkg/shell.js) replaces the offline cache", { timeout: 120_000 }, async () => {
    // A copy of www/ (the data sets linked, not copied) whose shell.js the test can rewrite.
    const dir = mkdtempSync(join(tmpdir(), "sgd-lab-www-"));
    cpSync(WWW, dir, { recursive: true, filter: (src) => src !== join(WWW, "data") });
    symlinkSync(join(WWW, "data"), join(dir, "data"));
    const own = await startServer(dir);
    const { context } = await newContext();
    const page = await context.newPage();
    const shellCaches = () => page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("sgd-lab-shell-")).sort());
    try {
      await page.goto(`${own.url}embed.html?preset=e4-schedules&cpu`);
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
      const shell = readFileSync(join(dir, "pkg/shell.js"), "utf8");
      const build = shell.match(/build: "([0-9a-f]+)"/)[1];
      assert.deepEqual(await shellCaches(), [`sgd-lab-shell-${build}`]);
      writeFileSync(join(dir, "pkg/shell.js"), shell.replace(build, "0123456789abcdef"));
      await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());
      await until(async () => JSON.stringify(await shellCaches()) === JSON.stringify(["sgd-lab-shell-0123456789abcdef"]), 60_000);
    } finally {
      await context.close();
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
