// The free play's 2-D loss landscape: asks the engine (`FreePlay.landscape2d`) for the grid and the plotters
// heatmap (the CLI's figure: contours, trajectory), shows the SVG as an image (no inline markup, so the strict
// CSP holds), and reads values on hover. The pointer is mapped to (α, β) with the plot-area box the SVG was
// drawn with (`plot_box`, from Rust), so nothing here guesses where the axes are; the loss shown is the
// nearest grid point's.
//
// Test hooks (tests/e2e/landscape2d.test.mjs): #landscape2d[data-state="idle|computing|shown|error"]
// [data-points, data-finite, data-directions, data-trajectory], #landscape2d-readout[data-alpha, data-beta,
// data-loss] (empty off the plot area).

const fmt = (v) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(2));

/** The nearest index of `value` in the increasing `axis`. */
function nearest(axis, value) {
  let best = 0;
  for (let i = 1; i < axis.length; i++) if (Math.abs(axis[i] - value) < Math.abs(axis[best] - value)) best = i;
  return best;
}

/**
 * Plane coordinates under pixel (px, py) of the SVG, or null outside the plot area.
 * @param {import("../pkg/sgd_lab.js").PlotBox} box
 */
export function planeAt(box, px, py) {
  const fx = (px - box.left) / box.width;
  const fy = (py - box.top) / box.height;
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) return null;
  const [x0, x1] = box.x_range;
  const [y0, y1] = box.y_range;
  return { alpha: x0 + fx * (x1 - x0), beta: y1 - fy * (y1 - y0) };
}

export class Landscape2dView {
  /** `run(options)` resolves to a `Landscape2d` (the page serialises it with the training steps). */
  constructor(run) {
    this.run = run;
    this.$ = (id) => document.getElementById(id);
    this.figure = this.$("landscape2d");
    this.button = this.$("landscape2d-draw");
    this.img = this.$("landscape2d-svg");
    this.readout = this.$("landscape2d-readout");
    this.url = null;
    this.result = null;
    this.button.addEventListener("click", () => this.draw());
    this.img.addEventListener("pointermove", (e) => this.hover(e));
    this.img.addEventListener("pointerleave", () => this.showValue(null));
  }

  /** Enables the button once a run has an engine (`false`: no engine, e.g. before the first run). */
  setAvailable(available) {
    this.available = available;
    this.button.disabled = !available || this.figure.dataset.state === "computing";
  }

  /** Forgets the last landscape (a new run starts). */
  clear() {
    this.result = null;
    this.figure.dataset.state = "idle";
    this.$("landscape2d-plot").hidden = true;
    this.$("landscape2d-download").hidden = true;
    this.$("landscape2d-status").textContent = "";
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }

  async draw() {
    const status = this.$("landscape2d-status");
    const options = { directions: this.$("landscape2d-directions").value, grid: Number(this.$("landscape2d-grid").value) };
    this.figure.dataset.state = "computing";
    this.button.disabled = true;
    status.textContent = `Evaluating ${options.grid} × ${options.grid} points…`;
    const t0 = performance.now();
    try {
      const l = await this.run(options);
      this.show(l);
      const explained = l.explained ? ` · PCA explains ${(100 * l.explained[0]).toFixed(1)}% + ${(100 * l.explained[1]).toFixed(1)}%` : "";
      status.textContent = `step ${l.step}, ${l.xs.length * l.ys.length} points on ${l.examples} examples in ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s${explained}`;
    } catch (err) {
      this.figure.dataset.state = "error";
      status.textContent = `Could not draw the landscape: ${err?.message ?? err}`;
    } finally {
      this.button.disabled = !this.available;
    }
  }

  /** Shows a `Landscape2d`. */
  show(l) {
    this.result = l;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = URL.createObjectURL(new Blob([l.svg], { type: "image/svg+xml" }));
    this.img.src = this.url;
    const link = this.$("landscape2d-download");
    link.href = this.url;
    link.download = `landscape-2d-${l.directions}-step${l.step}.svg`;
    link.hidden = false;
    this.$("landscape2d-plot").hidden = false;
    Object.assign(this.figure.dataset, {
      state: "shown",
      points: String(l.loss.length),
      finite: String(l.loss.every(Number.isFinite)),
      directions: l.directions,
      trajectory: String(l.trajectory.length),
    });
    this.showValue(null);
  }

  hover(e) {
    const l = this.result;
    if (!l) return;
    const rect = this.img.getBoundingClientRect();
    const box = l.plot_box;
    const px = ((e.clientX - rect.left) / rect.width) * box.svg_width;
    const py = ((e.clientY - rect.top) / rect.height) * box.svg_height;
    this.showValue(planeAt(box, px, py));
  }

  showValue(at) {
    const l = this.result;
    if (!l || !at) {
      Object.assign(this.readout.dataset, { alpha: "", beta: "", loss: "" });
      this.readout.textContent = "Point at the heatmap to read α, β and the loss.";
      return;
    }
    const i = nearest(l.xs, at.alpha);
    const j = nearest(l.ys, at.beta);
    const loss = l.loss[j * l.xs.length + i];
    const acc = l.accuracy[j * l.xs.length + i];
    Object.assign(this.readout.dataset, { alpha: String(at.alpha), beta: String(at.beta), loss: String(loss) });
    this.readout.textContent = `α = ${fmt(at.alpha)}, β = ${fmt(at.beta)} · nearest grid point (${fmt(l.xs[i])}, ` +
      `${fmt(l.ys[j])}): loss ${fmt(loss)}, accuracy ${(100 * acc).toFixed(1)}%`;
  }
}
