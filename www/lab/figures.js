// Live figures of a preset's results (uPlot, vendored by scripts/build-web into www/vendor): what each kind of
// experiment shows, rebuilt from `Experiment.results()` after every finished group. Seeds are averaged into one
// point per setting; the report's SVG figures (at the end) add the error bars and the statistics.
//
//   ratio_sweep (E1)     λ_max, Tr H and validation accuracy against η/B (log axes), one line per η and budget
//   breakdown (E6)       λ_max against β and against the noise scale g = η(N/B − 1), accuracy against β, per N
//   memorization (E5)    accuracy on the random labels and clean validation accuracy over epochs, per setting
//                        (coloured by η/B), and the memorised share at the end against η/B
//   schedules (E4)       validation accuracy and training loss over epochs, per schedule
//   interpolation (E2/3) training loss and accuracy along (1−α)θ₁ + αθ₂ (the report adds λ_max per setting)
//   edge_of_stability    λ_max over training against 2/η, and λ_max·η/2 (1 at the edge)
//
// Each figure is a <figure class="lab-figure" data-name data-points data-series>: data-points counts the
// finite points drawn (read by tests/e2e/lab.test.mjs and embed.test.mjs). The embeddable <sgd-lab> element
// (www/embed/sgd-lab.js) shows one of them: `new LiveFigures(parent, { only: name })`, names from figureNames().
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { rampColour, seriesColour } from "./figure-style.js";

const HEIGHT = 230;
const finite = (v) => typeof v === "number" && Number.isFinite(v);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const key12 = (x) => Number(x.toPrecision(12));

/** Three significant digits, without trailing noise: 0.000781, 12.3, 1.5e-5. */
export function fmt(v) {
  if (v == null || !Number.isFinite(v)) return "—";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

// Colours: the figures' one style (figure-style.js, shared with the CLI's and the report's SVG figures):
// seriesColour(i) for series in order, rampColour(t) (blue → red) for series coloured by a value.

/**
 * Aligned data for uPlot from points {key, label, x, y, order?, color?, t?, dash?}: one series per key, the
 * mean of the y of equal x (seeds) as its value there, null where the series has no point (lines span gaps).
 * Points that a log axis cannot show (≤ 0) and non-finite ones are left out.
 */
export function collect(points, { logX = false, logY = false } = {}) {
  const groups = new Map();
  const xs = new Set();
  for (const p of points) {
    if (!finite(p.x) || !finite(p.y) || (logX && p.x <= 0) || (logY && p.y <= 0)) continue;
    let g = groups.get(p.key);
    if (!g) groups.set(p.key, (g = { label: p.label, order: p.order ?? 0, color: p.color, t: p.t, dash: p.dash, at: new Map() }));
    const x = key12(p.x);
    if (!g.at.has(x)) g.at.set(x, []);
    g.at.get(x).push(p.y);
    xs.add(x);
  }
  const sortedX = [...xs].sort((a, b) => a - b);
  const list = [...groups.values()].sort((a, b) => a.order - b.order || a.label.localeCompare(b.label));
  const series = list.map((g, i) => ({
    label: g.label,
    color: g.color ?? (g.t != null ? rampColour(g.t) : seriesColour(i)),
    dash: g.dash,
    values: sortedX.map((x) => (g.at.has(x) ? mean(g.at.get(x)) : null)),
  }));
  return { xs: sortedX, series };
}

const models = (results) => results.jobs.flatMap((j) => j.models);
const alive = (m) => m.diverged_at == null;
const generalisation = (m) => m.last.validation_accuracy ?? m.last.train_accuracy;
const genName = (results) =>
  models(results).some((m) => m.last.validation_accuracy != null) ? "validation accuracy" : "training accuracy";
const ratio = (tag) => tag.lr / tag.batch_size;
const cap = (text) => text[0].toUpperCase() + text.slice(1);
/** Position of v among the sorted distinct values, in [0, 1] (for the colour scale). */
const rankOf = (values) => {
  const sorted = [...new Set(values.map(key12))].sort((a, b) => a - b);
  return (v) => (sorted.length < 2 ? 0.5 : sorted.indexOf(key12(v)) / (sorted.length - 1));
};
const settingName = (s) => s.label || `η=${fmt(s.lr)}, B=${s.batch_size}`;

// --- the figures of each kind ----------------------------------------------------------------------------

/** E1: per η and budget, against η/B. */
function sweepPoints(results, y) {
  const lrs = [...new Set(models(results).map((m) => m.tag.lr))].sort((a, b) => a - b);
  return models(results).filter(alive).map((m) => ({
    key: `${m.tag.budget_index}|${m.tag.lr}`,
    label: `η=${fmt(m.tag.lr)} · ${m.tag.budget}`,
    order: m.tag.budget_index * 1000 + lrs.indexOf(m.tag.lr),
    color: seriesColour(lrs.indexOf(m.tag.lr)),
    dash: m.tag.budget_index > 0 ? [6, 4] : undefined,
    x: ratio(m.tag),
    y: y(m),
  }));
}

/** E5: one series per setting (label share, η, B, μ), coloured by η/B. */
function memoSeries(results, y) {
  const all = models(results);
  const rank = rankOf(all.map((m) => Math.log(ratio(m.tag))));
  return all.filter(alive).flatMap((m) => (m.curve ?? []).map((p) => ({
    key: `${m.tag.random_label_fraction}|${m.tag.lr}|${m.tag.batch_size}|${m.tag.momentum}`,
    label: `η/B=${fmt(ratio(m.tag))} (η=${fmt(m.tag.lr)}, B=${m.tag.batch_size}, μ=${fmt(m.tag.momentum)}, ${Math.round(100 * m.tag.random_label_fraction)} % random)`,
    order: ratio(m.tag),
    t: rank(Math.log(ratio(m.tag))),
    x: p.epoch,
    y: y(p),
  })));
}

/** Curves over epochs, one series per tag label (schedules, interpolation settings). */
function curvesByLabel(results, y) {
  return models(results).filter(alive).flatMap((m) => (m.curve ?? []).map((p) => ({
    key: m.tag.label, label: m.tag.label, order: m.tag.setting ?? 0, x: p.epoch, y: y(p),
    dash: m.tag.setting === 1 || m.tag.setting === 3 ? [6, 4] : undefined,
  })));
}

const SPECS = {
  ratio_sweep: [
    { name: "lambda-max-vs-ratio", title: "λ_max against η/B (mean over seeds; dashed: the fixed-steps budget)",
      x: "η/B", y: "λ_max", logX: true, logY: true, points: (r) => sweepPoints(r, (m) => m.lambda_max) },
    { name: "accuracy-vs-ratio", title: (r) => `${cap(genName(r))} against η/B (mean over seeds)`, x: "η/B", y: (r) => genName(r), logX: true,
      points: (r) => sweepPoints(r, generalisation) },
    { name: "trace-vs-ratio", title: "Hessian trace Tr H against η/B", x: "η/B", y: "Tr H", logX: true, logY: true,
      when: (r) => models(r).some((m) => m.trace != null), points: (r) => sweepPoints(r, (m) => m.trace) },
  ],
  breakdown: [
    { name: "lambda-max-vs-beta", title: "λ_max against β (η = β·η₀, B = β·B₀: the same η/B), per N", x: "β", y: "λ_max",
      logX: true, logY: true,
      points: (r) => models(r).filter(alive).map((m) => ({ key: m.tag.train_size, label: `N = ${m.tag.train_size}`,
        order: m.tag.train_size, x: m.tag.beta, y: m.lambda_max })) },
    { name: "lambda-max-vs-noise-scale", title: "λ_max against the noise scale g = η(N/B − 1), per N", x: "g", y: "λ_max",
      logX: true, logY: true,
      points: (r) => models(r).filter(alive).map((m) => ({ key: m.tag.train_size, label: `N = ${m.tag.train_size}`,
        order: m.tag.train_size, x: m.tag.lr * (m.tag.train_size / m.tag.batch_size - 1), y: m.lambda_max })) },
    { name: "accuracy-vs-beta", title: (r) => `${cap(genName(r))} against β, per N`, x: "β", y: (r) => genName(r), logX: true,
      points: (r) => models(r).filter(alive).map((m) => ({ key: m.tag.train_size, label: `N = ${m.tag.train_size}`,
        order: m.tag.train_size, x: m.tag.beta, y: generalisation(m) })) },
  ],
  memorization: [
    { name: "corrupted-accuracy", title: "Accuracy on the random (corrupted) training labels over training — memorisation",
      x: "epoch", y: "accuracy on random labels", points: (r) => memoSeries(r, (p) => p.corrupted_accuracy) },
    { name: "clean-validation-accuracy", title: "Clean validation accuracy over training", x: "epoch",
      y: "validation accuracy", points: (r) => memoSeries(r, (p) => p.validation_accuracy) },
    { name: "memorised-vs-ratio", title: "Memorised share (accuracy on the random labels) at the end against η/B, one line per η",
      x: "η/B", y: "accuracy on random labels", logX: true,
      points: (r) => models(r).filter(alive).map((m) => ({
        key: `${m.tag.random_label_fraction}|${m.tag.momentum}|${m.tag.lr}`,
        label: `η=${fmt(m.tag.lr)}, μ=${fmt(m.tag.momentum)}, ${Math.round(100 * m.tag.random_label_fraction)} % random`,
        order: m.tag.random_label_fraction * 100 + m.tag.momentum * 10 + m.tag.lr, x: ratio(m.tag), y: m.last.corrupted_accuracy })) },
  ],
  schedules: [
    { name: "accuracy-curves", title: (r) => `${cap(genName(r))} over training, per schedule (dashed: the second of each equal-η/B pair)`,
      x: "epoch", y: (r) => genName(r), points: (r) => curvesByLabel(r, (p) => p.validation_accuracy ?? p.train_accuracy) },
    { name: "loss-curves", title: "Training loss over training, per schedule", x: "epoch", y: "cross-entropy", logY: true,
      points: (r) => curvesByLabel(r, (p) => p.train_loss) },
  ],
  interpolation: [
    { name: "interpolation-loss", title: "Training loss along (1−α)·θ₁ + α·θ₂ between two minima", x: "α", y: "cross-entropy",
      logY: true, points: (r) => interpolationPoints(r, "train_loss") },
    { name: "interpolation-accuracy", title: "Training accuracy along the same lines", x: "α", y: "accuracy",
      points: (r) => interpolationPoints(r, "train_accuracy") },
  ],
  edge_of_stability: [
    { name: "sharpness-vs-threshold", title: "λ_max during training against the stability threshold 2(1+μ)/η (dashed)",
      x: "step", y: "λ_max", points: edgePoints, extra: edgeThresholds },
    { name: "sharpness-ratio", title: "λ_max / (2(1+μ)/η) during training: 1 is the edge of stability", x: "step",
      y: "λ_max ÷ threshold", points: (r) => edgePoints(r, (s) => s.lambda_max / s.threshold) },
  ],
};

function interpolationPoints(results, field) {
  const settings = results.config.experiment.settings ?? [];
  return (results.interpolations ?? []).flatMap((ip, i) => ip.alphas.map((a, k) => ({
    key: `${ip.settings.join("-")}|${ip.seed}`,
    label: `${settingName(settings[ip.settings[0]])} (α=0) → ${settingName(settings[ip.settings[1]])} (α=1), seed ${ip.seed}`,
    order: i, x: a, y: ip[field][k],
  })));
}

function edgeLabel(m) {
  return m.tag.label || `η=${fmt(m.tag.lr)}, B=${m.tag.batch_size}`;
}

function edgePoints(results, y = (s) => s.lambda_max) {
  const lrs = [...new Set(models(results).map((m) => m.tag.lr))].sort((a, b) => a - b);
  return models(results).flatMap((m) => (m.sharpness ?? []).map((s) => ({
    key: `${m.tag.lr}|${m.tag.batch_size}|${m.tag.seed}`,
    label: `${edgeLabel(m)}${m.tag.seed !== 1 ? `, seed ${m.tag.seed}` : ""}`,
    order: lrs.indexOf(m.tag.lr) * 10 + (m.tag.batch_size === m.tag.train_size ? 0 : 1),
    color: seriesColour(lrs.indexOf(m.tag.lr)),
    dash: m.tag.batch_size === m.tag.train_size ? undefined : [2, 3],
    x: s.step, y: y(s),
  })));
}

/** The dashed 2(1+μ)/η line of each learning rate, over the x of the data. */
function edgeThresholds(results, xs) {
  const lrs = [...new Set(models(results).map((m) => m.tag.lr))].sort((a, b) => a - b);
  const byLr = new Map();
  for (const m of models(results)) for (const s of m.sharpness ?? []) if (finite(s.threshold)) byLr.set(m.tag.lr, s.threshold);
  return lrs.filter((lr) => byLr.has(lr)).map((lr) => ({
    label: `2/η for η=${fmt(lr)}`, color: seriesColour(lrs.indexOf(lr)), dash: [8, 5], width: 1,
    values: xs.map(() => byLr.get(lr)), threshold: true,
  }));
}

/** The names of the live figures of a kind of experiment (E1: ratio_sweep, …), in the lab's order. */
export function figureNames(kind) {
  return (SPECS[kind] ?? []).map((spec) => spec.name);
}

// --- drawing ---------------------------------------------------------------------------------------------

const resolve = (v, results) => (typeof v === "function" ? v(results) : v);

/**
 * One live figure: a caption, a uPlot chart (hover shows values in the legend), an empty-state note. The chart
 * is made once, empty, when the preset is picked (before any run), and then only gains, loses and redraws
 * series: making a uPlot costs far more than feeding one, and must not happen while a run keeps the CPU busy.
 */
class LiveFigure {
  constructor(parent, spec, config) {
    this.spec = spec;
    this.version = -1;
    this.el = document.createElement("figure");
    this.el.className = "lab-figure";
    Object.assign(this.el.dataset, { name: spec.name, points: "0", series: "0" });
    this.caption = document.createElement("figcaption");
    this.plotBox = document.createElement("div");
    this.plotBox.className = "plot";
    this.plotBox.setAttribute("role", "img");
    this.empty = document.createElement("p");
    this.empty.className = "empty muted";
    this.empty.textContent = "No data yet: the figure fills in as groups finish.";
    this.el.append(this.caption, this.plotBox, this.empty);
    parent.append(this.el);
    const stub = { config, jobs: [], planned_jobs: 0 };
    this.label(stub);
    this.yLabel = resolve(spec.y, stub);
    this.plot = new uPlot(this.options(this.yLabel), [[]], this.plotBox);
    // Warm up (now, while nothing runs) the code that adds, draws and drops a series, so the first real
    // update during a run is as cheap as the later ones.
    this.plot.batch(() => {
      this.plot.addSeries(this.seriesOptions({ label: "warm-up", color: seriesColour(0) }), 1);
      this.plot.setData([[1, 2, 3], [1, 2, 3]]);
    });
    this.plot.batch(() => {
      this.plot.delSeries(1);
      this.plot.setData([[]]);
    });
    this.resizer = new ResizeObserver(() => this.plot.setSize(this.size()));
    this.resizer.observe(this.plotBox);
  }

  size() {
    return { width: Math.max(280, this.plotBox.clientWidth), height: HEIGHT };
  }

  label(results) {
    const title = resolve(this.spec.title, results);
    this.caption.textContent = title;
    this.plotBox.setAttribute("aria-label", `${title} (chart; the values are in the legend under it and in the CSV export)`);
  }

  /** Redraws from `results`: adds the series that appeared, drops the ones that went, sets the data. */
  update(results) {
    const { spec } = this;
    this.label(results);
    const { xs, series } = collect(spec.points(results), { logX: spec.logX, logY: spec.logY });
    if (spec.extra && xs.length) series.push(...spec.extra(results, xs));
    const points = series.filter((s) => !s.threshold).reduce((n, s) => n + s.values.filter((v) => v != null).length, 0);
    Object.assign(this.el.dataset, { points: String(points), series: String(series.length) });
    this.empty.hidden = points > 0;
    const yLabel = resolve(spec.y, results);
    if (yLabel !== this.yLabel) { // rare (no validation split): make the chart again with its new axis label
      this.plot.destroy();
      this.yLabel = yLabel;
      this.plot = new uPlot(this.options(yLabel), [[]], this.plotBox);
    }
    const plot = this.plot;
    plot.batch(() => {
      const want = series.map((s) => s.label);
      for (let i = plot.series.length - 1; i >= 1; i--) if (!want.includes(plot.series[i].label)) plot.delSeries(i);
      series.forEach((s, k) => {
        if (plot.series[k + 1]?.label !== s.label) plot.addSeries(this.seriesOptions(s), k + 1);
      });
      plot.setData(points ? [xs, ...series.map((s) => s.values)] : [[], ...series.map(() => [])]);
    });
  }

  seriesOptions(s) {
    return { label: s.label, stroke: s.color, width: s.width ?? 1.6, dash: s.dash, spanGaps: true, value: (u, v) => fmt(v),
      points: { show: !s.threshold, size: 5, fill: s.color } };
  }

  options(yLabel) {
    const { spec } = this;
    const ticks = (u, splits) => splits.map((t) => (t == null ? "" : fmt(t))); // log axes hand in null for skipped ticks
    return {
      ...this.size(),
      scales: { x: { time: false, distr: spec.logX ? 3 : 1 }, y: { distr: spec.logY ? 3 : 1 } },
      axes: [{ label: spec.x, values: ticks }, { label: yLabel, values: ticks, size: 60 }],
      legend: { live: true },
      cursor: { points: { size: 7 } },
      series: [{ label: spec.x, value: (u, v) => fmt(v) }],
    };
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
    this.el.remove();
  }
}

/**
 * The live figures of a kind of experiment, in `parent`. `prepare(config)` makes the (empty) charts of its kind
 * — call it while nothing runs; `update(results)` redraws them one figure per task (a setTimeout apart), so no
 * single task of the page grows with the number of figures. `parent[data-pending]` is "1" while redraws are
 * queued, "0" once every figure shows the latest results.
 */
export class LiveFigures {
  /** `only`: the name of the one figure to show (see figureNames), or undefined for all of the kind's. */
  constructor(parent, { only } = {}) {
    this.parent = parent;
    this.only = only;
    this.figures = [];
    this.kind = null;
    this.latest = null;
    this.version = 0;
    this.timer = null;
    parent.dataset.pending = "0";
  }

  /** Empty charts for `config`'s kind (kept, and emptied, when the kind is the same). */
  prepare(config) {
    const kind = config.experiment.kind;
    clearTimeout(this.timer);
    this.timer = null;
    this.latest = null;
    this.parent.dataset.pending = "0";
    if (kind === this.kind && this.figures.length) {
      this.update({ config, jobs: [], planned_jobs: 0 }); // empties them, one per task
      return;
    }
    for (const f of this.figures) f.destroy();
    this.kind = kind;
    this.figures = (SPECS[kind] ?? []).filter((spec) => !this.only || spec.name === this.only).map((spec) => new LiveFigure(this.parent, spec, config));
  }

  update(results) {
    if (results.config.experiment.kind !== this.kind) this.prepare(results.config);
    this.latest = results;
    this.version += 1;
    this.kick();
  }

  kick() {
    if (this.timer) return;
    const f = this.figures.find((g) => g.version !== this.version);
    if (!f) {
      this.parent.dataset.pending = "0";
      return;
    }
    this.parent.dataset.pending = "1";
    this.timer = setTimeout(() => {
      this.timer = null;
      const results = this.latest;
      const shown = !f.spec.when || f.spec.when(results);
      f.el.hidden = !shown;
      if (shown) f.update(results);
      f.version = this.version;
      this.kick();
    }, 0);
  }
}
