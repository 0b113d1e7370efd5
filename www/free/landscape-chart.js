// A small chart of the loss landscape along the straight line from the initial to the final parameters,
// θ(α) = (1−α)·θ₀ + α·θ*, as computed by `FreePlay.interpolateFromInit` (uPlot, like loss-chart.js).
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { seriesColour } from "../lab/figure-style.js";

const HEIGHT = 220;

/** Training-set loss (left axis) and accuracy (right axis, 0–1) against α. */
export class LandscapeChart {
  constructor(element) {
    this.element = element;
    this.plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth),
        height: HEIGHT,
        scales: { x: { time: false }, acc: { range: [0, 1] } },
        axes: [
          { label: "α   (0: initial, 1: final parameters)" },
          { label: "cross-entropy" },
          { scale: "acc", side: 1, label: "accuracy", grid: { show: false } },
        ],
        series: [
          { label: "α" },
          { label: "training-set loss", stroke: seriesColour(1), width: 2, points: { show: true, size: 5 } },
          { label: "accuracy", scale: "acc", stroke: seriesColour(2), width: 1, dash: [4, 3] },
        ],
      },
      [[], [], []],
      element,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(320, element.clientWidth), height: HEIGHT }))
      .observe(element);
  }

  clear() {
    this.plot.setData([[], [], []]);
    this.element.dataset.points = "0";
    this.element.hidden = true;
  }

  /** Shows an `Interpolation` ({alpha, loss, accuracy}). */
  show({ alpha, loss, accuracy }) {
    this.element.hidden = false;
    this.plot.setSize({ width: Math.max(320, this.element.clientWidth), height: HEIGHT });
    this.plot.setData([alpha, loss.map((v) => (Number.isFinite(v) ? v : null)), accuracy]);
    const at = (a) => loss[alpha.indexOf(a)];
    Object.assign(this.element.dataset, { points: String(alpha.length), lossAt0: String(at(0)), lossAt1: String(at(1)) });
  }
}
