// Scales of the paper's presets for the lab page. "default" runs a preset as shipped (presets/*.json);
// "quick" applies a JSON merge patch (RFC 7396: objects merge key by key, arrays and numbers replace) that
// shrinks it for a classroom: about 1000 training examples, few epochs, one or two seeds (two where a claim
// compares seeds or needs n > 3 for a Spearman test to reach p < 0.05), a small grid,
// a short Lanczos — so it finishes in well under a minute on the CPU fallback and in seconds with WebGPU.
// Quick runs test the claims at a scale where many verdicts are "inconclusive" or noisy: the report says
// what ran. Every patch is checked by tests/e2e/lab.test.mjs (Experiment.fromPreset(id, patch) must accept it).

/** Smaller data and a shorter curvature measurement, shared by the patches below. */
const DATA = { train_size: 1000, validation_size: 500 };
const HESSIAN = { hessian_examples: 200, lanczos_iterations: 8 };

/** One merge patch per preset id. */
export const QUICK = {
  "e1-ratio-sweep": {
    dataset: DATA,
    model: { hidden: [64, 64] },
    budget: { epochs: 3 },
    seeds: [1, 2],
    analysis: { ...HESSIAN, trace_samples: 2 },
    experiment: { lrs: [0.025, 0.05, 0.1], batch_sizes: [25, 50, 100], extra_budgets: [{ steps: 60 }] },
  },
  "e1-ratio-sweep-deep": {
    // Ten hidden layers instead of nineteen: a 19-layer net barely leaves chance level in a few epochs on
    // 1000 examples, a 10-layer one does (and is still deep enough to differ from E1's 3-layer net).
    dataset: DATA,
    model: { hidden: Array(10).fill(32) },
    budget: { epochs: 6 },
    seeds: [1, 2],
    analysis: { ...HESSIAN, trace_samples: 2 },
    experiment: { lrs: [0.0125, 0.025, 0.05], batch_sizes: [25, 50, 100], extra_budgets: [{ steps: 120 }] },
  },
  "e2-interpolation-ratios": {
    dataset: DATA,
    model: { hidden: [64, 64] },
    budget: { epochs: 3 },
    seeds: [1, 2],
    analysis: HESSIAN,
    experiment: {
      settings: [{ lr: 0.1, batch_size: 25 }, { lr: 0.1, batch_size: 200 }, { lr: 0.0125, batch_size: 25 }],
      alphas: { from: -1, to: 2, points: 13 },
    },
  },
  "e3-interpolation-equal-ratio": {
    dataset: DATA,
    model: { hidden: [64, 64] },
    budget: { epochs: 3 },
    seeds: [1, 2],
    analysis: HESSIAN,
    experiment: { alphas: { from: -1, to: 2, points: 13 } },
  },
  "e4-schedules": {
    dataset: DATA,
    model: { hidden: [64, 64] },
    budget: { epochs: 2 },
    seeds: [1, 2],
    analysis: { ...HESSIAN, evaluations: 8 },
    experiment: {
      batch_size: 32,
      stage_epochs: 0.25,
      constant: [{ lr: 0.01, batch_size: 32 }, { lr: 0.05, batch_size: 160 }],
    },
  },
  "e5-memorization": {
    dataset: DATA,
    model: { hidden: [128] },
    budget: { epochs: 6 },
    seeds: [1],
    analysis: { evaluations: 6 },
    experiment: { random_label_fractions: [0.5], lrs: [0.05, 0.2], batch_sizes: [25, 100, 400], momenta: [0] },
  },
  "e6-breakdown": {
    dataset: DATA,
    model: { hidden: [64, 64] },
    budget: { epochs: 3 },
    seeds: [1, 2],
    analysis: HESSIAN,
    experiment: { betas: [1, 2, 4, 8], train_sizes: [300, 1000] },
  },
  "edge-of-stability": {
    dataset: { train_size: 250, validation_size: 250 },
    model: { hidden: [32, 32] },
    budget: { steps: 150 },
    analysis: { hessian_examples: 250, lanczos_iterations: 8 },
    experiment: { lrs: [0.1, 0.2], measurements: 6 }, // 2/η = 20 and 10: reached within 150 steps
  },
};

/** The scales the page offers, in the order of its menu. */
export const SCALES = {
  quick: { label: "quick (classroom)",
    hint: "About 1000 examples, a small grid, few epochs: seconds to a minute. Verdicts at this scale often differ from the paper's." },
  default: { label: "default (as shipped)", hint: "The preset as shipped (presets/*.json): minutes on a GPU, up to a quarter of an hour on the CPU." },
};

/** The merge patch of `scale` for preset `id` (`null`: none), or throws naming what is unknown. */
export function patchFor(id, scale) {
  if (scale === "default") return null;
  if (scale !== "quick") throw new Error(`unknown scale '${scale}' (quick, default)`);
  const patch = QUICK[id];
  if (!patch) throw new Error(`no quick scale for preset '${id}'`);
  return patch;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * One merge patch with the effect of applying `first`, then `second` (RFC 7396): objects merge key by key,
 * anything else in `second` (arrays, numbers, and `null`, which deletes) replaces what `first` says.
 */
export function composePatches(first, second) {
  if (second === undefined) return first;
  if (!isObject(first) || !isObject(second)) return second;
  const out = { ...first };
  for (const [k, v] of Object.entries(second)) out[k] = isObject(v) && isObject(first[k]) ? composePatches(first[k], v) : v;
  return out;
}
