// The lab page's view of what a run leaves: the claims report (the table of claims and verdicts, caveats,
// Markdown tables and the report's SVG figures, each downloadable as SVG or as PNG drawn at 2× for slides) and
// the exports — results JSON and CSV, claims Markdown, a finished group's trained parameters as safetensors
// (the worker keeps the last finished Experiment for that) — and the import of a saved results file.
//
// Test hooks (read by tests/e2e/lab.test.mjs and lab-share.test.mjs): #claims tbody tr[data-verdict],
// #report-figures img, .report-figure[data-name] a.png-link, #params-job, #export-params.
import { $, showError } from "./dom.js";

/** Saves `text` (a string or a Blob) as a file called `name`. */
function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Draws a loaded SVG image into a canvas at twice its size and downloads it as PNG. */
async function downloadPng(img, name) {
  if (!img.complete || !img.naturalWidth) await img.decode();
  const canvas = Object.assign(document.createElement("canvas"), { width: img.naturalWidth * 2, height: img.naturalHeight * 2 });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // the SVG has no background of its own: slides get white, not transparent
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the canvas gave no PNG"))), "image/png"));
  download(name, blob, "image/png");
}

/** The report and the exports of the lab page (see the top of this file). */
export class ReportView {
  /**
   * @param {{ state: object, client: import("./client.js").LabClient }} lab page.js's state (`saved`: what
   *   the export buttons save, { id, scale, json, csv, report, paramsJobs }) and client
   */
  constructor(lab) {
    this.lab = lab;
    /** The blob: URLs of the report's figures (revoked when the report goes). */
    this.blobUrls = [];
    const saved = () => lab.state.saved;
    $("export-json").addEventListener("click", () => {
      const s = saved();
      download(`${s.id}-${s.scale}-results.json`, s.json, "application/json");
    });
    $("export-csv").addEventListener("click", () => {
      const s = saved();
      download(`${s.id}-${s.scale}-results.csv`, s.csv, "text/csv");
    });
    $("export-md").addEventListener("click", () => {
      const s = saved();
      download(`${s.id}-${s.scale}-claims.md`, s.report.markdown, "text/markdown");
    });
    $("export-params").addEventListener("click", () => lab.client.params(Number($("params-job").value)));
    $("import-file").addEventListener("change", async () => {
      const file = $("import-file").files[0];
      if (!file) return;
      showError("");
      lab.client.importResults(await file.text(), file.name);
      $("import-file").value = "";
    });
  }

  /** The export and import controls in `phase`. */
  renderControls(phase) {
    const busy = this.lab.client.busy;
    $("import-file").disabled = busy || phase === "loading";
    const saved = this.lab.state.saved;
    $("export-json").disabled = !saved?.json;
    $("export-csv").disabled = !saved?.csv;
    $("export-md").disabled = !saved?.report;
    const jobs = saved?.paramsJobs ?? [];
    $("params-job").disabled = busy || !jobs.length;
    $("export-params").disabled = busy || !jobs.length;
  }

  /** What the export buttons save from now on: { id, scale, json, csv, report? }. */
  keep(saved) {
    this.lab.state.saved = saved;
  }

  /** The results so far of the run in progress (a `results` message): exportable at once. */
  keepResults(msg) {
    const { state } = this.lab;
    state.saved = { ...state.saved, id: msg.results.config.id, scale: state.run?.scale, json: msg.json, csv: msg.csv };
  }

  /** Lists the groups whose trained parameters the worker can export (those finished in this session's run). */
  setParamsJobs(jobs) {
    const { state } = this.lab;
    if (state.saved) state.saved.paramsJobs = jobs;
    $("params-job").replaceChildren(...jobs.map((j) => Object.assign(document.createElement("option"),
      { value: String(j.index), textContent: `Group ${j.index + 1}: ${j.label}` })));
  }

  /** @param {import("./client.js").ParamsMessage} msg the parameters asked for: saved as a file */
  onParams(msg) {
    download(`${this.lab.state.saved?.id ?? "sgd-lab"}-group-${msg.job + 1}-params.safetensors`, msg.bytes, "application/octet-stream");
    $("copy-status").textContent = "";
  }

  /** Hides the report and frees its figures (a new plan or run). */
  clear() {
    $("report").hidden = true;
    $("report-note").hidden = true;
    $("claims").tBodies[0].replaceChildren();
    for (const url of this.blobUrls.splice(0)) URL.revokeObjectURL(url);
    $("report-figures").replaceChildren();
  }

  /** Shows the claims report (or, without one, only `note`). @param {import("./client.js").Report | null} report */
  show(report, { note = "" } = {}) {
    $("report").hidden = false;
    $("report-note").hidden = !note;
    $("report-note").textContent = note;
    if (!report) {
      $("claims").tBodies[0].replaceChildren();
      $("report-scale").textContent = "";
      return;
    }
    $("report-title").textContent = `Claims report · ${report.title}`;
    $("report-scale").textContent = report.scale;
    const body = $("claims").tBodies[0];
    body.replaceChildren(...report.claims.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.verdict = c.verdict;
      for (const text of [c.statement, c.statistic, c.value]) tr.insertCell().textContent = text;
      const v = tr.insertCell();
      v.className = `verdict verdict-${c.verdict}`;
      v.textContent = { holds: "holds", does_not_hold: "does not hold", inconclusive: "inconclusive" }[c.verdict] ?? c.verdict;
      return tr;
    }));
    $("caveats").replaceChildren(...report.caveats.map((c) => Object.assign(document.createElement("li"), { textContent: c })));
    $("tables").textContent = report.tables.join("\n\n");
    for (const url of this.blobUrls.splice(0)) URL.revokeObjectURL(url);
    const id = report.id;
    $("report-figures").replaceChildren(...report.figures.map((f) => {
      // The SVG comes from our own Rust code (plotters); shown as an image, it cannot run anything anyway.
      const url = URL.createObjectURL(new Blob([f.svg], { type: "image/svg+xml" }));
      this.blobUrls.push(url);
      const fig = document.createElement("figure");
      fig.className = "report-figure";
      fig.dataset.name = f.name;
      const img = Object.assign(document.createElement("img"), { src: url, alt: f.title, decoding: "async" });
      const cap = document.createElement("figcaption");
      const link = Object.assign(document.createElement("a"), { href: url, download: `${id}-${f.name}.svg`, textContent: "SVG" });
      link.setAttribute("aria-label", `Download the figure “${f.title}” as SVG`);
      const png = Object.assign(document.createElement("a"), { href: "#", className: "png-link", textContent: "PNG" });
      png.setAttribute("role", "button");
      png.setAttribute("aria-label", `Download the figure “${f.title}” as PNG (twice the size, for slides)`);
      png.addEventListener("click", (e) => {
        e.preventDefault();
        downloadPng(img, `${id}-${f.name}.png`).catch((err) => showError(`PNG of ${f.name}: ${err.message}`));
      });
      const links = Object.assign(document.createElement("span"), { className: "fig-downloads hide-as-export" });
      links.append(link, png);
      cap.append(`${f.title} · `, links);
      fig.append(img, cap);
      return fig;
    }));
  }
}
