// A small static file server for www/ on the loopback interface, on a port the OS picks.
// Used by scripts/serve (run directly) and by the end-to-end tests (imported: startServer()).
// Node's standard library only. `.wasm` is served as application/wasm so streaming compilation works.
// `.gz` files (the IDX data sets of www/data) are served as opaque bytes: `application/gzip` and never a
// `Content-Encoding`, so the browser hands the page the gzip stream itself (the Rust IDX reader inflates
// it) and Content-Length is the size of those bytes (the page shows download progress against it).
import { createServer } from "node:http";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".gz": "application/gzip",
};

/** Serves `root` on 127.0.0.1 at an OS-chosen port; resolves to { url, close }. */
export async function startServer(root, { log = false } = {}) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad request");
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end("forbidden");
      return;
    }
    let size;
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      size = (await stat(file)).size;
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
      if (log) console.log(`404 ${path}`);
      return;
    }
    // No content-encoding, ever: every file goes out as the bytes on disk.
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": String(size),
      "cache-control": "no-store",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => server.close(ok)),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(fileURLToPath(new URL(".", import.meta.url)), "..", "www");
  const { url } = await startServer(root, { log: true });
  console.log(`sgd-lab is served at ${url}  (Ctrl-C to stop)`);
}
