// Free play's starting configuration for each data set it offers (not to be confused with the lab's presets,
// the shipped experiments of presets/*.json). Same JSON as the CLI and sgd_lab::train::TrainConfig.

/** One small ReLU MLP on two spirals: trains in seconds even on a software GPU or the CPU. */
export const SPIRALS_DEMO = {
  model: { input: 2, hidden: [64, 64], classes: 2, activation: "relu", init: "he" },
  data: { kind: "two_spirals", n: 512, noise: 0.1, seed: 1 },
  batch_size: 32,
  steps: 600,
  sampling: "shuffle",
  models: [{ lr: 0.1, momentum: 0.9, weight_decay: 0.0, seed: 1 }],
  eval_every: 50,
  chunk_steps: 25,
};

/** A 2-D synthetic set on a 2→32→32→C ReLU MLP. */
const synthetic = (data, classes, steps) => ({
  model: { input: 2, hidden: [32, 32], classes, activation: "relu", init: "he" },
  data,
  batch_size: 32,
  steps,
  sampling: "shuffle",
  models: [{ lr: 0.1, momentum: 0.9, weight_decay: 0.0, seed: 1 }],
  eval_every: 50,
  chunk_steps: 25,
});

/**
 * A real 28×28 set on a 784→128→10 ReLU MLP (He init), plain SGD as in the paper: a stratified training
 * subset of 2000 examples, 1000 held out for validation, the whole test file for testing.
 */
const real = (name) => ({
  model: { input: 784, hidden: [128], classes: 10, activation: "relu", init: "he" },
  dataset: { name, train_size: 2000, validation_size: 1000, random_label_fraction: 0, seed: 1 },
  batch_size: 64,
  steps: 600,
  sampling: "shuffle",
  models: [{ lr: 0.05, momentum: 0.0, weight_decay: 0.0, seed: 1 }],
  eval_every: 100,
  chunk_steps: 25,
});

/** Every data set the page can pick, in the order of its menu; `real` ones are downloaded first. */
export const DATA_SET_CONFIGS = {
  two_spirals: { label: "Two spirals", real: false, config: SPIRALS_DEMO },
  circles: { label: "Circles", real: false, config: synthetic({ kind: "circles", n: 512, noise: 0.1, factor: 0.5, seed: 1 }, 2, 300) },
  xor: { label: "XOR", real: false, config: synthetic({ kind: "xor", n: 512, noise: 0.1, seed: 1 }, 2, 300) },
  blobs: { label: "Blobs (4 classes)", real: false, config: synthetic({ kind: "blobs", n: 600, classes: 4, noise: 0.25, seed: 1 }, 4, 300) },
  "fashion-mnist": { label: "Fashion-MNIST", real: true, config: real("fashion-mnist") },
  mnist: { label: "MNIST", real: true, config: real("mnist") },
};

/** The fields of the page's form, read from a preset's config. */
export function fieldsOf(config) {
  return {
    n: config.data?.n,
    train_size: config.dataset?.train_size,
    validation_size: config.dataset?.validation_size,
    random_label_fraction: config.dataset?.random_label_fraction,
    steps: config.steps,
    batch_size: config.batch_size,
    lr: config.models[0].lr,
  };
}

/**
 * The config of preset `key` with the form's `fields` applied (numbers; `undefined` keeps the preset's).
 * Values are passed as given: the engine validates them and names the field it refuses.
 */
export function configFor(key, fields) {
  const preset = DATA_SET_CONFIGS[key];
  if (!preset) throw new Error(`unknown data set '${key}'`);
  const c = structuredClone(preset.config);
  const set = (obj, k, v) => { if (obj && v !== undefined && !Number.isNaN(v)) obj[k] = v; };
  set(c.data, "n", fields.n);
  set(c.dataset, "train_size", fields.train_size);
  set(c.dataset, "validation_size", fields.validation_size);
  set(c.dataset, "random_label_fraction", fields.random_label_fraction);
  set(c, "steps", fields.steps);
  set(c, "batch_size", fields.batch_size);
  set(c.models[0], "lr", fields.lr);
  return c;
}
