// A live chart of training loss against step (uPlot, vendored into www/vendor/ by scripts/build-web).
import uPlot from "./vendor/uplot/uPlot.esm.js";

/** Mini-batch loss of every step, and the full-training-set loss at each evaluation. */
export class LossChart {
  constructor(element) {
    this.element = element;
    this.steps = [];
    this.batchLoss = [];
    this.trainLoss = [];
    this.plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth),
        height: 320,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, { label: "cross-entropy" }],
        series: [
          { label: "step" },
          { label: "mini-batch loss", stroke: "#8fb3f0", width: 1 },
          { label: "training-set loss", stroke: "#b42318", width: 2, spanGaps: true,
            points: { show: true, size: 6 } },
        ],
      },
      [this.steps, this.batchLoss, this.trainLoss],
      element,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(320, element.clientWidth), height: 320 }))
      .observe(element);
  }

  clear() {
    this.steps.length = this.batchLoss.length = this.trainLoss.length = 0;
    this.redraw();
  }

  /** Appends the mini-batch losses of steps first, first+1, … */
  addSteps(first, losses) {
    losses.forEach((loss, i) => {
      this.steps.push(first + i + 1); // the loss of step s is measured before update s+1: plot it at s+1
      this.batchLoss.push(Number.isFinite(loss) ? loss : null);
      this.trainLoss.push(null);
    });
  }

  /** Marks the full-training-set loss after `step` steps. */
  addEval(step, loss) {
    const i = this.steps.lastIndexOf(step);
    if (i >= 0) this.trainLoss[i] = loss;
  }

  redraw() {
    this.plot.setData([this.steps, this.batchLoss, this.trainLoss]);
    this.element.dataset.points = String(this.steps.length);
  }
}
