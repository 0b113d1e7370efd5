// The service worker of sgd-lab's static site: keeps the app shell (HTML, JS, CSS, the vendored uPlot, the wasm
// and data/SHA256SUMS) so the lab, the embed page and the examples reload and run without a network.
//
// Why network first: online, every request goes to the server as before (so a new build or an edited file is
// seen at once, with no "reload twice" step); what comes back is stored, and the stored copy answers only when
// the network fails. Why precache: a page never opened online (embed.html after only the lab was visited) still
// opens offline. The cache's name carries the build id that scripts/build-web writes into pkg/shell.js (a hash
// of every shell file, the wasm included), so a new build is a byte-different pkg/shell.js, which makes the
// browser install this worker again: the new cache is filled and the old one deleted on activation.
// The data sets' .gz files are not kept here: data-loader.js already keeps them in its own Cache API cache
// (sgd-lab-data-v1, keyed by their sha256), which works offline; storing them twice would double 40 MB.
importScripts("pkg/shell.js"); // self.SGD_LAB_SHELL = { build, files }

const { build, files } = self.SGD_LAB_SHELL;
const PREFIX = "sgd-lab-shell-";
const CACHE = `${PREFIX}${build}`;
const SCOPE = new URL("./", self.location.href);

/** The cache key of a request: its URL without the query, a folder as its index.html. */
function keyOf(url) {
  const u = new URL(url);
  u.search = "";
  u.hash = "";
  if (u.pathname.endsWith("/")) u.pathname += "index.html";
  return u.href;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // cache: "reload" bypasses the HTTP cache, so the files stored are the ones this build id describes.
    await cache.addAll(files.map((f) => new Request(new URL(f, SCOPE), { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  if (url.pathname.endsWith(".gz")) return; // the data sets: data-loader.js caches them (see above)
  event.respondWith((async () => {
    try {
      const res = await fetch(req);
      if (res.ok && res.type === "basic") {
        const copy = res.clone();
        event.waitUntil(caches.open(CACHE).then((c) => c.put(keyOf(req.url), copy)));
      }
      return res;
    } catch (offline) {
      const hit = await caches.match(keyOf(req.url), { cacheName: CACHE });
      if (hit) return hit;
      throw offline;
    }
  })());
});
