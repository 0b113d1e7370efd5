// Training configurations the page offers. Same JSON as the CLI and sgd_lab::train::TrainConfig.

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
