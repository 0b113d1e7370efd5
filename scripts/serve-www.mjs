// A small static file server for www/ on the loopback interface, on a port the OS picks.
// Used by scripts/serve (run directly) and by the end-to-end tests (imported: startServer()).
// Node's standard library only. `.wasm` is served as application/wasm so streaming compilation works.
// `.gz` files (the IDX data sets of www/data) are served as opaque bytes: `application/gzip` and never a
// `Content-Encoding`, so the browser hands the page the gzip stream itself (the Rust IDX reader inflates
// it) and Content-Length is the size of those bytes (the page shows download progress against it).
//
// Every response carries the site's Content-Security-Policy (CSP below; each HTML page repeats it, minus
// frame-ancestors, in a <meta> tag for static hosts that send no headers; tests/e2e/embed.test.mjs checks they
// agree). Scripts only from this origin and no eval: 'wasm-unsafe-eval' is what compiling the wasm needs, and
// nothing else is allowed to run code from strings. Styles only from files ('self', no 'unsafe-inline'):
// the pages have no <style> or style attributes, and uPlot and the <sgd-lab> element set styles through the
// CSSOM (element.style.x = …), which CSP does not restrict. Images also from blob: (the report's SVG figures)
// and data: (the empty favicon). Workers from 'self' only. Frames: embed.html may be framed by any site
// (frame-ancestors *: that is its purpose); every other page only by pages of this origin (the examples).
// CORS is open (Access-Control-Allow-Origin: *: public static files, no cookies, no credentials) so that a page
// on another origin can load www/embed/sgd-lab.js and its worker, wasm and data as modules.
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

/** The Content-Security-Policy of every page (the <meta> tags say the same, without frame-ancestors). */
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "child-src 'self'",
  "frame-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join("; ");

/** Who may frame a page: anyone for the embed page, this origin for the rest (header only: <meta> cannot). */
export const frameAncestors = (path) => (/\/embed\.html$/.test(path) ? "*" : "'self'");

/** The security headers of a response for URL path `path`. */
export function siteHeaders(path) {
  return {
    "content-security-policy": `${CSP}; frame-ancestors ${frameAncestors(path)}`,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "access-control-allow-origin": "*",
  };
}

/**
 * Serves `root` on 127.0.0.1 at an OS-chosen port; resolves to { url, close }. `secure: false` leaves out the
 * security headers (the e2e tests use it to play a third-party host page with no policy of its own).
 */
export async function startServer(root, { log = false, secure = true } = {}) {
  const base = resolve(root);
  const securityHeaders = secure ? siteHeaders : () => ({});
  const server = createServer(async (req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      res.writeHead(400, { "content-type": "text/plain", ...securityHeaders("") }).end("bad request");
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403, securityHeaders(path)).end("forbidden");
      return;
    }
    let size;
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      size = (await stat(file)).size;
    } catch {
      res.writeHead(404, { "content-type": "text/plain", ...securityHeaders(path) }).end(`not found: ${path}`);
      if (log) console.log(`404 ${path}`);
      return;
    }
    // No content-encoding, ever: every file goes out as the bytes on disk.
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": String(size),
      "cache-control": "no-store",
      ...securityHeaders(file.slice(base.length).split(sep).join("/")),
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
    /** Stops listening and drops open (keep-alive) connections, so a test can take the server away. */
    close: () => new Promise((ok) => {
      server.close(ok);
      server.closeAllConnections();
    }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(fileURLToPath(new URL(".", import.meta.url)), "..", "www");
  const { url } = await startServer(root, { log: true });
  console.log(`sgd-lab is served at ${url}  (Ctrl-C to stop)`);
}
