// Loads a real data set's four gzipped IDX files from data/<name>/ (the layout scripts/fetch-data makes),
// with progress, and keeps them in the browser's Cache API so a reload reads them from disk, not the network.
//
// The cache key of a file carries its sha256 from data/SHA256SUMS (written by scripts/fetch-data), so new
// data on the server is never shadowed by an old cached copy; downloaded bytes are checked against that
// hash before they are cached (where crypto.subtle exists). The bytes stay gzipped: the Rust IDX reader
// inflates them (the server sends them as application/gzip without Content-Encoding).

/** The real data sets, with the credit the page shows next to them (see data/<name>/COPYRIGHT). */
export const REAL_SETS = {
  "fashion-mnist": { label: "Fashion-MNIST", credit: "© Zalando SE, MIT licence" },
  mnist: { label: "MNIST", credit: "Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0" },
};

/** File names in the order FreePlay.createWithData takes them. */
export const IDX_FILES = [
  "train-images-idx3-ubyte.gz",
  "train-labels-idx1-ubyte.gz",
  "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz",
];

const CACHE_NAME = "sgd-lab-data-v1";
let memo = null; // { name, files }: the last set loaded in this tab

/** data/SHA256SUMS as a Map from "name/file" to its hex sha256. */
async function readManifest(base) {
  const url = new URL("data/SHA256SUMS", base);
  let res;
  try {
    res = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new Error(`cannot fetch ${url.pathname}: ${e.message}`);
  }
  if (!res.ok) {
    throw new Error(`${url.pathname}: HTTP ${res.status}; the data sets are not on this server (run scripts/fetch-data)`);
  }
  const sums = new Map();
  for (const line of (await res.text()).split("\n")) {
    const m = line.match(/^([0-9a-f]{64})\s+\*?(\S+)$/);
    if (m) sums.set(m[2], m[1]);
  }
  return sums;
}

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads a response body chunk by chunk, calling `onBytes(n)` per chunk; checks it against Content-Length. */
async function readBody(res, path, onBytes) {
  const declared = Number(res.headers.get("content-length"));
  const reader = res.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onBytes(value.length);
  }
  if (declared && received !== declared) {
    throw new Error(`${path}: received ${received} bytes, the server announced ${declared} (download cut short?)`);
  }
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Loads data set `name` ("fashion-mnist" | "mnist") from `data/<name>/` relative to `base`.
 * `onProgress({ received, total, source })` is called as bytes arrive (total = sum of Content-Lengths).
 * Resolves to { files: Uint8Array[4] (IDX_FILES order), source: "memory" | "cache" | "network" | "mixed",
 * bytes, cached: whether the Cache API holds them now, note: why not, if it does not }.
 */
export async function loadRealData(name, { base = location.href, onProgress = () => {} } = {}) {
  if (!REAL_SETS[name]) throw new Error(`unknown data set '${name}'`);
  if (memo?.name === name) {
    const bytes = memo.files.reduce((a, f) => a + f.length, 0);
    onProgress({ received: bytes, total: bytes, source: "memory" });
    return { files: memo.files, source: "memory", bytes, cached: true };
  }
  const sums = await readManifest(base);
  // The Cache API exists only in secure contexts (https, localhost, 127.0.0.1): elsewhere, download each time.
  const cache = globalThis.caches ? await caches.open(CACHE_NAME).catch(() => null) : null;
  let note = cache ? undefined : "the Cache API needs a secure context (https or localhost), so the files are not kept";
  const entries = await Promise.all(IDX_FILES.map(async (file) => {
    const path = `data/${name}/${file}`;
    const sum = sums.get(`${name}/${file}`);
    if (!sum) throw new Error(`data/SHA256SUMS does not list ${name}/${file} (run scripts/fetch-data)`);
    const key = new URL(`${path}?sha256=${sum}`, base).href;
    const hit = cache && (await cache.match(key));
    if (hit) return { path, sum, key, res: hit, source: "cache" };
    const res = await fetch(new URL(path, base), { cache: "no-store" });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} (run scripts/fetch-data)`);
    if (res.headers.get("content-encoding")) {
      throw new Error(`${path}: the server sent it with Content-Encoding ${res.headers.get("content-encoding")}; it must send the .gz bytes as they are`);
    }
    return { path, sum, key, res, source: "network" };
  }));
  const sources = new Set(entries.map((e) => e.source));
  const source = sources.size === 1 ? entries[0].source : "mixed";
  const total = entries.reduce((a, e) => a + Number(e.res.headers.get("content-length") || 0), 0);
  let received = 0;
  onProgress({ received, total, source });
  const files = await Promise.all(entries.map(async (e) => {
    const bytes = await readBody(e.res, e.path, (n) => {
      received += n;
      onProgress({ received, total, source });
    });
    if (e.source === "network") {
      if (globalThis.crypto?.subtle) {
        const got = await sha256Hex(bytes);
        if (got !== e.sum) throw new Error(`${e.path}: sha256 ${got} does not match data/SHA256SUMS (${e.sum}); run scripts/fetch-data --force`);
      }
      if (cache) {
        const headers = { "content-type": "application/gzip", "content-length": String(bytes.length) };
        try {
          await cache.put(e.key, new Response(bytes, { headers }));
        } catch (err) {
          note = `not cached: ${err.message}`; // e.g. over the storage quota; the run goes on
        }
      }
    }
    return bytes;
  }));
  memo = { name, files };
  return { files, source, bytes: received, cached: Boolean(cache) && !note, note };
}
