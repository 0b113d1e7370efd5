// A live chart of training loss against step (uPlot, vendored into www/vendor/ by scripts/build-web). Its points
// are a BoundedCurve (bounded-curve.js): one per step up to MAX_POINTS, then coarser, so a run of millions of
// steps keeps a few thousand points, not millions.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { BoundedCurve } from "./bounded-curve.js";
import { seriesColour } from "../lab/figure-style.js";

/** Mini-batch loss of every step (past MAX_POINTS steps, its mean over each point's steps), and the full-training-set loss at each evaluation. */
export class LossChart {
  constructor(element) {
    this.element = element;
    this.curve = new BoundedCurve();
    this.plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth),
        height: 320,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, { label: "cross-entropy" }],
        series: [
          { label: "step" },
          // The mini-batch loss is noise around the training-set loss: the same hue as the first series, faded.
          { label: "mini-batch loss", stroke: `${seriesColour(0)}80`, width: 1 },
          { label: "training-set loss", stroke: seriesColour(1), width: 2, spanGaps: true,
            points: { show: true, size: 6 } },
        ],
      },
      [this.curve.steps, this.curve.batchLoss, this.curve.trainLoss],
      element,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(320, element.clientWidth), height: 320 }))
      .observe(element);
  }

  clear() {
    this.curve.clear();
    this.redraw();
  }

  /** Appends the mini-batch losses of steps first, first+1, … */
  addSteps(first, losses) {
    this.curve.addSteps(first, losses);
  }

  /** Marks the full-training-set loss after `step` steps. */
  addEval(step, loss) {
    this.curve.addEval(step, loss);
  }

  /** Draws the points; data-points: how many are kept, data-steps: the last step they cover (or will, once full). */
  redraw() {
    const c = this.curve;
    this.plot.setData([c.steps, c.batchLoss, c.trainLoss]);
    this.element.dataset.points = String(c.steps.length);
    this.element.dataset.steps = String(c.lastStep);
  }
}
