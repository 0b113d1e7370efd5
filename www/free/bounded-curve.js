// The points of free play's live loss curve (loss-chart.js), kept within a bound. Free play takes up to
// 10 000 000 steps, and a point per step kept forever is memory that grows for as long as the tab trains
// (scripts/page-soak.mjs measured it: about 40 bytes a step, 2.4 MiB after 60 000 steps). So at most MAX_POINTS
// points are kept per series: up to that, one point per step; when full, each pair of neighbours merges into one
// (the later step, the mean of the two mini-batch losses, the evaluation of either) and from then on every point
// stands for twice as many steps (the mean of their finite mini-batch losses). The curve keeps its shape at the
// resolution a chart a few hundred pixels wide can show. No DOM: tests/e2e/bounded-curve.test.mjs runs it in node.

/** The most points kept per series (a power of two: halving keeps whole pairs). */
export const MAX_POINTS = 4096;

const meanOf = (a, b) => (a == null ? b : b == null ? a : (a + b) / 2);
const emptyBucket = () => ({ count: 0, sum: 0, finite: 0, evalLoss: null });

/** Three aligned series (uPlot's data): step, mini-batch loss (null: not finite), training-set loss (null: none). */
export class BoundedCurve {
  /** `max`: the most points kept (an even number ≥ 2; MAX_POINTS unless a test asks for fewer). */
  constructor(max = MAX_POINTS) {
    if (!Number.isInteger(max) || max < 2 || max % 2) throw new RangeError(`max: must be an even whole number ≥ 2 (got ${max})`);
    this.max = max;
    this.steps = [];
    this.batchLoss = [];
    this.trainLoss = [];
    this.clear();
  }

  /** Forgets every point; back to one point per step. */
  clear() {
    this.steps.length = this.batchLoss.length = this.trainLoss.length = 0;
    /** Steps per stored point: 1 until `max` points were stored, then doubling at each halving. */
    this.stride = 1;
    this.bucket = emptyBucket();
    /** The last step added (points stand for the steps up to theirs; the bucket being filled may hold more). */
    this.lastStep = 0;
  }

  /** Appends the mini-batch losses of steps first + 1, first + 2, … (the loss of step s is plotted at s + 1). */
  addSteps(first, losses) {
    losses.forEach((loss, i) => {
      const b = this.bucket;
      this.lastStep = first + i + 1;
      b.count += 1;
      if (Number.isFinite(loss)) {
        b.sum += loss;
        b.finite += 1;
      }
      if (b.count === this.stride) this.flush();
    });
  }

  /** Stores the full bucket as one point; halves the resolution when `max` points are stored. */
  flush() {
    const b = this.bucket;
    this.steps.push(this.lastStep);
    this.batchLoss.push(b.finite ? b.sum / b.finite : null);
    this.trainLoss.push(b.evalLoss);
    this.bucket = emptyBucket();
    if (this.steps.length < this.max) return;
    const half = this.max / 2;
    for (let j = 0; j < half; j++) {
      const a = 2 * j;
      this.steps[j] = this.steps[a + 1];
      this.batchLoss[j] = meanOf(this.batchLoss[a], this.batchLoss[a + 1]);
      this.trainLoss[j] = this.trainLoss[a + 1] ?? this.trainLoss[a];
    }
    this.steps.length = this.batchLoss.length = this.trainLoss.length = half;
    this.stride *= 2;
  }

  /** Marks the full-training-set loss after `step` steps on the point whose steps include it (none: ignored). */
  addEval(step, loss) {
    const n = this.steps.length;
    if (n && step <= this.steps[n - 1]) {
      // point i stands for the steps after steps[i - 1] up to steps[i] (point 0: the `stride` steps up to steps[0])
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.steps[mid] < step) lo = mid + 1;
        else hi = mid;
      }
      if (step > (lo > 0 ? this.steps[lo - 1] : this.steps[0] - this.stride)) this.trainLoss[lo] = loss;
    } else if (step > (n ? this.steps[n - 1] : 0) && step <= this.lastStep) {
      this.bucket.evalLoss = loss; // within the bucket being filled
    }
  }
}
