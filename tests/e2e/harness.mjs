// The shared scaffolding of the end-to-end tests (tests/e2e/*.test.mjs) and of the page soak
// (scripts/page-soak.mjs): the repository's paths, the check that scripts/build-web ran, the static site
// (scripts/serve-www.mjs) on a loopback port the OS picks, Debian's chromium launched headless with the same
// arguments everywhere (WebGPU only when asked), and the console / pageerror log of a page or of every page of
// a context. Why one file: each test used to repeat these lines, and a flag added to one launch (or a check
// forgotten in one file) made the tests disagree about the browser they ran in.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve-www.mjs";

/** The repository root (absolute, ending in a separator). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The site's folder, served by scripts/serve-www.mjs. */
export const WWW = join(ROOT, "www");
/** Where the tests leave screenshots and downloads (git-ignored). */
export const ARTIFACTS = join(ROOT, "artifacts");
/** The browser: Debian's chromium unless CHROMIUM names another executable. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * Chromium's arguments for every test: no sandbox (containers), nothing that talks to the network by itself,
 * /tmp instead of a small /dev/shm. WebGPU stays off unless `browserArgs({ webgpu: true })` asks for it.
 */
export const BASE_ARGS = Object.freeze(["--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]);

/** The launch arguments, with --enable-unsafe-webgpu (SwiftShader here) when `webgpu`. */
export function browserArgs({ webgpu = false } = {}) {
  return webgpu ? [...BASE_ARGS, "--enable-unsafe-webgpu"] : [...BASE_ARGS];
}

/** A headless chromium with the tests' arguments. */
export function launchBrowser({ webgpu = false } = {}) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: browserArgs({ webgpu }) });
}

/**
 * Throws (an assertion error naming what to run) unless the site is built and the browser exists:
 * www/pkg/sgd_lab_bg.wasm, and www/pkg/shell.js when `shell` (the service worker's file list).
 */
export function assertSiteBuilt({ shell = false } = {}) {
  assert.ok(existsSync(join(WWW, "pkg/sgd_lab_bg.wasm")), "www/pkg is missing: run scripts/build-web first");
  if (shell) assert.ok(existsSync(join(WWW, "pkg/shell.js")), "www/pkg/shell.js is missing: run scripts/build-web first");
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (set CHROMIUM=...; scripts/setup installs chromium)`);
}

/**
 * Checks the build (assertSiteBuilt), makes artifacts/, and serves www/ on a loopback port the OS picks.
 * Resolves to scripts/serve-www.mjs's server ({ url, close() }).
 */
export async function startSite({ shell = false } = {}) {
  assertSiteBuilt({ shell });
  mkdirSync(ARTIFACTS, { recursive: true });
  return startServer(WWW);
}

/**
 * Appends what `page` prints to `log` ("[type] text" per console message, "[pageerror] message" per uncaught
 * error) and returns `log`. A BrowserContext instead of a page: every page it opens from now on.
 */
export function recordLog(target, log = []) {
  if (typeof target.newPage === "function" && typeof target.pages === "function") {
    target.on("page", (p) => recordLog(p, log));
    return log;
  }
  target.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  target.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  return log;
}

/**
 * For a test file (node:test): before its tests, start the site (startSite) and, with `browser`, one chromium
 * (launchBrowser({ webgpu })); after them, close both. Returns the object that holds them once started:
 * `{ server, browser }` (read its fields inside the tests, not at import time).
 */
export function useSite({ browser = false, webgpu = false, shell = false } = {}) {
  const site = { server: null, browser: null };
  before(async () => {
    site.server = await startSite({ shell });
    if (browser) site.browser = await launchBrowser({ webgpu });
  });
  after(async () => {
    await site.browser?.close();
    await site.server?.close();
  });
  return site;
}
