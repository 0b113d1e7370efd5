//! The JavaScript face of the benchmarks (`www/bench/index.html`): the measurements of `sgd-lab-bench` —
//! training, evaluation and λ_max — in a browser tab, on WebGPU or on the CPU backend (wasm32: one thread).
//!
//! Why this shape: the wasm module has no clock worth trusting across engines, and the page needs control
//! between pieces of work, so each method does one unit of work (a training chunk with its readback, one
//! evaluation, one Lanczos run) and the caller times it with `performance.now()` (`www/bench/worker.js`,
//! in a worker so the page stays responsive). The data are random bytes shaped like Fashion-MNIST, as in
//! the native bench (throughput does not depend on the values).
//!
//! ```js
//! const run = await BenchRun.create("gpu", "e1", 1, 128, 1024);   // backend, arch, K, B, examples
//! const t0 = performance.now(); await run.trainChunk(5); const ms = performance.now() - t0;
//! await run.evaluate(1024); const lambda = await run.lambdaMax(256); // per model
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wasm_bindgen::prelude::*;

use super::engine::{promise, Engine};
use crate::analysis::eigen::{lanczos, LanczosOptions};
use crate::analysis::{BackendOperator, Subset};
use crate::backend::any::{make_backend, AnyBackend, BackendChoice};
use crate::backend::{Backend, DataHandle, Hyper};
use crate::data::{Dataset, Features};
use crate::error::LabError;
use crate::model::{Activation, Init, MlpSpec, ModelBatch};

/// Largest K the page offers (the native bench goes further; a tab's memory is the limit here).
const MAX_MODELS: usize = 64;
/// Largest data set the page generates (examples of 784 bytes).
const MAX_EXAMPLES: usize = 65536;

struct State {
    backend: AnyBackend,
    data: DataHandle,
    n: usize,
    k: usize,
    batch: usize,
    rng: ChaCha8Rng,
}

/// One benchmark configuration (backend, architecture, K, B) with its random data, measured by the caller.
#[wasm_bindgen]
pub struct BenchRun {
    state: Rc<RefCell<State>>,
    engine: Engine,
    params_per_model: usize,
}

fn busy(what: &str) -> JsError {
    JsError::new(&format!("BenchRun.{what}() called while another call on this run is still running"))
}

fn count(field: &str, v: usize, lo: usize, hi: usize) -> Result<(), LabError> {
    if v < lo || v > hi {
        return Err(LabError::config(field, format!("must be between {lo} and {hi} (got {v})")));
    }
    Ok(())
}

/// Hidden widths from `"32,32"`: 1 to 32 layers of 1 to 4096 units.
fn parse_hidden(s: &str) -> Result<Vec<usize>, LabError> {
    let bad = || LabError::config("arch", format!("unknown architecture {s:?} (use \"e1\", \"deep\" or hidden widths such as \"32,32\": 1 to 32 layers of 1 to 4096 units)"));
    let h: Vec<usize> = s.split(',').map(|w| w.trim().parse::<usize>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    if h.is_empty() || h.len() > 32 || h.iter().any(|&w| w == 0 || w > 4096) {
        return Err(bad());
    }
    Ok(h)
}

#[wasm_bindgen]
impl BenchRun {
    /// A run of `models` MLPs (`arch`: `"e1"` = 784-256-256-10, `"deep"` = 784, 19 × 50, 10, or hidden widths
    /// such as `"32,32"` for a custom 784-…-10 net) on `backend`
    /// (`"cpu"` or `"gpu"`; `"gpu"` rejects with the reason when WebGPU gives no adapter), batches of
    /// `batch` rows, over `examples` random examples. Rejects with a message naming the bad argument.
    pub async fn create(backend: String, arch: String, models: usize, batch: usize, examples: usize) -> Result<BenchRun, JsError> {
        let choice = match backend.as_str() {
            "cpu" => BackendChoice::Cpu,
            "gpu" => BackendChoice::Gpu,
            other => return Err(LabError::config("backend", format!("unknown backend {other:?} (use \"cpu\" or \"gpu\")")).into()),
        };
        let hidden = match arch.as_str() {
            "e1" => vec![256, 256],
            "deep" => vec![50; 19],
            other => parse_hidden(other)?,
        };
        count("models", models, 1, MAX_MODELS)?;
        count("batch", batch, 1, 4096)?;
        count("examples", examples, batch, MAX_EXAMPLES)?;
        let spec = MlpSpec { input: 784, hidden, classes: 10, activation: Activation::Relu, init: Init::He };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let bytes: Vec<u8> = (0..examples * 784).map(|_| rng.random()).collect();
        let labels: Vec<u32> = (0..examples).map(|_| rng.random_range(0..10)).collect();
        let data = Dataset::new("random u8 784", 784, 10, Features::u8_uniform(bytes, 784, 1.0 / 255.0, 0.0), labels)?;
        let (mut b, why_cpu) = make_backend(&spec.layout(), models, batch, choice).await?;
        let seeds: Vec<u64> = (0..models as u64).collect();
        b.write_params(&ModelBatch::init(&spec, &seeds).params)?;
        b.write_hyper(&vec![Hyper { lr: 0.01, momentum: 0.9, weight_decay: 0.0 }; models])?;
        b.reset_state();
        let h = b.upload_dataset(&data)?;
        let engine = Engine::of_backend(&b, why_cpu);
        let params_per_model = spec.layout().params_per_model;
        Ok(BenchRun { state: Rc::new(RefCell::new(State { backend: b, data: h, n: examples, k: models, batch, rng })), engine, params_per_model })
    }

    // Not `engine_getters!`: no `fallbackReason` here, since a "gpu" run without an adapter is rejected instead.

    /// The backend's description, e.g. `"GPU: … (WebGPU)"` or `"CPU (f32)"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.description.clone()
    }

    /// Whether the run is on WebGPU.
    #[wasm_bindgen(getter, js_name = onGpu)]
    pub fn on_gpu(&self) -> bool {
        self.engine.on_gpu
    }

    /// Parameters of one model.
    #[wasm_bindgen(getter, js_name = paramsPerModel)]
    pub fn params_per_model(&self) -> usize {
        self.params_per_model
    }

    /// Trains `steps` SGD steps on random mini-batches and reads the losses back (one readback, as the
    /// trainer does); resolves to the mean loss of the last step over the models.
    #[wasm_bindgen(js_name = trainChunk, unchecked_return_type = "Promise<number>")]
    pub fn train_chunk(&self, steps: usize) -> js_sys::Promise {
        let state = Rc::clone(&self.state);
        promise(async move {
            count("steps", steps, 1, 10_000)?;
            let mut s = state.try_borrow_mut().map_err(|_| busy("trainChunk"))?;
            let State { backend, data, n, k, batch, rng } = &mut *s;
            let idx: Vec<u32> = (0..steps * *k * *batch).map(|_| rng.random_range(0..*n as u32)).collect();
            backend.train_steps(*data, &idx, *batch)?;
            let p = backend.read_progress().await?;
            let last = &p.losses[p.losses.len() - *k..];
            Ok(JsValue::from_f64(last.iter().map(|&l| f64::from(l)).sum::<f64>() / *k as f64))
        })
    }

    /// Evaluates the models on the first `examples` examples; resolves to the mean loss over the models.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn evaluate(&self, examples: usize) -> js_sys::Promise {
        let state = Rc::clone(&self.state);
        promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy("evaluate"))?;
            count("examples", examples, 1, s.n)?;
            let h = s.data;
            let m = s.backend.evaluate(h, 0, examples).await?;
            Ok(JsValue::from_f64(m.iter().map(|e| e.loss).sum::<f64>() / m.len() as f64))
        })
    }

    /// λ_max of every model's Hessian over the first `examples` examples (Lanczos, top 1, the default 20
    /// iterations); resolves to one value per model.
    #[wasm_bindgen(js_name = lambdaMax, unchecked_return_type = "Promise<Float64Array>")]
    pub fn lambda_max(&self, examples: usize) -> js_sys::Promise {
        let state = Rc::clone(&self.state);
        promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy("lambdaMax"))?;
            count("examples", examples, 1, s.n)?;
            let subset = Subset::first(s.data, s.n, examples);
            let res = lanczos(&mut BackendOperator::new(&mut s.backend, subset), &LanczosOptions::default()).await?;
            let v: Vec<f64> = res.iter().map(|r| r.eigenvalues[0]).collect();
            Ok(js_sys::Float64Array::from(v.as_slice()).into())
        })
    }
}
