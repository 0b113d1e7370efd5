// The static server (scripts/serve-www.mjs) on a temporary folder: `.gz` files go out as opaque bytes
// (application/gzip, no Content-Encoding, Content-Length = size on disk) even when the client says it
// accepts gzip, so the page gets the gzip stream the Rust IDX reader expects. Raw node:http, which never
// inflates anything by itself. Fast: no browser, no wasm.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { startServer } from "../../scripts/serve-www.mjs";

const dir = mkdtempSync(join(tmpdir(), "sgd-lab-serve-"));
const idx = Buffer.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]); // a 3-label IDX file
const gz = gzipSync(idx);
let server;

before(async () => {
  mkdirSync(join(dir, "data", "tiny"), { recursive: true });
  writeFileSync(join(dir, "data", "tiny", "train-labels-idx1-ubyte.gz"), gz);
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  server = await startServer(dir);
});
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** GET (or HEAD) `path` with raw node:http; resolves to { status, headers, body: Buffer }. */
function fetchRaw(path, { method = "GET", headers = {} } = {}) {
  return new Promise((ok, fail) => {
    const req = request(new URL(path, server.url), { method, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end();
  });
}

test("a .gz file is served as the gzip bytes on disk, never with Content-Encoding", async () => {
  for (const acceptEncoding of [undefined, "gzip, deflate, br"]) {
    const r = await fetchRaw("data/tiny/train-labels-idx1-ubyte.gz", {
      headers: acceptEncoding ? { "accept-encoding": acceptEncoding } : {},
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/gzip");
    assert.equal(r.headers["content-encoding"], undefined, "the server must not declare a content encoding");
    assert.equal(r.headers["content-length"], String(gz.length));
    assert.deepEqual([...r.body.subarray(0, 2)], [0x1f, 0x8b], "the body should start with the gzip magic");
    assert.deepEqual(r.body, gz);
  }
});

test("HEAD gives the size without a body; other files keep their types; misses are 404", async () => {
  const head = await fetchRaw("data/tiny/train-labels-idx1-ubyte.gz", { method: "HEAD" });
  assert.equal(head.headers["content-length"], String(gz.length));
  assert.equal(head.body.length, 0);
  const page = await fetchRaw("");
  assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
  assert.equal((await fetchRaw("data/tiny/nope.gz")).status, 404);
  assert.equal((await fetchRaw("../etc/passwd")).status, 404); // URL parsing drops the ..; never outside root
});
