// The benchmark page (www/bench/index.html, opened as bench/): reads the settings (from the form, or
// ?arch=&models=&batch=&steps=&reps=&eval=&lambda=&backends=&autorun=1 in the address, checked and named when
// wrong; arch may also be hidden widths such as 32,32), starts the worker (worker.js), fills the table with
// each backend's medians as they arrive and builds the Markdown that "Copy as Markdown" puts on the clipboard.
const $ = (id) => document.getElementById(id);
const root = $("bench");
const setState = (s) => { root.dataset.state = s; };
const status = (text) => { $("status").textContent = text; };

const FIELDS = [
  // [input id, query key, worker key, min, max]
  ["models", "models", "models", 1, 64],
  ["batch", "batch", "batch", 1, 4096],
  ["steps", "steps", "steps", 1, 10000],
  ["reps", "reps", "reps", 1, 50],
  ["eval-examples", "eval", "evalExamples", 1, 65536],
  ["lambda-examples", "lambda", "lambdaExamples", 1, 65536],
];

const rows = [];
let worker = null;

/** The settings of the form, or an error naming the field and what is allowed. */
function settings() {
  const o = { arch: $("arch").value, backends: $("backends").value.split(",") };
  for (const [id, key, wkey, lo, hi] of FIELDS) {
    const raw = $(id).value.trim();
    const v = Number(raw);
    if (!/^\d+$/.test(raw) || v < lo || v > hi) throw new Error(`${key}: must be a whole number from ${lo} to ${hi} (got "${raw}")`);
    o[wkey] = v;
  }
  return o;
}

/** Copies ?key=value settings from the address into the form; names a bad key or value. */
function fromAddress() {
  const q = new URLSearchParams(location.search);
  const known = new Set(["arch", "backends", "autorun", ...FIELDS.map((f) => f[1])]);
  for (const k of q.keys()) if (!known.has(k)) throw new Error(`unknown setting "${k}" in the address (allowed: ${[...known].join(", ")})`);
  if (q.has("arch") && /^\d+(,\d+)*$/.test(q.get("arch"))) {
    // Custom hidden widths (small runs, e.g. tests): an extra option; the engine checks the sizes.
    const opt = new Option(`784-${q.get("arch").split(",").join("-")}-10`, q.get("arch"));
    $("arch").append(opt);
  }
  for (const [key, sel, allowed] of [["arch", "arch", [...$("arch").options].map((o) => o.value)], ["backends", "backends", ["gpu,cpu", "gpu", "cpu"]]]) {
    if (!q.has(key)) continue;
    if (!allowed.includes(q.get(key))) throw new Error(`${key}: must be one of ${allowed.join(", ")} (got "${q.get(key)}")`);
    $(sel).value = q.get(key);
  }
  for (const [id, key] of FIELDS) if (q.has(key)) $(id).value = q.get(key);
  return q.get("autorun") === "1";
}

const fmt = (v, d = 0) => v.toFixed(d);

function addRow(r) {
  rows.push(r);
  const tr = document.createElement("tr");
  for (const v of [r.backend, r.widths, r.batch, r.models, fmt(r.stepsPerS, 2), fmt(r.samplesPerS), fmt(r.evalPerS),
    `${fmt(r.lambdaSeconds, 3)} (${r.lambdaExamples})`]) {
    const td = document.createElement("td");
    td.textContent = String(v);
    tr.append(td);
  }
  tr.dataset.onGpu = String(r.onGpu);
  $("results").tBodies[0].append(tr);
}

function markdown() {
  const lines = [
    `sgd-lab browser benchmark · ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `Browser: ${navigator.userAgent}`,
    "",
    "| backend | widths | B | K | steps/s | samples·models/s | eval examples·models/s | λ_max s (examples) |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.backend} | ${r.widths} | ${r.batch} | ${r.models} | ${fmt(r.stepsPerS, 2)} | ${fmt(r.samplesPerS)} | ${fmt(r.evalPerS)} | ${fmt(r.lambdaSeconds, 3)} (${r.lambdaExamples}) |`),
  ];
  return lines.join("\n") + "\n";
}

function run() {
  let o;
  try {
    o = settings();
  } catch (e) {
    status(e.message);
    setState("error");
    return;
  }
  rows.length = 0;
  $("results").tBodies[0].replaceChildren();
  $("copy").disabled = true;
  $("run").disabled = true;
  setState("running");
  worker.postMessage({ type: "run", ...o });
}

function onMessage({ data: m }) {
  switch (m.type) {
    case "ready":
      setState("idle");
      status("Ready.");
      $("run").disabled = false;
      if (autorun) run();
      break;
    case "status":
      status(m.text);
      break;
    case "row":
      addRow(m);
      break;
    case "skipped":
      status(`WebGPU skipped: ${m.reason}`);
      root.dataset.gpuSkipped = m.reason;
      break;
    case "done":
      $("markdown").textContent = markdown();
      $("copy").disabled = rows.length === 0;
      $("run").disabled = false;
      status(`Done: ${rows.length} row${rows.length === 1 ? "" : "s"}.${root.dataset.gpuSkipped ? ` WebGPU skipped: ${root.dataset.gpuSkipped}` : ""}`);
      setState("done");
      break;
    case "error":
      status(`Error: ${m.message}`);
      $("run").disabled = false;
      setState("error");
      break;
  }
}

let autorun = false;
try {
  autorun = fromAddress();
} catch (e) {
  status(e.message);
  setState("error");
}
if (root.dataset.state !== "error") {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = onMessage;
  worker.onerror = (e) => { status(`Error: the worker failed (${e.message})`); setState("error"); };
  $("bench-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("copy").addEventListener("click", async () => {
    const md = $("markdown").textContent;
    $("markdown").hidden = false;
    try {
      await navigator.clipboard.writeText(md);
      $("copy-status").textContent = "Copied.";
    } catch (e) {
      $("copy-status").textContent = `The clipboard refused (${e.message}); the Markdown is shown below to copy by hand.`;
    }
  });
}
