// Free play's loss curve stays bounded (www/free/bounded-curve.js, drawn by loss-chart.js): one point per step
// up to the bound, then pairs merge so a run of any length keeps at most MAX_POINTS points, each the mean of the
// mini-batch losses of exactly the steps it stands for, evaluations on the point whose steps include them.
// Checked in node against a brute-force recomputation from every loss. No browser: fast.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BoundedCurve, MAX_POINTS } from "../../www/free/bounded-curve.js";

/** A loss for step s (deterministic, not monotone, so a wrong grouping shows). */
const lossAt = (s) => 1 + Math.sin(s * 0.37) / (1 + s / 1000);

/** Feeds the points of steps 1..n in chunks of `chunk` (addSteps(first, losses): losses[i] is plotted at first + i + 1). */
function feed(curve, n, chunk = 25, loss = lossAt) {
  for (let first = 0; first < n; first += chunk) {
    curve.addSteps(first, Array.from({ length: Math.min(chunk, n - first) }, (_, i) => loss(first + i + 1)));
  }
}

test("up to the bound the curve keeps one point per step, and an evaluation lands on its step", () => {
  const c = new BoundedCurve(64);
  feed(c, 60);
  assert.equal(c.steps.length, 60);
  assert.deepEqual(c.steps, Array.from({ length: 60 }, (_, i) => i + 1));
  assert.deepEqual(c.batchLoss, Array.from({ length: 60 }, (_, i) => lossAt(i + 1)));
  c.addEval(50, 0.5);
  c.addEval(0, 9); // before any step: no point stands for it
  c.addEval(1000, 9); // not reached yet
  assert.equal(c.trainLoss.filter((v) => v != null).length, 1);
  assert.equal(c.trainLoss[c.steps.indexOf(50)], 0.5);
});

test("past the bound the curve never holds more than the bound, and each point is the mean of exactly its steps", () => {
  const max = 64;
  const n = 10_000 + 7; // not a multiple of any stride: the last bucket stays open
  const c = new BoundedCurve(max);
  let most = 0;
  for (let first = 0; first < n; first += 25) {
    c.addSteps(first, Array.from({ length: Math.min(25, n - first) }, (_, i) => lossAt(first + i + 1)));
    most = Math.max(most, c.steps.length);
  }
  assert.ok(most <= max, `held ${most} points`);
  assert.ok(c.steps.length >= max / 2, "halving leaves half the bound, not fewer");
  assert.equal(c.stride, 256, "10 007 steps at 64 points: the stride doubled to 256");
  assert.equal(c.lastStep, n);
  // point k stands for steps k·stride + 1 … (k+1)·stride and is plotted at the last of them
  c.steps.forEach((step, k) => {
    assert.equal(step, (k + 1) * c.stride);
    let sum = 0;
    for (let s = k * c.stride + 1; s <= (k + 1) * c.stride; s++) sum += lossAt(s);
    assert.ok(Math.abs(c.batchLoss[k] - sum / c.stride) < 1e-12, `point ${k}: ${c.batchLoss[k]} vs ${sum / c.stride}`);
  });
});

test("past the bound an evaluation lands on the point whose steps include it, or on the point still being filled", () => {
  const c = new BoundedCurve(8);
  feed(c, 100); // at most 8 points: the stride is 16 by now, points at 16, 32, … 96, steps 97–100 still open
  assert.equal(c.stride, 16);
  assert.deepEqual(c.steps, [16, 32, 48, 64, 80, 96]);
  c.addEval(90, 0.25); // point 96 stands for steps 81–96
  c.addEval(80, 0.5); // point 80 for 65–80
  c.addEval(99, 0.75); // in the open bucket: kept for the point it becomes
  c.addEval(101, 9); // not reached
  c.addSteps(100, Array(12).fill(1)); // steps 101–112: the bucket becomes point 112
  assert.deepEqual(c.steps, [16, 32, 48, 64, 80, 96, 112]);
  assert.deepEqual(c.trainLoss, [null, null, null, null, 0.5, 0.25, 0.75]);
});

test("non-finite losses are left out of a point's mean; a point of only non-finite losses is empty", () => {
  const c = new BoundedCurve(4);
  feed(c, 8, 8, (s) => (s <= 4 ? Number.NaN : s === 5 ? Number.POSITIVE_INFINITY : 2));
  // 8 steps, at most 4 points: halved at step 4 (stride 2) and at step 8 (stride 4): points 4 and 8
  assert.equal(c.stride, 4);
  assert.deepEqual(c.steps, [4, 8]);
  assert.deepEqual(c.batchLoss, [null, 2]);
});

test("the default bound is MAX_POINTS, a bad bound is refused by name, and clear starts over at one point per step", () => {
  const c = new BoundedCurve();
  feed(c, 3 * MAX_POINTS);
  assert.ok(c.steps.length <= MAX_POINTS);
  c.clear();
  assert.equal(c.steps.length, 0);
  assert.equal(c.stride, 1);
  feed(c, 10);
  assert.equal(c.steps.length, 10);
  for (const bad of [0, 3, 1.5, -2, "8"]) assert.throws(() => new BoundedCurve(bad), /max: must be an even whole number ≥ 2/);
});
