// The lab's first page: load the wasm engine, pick WebGPU or the CPU, train one MLP on two spirals,
// and draw its loss as it falls. Training runs in chunks with a yield to the browser in between.
//
// Test hooks (read by tests/e2e): <body data-state="loading|training|done|error">,
// #backend[data-kind="gpu|cpu"], #loss-chart[data-points, data-loss-start, data-loss-end].
// Add ?cpu to the URL to train on the CPU even when WebGPU is available.
import init, { Lab, version } from "./pkg/sgd_lab.js";
import { LossChart } from "./loss-chart.js";
import { SPIRALS_DEMO } from "./presets.js";

const $ = (id) => document.getElementById(id);
const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

function showBackend(lab) {
  const el = $("backend");
  el.dataset.kind = lab.onGpu ? "gpu" : "cpu";
  el.textContent = lab.onGpu ? lab.backend : `CPU fallback — ${lab.backend}`; // backend: "GPU: …" or "CPU (f32)"
  if (!lab.onGpu) {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = `Why: ${lab.fallbackReason}`;
    el.append(why);
  }
}

function showError(err) {
  document.body.dataset.state = "error";
  $("error").hidden = false;
  $("error").textContent = `Something went wrong: ${err?.message ?? err}`;
  console.error(err);
}

async function train(chart, preferGpu) {
  const config = SPIRALS_DEMO;
  const lab = await Lab.create(JSON.stringify(config), preferGpu);
  showBackend(lab);
  $("run-summary").textContent =
    `${config.data.n} points · MLP 2→${config.model.hidden.join("→")}→2 (${config.model.activation}) · ` +
    `batch ${config.batch_size} · lr ${config.models[0].lr} · momentum ${config.models[0].momentum} · ` +
    `${config.steps} steps`;
  chart.clear();
  document.body.dataset.state = "training";
  const all = [];
  const t0 = performance.now();
  while (!lab.done) {
    for (const ev of await lab.step()) {
      if (ev.type === "steps") {
        const losses = ev.losses[0];
        chart.addSteps(ev.first_step, losses);
        all.push(...losses);
      } else if (ev.type === "eval" || ev.type === "finished") {
        const step = ev.type === "eval" ? ev.step : ev.steps; // `finished` carries the final evaluation
        chart.addEval(step, ev.train[0].loss);
        $("status").textContent =
          `step ${step}: loss ${ev.train[0].loss.toFixed(3)}, accuracy ${(100 * ev.train[0].accuracy).toFixed(1)}%`;
      } else if (ev.type === "diverged") {
        $("status").textContent = `diverged at step ${ev.step}`;
      }
    }
    chart.redraw();
    await yieldToBrowser();
  }
  const head = all.slice(0, config.chunk_steps).filter(Number.isFinite);
  const tail = all.slice(-config.chunk_steps).filter(Number.isFinite);
  Object.assign($("loss-chart").dataset, { lossStart: mean(head).toFixed(5), lossEnd: mean(tail).toFixed(5) });
  $("status").textContent += ` · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  document.body.dataset.state = "done";
}

async function main() {
  await init();
  $("version").textContent = version();
  const chart = new LossChart($("loss-chart"));
  const preferGpu = !new URLSearchParams(location.search).has("cpu");
  const button = $("train");
  const run = async () => {
    button.disabled = true;
    try {
      await train(chart, preferGpu);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener("click", run);
  await run();
}

main().catch(showError);
